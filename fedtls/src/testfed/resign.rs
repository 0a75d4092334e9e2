//! Editing and re-signing a test federation's metadata: what tests of expiry, rollback, pin
//! rotation and removed entities need, kept in one place for every test suite.

use std::fs;

use serde_json::{Map, Value};

use super::{TestFedError, TestFederation};
use crate::jwk::{Jwks, SigningKey};
use crate::jws::{JwsFormat, SignOptions, sign_metadata};
use crate::snapshot::Snapshot;
use crate::verify::{VerifyError, VerifyOptions, verify_metadata};

/// A test federation's signing key, trust anchor and metadata payload as created: sign an
/// edited payload with [`Resigner::sign`], verify a document with [`Resigner::verify_at`].
pub struct Resigner {
    /// The federation's signing key.
    pub key: SigningKey,
    /// Its trust anchor.
    pub jwks: Jwks,
    /// The metadata payload as `init` wrote it (`metadata.json`).
    pub payload: Map<String, Value>,
    iss: String,
}

impl Resigner {
    /// Reads the key, the JWKS and the payload of `fed`.
    pub fn load(fed: &TestFederation) -> Result<Resigner, TestFedError> {
        let read = |path: &std::path::Path| {
            fs::read(path).map_err(|source| TestFedError::Io {
                path: path.to_owned(),
                source,
            })
        };
        let key = SigningKey::from_jwk_json(&read(&fed.signing_key)?)?;
        let jwks = Jwks::from_json(&read(&fed.jwks)?)?;
        let payload = match serde_json::from_slice(&read(&fed.metadata_json)?) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(TestFedError::Io {
                    path: fed.metadata_json.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not a JSON object",
                    ),
                });
            }
        };
        Ok(Resigner {
            key,
            jwks,
            payload,
            iss: fed.iss.clone(),
        })
    }

    /// `payload` signed by the federation's key at `now` (Unix seconds) for `lifetime`
    /// seconds, in the general JWS serialization.
    pub fn sign(
        &self,
        payload: &Map<String, Value>,
        now: i64,
        lifetime: i64,
    ) -> Result<String, TestFedError> {
        Ok(sign_metadata(
            payload,
            &[&self.key],
            &SignOptions {
                iss: self.iss.clone(),
                lifetime_secs: lifetime,
                now,
                format: JwsFormat::General,
                default_cache_ttl: 3600,
            },
        )?)
    }

    /// The snapshot of `document`, verified against the federation's JWKS as of `now`.
    pub fn verify_at(&self, document: &[u8], now: i64) -> Result<Snapshot, VerifyError> {
        let options = VerifyOptions {
            now: Some(now),
            ..VerifyOptions::default()
        };
        Ok(Snapshot::new(
            verify_metadata(document, &self.jwks, &options)?,
            "test",
            now,
        ))
    }
}
