//! Lenient parsing of a verified payload.
//!
//! The document shell (`version`, `entities`, claims) must be right or the whole document is
//! refused. Each entity is then parsed on its own from its raw JSON text: a malformed entity is
//! left out with a diagnostic naming its index, `entity_id` and the member path, and every other
//! entity stays usable.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use serde::de::{self, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::model::{Endpoint, Entity, Issuer, Metadata, RejectedEntity, SAML_SCOPE_EXTENSION};
use crate::claims::{Claims, ClaimsError};
use crate::der;
use crate::encoding::{b64_decode, pem_decode};
use crate::names::{OrganizationId, Tag};
use crate::pin::{Pin, truncate_for_message};

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

/// Best-effort `entity_id` of an entity that failed to parse, for its diagnostic.
fn entity_id_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        entity_id: Option<Value>,
    }
    match serde_json::from_str::<IdOnly>(text) {
        Ok(IdOnly {
            entity_id: Some(Value::String(id)),
        }) if !id.is_empty() => Some(id),
        _ => None,
    }
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

/// serde_json appends " at line L column C"; the member path says more, so drop it.
fn strip_position(message: &str) -> String {
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
fn nested<E: de::Error>(path: impl fmt::Display, err: E) -> E {
    E::custom(format_args!("{path}: {}", strip_position(&err.to_string())))
}

/// Known members already seen in one JSON object, one bit each, to refuse duplicates
/// (serde_json would silently keep the last) without allocating per object.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    fn mark<E: de::Error>(&mut self, bit: u16, key: &str) -> Result<(), E> {
        if self.0 & bit != 0 {
            return Err(duplicate(key));
        }
        self.0 |= bit;
        Ok(())
    }
}

fn duplicate<E: de::Error>(key: &str) -> E {
    E::custom(format_args!(
        "duplicate member {:?}",
        truncate_for_message(key)
    ))
}

/// Keeps an unknown member verbatim, refusing a second member of the same name.
fn keep_unknown<'de, A: MapAccess<'de>>(
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

/// A JSON array whose element errors are prefixed with `[index]`.
struct Indexed<T>(Vec<T>);

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
                        Ok(None) => return Ok(Indexed(out)),
                        Err(err) => return Err(nested(format_args!("[{index}]"), err)),
                    }
                }
            }
        }
        deserializer.deserialize_seq(IndexedVisitor(PhantomData))
    }
}

/// Reads an optional string member, treating `null` as absent.
fn optional_string<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: &str,
) -> Result<Option<String>, A::Error> {
    map.next_value::<Option<String>>()
        .map_err(|e| nested(key, e))
}

/// Reads an array member, prefixing errors with the member name (`servers[2]: …`).
fn array_member<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
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
fn join_path(inner: &str) -> Cow<'_, str> {
    if inner.starts_with('[') {
        Cow::Borrowed(inner)
    } else {
        Cow::Owned(format!(": {inner}"))
    }
}

