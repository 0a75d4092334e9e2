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

// IMPLEMENTATION NOTE (skeleton): `from_json` requires a JSON object with a string `id`
// (1..=256 bytes, no control characters); `meta.created` / `meta.modified` are read when present
// and must then be RFC 3339 strings (else ObjectError names the field). The text is kept as
// given (after checking it is valid JSON), not re-serialised.
impl Object {
    /// Parses one object from its JSON text.
    pub fn from_json(json: &str) -> Result<Object, ObjectError> {
        todo!("{json}")
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
