//! Lenient parsing of a verified payload.
//!
//! The document shell (`version`, `entities`, claims) must be right or the whole document is
//! refused. Each entity is then parsed on its own from its raw JSON text: a malformed entity is
//! left out with a diagnostic naming its index, `entity_id` and the member path, and every other
//! entity stays usable.
//!
//! This module reads the shell; [`entity`] reads one entity; `members` holds the helpers both
//! use to name member paths in errors and refuse duplicate members.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

mod entity;
mod members;

pub use entity::{EntityParseError, parse_entity_json};

use super::model::{Entity, Metadata, RejectedEntity};
use crate::claims::{Claims, ClaimsError};
use crate::pin::truncate_for_message;
use members::{Seen, keep_unknown, strip_position};

/// Why a payload was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The payload bytes are not UTF-8.
    #[error("the signed payload is not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
    /// The payload is not JSON, or its top level is not an object of the expected shape.
    #[error("the signed payload is not a JSON metadata object: {0}")]
    NotJson(String),
    /// `version` is absent.
    #[error("the payload has no \"version\" member (required, e.g. \"1.0.0\")")]
    MissingVersion,
    /// `version` is not a semantic version string.
    #[error("\"version\" must be a semantic version like \"1.0.0\", found {0}")]
    BadVersion(String),
    /// `entities` is absent.
    #[error("the payload has no \"entities\" member (required, an array)")]
    MissingEntities,
    /// `entities` is not an array.
    #[error("\"entities\" must be an array, found {0}")]
    EntitiesNotArray(&'static str),
    /// A payload claim has the wrong type.
    #[error("payload claim: {0}")]
    Claims(#[from] ClaimsError),
}

/// The document shell, with entities still as raw JSON text.
struct Shell<'a> {
    version: Option<Value>,
    cache_ttl: Option<Value>,
    claims: Map<String, Value>,
    entities: Option<Result<Vec<&'a RawValue>, &'static str>>,
    extra: Map<String, Value>,
}

/// Parses a payload: refuses it for a bad shell, leaves out bad entities with diagnostics.
///
/// Entity parsing is spread over up to `threads` threads (1 parses inline).
pub fn parse_payload(payload: &[u8], threads: usize) -> Result<Metadata, DocumentError> {
    let text = std::str::from_utf8(payload).map_err(|e| DocumentError::NotUtf8(e.valid_up_to()))?;
    let shell: Shell<'_> = serde_json::from_str(text)
        .map_err(|e| DocumentError::NotJson(strip_position(&e.to_string())))?;

    let version = match shell.version {
        None => return Err(DocumentError::MissingVersion),
        Some(Value::String(v)) if is_semver(&v) => v,
        Some(other) => {
            return Err(DocumentError::BadVersion(truncate_for_message(
                &other.to_string(),
            )));
        }
    };
    let raw_entities = match shell.entities {
        None => return Err(DocumentError::MissingEntities),
        Some(Err(kind)) => return Err(DocumentError::EntitiesNotArray(kind)),
        Some(Ok(raw)) => raw,
    };
    let claims = Claims::from_json_object(&shell.claims)?;

    let mut warnings = Vec::new();
    let cache_ttl = match shell.cache_ttl {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            warnings.push(format!(
                "\"cache_ttl\" must be a non-negative integer, found {}; ignored",
                truncate_for_message(&other.to_string())
            ));
            None
        }
    };

    let parsed = parse_entities(&raw_entities, threads);
    let mut entities = Vec::with_capacity(parsed.len());
    let mut rejected = Vec::new();
    let mut seen_ids: HashSet<&str> = HashSet::with_capacity(parsed.len());
    let mut duplicate_of = Vec::new();
    for (index, result) in parsed.iter().enumerate() {
        if let Ok(entity) = result
            && !seen_ids.insert(entity.entity_id.as_str())
        {
            duplicate_of.push(index);
        }
    }
    drop(seen_ids);
    let mut duplicates = duplicate_of.into_iter().peekable();
    for (index, result) in parsed.into_iter().enumerate() {
        match result {
            Ok(entity) if duplicates.peek() == Some(&index) => {
                duplicates.next();
                rejected.push(RejectedEntity {
                    index,
                    reason: format!(
                        "duplicate entity_id {:?}: an earlier entity has it (the first is kept)",
                        entity.entity_id
                    ),
                    entity_id: Some(entity.entity_id),
                });
            }
            Ok(entity) => entities.push(entity),
            Err(problem) => rejected.push(RejectedEntity {
                index,
                entity_id: problem.entity_id,
                reason: problem.reason,
            }),
        }
    }

    Ok(Metadata {
        version,
        cache_ttl,
        claims,
        entities,
        rejected,
        warnings,
        extra: shell.extra,
    })
}

