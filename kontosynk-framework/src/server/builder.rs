//! Configuring a server, binding its listeners, and the state every connection reads.

use std::net::SocketAddr;
use std::sync::Arc;

use fedtls::snapshot::SnapshotSource;
use fedtls::store::MetadataSources;
use fedtls::tls::{PinnedClientVerifier, ReloadableCertResolver};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::recorder::RecordingVerifier;
use super::{BoundServer, Limits, RefusalResponder, ServerError, TrustedProxy};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::rate_limit::{RateLimit, RateLimiter};

pub(super) enum Transport {
    MutualTls(Arc<ReloadableCertResolver>),
    BehindTerminator(Vec<TrustedProxy>),
}

/// Configures a server. See the crate documentation for an example.
pub struct ServerBuilder {
    source: Arc<dyn SnapshotSource>,
    store: Option<MetadataSources>,
    transport: Option<Transport>,
    require_issuer_chain: bool,
    check_validity: bool,
    issuer_certificates: bool,
    refusal: Option<RefusalResponder>,
    optional_client_certificates: bool,
    policy: Policy,
    limits: Limits,
    rate_limit: Option<RateLimit>,
    admin: Option<(SocketAddr, Option<serde_json::Value>)>,
    worker_threads: usize,
}

impl ServerBuilder {
    /// A server deciding with `source` (a fixed snapshot cell, or a live store).
    pub fn new(source: Arc<dyn SnapshotSource>) -> Self {
        Self {
            source,
            store: None,
            transport: None,
            require_issuer_chain: false,
            check_validity: true,
            issuer_certificates: false,
            refusal: None,
            optional_client_certificates: false,
            policy: Policy::default(),
            limits: Limits::default(),
            rate_limit: None,
            admin: None,
            worker_threads: 0,
        }
    }

    /// A server fed by live metadata: one store (`MetadataStore`, converted) or several
    /// federations' merged ([`MetadataSources`]); their status also feeds `/readyz` and
    /// `/metrics`, one entry per source.
    pub fn with_store(store: impl Into<MetadataSources>) -> Self {
        let store: MetadataSources = store.into();
        let mut builder = Self::new(Arc::new(store.clone()));
        builder.store = Some(store);
        builder
    }

    /// Terminates mutual TLS here with this (reloadable) server certificate.
    pub fn tls(mut self, resolver: Arc<ReloadableCertResolver>) -> Self {
        self.transport = Some(Transport::MutualTls(resolver));
        self
    }

    /// Plain HTTP behind a TLS terminator that forwards the client certificate in
    /// `Client-Cert`; the header is honoured only from `trusted` addresses.
    pub fn behind_terminator(mut self, trusted: Vec<TrustedProxy>) -> Self {
        self.transport = Some(Transport::BehindTerminator(trusted));
        self
    }

    /// Also require the client certificate to chain to its entity's `issuers`.
    pub fn require_issuer_chain(mut self, yes: bool) -> Self {
        self.require_issuer_chain = yes;
        self
    }

    /// Enforce the client certificate's validity period (on by default).
    pub fn check_validity(mut self, yes: bool) -> Self {
        self.check_validity = yes;
        self
    }

    /// Also accept a client certificate that is listed byte for byte among an entity's
    /// `issuers` although its pin is not a client pin (the SUNET authorization server's
    /// rule); such a peer is identified as the first entity listing it, with no tags. Off by
    /// default: FedTLS identifies clients by pin.
    pub fn accept_issuer_certificates(mut self, yes: bool) -> Self {
        self.issuer_certificates = yes;
        self
    }

    /// Answer requests refused before the handler with this instead of the default JSON
    /// error body (`{"error": CODE, "message": TEXT}`).
    pub fn refusal_response(mut self, responder: RefusalResponder) -> Self {
        self.refusal = Some(responder);
        self
    }

    /// Let clients connect without a certificate (off by default). Client authentication is
    /// still offered, and a presented certificate is checked exactly as before (pin in the
    /// metadata, policy, rate limit). A request without any client certificate reaches the
    /// handler **without** a [`PeerIdentity`](fedtls::tls::PeerIdentity) in its extensions: the handler must then
    /// authenticate it another way (a bearer token) and refuse it otherwise. Handlers that
    /// look for a `PeerIdentity` therefore fail closed.
    pub fn optional_client_certificates(mut self, yes: bool) -> Self {
        self.optional_client_certificates = yes;
        self
    }

