//! `kontosynk health`: check every server of the federation the way peers connect, once
//! (`--json`, `--html`) or continuously (`--serve`).

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use fedtls::OrganizationId;
use fedtls::snapshot::SnapshotSource;
use fedtls::store::MetadataSources;
use kontosynk_client::discovery::ServerQuery;
use kontosynk_client::health::history::History;
use kontosynk_client::health::alerts::Webhook;
use kontosynk_client::health::html::{self, ReportContext};
use kontosynk_client::health::i18n::Lang;
use kontosynk_client::health::serve::{Monitor, MonitorConfig, bind, serve_dashboard};
use kontosynk_client::health::{
    ClientCert, HealthOptions, HealthState, ServerHealth, Summary, check_all_with_progress, rfc3339,
};

use super::CliError;
use super::federation::RequiredFederation;

/// Check every server in the federation metadata as a peer connects: DNS, TCP, mutual TLS
/// with your client certificate, pin vs metadata, certificate expiry and host name, and
/// GET base_uri (status and latency).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    kontosynk health --metadata https://fed.skolfederation.se/trial/md/kontosynk.jws \\\n      \
    --jwks moa-trial.jwks --cert client.pem --key client.key --tag egilv1\n  \
    kontosynk health --metadata md.jws --jwks fed.jwks --cert c.pem --key c.key --json > health.json\n  \
    kontosynk health --metadata md.jws --jwks fed.jwks --cert c.pem --key c.key --html report.html\n  \
    kontosynk health --metadata https://…/kontosynk.jws --jwks fed.jwks --cert c.pem --key c.key \\\n      \
    --serve 127.0.0.1:9100 --interval 300 --history health.sqlite\n\n\
    Unhealthy: DNS/TCP/TLS failure, a pin the metadata does not list, an expired certificate, a certificate\n\
    that does not name the base_uri host (--hostname-warn-only makes that a warning), HTTP 5xx or no answer.\n\
    Warning: a certificate expiring within --expiry-warning-days; refused_client: reachable, pin and certificate\n\
    fine, but the server refused our client certificate (is our pin in the metadata it reads?).\n\
    A progress bar with counts and ETA is drawn on stderr when it is a terminal; a summary line ends the text\n\
    output (and goes to stderr with --json).\n\
    Exit codes: 0 every checked server is healthy, 1 at least one is not, 2 usage or operational error\n\
    (bad flags, unreadable files, metadata that does not verify or has expired, no matching server).")]