/// Why one entity was left out.
#[derive(Debug)]
struct EntityProblem {
    entity_id: Option<String>,
    reason: String,
}

fn parse_entities(raw: &[&RawValue], threads: usize) -> Vec<Result<Entity, EntityProblem>> {
    let threads = threads.clamp(1, 16);
    // Below this many entities a thread costs more than it saves.
    const MIN_PER_THREAD: usize = 256;
    if threads == 1 || raw.len() < 2 * MIN_PER_THREAD {
        return raw.iter().map(|r| parse_entity(r.get())).collect();
    }
    let chunk = raw.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut chunks = raw.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|r| parse_entity(r.get()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out: Vec<_> = first.iter().map(|r| parse_entity(r.get())).collect();
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        out
    })
}

fn parse_entity(text: &str) -> Result<Entity, EntityProblem> {
    parse_entity_json(text).map_err(|err| EntityProblem {
        entity_id: err.entity_id,
        reason: err.reason,
    })
}

/// True for `^\d+\.\d+\.\d+$`.
fn is_semver(text: &str) -> bool {
    let mut parts = 0;
    for part in text.split('.') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        parts += 1;
    }
    parts == 3
}

impl<'de> Deserialize<'de> for Shell<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShellVisitor;
        impl<'de> Visitor<'de> for ShellVisitor {
            type Value = Shell<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object with \"version\" and \"entities\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut shell = Shell {
                    version: None,
                    cache_ttl: None,
                    claims: Map::new(),
                    entities: None,
                    extra: Map::new(),
                };
                let mut seen = Seen::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "version" => {
                            seen.mark(1, &key)?;
                            shell.version = Some(map.next_value()?);
                        }
                        "cache_ttl" => {
                            seen.mark(2, &key)?;
                            shell.cache_ttl = Some(map.next_value()?);
                        }
                        "iat" | "exp" | "nbf" | "iss" => {
                            keep_unknown(&mut map, &mut shell.claims, key)?
                        }
                        "entities" => {
                            seen.mark(4, &key)?;
                            shell.entities = Some(map.next_value::<RawEntities<'de>>()?.0);
                        }
                        _ => keep_unknown(&mut map, &mut shell.extra, key)?,
                    }
                }
                Ok(shell)
            }
        }
        deserializer.deserialize_map(ShellVisitor)
    }
}

/// The `entities` member: each element's raw text, or the kind of value found instead.
struct RawEntities<'a>(Result<Vec<&'a RawValue>, &'static str>);

