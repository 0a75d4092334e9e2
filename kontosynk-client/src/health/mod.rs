//! Federation health checks: every server of the metadata (optionally filtered), checked the
//! way a real peer connects: DNS, TCP, a mutual-TLS handshake **with the member's client
//! certificate**, the server's pin against the metadata, its certificate's expiry and host
//! name, then an HTTP `GET base_uri` over that same connection.
//!
//! Verdicts (what a demanding operator expects, and what each peer would see):
//! - **unhealthy**: DNS, TCP or TLS failure; a pin the metadata does not list; an expired or
//!   not-yet-valid certificate; a certificate that does not name the `base_uri` host (every
//!   client on a standard TLS stack refuses it; `--hostname-warn-only` downgrades this to a
//!   warning for federations that rely on pins alone); an HTTP 5xx or no HTTP answer; a
//!   server the metadata lists with an unusable `base_uri`.
//! - **warning** (still healthy): the certificate expires within `expiry_warning_days`
//!   (default 30); the host name mismatch when downgraded.
//! - **refused our client** (still healthy, a warning): the handshake told us everything a
//!   peer needs (reachable, the pin is one the metadata lists, the certificate is valid and,
//!   unless downgraded, names the host) but the server then refused *our* client certificate
//!   with a TLS alert. That is a matter between the server and the checking member (is our
//!   pin in the metadata it reads?), not a fault the federation sees, so it is reported as
//!   its own state ([`HealthState::RefusedClient`]) instead of a failure.
//! - Any HTTP status below 500 is healthy: `base_uri` itself may well answer 401, 403 or 404.

pub mod alerts;
pub mod history;
pub mod html;
pub mod i18n;
pub mod metrics;
mod probe;
pub mod rows;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use fedtls::OrganizationId;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;

use crate::client::Identity;
use crate::client::ratelimit::Pacer;
use crate::discovery::{Discovered, ServerTarget, SkippedServer};

pub use probe::check_server;

/// How checks are run.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// At most this many servers are checked at once (default 20).
    pub concurrency: usize,
    /// At most this many checks start per second, over all servers (default 50; zero or
    /// less: no pacing, only the concurrency bound).
    pub rate_per_second: f64,
    /// Time allowed for DNS resolution (default 5 s).
    pub dns_timeout: Duration,
    /// Time allowed for the TCP connect (default 5 s).
    pub connect_timeout: Duration,
    /// Time allowed for the TLS handshake (default 10 s).
    pub tls_timeout: Duration,
    /// Time allowed for the HTTP response headers (default 10 s).
    pub http_timeout: Duration,
    /// Certificates expiring within this many days get a warning (default 30).
    pub expiry_warning_days: i64,
    /// A host name mismatch is a warning instead of a failure.
    pub hostname_warn_only: bool,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            concurrency: 20,
            rate_per_second: 50.0,
            dns_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            tls_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
            expiry_warning_days: 30,
            hostname_warn_only: false,
        }
    }
}

/// One stage of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Resolving the `base_uri` host.
    Dns,
    /// Connecting over TCP.
    Tcp,
    /// The mutual-TLS handshake, pin and validity.
    Tls,
    /// The host name against the certificate.
    Hostname,
    /// `GET base_uri` over the same connection.
    Http,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Dns => "dns",
            Stage::Tcp => "tcp",
            Stage::Tls => "tls",
            Stage::Hostname => "hostname",
            Stage::Http => "http",
        })
    }
}

/// The verdict on one server, from worst to best: what the table sorts and filters by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// A failure every peer sees (DNS, TCP, TLS, pin, validity, host name, HTTP 5xx).
    Unhealthy,
    /// Reachable, pin and certificate fine, but the server refused our client certificate.
    RefusedClient,
    /// Healthy with something to fix soon (certificate expiring, downgraded host name).
    Warning,
    /// Every stage passed.
    Healthy,
}