pub struct Args {
    #[command(flatten)]
    federation: RequiredFederation,
    /// Only servers carrying this tag (e.g. egilv1, gnapv1).
    #[arg(long, value_name = "TAG", env = "KONTOSYNK_HEALTH_TAG")]
    tag: Option<String>,
    /// Only the servers of this entity.
    #[arg(long, value_name = "ENTITY_ID", env = "KONTOSYNK_HEALTH_ENTITY")]
    entity: Option<String>,
    /// Only the servers of entities with this organization id.
    #[arg(long, value_name = "ID", env = "KONTOSYNK_HEALTH_ORGANIZATION_ID")]
    organization_id: Option<OrganizationId>,
    /// Servers checked at once.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..), env = "KONTOSYNK_HEALTH_CONCURRENCY")]
    concurrency: u16,
    /// Checks started per second, over all servers (0: no pacing, only --concurrency).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 50.0, env = "KONTOSYNK_HEALTH_RATE")]
    rate: f64,
    /// Time allowed for each stage (DNS, TCP, TLS, HTTP), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), env = "KONTOSYNK_HEALTH_TIMEOUT")]
    timeout: u64,
    /// Warn about certificates expiring within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30, env = "KONTOSYNK_HEALTH_EXPIRY_WARNING_DAYS")]
    expiry_warning_days: i64,
    /// Report a certificate that does not name the base_uri host as a warning, not a failure.
    #[arg(long, env = "KONTOSYNK_HEALTH_HOSTNAME_WARN_ONLY")]
    hostname_warn_only: bool,
    /// Print a JSON array with one object per server instead of the text report.
    #[arg(long, conflicts_with = "serve", env = "KONTOSYNK_HEALTH_JSON")]
    json: bool,
    /// Print (text or JSON) only the unhealthy servers; the summary and exit code still count
    /// every server.
    #[arg(long, env = "KONTOSYNK_HEALTH_ONLY_FAILURES")]
    only_failures: bool,
    /// Also write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "serve", env = "KONTOSYNK_HEALTH_HTML")]
    html: Option<PathBuf>,
    /// Keep checking and serve the live page, /metrics and /api/results on ADDR (plain HTTP).
    #[arg(long, value_name = "ADDR", env = "KONTOSYNK_HEALTH_SERVE")]
    serve: Option<SocketAddr>,
    /// With --serve: seconds between runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..), env = "KONTOSYNK_HEALTH_INTERVAL")]
    interval: u64,
    /// With --serve: the SQLite history file.
    #[arg(long, value_name = "FILE", default_value = "kontosynk-health.sqlite", env = "KONTOSYNK_HEALTH_HISTORY")]
    history: PathBuf,
    /// Language of the HTML report and the dashboard's default (the dashboard follows the
    /// browser's Accept-Language when it names sv or en): sv (svenska) or en (English).
    #[arg(long, value_name = "LANG", default_value = "sv", value_parser = parse_lang, env = "KONTOSYNK_HEALTH_LANG")]
    lang: Lang,
    /// With --serve: POST a JSON alert to this URL once per change (server went down, pin
    /// mismatch, certificate expiring within --alert-expiry-days, back to ok).
    #[arg(long, value_name = "URL", requires = "serve", env = "KONTOSYNK_HEALTH_ALERT_WEBHOOK")]
    alert_webhook: Option<reqwest::Url>,
    /// With --serve: alert when a certificate expires within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 14, env = "KONTOSYNK_HEALTH_ALERT_EXPIRY_DAYS")]
    alert_expiry_days: i64,
    /// With --serve: days of history to keep.
    #[arg(long, value_name = "DAYS", default_value_t = 30, env = "KONTOSYNK_HEALTH_KEEP_DAYS")]
    keep_days: i64,
}

impl Args {
    fn query(&self) -> ServerQuery {
        ServerQuery {
            entity_id: self.entity.clone(),
            tag: self.tag.clone(),
            organization_id: self.organization_id.clone(),
        }
    }

    fn options(&self) -> HealthOptions {
        let stage = Duration::from_secs(self.timeout);
        HealthOptions {
            concurrency: usize::from(self.concurrency),
            rate_per_second: self.rate,
            dns_timeout: stage,
            connect_timeout: stage,
            tls_timeout: stage,
            http_timeout: stage,
            expiry_warning_days: self.expiry_warning_days,
            hostname_warn_only: self.hostname_warn_only,
        }
    }

