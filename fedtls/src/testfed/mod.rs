//! A complete local test federation on disk: a signing key and its JWKS, certificates for a
//! few typical members, and the signed metadata that lists them.
//!
//! Integration tests, benchmarks and the quickstart build on it, so its layout is described
//! by a machine-readable manifest (`federation.json`) rather than by convention alone.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::jwk::{Algorithm, JwkError};
use crate::jws::JwsError;
use crate::pin::{Pin, PinError};

mod certs;
mod init;
mod keys;
mod manifest;
mod output;
mod resign;
mod synthetic;

use certs::Window;
pub use init::init;
use manifest::from_manifest;
pub use resign::Resigner;
pub use synthetic::{signed_synthetic_aggregate, synthetic_metadata};

/// Options for [`init`].
#[derive(Debug, Clone)]
pub struct FederationOptions {
    /// The federation's issuer URI (`iss`).
    pub iss: String,
    /// How long the signed metadata stays valid, in seconds.
    pub metadata_lifetime_secs: i64,
    /// When the certificates are valid.
    pub cert_validity: CertValidity,
    /// Host name the servers' certificates and base URIs use.
    pub host: String,
    /// The signing key's algorithm.
    pub algorithm: Algorithm,
    /// Overwrite files in a non-empty directory.
    pub force: bool,
    /// Reuse the signing key and party keys already in the directory (creating only the
    /// missing ones), so the JWKS thumbprint and every pin survive a regeneration. The
    /// certificates are re-issued and the metadata re-signed either way; a kept signing key
    /// keeps its own kid and algorithm, whatever [`FederationOptions::algorithm`] says.
    pub keep_keys: bool,
    /// The ports in the servers' base URIs.
    pub ports: ServerPorts,
}

/// When the test federation's certificates are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertValidity {
    /// From an hour before the run for this many days (the supplier CA for twice as long):
    /// every run gets a different window.
    Relative {
        /// Days the leaf certificates stay valid.
        days: i64,
    },
    /// The same window for every certificate and every run, in Unix seconds, so that a
    /// regeneration with kept keys reproduces it. Dates before 2050 are encoded as UTCTime,
    /// later ones as GeneralizedTime (RFC 5280, section 4.1.2.5).
    Fixed {
        /// First second of validity.
        not_before: i64,
        /// Last second of validity.
        not_after: i64,
    },
}

impl CertValidity {
    /// 2026-01-01T00:00:00Z to 2049-12-31T23:59:59Z: the last second UTCTime can carry, so
    /// long-lived development certificates stay readable by every X.509 parser.
    pub const DEVELOPMENT: CertValidity = CertValidity::Fixed {
        not_before: 1_767_225_600,
        not_after: 2_524_607_999,
    };

    /// The windows of a leaf certificate and of a CA.
    fn windows(self, now: i64) -> Result<(Window, Window), TestFedError> {
        let (leaf, ca) = match self {
            CertValidity::Relative { days } => {
                let start = now.saturating_sub(3600);
                let end = |days: i64| now.saturating_add(days.saturating_mul(86_400));
                ((start, end(days)), (start, end(days.saturating_mul(2))))
            }
            CertValidity::Fixed {
                not_before,
                not_after,
            } => ((not_before, not_after), (not_before, not_after)),
        };
        if leaf.0 >= leaf.1 {
            return Err(TestFedError::Options(format!(
                "certificates would not be valid at any time (not before {}, not after {})",
                crate::claims::Rfc3339(leaf.0),
                crate::claims::Rfc3339(leaf.1)
            )));
        }
        Ok((leaf, ca))
    }
}

/// The ports the test federation's servers are listed on, so a caller can run them on free
/// ports (the defaults are fixed, well-known ones for documentation and manual use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerPorts {
    /// The school's SS 12000 API (`school-server`).
    pub school: u16,
    /// The supplier's SS 12000 API (`supplier-server`).
    pub supplier: u16,
    /// The authorization server (`authserver`, tag `gnapv1`).
    pub auth: u16,
}

