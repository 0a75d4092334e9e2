//! The mutual-TLS server framework for FedTLS federations (Skolfederation Moa), with the
//! authenticated peer's identity on every request.
//!
//! Clients are authenticated by their certificate's SPKI pin against the current federation
//! metadata, in the handshake and again on every request after the metadata changes: a client
//! removed from the metadata is refused on its next request, even on an open connection.
//! The applications (the SS 12000 API, the GNAP server) live in `kontosynk-server`; the
//! gateway in `ss12000-proxy`. Both build on this crate and nothing here knows about them.
//!
//! ```no_run
//! # async fn run(store: fedtls::store::MetadataStore, resolver: std::sync::Arc<fedtls::tls::ReloadableCertResolver>) {
//! use kontosynk_framework::{Policy, ServerBuilder, response};
//! use fedtls::tls::PeerIdentity;
//!
//! let server = ServerBuilder::with_store(store)
//!     .tls(resolver)
//!     .policy(Policy { client_tags: vec!["egilv1".parse().unwrap()], ..Policy::default() })
//!     .bind("127.0.0.1:8443".parse().unwrap())
//!     .await
//!     .expect("bind");
//! server
//!     .serve(
//!         |request: http::Request<_>| async move {
//!             let peer = request.extensions().get::<PeerIdentity>().cloned();
//!             response::json(http::StatusCode::OK, &serde_json::json!({"hello": peer.map(|p| p.entity_id)}))
//!         },
//!         kontosynk_framework::shutdown::signal(),
//!     )
//!     .await;
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access_log;
mod admin;
pub mod cli;
pub mod client_cert;
mod io;
pub mod metrics;
pub mod policy;
pub mod rate_limit;
pub mod response;
pub mod server;
pub mod shutdown;
mod timeouts;
pub mod trusted_headers;
mod workers;

pub use fedtls::tls::PeerIdentity;

/// Locks `mutex`; a panic while another holder had it never makes the state unusable
/// (every value guarded here stays consistent between statements).
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub use policy::Policy;
pub use rate_limit::RateLimit;
pub use server::{
    BoundServer, ClientCertificate, ConnectionInfo, Handler, Limits, RefusalResponder, RequestBody,
    ServerBuilder, ServerError, TrustedProxy, TrustedProxyError,
};
