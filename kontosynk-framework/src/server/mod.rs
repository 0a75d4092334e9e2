//! The mutual-TLS HTTP server: accept loop, handshakes, per-request identity and policy.
//!
//! One job per module: [`ServerBuilder`] and what it builds (`builder`), the plain
//! configuration types (`config`), errors and refusals (`error`), the accept loop
//! (`accept`), one connection from handshake to close (`connection`) with whom the
//! handshake's verifier accepted (`recorder`), one request (`request`) and who is asking on
//! it (`authorize`).

mod accept;
mod authorize;
mod builder;
mod config;
mod connection;
mod error;
mod recorder;
mod request;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::Limited;
use hyper::body::Incoming;
use rustls_pki_types::CertificateDer;

use crate::response::Body;

pub use accept::BoundServer;
pub use builder::ServerBuilder;
pub use config::{Limits, TrustedProxy, TrustedProxyError};
pub use error::ServerError;

/// The request body handlers receive: the client's stream, cut off at the body limit.
pub type RequestBody = Limited<Incoming>;

/// Serves authenticated requests. Implemented for every suitable async closure.
pub trait Handler: Clone + Send + Sync + 'static {
    /// The response future.
    type Future: Future<Output = Response<Body>> + Send + 'static;
    /// Answers one request; its extensions hold the [`PeerIdentity`](fedtls::tls::PeerIdentity) and [`ConnectionInfo`].
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
