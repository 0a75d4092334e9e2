//! The health report and the `--serve` dashboard as one self-contained page: one table for
//! the whole federation (failures first, then servers refusing our client, warnings, not yet
//! checked, and the healthy collapsed per organization), sortable with natural sort,
//! searchable, filterable by state and tag, in Swedish and English. The rows travel as
//! compact JSON ([`rows::data`](super::rows::data)) rendered a page at a time by an inline
//! script (no external scripts or fonts), so 5,000 servers stay under a megabyte. The
//! filters live in the URL fragment (`#state=unhealthy&tag=egilv1&q=…&sort=entity&dir=desc&lang=sv`),
//! so a view can be bookmarked or linked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::i18n::{Lang, dictionary_json};
use super::rows::{self, PendingServer};
use super::{HealthState, ServerHealth, Summary};

/// One metadata source's state, for the expired-metadata banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceState {
    /// The source's name.
    pub name: String,
    /// When its metadata expires or expired (RFC 3339), if it has any.
    pub expires_at: Option<String>,
    /// True when its newest metadata has expired.
    pub expired: bool,
}

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
    /// Certificates expiring within this many days are counted.
    pub expiry_warning_days: i64,
    /// Reload the page every so many seconds (the live page of `--serve`; the filters in
    /// the URL fragment survive the reload).
    pub refresh_secs: Option<u64>,
    /// Passed/total checks per `(entity_id, base_uri)` from the history, if kept.
    pub uptime: super::history::Uptime,
    /// Since when (Unix seconds) each `(entity_id, base_uri)` has been in its state.
    pub since: BTreeMap<(String, String), i64>,
    /// The last checks of each `(entity_id, base_uri)`, oldest first (`+`, `~`, `-`).
    pub recent: BTreeMap<(String, String), String>,
    /// Servers the metadata lists that have no result yet.
    pub pending: Vec<PendingServer>,
    /// Each metadata source's state (the banner names expired ones).
    pub sources: Vec<SourceState>,
    /// A problem with the run as a whole (e.g. no valid metadata), shown in red on top.
    pub run_error: Option<String>,
    /// The page's language (the reader can switch).
    pub lang: Lang,
    /// Show "check now" buttons (the `--serve` dashboard, which answers `POST /api/check`).
    pub check_now: bool,
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

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// The columns, in order: `(key, word)`.
const COLUMNS: [(&str, &str); 11] = [
    ("state", "c_state"),
    ("org", "c_org"),
    ("entity", "c_entity"),
    ("host", "c_host"),
    ("tags", "c_tags"),
    ("pin", "c_pin"),
    ("expires", "c_expires"),
    ("http", "c_http"),
    ("since", "c_since"),
    ("uptime", "c_uptime"),
    ("problem", "c_problem"),
];

/// Renders the page.
pub fn render(results: &[ServerHealth], context: &ReportContext) -> String {
    let lang = context.lang;
    let t = |key: &str| escape(lang.t(key));
    let summary = Summary::of(results, context.expiry_warning_days);
    let mut page = String::with_capacity(8192 + results.len() * 180);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n",
        title = escape(&context.title),
    );
    let _ = writeln!(
        page,
        "<p class=\"meta\"><span data-t=\"checked\">{}</span> {} · <span data-t=\"metadata\">{}</span> {}{}{}\
         <button id=\"lang-switch\" type=\"button\" data-t=\"switch\">{}</button></p>",
        t("checked"),
        escape(&context.checked_at),
        t("metadata"),
        escape(&context.metadata_source),
        context
            .metadata_iss
            .as_deref()
            .map(|iss| format!(" (iss {})", escape(iss)))
            .unwrap_or_default(),
        context
            .metadata_expires
            .as_deref()
            .map(|exp| format!(
                ", <span data-t=\"valid_until\">{}</span> {}",
                t("valid_until"),
                escape(exp)
            ))
            .unwrap_or_default(),
        t("switch"),
    );
    banner(&mut page, context);
    counts(&mut page, results, &summary, context);
    controls(&mut page, context);
    let _ = write!(page, "<table id=\"servers\"><thead><tr>");
    for (key, word) in COLUMNS {
        let _ = write!(
            page,
            "<th data-sort=\"{key}\"><button type=\"button\" data-t=\"{word}\">{}</button></th>",
            t(word)
        );
    }
    if context.check_now {
        page.push_str("<th></th>");
    }
    let _ = writeln!(
        page,
        "</tr></thead><tbody id=\"rows\"><tr><td colspan=\"12\"><noscript data-t=\"noscript\">{}</noscript></td></tr></tbody></table>\
         <nav id=\"pager\"></nav>",
        t("noscript")
    );
    let _ = writeln!(
        page,
        "<p class=\"small\" data-t=\"footnote\">{}</p>",
        t("footnote")
    );
    let data = rows::data(results, context);
    let config = serde_json::json!({
        "now": fedtls::verify::unix_now(),
        "refresh": context.refresh_secs,
        "check": context.check_now,
        "warn_days": context.expiry_warning_days,
    });
    let _ = write!(
        page,
        "<script type=\"application/json\" id=\"data\">{}</script>\n\
         <script type=\"application/json\" id=\"words\">{}</script>\n\
         <script type=\"application/json\" id=\"config\">{}</script>\n\
         <script>{SCRIPT}</script>\n</body></html>\n",
        rows::script_safe(&data.to_string()),
        rows::script_safe(&dictionary_json()),
        rows::script_safe(&config.to_string()),
    );
    page
}

