//! A complete local test federation on disk: a signing key and its JWKS, certificates for a
//! few typical members, and the signed metadata that lists them.
//!
//! Integration tests, benchmarks and the quickstart build on it, so its layout is described
//! by a machine-readable manifest (`federation.json`) rather than by convention alone.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer as RcgenIssuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Map, Value, json};

use crate::jwk::{Algorithm, JwkError, Jwks, SigningKey};
use crate::jws::{JwsError, JwsFormat, SignOptions, sign_metadata};
use crate::metadata::{Endpoint, Entity, Issuer, Metadata, SAML_SCOPE_EXTENSION};
use crate::names::{OrganizationId, Tag};
use crate::pin::{Pin, PinError};

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

fn from_manifest(dir: &Path, v: &Value) -> Option<TestFederation> {
    let file = |key: &str| v.get(key)?.as_str().map(|f| dir.join(f));
    let parties = v
        .get("parties")?
        .as_array()?
        .iter()
        .map(|p| {
            let s = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
            Some(Party {
                name: s("name")?,
                entity_id: s("entity_id"),
                role: s("role")?,
                cert: dir.join(s("cert")?),
                key: dir.join(s("key")?),
                chain: s("chain").map(|c| dir.join(c)),
                pin: s("pin")?.parse().ok()?,
                base_uri: s("base_uri"),
                tags: p
                    .get("tags")?
                    .as_array()?
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(TestFederation {
        dir: dir.to_path_buf(),
        iss: v.get("iss")?.as_str()?.to_owned(),
        jwks: file("jwks")?,
        signing_key: file("signing_key")?,
        metadata_json: file("metadata_json")?,
        metadata_jws: file("metadata_jws")?,
        parties,
        reused_keys: Vec::new(),
    })
}

/// `(not_before, not_after)` of a certificate, in Unix seconds.
type Window = (i64, i64);

/// A generated certificate with its key.
struct Issued {
    der: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
    /// The key was created by this run (and must be written), not kept from an earlier one.
    new_key: bool,
    params: CertificateParams,
}

/// Written above the PEM of every private key the test federation creates. PEM readers
/// (rustls-pki-types, OpenSSL, Go) skip text before the `-----BEGIN` line.
const TEST_KEY_NOTE: &str = "\
Private key of a fedtls test federation (fedtls federation init).
Test material only: treat it as public and never use it in production.
";

/// Where the keys come from: new ones, or (with `keep_keys`) those already in the directory.
struct Keys<'a> {
    dir: &'a Path,
    keep: bool,
    reused: Vec<PathBuf>,
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
    fn party(&mut self, name: &str) -> Result<(KeyPair, bool), TestFedError> {
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
    fn signing(&mut self, alg: Algorithm) -> Result<(SigningKey, bool), TestFedError> {
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

const SIGNING_KEY_FILE: &str = "federation-signing-key.jwk";

fn party_key_file(name: &str) -> String {
    format!("certs/{name}.key")
}

struct Writer<'a> {
    dir: &'a Path,
}

impl Writer<'_> {
    fn write(
        &self,
        relative: &str,
        contents: &[u8],
        private: bool,
    ) -> Result<PathBuf, TestFedError> {
        let path = self.dir.join(relative);
        let io = |source| TestFedError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = options.open(&path).map_err(io)?;
        file.write_all(contents).map_err(io)?;
        Ok(path)
    }
}

fn validity(params: &mut CertificateParams, (not_before, not_after): Window) {
    let at = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    params.not_before = at(not_before);
    params.not_after = at(not_after);
}

fn leaf_params(
    common_name: &str,
    organization: &str,
    host: &str,
    window: Window,
) -> Result<CertificateParams, TestFedError> {
    let mut params = CertificateParams::new(vec![host.to_owned()])?;
    if host != "127.0.0.1" {
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, window);
    Ok(params)
}

fn self_signed(
    params: CertificateParams,
    (key, new_key): (KeyPair, bool),
) -> Result<Issued, TestFedError> {
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        new_key,
        params,
    })
}

fn ca(
    common_name: &str,
    organization: &str,
    window: Window,
    key: (KeyPair, bool),
) -> Result<Issued, TestFedError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, window);
    self_signed(params, key)
}

fn issued_by(
    params: CertificateParams,
    ca: &Issued,
    (key, new_key): (KeyPair, bool),
) -> Result<Issued, TestFedError> {
    let issuer = RcgenIssuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        new_key,
        params,
    })
}

fn endpoint(description: &str, base_uri: Option<String>, cert: &Issued, tags: &[&str]) -> Endpoint {
    Endpoint {
        description: Some(description.to_owned()),
        base_uri,
        pins: Pin::of_certificate(&cert.der).into_iter().collect(),
        tags: tags.iter().filter_map(|t| Tag::new(t).ok()).collect(),
        extra: Map::new(),
    }
}

fn issuer(cert: &Issued) -> Issuer {
    Issuer {
        certificate: cert.der.clone(),
        extra: Map::new(),
    }
}

