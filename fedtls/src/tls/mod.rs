//! Mutual TLS pinned against federation metadata, for rustls 0.23 with the aws-lc-rs provider.
//!
//! FedTLS peers do not trust a web PKI: a server accepts a client when the SPKI pin of the
//! client's certificate is listed as a client pin in the current, verified metadata
//! ([`PinnedClientVerifier`]), and a client accepts a server when the server's pin is one of
//! those the caller picked from the metadata for that server ([`PinnedServerVerifier`]).
//! [`PeerIdentity`] tells who an accepted client is.
//!
//! Every verifier decision reads the metadata anew through a
//! [`SnapshotSource`](crate::SnapshotSource), so a pin removed from the metadata stops working
//! on the next handshake, and expired metadata refuses every client (fail closed).
//!
//! The configs built here use one crypto provider, aws-lc-rs ([`provider`]), and never the
//! process-wide default. Servers built with [`server_config`] or
//! [`server_config_with_resolver`] do not resume sessions: a resumed handshake skips
//! certificate verification, which would let a client whose pin was removed from the metadata
//! back in.
//!
//! Rejections carry a [`PeerRejection`] inside the rustls error, so logs can say why a peer
//! was refused; [`PeerRejection::from_rustls`] and [`PeerRejection::from_io`] find it.

pub(crate) mod chain;
mod client_verifier;
mod identity;
mod leaf;
mod own;
mod presented;
mod resolver;
mod server_verifier;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::pin::Pin;

pub use chain::{MAX_CHAIN_LINKS, MAX_INTERMEDIATES};
pub use client_verifier::{PinnedClientVerifier, VerifiedClient};
pub use identity::PeerIdentity;
pub use own::{OwnCertificate, OwnCertificateProblem};
pub use presented::{CertificateReadError, PresentedCertificate};
pub use resolver::ReloadableCertResolver;
pub use server_verifier::{PinnedServerVerifier, ServerCertDecision, SignatureChecked};

/// The protocol versions every config here enables: TLS 1.3 and TLS 1.2.
pub const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider of every config built here: rustls' aws-lc-rs provider.
///
/// The same `Arc` is returned on every call.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

/// The signature algorithms the verifiers accept in handshakes (those of [`provider`]).
fn signature_algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