/// The red banner: a problem with the run, and which metadata sources expired (and which
/// are still valid).
fn banner(page: &mut String, context: &ReportContext) {
    let expired: Vec<&SourceState> = context.sources.iter().filter(|s| s.expired).collect();
    if context.run_error.is_none() && expired.is_empty() {
        return;
    }
    page.push_str("<div class=\"run-error\" id=\"run-error\">");
    for source in &expired {
        let text = context
            .lang
            .t("expired_banner")
            .replace("{s}", &source.name)
            .replace("{t}", source.expires_at.as_deref().unwrap_or("?"));
        let _ = write!(page, "<p class=\"expired-source\">{}</p>", escape(&text));
    }
    let valid: Vec<String> = context
        .sources
        .iter()
        .filter(|s| !s.expired)
        .map(|s| format!("{} ({})", s.name, s.expires_at.as_deref().unwrap_or("?")))
        .collect();
    if !expired.is_empty() && !valid.is_empty() {
        let _ = write!(
            page,
            "<p class=\"valid-sources\">{} {}</p>",
            escape(context.lang.t("valid_sources")),
            escape(&valid.join(", "))
        );
    }
    if let Some(error) = &context.run_error {
        let _ = write!(page, "<p>{}</p>", escape(error));
    }
    page.push_str("</div>\n");
}

/// The counts on top, each a link to its filter. A zero count is never red.
fn counts(page: &mut String, results: &[ServerHealth], summary: &Summary, context: &ReportContext) {
    let lang = context.lang;
    let in_state = |state: HealthState| results.iter().filter(|r| r.state == state).count();
    let refused = in_state(HealthState::RefusedClient);
    let warnings = in_state(HealthState::Warning);
    let boxes: [(&str, &str, usize, &str); 6] = [
        (
            "total",
            "",
            summary.total + context.pending.len(),
            "neutral",
        ),
        (
            "unhealthy",
            "unhealthy",
            summary.unhealthy,
            if summary.unhealthy > 0 { "bad" } else { "ok" },
        ),
        (
            "refused_client",
            "refused_client",
            refused,
            if refused > 0 { "warn" } else { "neutral" },
        ),
        (
            "warning",
            "warning",
            warnings,
            if warnings > 0 { "warn" } else { "neutral" },
        ),
        ("healthy", "healthy", in_state(HealthState::Healthy), "ok"),
        ("pending", "pending", context.pending.len(), "neutral"),
    ];
    page.push_str("<section class=\"summary\">");
    for (key, filter, n, class) in boxes {
        let _ = write!(
            page,
            "<a class=\"count {class}\" id=\"count-{key}\" href=\"#state={filter}\"><b>{n}</b><span data-t=\"{key}\">{}</span></a>",
            escape(lang.t(key))
        );
    }
    let _ = write!(
        page,
        "<a class=\"count {}\" id=\"count-expiring\" href=\"#state=warning\"><b>{}</b><span data-t=\"expiring\" data-d=\"{d}\">{}</span></a>",
        if summary.expiring > 0 {
            "warn"
        } else {
            "neutral"
        },
        summary.expiring,
        escape(
            &lang
                .t("expiring")
                .replace("{d}", &context.expiry_warning_days.to_string())
        ),
        d = context.expiry_warning_days,
    );
    page.push_str("</section>\n");
}

/// The search box and the state and tag filters (the tag options come from the data).
fn controls(page: &mut String, context: &ReportContext) {
    let t = |key: &str| escape(context.lang.t(key));
    let _ = write!(
        page,
        "<section class=\"controls\"><input id=\"q\" type=\"search\" data-tp=\"search\" placeholder=\"{}\" aria-label=\"{}\">\
         <select id=\"f-state\"><option value=\"\" data-t=\"all_states\">{}</option>",
        t("search"),
        t("search"),
        t("all_states")
    );
    for key in [
        "unhealthy",
        "refused_client",
        "warning",
        "pending",
        "healthy",
    ] {
        let word = format!("s_{key}");
        let _ = write!(
            page,
            "<option value=\"{key}\" data-t=\"{word}\">{}</option>",
            t(&word)
        );
    }
    let _ = writeln!(
        page,
        "</select><select id=\"f-tag\"><option value=\"\" data-t=\"all_tags\">{}</option></select>\
         <span id=\"shown\"></span></section>",
        t("all_tags")
    );
}
