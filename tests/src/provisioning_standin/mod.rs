//! **A local stand-in of Skolverket's Provisioning API** for tests and demos. It is not
//! Skolverket's service: it implements the documented protocol
//! (`specs/skolverket-provisioning-api.openapi.yaml`, PROTOCOL-NOTES §5) over real HTTPS.
//!
//! - HTTPS (rustls, aws-lc-rs) with a certificate from its own rcgen CA
//!   ([`ProvisioningStandIn::ca_certificate`] for the client to trust).
//! - Bearer JWTs from a GNAP authorization server, verified against its JWKS: ES256, `kid`,
//!   `exp`/`nbf`, and a `provisioning-api` grant for this API's base URL; otherwise 403 with
//!   LogEntry `5002`.
//! - For persons, duties, groups and activities: `GET /X`, `POST /X/lookup`, `GET /X/{id}`,
//!   `POST /X/bulk?updateIfExists=`, `PUT /X/bulk`, `POST /X/bulk/delete` (202 with `jobId`
//!   and `Location`), `GET /X/bulk/jobs/{id}` and `…/isCompleted`; `GET /alive`.
//! - Jobs run asynchronously: a job completes after a configurable number of polls, and only
//!   then are its objects stored, checked (required fields, references to objects that exist)
//!   and given per-object results (`Success`, `Warning`, `Error` with LogEntry lists).
//! - Requests over the body limit (200 KB) get 413 (`5020`); more than 5 bulk/poll requests or
//!   10 reads in one second get 429 (`5021`); every answer carries `x-ratelimit-*`.
//! - Tests inject failures ([`ProvisioningStandIn::fail_object`], [`ProvisioningStandIn::rate_limit_next`],
//!   [`ProvisioningStandIn::set_job_polls`]) and read the order of requests
//!   ([`ProvisioningStandIn::requests`]).

mod auth;
mod service;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::jwk::JwkSet;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use kontosynk_client::push::ObjectType;
use kontosynk_client::push::pack::MAX_REQUEST_BYTES;

pub use service::RequestKind;

/// The path the real API lives under; the stand-in serves the same.
pub const BASE_PATH: &str = "/provtjanst/provisioning/v1";

/// How the stand-in behaves.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// The authorization server's keys (its `/.well-known/jwks.json`).
    pub jwks: JwkSet,
    /// Largest accepted request body.
    pub max_request_bytes: usize,
    /// Bulk submissions and job polls allowed per second.
    pub bulk_per_sec: u32,
    /// Reads allowed per second.
    pub read_per_sec: u32,
    /// How many polls (`isCompleted` or status) a job answers "not yet" before it completes.
    pub job_polls: u32,
}

impl StandInConfig {
    /// The documented limits (200 KB, 5/s, 10/s), jobs done at the second poll.
    pub fn new(jwks: JwkSet) -> StandInConfig {
        StandInConfig {
            jwks,
            max_request_bytes: MAX_REQUEST_BYTES,
            bulk_per_sec: 5,
            read_per_sec: 10,
            job_polls: 1,
        }
    }
}

/// One request the stand-in answered, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Arrival number, from 0.
    pub seq: u64,
    /// What it was.
    pub kind: RequestKind,
    /// The object type, when the path names one.
    pub object_type: Option<ObjectType>,
    /// The job, for bulk submissions (the new job) and polls.
    pub job_id: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Body size in bytes.
    pub body_bytes: usize,
    /// Object ids in a bulk body.
    pub ids: Vec<String>,
}

/// Failures tests can inject.
#[derive(Debug, Default)]
struct Failures {
    /// Object id → the error message its job result carries.
    objects: HashMap<String, String>,
    /// The next this-many rate-limited requests get 429.
    rate_limit_next: u32,
}

#[derive(Debug)]
struct Job {
    object_type: ObjectType,
    delete: bool,
    update_if_exists: bool,
    items: Vec<(String, Option<Value>)>,
    polls_left: u32,
    results: Option<Vec<Value>>,
}