/// A server config that requires client certificates checked by `verifier`, serving
/// `cert_chain` (leaf first) with `key`. TLS 1.2 and 1.3, aws-lc-rs, no session resumption.
///
/// Fails when the key does not match the leaf certificate or cannot be used.
pub fn server_config(
    verifier: Arc<dyn ClientCertVerifier>,
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, rustls::Error> {
    let resolver = ReloadableCertResolver::new(cert_chain, key)?;
    server_config_with_resolver(verifier, Arc::new(resolver), alpn)
}

/// Like [`server_config`], with the server's certificate taken from a resolver that can be
/// reloaded (for example on SIGHUP) while the server runs.
pub fn server_config_with_resolver(
    verifier: Arc<dyn ClientCertVerifier>,
    resolver: Arc<ReloadableCertResolver>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A resumed session is not re-verified: the metadata may have dropped the client since.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A client config that checks the server with `verifier` and, when `identity` is given,
/// authenticates with that certificate chain (leaf first) and key. TLS 1.2 and 1.3,
/// aws-lc-rs.
///
/// Fails when the key does not match the leaf certificate or cannot be used.
pub fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Why a certificate or key file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid PEM.
    #[error("{path}: not valid PEM: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds no `CERTIFICATE` block.
    #[error("{path}: no CERTIFICATE block found (expected a PEM certificate chain, leaf first)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key block.
    #[error(
        "{path}: no private key found (expected a PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block)"
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate and key (for example, the key does not match the leaf).
    #[error("{path}: certificate and key refused: {source}")]
    Refused {
        /// The certificate file.
        path: PathBuf,
        /// The rustls error.
        source: rustls::Error,
    },
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every `CERTIFICATE` block of a PEM file, in order (leaf first for a chain); other
/// blocks are skipped.
pub fn load_cert_chain(pem_path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read_file(pem_path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsFileError::Pem {
            path: pem_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsFileError::NoCertificate {
            path: pem_path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) of a PEM file.
pub fn load_private_key(pem_path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let pem = read_file(pem_path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsFileError::NoPrivateKey {
            path: pem_path.to_path_buf(),
        },
        other => TlsFileError::Pem {
            path: pem_path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// Why a verifier refused a peer, carried in
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`.
///
/// Expired or not-yet-valid certificates and host name mismatches use rustls' own
/// `CertificateError::ExpiredContext`, `NotValidYetContext` and `NotValidForNameContext`
/// instead, so the peer gets the matching TLS alert.
///
/// rustls displays the errors it carries with `Debug`, so `Debug` here prints the variant
/// name and the full message: a logged handshake error reads well either way.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRejection {
    /// There is no usable metadata: none was loaded yet, or the newest has expired.
    #[error(
        "no valid federation metadata (none loaded, or the newest has expired): refusing every client"
    )]
    NoMetadata,
    /// The client's pin is not a client pin in the current metadata.
    #[error(
        "client certificate pin {pin} ({subject}) is not a client pin in the federation metadata (generation {generation})"
    )]
    UnknownClientPin {
        /// The pin of the presented certificate.
        pin: Pin,
        /// The certificate's subject name.
        subject: String,
        /// The generation of the snapshot that was consulted.
        generation: u64,
    },
    /// The client's certificate does not lead to any issuer its entity lists.
    #[error(
        "client certificate pin {pin} ({subject}) of {entity_id} is not issued by the entity's issuers: {detail}"
    )]
    NotIssuedByEntity {
        /// The entity the pin belongs to.
        entity_id: String,
        /// The pin of the presented certificate.
        pin: Pin,
        /// The certificate's subject name.
        subject: String,
        /// What was tried.
        detail: String,
    },
    /// The server's pin is not one of those selected for the connection.
    #[error(
        "server certificate pin {pin} ({subject}) is not one of the {selected} pin(s) selected from the metadata for this server"
    )]
    UnexpectedServerPin {
        /// The pin of the presented certificate.
        pin: Pin,
        /// The certificate's subject name.
        subject: String,
        /// How many pins were selected.
        selected: usize,
    },
}

impl std::fmt::Debug for PeerRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::NoMetadata => "NoMetadata",
            Self::UnknownClientPin { .. } => "UnknownClientPin",
            Self::NotIssuedByEntity { .. } => "NotIssuedByEntity",
            Self::UnexpectedServerPin { .. } => "UnexpectedServerPin",
        };
        write!(f, "{name}: {self}")
    }
}

impl PeerRejection {
    /// The rejection inside a rustls error, if a verifier of this module produced it.
    pub fn from_rustls(error: &rustls::Error) -> Option<&PeerRejection> {
        match error {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<PeerRejection>()
            }
            _ => None,
        }
    }

    /// The rejection inside an I/O error from tokio-rustls (or any stream wrapping rustls).
    pub fn from_io(error: &std::io::Error) -> Option<&PeerRejection> {
        let inner = error.get_ref()?;
        Self::from_rustls(inner.downcast_ref::<rustls::Error>()?)
    }

    /// The rustls error that carries this rejection.
    pub fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            Arc::new(self),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_round_trip_through_rustls_and_io_errors() {
        let rejection = PeerRejection::NoMetadata;
        let error = rejection.clone().into_rustls();
        assert_eq!(PeerRejection::from_rustls(&error), Some(&rejection));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, error);
        assert_eq!(PeerRejection::from_io(&io), Some(&rejection));
        assert!(
            PeerRejection::from_rustls(&rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired
            ))
            .is_none()
        );
        assert!(PeerRejection::from_io(&std::io::Error::other("plain")).is_none());
        // rustls shows the carried error with Debug: the message must be in it.
        let shown = io.to_string();
        assert!(
            shown.contains("NoMetadata: no valid federation metadata"),
            "{shown}"
        );
    }

    #[test]
    fn provider_is_aws_lc_rs_and_shared() {
        assert!(Arc::ptr_eq(&provider(), &provider()));
        assert!(!provider().cipher_suites.is_empty());
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = load_cert_chain(&missing).unwrap_err();
        assert!(matches!(err, TlsFileError::Read { .. }));
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"no pem here\n").unwrap();
        assert!(matches!(
            load_cert_chain(&empty).unwrap_err(),
            TlsFileError::NoCertificate { .. }
        ));
        let err = load_private_key(&empty).unwrap_err();
        assert!(matches!(err, TlsFileError::NoPrivateKey { .. }), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(matches!(
            load_cert_chain(&broken).unwrap_err(),
            TlsFileError::Pem { .. }
        ));
    }

    #[test]
    fn loads_a_generated_certificate_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.path().join("c.pem");
        let key_path = dir.path().join("c.key");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let chain = load_cert_chain(&cert_path).unwrap();
        assert_eq!(chain.len(), 1);
        assert_eq!(chain[0].as_ref(), cert.der().as_ref());
        let key = load_private_key(&key_path).unwrap();
        let verifier = PinnedServerVerifier::new([]).into_arc();
        client_config(verifier, Some((chain, key)), &[b"h2"]).unwrap();
    }
}
