//! The mutual-TLS HTTP server: accept loop, handshakes, per-request identity and policy.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedtls::Pin;
use fedtls::snapshot::SnapshotSource;
use fedtls::store::MetadataStore;
use fedtls::tls::{PeerIdentity, PeerRejection, PinnedClientVerifier, ReloadableCertResolver};
use fedtls::verify::unix_now;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::access_log::AccessLog;
use crate::admin::{self, AdminState};
use crate::client_cert::{CLIENT_CERT_HEADER, parse_client_cert};
use crate::io::ActivityIo;
use crate::lock;
use crate::metrics::{Metrics, handshake};
use crate::policy::Policy;
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::response::{Body, json_error};
use crate::workers::{ServeConnection, WorkerPool};

/// The request body handlers receive: the client's stream, cut off at the body limit.
pub type RequestBody = Limited<Incoming>;

/// Serves authenticated requests. Implemented for every suitable async closure.
pub trait Handler: Clone + Send + Sync + 'static {
    /// The response future.
    type Future: Future<Output = Response<Body>> + Send + 'static;
    /// Answers one request; its extensions hold the [`PeerIdentity`] and [`ConnectionInfo`].
    fn call(&self, request: Request<RequestBody>) -> Self::Future;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request<RequestBody>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    type Future = Fut;
    fn call(&self, request: Request<RequestBody>) -> Fut {
        self(request)
    }
}

/// Facts about the connection a request arrived on, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    /// The peer's socket address (the proxy's, behind a TLS terminator).
    pub remote_addr: SocketAddr,
    /// `TLSv1.3`, `TLSv1.2`, or `None` behind a terminator.
    pub tls_version: Option<&'static str>,
    /// The negotiated ALPN protocol (`h2` or `http/1.1`, the two the server offers).
    pub alpn: Option<&'static str>,
}

/// The client's certificate (DER) for this request: from the TLS handshake, or from the
/// `Client-Cert` header of a trusted terminator. In every request's extensions, for
/// handlers that pass it on (for example as `Client-Cert` to a backend).
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<CertificateDer<'static>>);

/// Shapes the response for a request the server refuses before the handler (no metadata,
/// unknown or unreadable client certificate, untrusted terminator): it gets the status, a
/// stable code and a message. For servers whose protocol defines its own error bodies (the
/// GNAP authorization server); see [`ServerBuilder::refusal_response`].
pub type RefusalResponder =
    Arc<dyn Fn(StatusCode, &'static str, String) -> Response<Body> + Send + Sync>;

/// Time and size limits; the defaults suit a federation API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// An HTTP/1 request head must arrive within this.
    pub header_read_timeout: Duration,
    /// A connection without requests or traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A handler must answer within this (503 otherwise).
    pub request_timeout: Duration,
    /// Largest request body in bytes (413 beyond it).
    pub max_body: u64,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            request_timeout: Duration::from_secs(60),
            max_body: 10 * 1024 * 1024,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// An address range from which a TLS terminator may forward `Client-Cert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for TrustedProxy {
    type Err = String;

    /// `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl TrustedProxy {
    /// True when `addr` lies in this range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

enum Transport {
    MutualTls(Arc<ReloadableCertResolver>),
    BehindTerminator(Vec<TrustedProxy>),
}

/// Configures a server. See the crate documentation for an example.
pub struct ServerBuilder {
    source: Arc<dyn SnapshotSource>,
    store: Option<MetadataStore>,
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

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Neither `tls` nor `behind_terminator` was configured.
    #[error("no transport configured: call tls(...) or behind_terminator(...)")]
    NoTransport,
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
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

    /// A server fed by a live metadata store (its status also feeds `/readyz` and `/metrics`).
    pub fn with_store(store: MetadataStore) -> Self {
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
    /// handler **without** a [`PeerIdentity`] in its extensions: the handler must then
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
            .mandatory(!self.optional_client_certificates)
            .into_arc();
        let acceptor = match &transport {
            Transport::MutualTls(resolver) => {
                let config = fedtls::tls::server_config_with_resolver(
                    Arc::clone(&verifier),
                    Arc::clone(resolver),
                    &[b"h2", b"http/1.1"],
                )?;
                Some(TlsAcceptor::from(Arc::new(config)))
            }
            Transport::BehindTerminator(_) => None,
        };
        let trusted = match transport {
            Transport::BehindTerminator(list) => list,
            Transport::MutualTls(_) => Vec::new(),
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
            }),
        })
    }
}

