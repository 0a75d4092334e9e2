//! The member's mutual-TLS HTTP client for one federation server.
//!
//! ```no_run
//! # async fn run(store: fedtls::store::MetadataStore) -> Result<(), kontosynk_client::client::ClientError> {
//! use std::path::Path;
//! use kontosynk_client::client::{FederationClient, Identity};
//! use kontosynk_client::discovery::{Choice, ServerQuery};
//!
//! let identity = Identity::from_pem_files(Path::new("client.pem"), Path::new("client.key"))?;
//! let client = FederationClient::builder(store.cell(), identity)
//!     .discover(ServerQuery::entity("https://school.example/fedtls").with_tag("egilv1"), Choice::Unique)
//!     .rate_limit(10.0)
//!     .build()?;
//! let response = client.send(client.get("persons?limit=100")?).await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! What the client guarantees, whoever calls it:
//! - the server must present a certificate whose SPKI pin the **current** metadata lists for
//!   the chosen server (read again at every handshake, so pin rotations and removals apply);
//! - no request is sent and no connection made while the metadata is missing or expired, or
//!   while it does not list the member's own client pin (or that certificate has expired):
//!   the error says which pin and what to do, where a server would only close the connection;
//! - the member's certificate chain is presented (mutual TLS), aws-lc-rs is the only crypto
//!   provider, ALPN offers `h2` then `http/1.1`;
//! - redirects are followed only within the server's own origin (its pins vouch for nothing
//!   else); one off the origin fails the request, naming its target;
//! - idempotent requests are retried with backoff, 429/503 honour `Retry-After` and
//!   `x-ratelimit-reset`, and an optional client-side rate is kept.

mod identity;
#[cfg(test)]
mod own_tests;
pub mod ratelimit;
mod redirect;
pub mod retry;
mod sender;
mod verifier;

use std::sync::Arc;
use std::time::Duration;

use fedtls::snapshot::SnapshotSource;
use fedtls::tls::SignatureChecked;
use http::Method;
use reqwest::Url;

use crate::discovery::{Choice, DiscoveryError, ServerQuery, ServerTarget};

pub use fedtls::tls::{OwnCertificate, OwnCertificateProblem};
pub use identity::{Identity, IdentityError};
pub use ratelimit::{Pacer, RateLimitInfo};
pub use redirect::{MAX_SAME_ORIGIN_REDIRECTS, RedirectRefused};
pub use retry::RetryPolicy;
pub use sender::{Sender, error_chain};
pub use verifier::MetadataPinnedVerifier;

/// ALPN offered by default: HTTP/2, then HTTP/1.1.
pub const ALPN_H2_HTTP11: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN offered when HTTP/1.1 is forced.
pub const ALPN_HTTP11: &[&[u8]] = &[b"http/1.1"];

