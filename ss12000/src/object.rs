//! One SS 12000 object as its source sent it.

use std::sync::Arc;

use crate::timestamp::Timestamp;

/// An SS 12000 object: its JSON text exactly as received (unknown fields and member order kept),
/// with the fields the store indexes read out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    id: String,
    created: Option<Timestamp>,
    modified: Option<Timestamp>,
    json: Arc<str>,
}

/// The longest `id` accepted (bytes).
pub const MAX_ID_LEN: usize = 256;

/// The members of an object this crate reads; the rest are skipped (but syntax-checked).
#[derive(serde::Deserialize)]
struct Head {
    id: Option<serde_json::Value>,
    meta: Option<serde_json::Value>,
}

impl Object {
    /// Parses one object from its JSON text.
    ///
    /// Requires a JSON object with a string `id` (1 to 256 bytes, no control characters).
    /// `meta.created` and `meta.modified` are read when present (and not null) and must then be
    /// RFC 3339 strings. The text is kept exactly as given, not re-serialised.
    pub fn from_json(json: &str) -> Result<Object, ObjectError> {
        if !json.trim_start().starts_with('{') {
            return Err(ObjectError::NotAnObject(describe_start(json)));
        }
        let head: Head =
            serde_json::from_str(json).map_err(|e| ObjectError::NotAnObject(e.to_string()))?;
        let id = match head.id {
            Some(serde_json::Value::String(id)) => {
                check_id(&id)?;
                id
            }
            Some(other) => return Err(ObjectError::Id(format!("not a string: {other}"))),
            None => return Err(ObjectError::Id("no `id` member".to_owned())),
        };
        let (created, modified) = match head.meta {
            None | Some(serde_json::Value::Null) => (None, None),
            Some(serde_json::Value::Object(meta)) => (
                meta_time(&meta, "created", "meta.created")?,
                meta_time(&meta, "modified", "meta.modified")?,
            ),
            Some(other) => {
                return Err(ObjectError::NotAnObject(format!(
                    "`meta` is not an object: {other}"
                )));
            }
        };
        Ok(Object {
            id,
            created,
            modified,
            json: Arc::from(json),
        })
    }

    /// Builds an object from a JSON value (serialised once; member order as in the value).
    pub fn from_value(value: &serde_json::Value) -> Result<Object, ObjectError> {
        Object::from_json(&value.to_string())
    }

    /// The object's `id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `meta.created`, when present.
    pub fn created(&self) -> Option<Timestamp> {
        self.created
    }

    /// `meta.modified`, when present.
    pub fn modified(&self) -> Option<Timestamp> {
        self.modified
    }

    /// The JSON text as received.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// A typed view (see [`crate::model`]).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// Checks an object id: 1 to [`MAX_ID_LEN`] bytes, no control characters.
pub fn check_id(id: &str) -> Result<(), ObjectError> {
    if id.is_empty() {
        return Err(ObjectError::Id("empty".to_owned()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(ObjectError::Id(format!(
            "{} bytes, at most {MAX_ID_LEN} allowed",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(ObjectError::Id(format!(
            "{id:?} contains control characters"
        )));
    }
    Ok(())
}

fn meta_time(
    meta: &serde_json::Map<String, serde_json::Value>,
    member: &str,
    field: &'static str,
) -> Result<Option<Timestamp>, ObjectError> {
    match meta.get(member) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => {
            Timestamp::parse(text)
                .map(Some)
                .map_err(|_| ObjectError::Timestamp {
                    field,
                    value: text.clone(),
                })
        }
        Some(other) => Err(ObjectError::Timestamp {
            field,
            value: other.to_string(),
        }),
    }
}

fn describe_start(json: &str) -> String {
    let start: String = json.trim_start().chars().take(20).collect();
    if start.is_empty() {
        "empty input".to_owned()
    } else {
        format!("starts with {start:?}")
    }
}

/// Why some JSON is not an SS 12000 object.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ObjectError {
    /// Not JSON, or not a JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// `id` missing, not a string, empty or too long.
    #[error("`id` is missing or invalid: {0}")]
    Id(String),
    /// A `meta` timestamp is not RFC 3339.
    #[error("`{field}` is not an RFC 3339 date-time: {value}")]
    Timestamp {
        /// `meta.created` or `meta.modified`.
        field: &'static str,
        /// The offending value.
        value: String,
    },
}

#[cfg(test)]
mod tests {
    use super::{Object, ObjectError};

    #[test]
    fn keeps_text_and_reads_meta() {
        let text = r#"{ "zeta": 1, "id": "a-1", "meta": {"created": "2026-01-01T00:00:00Z",
            "modified": "2026-01-02T01:00:00+01:00", "x": [1]}, "alpha": {"b": 2.50}}"#;
        let object = Object::from_json(text).unwrap();
        assert_eq!(object.json(), text);
        assert_eq!(object.id(), "a-1");
        assert_eq!(
            object.created().unwrap().to_string(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            object.modified().unwrap().to_string(),
            "2026-01-02T00:00:00Z"
        );
        let bare = Object::from_json(r#"{"id":"x","meta":null}"#).unwrap();
        assert_eq!((bare.created(), bare.modified()), (None, None));
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        for bad in [
            "",
            "[]",
            "[{\"id\":\"a\"}]",
            "null",
            "\"id\"",
            "{",
            "{\"id\":\"a\"} x",
            "{\"id\":\"a\",}",
        ] {
            assert!(
                matches!(Object::from_json(bad), Err(ObjectError::NotAnObject(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Object::from_json(r#"{"id":"a","meta":5}"#),
            Err(ObjectError::NotAnObject(_))
        ));
    }

    #[test]
    fn refuses_bad_ids() {
        let long = format!(r#"{{"id":"{}"}}"#, "a".repeat(257));
        for bad in [
            r#"{}"#,
            r#"{"id":5}"#,
            r#"{"id":null}"#,
            r#"{"id":""}"#,
            r#"{"id":"a\nb"}"#,
            long.as_str(),
        ] {
            assert!(
                matches!(Object::from_json(bad), Err(ObjectError::Id(_))),
                "{bad}"
            );
        }
        let ok = format!(r#"{{"id":"{}"}}"#, "a".repeat(256));
        assert!(Object::from_json(&ok).is_ok());
    }

    #[test]
    fn refuses_bad_meta_times() {
        let err = Object::from_json(r#"{"id":"a","meta":{"created":"yesterday"}}"#).unwrap_err();
        assert!(
            matches!(err, ObjectError::Timestamp { field: "meta.created", ref value } if value == "yesterday"),
            "{err}"
        );
        let err = Object::from_json(r#"{"id":"a","meta":{"modified":17}}"#).unwrap_err();
        assert!(
            matches!(
                err,
                ObjectError::Timestamp {
                    field: "meta.modified",
                    ..
                }
            ),
            "{err}"
        );
    }
}