struct Shared {
    source: Arc<dyn SnapshotSource>,
    store: Option<MetadataStore>,
    acceptor: Option<TlsAcceptor>,
    verifier: Arc<dyn ClientCertVerifier>,
    trusted: Vec<TrustedProxy>,
    issuer_certificates: bool,
    refusal: Option<RefusalResponder>,
    optional_client_certificates: bool,
    policy: Policy,
    rate_limiter: Option<RateLimiter>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

/// A server with bound listeners, ready to serve.
pub struct BoundServer {
    listener: TcpListener,
    admin: Option<(TcpListener, Option<serde_json::Value>)>,
    worker_threads: usize,
    shared: Arc<Shared>,
}

impl BoundServer {
    /// The address clients connect to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The server's counters (also rendered at `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish within the grace period, and returns.
    pub async fn serve<H: Handler>(self, handler: H, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let serve = connection_future(&self.shared, &handler, &stop_rx);
        let pool = self.start_workers(&serve);
        let admin_task = self.admin.map(|(listener, own)| {
            let state = AdminState {
                source: Arc::clone(&self.shared.source),
                store: self.shared.store.clone(),
                metrics: Arc::clone(&self.shared.metrics),
                own_metadata: own,
            };
            tokio::spawn(admin::serve(listener, Arc::new(state), stop_rx.clone()))
        });
        let permits = Arc::new(Semaphore::new(self.shared.limits.max_connections));
        let grace = self.shared.limits.shutdown_grace;
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(pair) => pair,
                        Err(err) => {
                            // Out of descriptors and similar: pause instead of spinning.
                            tracing::warn!(error = %err, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        tracing::warn!(%remote, "connection limit reached; closing new connection");
                        continue;
                    };
                    if let Some(pool) = &pool {
                        pool.dispatch(stream, remote, permit);
                        continue;
                    }
                    let connection = serve(stream, remote);
                    connections.spawn(async move {
                        connection.await;
                        drop(permit);
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        tracing::info!(
            open = connections.len() + pool.as_ref().map_or(0, WorkerPool::open),
            "shutting down: draining connections"
        );
        let _ = stop_tx.send(true);
        if let Some(pool) = pool {
            pool.drain().await;
        }
        crate::workers::drain(&mut connections, grace).await;
        if let Some(task) = admin_task {
            task.abort();
        }
    }

    /// The connection threads, when configured; `None` serves on the caller's runtime
    /// (also when the threads cannot be started, which is logged).
    fn start_workers(&self, serve: &ServeConnection) -> Option<WorkerPool> {
        if self.worker_threads == 0 {
            return None;
        }
        let serve = Arc::clone(serve);
        let grace = self.shared.limits.shutdown_grace;
        match WorkerPool::start(self.worker_threads, "kontosynk-conn", grace, serve) {
            Ok(pool) => Some(pool),
            Err(err) => {
                tracing::error!(error = %err, "cannot start connection threads; serving on the main runtime");
                None
            }
        }
    }
}

/// Serves accepted connections with `handler`, each counted in the metrics.
fn connection_future<H: Handler>(
    shared: &Arc<Shared>,
    handler: &H,
    stop: &watch::Receiver<bool>,
) -> ServeConnection {
    let shared = Arc::clone(shared);
    let handler = handler.clone();
    let stop = stop.clone();
    Arc::new(move |stream, remote| {
        let shared = Arc::clone(&shared);
        let handler = handler.clone();
        let stop = stop.clone();
        Box::pin(async move {
            shared.metrics.connections(1);
            serve_connection(&shared, stream, remote, handler, stop).await;
            shared.metrics.connections(-1);
        })
    })
}

/// Per-connection state shared by its requests.
struct Connection {
    info: ConnectionInfo,
    /// The client's pin and certificate from the handshake (mutual TLS only).
    pin: Option<Pin>,
    certificate: Option<ClientCertificate>,
    /// The identity as last resolved (its `generation` says against which metadata), and
    /// that metadata's `exp`.
    identity: Mutex<Option<(PeerIdentity, i64)>>,
    in_flight: AtomicUsize,
    close: AtomicBool,
}

async fn serve_connection<H: Handler>(
    shared: &Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    handler: H,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let io = ActivityIo::new(stream, Arc::clone(&activity), started);
    let connection = match &shared.acceptor {
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(shared.limits.handshake_timeout, acceptor.accept(io)).await;
            let tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    let outcome = classify_handshake_error(&err);
                    shared.metrics.handshake(outcome);
                    tracing::info!(%remote, outcome, error = %err, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    shared.metrics.handshake(handshake::TIMEOUT);
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            shared.metrics.handshake(handshake::OK);
            let (_, session) = tls.get_ref();
            let leaf = session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|leaf| ClientCertificate(Arc::new(leaf.clone().into_owned())));
            let pin = leaf
                .as_ref()
                .and_then(|leaf| Pin::of_certificate(&leaf.0).ok());
            let info = ConnectionInfo {
                remote_addr: remote,
                tls_version: session.protocol_version().and_then(|v| match v {
                    rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
                    rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
                    _ => None,
                }),
                alpn: match session.alpn_protocol() {
                    Some(b"h2") => Some("h2"),
                    Some(b"http/1.1") => Some("http/1.1"),
                    _ => None,
                },
            };
            let identity = pin.and_then(|pin| {
                let snapshot = shared.source.current()?;
                let peer = PeerIdentity::resolve_pin(&snapshot, &pin)?;
                Some((peer, snapshot.expires_at()))
            });
            if let Some((peer, _)) = &identity {
                tracing::debug!(%remote, entity_id = %peer.entity_id, "client authenticated");
            }
            let state = Arc::new(Connection {
                info,
                pin,
                certificate: leaf,
                identity: Mutex::new(identity),
                in_flight: AtomicUsize::new(0),
                close: AtomicBool::new(false),
            });
            drive(
                shared,
                TokioIo::new(tls),
                state,
                handler,
                &activity,
                started,
                &mut stop,
            )
            .await;
            return;
        }
        None => Arc::new(Connection {
            info: ConnectionInfo {
                remote_addr: remote,
                tls_version: None,
                alpn: None,
            },
            pin: None,
            certificate: None,
            identity: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            close: AtomicBool::new(false),
        }),
    };
    drive(
        shared,
        TokioIo::new(io),
        connection,
        handler,
        &activity,
        started,
        &mut stop,
    )
    .await;
}

/// Runs HTTP on an established connection until it ends, idles out or the server stops.
async fn drive<I, H>(
    shared: &Arc<Shared>,
    io: I,
    connection: Arc<Connection>,
    handler: H,
    activity: &AtomicU64,
    started: Instant,
    stop: &mut watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Handler,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let service = {
        // One context per connection, cloned per request: nothing another connection's
        // thread writes (such as the server-wide `Shared`'s reference count) is touched
        // per request.
        let context = Arc::new((Arc::clone(shared), Arc::clone(&connection), handler));
        service_fn(move |request: Request<Incoming>| {
            let context = Arc::clone(&context);
            async move {
                let (shared, connection, handler) = &*context;
                connection.in_flight.fetch_add(1, Ordering::AcqRel);
                let response = handle(shared, connection, request, handler).await;
                connection.in_flight.fetch_sub(1, Ordering::AcqRel);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let idle = shared.limits.idle_timeout;
    let mut closing = false;
    loop {
        let since_activity = Duration::from_millis(
            (started.elapsed().as_millis() as u64).saturating_sub(activity.load(Ordering::Relaxed)),
        );
        let wake = idle
            .saturating_sub(since_activity)
            .max(Duration::from_millis(100));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(remote = %connection.info.remote_addr, error = %err, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(wake), if !closing => {
                let quiet = Duration::from_millis(
                    (started.elapsed().as_millis() as u64).saturating_sub(activity.load(Ordering::Relaxed)),
                );
                let busy = connection.in_flight.load(Ordering::Acquire) > 0;
                if (!busy && quiet >= idle) || connection.close.load(Ordering::Acquire) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Authenticates (per request, against the current metadata), authorizes, rate-limits and
/// calls the handler; every refusal is a JSON error naming the reason.
async fn handle<H: Handler>(
    shared: &Shared,
    connection: &Connection,
    mut request: Request<Incoming>,
    handler: &H,
) -> Response<crate::access_log::LoggedBody> {
    // The access log's facts, gathered only when it is on.
    let logged = crate::access_log::enabled().then(|| {
        let started = Instant::now();
        (
            started,
            request.method().clone(),
            request.uri().path().to_owned(),
        )
    });
    let forwarded_cert = request.headers_mut().remove(CLIENT_CERT_HEADER);
    let anonymous =
        shared.optional_client_certificates && connection.pin.is_none() && forwarded_cert.is_none();
    let (mut response, peer) = if anonymous {
        // No certificate at all, and the server allows that: the handler authenticates.
        (
            run_handler(shared, connection, request, None, handler).await,
            None,
        )
    } else {
        match authorize(shared, connection, forwarded_cert) {
            Err(refusal) => (refusal.into_response(shared.refusal.as_ref()), None),
            Ok((peer, certificate)) => {
                let organization_id = logged.as_ref().and_then(|_| peer.organization_id.clone());
                let ids = (peer.entity_id.clone(), organization_id);
                request.extensions_mut().insert(certificate);
                (
                    admit(shared, peer, connection, request, handler).await,
                    Some(ids),
                )
            }
        }
    };
    if connection.close.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let (entity_id, organization_id) = peer.unwrap_or_else(|| ("-".to_owned(), None));
    shared.metrics.request(status, &entity_id);
    let entry = logged.map(|(started, method, path)| AccessLog {
        remote: connection.info.remote_addr,
        entity_id,
        organization_id,
        method,
        path,
        status,
        started,
    });
    response.map(|body| crate::access_log::LoggedBody::new(body, entry))
}

/// A refused request: the status and the JSON error body's code and message.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn into_response(self, responder: Option<&RefusalResponder>) -> Response<Body> {
        match responder {
            Some(responder) => responder(self.status, self.code, self.message),
            None => json_error(self.status, self.code, self.message),
        }
    }
}

/// Who is asking, decided against the metadata in force now, with their certificate.
fn authorize(
    shared: &Shared,
    connection: &Connection,
    forwarded_cert: Option<HeaderValue>,
) -> Result<(PeerIdentity, ClientCertificate), Refusal> {
    // The usual case, without loading the snapshot: the connection's identity was resolved
    // against the metadata still in force (same generation: no newer document has been
    // stored) and that document has not expired.
    if let (Some(pin), Some(certificate)) = (connection.pin, &connection.certificate) {
        let generation = shared.source.generation();
        let cached = lock(&connection.identity);
        if let Some((peer, _)) = cached.as_ref().filter(|(peer, expires)| {
            peer.generation == generation && peer.pin == pin && unix_now() < *expires
        }) {
            return Ok((peer.clone(), certificate.clone()));
        }
    }
    let Some(snapshot) = shared.source.current() else {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metadata_unavailable",
            "no valid federation metadata is available (missing or expired); every client is refused until it is",
        ));
    };
    let (pin, certificate) = match (connection.pin, &connection.certificate) {
        (Some(pin), Some(certificate)) => (pin, certificate.clone()),
        _ => terminator_certificate(shared, connection, forwarded_cert)?,
    };
    let mut cached = lock(&connection.identity);
    if let Some((peer, _)) = cached
        .as_ref()
        .filter(|(p, _)| p.generation == snapshot.generation() && p.pin == pin)
    {
        return Ok((peer.clone(), certificate));
    }
    let resolved = PeerIdentity::resolve_pin(&snapshot, &pin).or_else(|| {
        shared
            .issuer_certificates
            .then(|| PeerIdentity::resolve_issuer_certificate(&snapshot, &certificate.0))
            .flatten()
    });
    match resolved {
        Some(peer) => {
            *cached = Some((peer.clone(), snapshot.expires_at()));
            Ok((peer, certificate))
        }
        None => {
            *cached = None;
            if connection.pin.is_some() {
                // The pin left the metadata: this connection will never be allowed again.
                connection.close.store(true, Ordering::Release);
            }
            Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "client_not_in_metadata",
                format!(
                    "the client certificate's pin {pin} is not a client pin in the current federation metadata"
                ),
            ))
        }
    }
}

/// The client certificate from `Client-Cert`, honoured only from a trusted terminator.
fn terminator_certificate(
    shared: &Shared,
    connection: &Connection,
    forwarded_cert: Option<HeaderValue>,
) -> Result<(Pin, ClientCertificate), Refusal> {
    let remote = connection.info.remote_addr.ip();
    if !shared.trusted.iter().any(|t| t.contains(remote)) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "untrusted_proxy",
            format!("{remote} is not a trusted TLS terminator; connect through the terminator"),
        ));
    }
    let refuse = |message: String| {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            message,
        )
    };
    let value = forwarded_cert
        .ok_or_else(|| refuse("the terminator forwarded no Client-Cert header".into()))?;
    let text = value
        .to_str()
        .map_err(|_| refuse("the Client-Cert header is not ASCII".into()))?;
    let cert = parse_client_cert(text).map_err(|e| refuse(e.to_string()))?;
    // The same checks as the handshake (pin listed, validity, issuer chain when required).
    shared
        .verifier
        .verify_client_cert(&cert, &[] as &[CertificateDer<'_>], UnixTime::now())
        .map_err(|e| {
            Refusal::new(
                StatusCode::FORBIDDEN,
                "client_not_in_metadata",
                format!("the forwarded client certificate was refused: {e}"),
            )
        })?;
    let pin = Pin::of_certificate(&cert).map_err(|e| refuse(e.to_string()))?;
    Ok((pin, ClientCertificate(Arc::new(cert))))
}

/// Policy, rate limit, body limit and the handler with its deadline.
async fn admit<H: Handler>(
    shared: &Shared,
    peer: PeerIdentity,
    connection: &Connection,
    request: Request<Incoming>,
    handler: &H,
) -> Response<Body> {
    if let Err(denial) = shared.policy.check(&peer) {
        return crate::response::json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({"error": "policy_denied", "rule": denial.rule, "message": denial.message}),
        );
    }
    if let Some(limiter) = &shared.rate_limiter
        && let Err(wait) = limiter.check(&peer.entity_id, Instant::now())
    {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests from {}; retry in {secs} s",
                peer.entity_id
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    run_handler(shared, connection, request, Some(peer), handler).await
}

/// Body limit and the handler with its deadline; `peer` goes into the extensions when known.
async fn run_handler<H: Handler>(
    shared: &Shared,
    connection: &Connection,
    request: Request<Incoming>,
    peer: Option<PeerIdentity>,
    handler: &H,
) -> Response<Body> {
    let max_body = shared.limits.max_body;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body) {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {max_body} bytes"),
        );
    }
    let (mut parts, body) = request.into_parts();
    if let Some(peer) = peer {
        parts.extensions.insert(peer);
    }
    parts.extensions.insert(connection.info);
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    let request = Request::from_parts(parts, Limited::new(body, limit));
    match tokio::time::timeout(shared.limits.request_timeout, handler.call(request)).await {
        Ok(response) => response,
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "the request took too long to answer",
        ),
    }
}

/// Names a handshake failure for metrics and logs.
fn classify_handshake_error(err: &std::io::Error) -> &'static str {
    if let Some(rejection) = PeerRejection::from_io(err) {
        return match rejection {
            PeerRejection::NoMetadata => handshake::METADATA_UNAVAILABLE,
            PeerRejection::UnknownClientPin { .. } => handshake::UNKNOWN_CLIENT,
            PeerRejection::NotIssuedByEntity { .. } => handshake::BAD_ISSUER,
            PeerRejection::UnexpectedServerPin { .. } => handshake::OTHER,
        };
    }
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::NoCertificatesPresented) => handshake::NO_CLIENT_CERTIFICATE,
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired
            | rustls::CertificateError::ExpiredContext { .. }
            | rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. },
        )) => handshake::CERTIFICATE_NOT_VALID,
        _ => handshake::OTHER,
    }
}
