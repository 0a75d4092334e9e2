//! The access token: a compact JWT, header `{"alg":"ES256","kid":…}` (no `typ`), with the
//! claims Skolverket's authorization server issues.

use fedtls::Entity;
use fedtls::jws::{JwsError, JwsFormat, sign_raw};
use serde_json::{Map, Value};

use super::keys::TokenKeys;

/// `auth_source` of every token: the client was authenticated by the TLS federation.
pub const AUTH_SOURCE: &str = "tlsfed";

/// The token format version (`version` claim).
pub const TOKEN_VERSION: u64 = 1;

/// What goes into one token besides the entity.
#[derive(Debug, Clone)]
pub struct TokenFacts<'a> {
    /// `iss`: this authorization server.
    pub issuer: &'a str,
    /// `aud`, when configured.
    pub audience: Option<&'a str>,
    /// `source`: the federation metadata's `iss`.
    pub source: Option<&'a str>,
    /// Issue time (Unix seconds); also `nbf`.
    pub now: i64,
    /// Seconds until `exp`.
    pub lifetime_secs: i64,
    /// The request's `access`, echoed as `requested_access`.
    pub requested_access: &'a [Value],
}

/// The claims of a token for `entity`, in the documented order. As SUNET's server does, a
/// claim with no value is left out rather than `null`: `aud` without an audience, `source`
/// when the metadata has no `iss`, `organization_id` when the entity has none, and `scopes`
/// when the entity has no saml-scope extension (an extension with no domains gives `[]`).
pub fn claims(entity: &Entity, facts: &TokenFacts<'_>) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), facts.issuer.into());
    if let Some(aud) = facts.audience {
        claims.insert("aud".into(), aud.into());
    }
    claims.insert("iat".into(), facts.now.into());
    claims.insert("nbf".into(), facts.now.into());
    claims.insert(
        "exp".into(),
        facts.now.saturating_add(facts.lifetime_secs).into(),
    );
    claims.insert("version".into(), TOKEN_VERSION.into());
    claims.insert("auth_source".into(), AUTH_SOURCE.into());
    if let Some(source) = facts.source {
        claims.insert("source".into(), source.into());
    }
    claims.insert("entity_id".into(), entity.entity_id.clone().into());
    if let Some(id) = &entity.organization_id {
        claims.insert("organization_id".into(), id.as_str().into());
    }
    let has_scope_extension = entity
        .extensions
        .as_ref()
        .is_some_and(|e| e.contains_key(fedtls::metadata::SAML_SCOPE_EXTENSION));
    if has_scope_extension {
        claims.insert(
            "scopes".into(),
            Value::Array(entity.scopes.iter().cloned().map(Value::String).collect()),
        );
    }
    claims.insert(
        "requested_access".into(),
        Value::Array(facts.requested_access.to_vec()),
    );
    claims
}

/// Signs `claims` with the current signing key as a compact JWS (a JWT).
pub fn sign(keys: &TokenKeys, claims: &Map<String, Value>) -> Result<String, JwsError> {
    let payload =
        serde_json::to_vec(claims).map_err(|e| JwsError::Sign(format!("token claims: {e}")))?;
    sign_raw(
        &payload,
        &[(keys.signing_key(), Map::new())],
        JwsFormat::Compact,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedtls::jwk::{Algorithm, SigningKey};
    use serde_json::json;

    fn b64url_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text)
    }

    #[test]
    fn header_has_alg_and_kid_only_and_claims_are_complete() {
        let keys = TokenKeys::new(
            SigningKey::generate(Algorithm::Es256, "k1").unwrap(),
            vec![],
        )
        .unwrap();
        let entity = Entity {
            entity_id: "https://e".into(),
            organization: Some("Org".into()),
            organization_id: Some("SE2120009999".parse().unwrap()),
            issuers: vec![],
            servers: vec![],
            clients: vec![],
            scopes: vec!["a.example".into()],
            extensions: Some(
                json!({(fedtls::metadata::SAML_SCOPE_EXTENSION): {"scope": ["a.example"]}})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
            extra: Map::new(),
        };
        let access = [json!({"type": "provisioning-api"})];
        let facts = TokenFacts {
            issuer: "https://as",
            audience: None,
            source: Some("https://fed"),
            now: 1000,
            lifetime_secs: 36000,
            requested_access: &access,
        };
        let token = sign(&keys, &claims(&entity, &facts)).unwrap();
        let parts: Vec<_> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&b64url_decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": "k1"}));
        let body: Value = serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"iss": "https://as", "iat": 1000, "nbf": 1000, "exp": 37000, "version": 1,
                   "auth_source": "tlsfed", "source": "https://fed", "entity_id": "https://e",
                   "organization_id": "SE2120009999", "scopes": ["a.example"],
                   "requested_access": [{"type": "provisioning-api"}]})
        );
        let signature = b64url_decode(parts[2]).unwrap();
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        assert!(keys.published()[0].verify(Algorithm::Es256, signing_input.as_bytes(), &signature));
        let with_aud = TokenFacts {
            audience: Some("https://api"),
            ..facts
        };
        assert_eq!(claims(&entity, &with_aud)["aud"], "https://api");
        // Nothing to say, no claim: no scope extension, no organization_id, no source.
        let bare = Entity {
            organization_id: None,
            scopes: vec![],
            extensions: None,
            ..entity
        };
        let none = claims(
            &bare,
            &TokenFacts {
                source: None,
                ..facts
            },
        );
        for name in ["scopes", "organization_id", "source", "aud"] {
            assert!(!none.contains_key(name), "{name}");
        }
    }
}
