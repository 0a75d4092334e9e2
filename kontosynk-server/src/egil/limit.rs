//! The optional per-tenant rate limit, Windermere's way: a request over the rate waits for its
//! turn, and is refused (429 with `Retry-After`) only when that wait would pass a deadline.

use std::time::{Duration, Instant};

use http::StatusCode;
use kontosynk_framework::RateLimit;
use kontosynk_framework::rate_limit::RateLimiter;

use super::error::ScimError;

/// Rate and patience of the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantLimit {
    /// Sustained rate and burst per tenant.
    pub rate: RateLimit,
    /// The longest a request waits for its turn (Windermere: 30 s).
    pub max_wait: Duration,
}

/// Token buckets per tenant that make requests wait.
#[derive(Debug)]
pub struct WaitingLimiter {
    limiter: RateLimiter,
    max_wait: Duration,
}

impl WaitingLimiter {
    /// A limiter applying `limit` to each tenant separately.
    pub fn new(limit: TenantLimit) -> WaitingLimiter {
        WaitingLimiter {
            limiter: RateLimiter::new(limit.rate),
            max_wait: limit.max_wait,
        }
    }

    /// Waits until `tenant` may make a request; 429 when that would take longer than the
    /// limit's `max_wait` (counted from the call).
    pub async fn admit(&self, tenant: &str) -> Result<(), ScimError> {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            match self.limiter.check(tenant, now) {
                Ok(()) => return Ok(()),
                Err(wait) => {
                    let waited = now.saturating_duration_since(started);
                    if waited + wait > self.max_wait {
                        return Err(ScimError {
                            retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
                            ..ScimError::new(
                                StatusCode::TOO_MANY_REQUESTS,
                                format!(
                                    "too many requests from this client: over the limit for {} s; retry after the time in Retry-After",
                                    self.max_wait.as_secs()
                                ),
                            )
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_then_refuses_with_retry_after() {
        let limiter = WaitingLimiter::new(TenantLimit {
            rate: RateLimit {
                per_second: 10.0,
                burst: 1,
            },
            max_wait: Duration::from_millis(150),
        });
        limiter.admit("a").await.unwrap();
        let before = Instant::now();
        limiter.admit("a").await.unwrap();
        assert!(
            before.elapsed() >= Duration::from_millis(80),
            "it waited for its turn"
        );
        // Another tenant has its own bucket.
        limiter.admit("b").await.unwrap();
        let limiter = WaitingLimiter::new(TenantLimit {
            rate: RateLimit {
                per_second: 0.1,
                burst: 1,
            },
            max_wait: Duration::from_secs(1),
        });
        limiter.admit("a").await.unwrap();
        let err = limiter.admit("a").await.unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.retry_after, Some(10));
    }
}
