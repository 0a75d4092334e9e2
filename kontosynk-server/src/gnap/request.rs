//! Reading a grant request (`POST /transaction` body) the way the SUNET authorization server
//! (Skolverket's) reads it, so every request gets the answer it gets there:
//!
//! - the body is checked against the request's schema first: anything of the wrong type, an
//!   unknown `flags` value or a missing required member is 400 `invalid_request`, naming it;
//! - unknown members are ignored, and unknown or `null` members of access objects are
//!   dropped from the `access` echoed in the answer and the token;
//! - shapes that are well formed but that a federation client cannot use (`client` as a
//!   string, `client.key` as an object) are 401 `request_denied`, as SUNET answers them;
//! - what SUNET checks only after authenticating the client (several `access_token`
//!   requests: 401 `request_denied`; no `bearer` flag: 400) is checked by
//!   [`GrantRequest::check_token_request`] after authentication.
//!
//! Deliberately stricter than SUNET: `access` within [`GrantLimits`] (400; the token echoes
//! it), and an empty `access_token` array is 400 (SUNET answers a plain-text 500).

use http::HeaderMap;
use serde_json::{Map, Value};

use super::error::GnapError;

/// A well-formed bearer-token grant request.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRequest {
    /// The requested access rights (echoed in the response and the token): strings verbatim,
    /// objects with their known members only (`type`, `actions`, `locations`, `datatypes`,
    /// `identifier`, `privileges`, `scope`), `null` members left out. Empty when the request
    /// has no `access`.
    pub access: Vec<Value>,
    /// `client.key`: the entity id the client claims to be.
    pub client_key: String,
    /// How many access token requests `access_token` holds (an object counts as one).
    pub access_tokens: usize,
    /// Whether the (first) access token request's `flags` contain `bearer`.
    pub bearer: bool,
}

impl GrantRequest {
    /// The checks SUNET makes after the client is authenticated: one access token request
    /// only (401 `request_denied` otherwise) asking for a bearer token (400
    /// `invalid_request` otherwise).
    pub fn check_token_request(&self) -> Result<(), GnapError> {
        if self.access_tokens > 1 {
            return Err(GnapError::denied(format!(
                "access_token holds {} access token requests; this server issues one token per \
                 grant request: send one object (or an array of one)",
                self.access_tokens
            )));
        }
        if !self.bearer {
            return Err(GnapError::malformed(
                "access_token.flags must contain \"bearer\": this server issues bearer tokens only",
            ));
        }
        Ok(())
    }
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

/// Refuses anything but JSON: `application/json` or any `application/*+json` (such as
/// `application/gnap+json`), parameters such as `charset` allowed, as SUNET's server does
/// (400 `invalid_request`). A JWS-signed body (`application/jose`, `application/jose+json`)
/// is 400 `invalid_client`, SUNET's answer to a JWS it cannot use.
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
    if matches!(
        media.as_deref(),
        Some("application/jose" | "application/jose+json")
    ) {
        return Err(GnapError::with_status(
            http::StatusCode::BAD_REQUEST,
            super::error::ErrorCode::InvalidClient,
            format!(
                "Content-Type {value:?}: JWS-signed grant requests are not taken here; send the \
                 request as application/json over mutual TLS"
            ),
        ));
    }
    let json = media.as_deref().is_some_and(|m| {
        m.strip_prefix("application/")
            .is_some_and(|sub| sub == "json" || (sub.len() > 5 && sub.ends_with("+json")))
    });
    if json {
        Ok(())
    } else {
        Err(GnapError::malformed(format!(
            "Content-Type {value:?} is not JSON: send the grant request as application/json"
        )))
    }
}

/// The JSON type of a value, for descriptions.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The members of an access object SUNET knows that hold arrays of strings, and strings;
/// together with `type`, in the order SUNET echoes them.
const ACCESS_MEMBERS: [(&str, bool); 6] = [
    ("actions", true),
    ("locations", true),
    ("datatypes", true),
    ("identifier", false),
    ("privileges", true),
    ("scope", false),
];

/// The flags SUNET's server knows; any other is 400.
const KNOWN_FLAGS: [&str; 2] = ["bearer", "durable"];

