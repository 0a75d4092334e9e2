//! One connection: the TLS handshake, the identity it established, and HTTP until close.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use fedtls::Pin;
use fedtls::tls::{PeerIdentity, PeerRejection, VerifiedClient};
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::builder::Shared;
use super::recorder::record;
use super::request::handle;
use super::{ClientCertificate, ConnectionInfo, Handler};
use crate::io::{Activity, ActivityIo};
use crate::metrics::handshake;
use crate::timeouts::{Action, HeadTimer, Requests, Supervisor, Watched};

/// Per-connection state shared by its requests.
pub(super) struct Connection {
    pub(super) info: ConnectionInfo,
    /// The client's pin and certificate from the handshake (mutual TLS only).
    pub(super) pin: Option<Pin>,
    pub(super) certificate: Option<ClientCertificate>,
    /// The identity as last resolved (its `generation` says against which metadata), and
    /// that metadata's `exp`: first the one the verifier resolved in the handshake.
    pub(super) identity: Mutex<Option<(PeerIdentity, i64)>>,
    /// Its requests, for the idle and first-request timeouts.
    pub(super) requests: Requests,
    pub(super) close: AtomicBool,
}

impl Connection {
    /// A connection from `info`, with the client certificate of its handshake and whom the
    /// verifier accepted for it (mutual TLS with a client certificate only).
    fn new(info: ConnectionInfo, client: Option<(ClientCertificate, VerifiedClient)>) -> Self {
        let (certificate, verified) = client.unzip();
        Self {
            info,
            pin: verified.as_ref().map(|v| v.identity.pin),
            certificate,
            identity: Mutex::new(verified.map(|v| (v.identity, v.metadata_expires_at))),
            requests: Requests::default(),
            close: AtomicBool::new(false),
        }
    }
}

pub(super) async fn serve_connection<H: Handler>(
    shared: &Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    handler: H,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let io = ActivityIo::new(stream, Arc::clone(&activity));
    let Some(acceptor) = &shared.acceptor else {
        let info = ConnectionInfo {
            remote_addr: remote,
            tls_version: None,
            alpn: None,
        };
        let connection = Arc::new(Connection::new(info, None));
        let io = TokioIo::new(io);
        drive(shared, io, connection, handler, activity, &mut stop).await;
        return;
    };
    let Some((tls, connection)) = accept_tls(shared, acceptor, io, remote).await else {
        return;
    };
    let io = TokioIo::new(tls);
    drive(shared, io, connection, handler, activity, &mut stop).await;
}

/// The TLS handshake, counted in the metrics, and the connection it opens with the identity
/// the verifier accepted in it; `None` when the handshake failed or its client certificate
/// cannot be attributed (logged).
async fn accept_tls(
    shared: &Shared,
    acceptor: &TlsAcceptor,
    io: ActivityIo<TcpStream>,
    remote: SocketAddr,
) -> Option<(TlsStream<ActivityIo<TcpStream>>, Arc<Connection>)> {
    let recorded = record(acceptor.accept(io));
    let (tls, verified) =
        match tokio::time::timeout(shared.limits.handshake_timeout, recorded).await {
            Ok((Ok(tls), verified)) => (tls, verified),
            Ok((Err(err), _)) => {
                let outcome = classify_handshake_error(&err);
                shared.metrics.handshake(outcome);
                tracing::info!(%remote, outcome, error = %err, "TLS handshake refused");
                return None;
            }
            Err(_) => {
                shared.metrics.handshake(handshake::TIMEOUT);
                tracing::info!(%remote, "TLS handshake timed out");
                return None;
            }
        };
    let (_, session) = tls.get_ref();
    let leaf = session.peer_certificates().and_then(|certs| certs.first());
    let client = match attribute(leaf, verified) {
        Ok(client) => client,
        Err(reason) => {
            shared.metrics.handshake(handshake::OTHER);
            tracing::error!(%remote, reason, "refusing a connection whose client is unknown");
            return None;
        }
    };
    shared.metrics.handshake(handshake::OK);
    if let Some((_, verified)) = &client {
        tracing::debug!(%remote, entity_id = %verified.identity.entity_id, "client authenticated");
    }
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
    Some((tls, Arc::new(Connection::new(info, client))))
}