    /// Who may use the server once authenticated.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Time and size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Per-entity rate limit (429 with `Retry-After` beyond it).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Serve `/healthz`, `/readyz`, `/metrics` and `/metadata` (this server's own member
    /// metadata, if given) on a separate plain-HTTP address.
    pub fn admin(mut self, addr: SocketAddr, own_metadata: Option<serde_json::Value>) -> Self {
        self.admin = Some((addr, own_metadata));
        self
    }

    /// Serve connections on `threads` dedicated threads, each running its own
    /// single-threaded runtime, instead of on the runtime that calls [`BoundServer::serve`]
    /// (the default, `0`). A connection stays on one thread for its whole life, so a request
    /// never wakes tasks on another thread: for light, uniform requests (a proxy) this costs
    /// markedly less CPU per request. Handlers with heavy or uneven work are better off on
    /// the caller's work-stealing runtime. Tasks a handler spawns run on its connection's
    /// thread and end when the server does.
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = threads;
        self
    }

    /// Binds the listeners; nothing is served until [`BoundServer::serve`].
    pub async fn bind(self, addr: SocketAddr) -> Result<BoundServer, ServerError> {
        let transport = self.transport.ok_or(ServerError::NoTransport)?;
        let verifier = PinnedClientVerifier::new(Arc::clone(&self.source))
            .require_issuer_chain(self.require_issuer_chain)
            .check_validity(self.check_validity)
            .accept_issuer_certificates(self.issuer_certificates)
            .mandatory(!self.optional_client_certificates);
        let verifier = Arc::new(verifier);
        let acceptor = match &transport {
            Transport::MutualTls(resolver) => {
                let config = fedtls::tls::server_config_with_resolver(
                    // Records whom it accepts, for the connection the handshake opens.
                    Arc::new(RecordingVerifier(Arc::clone(&verifier))),
                    Arc::clone(resolver),
                    &[b"h2", b"http/1.1"],
                )?;
                Some(TlsAcceptor::from(Arc::new(config)))
            }
            Transport::BehindTerminator(_) => None,
        };
        let (trusted, own_certificate) = match transport {
            Transport::BehindTerminator(list) => (list, None),
            Transport::MutualTls(resolver) => (Vec::new(), Some(resolver)),
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let admin = match self.admin {
            Some((admin_addr, own)) => Some((
                TcpListener::bind(admin_addr)
                    .await
                    .map_err(|source| ServerError::Bind {
                        addr: admin_addr,
                        source,
                    })?,
                own,
            )),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        Ok(BoundServer {
            listener,
            admin,
            worker_threads: self.worker_threads,
            shared: Arc::new(Shared {
                source: self.source,
                store: self.store,
                acceptor,
                verifier,
                trusted,
                issuer_certificates: self.issuer_certificates,
                refusal: self.refusal,
                optional_client_certificates: self.optional_client_certificates,
                policy: self.policy,
                rate_limiter: self.rate_limit.map(RateLimiter::new),
                limits: self.limits,
                metrics,
                own_certificate,
            }),
        })
    }
}

pub(super) struct Shared {
    pub(super) source: Arc<dyn SnapshotSource>,
    pub(super) store: Option<MetadataSources>,
    pub(super) acceptor: Option<TlsAcceptor>,
    pub(super) verifier: Arc<PinnedClientVerifier>,
    pub(super) trusted: Vec<TrustedProxy>,
    pub(super) issuer_certificates: bool,
    pub(super) refusal: Option<RefusalResponder>,
    pub(super) optional_client_certificates: bool,
    pub(super) policy: Policy,
    pub(super) rate_limiter: Option<RateLimiter>,
    pub(super) limits: Limits,
    pub(super) metrics: Arc<Metrics>,
    /// The server certificate, when it terminates TLS itself (for `/metrics`).
    pub(super) own_certificate: Option<Arc<ReloadableCertResolver>>,
}
