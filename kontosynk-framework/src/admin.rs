//! The admin listener: health, readiness, metrics and this server's own member metadata.

use std::convert::Infallible;
use std::sync::Arc;

use fedtls::index::Role;
use fedtls::snapshot::SnapshotSource;
use fedtls::store::MetadataSources;
use fedtls::tls::{OwnCertificate, ReloadableCertResolver};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::io::{Activity, ActivityIo};
use crate::metrics::{Metrics, OwnCertificateGauges};
use crate::response::{Body, full, json, json_error};
use crate::server::Limits;
use crate::timeouts::{Action, HeadTimer, Requests, Supervisor, Watched};

/// What the admin endpoints report on.
pub(crate) struct AdminState {
    pub(crate) source: Arc<dyn SnapshotSource>,
    pub(crate) store: Option<MetadataSources>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) own_metadata: Option<serde_json::Value>,
    /// The server's certificate, when it terminates TLS itself.
    pub(crate) own_certificate: Option<Arc<ReloadableCertResolver>>,
    /// The server's limits; the admin listener keeps its header and idle timeouts.
    pub(crate) limits: Limits,
}

/// The gauges of the certificate handshakes use now, against the metadata in use.
fn own_certificate_gauges(state: &AdminState) -> Option<OwnCertificateGauges> {
    let current = state.own_certificate.as_ref()?.current();
    let own = OwnCertificate::read(current.cert.first()?, Role::Server).ok()?;
    let listed = state
        .source
        .current()
        .is_some_and(|snapshot| snapshot.index().server_by_pin(&own.pin()).is_some());
    Some(OwnCertificateGauges {
        expires_in_seconds: own.not_after() - fedtls::verify::unix_now(),
        listed,
    })
}

pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(serve_connection(stream, Arc::clone(&state), stop.clone()));
            }
        }
    }
}

/// One admin connection, under the same header, first-request and idle timeouts as the
/// server's own connections (see [`crate::timeouts`]).
async fn serve_connection(
    stream: TcpStream,
    state: Arc<AdminState>,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let requests = Arc::new(Requests::default());
    let service = {
        let (state, requests) = (Arc::clone(&state), Arc::clone(&requests));
        service_fn(move |request| {
            let _in_flight = requests.begin();
            std::future::ready(Ok::<_, Infallible>(route(&state, &request)))
        })
    };
    let io = TokioIo::new(ActivityIo::new(stream, Arc::clone(&activity)));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(HeadTimer::new(Arc::clone(&activity)))
        .header_read_timeout(state.limits.header_read_timeout)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let watched = Watched {
        header_read_timeout: state.limits.header_read_timeout,
        idle_timeout: state.limits.idle_timeout,
        activity: &activity,
        requests: &requests,
        close: None,
        stop: &mut stop,
    };
    let mut supervisor = Supervisor::new(watched);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            action = supervisor.next() => match action {
                Action::GracefulShutdown => conn.as_mut().graceful_shutdown(),
                Action::Drop => return,
            },
        }
    }
}

fn route(state: &AdminState, request: &Request<Incoming>) -> Response<Body> {
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n", "text/plain"),
        "/readyz" => readiness(state),
        "/metrics" => {
            let status = state.store.as_ref().map(MetadataSources::status);
            text(
                StatusCode::OK,
                &state
                    .metrics
                    .render(status.as_ref(), own_certificate_gauges(state)),
                "text/plain; version=0.0.4",
            )
        }
        "/metadata" => match &state.own_metadata {
            Some(metadata) => json(StatusCode::OK, metadata),
            None => json_error(
                StatusCode::NOT_FOUND,
                "no_member_metadata",
                "this server was started without its own member metadata",
            ),
        },
        _ => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "admin endpoints: /healthz, /readyz, /metrics, /metadata",
        ),
    }
}

/// `/readyz`: 200 while the metadata sources satisfy their readiness (by default: at least
/// one valid), with every source's state; 503 naming the sources that are not valid.
fn readiness(state: &AdminState) -> Response<Body> {
    let status = state.store.as_ref().map(MetadataSources::status);
    let has_metadata = state.source.current().is_some();
    let ready = has_metadata && status.as_ref().is_none_or(|s| s.ready);
    let reason = if ready {
        None
    } else if !has_metadata {
        Some(
            "no valid federation metadata (missing or expired): every client is refused".to_owned(),
        )
    } else {
        let invalid: Vec<&str> = status
            .iter()
            .flat_map(|s| &s.sources)
            .filter(|s| !s.status.is_ready())
            .map(|s| s.name.as_str())
            .collect();
        Some(format!(
            "every metadata source is required and these are not valid: {}; their members are refused",
            invalid.join(", ")
        ))
    };
    let body = serde_json::json!({
        "ready": ready,
        "readiness": status.as_ref().map(|s| s.readiness),
        "valid_sources": status.as_ref().map(|s| s.valid_sources),
        "sources": status.as_ref().map(|s| &s.sources),
        "reason": reason,
    });
    json(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &body,
    )
}

fn text(status: StatusCode, body: &str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body.to_owned()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
