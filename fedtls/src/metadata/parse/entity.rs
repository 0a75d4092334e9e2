//! One entity object, parsed on its own (each entity of a document, or a member's upload):
//! its issuers, servers and clients, with every member path in its errors.

use std::borrow::Cow;
use std::fmt;

use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use serde::de::{self, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use serde_json::value::RawValue;

use super::members::{
    Seen, array_member, duplicate, keep_unknown, nested, optional_string, strip_position,
};
use crate::der;
use crate::encoding::{b64_decode, pem_decode};
use crate::metadata::model::{Endpoint, Entity, Issuer, SAML_SCOPE_EXTENSION};
use crate::names::{OrganizationId, Tag};
use crate::pin::Pin;

/// Best-effort `entity_id` of an entity that failed to parse, for its diagnostic.
pub(super) fn entity_id_of(text: &str) -> Option<String> {
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
    /// [`RejectedEntity::reason`](crate::metadata::RejectedEntity::reason)).
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
    use crate::metadata::parse::tests::fixture;

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
}
