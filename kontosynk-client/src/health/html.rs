//! The health report as one self-contained HTML page: inline CSS, no scripts, readable at a
//! glance (summary counts, expiry warnings, one table per organization, red and green rows,
//! the unhealthy first).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ServerHealth, Summary};

/// What the page says besides the results.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// The page title.
    pub title: String,
    /// Where the metadata came from.
    pub metadata_source: String,
    /// The metadata issuer.
    pub metadata_iss: Option<String>,
    /// The metadata's expiry (RFC 3339).
    pub metadata_expires: Option<String>,
    /// When the checks ran (RFC 3339).
    pub checked_at: String,
    /// Certificates expiring within this many days are listed.
    pub expiry_warning_days: i64,
    /// Reload the page every so many seconds (the live page of `--serve`).
    pub refresh_secs: Option<u64>,
    /// Passed/total checks per `(entity_id, base_uri)` from the history, if kept.
    pub uptime: super::history::Uptime,
    /// A problem with the run as a whole (e.g. no valid metadata), shown in red on top.
    pub run_error: Option<String>,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1d232a;background:#f6f7f9}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.meta{color:#555;margin:0 0 1rem}
.summary{display:flex;gap:.75rem;flex-wrap:wrap;margin:1rem 0}
.count{padding:.6rem 1rem;border-radius:.5rem;background:#fff;border:1px solid #d0d5dc;min-width:7rem}
.count b{display:block;font-size:1.6rem}
.count.ok{border-color:#2e7d32;color:#1b5e20;background:#e8f5e9}
.count.bad{border-color:#c62828;color:#b71c1c;background:#ffebee}
.count.warn{border-color:#ef6c00;color:#e65100;background:#fff3e0}
.run-error{padding:.75rem 1rem;background:#ffebee;border:2px solid #c62828;color:#b71c1c;border-radius:.5rem}
.expiry li{color:#e65100}
details{background:#fff;border:1px solid #d0d5dc;border-radius:.5rem;margin:.5rem 0;padding:.25rem .75rem}
summary{cursor:pointer;font-weight:600;padding:.4rem 0}
summary .tally{font-weight:400;color:#555}
summary .tally.bad{color:#b71c1c;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.25rem 0 .75rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:#555}
tr.healthy{background:#e8f5e9}
tr.unhealthy{background:#ffebee}
td.status{font-weight:700;white-space:nowrap}
tr.healthy td.status{color:#1b5e20}
tr.unhealthy td.status{color:#b71c1c}
td.warn{color:#e65100}
code{font-size:.8rem;word-break:break-all}
.small{font-size:.8rem;color:#555}
"#;

/// Renders the page.
pub fn render(results: &[ServerHealth], context: &ReportContext) -> String {
    let summary = Summary::of(results, context.expiry_warning_days);
    let mut page = String::with_capacity(4096 + results.len() * 800);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    );
    if let Some(secs) = context.refresh_secs {
        let _ = write!(page, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    let _ = write!(
        page,
        "<title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&context.title),
        escape(&context.title)
    );
    let _ = writeln!(
        page,
        "<p class=\"meta\">Checked {} · metadata {}{}{}</p>",
        escape(&context.checked_at),
        escape(&context.metadata_source),
        context
            .metadata_iss
            .as_deref()
            .map(|iss| format!(" (iss {})", escape(iss)))
            .unwrap_or_default(),
        context
            .metadata_expires
            .as_deref()
            .map(|exp| format!(", valid until {}", escape(exp)))
            .unwrap_or_default(),
    );
    if let Some(error) = &context.run_error {
        let _ = writeln!(
            page,
            "<p class=\"run-error\" id=\"run-error\">{}</p>",
            escape(error)
        );
    }
    let _ = writeln!(
        page,
        "<section class=\"summary\">\
         <div class=\"count\" id=\"count-total\"><b>{}</b>servers checked</div>\
         <div class=\"count ok\" id=\"count-healthy\"><b>{}</b>healthy</div>\
         <div class=\"count bad\" id=\"count-unhealthy\"><b>{}</b>unhealthy</div>\
         <div class=\"count warn\" id=\"count-expiring\"><b>{}</b>certificates expiring within {} days</div>\
         </section>",
        summary.total,
        summary.healthy,
        summary.unhealthy,
        summary.expiring,
        context.expiry_warning_days
    );

    let warned: Vec<&ServerHealth> = results.iter().filter(|r| !r.warnings.is_empty()).collect();
    if !warned.is_empty() {
        page.push_str("<section class=\"expiry\" id=\"warnings\"><h2>Warnings</h2><ul>\n");
        for r in warned {
            for warning in &r.warnings {
                let _ = writeln!(
                    page,
                    "<li><b>{}</b> <code>{}</code>: {}</li>",
                    escape(&r.entity_id),
                    escape(&r.base_uri),
                    escape(warning)
                );
            }
        }
        page.push_str("</ul></section>\n");
    }

    // Organizations: those with a problem first, then by name.
    let mut groups: BTreeMap<(bool, String, String), Vec<&ServerHealth>> = BTreeMap::new();
    let mut by_org: BTreeMap<(String, String), Vec<&ServerHealth>> = BTreeMap::new();
    for r in results {
        let name = r
            .organization
            .clone()
            .unwrap_or_else(|| "(no organization)".to_owned());
        let id = r
            .organization_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        by_org.entry((name, id)).or_default().push(r);
    }
    for ((name, id), rows) in by_org {
        let all_ok = rows.iter().all(|r| r.healthy);
        groups.insert((all_ok, name, id), rows);
    }
    let _ = writeln!(page, "<h2>Organizations ({})</h2>", groups.len());
    for ((all_ok, name, id), mut rows) in groups {
        rows.sort_by(|a, b| {
            (a.healthy, &a.entity_id, &a.base_uri).cmp(&(b.healthy, &b.entity_id, &b.base_uri))
        });
        let ok = rows.iter().filter(|r| r.healthy).count();
        let _ = write!(
            page,
            "<details open class=\"org\"><summary>{}{} <span class=\"tally{}\">{ok}/{} healthy</span></summary>\n\
             <table><thead><tr><th>Status</th><th>Entity</th><th>base_uri</th><th>Pin</th>\
             <th>Certificate expires</th><th>Host name</th><th>HTTP</th><th>Latency</th>{}<th>Problem</th></tr></thead><tbody>\n",
            escape(&name),
            if id.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"small\">{}</span>", escape(&id))
            },
            if all_ok { "" } else { " bad" },
            rows.len(),
            if context.uptime.is_empty() {
                ""
            } else {
                "<th>Uptime</th>"
            }
        );
        for r in rows {
            row(&mut page, r, context);
        }
        page.push_str("</tbody></table></details>\n");
    }
    page.push_str(
        "<p class=\"small\">Checked with the member's client certificate (mutual TLS), as peers connect. \
         Unhealthy: DNS/TCP/TLS failure, pin not in the metadata, expired certificate, host name not in the certificate, \
         HTTP 5xx or no answer.</p>\n</body></html>\n",
    );
    page
}

fn row(page: &mut String, r: &ServerHealth, context: &ReportContext) {
    let class = if r.healthy { "healthy" } else { "unhealthy" };
    let status = if r.healthy { "✔ OK" } else { "✘ FAIL" };
    let pin = match r.pin_match {
        Some(true) => "match".to_owned(),
        Some(false) => format!(
            "<b>MISMATCH</b><br><code>{}</code>",
            escape(r.presented_pin.as_deref().unwrap_or("?"))
        ),
        None => "–".to_owned(),
    };
    let expiry_warn = r
        .cert_days_left
        .is_some_and(|d| d < context.expiry_warning_days);
    let expires = match (&r.cert_not_after, r.cert_days_left) {
        (Some(at), Some(days)) => format!("{} ({days} d)", escape(at.get(..10).unwrap_or(at))),
        _ => "–".to_owned(),
    };
    let host = match r.hostname_match {
        Some(true) => "ok",
        Some(false) => "<b>mismatch</b>",
        None => "–",
    };
    let http = r
        .http_status
        .map_or_else(|| "–".to_owned(), |s| s.to_string());
    let latency = r
        .latency_ms
        .map_or_else(|| "–".to_owned(), |ms| format!("{ms} ms"));
    let uptime = if context.uptime.is_empty() {
        String::new()
    } else {
        match context
            .uptime
            .get(&(r.entity_id.clone(), r.base_uri.clone()))
        {
            Some((ok, total)) if *total > 0 => format!(
                "<td>{:.1}% <span class=\"small\">of {total}</span></td>",
                100.0 * *ok as f64 / *total as f64
            ),
            _ => "<td>–</td>".to_owned(),
        }
    };
    let problem = r.error.as_deref().map(escape).unwrap_or_default();
    let _ = writeln!(
        page,
        "<tr class=\"{class}\" data-entity=\"{}\"><td class=\"status\">{status}</td><td>{}</td>\
         <td><code>{}</code></td><td>{pin}</td><td{}>{expires}</td><td>{host}</td><td>{http}</td>\
         <td>{latency}</td>{uptime}<td>{problem}</td></tr>",
        escape(&r.entity_id),
        escape(&r.entity_id),
        escape(&r.base_uri),
        if expiry_warn { " class=\"warn\"" } else { "" },
    );
}
