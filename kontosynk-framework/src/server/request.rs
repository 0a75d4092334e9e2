//! One request: identity, policy, rate limit, body limit, the handler and the access log.

use std::sync::atomic::Ordering;
use std::time::Instant;

use fedtls::tls::PeerIdentity;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Limited;
use hyper::body::Incoming;

use super::Handler;
use super::authorize::authorize;
use super::builder::Shared;
use super::connection::Connection;
use crate::access_log::AccessLog;
use crate::client_cert::ForwardedCertificate;
use crate::response::{Body, json_error};

/// Authenticates (per request, against the current metadata), authorizes, rate-limits and
/// calls the handler; every refusal is a JSON error naming the reason.
pub(super) async fn handle<H: Handler>(
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
    // Every spelling of the client-certificate headers leaves the request here: the handler
    // gets the certificate decided on (an extension), never a header.
    let forwarded_cert = ForwardedCertificate::take(request.headers_mut());
    let anonymous = shared.optional_client_certificates
        && connection.pin.is_none()
        && forwarded_cert.is_empty();
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
                let about = logged
                    .as_ref()
                    .map(|_| (peer.organization_id.clone(), peer.source.clone()));
                let ids = (peer.entity_id.clone(), about);
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
    let (entity_id, about) = peer.unwrap_or_else(|| ("-".to_owned(), None));
    let (organization_id, source) = about.unwrap_or_default();
    shared.metrics.request(status, &entity_id);
    let entry = logged.map(|(started, method, path)| AccessLog {
        remote: connection.info.remote_addr,
        entity_id,
        organization_id,
        source,
        method,
        path,
        status,
        started,
    });
    response.map(|body| crate::access_log::LoggedBody::new(body, entry))
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
