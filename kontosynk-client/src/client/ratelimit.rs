//! Rate limits in both directions: the `x-ratelimit-*` headers a server sends (so a caller
//! can pace itself), and a client-side pacer that spaces requests to a set rate.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use tokio::time::Instant;

/// Values above this in `x-ratelimit-reset` are Unix times, not delays.
const EPOCH_THRESHOLD: f64 = 1_000_000_000.0;

/// The server's rate-limit headers on one response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitInfo {
    /// `x-ratelimit-limit`: requests allowed per window.
    pub limit: Option<u64>,
    /// `x-ratelimit-remaining`: requests left in the current window.
    pub remaining: Option<u64>,
    /// `x-ratelimit-reset`: time until the window resets (the header may be fractional
    /// seconds, or a Unix time).
    pub reset: Option<Duration>,
}

impl RateLimitInfo {
    /// Reads the headers; `None` when the response carries none of them. Unreadable values
    /// are ignored (never an error: rate-limit headers are advice).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let integer = |name: &str| {
            text(name).and_then(|t| {
                t.parse::<u64>().ok().or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f >= 0.0)
                        .map(|f| f as u64)
                })
            })
        };
        let reset = text("x-ratelimit-reset")
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|secs| {
                if secs > EPOCH_THRESHOLD {
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    Duration::from_secs_f64((secs - now).max(0.0))
                } else {
                    Duration::from_secs_f64(secs)
                }
            });
        let info = Self {
            limit: integer("x-ratelimit-limit"),
            remaining: integer("x-ratelimit-remaining"),
            reset,
        };
        (info.limit.is_some() || info.remaining.is_some() || info.reset.is_some()).then_some(info)
    }

    /// When the window is used up (`remaining == 0`), how long to hold further requests.
    pub fn exhausted_for(&self) -> Option<Duration> {
        match (self.remaining, self.reset) {
            (Some(0), Some(reset)) => Some(reset),
            _ => None,
        }
    }
}

/// Spaces requests: at most `rate` per second (evenly spaced, no bursts), and none before a
/// time the server asked for. Shared by every clone of a client.
#[derive(Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    /// A pacer allowing `per_second` requests per second; `None` (or a rate that is not
    /// positive and finite) paces only by server-asked pauses.
    pub fn new(per_second: Option<f64>) -> Self {
        let interval = per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        Self {
            interval,
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// The spacing between requests, if a rate is set.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Waits until the next request may go, and books the slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval.unwrap_or(Duration::ZERO);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Holds every request until at least `until` (e.g. a rate-limit window reset).
    pub async fn pause_until(&self, until: Instant) {
        let mut next = self.next.lock().await;
        if until > *next {
            *next = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::headers;

    #[test]
    fn reads_rate_limit_headers() {
        let info = RateLimitInfo::from_headers(&headers(&[
            ("x-ratelimit-limit", "10"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "0.5"),
        ]))
        .unwrap();
        assert_eq!(info.limit, Some(10));
        assert_eq!(info.remaining, Some(0));
        assert_eq!(info.reset, Some(Duration::from_millis(500)));
        assert_eq!(info.exhausted_for(), Some(Duration::from_millis(500)));

        assert!(RateLimitInfo::from_headers(&HeaderMap::new()).is_none());
        let bad = RateLimitInfo::from_headers(&headers(&[
            ("x-ratelimit-remaining", "many"),
            ("x-ratelimit-reset", "-1"),
            ("x-ratelimit-limit", "5"),
        ]))
        .unwrap();
        assert_eq!(bad.remaining, None);
        assert_eq!(bad.reset, None);
        assert_eq!(bad.exhausted_for(), None);

        // A Unix time in the past means "now".
        let past =
            RateLimitInfo::from_headers(&headers(&[("x-ratelimit-reset", "1700000000")])).unwrap();
        assert_eq!(past.reset, Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_requests_and_honours_pauses() {
        let pacer = Pacer::new(Some(5.0));
        assert_eq!(pacer.interval(), Some(Duration::from_millis(200)));
        let start = Instant::now();
        for _ in 0..6 {
            pacer.acquire().await;
        }
        // Six requests at 5/s: the sixth goes one second after the first (virtual time).
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        pacer
            .pause_until(Instant::now() + Duration::from_secs(3))
            .await;
        let before = Instant::now();
        pacer.acquire().await;
        assert!(before.elapsed() >= Duration::from_secs(3));

        let unpaced = Pacer::new(Some(f64::NAN));
        assert_eq!(unpaced.interval(), None);
        assert_eq!(Pacer::new(Some(0.0)).interval(), None);
    }
}