impl<'de> Deserialize<'de> for Entity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntityVisitor;
        impl<'de> Visitor<'de> for EntityVisitor {
            type Value = Entity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entity object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entity, A::Error> {
                let mut entity_id = None;
                let mut organization = None;
                let mut organization_id = None;
                let mut issuers = None;
                let mut servers = Vec::new();
                let mut clients = Vec::new();
                let mut extensions: Option<Map<String, Value>> = None;
                let mut extra = Map::new();
                let mut seen = Seen::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "entity_id" => {
                            seen.mark(1, &key)?;
                            entity_id = optional_string(&mut map, "entity_id")?;
                        }
                        "organization" => {
                            seen.mark(2, &key)?;
                            organization = optional_string(&mut map, "organization")?;
                        }
                        "organization_id" => {
                            seen.mark(4, &key)?;
                            organization_id = map
                                .next_value::<Option<OrganizationId>>()
                                .map_err(|e| nested("organization_id", e))?;
                        }
                        "issuers" => {
                            seen.mark(8, &key)?;
                            issuers = Some(array_member::<A, Issuer>(&mut map, "issuers")?);
                        }
                        "servers" => {
                            seen.mark(16, &key)?;
                            servers = array_member::<A, Endpoint>(&mut map, "servers")?;
                        }
                        "clients" => {
                            seen.mark(32, &key)?;
                            clients = array_member::<A, Endpoint>(&mut map, "clients")?;
                        }
                        "extensions" => {
                            seen.mark(64, &key)?;
                            extensions = map
                                .next_value::<Option<Map<String, Value>>>()
                                .map_err(|e| nested("extensions", e))?;
                        }
                        _ => keep_unknown(&mut map, &mut extra, key)?,
                    }
                }
                let entity_id = match entity_id {
                    Some(id) if !id.is_empty() => id,
                    Some(_) => return Err(A::Error::custom("entity_id is empty")),
                    None => return Err(A::Error::custom("entity_id is required")),
                };
                let issuers = issuers.ok_or_else(|| {
                    A::Error::custom("issuers is required (it may be an empty array)")
                })?;
                for (i, server) in servers.iter().enumerate() {
                    if server.base_uri.is_none() {
                        return Err(A::Error::custom(format_args!(
                            "servers[{i}]: base_uri is required for a server"
                        )));
                    }
                }
                let scopes = match &extensions {
                    Some(ext) => saml_scopes(ext).map_err(A::Error::custom)?,
                    None => Vec::new(),
                };
                Ok(Entity {
                    entity_id,
                    organization,
                    organization_id,
                    issuers,
                    servers,
                    clients,
                    scopes,
                    extensions,
                    extra,
                })
            }
        }
        deserializer.deserialize_map(EntityVisitor)
    }
}

/// Reads the saml-scope extension's domains; a present but malformed extension is an error.
fn saml_scopes(extensions: &Map<String, Value>) -> Result<Vec<String>, String> {
    let Some(ext) = extensions.get(SAML_SCOPE_EXTENSION) else {
        return Ok(Vec::new());
    };
    let path = format!("extensions[{SAML_SCOPE_EXTENSION:?}]");
    let scope = ext
        .as_object()
        .and_then(|o| o.get("scope"))
        .ok_or_else(|| format!("{path}: must be an object with a \"scope\" array"))?;
    let items = scope.as_array().ok_or_else(|| {
        format!(
            "{path}.scope: must be an array, found {}",
            crate::json::kind(scope)
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_str() {
            Some(domain) if !domain.is_empty() => Ok(domain.to_owned()),
            _ => Err(format!("{path}.scope[{i}]: must be a non-empty DNS name")),
        })
        .collect()
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IssuerVisitor;
        impl<'de> Visitor<'de> for IssuerVisitor {
            type Value = Issuer;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an issuer object {\"x509certificate\": PEM}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Issuer, A::Error> {
                let mut certificate = None;
                let mut extra = Map::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "x509certificate" {
                        if certificate.is_some() {
                            return Err(duplicate(&key));
                        }
                        let raw = map.next_value::<&'de RawValue>()?;
                        certificate = Some(decode_issuer_json(raw.get()).map_err(|why| {
                            A::Error::custom(format_args!("x509certificate: {why}"))
                        })?);
                    } else {
                        keep_unknown(&mut map, &mut extra, key)?;
                    }
                }
                let certificate =
                    certificate.ok_or_else(|| A::Error::custom("x509certificate is required"))?;
                Ok(Issuer { certificate, extra })
            }
        }
        deserializer.deserialize_map(IssuerVisitor)
    }
}

/// Decodes an issuer certificate from the raw JSON text of the `x509certificate` member.
///
/// Aggregates embed thousands of PEM certificates, so the usual shape (a PEM block whose
/// line breaks are JSON `\n` escapes) is decoded in one pass straight from the JSON text;
/// anything else goes through the general path.
fn decode_issuer_json(raw: &str) -> Result<CertificateDer<'static>, String> {
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        let kind =
            serde_json::from_str::<Value>(raw).map_or("not a string", |v| crate::json::kind(&v));
        return Err(format!("must be a PEM string, found {kind}"));
    };
    if let Some(der) = fast_pem_from_json(inner.as_bytes()) {
        der::certificate_parts(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        return Ok(der);
    }
    let text: String = serde_json::from_str(raw).map_err(|e| strip_position(&e.to_string()))?;
    decode_issuer_certificate(&text)
}