/// The ways a client may prove its key that SUNET's schema knows (`client.key.proof`).
const PROOF_METHODS: [&str; 5] = ["httpsig", "mtls", "jwsd", "jws", "test"];

/// One access entry as it is echoed: a string verbatim, an object with its known members.
fn access_entry(value: &Value, path: &str) -> Result<Value, GnapError> {
    let map = match value {
        Value::String(_) => return Ok(value.clone()),
        Value::Object(map) => map,
        other => {
            return Err(GnapError::malformed(format!(
                "{path} must be an access object with a string \"type\" (or a string reference), found {}",
                kind(other)
            )));
        }
    };
    let mut echoed = Map::new();
    match map.get("type") {
        Some(Value::String(t)) => {
            echoed.insert("type".into(), Value::String(t.clone()));
        }
        None | Some(Value::Null) => {
            return Err(GnapError::malformed(format!(
                "{path}.type is missing: every access object names its type, e.g. \"provisioning-api\""
            )));
        }
        Some(other) => {
            return Err(GnapError::malformed(format!(
                "{path}.type must be a string, found {}",
                kind(other)
            )));
        }
    }
    for (name, is_array) in ACCESS_MEMBERS {
        match (map.get(name), is_array) {
            (None | Some(Value::Null), _) => {}
            (Some(Value::String(_)), false) => {
                echoed.insert(name.into(), map[name].clone());
            }
            (Some(Value::Array(items)), true) if items.iter().all(Value::is_string) => {
                echoed.insert(name.into(), map[name].clone());
            }
            (Some(Value::Array(_)), true) => {
                return Err(GnapError::malformed(format!(
                    "{path}.{name} must hold strings only"
                )));
            }
            (Some(other), true) => {
                return Err(GnapError::malformed(format!(
                    "{path}.{name} must be an array of strings, found {}",
                    kind(other)
                )));
            }
            (Some(other), false) => {
                return Err(GnapError::malformed(format!(
                    "{path}.{name} must be a string, found {}",
                    kind(other)
                )));
            }
        }
    }
    Ok(Value::Object(echoed))
}

/// `access` of a request without one.
const NO_ACCESS: &Vec<Value> = &Vec::new();

