//! Prometheus text-format metrics: handshakes, requests, connections and the metadata's age.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use fedtls::store::{SourcesStatus, StoreStatus};

use crate::lock;

/// Counters and gauges of one server, rendered on the admin listener's `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    handshakes: Mutex<BTreeMap<&'static str, u64>>,
    /// Responses by entity, then status: looked up by `&str`, so counting allocates only
    /// the first time an entity is seen. Sharded by thread, so threads serving requests
    /// side by side do not contend for one lock; `/metrics` adds the shards up.
    requests: [Mutex<BTreeMap<String, BTreeMap<u16, u64>>>; SHARDS],
    connections_open: AtomicI64,
}

/// Request counter shards (more than the cores of a typical server).
const SHARDS: usize = 16;

/// The request counter shard of the calling thread.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

/// Why a TLS handshake failed, as a metric label.
pub mod handshake {
    /// Completed.
    pub const OK: &str = "ok";
    /// The client's pin is not a client pin in the metadata.
    pub const UNKNOWN_CLIENT: &str = "unknown_client";
    /// There is no valid (unexpired) metadata: every client is refused.
    pub const METADATA_UNAVAILABLE: &str = "metadata_unavailable";
    /// The client sent no certificate.
    pub const NO_CLIENT_CERTIFICATE: &str = "no_client_certificate";
    /// The client certificate is expired or not yet valid.
    pub const CERTIFICATE_NOT_VALID: &str = "certificate_not_valid";
    /// The client certificate does not chain to its entity's issuers.
    pub const BAD_ISSUER: &str = "bad_issuer";
    /// The handshake did not finish in time.
    pub const TIMEOUT: &str = "timeout";
    /// Anything else (protocol errors, unsupported parameters, resets).
    pub const OTHER: &str = "other";
}

impl Metrics {
    /// Counts a handshake outcome (see [`handshake`]).
    pub fn handshake(&self, outcome: &'static str) {
        *lock(&self.handshakes).entry(outcome).or_default() += 1;
    }

    /// Counts a response by status and entity (`-` when unauthenticated).
    pub fn request(&self, status: u16, entity_id: &str) {
        let mut requests = lock(&self.requests[shard()]);
        let by_status = match requests.get_mut(entity_id) {
            Some(by_status) => by_status,
            None => requests.entry(entity_id.to_owned()).or_default(),
        };
        *by_status.entry(status).or_default() += 1;
    }

    /// Tracks an opened (`+1`) or closed (`-1`) connection.
    pub fn connections(&self, delta: i64) {
        self.connections_open.fetch_add(delta, Ordering::Relaxed);
    }

    /// How many handshakes ended with `outcome`.
    pub fn handshake_count(&self, outcome: &str) -> u64 {
        lock(&self.handshakes).get(outcome).copied().unwrap_or(0)
    }

    /// The text exposition, with the metadata gauges when a store status is given and the
    /// own certificate's when the server terminates TLS itself.
    pub fn render(
        &self,
        metadata: Option<&SourcesStatus>,
        own_certificate: Option<OwnCertificateGauges>,
    ) -> String {
        let mut out = String::new();
        out.push_str("# HELP kontosynk_tls_handshakes_total TLS handshakes by outcome.\n");
        out.push_str("# TYPE kontosynk_tls_handshakes_total counter\n");
        for (outcome, count) in lock(&self.handshakes).iter() {
            let _ = writeln!(
                out,
                "kontosynk_tls_handshakes_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP kontosynk_http_requests_total Responses by status code and client entity.\n",
        );
        out.push_str("# TYPE kontosynk_http_requests_total counter\n");
        let mut requests = BTreeMap::<String, BTreeMap<u16, u64>>::new();
        for shard in &self.requests {
            for (entity, by_status) in lock(shard).iter() {
                let total = requests.entry(entity.clone()).or_default();
                for (status, count) in by_status {
                    *total.entry(*status).or_default() += count;
                }
            }
        }
        for (entity, by_status) in &requests {
            for (status, count) in by_status {
                let _ = writeln!(
                    out,
                    "kontosynk_http_requests_total{{status=\"{status}\",entity_id=\"{}\"}} {count}",
                    escape(entity)
                );
            }
        }
        out.push_str("# HELP kontosynk_connections_open Client connections currently open.\n");
        out.push_str("# TYPE kontosynk_connections_open gauge\n");
        let _ = writeln!(
            out,
            "kontosynk_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        if let Some(status) = metadata {
            render_metadata(&mut out, status);
        }
        if let Some(own) = own_certificate {
            let _ = writeln!(
                out,
                "# HELP kontosynk_own_certificate_expires_in_seconds Seconds until this server's certificate expires.\n\
                 # TYPE kontosynk_own_certificate_expires_in_seconds gauge\n\
                 kontosynk_own_certificate_expires_in_seconds {}\n\
                 # HELP kontosynk_own_certificate_listed 1 when the metadata in use lists this server's certificate pin as a server, else 0.\n\
                 # TYPE kontosynk_own_certificate_listed gauge\n\
                 kontosynk_own_certificate_listed {}",
                own.expires_in_seconds,
                u8::from(own.listed)
            );
        }
        out
    }
}

/// The gauges of the server's own certificate (see [`Metrics::render`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnCertificateGauges {
    /// Seconds until `notAfter` (negative once expired).
    pub expires_in_seconds: i64,
    /// Whether the metadata in use lists its pin as a server pin.
    pub listed: bool,
}

