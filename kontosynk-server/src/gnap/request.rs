//! Reading a grant request (`POST /transaction` body) strictly enough that every malformed
//! request gets a 400 `invalid_request` naming what is wrong, and within [`GrantLimits`], so
//! the token (which echoes `access` as `requested_access`) cannot be made to grow with the
//! request.

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

/// How much of a grant request's `access` this server accepts (it is echoed into the token).
///
/// The defaults are far above real requests: Skolverket's clients send one entry with one
/// location of about 60 bytes (PROTOCOL-NOTES §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantLimits {
    /// The most entries in `access_token.access`.
    pub max_access: usize,
    /// The most elements of an entry's `locations` (and of any other array in an entry, such
    /// as `actions` or `datatypes`), and the most members of any object in it.
    pub max_locations: usize,
    /// The longest string (value or member name) in `access` and `client.key`, in bytes.
    pub max_string: usize,
    /// The most bytes `access` may take as JSON (what the token carries).
    pub max_access_bytes: usize,
}

impl Default for GrantLimits {
    /// 32 entries, 32 locations per entry, strings of 2,048 bytes, 32 KiB of `access`.
    fn default() -> Self {
        GrantLimits {
            max_access: 32,
            max_locations: 32,
            max_string: 2048,
            max_access_bytes: 32 * 1024,
        }
    }
}

/// The deepest nesting inside one access entry (`{"locations": [..]}` is 2).
const MAX_ENTRY_DEPTH: usize = 4;

/// Checks one access entry against `limits`; `path` names it in the description.
fn check_entry(
    value: &Value,
    path: &str,
    depth: usize,
    limits: &GrantLimits,
) -> Result<(), GnapError> {
    let too_long = |len: usize| {
        GnapError::malformed(format!(
            "{path} is {len} bytes long; this server accepts strings of at most {} bytes",
            limits.max_string
        ))
    };
    if depth > MAX_ENTRY_DEPTH {
        return Err(GnapError::malformed(format!(
            "{path} is nested deeper than {MAX_ENTRY_DEPTH} levels, the most this server accepts in an access entry"
        )));
    }
    match value {
        Value::String(text) if text.len() > limits.max_string => Err(too_long(text.len())),
        Value::Array(items) => {
            if items.len() > limits.max_locations {
                return Err(GnapError::malformed(format!(
                    "{path} has {} elements; this server accepts at most {} (locations per access entry)",
                    items.len(),
                    limits.max_locations
                )));
            }
            for (i, item) in items.iter().enumerate() {
                check_entry(item, &format!("{path}[{i}]"), depth + 1, limits)?;
            }
            Ok(())
        }
        Value::Object(members) => {
            if members.len() > limits.max_locations {
                return Err(GnapError::malformed(format!(
                    "{path} has {} members; this server accepts at most {}",
                    members.len(),
                    limits.max_locations
                )));
            }
            for (name, member) in members {
                if name.len() > limits.max_string {
                    return Err(GnapError::malformed(format!(
                        "{path} has a member name of {} bytes; this server accepts strings of at most {} bytes",
                        name.len(),
                        limits.max_string
                    )));
                }
                check_entry(member, &format!("{path}.{name}"), depth + 1, limits)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
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
/// `type` (or string references), within `limits`. `client` must be an object whose `key` is
/// a string (the entity id).
pub fn parse(body: &[u8], limits: &GrantLimits) -> Result<GrantRequest, GnapError> {
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
        Some(Value::Array(access)) if access.len() > limits.max_access => {
            return Err(GnapError::malformed(format!(
                "access_token.access has {} entries; this server accepts at most {}",
                access.len(),
                limits.max_access
            )));
        }
        Some(Value::Array(access)) => access,
        Some(_) => {
            return Err(GnapError::malformed("access_token.access must be an array"));
        }
    };
    for (i, entry) in access.iter().enumerate() {
        check_entry(entry, &format!("access_token.access[{i}]"), 0, limits)?;
    }
    let access_bytes = serde_json::to_string(access).map_or(usize::MAX, |text| text.len());
    if access_bytes > limits.max_access_bytes {
        return Err(GnapError::malformed(format!(
            "access_token.access is {access_bytes} bytes as JSON; this server accepts at most {}",
            limits.max_access_bytes
        )));
    }
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
            Some(Value::String(key)) if key.len() > limits.max_string => {
                return Err(GnapError::malformed(format!(
                    "client.key is {} bytes long; this server accepts strings of at most {} bytes",
                    key.len(),
                    limits.max_string
                )));
            }
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
        parse(value.to_string().as_bytes(), &GrantLimits::default()).unwrap()
    }

    fn err(value: &[u8]) -> String {
        let e = parse(value, &GrantLimits::default()).unwrap_err();
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
    fn limits_are_named_and_real_requests_pass() {
        let limits = GrantLimits {
            max_access: 2,
            max_locations: 2,
            max_string: 40,
            max_access_bytes: 150,
        };
        let request = |access: Value| {
            json!({"access_token": {"access": access, "flags": ["bearer"]}, "client": {"key": "https://e"}})
                .to_string()
        };
        let refused = |access: Value| parse(request(access).as_bytes(), &limits).unwrap_err();
        let e = refused(json!([{"type": "a"}, {"type": "b"}, {"type": "c"}]));
        assert!(
            e.description.contains("3 entries") && e.description.contains("at most 2"),
            "{e}"
        );
        let e =
            refused(json!([{"type": "a", "locations": ["https://1", "https://2", "https://3"]}]));
        assert!(
            e.description
                .contains("access_token.access[0].locations has 3 elements"),
            "{e}"
        );
        let e =
            refused(json!([{"type": "a", "locations": ["https://".to_owned() + &"x".repeat(40)]}]));
        assert!(e.description.contains("at most 40 bytes"), "{e}");
        let e = refused(json!([{"type": "x".repeat(41)}]));
        assert!(e.description.contains("access_token.access[0].type"), "{e}");
        let e = refused(json!([{"type": "a", "d": [[[[["deep"]]]]]}]));
        assert!(e.description.contains("nested deeper"), "{e}");
        let e = refused(
            json!([{"type": "a", "x": "y".repeat(39), "z": "w".repeat(39), "q": "v".repeat(39)}]),
        );
        assert!(e.description.contains("at most 2"), "{e}");
        let e = refused(
            json!(["r".repeat(39), {"type": "a", "locations": ["l".repeat(39), "m".repeat(39)]}]),
        );
        assert!(e.description.contains("at most 150"), "{e}");
        let long_key = json!({"access_token": {"access": [{"type": "a"}], "flags": ["bearer"]}, "client": {"key": "k".repeat(41)}});
        let e = parse(long_key.to_string().as_bytes(), &limits).unwrap_err();
        assert!(e.description.contains("client.key"), "{e}");
        // A real request passes the defaults.
        ok(
            json!({"access_token": {"access": [{"type": "provisioning-api",
            "locations": ["https://api.skolverket.se/provtjanst/provisioning/v1"]}], "flags": ["bearer"]},
            "client": {"key": "https://school.example"}}),
        );
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
