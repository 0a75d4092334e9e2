//! Synthetic aggregates of many entities, for benchmarks and load tests.

use rcgen::KeyPair;
use serde_json::{Map, Value};

use crate::jwk::{Algorithm, Jwks, SigningKey};
use crate::jws::{JwsFormat, SignOptions, sign_metadata};
use crate::metadata::{Endpoint, Entity, Issuer, Metadata};
use crate::names::{OrganizationId, Tag};
use crate::pin::Pin;

use super::certs::{leaf_params, self_signed};
use super::{CertValidity, TestFedError};

/// A synthetic aggregate of `entities` realistic entities, for benchmarks and load tests.
///
/// Each entity has an organization and id, two issuer certificates (real ones, drawn from a
/// small pool), one server with two tags and `clients_per_entity` clients, each with a unique
/// pin. Around 2 KB of JSON per entity, like a real Moa aggregate.
pub fn synthetic_metadata(
    entities: usize,
    clients_per_entity: usize,
) -> Result<Metadata, TestFedError> {
    let (window, _) = CertValidity::Relative { days: 365 }.windows(crate::verify::unix_now())?;
    let pool = (0..16)
        .map(|i| {
            let params = leaf_params(
                &format!("synthetic-issuer-{i}"),
                "Syntetiska kommunen",
                "localhost",
                window,
            )?;
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            Ok(self_signed(params, (key, true))?.der)
        })
        .collect::<Result<Vec<_>, TestFedError>>()?;
    let mut counter = 0u64;
    let mut next_pin = || {
        counter += 1;
        Pin::of_spki(&counter.to_be_bytes())
    };
    let tags = |names: &[&str]| {
        names
            .iter()
            .filter_map(|t| Tag::new(t).ok())
            .collect::<Vec<_>>()
    };
    let list = (0..entities)
        .map(|i| Entity {
            entity_id: format!("https://member{i}.synthetic.example/fedtls"),
            organization: Some(format!("Syntetisk medlem {i} AB")),
            organization_id: OrganizationId::new(&format!("SE{:010}", 5_560_000_000u64 + i as u64))
                .ok(),
            issuers: (0..2)
                .map(|k| Issuer {
                    certificate: pool[(2 * i + k) % pool.len()].clone(),
                    extra: Map::new(),
                })
                .collect(),
            servers: vec![Endpoint {
                description: Some("SS 12000 API".to_owned()),
                base_uri: Some(format!(
                    "https://api.member{i}.synthetic.example/ss12000/v2.0/"
                )),
                pins: vec![next_pin()],
                tags: tags(&["egilv1", "userlistv1"]),
                extra: Map::new(),
            }],
            clients: (0..clients_per_entity)
                .map(|c| Endpoint {
                    description: Some(format!("Client {c}")),
                    base_uri: None,
                    pins: vec![next_pin()],
                    tags: tags(&["egilv1"]),
                    extra: Map::new(),
                })
                .collect(),
            scopes: Vec::new(),
            extensions: None,
            extra: Map::new(),
        })
        .collect();
    Ok(Metadata {
        version: "1.0.0".to_owned(),
        cache_ttl: Some(3600),
        claims: Default::default(),
        entities: list,
        rejected: Vec::new(),
        warnings: Vec::new(),
        extra: Map::new(),
    })
}

/// [`synthetic_metadata`] signed (General JSON, ES256, valid for a day) by a fresh key,
/// with the JWKS that verifies it.
pub fn signed_synthetic_aggregate(
    entities: usize,
    clients_per_entity: usize,
) -> Result<(String, Jwks), TestFedError> {
    let metadata = synthetic_metadata(entities, clients_per_entity)?;
    let payload = match serde_json::to_value(&metadata) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(TestFedError::NotAnObject);
        }
    };
    let key = SigningKey::generate(Algorithm::Es256, "synthetic")?;
    let options = SignOptions {
        iss: "https://fed.synthetic.example".into(),
        lifetime_secs: 86_400,
        now: crate::verify::unix_now(),
        format: JwsFormat::General,
        default_cache_ttl: 3600,
    };
    let jws = sign_metadata(&payload, &[&key], &options)?;
    Ok((jws, Jwks::from_keys(vec![key.public_jwk()])))
}
