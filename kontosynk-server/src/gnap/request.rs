//! Reading a grant request (`POST /transaction` body) strictly enough that every malformed
//! request gets a 400 `invalid_request` naming what is wrong.

use http::HeaderMap;
use serde_json::Value;

use super::error::GnapError;

/// A well-formed bearer-token grant request.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRequest {
    /// The requested access rights, verbatim (echoed in the response and the token).
    pub access: Vec<Value>,
    /// `client.key`: the entity id the client claims to be.
    pub client_key: String,
}

/// Refuses anything but `application/json` (parameters such as `charset` allowed).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), GnapError> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Err(GnapError::malformed(
            "missing Content-Type: send the grant request as application/json",
        ));
    };
    let media = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(GnapError::malformed(format!(
            "Content-Type {value:?} is not application/json"
        ))),
    }
}

/// Parses and checks a grant request body.
///
/// `access_token` must be one request object or an array holding exactly one; it must have
/// `flags` containing `"bearer"` and a non-empty `access` array of objects with a string
/// `type` (or string references). `client` must be an object whose `key` is a string (the
/// entity id).
pub fn parse(body: &[u8]) -> Result<GrantRequest, GnapError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| GnapError::malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(request) = value else {
        return Err(GnapError::malformed("the body must be a JSON object"));
    };
    let token = match request.get("access_token") {
        None => return Err(GnapError::malformed("access_token is missing")),
        Some(Value::Object(token)) => token,
        Some(Value::Array(list)) => match list.as_slice() {
            [Value::Object(token)] => token,
            [_] => return Err(GnapError::malformed("access_token[0] must be an object")),
            _ => {
                return Err(GnapError::malformed(format!(
                    "access_token must be an object or an array of exactly one object, not {} elements",
                    list.len()
                )));
            }
        },
        Some(_) => {
            return Err(GnapError::malformed(
                "access_token must be an object or a one-element array",
            ));
        }
    };
    let bearer = match token.get("flags") {
        None => false,
        Some(Value::Array(flags)) => {
            if flags.iter().any(|f| !f.is_string()) {
                return Err(GnapError::malformed("access_token.flags must hold strings"));
            }
            flags.iter().any(|f| f == "bearer")
        }
        Some(_) => {
            return Err(GnapError::malformed(
                "access_token.flags must be an array of strings",
            ));
        }
    };
    if !bearer {
        return Err(GnapError::malformed(
            "access_token.flags must contain \"bearer\": this server issues bearer tokens only",
        ));
    }
    let access = match token.get("access") {
        None => return Err(GnapError::malformed("access_token.access is missing")),
        Some(Value::Array(access)) if access.is_empty() => {
            return Err(GnapError::malformed("access_token.access is empty"));
        }
        Some(Value::Array(access)) => access,
        Some(_) => {
            return Err(GnapError::malformed("access_token.access must be an array"));
        }
    };
    for (i, entry) in access.iter().enumerate() {
        let ok = match entry {
            Value::Object(object) => object
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty()),
            Value::String(reference) => !reference.is_empty(),
            _ => false,
        };
        if !ok {
            return Err(GnapError::malformed(format!(
                "access_token.access[{i}] must be an object with a non-empty string \"type\" (or a string reference)"
            )));
        }
    }
    let client_key = match request.get("client") {
        None => return Err(GnapError::malformed("client is missing")),
        Some(Value::Object(client)) => match client.get("key") {
            Some(Value::String(key)) if !key.is_empty() => key.clone(),
            Some(_) => {
                return Err(GnapError::malformed(
                    "client.key must be your entity_id as a string (keys are proven by mutual TLS)",
                ));
            }
            None => return Err(GnapError::malformed("client.key is missing")),
        },
        Some(_) => {
            return Err(GnapError::malformed(
                "client must be an object with key = your entity_id",
            ));
        }
    };
    Ok(GrantRequest {
        access: access.clone(),
        client_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(value: Value) -> GrantRequest {
        parse(value.to_string().as_bytes()).unwrap()
    }

    fn err(value: &[u8]) -> String {
        let e = parse(value).unwrap_err();
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        e.description
    }

    #[test]
    fn object_and_one_element_array_forms() {
        let access = json!([{"type": "provisioning-api", "locations": ["https://x/"]}]);
        let token = json!({"access": access, "flags": ["bearer"]});
        let a = ok(json!({"access_token": token, "client": {"key": "https://e"}}));
        let b = ok(json!({"access_token": [token], "client": {"key": "https://e"}}));
        assert_eq!(a, b);
        assert_eq!(a.client_key, "https://e");
        assert_eq!(Value::Array(a.access), access);
    }

    #[test]
    fn every_malformed_part_is_named() {
        let good = json!({"access": [{"type": "t"}], "flags": ["bearer"]});
        let client = json!({"key": "https://e"});
        let cases: Vec<(Value, &str)> = vec![
            (json!([1]), "JSON object"),
            (json!({"client": client}), "access_token is missing"),
            (json!({"access_token": [], "client": client}), "0 elements"),
            (
                json!({"access_token": [good, good], "client": client}),
                "2 elements",
            ),
            (
                json!({"access_token": [1], "client": client}),
                "access_token[0]",
            ),
            (
                json!({"access_token": "x", "client": client}),
                "one-element array",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}]}, "client": client}),
                "bearer",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}], "flags": []}, "client": client}),
                "bearer",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}], "flags": "bearer"}, "client": client}),
                "array of strings",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}], "flags": [1]}, "client": client}),
                "hold strings",
            ),
            (
                json!({"access_token": {"flags": ["bearer"]}, "client": client}),
                "access is missing",
            ),
            (
                json!({"access_token": {"access": [], "flags": ["bearer"]}, "client": client}),
                "access is empty",
            ),
            (
                json!({"access_token": {"access": {}, "flags": ["bearer"]}, "client": client}),
                "must be an array",
            ),
            (
                json!({"access_token": {"access": [{"locations": []}], "flags": ["bearer"]}, "client": client}),
                "access[0]",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}, 3], "flags": ["bearer"]}, "client": client}),
                "access[1]",
            ),
            (json!({"access_token": good}), "client is missing"),
            (
                json!({"access_token": good, "client": "https://e"}),
                "client must be an object",
            ),
            (
                json!({"access_token": good, "client": {}}),
                "client.key is missing",
            ),
            (
                json!({"access_token": good, "client": {"key": {"jwk": {}}}}),
                "entity_id as a string",
            ),
            (
                json!({"access_token": good, "client": {"key": ""}}),
                "entity_id as a string",
            ),
        ];
        for (body, expected) in cases {
            let description = err(body.to_string().as_bytes());
            assert!(description.contains(expected), "{body}: {description}");
        }
        assert!(err(b"plain text, not JSON").contains("not valid JSON"));
        assert!(err(b"\xff\xfe garbage").contains("not valid JSON"));
        assert!(err(b"").contains("not valid JSON"));
    }

    #[test]
    fn content_type_must_be_json() {
        let mut headers = HeaderMap::new();
        assert!(check_content_type(&headers).is_err());
        for (value, fine) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/plain", false),
            ("application/jsonx", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(http::header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(check_content_type(&headers).is_ok(), fine, "{value}");
        }
    }
}
