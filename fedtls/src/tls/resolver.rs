//! A server certificate that can be replaced while the server runs.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{TlsFileError, load_cert_chain, load_private_key, provider};
use crate::pin::Pin;

/// The server's certificate chain and key, swappable at run time (for example on SIGHUP).
///
/// Every handshake takes whatever is current; connections already open keep the
/// certificate they started with. A replacement that rustls refuses (empty chain, unreadable
/// key, key not matching the leaf) leaves the current one in place.
#[derive(Debug)]
pub struct ReloadableCertResolver {
    current: ArcSwap<CertifiedKey>,
}

/// Checks and combines a chain (leaf first) and its key with the aws-lc-rs provider.
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, rustls::Error> {
    if chain.is_empty() {
        return Err(rustls::Error::NoCertificatesPresented);
    }
    let certified = CertifiedKey::from_der(chain, key, &provider())?;
    // from_der lets an undeterminable match through; insist on a definite one.
    certified.keys_match()?;
    Ok(certified)
}

impl ReloadableCertResolver {
    /// Starts with this chain (leaf first) and key.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, rustls::Error> {
        Ok(Self {
            current: ArcSwap::from_pointee(certified_key(chain, key)?),
        })
    }

    /// Starts with the chain and key read from PEM files.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, TlsFileError> {
        let chain = load_cert_chain(cert_path)?;
        let key = load_private_key(key_path)?;
        Self::new(chain, key).map_err(|source| TlsFileError::Refused {
            path: cert_path.to_path_buf(),
            source,
        })
    }

    /// Replaces the chain and key in one atomic swap. On error the current ones stay.
    pub fn reload(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), rustls::Error> {
        self.current.store(Arc::new(certified_key(chain, key)?));
        Ok(())
    }

    /// Re-reads the chain and key from PEM files and swaps them in. On error the current
    /// ones stay.
    pub fn reload_pem_files(&self, cert_path: &Path, key_path: &Path) -> Result<(), TlsFileError> {
        let chain = load_cert_chain(cert_path)?;
        let key = load_private_key(key_path)?;
        self.reload(chain, key)
            .map_err(|source| TlsFileError::Refused {
                path: cert_path.to_path_buf(),
                source,
            })
    }

    /// The chain and key handshakes use now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// The pin of the current leaf certificate (for logs and status pages).
    pub fn pin(&self) -> Option<Pin> {
        let current = self.current.load();
        let leaf = current.cert.first()?;
        Pin::of_certificate(leaf).ok()
    }
}

impl ResolvesServerCert for ReloadableCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn pair() -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.der().clone(), key)
    }

    fn der_key(key: &KeyPair) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(key.serialize_der().into())
    }

    #[test]
    fn reload_swaps_and_a_bad_replacement_keeps_the_old_one() {
        let (first, first_key) = pair();
        let (second, second_key) = pair();
        let resolver =
            ReloadableCertResolver::new(vec![first.clone()], der_key(&first_key)).unwrap();
        assert_eq!(resolver.pin(), Pin::of_certificate(&first).ok());

        // Mismatched key, empty chain, garbage key: all refused, the first stays.
        assert!(
            resolver
                .reload(vec![second.clone()], der_key(&first_key))
                .is_err()
        );
        assert!(resolver.reload(vec![], der_key(&second_key)).is_err());
        assert!(
            resolver
                .reload(
                    vec![second.clone()],
                    PrivateKeyDer::Pkcs8(vec![1, 2, 3].into())
                )
                .is_err()
        );
        assert_eq!(resolver.current().cert[0], first);

        resolver
            .reload(vec![second.clone()], der_key(&second_key))
            .unwrap();
        assert_eq!(resolver.current().cert[0], second);
        assert_eq!(resolver.pin(), Pin::of_certificate(&second).ok());
    }

    #[test]
    fn new_refuses_a_mismatched_key() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        assert!(ReloadableCertResolver::new(vec![cert], der_key(&other_key)).is_err());
    }

    #[test]
    fn pem_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let cert_path = dir.path().join("server.pem");
        let key_path = dir.path().join("server.key");
        let wrong_key_path = dir.path().join("wrong.key");
        std::fs::write(
            &cert_path,
            crate::encoding::pem_encode("CERTIFICATE", &cert),
        )
        .unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::write(&wrong_key_path, other_key.serialize_pem()).unwrap();
        let resolver = ReloadableCertResolver::from_pem_files(&cert_path, &key_path).unwrap();
        let err = resolver
            .reload_pem_files(&cert_path, &wrong_key_path)
            .unwrap_err();
        assert!(matches!(err, TlsFileError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("server.pem"), "{err}");
        let err = resolver
            .reload_pem_files(&dir.path().join("nope.pem"), &key_path)
            .unwrap_err();
        assert!(err.to_string().contains("nope.pem"), "{err}");
        assert_eq!(resolver.current().cert[0], cert);
    }
}