/// The metadata gauges: one series per source (label `source`), plus how many sources are
/// valid and whether they satisfy the configured readiness.
fn render_metadata(out: &mut String, status: &SourcesStatus) {
    let _ = writeln!(
        out,
        "# HELP kontosynk_metadata_ready 1 while the metadata sources satisfy the configured readiness (default: one valid source).\n\
         # TYPE kontosynk_metadata_ready gauge\nkontosynk_metadata_ready {}\n\
         # HELP kontosynk_metadata_sources_valid Metadata sources with verified, unexpired metadata.\n\
         # TYPE kontosynk_metadata_sources_valid gauge\nkontosynk_metadata_sources_valid {}",
        u8::from(status.ready),
        status.valid_sources
    );
    type Value = fn(&StoreStatus) -> Option<i64>;
    let gauges: [(&str, &str, Value); 8] = [
        (
            "kontosynk_metadata_valid",
            "1 while the source's verified metadata is unexpired; 0 means its members are refused.",
            |s| Some(i64::from(s.is_ready())),
        ),
        (
            "kontosynk_metadata_age_seconds",
            "Seconds since the source's metadata in use was fetched.",
            |s| s.age_secs,
        ),
        (
            "kontosynk_metadata_expires_in_seconds",
            "Seconds until the source's metadata in use expires (negative once expired).",
            |s| s.seconds_to_expiry,
        ),
        (
            "kontosynk_metadata_entities",
            "Usable entities in the source's metadata.",
            |s| Some(s.entities as i64),
        ),
        (
            "kontosynk_metadata_rejected_entities",
            "Entities left out of the source's metadata as malformed.",
            |s| Some(s.rejected_entities as i64),
        ),
        (
            "kontosynk_metadata_generation",
            "Metadata snapshots of the source stored since start.",
            |s| Some(s.generation as i64),
        ),
        (
            "kontosynk_metadata_consecutive_failures",
            "Failed refreshes of the source since its last good one.",
            |s| Some(i64::from(s.consecutive_failures)),
        ),
        (
            "kontosynk_metadata_last_success_timestamp_seconds",
            "Unix time of the source's last good refresh.",
            |s| s.last_success,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for source in &status.sources {
            if let Some(value) = value(&source.status) {
                let _ = writeln!(out, "{name}{{source=\"{}\"}} {value}", escape(&source.name));
            }
        }
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_escaped_labels() {
        let metrics = Metrics::default();
        metrics.handshake(handshake::OK);
        metrics.handshake(handshake::OK);
        metrics.handshake(handshake::UNKNOWN_CLIENT);
        metrics.request(200, "https://a.example/\"x\"");
        metrics.connections(1);
        let text = metrics.render(None, None);
        assert!(
            text.contains("kontosynk_tls_handshakes_total{outcome=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("kontosynk_tls_handshakes_total{outcome=\"unknown_client\"} 1\n"));
        assert!(
            text.contains(r#"entity_id="https://a.example/\"x\""} 1"#),
            "{text}"
        );
        assert!(text.contains("kontosynk_connections_open 1\n"));
        assert_eq!(metrics.handshake_count(handshake::OK), 2);
    }

    #[test]
    fn requests_counted_on_many_threads_add_up() {
        let metrics = Metrics::default();
        std::thread::scope(|s| {
            for _ in 0..SHARDS + 3 {
                s.spawn(|| {
                    for _ in 0..10 {
                        metrics.request(200, "https://a.example");
                    }
                    metrics.request(404, "https://b.example");
                });
            }
        });
        let text = metrics.render(None, None);
        let line = |status: u16, entity: &str, count: usize| {
            format!(
                "kontosynk_http_requests_total{{status=\"{status}\",entity_id=\"{entity}\"}} {count}\n"
            )
        };
        let threads = SHARDS + 3;
        assert!(
            text.contains(&line(200, "https://a.example", 10 * threads)),
            "{text}"
        );
        assert!(
            text.contains(&line(404, "https://b.example", threads)),
            "{text}"
        );
        assert_eq!(
            text.matches("status=\"200\"").count(),
            1,
            "one line per entity and status"
        );
    }

    #[test]
    fn own_certificate_gauges_are_rendered_when_given() {
        let metrics = Metrics::default();
        assert!(!metrics.render(None, None).contains("own_certificate"));
        let text = metrics.render(
            None,
            Some(OwnCertificateGauges {
                expires_in_seconds: -5,
                listed: true,
            }),
        );
        assert!(
            text.contains("\nkontosynk_own_certificate_expires_in_seconds -5\n"),
            "{text}"
        );
        assert!(
            text.contains("\nkontosynk_own_certificate_listed 1\n"),
            "{text}"
        );
    }
}
