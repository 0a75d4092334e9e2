//! Prometheus text exposition of the latest health results.

use std::fmt::Write as _;

use super::{ServerHealth, Summary};

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics for the latest run (`runs` checks so far, the last finished at
/// `last_run_unix`).
pub fn render(
    results: &[ServerHealth],
    runs: u64,
    last_run_unix: i64,
    expiry_warning_days: i64,
) -> String {
    let summary = Summary::of(results, expiry_warning_days);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP kontosynk_health_runs_total Health check runs completed."
    );
    let _ = writeln!(out, "# TYPE kontosynk_health_runs_total counter");
    let _ = writeln!(out, "kontosynk_health_runs_total {runs}");
    let _ = writeln!(
        out,
        "# HELP kontosynk_health_last_run_timestamp_seconds When the last run finished."
    );
    let _ = writeln!(
        out,
        "# TYPE kontosynk_health_last_run_timestamp_seconds gauge"
    );
    let _ = writeln!(
        out,
        "kontosynk_health_last_run_timestamp_seconds {last_run_unix}"
    );
    let _ = writeln!(
        out,
        "# HELP kontosynk_health_servers Servers in the last run, by state."
    );
    let _ = writeln!(out, "# TYPE kontosynk_health_servers gauge");
    let _ = writeln!(
        out,
        "kontosynk_health_servers{{state=\"healthy\"}} {}",
        summary.healthy
    );
    let _ = writeln!(
        out,
        "kontosynk_health_servers{{state=\"unhealthy\"}} {}",
        summary.unhealthy
    );
    let _ = writeln!(
        out,
        "kontosynk_health_servers{{state=\"refused_client\"}} {}",
        summary.refused_client
    );
    let _ = writeln!(
        out,
        "kontosynk_health_servers{{state=\"expiring\"}} {}",
        summary.expiring
    );

    let labels = |r: &ServerHealth| {
        format!(
            "entity_id=\"{}\",base_uri=\"{}\",organization_id=\"{}\"",
            label(&r.entity_id),
            label(&r.base_uri),
            label(r.organization_id.as_ref().map_or("", |id| id.as_str()))
        )
    };
    let _ = writeln!(
        out,
        "# HELP kontosynk_health_server_up 1 when the server passed every check."
    );
    let _ = writeln!(out, "# TYPE kontosynk_health_server_up gauge");
    for r in results {
        let _ = writeln!(
            out,
            "kontosynk_health_server_up{{{}}} {}",
            labels(r),
            u8::from(r.healthy)
        );
    }
    let _ = writeln!(
        out,
        "# HELP kontosynk_health_server_pin_match 1 when the presented pin is in the metadata."
    );
    let _ = writeln!(out, "# TYPE kontosynk_health_server_pin_match gauge");
    for r in results {
        if let Some(m) = r.pin_match {
            let _ = writeln!(
                out,
                "kontosynk_health_server_pin_match{{{}}} {}",
                labels(r),
                u8::from(m)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP kontosynk_health_server_latency_seconds Time to the response headers of GET base_uri."
    );
    let _ = writeln!(out, "# TYPE kontosynk_health_server_latency_seconds gauge");
    for r in results {
        if let Some(ms) = r.latency_ms {
            let _ = writeln!(
                out,
                "kontosynk_health_server_latency_seconds{{{}}} {:.3}",
                labels(r),
                ms as f64 / 1000.0
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP kontosynk_health_server_cert_expiry_timestamp_seconds The server certificate's notAfter."
    );
    let _ = writeln!(
        out,
        "# TYPE kontosynk_health_server_cert_expiry_timestamp_seconds gauge"
    );
    for r in results {
        if let Some(at) = r.cert_not_after.as_deref().and_then(parse_rfc3339) {
            let _ = writeln!(
                out,
                "kontosynk_health_server_cert_expiry_timestamp_seconds{{{}}} {at}",
                labels(r)
            );
        }
    }
    out
}

fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}
