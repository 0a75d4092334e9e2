//! JSON parsing that refuses duplicate member names at every level.
//!
//! `serde_json` silently keeps the last of two equal member names, while other JOSE
//! implementations keep the first: a header such as `{"alg":"ES256","alg":"none"}` would
//! mean different things to different verifiers. RFC 7515 §4 requires unique names, so
//! headers are parsed with this instead.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why strict parsing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrictError {
    /// A member name appears twice in one object (the name is given).
    Duplicate(String),
    /// The text is not JSON (serde_json's message, with line and column).
    Syntax(String),
    /// The JSON is valid but not an object.
    NotObject,
}

/// Parses `text` as one JSON object, rejecting duplicate member names at any depth.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, StrictError> {
    let duplicate = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = StrictSeed(&duplicate)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StrictError::NotObject),
        Err(err) => match duplicate.take() {
            Some(name) => Err(StrictError::Duplicate(name)),
            None => Err(StrictError::Syntax(err.to_string())),
        },
    }
}

#[derive(Clone, Copy)]
struct StrictSeed<'c>(&'c Cell<Option<String>>);

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
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
        Ok(Value::from(v))
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
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if object.contains_key(&key) {
                let message = format!("duplicate member name {key:?}");
                self.0.set(Some(key));
                return Err(de::Error::custom(message));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_objects() {
        let map = parse_object(
            r#" {"alg":"ES256","n":[1,{"a":null}],"f":1.5,"u":18446744073709551615} "#,
        )
        .unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map["alg"], "ES256");
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(
            parse_object(r#"{"alg":"ES256","alg":"none"}"#),
            Err(StrictError::Duplicate("alg".into()))
        );
        assert_eq!(
            parse_object(r#"{"x":{"k":1,"k":2}}"#),
            Err(StrictError::Duplicate("k".into()))
        );
        // Escapes are decoded before comparing.
        assert_eq!(
            parse_object(r#"{"alg":"ES256","\u0061lg":"none"}"#),
            Err(StrictError::Duplicate("alg".into()))
        );
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert_eq!(parse_object("[1]"), Err(StrictError::NotObject));
        assert!(matches!(parse_object("{"), Err(StrictError::Syntax(_))));
        assert!(matches!(parse_object("{} x"), Err(StrictError::Syntax(_))));
        assert!(matches!(parse_object(""), Err(StrictError::Syntax(_))));
        let deep = "[".repeat(10_000);
        assert!(matches!(parse_object(&deep), Err(StrictError::Syntax(_))));
    }
}
