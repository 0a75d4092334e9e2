//! Who a request is from: the FedTLS peer's entity (the tenant of its objects), or a client of
//! the API-key listener. API keys are kept only as SHA-256 digests and never logged.

use std::collections::HashMap;
use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use fedtls::tls::PeerIdentity;
use http::HeaderMap;
use ss12000::EgilTenant;

/// The tenant-id prefix of API-key clients, so a configured name can never be mistaken for a
/// federation entity's objects.
pub const API_KEY_TENANT_PREFIX: &str = "api-key:";

/// A problem with the API-key configuration.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// The file could not be read.
    #[error("cannot read the API-key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An entry is not `NAME=KEY`.
    #[error(
        "{origin}, entry {entry}: expected NAME=KEY (one per line in a file, comma-separated in the variable)"
    )]
    Syntax {
        /// The file or variable.
        origin: String,
        /// 1-based entry number.
        entry: usize,
    },
    /// A key too short to be a secret.
    #[error(
        "{origin}: the key of client {name} is shorter than 16 characters; use a long random key (e.g. `openssl rand -hex 32`)"
    )]
    Weak {
        /// The file or variable.
        origin: String,
        /// The client.
        name: String,
    },
    /// Two clients with one key, or one name twice.
    #[error("{origin}: client {name} is configured twice, or shares its key with another client")]
    Duplicate {
        /// The file or variable.
        origin: String,
        /// The client.
        name: String,
    },
}

/// The API-key clients: digest of the key → client name.
#[derive(Clone)]
pub struct ApiKeys {
    /// The request header carrying the key.
    header: http::HeaderName,
    by_digest: HashMap<[u8; 32], String>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("header", &self.header)
            .field("clients", &self.by_digest.values().collect::<Vec<_>>())
            .finish()
    }
}

fn digest_of(key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, key.as_bytes()).as_ref());
    out
}

impl ApiKeys {
    /// No clients; keys arrive in `header` (Windermere's default: `X-API-Key`).
    pub fn new(header: http::HeaderName) -> ApiKeys {
        ApiKeys {
            header,
            by_digest: HashMap::new(),
        }
    }

    /// Adds the `NAME=KEY` entries of `text`, separated by newlines or commas (`#` starts a
    /// comment line); `origin` names the file or variable in errors.
    pub fn add_entries(&mut self, text: &str, origin: &str) -> Result<(), ApiKeyError> {
        let entries = text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        for (i, entry) in entries.enumerate() {
            let (name, key) = entry
                .split_once('=')
                .map(|(n, k)| (n.trim(), k.trim()))
                .filter(|(n, k)| !n.is_empty() && !k.is_empty())
                .ok_or_else(|| ApiKeyError::Syntax {
                    origin: origin.to_owned(),
                    entry: i + 1,
                })?;
            if key.len() < 16 {
                return Err(ApiKeyError::Weak {
                    origin: origin.to_owned(),
                    name: name.to_owned(),
                });
            }
            let name_taken = self.by_digest.values().any(|n| n == name);
            if name_taken
                || self
                    .by_digest
                    .insert(digest_of(key), name.to_owned())
                    .is_some()
            {
                return Err(ApiKeyError::Duplicate {
                    origin: origin.to_owned(),
                    name: name.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Adds the entries of a file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ApiKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| ApiKeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.add_entries(&text, &path.display().to_string())
    }

    /// How many clients are configured.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The client name whose key the request carries.
    pub fn client(&self, headers: &HeaderMap) -> Option<&str> {
        let key = headers.get(&self.header)?.to_str().ok()?.trim();
        self.by_digest.get(&digest_of(key)).map(String::as_str)
    }

    /// The header name.
    pub fn header(&self) -> &http::HeaderName {
        &self.header
    }
}

/// The tenant of a FedTLS peer: its entity, with its organization.
pub fn tenant_of_peer(peer: &PeerIdentity) -> EgilTenant {
    EgilTenant {
        id: peer.entity_id.clone(),
        organization: peer.organization.clone(),
        organization_id: peer.organization_id.as_ref().map(ToString::to_string),
    }
}

/// The tenant of an API-key client.
pub fn tenant_of_api_client(name: &str) -> EgilTenant {
    EgilTenant {
        id: format!("{API_KEY_TENANT_PREFIX}{name}"),
        organization: None,
        organization_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_identify_clients_and_bad_entries_are_named() {
        let mut keys = ApiKeys::new(http::HeaderName::from_static("x-api-key"));
        keys.add_entries("# comment\nskola-a = 0123456789abcdef0123\n", "keys.txt")
            .unwrap();
        keys.add_entries("skola-b=fedcba9876543210fedc", "KONTOSYNK_EGIL_API_KEYS")
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "fedcba9876543210fedc".parse().unwrap());
        assert_eq!(keys.client(&headers), Some("skola-b"));
        headers.insert("x-api-key", "fedcba9876543210fedX".parse().unwrap());
        assert_eq!(keys.client(&headers), None);
        let err = keys.add_entries("c=short", "keys.txt").unwrap_err();
        assert!(err.to_string().contains("shorter than 16"));
        let err = keys
            .add_entries("d=0123456789abcdef0123", "keys.txt")
            .unwrap_err();
        assert!(matches!(err, ApiKeyError::Duplicate { .. }));
        assert!(!format!("{keys:?}").contains("0123456789abcdef"));
        let err = keys.add_entries("no-equals-sign", "keys.txt").unwrap_err();
        assert!(err.to_string().contains("entry 1"));
    }
}