impl<'de> Deserialize<'de> for RawEntities<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawEntitiesVisitor;
        impl<'de> Visitor<'de> for RawEntitiesVisitor {
            type Value = RawEntities<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of entities")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(raw) = seq.next_element::<&'de RawValue>()? {
                    out.push(raw);
                }
                Ok(RawEntities(Ok(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(RawEntities(Err("an object")))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawEntities(Err("a string")))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawEntities(Err("a boolean")))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawEntities(Err("a number")))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawEntities(Err("a number")))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawEntities(Err("a number")))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawEntities(Err("null")))
            }
        }
        deserializer.deserialize_any(RawEntitiesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::model::SAML_SCOPE_EXTENSION;

    pub(super) fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../fixtures/interop/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn parses_the_interop_payload() {
        let md = parse_payload(&fixture("metadata.json"), 1).unwrap();
        assert_eq!(md.version, "1.0.0");
        assert_eq!(md.cache_ttl, Some(3600));
        assert_eq!(md.entities.len(), 4);
        assert!(md.rejected.is_empty());
        let angelholm = &md.entities[3];
        assert_eq!(angelholm.organization.as_deref(), Some("Ängelholms kommun"));
        assert_eq!(
            angelholm.scopes,
            ["interop-angelholm.example", "skola.angelholm.example"]
        );
        assert!(
            angelholm
                .extra
                .contains_key("extension_field_from_the_future")
        );
        assert_eq!(md.entities[1].servers.len(), 2);
        assert_eq!(md.entities[1].servers[0].tags.len(), 2);
    }

    #[test]
    fn round_trip_keeps_unknown_members() {
        let md = parse_payload(&fixture("metadata.json"), 1).unwrap();
        let text = serde_json::to_vec(&md).unwrap();
        let again = parse_payload(&text, 1).unwrap();
        assert_eq!(md, again);
        let value: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            value["entities"][3]["extension_field_from_the_future"]["anything"],
            serde_json::json!([1, 2, 3])
        );
    }

    fn entity_reason(entity: Value) -> String {
        let doc = serde_json::json!({"version": "1.0.0", "entities": [entity]});
        let md = parse_payload(doc.to_string().as_bytes(), 1).unwrap();
        assert!(md.entities.is_empty(), "entity should be rejected");
        md.rejected[0].reason.clone()
    }

    #[test]
    fn entity_problems_name_the_member_path() {
        let reason = entity_reason(serde_json::json!({
            "entity_id": "https://x.example", "issuers": [],
            "clients": [{"pins": [{"alg": "sha256", "digest": "AAAA"}]}]
        }));
        assert!(
            reason.starts_with("clients[0]: pins[0]: not a SHA-256 pin"),
            "{reason}"
        );

        let reason = entity_reason(serde_json::json!({
            "entity_id": "https://x.example", "issuers": [],
            "servers": [{"pins": [], "tags": ["ok", "Not-OK"]}]
        }));
        assert!(
            reason.starts_with("servers[0]: tags[1]: invalid tag"),
            "{reason}"
        );

        let reason = entity_reason(serde_json::json!({
            "entity_id": "https://x.example", "issuers": [], "servers": [{"pins": []}]
        }));
        assert_eq!(reason, "servers[0]: base_uri is required for a server");

        let reason = entity_reason(serde_json::json!({"entity_id": "https://x.example"}));
        assert!(reason.contains("issuers is required"), "{reason}");

        let reason = entity_reason(serde_json::json!({
            "entity_id": "https://x.example", "issuers": [{"x509certificate": "garbage"}]
        }));
        assert!(
            reason.starts_with("issuers[0]: x509certificate:"),
            "{reason}"
        );

        let reason = entity_reason(serde_json::json!({
            "entity_id": "https://x.example", "issuers": [],
            "extensions": {SAML_SCOPE_EXTENSION: {"scope": "one.example"}}
        }));
        assert!(reason.contains(".scope: must be an array"), "{reason}");

        let reason = entity_reason(serde_json::json!({"entity_id": 7, "issuers": []}));
        assert!(reason.starts_with("entity_id: invalid type"), "{reason}");
    }

    #[test]
    fn organization_ids_are_typed_and_liberal() {
        let parse = |id: serde_json::Value| {
            let doc = serde_json::json!({"version": "1.0.0", "entities": [
                {"entity_id": "https://x.example", "organization_id": id, "issuers": []}
            ]});
            parse_payload(doc.to_string().as_bytes(), 1).unwrap()
        };
        for id in ["SE2021004185", "NO 987 654 321", "urn:example:org:7"] {
            let md = parse(serde_json::json!(id));
            assert_eq!(md.entities[0].organization_id.as_ref().unwrap(), id);
        }
        assert!(
            parse(serde_json::Value::Null).entities[0]
                .organization_id
                .is_none()
        );
        for bad in [
            serde_json::json!(""),
            serde_json::json!("SE\n1"),
            serde_json::json!(7),
        ] {
            let md = parse(bad.clone());
            assert!(md.entities.is_empty(), "{bad}");
            assert!(
                md.rejected[0].reason.starts_with("organization_id: "),
                "{}",
                md.rejected[0].reason
            );
        }
    }

    #[test]
    fn one_entity_parses_alone_and_keeps_the_json_error() {
        let entity = parse_entity_json(r#"{"entity_id": "https://a.example", "issuers": []}"#);
        assert_eq!(entity.unwrap().entity_id, "https://a.example");
        let err = parse_entity_json(r#"{"entity_id": "https://a.example"}"#).unwrap_err();
        assert_eq!(err.entity_id.as_deref(), Some("https://a.example"));
        assert!(err.to_string().contains("issuers is required"), "{err}");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("line 1"), "{source}");
    }

    #[test]
    fn duplicate_members_refuse_the_entity() {
        let doc = r#"{"version":"1.0.0","entities":[{"entity_id":"https://a","entity_id":"https://b","issuers":[]}]}"#;
        let md = parse_payload(doc.as_bytes(), 1).unwrap();
        assert_eq!(md.rejected.len(), 1);
        assert!(
            md.rejected[0].reason.contains("duplicate member"),
            "{:?}",
            md.rejected
        );
    }

    #[test]
    fn legacy_pin_form_is_accepted() {
        let doc = serde_json::json!({"version": "1.0.0", "entities": [{
            "entity_id": "https://x.example", "issuers": [],
            "clients": [{"pins": [{"name": "sha256", "value": "lz6QwPv/28pGG18Xjcf1V3T2EMk30dzgwTUJUg957Fs="}]}]
        }]});
        let md = parse_payload(doc.to_string().as_bytes(), 1).unwrap();
        assert_eq!(
            md.entities[0].clients[0].pins[0].to_string(),
            "lz6QwPv/28pGG18Xjcf1V3T2EMk30dzgwTUJUg957Fs="
        );
    }

    #[test]
    fn shell_problems_refuse_the_document() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "not a JSON"),
            (b"[]", "not a JSON"),
            (br#"{"entities": []}"#, "no \"version\""),
            (br#"{"version": "one", "entities": []}"#, "semantic version"),
            (br#"{"version": "1.0.0"}"#, "no \"entities\""),
            (
                br#"{"version": "1.0.0", "entities": {}}"#,
                "must be an array, found an object",
            ),
            (
                br#"{"version": "1.0.0", "version": "1.0.0", "entities": []}"#,
                "duplicate member",
            ),
        ];
        for (input, expected) in cases {
            let err = parse_payload(input, 1).unwrap_err().to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
        assert!(matches!(
            parse_payload(&[0xff, 0xfe], 1),
            Err(DocumentError::NotUtf8(0))
        ));
    }

    #[test]
    fn parallel_and_serial_parsing_agree() {
        let md = parse_payload(&fixture("metadata.json"), 1).unwrap();
        let mut doc: Value = serde_json::from_slice(&fixture("metadata.json")).unwrap();
        let template = doc["entities"][0].clone();
        let entities = doc["entities"].as_array_mut().unwrap();
        for i in 0..1000 {
            let mut e = template.clone();
            e["entity_id"] = Value::String(format!("https://e{i}.example"));
            if i % 97 == 0 {
                e["issuers"] = Value::Null;
            }
            entities.push(e);
        }
        let text = doc.to_string();
        let serial = parse_payload(text.as_bytes(), 1).unwrap();
        let parallel = parse_payload(text.as_bytes(), 4).unwrap();
        assert_eq!(serial, parallel);
        assert_eq!(serial.entities.len() + serial.rejected.len(), 1004);
        assert_eq!(serial.rejected.len(), 11);
        assert_eq!(md.entities[0], serial.entities[0]);
    }
}
