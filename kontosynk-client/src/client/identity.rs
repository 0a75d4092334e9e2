//! The member's own TLS identity: certificate chain (leaf first) and private key.

use std::fmt;
use std::path::Path;

use fedtls::pin::Pin;
use fedtls::tls::{TlsFileError, load_cert_chain, load_private_key};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate chain and key a member presents as TLS client. The key is never printed.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .field("pin", &self.pin().map(|p| p.to_string()))
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// An identity from DER parts. `chain` must not be empty (leaf first).
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, IdentityError> {
        if chain.is_empty() {
            return Err(IdentityError::EmptyChain);
        }
        Ok(Self { chain, key })
    }

    /// Reads the chain (every `CERTIFICATE` block, leaf first) and the key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, IdentityError> {
        let chain = load_cert_chain(cert)?;
        let key = load_private_key(key)?;
        Self::new(chain, key)
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The SPKI pin of the leaf (what servers look up in the metadata).
    pub fn pin(&self) -> Result<Pin, fedtls::pin::PinError> {
        Pin::of_certificate(&self.chain[0])
    }

    /// The chain and a copy of the key, as rustls takes them.
    pub(crate) fn to_rustls(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key.clone_key())
    }
}

/// Why an identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    File(#[from] TlsFileError),
    /// No certificate was given.
    #[error("the client certificate chain is empty")]
    EmptyChain,
}
