//! `kontosynk health --serve`: re-check periodically, keep the history in SQLite, and serve
//! the live page (`/`, Swedish or English by `Accept-Language`, `?lang=` or `--lang`),
//! Prometheus metrics (`/metrics`), the latest results (`/api/results`), one server's history
//! (`/api/history?entity_id=…`), "check now" (`POST /api/check` with `entity_id` and
//! `base_uri`, or `organization_id`) and `/healthz`.
//!
//! The latest result of every server is kept in the history database and read back at start,
//! so a restart shows the last known state at once; servers the metadata lists without a
//! result are shown as "not checked yet". When the metadata expires nothing is checked (fail
//! closed) but the last known results stay on the page under a banner naming the expired
//! source. Alert conditions that change are posted to the webhook once.
//!
//! The dashboard is plain HTTP: bind it to localhost or put it behind the operator's proxy.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use fedtls::snapshot::SnapshotSource;
use fedtls::verify::unix_now;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::alerts::{Webhook, alert_of};
use super::history::{History, HistoryError, StateChange};
use super::html::{ReportContext, SourceState, render};
use super::i18n::Lang;
use super::rows::PendingServer;
use super::{
    ClientCert, HealthOptions, ServerHealth, Summary, check_all, metadata_issuers, rfc3339,
};
use crate::discovery::{Discovered, ServerQuery};

/// What the monitor checks and how often.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Which servers.
    pub query: ServerQuery,
    /// How each run checks.
    pub options: HealthOptions,
    /// Time between the start of one run and the next.
    pub interval: Duration,
    /// Runs older than this many days are pruned from the history.
    pub keep_days: i64,
    /// Uptime on the page covers this many recent runs.
    pub uptime_runs: u32,
    /// The page title.
    pub title: String,
    /// Where the metadata comes from (shown on the page).
    pub metadata_label: String,
    /// The page's language when the browser's `Accept-Language` names neither sv nor en.
    pub lang: Lang,
    /// Alert when a certificate expires within this many days.
    pub alert_expiry_days: i64,
}

#[derive(Debug, Default)]
struct State {
    results: Vec<ServerHealth>,
    since: std::collections::BTreeMap<(String, String), i64>,
    recent: std::collections::BTreeMap<(String, String), String>,
    checked_at: Option<i64>,
    run_error: Option<String>,
    metadata_iss: Option<String>,
    metadata_expires: Option<i64>,
    runs: u64,
    uptime: super::history::Uptime,
}

/// The periodic checker and its web views.
#[derive(Debug)]
pub struct Monitor {
    source: Arc<dyn SnapshotSource>,
    cert: Arc<ClientCert>,
    config: MonitorConfig,
    history: Arc<Mutex<History>>,
    state: RwLock<State>,
    sources: Option<fedtls::store::MetadataSources>,
    webhook: Option<Webhook>,
    /// One "check now" at a time.
    check_now: tokio::sync::Semaphore,
}

/// Most webhook alerts one run sends (the first run of a broken federation would otherwise
/// post one per server).
const ALERTS_PER_RUN: usize = 200;

/// Most servers one "check now" checks (an organization's).
const CHECK_NOW_MAX: usize = 100;

impl Monitor {
    /// A monitor reading metadata from `source`, presenting `cert`, recording into `history`.
    pub fn new(
        source: Arc<dyn SnapshotSource>,
        cert: Arc<ClientCert>,
        config: MonitorConfig,
        history: History,
    ) -> Self {
        let runs = history.runs().unwrap_or(0);
        // The last known results, so a restart shows them at once.
        let mut state = State {
            runs,
            ..State::default()
        };
        match history.states() {
            Ok(known) => {
                for (health, since) in known {
                    state
                        .since
                        .insert((health.entity_id.clone(), health.base_uri.clone()), since);
                    state.results.push(health);
                }
            }
            Err(error) => warn!(%error, "cannot read the last known results"),
        }
        state.recent = history.recent(RECENT_CHECKS).unwrap_or_default();
        state.uptime = history.uptime(config.uptime_runs).unwrap_or_default();
        Self {
            source,
            cert,
            config,
            history: Arc::new(Mutex::new(history)),
            state: RwLock::new(state),
            sources: None,
            webhook: None,
            check_now: tokio::sync::Semaphore::new(1),
        }
    }

    /// Names each source in the expired-metadata banner (which expired, which are valid).
    pub fn with_sources(mut self, sources: fedtls::store::MetadataSources) -> Self {
        self.sources = Some(sources);
        self
    }

