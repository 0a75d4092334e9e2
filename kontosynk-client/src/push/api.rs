//! An HTTP client for Skolverket's Provisioning API: bearer tokens, the API's rate limits and
//! its LogEntry errors.
//!
//! Requests are paced per class (bulk submissions and job polls share 5/s, reads 10/s). A 429
//! or 503 answer is retried after `Retry-After` or `x-ratelimit-reset` (fractional seconds);
//! `x-ratelimit-remaining: 0` holds the class until the reset. A 403 with a GNAP token drops
//! the cached token and retries once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::kind::ObjectType;
use crate::client::error_chain;
use crate::token::{AccessRequest, TokenClient, TokenError};

/// Where the bearer token comes from.
#[derive(Clone)]
pub enum Bearer {
    /// A fixed token (from `kontosynk token`, or a test).
    Static(Arc<str>),
    /// Tokens from a GNAP authorization server, cached and renewed by the client.
    Gnap {
        /// The token client.
        client: Arc<TokenClient>,
        /// The access asked for (`provisioning-api` at the API's base URL).
        access: AccessRequest,
    },
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bearer::Static(_) => f.write_str("Bearer::Static(<redacted>)"),
            Bearer::Gnap { client, access } => f
                .debug_struct("Bearer::Gnap")
                .field("url", &client.url().as_str())
                .field("access", access)
                .finish(),
        }
    }
}

impl Bearer {
    async fn value(&self) -> Result<Arc<str>, TokenError> {
        match self {
            Bearer::Static(v) => Ok(Arc::clone(v)),
            Bearer::Gnap { client, access } => Ok(Arc::from(client.token(access).await?.value())),
        }
    }

    async fn invalidate(&self) -> bool {
        match self {
            Bearer::Static(_) => false,
            Bearer::Gnap { client, access } => {
                client.invalidate(access).await;
                true
            }
        }
    }
}

/// Request rates (per second) the client keeps to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Bulk submissions and job polls (the API allows 5/s).
    pub bulk_per_sec: f64,
    /// Reads: list, lookup, by id (the API allows 10/s).
    pub read_per_sec: f64,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            bulk_per_sec: 5.0,
            read_per_sec: 10.0,
        }
    }
}

/// One entry of the API's error lists (and of job results' `errors` / `warnings`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// The API's message number (`"5021"`).
    #[serde(default)]
    pub id: Option<String>,
    /// HTTP-like status of the entry.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// `Error` or `Warning`.
    #[serde(default)]
    pub severity_level: Option<String>,
    /// The attribute concerned, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_name: Option<String>,
    /// Every other member, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl LogEntry {
    /// An entry made here (not by the API), e.g. for an object that was never sent.
    pub fn local(message: impl Into<String>) -> LogEntry {
        LogEntry {
            id: None,
            status_code: None,
            message: message.into(),
            severity_level: Some("Error".into()),
            attribute_name: None,
            extra: serde_json::Map::new(),
        }
    }
}

/// The outcome of one object in a bulk job.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobItem {
    /// The object's id.
    pub id: String,
    /// Its result.
    pub response: JobItemResponse,
}

/// `response` of a [`JobItem`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobItemResponse {
    /// `Pending`, `Success`, `Error`, `Warning` or `TemporaryError`.
    #[serde(default = "pending")]
    pub status: String,
    /// The per-object status code.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// Errors (the object was not accepted).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<LogEntry>,
    /// Warnings (accepted, with problems to fix).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub warnings: Vec<LogEntry>,
}

fn pending() -> String {
    "Pending".into()
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<LogEntry>, D::Error> {
    Ok(Option::<Vec<LogEntry>>::deserialize(d)?.unwrap_or_default())
}

/// A bulk job's status (`GET /X/bulk/jobs/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// The job.
    pub job_id: String,
    /// One entry per object.
    #[serde(default)]
    pub responses: Vec<JobItem>,
}

impl JobStatus {
    /// Whether any object is still `Pending`.
    pub fn any_pending(&self) -> bool {
        self.responses
            .iter()
            .any(|r| r.response.status == "Pending")
    }

    /// Each object's result by its id.
    pub fn by_id(&self) -> std::collections::HashMap<&str, &JobItemResponse> {
        self.responses
            .iter()
            .map(|r| (r.id.as_str(), &r.response))
            .collect()
    }
}

