//! `kontosynk health --serve`: re-check periodically, keep the history in SQLite, and serve
//! the live page (`/`), Prometheus metrics (`/metrics`), the latest results
//! (`/api/results`), one server's history (`/api/history?entity_id=…`) and `/healthz`.
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

use super::history::History;
use super::html::{ReportContext, render};
use super::{
    ClientCert, HealthOptions, ServerHealth, Summary, check_all, metadata_issuers, rfc3339,
};
use crate::discovery::ServerQuery;

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
}

#[derive(Debug, Default)]
struct State {
    results: Vec<ServerHealth>,
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
}

impl Monitor {
    /// A monitor reading metadata from `source`, presenting `cert`, recording into `history`.
    pub fn new(
        source: Arc<dyn SnapshotSource>,
        cert: Arc<ClientCert>,
        config: MonitorConfig,
        history: History,
    ) -> Self {
        let runs = history.runs().unwrap_or(0);
        Self {
            source,
            cert,
            config,
            history: Arc::new(Mutex::new(history)),
            state: RwLock::new(State {
                runs,
                ..State::default()
            }),
        }
    }

    /// One run: check every matching server (none, with a run error, when there is no valid
    /// metadata: fail closed), record it, update the views.
    pub async fn run_once(&self) {
        let started = unix_now();
        let (results, run_error, iss, expires) = match self.source.current() {
            Some(snapshot) => {
                let found = self.config.query.find(snapshot.index());
                let results = check_all(&found, Arc::clone(&self.cert), &self.config.options).await;
                let error = (results.is_empty())
                    .then(|| format!("no server in the metadata matches {}", self.config.query));
                (
                    results,
                    error,
                    metadata_issuers(&snapshot),
                    Some(snapshot.expires_at()),
                )
            }
            None => (
                Vec::new(),
                Some("no valid federation metadata (none loaded, or the newest has expired): nothing is checked".to_owned()),
                None,
                None,
            ),
        };
        let finished = unix_now();
        let summary = Summary::of(&results, self.config.options.expiry_warning_days);
        info!(
            healthy = summary.healthy,
            unhealthy = summary.unhealthy,
            "health run finished"
        );

        let history = Arc::clone(&self.history);
        let for_db = results.clone();
        let error_for_db = run_error.clone();
        let keep_days = self.config.keep_days;
        let uptime_runs = self.config.uptime_runs;
        let recorded = tokio::task::spawn_blocking(move || {
            let mut history = history.lock().unwrap_or_else(|p| p.into_inner());
            history.record(started, finished, &for_db, error_for_db.as_deref())?;
            history.prune(finished - keep_days * 86_400)?;
            Ok::<_, super::history::HistoryError>((history.runs()?, history.uptime(uptime_runs)?))
        })
        .await;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match recorded {
            Ok(Ok((runs, uptime))) => {
                state.runs = runs;
                state.uptime = uptime;
            }
            Ok(Err(error)) => {
                warn!(%error, "cannot record the health run");
                state.runs += 1;
            }
            Err(error) => {
                warn!(%error, "the history task failed");
                state.runs += 1;
            }
        }
        state.results = results;
        state.checked_at = Some(finished);
        state.run_error = run_error;
        state.metadata_iss = iss;
        state.metadata_expires = expires;
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

    /// Answers one request of the dashboard.
    pub async fn respond(
        &self,
        method: &http::Method,
        path_and_query: &str,
    ) -> Response<Full<Bytes>> {
        if method != http::Method::GET && method != http::Method::HEAD {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET\n".to_owned(),
            );
        }
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        match path {
            "/" | "/index.html" => {
                let state = self.state.read().unwrap_or_else(|p| p.into_inner());
                let context = ReportContext {
                    title: self.config.title.clone(),
                    metadata_source: self.config.metadata_label.clone(),
                    metadata_iss: state.metadata_iss.clone(),
                    metadata_expires: state.metadata_expires.map(rfc3339),
                    checked_at: state.checked_at.map_or_else(
                        || "not yet (the first run is under way)".to_owned(),
                        rfc3339,
                    ),
                    expiry_warning_days: self.config.options.expiry_warning_days,
                    refresh_secs: Some(self.config.interval.as_secs().clamp(5, 300)),
                    uptime: state.uptime.clone(),
                    run_error: state.run_error.clone(),
                };
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
                async move {
                    let target = request
                        .uri()
                        .path_and_query()
                        .map_or("/", |pq| pq.as_str())
                        .to_owned();
                    Ok::<_, Infallible>(monitor.respond(request.method(), &target).await)
                }
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

/// Binds `addr` for the dashboard.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