    /// Posts alert changes to `webhook`.
    pub fn with_webhook(mut self, webhook: Webhook) -> Self {
        self.webhook = Some(webhook);
        self
    }

    /// One run: check every matching server (none, with a run error, when there is no valid
    /// metadata: fail closed, keeping the last known results), record it, update the views,
    /// and alert on changes.
    pub async fn run_once(&self) {
        let started = unix_now();
        let Some(snapshot) = self.source.current() else {
            let error = "no valid federation metadata (none loaded, or the newest has expired): nothing is checked; the last known results are shown".to_owned();
            let history = Arc::clone(&self.history);
            let for_db = error.clone();
            let recorded = tokio::task::spawn_blocking(move || {
                let mut history = history.lock().unwrap_or_else(|p| p.into_inner());
                history.record(started, unix_now(), &[], Some(&for_db))?;
                history.runs()
            })
            .await;
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            match recorded {
                Ok(Ok(runs)) => state.runs = runs,
                _ => state.runs += 1,
            }
            state.run_error = Some(error);
            state.metadata_iss = None;
            state.metadata_expires = None;
            return;
        };
        let found = self.config.query.find(snapshot.index());
        let results = check_all(&found, Arc::clone(&self.cert), &self.config.options).await;
        let run_error = results
            .is_empty()
            .then(|| format!("no server in the metadata matches {}", self.config.query));
        self.record(started, results, run_error, true).await;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.metadata_iss = metadata_issuers(&snapshot);
        state.metadata_expires = Some(snapshot.expires_at());
    }

    /// Stores `results` (a whole run when `whole_run`, else a "check now" of some servers,
    /// merged into the last results), updates the views and sends the alerts.
    async fn record(
        &self,
        started: i64,
        results: Vec<ServerHealth>,
        run_error: Option<String>,
        whole_run: bool,
    ) {
        let finished = unix_now();
        let summary = Summary::of(&results, self.config.options.expiry_warning_days);
        info!(
            healthy = summary.healthy,
            unhealthy = summary.unhealthy,
            whole_run,
            "health run finished"
        );
        let history = Arc::clone(&self.history);
        let for_db = results.clone();
        let error_for_db = run_error.clone();
        let keep_days = self.config.keep_days;
        let uptime_runs = self.config.uptime_runs;
        let alert_days = self.config.alert_expiry_days;
        let recorded = tokio::task::spawn_blocking(move || {
            let mut history = history.lock().unwrap_or_else(|p| p.into_inner());
            history.record(started, finished, &for_db, error_for_db.as_deref())?;
            let changes = history.update_states(finished, &for_db, |h| alert_of(h, alert_days))?;
            history.prune(finished - keep_days * 86_400)?;
            Ok::<_, HistoryError>(Recorded {
                runs: history.runs()?,
                uptime: history.uptime(uptime_runs)?,
                recent: history.recent(RECENT_CHECKS)?,
                states: history.states()?,
                changes,
            })
        })
        .await;
        let changes =
            {
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                let changes = match recorded {
                    Ok(Ok(recorded)) => {
                        state.runs = recorded.runs;
                        state.uptime = recorded.uptime;
                        state.recent = recorded.recent;
                        state.since = recorded
                            .states
                            .iter()
                            .map(|(h, since)| ((h.entity_id.clone(), h.base_uri.clone()), *since))
                            .collect();
                        recorded.changes
                    }
                    Ok(Err(error)) => {
                        warn!(%error, "cannot record the health run");
                        state.runs += 1;
                        Vec::new()
                    }
                    Err(error) => {
                        warn!(%error, "the history task failed");
                        state.runs += 1;
                        Vec::new()
                    }
                };
                if whole_run {
                    state.results = results;
                    state.checked_at = Some(finished);
                    state.run_error = run_error;
                } else {
                    for fresh in results {
                        match state.results.iter_mut().find(|r| {
                            r.entity_id == fresh.entity_id && r.base_uri == fresh.base_uri
                        }) {
                            Some(old) => *old = fresh,
                            None => state.results.push(fresh),
                        }
                    }
                }
                changes
            };
        if let Some(webhook) = &self.webhook
            && !changes.is_empty()
        {
            // In the background, so a slow webhook never delays the checks; bounded per run.
            let mut changes = changes;
            if changes.len() > ALERTS_PER_RUN {
                warn!(
                    changes = changes.len(),
                    sent = ALERTS_PER_RUN,
                    "more alert changes than one run sends; the rest are on /metrics"
                );
                changes.truncate(ALERTS_PER_RUN);
            }
            let webhook = webhook.clone();
            tokio::spawn(async move { webhook.send(&changes).await });
        }
    }

