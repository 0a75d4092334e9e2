//! One connection: the TLS handshake, the identity it established, and HTTP until close.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fedtls::Pin;
use fedtls::tls::{PeerIdentity, PeerRejection};
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::builder::Shared;
use super::request::handle;
use super::{ClientCertificate, ConnectionInfo, Handler};
use crate::io::ActivityIo;
use crate::metrics::handshake;

/// Per-connection state shared by its requests.
pub(super) struct Connection {
    pub(super) info: ConnectionInfo,
    /// The client's pin and certificate from the handshake (mutual TLS only).
    pub(super) pin: Option<Pin>,
    pub(super) certificate: Option<ClientCertificate>,
    /// The identity as last resolved (its `generation` says against which metadata), and
    /// that metadata's `exp`.
    pub(super) identity: Mutex<Option<(PeerIdentity, i64)>>,
    pub(super) in_flight: AtomicUsize,
    pub(super) close: AtomicBool,
}

pub(super) async fn serve_connection<H: Handler>(
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