/// The common case only: `-----BEGIN CERTIFICATE-----`, base64 lines separated by JSON
/// escapes or whitespace, `-----END CERTIFICATE-----`. `None` sends the input to the
/// general path, which also produces the error messages.
fn fast_pem_from_json(json_text: &[u8]) -> Option<CertificateDer<'static>> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut rest = json_text.strip_prefix(BEGIN)?;
    let mut compact = Vec::with_capacity(rest.len());
    loop {
        // Copy the run of base64 up to the next separator in one go.
        let run = rest
            .iter()
            .position(|&b| matches!(b, b'\\' | b' ' | b'\t' | b'-'))
            .unwrap_or(rest.len());
        compact.extend_from_slice(&rest[..run]);
        rest = &rest[run..];
        match rest {
            [b'\\', b'n' | b'r' | b't', tail @ ..] | [b' ' | b'\t', tail @ ..] => rest = tail,
            [b'\\', b'/', tail @ ..] => {
                compact.push(b'/');
                rest = tail;
            }
            [b'-', ..] => break,
            _ => return None,
        }
    }
    // After the END line only escaped line breaks and whitespace may follow.
    let mut after = rest.strip_prefix(END)?;
    loop {
        match after {
            [] => break,
            [b'\\', b'n' | b'r' | b't', tail @ ..] | [b' ' | b'\t', tail @ ..] => after = tail,
            _ => return None,
        }
    }
    b64_decode(&compact).ok().map(CertificateDer::from)
}

/// Decodes an issuer's PEM (or, leniently, bare base64 DER) and checks the X.509 framing.
fn decode_issuer_certificate(pem: &str) -> Result<CertificateDer<'static>, String> {
    let der = if pem.contains("-----BEGIN") {
        CertificateDer::from(
            pem_decode(pem, "CERTIFICATE")
                .ok_or("not a PEM certificate (no decodable CERTIFICATE block)")?,
        )
    } else {
        let compact: String = pem.split_ascii_whitespace().collect();
        CertificateDer::from(
            b64_decode(compact).map_err(|_| "neither PEM nor base64 DER".to_owned())?,
        )
    };
    der::certificate_parts(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(der)
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EndpointVisitor;
        impl<'de> Visitor<'de> for EndpointVisitor {
            type Value = Endpoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an endpoint object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Endpoint, A::Error> {
                let mut endpoint = Endpoint {
                    description: None,
                    base_uri: None,
                    pins: Vec::new(),
                    tags: Vec::new(),
                    extra: Map::new(),
                };
                let mut pins = None;
                let mut seen = Seen::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "description" => {
                            seen.mark(1, &key)?;
                            endpoint.description = optional_string(&mut map, "description")?;
                        }
                        "base_uri" => {
                            seen.mark(2, &key)?;
                            endpoint.base_uri = optional_string(&mut map, "base_uri")?;
                        }
                        "pins" => {
                            seen.mark(4, &key)?;
                            pins = Some(
                                array_member::<A, PinEntry>(&mut map, "pins")?
                                    .into_iter()
                                    .map(|p| p.0)
                                    .collect(),
                            );
                        }
                        "tags" => {
                            seen.mark(8, &key)?;
                            endpoint.tags = array_member::<A, Tag>(&mut map, "tags")?;
                        }
                        _ => keep_unknown(&mut map, &mut endpoint.extra, key)?,
                    }
                }
                endpoint.pins = pins.ok_or_else(|| A::Error::custom("pins is required"))?;
                Ok(endpoint)
            }
        }
        deserializer.deserialize_map(EndpointVisitor)
    }
}

/// A pin object: `{alg, digest}`, or the legacy `{name, value}`.
struct PinEntry(Pin);