/// Why a client could not be built or a request not completed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// There is no valid federation metadata: the client refuses to connect (fail closed).
    #[error("refusing to connect: no valid federation metadata ({detail})")]
    NoMetadata {
        /// Why.
        detail: String,
    },
    /// No server could be chosen from the metadata.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// Neither a server nor a query was given to the builder.
    #[error("no server chosen: call ClientBuilder::server or ClientBuilder::discover")]
    NoServer,
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// rustls refused the configuration (for example, the key does not match the certificate).
    #[error("TLS client configuration refused: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest could not build the client.
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// A path could not be joined to the server's `base_uri`.
    #[error("cannot make a URL from {base} and {path:?}: {reason}")]
    Url {
        /// The server's base URI.
        base: String,
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The request could not be built (bad header value, body serialization).
    #[error("cannot build the request: {detail}")]
    BuildRequest {
        /// The error with its causes.
        detail: String,
        /// The reqwest error.
        #[source]
        source: reqwest::Error,
    },
    /// The request was not sent: the member's own certificate would be refused (not listed
    /// in the metadata, expired, not yet valid).
    #[error("{method} {url} not sent: {problem}")]
    OwnCertificate {
        /// The HTTP method.
        method: String,
        /// The URL.
        url: String,
        /// What is wrong with the certificate, and what to do.
        problem: OwnCertificateProblem,
    },
    /// The own certificate cannot be read.
    #[error("your client certificate cannot be read: {0}")]
    OwnCertificateUnreadable(#[from] fedtls::tls::CertificateReadError),
    /// The request failed in transport (DNS, TCP, TLS, timeout, protocol), after retries.
    #[error("{method} {url} failed: {detail}")]
    Request {
        /// The HTTP method.
        method: String,
        /// The URL.
        url: String,
        /// The error with its causes.
        detail: String,
        /// The reqwest error.
        #[source]
        source: reqwest::Error,
    },
}

/// Builds a [`FederationClient`]. Defaults: connect timeout 10 s, whole-request timeout
/// 60 s, [`RetryPolicy::default`], no client-side rate, HTTP/2 with HTTP/1.1 fallback, host
/// names not checked (the metadata pins are the trust), no proxy.
#[derive(Debug)]
pub struct ClientBuilder {
    source: Arc<dyn SnapshotSource>,
    identity: Identity,
    server: Option<ServerTarget>,
    query: Option<(ServerQuery, Choice)>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    rate: Option<f64>,
    http1_only: bool,
    check_hostname: bool,
    user_agent: String,
}

impl ClientBuilder {
    /// Call this server (from [`ServerQuery::find`] or [`ServerQuery::select`]).
    pub fn server(mut self, target: ServerTarget) -> Self {
        self.server = Some(target);
        self.query = None;
        self
    }

    /// Choose the server at build time from the current metadata.
    pub fn discover(mut self, query: ServerQuery, choice: Choice) -> Self {
        self.query = Some((query, choice));
        self.server = None;
        self
    }

    /// Time allowed for TCP connect and TLS handshake.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request (per attempt); `None` for no limit (long streams).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// At most `per_second` requests per second from this client and its clones.
    pub fn rate_limit(mut self, per_second: f64) -> Self {
        self.rate = Some(per_second);
        self
    }

    /// Offer only HTTP/1.1 (for servers whose HTTP/2 is broken).
    pub fn http1_only(mut self, yes: bool) -> Self {
        self.http1_only = yes;
        self
    }

    /// Also require the server certificate to name the `base_uri` host. Off by default:
    /// FedTLS trusts pins, and real members serve certificates for other names.
    pub fn check_hostname(mut self, yes: bool) -> Self {
        self.check_hostname = yes;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// Resolves the server (if a query was given) against the current metadata and builds
    /// the client. Fails when there is no valid metadata.
    pub fn build(self) -> Result<FederationClient, ClientError> {
        let snapshot = self
            .source
            .current()
            .ok_or_else(|| ClientError::NoMetadata {
                detail: "none is loaded, or the newest has expired".to_owned(),
            })?;
        let target = match (self.server, self.query) {
            (Some(target), _) => target,
            (None, Some((query, choice))) => query.select(snapshot.index(), choice)?,
            (None, None) => return Err(ClientError::NoServer),
        };
        let verifier = SignatureChecked::new(MetadataPinnedVerifier::new(
            Arc::clone(&self.source),
            &target,
            self.check_hostname,
        ));
        let alpn = if self.http1_only {
            ALPN_HTTP11
        } else {
            ALPN_H2_HTTP11
        };
        let tls =
            fedtls::tls::client_config(Arc::new(verifier), Some(self.identity.to_rustls()), alpn)?;
        let mut http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .no_proxy()
            .redirect(redirect::policy())
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent);
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        if self.http1_only {
            http = http.http1_only();
        }
        let http = http.build().map_err(ClientError::Build)?;
        let own = OwnCertificate::read(&self.identity.chain()[0], fedtls::index::Role::Client)?;
        let mut sender = Sender::new(http)
            .with_retry(self.retry)
            .with_metadata_guard(self.source)
            .with_own_certificate(own);
        if let Some(rate) = self.rate {
            sender = sender.with_rate_limit(rate);
        }
        Ok(FederationClient { sender, target })
    }
}

/// A mutual-TLS client for one server of the federation. Cheap to clone (clones share the
/// connection pool, pacer and rate-limit state).
#[derive(Debug, Clone)]
pub struct FederationClient {
    sender: Sender,
    target: ServerTarget,
}

impl FederationClient {
    /// Starts a builder: `source` is the metadata (e.g. `MetadataStore::cell()`), `identity`
    /// the member's client certificate and key.
    pub fn builder(source: Arc<dyn SnapshotSource>, identity: Identity) -> ClientBuilder {
        ClientBuilder {
            source,
            identity,
            server: None,
            query: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Some(Duration::from_secs(60)),
            retry: RetryPolicy::default(),
            rate: None,
            http1_only: false,
            check_hostname: false,
            user_agent: concat!("kontosynk/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// The server this client calls.
    pub fn target(&self) -> &ServerTarget {
        &self.target
    }

    /// The server's `base_uri`.
    pub fn base_uri(&self) -> &Url {
        &self.target.base_uri
    }

    /// The sender (retries, pacing, observed rate limits).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The `x-ratelimit-*` values of the latest response that carried any.
    pub fn rate_limit(&self) -> Option<RateLimitInfo> {
        self.sender.rate_limit()
    }

    /// `path` (relative, may carry a query) resolved under `base_uri`, which is treated as
    /// a directory: `https://h/ss12000/v2.0` + `persons` = `https://h/ss12000/v2.0/persons`.
    /// Absolute URLs must be on the server's origin.
    pub fn url(&self, path: &str) -> Result<Url, ClientError> {
        let error = |reason: &str| ClientError::Url {
            base: self.target.base_uri.to_string(),
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if let Ok(absolute) = Url::parse(path) {
            if absolute.origin() != self.target.base_uri.origin() {
                return Err(error("an absolute URL must be on the server's origin"));
            }
            return Ok(absolute);
        }
        let mut base = self.target.base_uri.clone();
        if !base.path().ends_with('/') {
            let with_slash = format!("{}/", base.path());
            base.set_path(&with_slash);
        }
        base.join(path.trim_start_matches('/'))
            .map_err(|e| error(&e.to_string()))
    }

    /// A request builder for `method` on `path` (see [`FederationClient::url`]).
    pub fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        Ok(self.sender.http().request(method, self.url(path)?))
    }

    /// A GET request builder for `path`.
    pub fn get(&self, path: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        self.request(Method::GET, path)
    }

    /// Sends a request built with this client (metadata guard, pacing, retries).
    pub async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        self.sender.send_builder(builder).await
    }
}

#[cfg(test)]
mod tests;