/// A bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOp {
    /// `POST /X/bulk?updateIfExists=true`: create, or update what exists.
    Upsert,
    /// `POST /X/bulk/delete`.
    Delete,
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token.
    #[error("no bearer token for the Provisioning API: {0}")]
    Token(#[from] TokenError),
    /// The request could not be sent or the answer not read.
    #[error("{method} {url}: {message}")]
    Transport {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The error chain.
        message: String,
    },
    /// The API answered with an error status.
    #[error("{method} {url}: HTTP {status}{}", describe(entries, body_excerpt))]
    Status {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The LogEntry list, when the body was one.
        entries: Vec<LogEntry>,
        /// The start of the body when it was not a LogEntry list.
        body_excerpt: String,
    },
    /// Still rate limited (429) or unavailable (503) after every retry.
    #[error("{method} {url}: still HTTP {status} after {attempts} attempts")]
    GaveUp {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The last status.
        status: u16,
        /// How many requests were sent.
        attempts: u32,
    },
    /// A success status with a body that is not what the API documents.
    #[error("{url}: unexpected answer: {reason}")]
    Unexpected {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

fn describe(entries: &[LogEntry], excerpt: &str) -> String {
    if entries.is_empty() {
        if excerpt.is_empty() {
            String::new()
        } else {
            format!(": {excerpt:?}")
        }
    } else {
        let messages: Vec<String> = entries
            .iter()
            .map(|e| match &e.id {
                Some(id) => format!("[{id}] {}", e.message),
                None => e.message.clone(),
            })
            .collect();
        format!(": {}", messages.join("; "))
    }
}

/// Which rate limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Bulk,
    Read,
}

/// Spaces requests of one class at least `interval` apart, and holds them after a 429.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    fn new(per_sec: f64) -> Pacer {
        let interval = if per_sec.is_finite() && per_sec > 0.0 {
            Duration::from_secs_f64(1.0 / per_sec)
        } else {
            Duration::ZERO
        };
        Pacer {
            interval,
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(Instant::now()) + self.interval;
    }

    async fn hold_until(&self, until: Instant) {
        let mut next = self.next.lock().await;
        if until > *next {
            *next = until;
        }
    }
}

/// Most attempts for one request while the API answers 429 or 503.
const MAX_ATTEMPTS: u32 = 8;
/// Longest wait honoured from a `Retry-After` / `x-ratelimit-reset`.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A client of one Provisioning API base URL.
#[derive(Debug)]
pub struct ProvisioningClient {
    http: reqwest::Client,
    base: reqwest::Url,
    bearer: Bearer,
    bulk: Pacer,
    read: Pacer,
    retries_after_429: std::sync::atomic::AtomicU64,
}

