//! Reading members of JSON objects and arrays with errors that name their path
//! (`servers[2].pins[0]: …`), refusing duplicate members that serde_json would silently
//! keep the last of.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::pin::truncate_for_message;

/// serde_json appends " at line L column C"; the member path says more, so drop it.
pub(super) fn strip_position(message: &str) -> String {
    if let Some(at) = message.rfind(" at line ") {
        let tail = &message[at + " at line ".len()..];
        let looks_like_position = tail
            .split(" column ")
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if looks_like_position && tail.contains(" column ") {
            return message[..at].to_owned();
        }
    }
    message.to_owned()
}

/// Prefixes an error from a nested value with its member path.
pub(super) fn nested<E: de::Error>(path: impl fmt::Display, err: E) -> E {
    E::custom(format_args!("{path}: {}", strip_position(&err.to_string())))
}

/// Known members already seen in one JSON object, one bit each, to refuse duplicates
/// (serde_json would silently keep the last) without allocating per object.
#[derive(Default)]
pub(super) struct Seen(u16);

impl Seen {
    pub(super) fn mark<E: de::Error>(&mut self, bit: u16, key: &str) -> Result<(), E> {
        if self.0 & bit != 0 {
            return Err(duplicate(key));
        }
        self.0 |= bit;
        Ok(())
    }
}

pub(super) fn duplicate<E: de::Error>(key: &str) -> E {
    E::custom(format_args!(
        "duplicate member {:?}",
        truncate_for_message(key)
    ))
}

/// Keeps an unknown member verbatim, refusing a second member of the same name.
pub(super) fn keep_unknown<'de, A: MapAccess<'de>>(
    map: &mut A,
    extra: &mut Map<String, Value>,
    key: Cow<'de, str>,
) -> Result<(), A::Error> {
    let value = map.next_value()?;
    match extra.entry(key.into_owned()) {
        serde_json::map::Entry::Vacant(slot) => {
            slot.insert(value);
            Ok(())
        }
        serde_json::map::Entry::Occupied(slot) => Err(duplicate(slot.key())),
    }
}

/// A JSON array whose element errors are prefixed with `[index]`.
pub(super) struct Indexed<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Indexed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IndexedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for IndexedVisitor<T> {
            type Value = Indexed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                loop {
                    let index = out.len();
                    match seq.next_element::<T>() {
                        Ok(Some(item)) => out.push(item),
                        Ok(None) => {
                            // Arrays in metadata are short (an entity's issuers, endpoints,
                            // pins, tags): without a size hint the vector grew to 4; the index
                            // keeps these for the document's lifetime, so keep only what is used.
                            out.shrink_to_fit();
                            return Ok(Indexed(out));
                        }
                        Err(err) => return Err(nested(format_args!("[{index}]"), err)),
                    }
                }
            }
        }
        deserializer.deserialize_seq(IndexedVisitor(PhantomData))
    }
}

/// Reads an optional string member, treating `null` as absent.
pub(super) fn optional_string<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: &str,
) -> Result<Option<String>, A::Error> {
    map.next_value::<Option<String>>()
        .map_err(|e| nested(key, e))
}

/// Reads an array member, prefixing errors with the member name (`servers[2]: …`).
pub(super) fn array_member<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    key: &str,
) -> Result<Vec<T>, A::Error> {
    map.next_value::<Indexed<T>>().map(|v| v.0).map_err(|e| {
        A::Error::custom(format_args!(
            "{key}{}",
            join_path(&strip_position(&e.to_string()))
        ))
    })
}

/// Joins a nested message onto a member name: `[0]: x` stays `[0]: x`, `x` becomes `: x`.
pub(super) fn join_path(inner: &str) -> Cow<'_, str> {
    if inner.starts_with('[') {
        Cow::Borrowed(inner)
    } else {
        Cow::Owned(format!(": {inner}"))
    }
}