impl HealthState {
    /// The state's stable name (`unhealthy`, `refused_client`, `warning`, `healthy`), as in
    /// JSON, metrics and the page.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unhealthy => "unhealthy",
            HealthState::RefusedClient => "refused_client",
            HealthState::Warning => "warning",
            HealthState::Healthy => "healthy",
        }
    }

    /// Parses [`as_str`](Self::as_str)'s names.
    pub fn parse(name: &str) -> Option<Self> {
        [
            HealthState::Unhealthy,
            HealthState::RefusedClient,
            HealthState::Warning,
            HealthState::Healthy,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// The state of a finished check.
    pub fn of(health: &ServerHealth) -> Self {
        if health.error.is_some() {
            HealthState::Unhealthy
        } else if health.client_accepted == Some(false) {
            HealthState::RefusedClient
        } else if !health.warnings.is_empty() {
            HealthState::Warning
        } else {
            HealthState::Healthy
        }
    }
}

impl HealthState {
    /// The state older stored results (without a `state` member) are read with.
    fn unknown_default() -> Self {
        HealthState::Unhealthy
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one stage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageResult {
    /// Which stage.
    pub stage: Stage,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took, in milliseconds.
    pub ms: u64,
    /// What happened.
    pub detail: String,
}

/// The health of one server. Serialized as the `--json` output (one object per server).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerHealth {
    /// The entity listing the server.
    pub entity_id: String,
    /// The entity's organization.
    pub organization: Option<String>,
    /// The entity's organization id.
    pub organization_id: Option<OrganizationId>,
    /// The server's `base_uri`.
    pub base_uri: String,
    /// The server's tags.
    pub tags: Vec<String>,
    /// True when every stage passed (warnings allowed, a refused client certificate too).
    pub healthy: bool,
    /// The verdict: `healthy`, `warning`, `refused_client` or `unhealthy`.
    #[serde(default = "HealthState::unknown_default")]
    pub state: HealthState,
    /// Whether the server accepted our client certificate (`null` when the check did not
    /// get that far, e.g. a wrong pin or no connection).
    #[serde(default)]
    pub client_accepted: Option<bool>,
    /// The first failure, or `null`.
    pub error: Option<String>,
    /// Things to fix that do not (yet) break peers.
    pub warnings: Vec<String>,
    /// Whether the presented certificate's pin is one the metadata lists for this server
    /// (`null` when no certificate was seen).
    pub pin_match: Option<bool>,
    /// The pin of the presented certificate.
    pub presented_pin: Option<String>,
    /// The pins the metadata lists.
    pub expected_pins: Vec<String>,
    /// The presented certificate's subject.
    pub cert_subject: Option<String>,
    /// The presented certificate's notAfter (RFC 3339).
    pub cert_not_after: Option<String>,
    /// Whole days until notAfter (negative once expired).
    pub cert_days_left: Option<i64>,
    /// Whether the certificate names the `base_uri` host.
    pub hostname_match: Option<bool>,
    /// The certificate's subjectAltNames (DNS names and IP addresses).
    pub cert_names: Vec<String>,
    /// The TLS version negotiated.
    pub tls_version: Option<String>,
    /// The ALPN protocol negotiated (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// The HTTP status of `GET base_uri`.
    pub http_status: Option<u16>,
    /// Milliseconds from sending `GET base_uri` to the response headers.
    pub latency_ms: Option<u64>,
    /// Milliseconds for the whole check.
    pub total_ms: u64,
    /// When the check started (RFC 3339).
    pub checked_at: String,
    /// Every stage that ran, in order.
    pub stages: Vec<StageResult>,
}

impl ServerHealth {
    /// A blank result for `target` (filled in by the check).
    fn new(target: &ServerTarget) -> Self {
        Self {
            entity_id: target.entity_id.clone(),
            organization: target.organization.clone(),
            organization_id: target.organization_id.clone(),
            base_uri: target.base_uri.to_string(),
            tags: target.tags.clone(),
            healthy: false,
            state: HealthState::Unhealthy,
            client_accepted: None,
            error: None,
            warnings: Vec::new(),
            pin_match: None,
            presented_pin: None,
            expected_pins: target.pins.iter().map(ToString::to_string).collect(),
            cert_subject: None,
            cert_not_after: None,
            cert_days_left: None,
            hostname_match: None,
            cert_names: Vec::new(),
            tls_version: None,
            alpn: None,
            http_status: None,
            latency_ms: None,
            total_ms: 0,
            checked_at: rfc3339(fedtls::verify::unix_now()),
            stages: Vec::new(),
        }
    }

    /// The result for a server the metadata lists but that cannot be called.
    pub fn unusable(server: &SkippedServer) -> Self {
        Self {
            entity_id: server.entity_id.clone(),
            organization: server.organization.clone(),
            organization_id: server.organization_id.clone(),
            base_uri: server.base_uri.clone().unwrap_or_default(),
            tags: Vec::new(),
            healthy: false,
            state: HealthState::Unhealthy,
            client_accepted: None,
            error: Some(format!("metadata: {}", server.reason)),
            warnings: Vec::new(),
            pin_match: None,
            presented_pin: None,
            expected_pins: Vec::new(),
            cert_subject: None,
            cert_not_after: None,
            cert_days_left: None,
            hostname_match: None,
            cert_names: Vec::new(),
            tls_version: None,
            alpn: None,
            http_status: None,
            latency_ms: None,
            total_ms: 0,
            checked_at: rfc3339(fedtls::verify::unix_now()),
            stages: Vec::new(),
        }
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-21T20:51:09Z`), as fedtls does in its
/// messages ([`fedtls::claims::Rfc3339`]).
pub fn rfc3339(unix: i64) -> String {
    fedtls::claims::Rfc3339(unix).to_string()
}

/// The member's client certificate, loaded once and presented in every check's handshake.
#[derive(Debug)]
pub struct ClientCert(Arc<CertifiedKey>);

impl ClientCert {
    /// Loads the identity's key with the aws-lc-rs provider.
    pub fn new(identity: &Identity) -> Result<Self, rustls::Error> {
        let (chain, key) = identity.to_rustls();
        let key = fedtls::tls::provider().key_provider.load_private_key(key)?;
        let certified = CertifiedKey::new(chain, key);
        certified.keys_match()?;
        Ok(Self(Arc::new(certified)))
    }
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The metadata issuer(s) a report names: each source's `iss`, joined with `, ` when the
/// snapshot merges several federations; `None` when no source names one.
pub fn metadata_issuers(snapshot: &fedtls::Snapshot) -> Option<String> {
    let issuers: Vec<&str> = snapshot
        .sources()
        .iter()
        .filter_map(|s| s.iss.as_deref())
        .collect();
    (!issuers.is_empty()).then(|| issuers.join(", "))
}

/// Checks every server found (and reports every unusable one as unhealthy), at most
/// `options.concurrency` at a time and `options.rate_per_second` starts per second. The
/// results are in the order of `found` (servers, then unusable ones).
pub async fn check_all(
    found: &Discovered,
    cert: Arc<ClientCert>,
    options: &HealthOptions,
) -> Vec<ServerHealth> {
    check_all_with_progress(found, cert, options, |_| {}).await
}

/// [`check_all`], calling `progress` with each result as its check finishes (in the order
/// they finish; unusable servers last), e.g. to drive a progress bar.
pub async fn check_all_with_progress(
    found: &Discovered,
    cert: Arc<ClientCert>,
    options: &HealthOptions,
    mut progress: impl FnMut(&ServerHealth),
) -> Vec<ServerHealth> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let pacer = Arc::new(Pacer::new(Some(options.rate_per_second)));
    let options = Arc::new(options.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in found.servers.iter().cloned().enumerate() {
        let semaphore = Arc::clone(&semaphore);
        let pacer = Arc::clone(&pacer);
        let options = Arc::clone(&options);
        let cert = Arc::clone(&cert);
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            pacer.acquire().await;
            (i, check_server(&target, cert, &options).await)
        });
    }
    let mut results: Vec<Option<ServerHealth>> = vec![None; found.servers.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, health)) => {
                progress(&health);
                results[i] = Some(health);
            }
            Err(error) => tracing::error!(%error, "a health check task failed"),
        }
    }
    let mut out: Vec<ServerHealth> = results
        .into_iter()
        .zip(&found.servers)
        .map(|(result, target)| {
            result.unwrap_or_else(|| {
                let mut failed = ServerHealth::new(target);
                failed.error = Some("internal: the check did not finish".to_owned());
                failed
            })
        })
        .collect();
    for skipped in &found.skipped {
        let health = ServerHealth::unusable(skipped);
        progress(&health);
        out.push(health);
    }
    out
}

/// Counts for a summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Servers checked.
    pub total: usize,
    /// Healthy servers.
    pub healthy: usize,
    /// Unhealthy servers.
    pub unhealthy: usize,
    /// Servers with at least one warning.
    pub warnings: usize,
    /// Certificates expiring within the warning window (not yet expired).
    pub expiring: usize,
    /// Servers that are fine as the federation sees them but refused our client
    /// certificate (counted among the healthy and the warnings).
    pub refused_client: usize,
}

impl Summary {
    /// Counts `results`.
    pub fn of(results: &[ServerHealth], expiry_warning_days: i64) -> Self {
        Self {
            total: results.len(),
            healthy: results.iter().filter(|r| r.healthy).count(),
            unhealthy: results.iter().filter(|r| !r.healthy).count(),
            warnings: results.iter().filter(|r| !r.warnings.is_empty()).count(),
            expiring: results
                .iter()
                .filter(|r| {
                    r.cert_days_left
                        .is_some_and(|d| (0..expiry_warning_days).contains(&d))
                })
                .count(),
            refused_client: results
                .iter()
                .filter(|r| r.state == HealthState::RefusedClient)
                .count(),
        }
    }

    /// The one-line summary the CLI prints (English, for logs and terminals).
    pub fn line(&self, expiry_warning_days: i64) -> String {
        format!(
            "{} server(s): {} healthy, {} unhealthy, {} with warnings ({} refused our client certificate), {} certificate(s) expiring within {expiry_warning_days} days",
            self.total,
            self.healthy,
            self.unhealthy,
            self.warnings,
            self.refused_client,
            self.expiring
        )
    }
}

#[cfg(test)]
mod page_tests;
#[cfg(test)]
pub(crate) mod tests;
