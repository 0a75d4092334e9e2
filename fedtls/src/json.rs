//! JSON helpers shared by the JOSE header parser, the linter and the metadata parser:
//! parsing that notices duplicate member names, JSON paths, and value kinds for messages.
//!
//! `serde_json` silently keeps the last of two equal member names, while other
//! implementations keep the first: a header such as `{"alg":"ES256","alg":"none"}` would mean
//! different things to different verifiers. RFC 7515 §4 requires unique names.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// How a value is named in messages: "a string", "an array", "null", ...
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why [`parse_unique_object`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrictError {
    /// A member name appears twice in one object (the name is given).
    Duplicate(String),
    /// The text is not JSON (serde_json's message, with line and column).
    Syntax(String),
    /// The JSON is valid but not an object.
    NotObject,
}

/// Parses `text` as one JSON object, refusing duplicate member names at any depth.
pub(crate) fn parse_unique_object(text: &str) -> Result<Map<String, Value>, StrictError> {
    let (value, duplicates) = parse_recording_duplicates(text.as_bytes())
        .map_err(|e| StrictError::Syntax(e.to_string()))?;
    if let Some(path) = duplicates.first() {
        let name = match path.0.last() {
            Some(Seg::Key(name)) => name.clone(),
            _ => path.to_string(),
        };
        return Err(StrictError::Duplicate(name));
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictError::NotObject),
    }
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A location in the input; renders as `$.a[0]["odd key"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Path(pub(crate) Vec<Seg>);

impl Path {
    /// This path extended by an object member.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for seg in &self.0 {
            match seg {
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) if is_identifier(k) => write!(f, ".{k}")?,
                Seg::Key(k) => {
                    let quoted = serde_json::to_string(k).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?;
                }
            }
        }
        Ok(())
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses JSON into a `Value`, recording the path of every member name that repeats one
/// earlier in the same object (serde_json alone would silently keep the last).
pub(crate) fn parse_recording_duplicates(
    bytes: &[u8],
) -> Result<(Value, Vec<Path>), serde_json::Error> {
    let duplicates = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Seed {
        path: Path::default(),
        duplicates: &duplicates,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((value, duplicates.into_inner()))
}

struct Seed<'d> {
    path: Path,
    duplicates: &'d RefCell<Vec<Path>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Seed {
            path: self.path.index(items.len()),
            duplicates: self.duplicates,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let path = self.path.key(&key);
            let value = access.next_value_seed(Seed {
                path: path.clone(),
                duplicates: self.duplicates,
            })?;
            if map.contains_key(&key) {
                self.duplicates.borrow_mut().push(path);
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        let map = parse_unique_object(
            r#" {"alg":"ES256","n":[1,{"a":null}],"f":1.5,"u":18446744073709551615} "#,
        )
        .unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map["alg"], "ES256");
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(
            parse_unique_object(r#"{"alg":"ES256","alg":"none"}"#),
            Err(StrictError::Duplicate("alg".into()))
        );
        assert_eq!(
            parse_unique_object(r#"{"x":{"k":1,"k":2}}"#),
            Err(StrictError::Duplicate("k".into()))
        );
        // Escapes are decoded before comparing.
        assert_eq!(
            parse_unique_object(r#"{"alg":"ES256","\u0061lg":"none"}"#),
            Err(StrictError::Duplicate("alg".into()))
        );
    }

    #[test]
    fn records_every_duplicate_with_its_path() {
        let (_, duplicates) =
            parse_recording_duplicates(br#"{"a":[{"k":1,"k":2}],"a":0,"odd key":1,"odd key":2}"#)
                .unwrap();
        let paths: Vec<String> = duplicates.iter().map(ToString::to_string).collect();
        assert_eq!(paths, ["$.a[0].k", "$.a", "$[\"odd key\"]"]);
        assert_eq!(kind(&Value::Null), "null");
        assert_eq!(kind(&serde_json::json!([1])), "an array");
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert_eq!(parse_unique_object("[1]"), Err(StrictError::NotObject));
        assert!(matches!(
            parse_unique_object("{"),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(
            parse_unique_object("{} x"),
            Err(StrictError::Syntax(_))
        ));
        assert!(matches!(
            parse_unique_object(""),
            Err(StrictError::Syntax(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse_unique_object(&deep),
            Err(StrictError::Syntax(_))
        ));
    }
}
