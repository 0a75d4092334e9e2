//! The token signing key and the keys published in the JWKS, swappable while serving.
//!
//! Rotation: a new key signs from the moment it is loaded; the keys it replaces stay
//! published (as `--previous-key`) until every token they signed has expired, so resource
//! servers that fetch the JWKS keep verifying older tokens.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use fedtls::jwk::{Algorithm, JwkError, Jwks, PublicJwk, SigningKey};

/// Why the token keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file is not a usable JWK (or JWKS).
    #[error("{path}: {source}")]
    Jwk {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: JwkError,
    },
    /// A key is not an EC P-256 key for ES256, the only token algorithm peers accept.
    #[error("{what}: tokens are signed with ES256, so the key must be EC P-256 (found {found})")]
    NotEs256 {
        /// Which key.
        what: String,
        /// Its algorithm or type.
        found: String,
    },
    /// Two different published keys share a kid: verifiers could pick the wrong one.
    #[error("two different keys share the kid {kid:?}; give every key its own kid")]
    KidClash {
        /// The kid.
        kid: String,
    },
}

/// One set of keys: the current signing key and every public key published in the JWKS
/// (the signing key's first, then previous keys).
pub struct TokenKeys {
    signing: SigningKey,
    published: Vec<PublicJwk>,
    jwks_json: String,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("kid", &self.signing.kid())
            .field("published", &self.published.len())
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from a signing key (ES256) and previous public keys still to publish. A
    /// previous key equal to the signing key is published once.
    pub fn new(signing: SigningKey, previous: Vec<PublicJwk>) -> Result<Self, KeyError> {
        if signing.algorithm() != Algorithm::Es256 {
            return Err(KeyError::NotEs256 {
                what: format!("the signing key {:?}", signing.kid()),
                found: signing.algorithm().to_string(),
            });
        }
        let mut published = vec![signing.public_jwk()];
        for key in previous {
            if !key.fits(Algorithm::Es256) {
                return Err(KeyError::NotEs256 {
                    what: format!("the previous key {:?}", key.kid().unwrap_or("(no kid)")),
                    found: key
                        .algorithm()
                        .map_or_else(|| "another key type".to_owned(), |a| a.to_string()),
                });
            }
            if published.contains(&key) {
                continue;
            }
            if let Some(kid) = key.kid()
                && published.iter().any(|k| k.kid() == Some(kid))
            {
                return Err(KeyError::KidClash {
                    kid: kid.to_owned(),
                });
            }
            published.push(key);
        }
        let jwks_json = Jwks::from_keys(published.clone()).to_json();
        Ok(Self {
            signing,
            published,
            jwks_json,
        })
    }