impl Default for ServerPorts {
    fn default() -> Self {
        Self {
            school: 8443,
            supplier: 9443,
            auth: 7443,
        }
    }
}

impl Default for FederationOptions {
    fn default() -> Self {
        Self {
            iss: "https://fed.test.example/md".to_owned(),
            metadata_lifetime_secs: 30 * 86_400,
            cert_validity: CertValidity::Relative { days: 365 },
            host: "localhost".to_owned(),
            algorithm: Algorithm::Es256,
            force: false,
            keep_keys: false,
            ports: ServerPorts::default(),
        }
    }
}

/// Why a test federation could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TestFedError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The directory already holds files and `force` was not set.
    #[error("{0} is not empty; choose an empty directory or pass --force to overwrite")]
    NotEmpty(PathBuf),
    /// Certificate or key generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The signing key could not be made.
    #[error("signing failed: {0}")]
    Key(#[from] JwkError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(#[from] JwsError),
    /// The metadata model did not serialize to a JSON object.
    #[error("signing failed: metadata did not serialize to an object")]
    NotAnObject,
    /// A generated certificate could not be pinned.
    #[error("pinning a generated certificate failed: {0}")]
    Pin(#[from] PinError),
    /// A key kept from an earlier run could not be used.
    #[error(
        "{path}: cannot reuse this key ({reason}); remove it to have a new one created, or do not keep keys"
    )]
    KeptKey {
        /// The key file.
        path: PathBuf,
        /// Why it is unusable.
        reason: String,
    },
    /// The options contradict each other.
    #[error("{0}")]
    Options(String),
}

/// One certificate holder of the test federation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Party {
    /// Short name, also the file stem under `certs/`.
    pub name: String,
    /// The entity listing it (`None` for the deliberately unlisted client).
    pub entity_id: Option<String>,
    /// `server`, `client` or `ca`.
    pub role: String,
    /// Leaf certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// Leaf followed by its CA, for CA-issued certificates.
    pub chain: Option<PathBuf>,
    /// SPKI pin of the certificate.
    pub pin: Pin,
    /// Server base URI, for servers.
    pub base_uri: Option<String>,
    /// Tags in the metadata.
    pub tags: Vec<String>,
}

/// The files of a created test federation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestFederation {
    /// The federation's directory.
    pub dir: PathBuf,
    /// The issuer URI.
    pub iss: String,
    /// The trust anchor (public JWKS).
    pub jwks: PathBuf,
    /// The operator's private signing key (JWK).
    pub signing_key: PathBuf,
    /// The unsigned payload.
    pub metadata_json: PathBuf,
    /// The signed metadata (General JSON JWS).
    pub metadata_jws: PathBuf,
    /// Every certificate holder.
    pub parties: Vec<Party>,
    /// The key files this run reused instead of creating (only with
    /// [`FederationOptions::keep_keys`]; empty for a federation read with
    /// [`TestFederation::open`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reused_keys: Vec<PathBuf>,
}

impl TestFederation {
    /// The party with this name.
    pub fn party(&self, name: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.name == name)
    }

    /// Reads a federation back from its `federation.json` manifest.
    pub fn open(dir: &Path) -> Result<Self, TestFedError> {
        let path = dir.join("federation.json");
        let bytes = fs::read(&path).map_err(|source| TestFedError::Io {
            path: path.clone(),
            source,
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| TestFedError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        from_manifest(dir, &value).ok_or_else(|| TestFedError::Io {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a fedtls federation manifest",
            ),
        })
    }
}

/// The path of `program` on `PATH`, for tests that run it as an independent peer or checker
/// (`curl`, `openssl`, `chromium`). A missing program panics with one line that names the
/// Debian package to install, instead of an unexplained spawn error deep in a test.
pub fn require_program(program: &str, debian_package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed (not on PATH): apt-get install {debian_package} \
             (.ci/run installs every package the tests need)"
        )
    })
}