/// Pairs a completed handshake's client certificate with whom the verifier accepted in that
/// handshake. A certificate without a recorded acceptance (or the reverse) is an error: the
/// connection is refused rather than served with an identity taken from anywhere else.
fn attribute(
    leaf: Option<&CertificateDer<'static>>,
    verified: Option<VerifiedClient>,
) -> Result<Option<(ClientCertificate, VerifiedClient)>, &'static str> {
    match (leaf, verified) {
        (Some(leaf), Some(verified)) => {
            Ok(Some((ClientCertificate(Arc::new(leaf.clone())), verified)))
        }
        (None, None) => Ok(None),
        (Some(_), None) => {
            Err("the handshake accepted a client certificate but recorded no identity for it")
        }
        (None, Some(_)) => {
            Err("the handshake recorded an identity but holds no client certificate")
        }
    }
}

/// Runs HTTP on an established connection until it ends, idles out, sends no first request
/// in time or the server stops (the limits are described in [`crate::timeouts`]).
async fn drive<I, H>(
    shared: &Arc<Shared>,
    io: I,
    connection: Arc<Connection>,
    handler: H,
    activity: Arc<Activity>,
    stop: &mut watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Handler,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(HeadTimer::new(Arc::clone(&activity)))
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
                let _in_flight = connection.requests.begin();
                let response = handle(shared, connection, request, handler).await;
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let watched = Watched {
        header_read_timeout: shared.limits.header_read_timeout,
        idle_timeout: shared.limits.idle_timeout,
        activity: &activity,
        requests: &connection.requests,
        close: Some(&connection.close),
        stop,
    };
    let mut supervisor = Supervisor::new(watched);
    let remote = connection.info.remote_addr;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%remote, error = %err, "connection ended with an error");
                }
                return;
            }
            action = supervisor.next() => match action {
                Action::GracefulShutdown => conn.as_mut().graceful_shutdown(),
                Action::Drop => {
                    tracing::debug!(%remote, "no request within the header read timeout; connection closed");
                    return;
                }
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn verified() -> VerifiedClient {
        VerifiedClient {
            identity: PeerIdentity {
                entity_id: "https://e".to_owned(),
                organization: None,
                organization_id: None,
                tags: Vec::new(),
                scopes: Vec::new(),
                pin: Pin::of_spki(b"key"),
                generation: 3,
                source: "test".into(),
                source_iss: None,
            },
            metadata_expires_at: 42,
        }
    }

    #[test]
    fn a_client_certificate_is_served_only_with_the_identity_its_handshake_recorded() {
        let leaf = CertificateDer::from(b"leaf".to_vec());
        let (certificate, client) = attribute(Some(&leaf), Some(verified())).unwrap().unwrap();
        assert_eq!(certificate.0.as_ref(), &leaf);
        assert_eq!(client, verified());
        let connection = Connection::new(
            ConnectionInfo {
                remote_addr: "127.0.0.1:1".parse().unwrap(),
                tls_version: Some("TLSv1.3"),
                alpn: None,
            },
            Some((certificate, client)),
        );
        assert_eq!(connection.pin, Some(Pin::of_spki(b"key")));
        assert_eq!(
            *connection.identity.lock().unwrap(),
            Some((verified().identity, 42))
        );

        // No certificate, nothing recorded: an anonymous connection (optional certificates).
        assert!(attribute(None, None).unwrap().is_none());
        // Fail closed on anything else.
        assert!(attribute(Some(&leaf), None).is_err());
        assert!(attribute(None, Some(verified())).is_err());
    }
}