    /// Runs the checks.
    pub fn run(self) -> Result<ExitCode, CliError> {
        let identity = self.federation.identity()?;
        let (cert_path, key_path) = (self.federation.cert()?, self.federation.key()?);
        let cert = Arc::new(ClientCert::new(&identity).map_err(|e| {
            CliError::failed(format!(
                "{} and {}: certificate and key refused: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?);
        let runtime = super::runtime()?;
        runtime.block_on(async move {
            let store = self.federation.metadata_store().await?;
            match self.serve {
                Some(addr) => self.serve_forever(addr, store, cert).await,
                None => self.check_once(&store, cert).await,
            }
        })
    }

    async fn check_once(&self, store: &MetadataSources, cert: Arc<ClientCert>) -> Result<ExitCode, CliError> {
        let snapshot = store.current().ok_or_else(|| {
            CliError::failed("no valid federation metadata (it has expired): refusing to check")
        })?;
        let query = self.query();
        let found = query.find(snapshot.index());
        if found.servers.is_empty() && found.skipped.is_empty() {
            return Err(CliError::failed(format!(
                "no server in the metadata matches {query}"
            )));
        }
        let options = self.options();
        let bar = progress_bar(found.servers.len() + found.skipped.len());
        let mut failures = 0_u64;
        let results = check_all_with_progress(&found, cert, &options, |health| {
            if let Some(bar) = &bar {
                if !health.healthy {
                    failures += 1;
                    bar.set_message(format!("{failures} unhealthy"));
                }
                bar.inc(1);
            }
        })
        .await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let shown: Vec<&ServerHealth> = results
            .iter()
            .filter(|r| !self.only_failures || !r.healthy)
            .collect();
        if let Some(path) = &self.html {
            let context = ReportContext {
                title: match self.lang {
                    Lang::Sv => "Federationens hälsa".to_owned(),
                    Lang::En => "Federation health".to_owned(),
                },
                metadata_source: self.federation.metadata_label(),
                metadata_iss: kontosynk_client::health::metadata_issuers(&snapshot),
                metadata_expires: Some(rfc3339(snapshot.expires_at())),
                checked_at: rfc3339(fedtls::verify::unix_now()),
                expiry_warning_days: self.expiry_warning_days,
                lang: self.lang,
                ..ReportContext::default()
            };
            std::fs::write(path, html::render(&results, &context)).map_err(|e| {
                CliError::failed(format!("{}: cannot write the HTML report: {e}", path.display()))
            })?;
        }
        if self.json {
            let text = serde_json::to_string_pretty(&shown)
                .map_err(|e| CliError::failed(format!("cannot serialize the results: {e}")))?;
            println!("{text}");
            eprintln!(
                "{}",
                Summary::of(&results, self.expiry_warning_days).line(self.expiry_warning_days)
            );
        } else {
            print_text(&shown);
            println!(
                "{}",
                Summary::of(&results, self.expiry_warning_days).line(self.expiry_warning_days)
            );
        }
        Ok(if results.iter().all(|r| r.healthy) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    async fn serve_forever(
        &self,
        addr: SocketAddr,
        store: MetadataSources,
        cert: Arc<ClientCert>,
    ) -> Result<ExitCode, CliError> {
        let history = History::open(&self.history).map_err(CliError::failed)?;
        let listener = bind(addr)
            .await
            .map_err(|e| CliError::failed(format!("cannot listen on {addr}: {e}")))?;
        let refresh = store.spawn();
        let mut monitor = Monitor::new(
            Arc::new(store.clone()),
            cert,
            MonitorConfig {
                query: self.query(),
                options: self.options(),
                interval: Duration::from_secs(self.interval),
                keep_days: self.keep_days,
                uptime_runs: 288,
                title: match self.lang {
                    Lang::Sv => "Federationens hälsa".to_owned(),
                    Lang::En => "Federation health".to_owned(),
                },
                metadata_label: self.federation.metadata_label(),
                lang: self.lang,
                alert_expiry_days: self.alert_expiry_days,
            },
            history,
        )
        .with_sources(store.clone());
        if let Some(url) = &self.alert_webhook {
            monitor = monitor.with_webhook(Webhook::new(url.clone()).map_err(CliError::failed)?);
        }
        let monitor = Arc::new(monitor);
        let local = listener.local_addr().map_or(addr, |a| a);
        eprintln!("kontosynk health: serving http://{local}/ (also /metrics, /api/results); checking every {} s", self.interval);
        let checker = tokio::spawn(Arc::clone(&monitor).run_forever());
        serve_dashboard(listener, monitor, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        checker.abort();
        refresh.abort();
        Ok(ExitCode::SUCCESS)
    }
}

fn parse_lang(text: &str) -> Result<Lang, String> {
    text.parse().map_err(|e: kontosynk_client::health::i18n::UnknownLang| e.to_string())
}

/// A progress bar on stderr for `total` checks, when stderr is a terminal.
fn progress_bar(total: usize) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} servers checked, {msg} · {per_sec} · ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("0 unhealthy");
    Some(bar)
}

fn print_text(results: &[&ServerHealth]) {
    for r in results {
        if r.state == HealthState::RefusedClient {
            println!(
                "REFUSED  {}  {}  reachable, pin OK; the server refused our client certificate",
                r.entity_id, r.base_uri
            );
        } else if r.healthy {
            println!(
                "OK    {}  {}  HTTP {}  {} ms  certificate until {}",
                r.entity_id,
                r.base_uri,
                r.http_status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                r.latency_ms.map_or_else(|| "-".to_owned(), |ms| ms.to_string()),
                r.cert_not_after.as_deref().unwrap_or("-"),
            );
        } else {
            println!(
                "FAIL  {}  {}  {}",
                r.entity_id,
                r.base_uri,
                r.error.as_deref().unwrap_or("unknown error")
            );
        }
        for warning in &r.warnings {
            println!("WARN  {}  {}  {warning}", r.entity_id, r.base_uri);
        }
    }
}
