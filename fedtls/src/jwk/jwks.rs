//! The JWK Set: the federation's trust anchor.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::pin::truncate_for_message;

use super::JwkError;
use super::public::{PublicJwk, read_public_jwk};

/// A JWK Set of usable public signature keys: the federation's trust anchor.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<PublicJwk>,
    skipped: Vec<String>,
}

/// Why a trust anchor file could not be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TrustAnchorError {
    /// The file could not be read.
    #[error("trust anchor {}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a JWK Set with a usable key.
    #[error("trust anchor {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: JwkError,
    },
}

impl Jwks {
    /// Reads a trust anchor file: [`Jwks::from_json`] of its bytes, with errors that name the
    /// file. Every command and server that takes `--jwks` reads it this way.
    pub fn from_file(path: &Path) -> Result<Jwks, TrustAnchorError> {
        let bytes = std::fs::read(path).map_err(|source| TrustAnchorError::Read {
            path: path.to_owned(),
            source,
        })?;
        Jwks::from_json(&bytes).map_err(|source| TrustAnchorError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads `{"keys":[...]}`. Keys that cannot verify signatures (symmetric, `use: enc`,
    /// unknown type or curve, unsupported alg, invalid material) are skipped with a note in
    /// [`Jwks::skipped`]; a key with private members is used for its public part, with a
    /// warning. Zero usable keys is an error.
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, JwkError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| JwkError::Json(e.to_string()))?;
        let Some(Value::Array(entries)) = value.get("keys") else {
            return Err(JwkError::Json(
                "a JWKS must be an object with a \"keys\" array".into(),
            ));
        };
        let mut jwks = Jwks::default();
        for (i, entry) in entries.iter().enumerate() {
            let label = match entry.get("kid").and_then(Value::as_str) {
                Some(kid) => format!("key {i} (kid {:?})", truncate_for_message(kid)),
                None => format!("key {i}"),
            };
            match read_public_jwk(entry) {
                Ok(read) => {
                    if read.has_private_part {
                        jwks.skipped.push(format!(
                            "{label}: warning: contains private key members; only its public part is used (do not distribute private keys in a trust anchor)"
                        ));
                    }
                    if let Some(kid) = read.key.kid()
                        && jwks.keys.iter().any(|k| k.kid() == Some(kid))
                    {
                        jwks.skipped.push(format!(
                            "{label}: warning: another key has the same kid; both are tried"
                        ));
                    }
                    jwks.keys.push(read.key);
                }
                Err(e) => jwks.skipped.push(format!("{label}: skipped: {e}")),
            }
        }
        if jwks.keys.is_empty() {
            return Err(JwkError::NoUsableKeys(jwks.skipped));
        }
        Ok(jwks)
    }

    /// The usable keys, in file order.
    pub fn keys(&self) -> &[PublicJwk] {
        &self.keys
    }

    /// Human-readable notes on skipped keys and warnings, in file order.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// A set of the given keys (no notes).
    pub fn from_keys(keys: Vec<PublicJwk>) -> Jwks {
        Jwks {
            keys,
            skipped: Vec::new(),
        }
    }

    /// Pretty JSON `{"keys":[...]}` of the public keys, for publishing a trust anchor.
    pub fn to_json(&self) -> String {
        let keys: Vec<Value> = self.keys.iter().map(PublicJwk::to_json_value).collect();
        let mut map = Map::new();
        map.insert("keys".into(), Value::Array(keys));
        serde_json::to_string_pretty(&Value::Object(map)).unwrap_or_default()
    }
}