#[derive(Debug, Default)]
struct Window {
    second: u64,
    count: u32,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<ObjectType, BTreeMap<String, Value>>,
    jobs: HashMap<String, Job>,
    requests: Vec<RecordedRequest>,
    failures: Failures,
    bulk_window: Window,
    read_window: Window,
    job_polls: u32,
}

struct Shared {
    config: StandInConfig,
    base_url: String,
    state: Mutex<State>,
    started: std::time::Instant,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running stand-in; stops when dropped.
pub struct ProvisioningStandIn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca: CertificateDer<'static>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ProvisioningStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningStandIn")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for ProvisioningStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the stand-in could not start.
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    /// Certificate generation failed.
    #[error("stand-in certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// TLS setup failed.
    #[error("stand-in TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The address could not be bound.
    #[error("stand-in bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

impl ProvisioningStandIn {
    /// Starts a stand-in on `127.0.0.1` (an ephemeral port).
    pub async fn start(config: StandInConfig) -> Result<ProvisioningStandIn, StandInError> {
        ProvisioningStandIn::bind(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a stand-in on `addr`.
    pub async fn bind(
        config: StandInConfig,
        addr: SocketAddr,
    ) -> Result<ProvisioningStandIn, StandInError> {
        let (ca, chain, key) = certificates()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(fedtls::tls::provider())
            .with_protocol_versions(fedtls::tls::PROTOCOL_VERSIONS)?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StandInError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StandInError::Bind { addr, source })?;
        let job_polls = config.job_polls;
        let shared = Arc::new(Shared {
            config,
            base_url: format!("https://{addr}{BASE_PATH}"),
            state: Mutex::new(State {
                job_polls,
                ..State::default()
            }),
            started: std::time::Instant::now(),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&shared)));
        Ok(ProvisioningStandIn {
            shared,
            addr,
            ca,
            task,
        })
    }

    /// The API's base URL (`https://127.0.0.1:PORT/provtjanst/provisioning/v1`).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate that issued the stand-in's TLS certificate.
    pub fn ca_certificate(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The stored objects of a type, by id.
    pub fn objects(&self, object_type: ObjectType) -> BTreeMap<String, Value> {
        self.shared
            .lock()
            .objects
            .get(&object_type)
            .cloned()
            .unwrap_or_default()
    }

    /// Makes every job result for `id` an `Error` with `message` until cleared.
    pub fn fail_object(&self, id: &str, message: &str) {
        self.shared
            .lock()
            .failures
            .objects
            .insert(id.to_owned(), message.to_owned());
    }

    /// Stops failing `id`.
    pub fn clear_object_failure(&self, id: &str) {
        self.shared.lock().failures.objects.remove(id);
    }

    /// Answers the next `n` rate-limited requests with 429 (a burst from other clients).
    pub fn rate_limit_next(&self, n: u32) {
        self.shared.lock().failures.rate_limit_next = n;
    }

    /// Jobs submitted from now on answer "not yet" to this many polls.
    pub fn set_job_polls(&self, polls: u32) {
        self.shared.lock().job_polls = polls;
    }

    /// Lets every unfinished job complete at its next poll.
    pub fn finish_jobs(&self) {
        for job in self.shared.lock().jobs.values_mut() {
            job.polls_left = 0;
        }
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "stand-in TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(service::handle(&shared, request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "stand-in connection ended");
            }
        });
    }
}

type Certificates = (
    CertificateDer<'static>,
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
);

/// A CA and a leaf for `localhost` / `127.0.0.1` issued by it.
fn certificates() -> Result<Certificates, rcgen::Error> {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        "Provisioning API stand-in CA (local, for tests)",
    );
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "provisioning-standin.localhost");
    leaf.distinguished_name = dn;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    Ok((
        ca_cert.der().clone(),
        vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key,
    ))
}