/// Creates a test federation in `dir` (created if missing) and signs its metadata.
///
/// Members: a municipality running an SS 12000 server and a client (self-signed), a supplier
/// whose client and server chain to a private CA, and an authorization server tagged
/// `gnapv1`. An extra client certificate, `unlisted-client`, is deliberately not in the
/// metadata, for negative tests.
///
/// With [`FederationOptions::keep_keys`], the keys already in `dir` are reused, so the pins
/// and the JWKS stay the same; together with [`CertValidity::Fixed`], only the signatures
/// (ECDSA is randomized) and the metadata's `iat`/`exp` change from one run to the next.
/// A kept key that cannot be read stops the run before any file is written.
pub fn init(dir: &Path, options: &FederationOptions) -> Result<TestFederation, TestFedError> {
    if !options.force
        && let Ok(mut entries) = fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(TestFedError::NotEmpty(dir.to_path_buf()));
    }
    let now = crate::verify::unix_now();
    let (window, ca_window) = options.cert_validity.windows(now)?;
    let host = options.host.as_str();
    let mut keys = Keys {
        dir,
        keep: options.keep_keys,
        reused: Vec::new(),
    };

    let school_org = "Exempla kommun";
    let school_server = self_signed(
        leaf_params("school-server", school_org, host, window)?,
        keys.party("school-server")?,
    )?;
    let school_client = self_signed(
        leaf_params("school-client", school_org, host, window)?,
        keys.party("school-client")?,
    )?;
    let supplier_org = "Leverantör Exempel AB";
    let supplier_ca = ca(
        "Leverantör Exempel Root CA",
        supplier_org,
        ca_window,
        keys.party("supplier-ca")?,
    )?;
    let supplier_client = issued_by(
        leaf_params("supplier-client", supplier_org, host, window)?,
        &supplier_ca,
        keys.party("supplier-client")?,
    )?;
    let supplier_server = issued_by(
        leaf_params("supplier-server", supplier_org, host, window)?,
        &supplier_ca,
        keys.party("supplier-server")?,
    )?;
    let authority_org = "Exempelmyndigheten";
    let authserver = self_signed(
        leaf_params("authserver", authority_org, host, window)?,
        keys.party("authserver")?,
    )?;
    let unlisted = self_signed(
        leaf_params("unlisted-client", "Okänd AB", host, window)?,
        keys.party("unlisted-client")?,
    )?;
    let (signing_key, new_signing_key) = keys.signing(options.algorithm)?;

    let school_id = "https://school.test.example";
    let supplier_id = "https://supplier.test.example/moa";
    let authority_id = "https://auth.test.example";
    let ports = options.ports;
    let school_base = format!("https://{host}:{}/ss12000/v2.0/", ports.school);
    let supplier_base = format!("https://{host}:{}/ss12000/", ports.supplier);
    let auth_base = format!("https://{host}:{}/transaction", ports.auth);

    let mut school_extensions = Map::new();
    school_extensions.insert(
        SAML_SCOPE_EXTENSION.to_owned(),
        json!({"scope": ["exempla.test.example", "skola.exempla.test.example"]}),
    );
    let entities = vec![
        Entity {
            entity_id: school_id.to_owned(),
            organization: Some(school_org.to_owned()),
            organization_id: OrganizationId::new("SE2120009999").ok(),
            issuers: vec![issuer(&school_server), issuer(&school_client)],
            servers: vec![endpoint(
                "SS 12000 API",
                Some(school_base.clone()),
                &school_server,
                &["egilv1"],
            )],
            clients: vec![endpoint(
                "SS 12000 client",
                None,
                &school_client,
                &["egilv1"],
            )],
            scopes: vec![
                "exempla.test.example".to_owned(),
                "skola.exempla.test.example".to_owned(),
            ],
            extensions: Some(school_extensions),
            extra: Map::new(),
        },
        Entity {
            entity_id: supplier_id.to_owned(),
            organization: Some(supplier_org.to_owned()),
            organization_id: OrganizationId::new("SE5566000001").ok(),
            issuers: vec![issuer(&supplier_ca)],
            servers: vec![endpoint(
                "SS 12000 API (supplier)",
                Some(supplier_base.clone()),
                &supplier_server,
                &["egilv1"],
            )],
            clients: vec![endpoint("Sync client", None, &supplier_client, &["egilv1"])],
            scopes: Vec::new(),
            extensions: None,
            extra: Map::new(),
        },
        Entity {
            entity_id: authority_id.to_owned(),
            organization: Some(authority_org.to_owned()),
            organization_id: OrganizationId::new("SE2021004185").ok(),
            issuers: vec![issuer(&authserver)],
            servers: vec![endpoint(
                "Authorization server (GNAP)",
                Some(auth_base.clone()),
                &authserver,
                &["gnapv1"],
            )],
            clients: Vec::new(),
            scopes: Vec::new(),
            extensions: None,
            extra: Map::new(),
        },
    ];
    let metadata = Metadata {
        version: "1.0.0".to_owned(),
        cache_ttl: Some(3600),
        claims: Default::default(),
        entities,
        rejected: Vec::new(),
        warnings: Vec::new(),
        extra: Map::new(),
    };

    let payload = match serde_json::to_value(&metadata) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(TestFedError::NotAnObject);
        }
    };
    let jws = sign_metadata(
        &payload,
        &[&signing_key],
        &SignOptions {
            iss: options.iss.clone(),
            lifetime_secs: options.metadata_lifetime_secs,
            now,
            format: JwsFormat::General,
            default_cache_ttl: 3600,
        },
    )?;

    fs::create_dir_all(dir).map_err(|source| TestFedError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let out = Writer { dir };
    let signing_key_path = if new_signing_key {
        out.write(
            SIGNING_KEY_FILE,
            signing_key.to_private_jwk_json().as_bytes(),
            true,
        )?
    } else {
        dir.join(SIGNING_KEY_FILE)
    };
    let jwks_path = out.write(
        "jwks.json",
        Jwks::from_keys(vec![signing_key.public_jwk()])
            .to_json()
            .as_bytes(),
        false,
    )?;
    let pretty = serde_json::to_vec_pretty(&payload).unwrap_or_default();
    let metadata_json = out.write("metadata.json", &pretty, false)?;
    let metadata_jws = out.write("metadata.jws", jws.as_bytes(), false)?;

    let mut parties = Vec::new();
    let mut add = |name: &str,
                   entity_id: Option<&str>,
                   role: &str,
                   cert: &Issued,
                   ca: Option<&Issued>,
                   base_uri: Option<&str>,
                   tags: &[&str]|
     -> Result<(), TestFedError> {
        let cert_path = out.write(&format!("certs/{name}.pem"), cert.pem.as_bytes(), false)?;
        let key_path = if cert.new_key {
            let pem = format!("{TEST_KEY_NOTE}{}", cert.key.serialize_pem());
            out.write(&party_key_file(name), pem.as_bytes(), true)?
        } else {
            dir.join(party_key_file(name))
        };
        let chain = match ca {
            Some(ca) => Some(out.write(
                &format!("certs/{name}-chain.pem"),
                format!("{}{}", cert.pem, ca.pem).as_bytes(),
                false,
            )?),
            None => None,
        };
        parties.push(Party {
            name: name.to_owned(),
            entity_id: entity_id.map(str::to_owned),
            role: role.to_owned(),
            cert: cert_path,
            key: key_path,
            chain,
            pin: Pin::of_certificate(&cert.der)?,
            base_uri: base_uri.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        });
        Ok(())
    };
    add(
        "school-server",
        Some(school_id),
        "server",
        &school_server,
        None,
        Some(&school_base),
        &["egilv1"],
    )?;
    add(
        "school-client",
        Some(school_id),
        "client",
        &school_client,
        None,
        None,
        &["egilv1"],
    )?;
    add(
        "supplier-ca",
        Some(supplier_id),
        "ca",
        &supplier_ca,
        None,
        None,
        &[],
    )?;
    add(
        "supplier-client",
        Some(supplier_id),
        "client",
        &supplier_client,
        Some(&supplier_ca),
        None,
        &["egilv1"],
    )?;
    add(
        "supplier-server",
        Some(supplier_id),
        "server",
        &supplier_server,
        Some(&supplier_ca),
        Some(&supplier_base),
        &["egilv1"],
    )?;
    add(
        "authserver",
        Some(authority_id),
        "server",
        &authserver,
        None,
        Some(&auth_base),
        &["gnapv1"],
    )?;
    add(
        "unlisted-client",
        None,
        "client",
        &unlisted,
        None,
        None,
        &[],
    )?;

    let federation = TestFederation {
        dir: dir.to_path_buf(),
        iss: options.iss.clone(),
        jwks: jwks_path,
        signing_key: signing_key_path,
        metadata_json,
        metadata_jws,
        parties,
        reused_keys: keys.reused,
    };
    out.write("federation.json", manifest(&federation).as_bytes(), false)?;
    Ok(federation)
}

/// The manifest, with paths relative to the federation directory.
fn manifest(federation: &TestFederation) -> String {
    let rel = |p: &Path| {
        p.strip_prefix(&federation.dir)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let parties: Vec<Value> = federation
        .parties
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "entity_id": p.entity_id,
                "role": p.role,
                "cert": rel(&p.cert),
                "key": rel(&p.key),
                "chain": p.chain.as_deref().map(rel),
                "pin": p.pin,
                "base_uri": p.base_uri,
                "tags": p.tags,
            })
        })
        .collect();
    let value = json!({
        "iss": federation.iss,
        "jwks": rel(&federation.jwks),
        "signing_key": rel(&federation.signing_key),
        "metadata_json": rel(&federation.metadata_json),
        "metadata_jws": rel(&federation.metadata_jws),
        "parties": parties,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

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