/// One access token request: its echoed `access` and whether it asks for a bearer token.
fn token_request(
    value: &Value,
    path: &str,
    limits: &GrantLimits,
) -> Result<(Vec<Value>, bool), GnapError> {
    let Value::Object(token) = value else {
        return Err(GnapError::malformed(format!(
            "{path} must be an object (with \"access\" and \"flags\"), found {}",
            kind(value)
        )));
    };
    let access = match token.get("access") {
        None | Some(Value::Null) => NO_ACCESS,
        Some(Value::Array(access)) if access.len() > limits.max_access => {
            return Err(GnapError::malformed(format!(
                "{path}.access has {} entries; this server accepts at most {}",
                access.len(),
                limits.max_access
            )));
        }
        Some(Value::Array(access)) => access,
        Some(other) => {
            return Err(GnapError::malformed(format!(
                "{path}.access must be an array, found {}",
                kind(other)
            )));
        }
    };
    for (i, entry) in access.iter().enumerate() {
        check_entry(entry, &format!("{path}.access[{i}]"), 0, limits)?;
    }
    let echoed = access
        .iter()
        .enumerate()
        .map(|(i, entry)| access_entry(entry, &format!("{path}.access[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let access_bytes = serde_json::to_string(&echoed).map_or(usize::MAX, |text| text.len());
    if access_bytes > limits.max_access_bytes {
        return Err(GnapError::malformed(format!(
            "{path}.access is {access_bytes} bytes as JSON; this server accepts at most {}",
            limits.max_access_bytes
        )));
    }
    let bearer = match token.get("flags") {
        None | Some(Value::Null) => false,
        Some(Value::Array(flags)) => {
            for (i, flag) in flags.iter().enumerate() {
                match flag.as_str() {
                    Some(f) if KNOWN_FLAGS.contains(&f) => {}
                    Some(f) => {
                        return Err(GnapError::malformed(format!(
                            "{path}.flags[{i}] {:?} is not a flag this server knows: use \"bearer\" (and optionally \"durable\")",
                            truncate(f)
                        )));
                    }
                    None => {
                        return Err(GnapError::malformed(format!(
                            "{path}.flags[{i}] must be a string, found {}",
                            kind(flag)
                        )));
                    }
                }
            }
            flags.iter().any(|f| f == "bearer")
        }
        Some(other) => {
            return Err(GnapError::malformed(format!(
                "{path}.flags must be an array of strings, found {}",
                kind(other)
            )));
        }
    };
    match token.get("label") {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(other) => {
            return Err(GnapError::malformed(format!(
                "{path}.label must be a string, found {}",
                kind(other)
            )));
        }
    }
    Ok((echoed, bearer))
}

/// At most 64 characters of a client-supplied string, for descriptions.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// What `client` says, once its schema is checked.
enum ClientShape {
    /// `client.key` is a string: the entity id.
    KeyReference(String),
    /// `client` is a string (a client instance reference).
    ClientReference,
    /// `client.key` is a key object (key by value).
    KeyByValue,
}

/// Checks `client` against SUNET's schema: a string, or an object whose `key` is a string or
/// a key object with a `proof`.
fn client_shape(value: Option<&Value>, limits: &GrantLimits) -> Result<ClientShape, GnapError> {
    let client = match value {
        None | Some(Value::Null) => {
            return Err(GnapError::malformed(
                "client is missing: send \"client\": {\"key\": \"<your entity_id>\"}",
            ));
        }
        Some(Value::String(_)) => return Ok(ClientShape::ClientReference),
        Some(Value::Object(client)) => client,
        Some(other) => {
            return Err(GnapError::malformed(format!(
                "client must be an object with key = your entity_id, found {}",
                kind(other)
            )));
        }
    };
    for (name, allowed) in [("class_id", "a string"), ("display", "an object")] {
        match client.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(_)) if name == "class_id" => {}
            Some(Value::Object(_)) if name == "display" => {}
            Some(other) => {
                return Err(GnapError::malformed(format!(
                    "client.{name} must be {allowed}, found {}",
                    kind(other)
                )));
            }
        }
    }
    match client.get("key") {
        None | Some(Value::Null) => Err(GnapError::malformed(
            "client.key is missing: set it to your entity_id (the key is proven by mutual TLS)",
        )),
        Some(Value::String(key)) if key.len() > limits.max_string => {
            Err(GnapError::malformed(format!(
                "client.key is {} bytes long; this server accepts strings of at most {} bytes",
                key.len(),
                limits.max_string
            )))
        }
        Some(Value::String(key)) => Ok(ClientShape::KeyReference(key.clone())),
        Some(Value::Object(key)) => {
            let method = match key.get("proof") {
                Some(Value::String(method)) => Some(method.as_str()),
                Some(Value::Object(proof)) => proof.get("method").and_then(Value::as_str),
                _ => None,
            };
            match method {
                Some(m) if PROOF_METHODS.contains(&m) => Ok(ClientShape::KeyByValue),
                _ => Err(GnapError::malformed(
                    "client.key as an object needs a proof method (\"proof\": \"mtls\"); \
                     a federation client sends its entity_id as client.key instead",
                )),
            }
        }
        Some(other) => Err(GnapError::malformed(format!(
            "client.key must be your entity_id as a string (keys are proven by mutual TLS), found {}",
            kind(other)
        ))),
    }
}

/// Parses and checks a grant request body: the schema (400 `invalid_request` naming what is
/// wrong), [`GrantLimits`] (400), then the client's shape (401 `request_denied` for a
/// `client` or `client.key` other than an entity id). See the module documentation.
pub fn parse(body: &[u8], limits: &GrantLimits) -> Result<GrantRequest, GnapError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| GnapError::malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(request) = value else {
        return Err(GnapError::malformed(format!(
            "the body must be a JSON object, found {}",
            kind(&value)
        )));
    };
    let (access, bearer, access_tokens) = match request.get("access_token") {
        None | Some(Value::Null) => {
            return Err(GnapError::malformed(
                "access_token is missing: send \"access_token\": {\"access\": [...], \"flags\": [\"bearer\"]}",
            ));
        }
        Some(token @ Value::Object(_)) => {
            let (access, bearer) = token_request(token, "access_token", limits)?;
            (access, bearer, 1)
        }
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(GnapError::malformed(
                "access_token is an empty array: send one access token request",
            ));
        }
        Some(Value::Array(list)) => {
            let mut first = None;
            for (i, token) in list.iter().enumerate() {
                let parsed = token_request(token, &format!("access_token[{i}]"), limits)?;
                first.get_or_insert(parsed);
            }
            let (access, bearer) = first.unwrap_or_default();
            (access, bearer, list.len())
        }
        Some(other) => {
            return Err(GnapError::malformed(format!(
                "access_token must be an object or an array of one object, found {}",
                kind(other)
            )));
        }
    };
    let client = client_shape(request.get("client"), limits)?;
    for (name, allowed, fits) in [
        (
            "subject",
            "an object",
            request.get("subject").is_some_and(Value::is_object),
        ),
        (
            "user",
            "a string or an object",
            request
                .get("user")
                .is_some_and(|u| u.is_object() || u.is_string()),
        ),
        (
            "interact",
            "an object",
            request.get("interact").is_some_and(Value::is_object),
        ),
    ] {
        match request.get(name) {
            None | Some(Value::Null) => {}
            Some(other) if !fits => {
                return Err(GnapError::malformed(format!(
                    "{name} must be {allowed}, found {}",
                    kind(other)
                )));
            }
            Some(_) => {}
        }
    }
    let client_key = match client {
        ClientShape::KeyReference(key) => key,
        ClientShape::ClientReference => {
            return Err(GnapError::denied(
                "client is a string (a client instance reference), which this server does not \
                 know: send \"client\": {\"key\": \"<your entity_id>\"}",
            ));
        }
        ClientShape::KeyByValue => {
            return Err(GnapError::denied(
                "client.key is a key object; this server finds your key in the federation \
                 metadata: send your entity_id as client.key",
            ));
        }
    };
    Ok(GrantRequest {
        access,
        client_key,
        access_tokens,
        bearer,
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
        assert_eq!(Value::Array(a.access.clone()), access);
        assert_eq!((a.access_tokens, a.bearer), (1, true));
        assert!(a.check_token_request().is_ok());
    }

    #[test]
    fn sunet_shapes_parse_and_are_refused_where_sunet_refuses_them() {
        let client = json!({"key": "https://e"});
        // No access, empty access, null access: an empty access list.
        for token in [
            json!({"flags": ["bearer"]}),
            json!({"access": [], "flags": ["bearer"]}),
            json!({"access": null, "flags": ["bearer", "durable"]}),
        ] {
            let g = ok(json!({"access_token": token, "client": client}));
            assert!(g.access.is_empty());
            assert!(g.check_token_request().is_ok());
        }
        // Unknown and null members of access objects are dropped; strings stay.
        let g = ok(json!({"access_token": {"access": [
            {"type": "a", "locations": ["https://x/"], "extra": {"deep": 1}, "actions": null, "scope": "s"},
            "a-reference"], "flags": ["bearer"]}, "client": client, "whatever": 1}));
        assert_eq!(
            Value::Array(g.access),
            json!([{"type": "a", "locations": ["https://x/"], "scope": "s"}, "a-reference"])
        );
        // Checked after authentication: several token requests (401), no bearer flag (400).
        let good = json!({"access": [], "flags": ["bearer"]});
        let g = ok(json!({"access_token": [good, good], "client": client}));
        let e = g.check_token_request().unwrap_err();
        assert_eq!(e.status, http::StatusCode::UNAUTHORIZED);
        assert_eq!(e.code, crate::gnap::ErrorCode::RequestDenied);
        assert!(e.description.contains("2 access token requests"), "{e}");
        for token in [
            json!({"access": []}),
            json!({"flags": []}),
            json!({"flags": ["durable"]}),
        ] {
            let e = ok(json!({"access_token": token, "client": client}))
                .check_token_request()
                .unwrap_err();
            assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
            assert!(e.description.contains("bearer"), "{e}");
        }
        // client as a string, client.key as a key object: 401 request_denied.
        for (client, expected) in [
            (json!("https://e"), "client is a string"),
            (json!({"key": {"proof": "mtls"}}), "key object"),
            (json!({"key": {"proof": {"method": "test"}}}), "key object"),
        ] {
            let body = json!({"access_token": good, "client": client}).to_string();
            let e = parse(body.as_bytes(), &GrantLimits::default()).unwrap_err();
            assert_eq!(e.status, http::StatusCode::UNAUTHORIZED, "{client}");
            assert_eq!(e.code, crate::gnap::ErrorCode::RequestDenied);
            assert!(e.description.contains(expected), "{e}");
        }
        // A malformed part elsewhere is 400 even with a client string.
        let body = json!({"access_token": {"flags": ["nope"]}, "client": "x"}).to_string();
        assert_eq!(
            parse(body.as_bytes(), &GrantLimits::default())
                .unwrap_err()
                .status,
            http::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn every_malformed_part_is_named() {
        let good = json!({"access": [{"type": "t"}], "flags": ["bearer"]});
        let client = json!({"key": "https://e"});
        let cases: Vec<(Value, &str)> = vec![
            (json!([1]), "JSON object"),
            (json!({"client": client}), "access_token is missing"),
            (json!({"access_token": [], "client": client}), "empty array"),
            (
                json!({"access_token": [1], "client": client}),
                "access_token[0] must be an object",
            ),
            (
                json!({"access_token": [good, 1], "client": client}),
                "access_token[1] must be an object",
            ),
            (
                json!({"access_token": "x", "client": client}),
                "array of one object",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}], "flags": "bearer"}, "client": client}),
                "array of strings",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}], "flags": [1]}, "client": client}),
                "flags[0] must be a string",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}], "flags": ["bearer", "foo"]}, "client": client}),
                "flags[1] \"foo\" is not a flag",
            ),
            (
                json!({"access_token": {"access": {}, "flags": ["bearer"]}, "client": client}),
                "must be an array",
            ),
            (
                json!({"access_token": {"access": [{"locations": []}], "flags": ["bearer"]}, "client": client}),
                "access[0].type is missing",
            ),
            (
                json!({"access_token": {"access": [{"type": 7}], "flags": ["bearer"]}, "client": client}),
                "access[0].type must be a string",
            ),
            (
                json!({"access_token": {"access": [{"type": "t", "locations": "https://x"}], "flags": ["bearer"]}, "client": client}),
                "access[0].locations must be an array of strings",
            ),
            (
                json!({"access_token": {"access": [{"type": "t", "actions": [1]}], "flags": ["bearer"]}, "client": client}),
                "access[0].actions must hold strings",
            ),
            (
                json!({"access_token": {"access": [{"type": "t", "identifier": []}], "flags": ["bearer"]}, "client": client}),
                "access[0].identifier must be a string",
            ),
            (
                json!({"access_token": {"access": [{"type": "t"}, 3], "flags": ["bearer"]}, "client": client}),
                "access[1]",
            ),
            (
                json!({"access_token": {"access": [], "flags": ["bearer"], "label": 1}, "client": client}),
                "label must be a string",
            ),
            (json!({"access_token": good}), "client is missing"),
            (
                json!({"access_token": good, "client": 5}),
                "client must be an object",
            ),
            (
                json!({"access_token": good, "client": {}}),
                "client.key is missing",
            ),
            (
                json!({"access_token": good, "client": {"key": {"jwk": {}}}}),
                "proof method",
            ),
            (
                json!({"access_token": good, "client": {"key": 5}}),
                "entity_id as a string",
            ),
            (
                json!({"access_token": good, "client": client, "interact": "redirect"}),
                "interact must be an object",
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
            ("application/gnap+json", true),
            ("application/GNAP+JSON; charset=utf-8", true),
            ("application/+json", false),
            ("text/gnap+json", false),
            ("application/jose", false),
            ("application/jose+json", false),
        ] {
            headers.insert(http::header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(check_content_type(&headers).is_ok(), fine, "{value}");
        }
    }
}