impl ProvisioningClient {
    /// A client of the API at `base` (e.g. `https://api.skolverket.se/provtjanst/provisioning/v1`)
    /// sending `bearer`, paced by `limits`.
    pub fn new(
        http: reqwest::Client,
        base: reqwest::Url,
        bearer: Bearer,
        limits: RateLimits,
    ) -> ProvisioningClient {
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        ProvisioningClient {
            http,
            base,
            bearer,
            bulk: Pacer::new(limits.bulk_per_sec),
            read: Pacer::new(limits.read_per_sec),
            retries_after_429: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The base URL (with a trailing slash).
    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    /// How many requests were repeated because the API answered 429 or 503.
    pub fn retries(&self) -> u64 {
        self.retries_after_429
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, ApiError> {
        self.base.join(path).map_err(|e| ApiError::Unexpected {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    /// `GET /alive`: whether the API says it is up.
    pub async fn alive(&self) -> Result<bool, ApiError> {
        match self.send(Class::Read, Method::GET, "alive", None).await {
            Ok(_) => Ok(true),
            Err(ApiError::Status { status: 503, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Submits a bulk body for `kind`; returns the job id.
    pub async fn submit(
        &self,
        kind: ObjectType,
        op: BulkOp,
        body: String,
    ) -> Result<String, ApiError> {
        let path = match op {
            BulkOp::Upsert => format!("{kind}/bulk?updateIfExists=true"),
            BulkOp::Delete => format!("{kind}/bulk/delete"),
        };
        let (status, headers, bytes) = self
            .send(Class::Bulk, Method::POST, &path, Some(Bytes::from(body)))
            .await?;
        let url = self.url(&path)?.to_string();
        if status != StatusCode::ACCEPTED {
            return Err(ApiError::Unexpected {
                url,
                reason: format!("HTTP {status} where 202 was expected"),
            });
        }
        let from_body = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("jobId")?.as_str().map(str::to_owned));
        let from_location = headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| {
                l.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .map(str::to_owned)
            });
        from_body
            .or(from_location)
            .filter(|id| !id.is_empty())
            .ok_or(ApiError::Unexpected {
                url,
                reason: "202 without a `jobId` or `Location`".into(),
            })
    }

    /// `GET /X/bulk/jobs/{id}/isCompleted`.
    pub async fn is_completed(&self, kind: ObjectType, job: &str) -> Result<bool, ApiError> {
        let path = format!("{kind}/bulk/jobs/{job}/isCompleted");
        let (_, _, bytes) = self.send(Class::Bulk, Method::GET, &path, None).await?;
        serde_json::from_slice::<bool>(&bytes).map_err(|e| ApiError::Unexpected {
            url: format!("{}{path}", self.base),
            reason: format!("not a JSON boolean: {e}"),
        })
    }

    /// `GET /X/bulk/jobs/{id}`; `None` when the API does not know the job (404).
    pub async fn job_status(
        &self,
        kind: ObjectType,
        job: &str,
    ) -> Result<Option<JobStatus>, ApiError> {
        let path = format!("{kind}/bulk/jobs/{job}");
        let bytes = match self.send(Class::Bulk, Method::GET, &path, None).await {
            Ok((_, _, bytes)) => bytes,
            Err(ApiError::Status { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ApiError::Unexpected {
                url: format!("{}{path}", self.base),
                reason: format!("not a job status: {e}"),
            })
    }

    /// `GET /X/{id}`; `None` on 404.
    pub async fn get(&self, kind: ObjectType, id: &str) -> Result<Option<Value>, ApiError> {
        let path = format!("{kind}/{id}");
        match self.send(Class::Read, Method::GET, &path, None).await {
            Ok((_, _, bytes)) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| ApiError::Unexpected {
                        url: format!("{}{path}", self.base),
                        reason: e.to_string(),
                    })
            }
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one request, pacing it and retrying 429 / 503 and a refused GNAP token.
    async fn send(
        &self,
        class: Class,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), ApiError> {
        let url = self.url(path)?;
        let pacer = match class {
            Class::Bulk => &self.bulk,
            Class::Read => &self.read,
        };
        let mut refreshed_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            pacer.wait().await;
            let token = self.bearer.value().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&*token)
                .header(http::header::ACCEPT, "application/json");
            if let Some(body) = &body {
                request = request
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let transport = |e: reqwest::Error| ApiError::Transport {
                method: method.clone(),
                url: url.to_string(),
                message: error_chain(&e),
            };
            let response = request.send().await.map_err(transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(transport)?;
            let reset = reset_delay(&headers);
            if remaining(&headers) == Some(0)
                && let Some(wait) = reset
            {
                pacer.hold_until(Instant::now() + wait).await;
            }
            match status.as_u16() {
                429 | 503 => {
                    if attempt >= MAX_ATTEMPTS {
                        return Err(ApiError::GaveUp {
                            method,
                            url: url.to_string(),
                            status: status.as_u16(),
                            attempts: attempt,
                        });
                    }
                    let wait = retry_after(&headers)
                        .or(reset)
                        .unwrap_or_else(|| Duration::from_millis(250 << attempt.min(6)))
                        .min(MAX_WAIT);
                    tracing::info!(%url, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "rate limited; waiting");
                    self.retries_after_429
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    pacer.hold_until(Instant::now() + wait).await;
                }
                403 if !refreshed_token && self.bearer.invalidate().await => {
                    refreshed_token = true;
                    tracing::info!(%url, "token refused; asking for a new one");
                }
                200..=299 => return Ok((status, headers, bytes)),
                code => {
                    let entries: Vec<LogEntry> = serde_json::from_slice(&bytes).unwrap_or_default();
                    let body_excerpt = if entries.is_empty() {
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                            .trim()
                            .to_owned()
                    } else {
                        String::new()
                    };
                    return Err(ApiError::Status {
                        method,
                        url: url.to_string(),
                        status: code,
                        entries,
                        body_excerpt,
                    });
                }
            }
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by this API).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    seconds(header_str(headers, "retry-after")?)
}

/// `x-ratelimit-reset`: seconds until the quota resets, possibly fractional.
fn reset_delay(headers: &HeaderMap) -> Option<Duration> {
    seconds(header_str(headers, "x-ratelimit-reset")?)
}

fn remaining(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, "x-ratelimit-remaining")?.parse().ok()
}

fn seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_headers_parse_fractions_and_reject_garbage() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", "0.5".parse().unwrap());
        h.insert("retry-after", "2".parse().unwrap());
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        assert_eq!(reset_delay(&h), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        assert_eq!(remaining(&h), Some(0));
        h.insert("x-ratelimit-reset", "-1".parse().unwrap());
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(reset_delay(&h), None);
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn job_status_parses_the_documented_shape() {
        let body = r#"{"jobId":"j","responses":[
            {"id":"a","response":{"status":"Warning","statusCode":201,"errors":[],
              "warnings":[{"id":"3047","statusCode":400,"message":"eppn","severityLevel":"Warning",
                           "timeOfOccurance":"2025-08-14T16:17:42.048+02:00"}]},"meta":{}},
            {"id":"b","response":{"status":"Pending"},"meta":{}}]}"#;
        let s: JobStatus = serde_json::from_str(body).unwrap();
        assert!(s.any_pending());
        assert_eq!(
            s.responses[0].response.warnings[0].id.as_deref(),
            Some("3047")
        );
        assert!(
            s.responses[0].response.warnings[0]
                .extra
                .contains_key("timeOfOccurance")
        );
    }

    #[test]
    fn error_display_lists_log_entries() {
        let e = ApiError::Status {
            method: Method::POST,
            url: "u".into(),
            status: 403,
            entries: vec![LogEntry {
                id: Some("5002".into()),
                message: "Ogiltigt JWT bearer token.".into(),
                ..LogEntry::default()
            }],
            body_excerpt: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "POST u: HTTP 403: [5002] Ogiltigt JWT bearer token."
        );
    }
}
