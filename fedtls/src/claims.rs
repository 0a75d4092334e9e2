//! TEMPORARY stub with the agreed API; replaced by the real module from the JOSE work.
#![allow(missing_docs)]
use serde_json::{Map, Value};
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    pub iat: Option<i64>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iss: Option<String>,
}
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClaimsError(String);
impl Claims {
    pub fn from_json_object(obj: &Map<String, Value>) -> Result<Claims, ClaimsError> {
        let n = |k: &str| obj.get(k).and_then(Value::as_i64);
        Ok(Claims {
            iat: n("iat"),
            exp: n("exp"),
            nbf: n("nbf"),
            iss: obj.get("iss").and_then(Value::as_str).map(str::to_owned),
        })
    }
}
