//! The pooled clients that talk to the backend, with the configured `https` trust: one
//! per thread, so a request and the pooled backend connection it uses live on one thread.

use std::sync::Arc;
use std::time::Duration;

use fedtls::Pin;
use fedtls::tls::{PROTOCOL_VERSIONS, PinnedServerVerifier, load_cert_chain, provider};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::ServerCertVerifier;

use crate::config::BackendTlsConfig;
use crate::per_thread::PerThread;
use crate::upstream::UpstreamBody;

/// The backend HTTP client: pooled; HTTP/1.1 (ALPN `http/1.1` for https), or HTTP/2 with
/// prior knowledge when configured for a plain-HTTP backend.
pub type BackendClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// Makes backend clients that speak HTTP/1.1 (also to `https` backends: an h2 request through
/// this client would carry a `Host` beside `:authority`, which nginx refuses), or HTTP/2 when
/// `h2c` says a plain-HTTP backend speaks it. Hands out one client (one connection pool)
/// per thread: a pooled connection is driven by a task on the thread that opened it, so
/// sharing the pool across threads would move every request between threads.
pub struct BackendClients {
    connector: HttpsConnector<HttpConnector>,
    h2c: bool,
    clients: PerThread<BackendClient>,
}

impl BackendClients {
    /// The calling thread's client (made on first use).
    pub fn get(&self) -> BackendClient {
        self.clients.with(|| self.build(), |client| client.clone())
    }

    /// True when a plain-HTTP backend is spoken to in HTTP/2 (prior knowledge).
    pub fn h2c(&self) -> bool {
        self.h2c
    }

    fn build(&self) -> BackendClient {
        Client::builder(TokioExecutor::new())
            .http2_only(self.h2c)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(crate::h1pool::IDLE_TIMEOUT)
            .pool_max_idle_per_host(1024)
            .build(self.connector.clone())
    }
}

/// What is wrong with the backend's settings (its URL, TLS, headers), naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(String);

impl From<String> for BackendError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for BackendError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// Checks the backend TLS settings and prepares the clients.
pub fn clients(
    tls: &BackendTlsConfig,
    h2c: bool,
    connect_timeout: Duration,
) -> Result<BackendClients, BackendError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if let Some(pin) = &tls.pin {
        let pin: Pin = pin.parse().map_err(|e| format!("backend_tls.pin: {e}"))?;
        // The pin is the trust; the host name is still checked.
        PinnedServerVerifier::new([pin])
            .check_hostname(true)
            .into_arc()
    } else if let Some(ca_file) = &tls.ca_file {
        let mut roots = rustls::RootCertStore::empty();
        for cert in load_cert_chain(ca_file).map_err(|e| e.to_string())? {
            roots
                .add(cert)
                .map_err(|e| format!("backend_tls.ca_file {}: {e}", ca_file.display()))?;
        }
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| format!("backend_tls.ca_file {}: {e}", ca_file.display()))?
    } else {
        Arc::new(
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
                .map_err(|e| format!("cannot load the system's trusted roots: {e}"))?,
        )
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(BackendClients {
        connector,
        h2c,
        clients: PerThread::default(),
    })
}
