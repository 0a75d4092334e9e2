//! Sends requests with the house rules: metadata must be valid, the client-side rate is
//! kept, idempotent requests are retried with backoff, and the server's rate-limit headers
//! are honoured and kept for the caller.

pub use fedtls::error_chain;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fedtls::snapshot::SnapshotSource;

use fedtls::tls::OwnCertificate;
use fedtls::verify::unix_now;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::ClientError;
use super::ratelimit::{Pacer, RateLimitInfo};
use super::retry::{RetryPolicy, is_idempotent};

/// A `reqwest::Client` with retries, pacing and (optionally) a metadata guard. Cheap to
/// clone; clones share the pacer and the observed rate-limit state.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    retry: RetryPolicy,
    pacer: Arc<Pacer>,
    guard: Option<Arc<dyn SnapshotSource>>,
    own: Option<OwnCertificate>,
    observed: Arc<Mutex<Option<RateLimitInfo>>>,
}

impl Sender {
    /// Wraps `http` with the default retry policy, no client-side rate and no metadata guard.
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            retry: RetryPolicy::default(),
            pacer: Arc::new(Pacer::new(None)),
            guard: None,
            own: None,
            observed: Arc::new(Mutex::new(None)),
        }
    }

    /// Retries as `policy` says.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// At most `per_second` requests per second from this sender and its clones (e.g. 5.0
    /// for Skolverket's bulk calls, 10.0 for its GETs).
    pub fn with_rate_limit(mut self, per_second: f64) -> Self {
        self.pacer = Arc::new(Pacer::new(Some(per_second)));
        self
    }

    /// Refuse every request while `source` has no valid (unexpired) metadata.
    pub fn with_metadata_guard(mut self, source: Arc<dyn SnapshotSource>) -> Self {
        self.guard = Some(source);
        self
    }

    /// With a metadata guard: also refuse every request while the current metadata does not
    /// list `own` as a client, or `own` is outside its validity (the server would refuse the
    /// handshake with a bare TLS alert; this says why instead).
    pub fn with_own_certificate(mut self, own: OwnCertificate) -> Self {
        self.own = Some(own);
        self
    }

    /// The underlying client, to build requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The `x-ratelimit-*` headers of the latest response that carried any.
    pub fn rate_limit(&self) -> Option<RateLimitInfo> {
        *self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails with [`ClientError::NoMetadata`] when the guard's metadata is missing or expired.
    pub fn check_metadata(&self) -> Result<(), ClientError> {
        let Some(source) = &self.guard else {
            return Ok(());
        };
        match source.current() {
            Some(snapshot) if snapshot.is_valid_at(unix_now()) => Ok(()),
            Some(snapshot) => Err(ClientError::NoMetadata {
                detail: format!(
                    "the metadata expired at {} (Unix time)",
                    snapshot.expires_at()
                ),
            }),
            None => Err(ClientError::NoMetadata {
                detail: "none is loaded, or the newest has expired".to_owned(),
            }),
        }
    }

    /// The own-certificate check of [`Sender::with_own_certificate`] before sending
    /// `method url`.
    fn check_own_certificate(&self, method: &http::Method, url: &str) -> Result<(), ClientError> {
        let (Some(own), Some(source)) = (&self.own, &self.guard) else {
            return Ok(());
        };
        let Some(snapshot) = source.current() else {
            return Ok(()); // check_metadata refuses first
        };
        own.check(snapshot.index(), unix_now())
            .map_err(|problem| ClientError::OwnCertificate {
                method: method.to_string(),
                url: url.to_owned(),
                problem,
            })
    }

    /// Builds and sends `builder` (see [`Sender::send`]).
    pub async fn send_builder(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let request = builder.build().map_err(|e| ClientError::BuildRequest {
            detail: error_chain(&e),
            source: e,
        })?;
        self.send(request).await
    }

    /// Sends `request`. Before every attempt the metadata guard is checked and the pacer
    /// waited on. Idempotent requests are retried after connection errors, timeouts, 429,
    /// 502, 503 and 504; others only after connection failures (nothing reached the server)
    /// and, if the policy allows, 429. Streaming bodies are never retried. The response of
    /// the last attempt is returned whatever its status; only transport failures are errors.
    pub async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response, ClientError> {
        let method = request.method().clone();
        let url = request.url().to_string();
        let mut current = request;
        let mut retry = 0u32;
        loop {
            self.check_metadata()?;
            self.check_own_certificate(&method, &url)?;
            self.pacer.acquire().await;
            let spare = if retry < self.retry.max_retries {
                current.try_clone()
            } else {
                None
            };
            match self.http.execute(current).await {
                Ok(response) => {
                    self.observe(response.headers()).await;
                    let status = response.status();
                    if let Some(again) = spare
                        && self.retry.retries_status(&method, status)
                        && let Some(delay) =
                            self.retry
                                .delay_after(retry, response.headers(), SystemTime::now())
                    {
                        debug!(%method, %url, %status, retry, ?delay, "retrying after status");
                        drop(response);
                        tokio::time::sleep(delay).await;
                        current = again;
                        retry += 1;
                        continue;
                    }
                    return Ok(response);
                }
                Err(error) => {
                    let retryable = error.is_connect()
                        || (is_idempotent(&method) && !error.is_builder() && !error.is_redirect());
                    if let Some(again) = spare
                        && retryable
                    {
                        let delay = self.retry.backoff(retry);
                        warn!(%method, %url, retry, ?delay, error = %error_chain(&error), "request failed; retrying");
                        tokio::time::sleep(delay).await;
                        current = again;
                        retry += 1;
                        continue;
                    }
                    return Err(ClientError::Request {
                        method: method.to_string(),
                        url,
                        detail: error_chain(&error),
                        source: error,
                    });
                }
            }
        }
    }

    async fn observe(&self, headers: &http::HeaderMap) {
        let Some(info) = RateLimitInfo::from_headers(headers) else {
            return;
        };
        *self.observed.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        if let Some(wait) = info.exhausted_for() {
            debug!(?wait, "rate-limit window used up; holding requests");
            self.pacer.pause_until(Instant::now() + wait).await;
        }
    }
}