    /// "Check now": the servers of the current metadata matching `form` (`entity_id` and
    /// `base_uri`, or `organization_id`), at most [`CHECK_NOW_MAX`]; one at a time.
    pub async fn check_now(&self, form: &str) -> Response<Full<Bytes>> {
        let field = |name: &str| {
            url::form_urlencoded::parse(form.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
        };
        let (entity, base_uri, organization) = (
            field("entity_id"),
            field("base_uri"),
            field("organization_id"),
        );
        if entity.is_none() && organization.is_none() {
            return problem(
                StatusCode::BAD_REQUEST,
                "missing_parameter",
                "give entity_id (and base_uri), or organization_id",
            );
        }
        let Ok(_permit) = self.check_now.try_acquire() else {
            return problem(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                "a check is under way; try again when it has finished",
            );
        };
        let Some(snapshot) = self.source.current() else {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_metadata",
                "no valid federation metadata: nothing can be checked",
            );
        };
        let found = self.config.query.find(snapshot.index());
        let servers: Vec<_> = found
            .servers
            .into_iter()
            .filter(|t| {
                entity.as_ref().is_none_or(|e| &t.entity_id == e)
                    && base_uri.as_ref().is_none_or(|b| t.base_uri.as_str() == b)
                    && organization.as_ref().is_none_or(|o| {
                        t.organization_id
                            .as_ref()
                            .is_some_and(|id| id.as_str() == o)
                    })
            })
            .take(CHECK_NOW_MAX)
            .collect();
        if servers.is_empty() {
            return problem(
                StatusCode::NOT_FOUND,
                "no_server",
                "no server of the current metadata matches",
            );
        }
        let subset = Discovered {
            servers,
            skipped: Vec::new(),
        };
        let results = check_all(&subset, Arc::clone(&self.cert), &self.config.options).await;
        self.record(unix_now(), results.clone(), None, false).await;
        text(
            StatusCode::OK,
            "application/json",
            serde_json::json!({"checked": results.len(), "results": results}).to_string(),
        )
    }