impl<'de> Deserialize<'de> for PinEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PinVisitor;
        impl<'de> Visitor<'de> for PinVisitor {
            type Value = PinEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pin object {\"alg\": \"sha256\", \"digest\": BASE64}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PinEntry, A::Error> {
                let mut alg: Option<Cow<'de, str>> = None;
                let mut digest: Option<Cow<'de, str>> = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "alg" | "name" if alg.is_none() => {
                            alg = Some(map.next_value().map_err(|e| nested(&key, e))?);
                        }
                        "digest" | "value" if digest.is_none() => {
                            digest = Some(map.next_value().map_err(|e| nested(&key, e))?);
                        }
                        "alg" | "name" | "digest" | "value" => {
                            return Err(A::Error::custom(
                                "duplicate member, or {alg, digest} mixed with the legacy {name, value}",
                            ));
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let digest = digest.ok_or_else(|| A::Error::custom("digest is required"))?;
                // SHA-256 is the only defined pin algorithm; a missing alg can only mean it.
                let pin = Pin::parse_with_alg(alg.as_deref().unwrap_or("sha256"), &digest)
                    .map_err(A::Error::custom)?;
                Ok(PinEntry(pin))
            }
        }
        deserializer.deserialize_map(PinVisitor)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <Cow<'de, str>>::deserialize(deserializer)?;
        Tag::new(&text).map_err(de::Error::custom)
    }
}

/// Why one entity object could not be parsed ([`parse_entity_json`]).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct EntityParseError {
    /// The entity's `entity_id`, when it had a readable one.
    pub entity_id: Option<String>,
    /// What was wrong, with the member path inside the entity (as in
    /// [`RejectedEntity::reason`]).
    pub reason: String,
    /// The JSON error (with the line and column in `text`).
    #[source]
    pub source: serde_json::Error,
}

/// Lets callers parse one entity object on its own (for example a member's upload), with
/// the same rules as an entity of a document.
pub fn parse_entity_json(text: &str) -> Result<Entity, EntityParseError> {
    serde_json::from_str::<Entity>(text).map_err(|source| EntityParseError {
        entity_id: entity_id_of(text),
        reason: strip_position(&source.to_string()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
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
    fn issuer_pem_fast_path_agrees_with_the_general_path() {
        let pem = String::from_utf8(fixture("certs/interop-sis-client.pem")).unwrap();
        let der = decode_issuer_certificate(&pem).unwrap();
        let variants = [
            pem.clone(),
            pem.replace('\n', "\r\n"),
            pem.replace('\n', "\n  "),
            format!("\n{pem}"),
            pem.trim_end().to_owned(),
        ];
        for text in &variants {
            let json = serde_json::to_string(text).unwrap();
            assert_eq!(decode_issuer_json(&json).unwrap(), der, "{json}");
        }
        // Escaped slashes, as some serializers write them.
        let json = serde_json::to_string(&pem).unwrap().replace('/', "\\/");
        assert!(json.contains("\\/"));
        assert_eq!(decode_issuer_json(&json).unwrap(), der);
        assert!(fast_pem_from_json(&json.as_bytes()[1..json.len() - 1]).is_some());
        // Bare base64 DER goes through the general path.
        let bare = serde_json::to_string(&crate::encoding::b64_encode(&der)).unwrap();
        assert_eq!(decode_issuer_json(&bare).unwrap(), der);

        let err = decode_issuer_json("42").unwrap_err();
        assert_eq!(err, "must be a PEM string, found a number");
        let truncated =
            serde_json::to_string(&pem.replace("-----END CERTIFICATE-----", "")).unwrap();
        assert!(decode_issuer_json(&truncated).is_err());
        let mut bad_body = pem.clone();
        bad_body.replace_range(40..44, "!!!!");
        assert!(decode_issuer_json(&serde_json::to_string(&bad_body).unwrap()).is_err());
        let after_end = format!("{pem}trailing");
        assert_eq!(
            fast_pem_from_json(
                serde_json::to_string(&after_end)
                    .unwrap()
                    .trim_matches('"')
                    .as_bytes()
            ),
            None
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
