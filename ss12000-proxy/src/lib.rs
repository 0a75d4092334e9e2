//! ss12000-proxy: a FedTLS gateway. It terminates mutual TLS pinned against the federation
//! metadata and forwards authenticated requests to an existing backend, which learns who is
//! calling from `X-FedTLSAuth-*` headers that clients can never set themselves.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod bowness;
pub mod config;
pub mod forward;
pub mod h1pool;
mod h2conn;
mod per_thread;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use kontosynk_framework::cli::ServeSettings;
use kontosynk_framework::{Limits, Policy, RateLimit};

use crate::config::Config;
use crate::forward::Forwarder;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The backend cannot be reached as configured (its URL or TLS settings).
    #[error("backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
    /// The federation, the certificate or the listeners could not be set up.
    #[error(transparent)]
    Serve(#[from] kontosynk_framework::cli::ServeError),
    /// The listener's address could not be read.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
}

/// Runs the proxy described by `config` until `shutdown` completes, then drains in-flight
/// requests. Logging is the caller's business (the binary sets it up from `config.log_format`).
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    let limits = &config.limits;
    let backend_timeout = seconds(limits.backend_timeout);
    let clients = crate::backend::clients(&config.backend_tls, config.backend_h2c, backend_timeout)
        .map_err(ProxyError::Backend)?;
    let forwarder = Arc::new(
        Forwarder::new(
            clients,
            &config.backend,
            config.headers.clone(),
            backend_timeout,
        )
        .map_err(ProxyError::Backend)?,
    );
    let settings = serve_settings(config);
    let threads = config.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let prepared = settings
        .prepare_with(|builder| {
            let builder = builder.worker_threads(threads);
            // The settings give a burst of twice the rate; an explicit one replaces it.
            match (limits.rate_limit, limits.rate_burst) {
                (Some(per_second), Some(burst)) => {
                    builder.rate_limit(RateLimit { per_second, burst })
                }
                _ => builder,
            }
        })
        .await?;
    let addr = prepared.server.local_addr().map_err(ProxyError::Listener)?;
    tracing::info!(%addr, backend = %config.backend, "ss12000-proxy listening");
    prepared
        .server
        .serve(
            move |request| Arc::clone(&forwarder).forward(request),
            shutdown,
        )
        .await;
    Ok(())
}

/// The server settings `config` describes.
fn serve_settings(config: &Config) -> ServeSettings {
    let limits = &config.limits;
    ServeSettings {
        listen: config.listen,
        cert: config.tls.cert.clone(),
        key: config.tls.key.clone(),
        federations: config.federation.clone(),
        readiness: if config.require_all_federations {
            fedtls::store::Readiness::AllSources
        } else {
            fedtls::store::Readiness::AnySource
        },
        admin: config.admin,
        policy: Policy {
            client_tags: config.access.client_tags.clone(),
            organization_ids: config.access.organization_ids.clone(),
            entity_ids: config.access.entity_ids.clone(),
            scopes: config.access.scopes.clone(),
        },
        require_issuer_chain: config.access.require_issuer_chain,
        rate_limit: limits.rate_limit,
        limits: Limits {
            handshake_timeout: seconds(limits.handshake_timeout),
            header_read_timeout: seconds(limits.header_timeout),
            idle_timeout: seconds(limits.idle_timeout),
            request_timeout: seconds(limits.request_timeout),
            max_body: limits.max_body,
            max_connections: limits.max_connections,
            shutdown_grace: seconds(limits.shutdown_timeout),
        },
        trusted_proxies: config.trusted_proxies.clone(),
        require_listed: config.tls.require_listed,
    }
}

/// `--check`: the backend settings, the trust anchor, the metadata (fetched and verified
/// once), the certificate and key (matching), and that the metadata lists the certificate's
/// pin as a server. Returns what was checked, one line each; the first problem is the error.
pub async fn check(config: &Config) -> Result<Vec<String>, ProxyError> {
    let limits = &config.limits;
    crate::backend::clients(
        &config.backend_tls,
        config.backend_h2c,
        seconds(limits.backend_timeout),
    )
    .map_err(ProxyError::Backend)?;
    let mut report = vec![format!("backend {}: settings usable", config.backend)];
    report.extend(serve_settings(config).check().await?);
    Ok(report)
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}