    /// The page's context: the last results with their history, the servers not checked
    /// yet, and the state of each metadata source.
    fn context(&self, state: &State, lang: Lang) -> ReportContext {
        let checked: std::collections::BTreeSet<(&str, &str)> = state
            .results
            .iter()
            .map(|r| (r.entity_id.as_str(), r.base_uri.as_str()))
            .collect();
        let pending = self
            .source
            .current()
            .map(|snapshot| {
                self.config
                    .query
                    .find(snapshot.index())
                    .servers
                    .into_iter()
                    .filter(|t| !checked.contains(&(t.entity_id.as_str(), t.base_uri.as_str())))
                    .map(|t| PendingServer {
                        entity_id: t.entity_id.clone(),
                        organization: t.organization.clone(),
                        organization_id: t.organization_id.as_ref().map(ToString::to_string),
                        base_uri: t.base_uri.to_string(),
                        tags: t.tags.clone(),
                        pin: t.pins.first().map(ToString::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sources = self
            .sources
            .as_ref()
            .map(|sources| {
                sources
                    .status()
                    .sources
                    .into_iter()
                    .map(|s| SourceState {
                        name: s.name,
                        expires_at: s.status.expires_at.map(rfc3339),
                        expired: s.status.expired,
                    })
                    .collect()
            })
            .unwrap_or_default();
        ReportContext {
            title: self.config.title.clone(),
            metadata_source: self.config.metadata_label.clone(),
            metadata_iss: state.metadata_iss.clone(),
            metadata_expires: state.metadata_expires.map(rfc3339),
            checked_at: state.checked_at.map_or_else(
                || match lang {
                    Lang::Sv => "inte än i denna körning (senast kända resultat visas)".to_owned(),
                    Lang::En => {
                        "not yet since the start (the last known results are shown)".to_owned()
                    }
                },
                rfc3339,
            ),
            expiry_warning_days: self.config.options.expiry_warning_days,
            refresh_secs: Some(self.config.interval.as_secs().clamp(5, 300)),
            uptime: state.uptime.clone(),
            since: state.since.clone(),
            recent: state.recent.clone(),
            pending,
            sources,
            run_error: state.run_error.clone(),
            lang,
            check_now: true,
        }
    }

    /// Re-checks every `interval` until the process ends.
    pub async fn run_forever(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.run_once().await;
        }
    }

    /// Whether every server of the latest run was healthy (false before the first run).
    pub fn all_healthy(&self) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.checked_at.is_some()
            && state.run_error.is_none()
            && state.results.iter().all(|r| r.healthy)
    }

    /// Answers one GET of the dashboard; `accept_language` picks the page's language.
    pub async fn respond(
        &self,
        method: &http::Method,
        path_and_query: &str,
        accept_language: Option<&str>,
    ) -> Response<Full<Bytes>> {
        if method != http::Method::GET && method != http::Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET here (POST /api/check checks servers now)\n".to_owned(),
            );
        }
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        match path {
            "/" | "/index.html" => {
                let asked = url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "lang")
                    .and_then(|(_, v)| v.parse::<Lang>().ok());
                let lang = asked
                    .or_else(|| accept_language.and_then(Lang::from_accept_language))
                    .unwrap_or(self.config.lang);
                let state = self.state.read().unwrap_or_else(|p| p.into_inner());
                let context = self.context(&state, lang);
                text(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    render(&state.results, &context),
                )
            }
            "/metrics" => {
                let state = self.state.read().unwrap_or_else(|p| p.into_inner());
                text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    super::metrics::render(
                        &state.results,
                        state.runs,
                        state.checked_at.unwrap_or(0),
                        self.config.options.expiry_warning_days,
                    ),
                )
            }
            "/api/results" => {
                let state = self.state.read().unwrap_or_else(|p| p.into_inner());
                let body = serde_json::json!({
                    "checked_at": state.checked_at.map(rfc3339),
                    "run_error": state.run_error,
                    "summary": Summary::of(&state.results, self.config.options.expiry_warning_days),
                    "results": state.results,
                });
                text(StatusCode::OK, "application/json", body.to_string())
            }
            "/api/history" => {
                let entity = url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "entity_id")
                    .map(|(_, v)| v.into_owned());
                let Some(entity) = entity else {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "application/json",
                        serde_json::json!({"error": "missing_parameter", "message": "give ?entity_id=URI"}).to_string(),
                    );
                };
                let history = Arc::clone(&self.history);
                let found = tokio::task::spawn_blocking(move || {
                    history
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .server(&entity, 500)
                })
                .await;
                match found {
                    Ok(Ok(checks)) => text(
                        StatusCode::OK,
                        "application/json",
                        serde_json::to_string(&checks).unwrap_or_else(|_| "[]".to_owned()),
                    ),
                    Ok(Err(error)) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "application/json",
                        serde_json::json!({"error": "history", "message": error.to_string()})
                            .to_string(),
                    ),
                    Err(error) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "application/json",
                        serde_json::json!({"error": "history", "message": error.to_string()})
                            .to_string(),
                    ),
                }
            }
            "/healthz" => text(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ok\n".to_owned(),
            ),
            _ => text(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found\n".to_owned(),
            ),
        }
    }
}

/// How many recent checks the page's history bar shows.
const RECENT_CHECKS: u32 = 24;

/// What one recorded run gives the views.
struct Recorded {
    runs: u64,
    uptime: super::history::Uptime,
    recent: std::collections::BTreeMap<(String, String), String>,
    states: Vec<(ServerHealth, i64)>,
    changes: Vec<StateChange>,
}

/// A JSON error answer `{"error", "message"}`.
fn problem(status: StatusCode, error: &str, message: &str) -> Response<Full<Bytes>> {
    text(
        status,
        "application/json",
        serde_json::json!({"error": error, "message": message}).to_string(),
    )
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Serves the dashboard on `listener` until `shutdown` completes.
pub async fn serve_dashboard(
    listener: TcpListener,
    monitor: Arc<Monitor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let monitor = Arc::clone(&monitor);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let monitor = Arc::clone(&monitor);
                async move { Ok::<_, Infallible>(answer(&monitor, request).await) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "dashboard connection ended with an error");
            }
        });
    }
}

/// The largest "check now" form accepted.
const CHECK_FORM_MAX: usize = 4096;

/// Routes one request: `POST /api/check` reads its small form, everything else is a GET.
async fn answer(monitor: &Monitor, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let path = target.split('?').next().unwrap_or("/");
    if request.method() == http::Method::POST && (path == "/api/check" || path == "/api/check/") {
        let query = target
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default();
        let limited = http_body_util::Limited::new(request.into_body(), CHECK_FORM_MAX);
        let body = match http_body_util::BodyExt::collect(limited).await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the form is limited to 4 KiB",
                );
            }
        };
        let form = if body.is_empty() {
            query
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        return monitor.check_now(&form).await;
    }
    let accept_language = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(ToOwned::to_owned);
    monitor
        .respond(request.method(), &target, accept_language.as_deref())
        .await
}

/// Binds `addr` for the dashboard.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
