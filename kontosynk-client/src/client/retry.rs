//! When and how long to wait before retrying a request: idempotent methods only (plus
//! connection failures, where nothing reached the server), exponential backoff with full
//! jitter and a cap, and the server's own `Retry-After` / `x-ratelimit-reset` on 429 and 503.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode};

use super::ratelimit::RateLimitInfo;

/// How a client retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 turns retrying off).
    pub max_retries: u32,
    /// The first backoff; it doubles with every retry.
    pub base_delay: Duration,
    /// The largest backoff, and the longest server-asked wait honoured (a longer
    /// `Retry-After` ends the retries and returns the response).
    pub max_delay: Duration,
    /// Also retry non-idempotent methods (POST, PATCH) on 429, which servers send before
    /// doing any work. Off by default.
    pub retry_429_any_method: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            retry_429_any_method: false,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn never() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (0-based): a random duration in
    /// `[0, min(max_delay, base_delay * 2^retry)]` (full jitter).
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random_u64() % (nanos + 1))
    }

    /// Whether a response with `status` to `method` may be retried.
    pub fn retries_status(&self, method: &Method, status: StatusCode) -> bool {
        match status {
            StatusCode::TOO_MANY_REQUESTS => self.retry_429_any_method || is_idempotent(method),
            StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT => is_idempotent(method),
            _ => false,
        }
    }

    /// How long to wait before retrying after a retryable response: the server's
    /// `Retry-After` or `x-ratelimit-reset` when it gives one, else the backoff. `None`
    /// when the server asks for longer than `max_delay` (give up and return the response).
    pub fn delay_after(
        &self,
        retry: u32,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Option<Duration> {
        let asked = retry_after(headers, now)
            .or_else(|| RateLimitInfo::from_headers(headers).and_then(|info| info.reset));
        match asked {
            Some(wait) if wait > self.max_delay => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(retry)),
        }
    }
}

/// GET, HEAD, PUT, DELETE, OPTIONS and TRACE: repeating them does not change the outcome.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP date (a date in the
/// past means now). `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A random number from the standard library's per-process random hasher keys.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into()),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::headers;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for retry in 0..40 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(2u32.saturating_pow(retry.min(31)))
                .min(Duration::from_secs(1));
            for _ in 0..20 {
                assert!(policy.backoff(retry) <= ceiling);
            }
        }
        // Jitter: 50 draws of up to one second are not all equal.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(10)).collect();
        assert!(draws.len() > 1);
        assert_eq!(
            RetryPolicy {
                base_delay: Duration::ZERO,
                ..policy
            }
            .backoff(3),
            Duration::ZERO
        );
    }

    #[test]
    fn only_idempotent_methods_retry_on_server_errors() {
        let policy = RetryPolicy::default();
        assert!(policy.retries_status(&Method::GET, StatusCode::TOO_MANY_REQUESTS));
        assert!(policy.retries_status(&Method::PUT, StatusCode::SERVICE_UNAVAILABLE));
        assert!(!policy.retries_status(&Method::POST, StatusCode::TOO_MANY_REQUESTS));
        assert!(!policy.retries_status(&Method::POST, StatusCode::SERVICE_UNAVAILABLE));
        assert!(!policy.retries_status(&Method::GET, StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!policy.retries_status(&Method::GET, StatusCode::NOT_FOUND));
        let lenient = RetryPolicy {
            retry_429_any_method: true,
            ..policy
        };
        assert!(lenient.retries_status(&Method::POST, StatusCode::TOO_MANY_REQUESTS));
        assert!(!lenient.retries_status(&Method::POST, StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        // RFC 9110's example date, 60 s after `now`.
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:50:37 GMT")]),
                now
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")]),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn server_asked_waits_win_over_backoff_and_too_long_gives_up() {
        let policy = RetryPolicy::default();
        let now = SystemTime::now();
        assert_eq!(
            policy.delay_after(0, &headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay_after(0, &headers(&[("x-ratelimit-reset", "0.25")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            policy.delay_after(0, &headers(&[("retry-after", "3600")]), now),
            None
        );
        assert!(policy.delay_after(0, &HeaderMap::new(), now).unwrap() <= policy.base_delay);
    }
}