    /// Reads the signing key (a private EC P-256 JWK, as `fedtls keygen` writes) and each
    /// previous key file (a public or private JWK, or a JWKS whose keys are all published).
    pub fn load(signing_key: &Path, previous: &[PathBuf]) -> Result<Self, KeyError> {
        let bytes = read(signing_key)?;
        let signing = SigningKey::from_jwk_json(&bytes).map_err(|source| KeyError::Jwk {
            path: signing_key.to_path_buf(),
            source,
        })?;
        let mut keys = Vec::new();
        for path in previous {
            keys.extend(read_public_keys(path)?);
        }
        Self::new(signing, keys)
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Every published public key, the signing key's first.
    pub fn published(&self) -> &[PublicJwk] {
        &self.published
    }

    /// The JWKS served at `/.well-known/jwks.json`.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// The signing key's public JWK as JSON (what SUNET serves at `/.well-known/jwk.json`).
    pub fn signing_jwk_json(&self) -> String {
        self.signing.public_jwk().to_json_value().to_string()
    }

    /// The signing key's public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), what SUNET
    /// serves at `/.well-known/public.pem`. `None` only if the JWK lacks its coordinates,
    /// which an ES256 signing key never does.
    pub fn signing_public_pem(&self) -> Option<String> {
        use base64::Engine as _;
        /// DER of SubjectPublicKeyInfo for EC P-256 up to the uncompressed point.
        const P256_SPKI_PREFIX: [u8; 26] = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let jwk = self.signing.public_jwk().to_json_value();
        let coordinate = |name: &str| {
            jwk.get(name)
                .and_then(serde_json::Value::as_str)
                .and_then(|v| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(v)
                        .ok()
                })
                .filter(|bytes| bytes.len() == 32)
        };
        let (x, y) = (coordinate("x")?, coordinate("y")?);
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.push(0x04);
        der.extend_from_slice(&x);
        der.extend_from_slice(&y);
        let text = base64::engine::general_purpose::STANDARD.encode(&der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in text.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Some(pem)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The public keys of a JWK or JWKS file (private members are dropped).
fn read_public_keys(path: &Path) -> Result<Vec<PublicJwk>, KeyError> {
    let bytes = read(path)?;
    let bad = |source| KeyError::Jwk {
        path: path.to_path_buf(),
        source,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(JwkError::Json(e.to_string())))?;
    if value.get("keys").is_some() {
        return Ok(Jwks::from_json(&bytes).map_err(bad)?.keys().to_vec());
    }
    Ok(vec![PublicJwk::from_json_value(&value).map_err(bad)?])
}

/// The keys in force, replaced as a whole on reload; requests in flight keep the set they
/// started with.
#[derive(Debug)]
pub struct KeyRing {
    current: RwLock<Arc<TokenKeys>>,
}

impl KeyRing {
    /// A ring holding `keys`.
    pub fn new(keys: TokenKeys) -> Self {
        Self {
            current: RwLock::new(Arc::new(keys)),
        }
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<TokenKeys> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts `keys` in force for every later request.
    pub fn replace(&self, keys: TokenKeys) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_publishes_old_keys_and_refuses_clashes_and_other_algorithms() {
        let old = SigningKey::generate(Algorithm::Es256, "old").unwrap();
        let new = SigningKey::generate(Algorithm::Es256, "new").unwrap();
        let keys = TokenKeys::new(new, vec![old.public_jwk()]).unwrap();
        assert_eq!(keys.signing_key().kid(), "new");
        let kids: Vec<_> = keys.published().iter().map(|k| k.kid().unwrap()).collect();
        assert_eq!(kids, ["new", "old"]);
        let jwks = Jwks::from_json(keys.jwks_json().as_bytes()).unwrap();
        assert_eq!(jwks.keys().len(), 2);
        assert!(!keys.jwks_json().contains("\"d\""), "no private members");

        // The signing key listed again as previous is published once.
        let again = SigningKey::generate(Algorithm::Es256, "k").unwrap();
        let public = again.public_jwk();
        assert_eq!(
            TokenKeys::new(again, vec![public])
                .unwrap()
                .published()
                .len(),
            1
        );

        let clash = SigningKey::generate(Algorithm::Es256, "same").unwrap();
        let other = SigningKey::generate(Algorithm::Es256, "same").unwrap();
        assert!(matches!(
            TokenKeys::new(clash, vec![other.public_jwk()]),
            Err(KeyError::KidClash { .. })
        ));
        let p384 = SigningKey::generate(Algorithm::Es384, "p384").unwrap();
        assert!(matches!(
            TokenKeys::new(p384, Vec::new()),
            Err(KeyError::NotEs256 { .. })
        ));
        let ed = SigningKey::generate(Algorithm::EdDsa, "ed").unwrap();
        let signer = SigningKey::generate(Algorithm::Es256, "s").unwrap();
        assert!(matches!(
            TokenKeys::new(signer, vec![ed.public_jwk()]),
            Err(KeyError::NotEs256 { .. })
        ));
    }

    #[test]
    fn loads_files_and_names_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let signing = SigningKey::generate(Algorithm::Es256, "current").unwrap();
        let previous = SigningKey::generate(Algorithm::Es256, "previous").unwrap();
        let signing_path = dir.path().join("signing.jwk");
        let private_previous = dir.path().join("previous.jwk");
        let public_set = dir.path().join("older.jwks");
        std::fs::write(&signing_path, signing.to_private_jwk_json()).unwrap();
        std::fs::write(&private_previous, previous.to_private_jwk_json()).unwrap();
        let older = SigningKey::generate(Algorithm::Es256, "older").unwrap();
        std::fs::write(
            &public_set,
            Jwks::from_keys(vec![older.public_jwk()]).to_json(),
        )
        .unwrap();
        let keys = TokenKeys::load(&signing_path, &[private_previous.clone(), public_set]).unwrap();
        assert_eq!(keys.published().len(), 3);

        let ring = KeyRing::new(keys);
        let first = ring.current();
        ring.replace(TokenKeys::load(&private_previous, &[]).unwrap());
        assert_eq!(
            first.signing_key().kid(),
            "current",
            "held sets do not change"
        );
        assert_eq!(ring.current().signing_key().kid(), "previous");

        let missing = dir.path().join("missing.jwk");
        let err = TokenKeys::load(&missing, &[]).unwrap_err();
        assert!(err.to_string().contains("missing.jwk"), "{err}");
        let garbage = dir.path().join("garbage.jwk");
        std::fs::write(&garbage, "not json").unwrap();
        let err = TokenKeys::load(&signing_path, &[garbage]).unwrap_err();
        assert!(err.to_string().contains("garbage.jwk"), "{err}");
        // A public key cannot sign.
        let public_only = dir.path().join("public.jwk");
        std::fs::write(
            &public_only,
            signing.public_jwk().to_json_value().to_string(),
        )
        .unwrap();
        assert!(TokenKeys::load(&public_only, &[]).is_err());
    }
}
