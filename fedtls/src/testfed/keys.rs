//! Where the keys come from: new ones, or those kept in the directory, and their file names.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::jwk::{Algorithm, SigningKey};

use super::TestFedError;

/// Written above the PEM of every private key the test federation creates. PEM readers
/// (rustls-pki-types, OpenSSL, Go) skip text before the `-----BEGIN` line.
pub(super) const TEST_KEY_NOTE: &str = "\
Private key of a fedtls test federation (fedtls federation init).
Test material only: treat it as public and never use it in production.
";

/// Where the keys come from: new ones, or (with `keep_keys`) those already in the directory.
pub(super) struct Keys<'a> {
    pub(super) dir: &'a Path,
    pub(super) keep: bool,
    pub(super) reused: Vec<PathBuf>,
}

impl Keys<'_> {
    /// The directory's file at `relative`, if keys are kept and it exists.
    fn kept(&self, relative: &str) -> Result<Option<(PathBuf, Vec<u8>)>, TestFedError> {
        if !self.keep {
            return Ok(None);
        }
        let path = self.dir.join(relative);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some((path, bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TestFedError::Io { path, source }),
        }
    }

    /// The key of party `name` (`certs/NAME.key`, PEM), and whether it is new.
    pub(super) fn party(&mut self, name: &str) -> Result<(KeyPair, bool), TestFedError> {
        let Some((path, pem)) = self.kept(&party_key_file(name))? else {
            return Ok((KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?, true));
        };
        let reason = |e: &dyn std::fmt::Display| TestFedError::KeptKey {
            path: path.clone(),
            reason: e.to_string(),
        };
        let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| reason(&e))?;
        let key = KeyPair::try_from(&der).map_err(|e| reason(&e))?;
        self.reused.push(path);
        Ok((key, false))
    }

    /// The operator's signing key (a private JWK), and whether it is new.
    pub(super) fn signing(&mut self, alg: Algorithm) -> Result<(SigningKey, bool), TestFedError> {
        let Some((path, json)) = self.kept(SIGNING_KEY_FILE)? else {
            let key = SigningKey::generate(alg, "test-federation-1")?;
            return Ok((key, true));
        };
        let key = SigningKey::from_jwk_json(&json).map_err(|e| TestFedError::KeptKey {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        self.reused.push(path);
        Ok((key, false))
    }
}

pub(super) const SIGNING_KEY_FILE: &str = "federation-signing-key.jwk";

pub(super) fn party_key_file(name: &str) -> String {
    format!("certs/{name}.key")
}
