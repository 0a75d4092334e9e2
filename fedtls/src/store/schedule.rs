//! When to refresh next: after a good document (cache_ttl, HTTP freshness, `exp`) and
//! after a failure (exponential backoff with full jitter).

use std::time::Duration;

/// No interval is ever longer than this (keeps `Instant` arithmetic far from overflow and
/// guarantees the source is looked at now and then even with absurd `cache_ttl` values).
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(365 * 86_400);

/// The first retry waits up to this long; every further failure doubles it up to the cap.
const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// A retry never comes sooner than this (full jitter may draw zero).
const BACKOFF_FLOOR: Duration = Duration::from_millis(100);

/// The document is refreshed at least this long before its `exp` (or a tenth of its
/// remaining lifetime, whichever is longer).
const EXPIRY_MARGIN_SECS: i64 = 60;

/// What decided the refresh interval (reported in the status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshBasis {
    /// The document's `cache_ttl`.
    CacheTtl,
    /// HTTP `Cache-Control: max-age` (or `no-cache`/`no-store`).
    MaxAge,
    /// HTTP `Expires`.
    Expires,
    /// Neither the document nor HTTP said: the configured default.
    Default,
    /// Refreshing ahead of the document's `exp`.
    Expiry,
    /// The computed interval was shorter than the configured floor.
    MinRefresh,
    /// Retrying after a failure.
    Backoff,
    /// Started from the cache file: asking the source right away.
    AfterCache,
}

impl RefreshBasis {
    /// A short name for logs and the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CacheTtl => "cache_ttl",
            Self::MaxAge => "max-age",
            Self::Expires => "expires",
            Self::Default => "default",
            Self::Expiry => "exp",
            Self::MinRefresh => "min_refresh",
            Self::Backoff => "backoff",
            Self::AfterCache => "cache",
        }
    }
}

/// How long HTTP says a response stays fresh, and which header said so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HttpFreshness {
    pub secs: u64,
    pub basis: RefreshBasis,
}

/// Bounds for [`refresh_interval`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub default_refresh: Duration,
    pub min_refresh: Duration,
}

/// The delay before the next refresh after a good (or unchanged) document.
///
/// The smaller of `cache_ttl` and the HTTP freshness, `default_refresh` when neither is
/// known; brought forward so that it happens before `exp` (by a tenth of the remaining
/// lifetime, at least 60 s); never below `min_refresh`.
pub(crate) fn refresh_interval(
    cache_ttl: Option<u64>,
    http: Option<HttpFreshness>,
    now: i64,
    exp: i64,
    bounds: Bounds,
) -> (Duration, RefreshBasis) {
    let from_ttl = cache_ttl.map(|secs| (Duration::from_secs(secs), RefreshBasis::CacheTtl));
    let from_http = http.map(|h| (Duration::from_secs(h.secs), h.basis));
    let (mut interval, mut basis) = match (from_ttl, from_http) {
        (Some(t), Some(h)) => {
            if h.0 < t.0 {
                h
            } else {
                t
            }
        }
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => (bounds.default_refresh, RefreshBasis::Default),
    };
    let remaining = exp.saturating_sub(now).max(0);
    let margin = (remaining / 10).max(EXPIRY_MARGIN_SECS);
    let before_exp = Duration::from_secs(u64::try_from(remaining - margin).unwrap_or(0));
    if before_exp < interval {
        interval = before_exp;
        basis = RefreshBasis::Expiry;
    }
    if interval < bounds.min_refresh {
        interval = bounds.min_refresh;
        basis = RefreshBasis::MinRefresh;
    }
    (interval.min(MAX_INTERVAL), basis)
}

/// The delay before retry number `failures` (1 for the first failure): uniformly drawn from
/// zero to `min(cap, 1 s × 2^(failures−1))` ("full jitter"), at least 100 ms (or the cap,
/// if smaller).
pub(crate) fn backoff(failures: u32, cap: Duration, random: u64) -> Duration {
    let doublings = failures.saturating_sub(1).min(40);
    let ceiling = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(doublings.min(31)))
        .min(cap)
        .min(MAX_INTERVAL);
    // ceiling × random / 2^64, in integers: never more than the ceiling, never a panic.
    let nanos = ceiling.as_nanos().saturating_mul(u128::from(random)) >> 64;
    let drawn = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
    drawn.max(BACKOFF_FLOOR.min(ceiling))
}

/// 64 random bits for the jitter (aws-lc-rs's system generator; a fixed midpoint if it
/// ever fails, which only makes retries less spread).
pub(crate) fn jitter_bits() -> u64 {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => u64::MAX / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        default_refresh: Duration::from_secs(3600),
        min_refresh: Duration::from_secs(30),
    };
    const NOW: i64 = 1_700_000_000;
    const FAR: i64 = NOW + 30 * 86_400;

    fn http(secs: u64, basis: RefreshBasis) -> Option<HttpFreshness> {
        Some(HttpFreshness { secs, basis })
    }

    #[test]
    fn the_smaller_of_cache_ttl_and_http_wins() {
        assert_eq!(
            refresh_interval(Some(600), None, NOW, FAR, BOUNDS),
            (Duration::from_secs(600), RefreshBasis::CacheTtl)
        );
        assert_eq!(
            refresh_interval(Some(600), http(120, RefreshBasis::MaxAge), NOW, FAR, BOUNDS),
            (Duration::from_secs(120), RefreshBasis::MaxAge)
        );
        assert_eq!(
            refresh_interval(
                Some(600),
                http(900, RefreshBasis::Expires),
                NOW,
                FAR,
                BOUNDS
            ),
            (Duration::from_secs(600), RefreshBasis::CacheTtl)
        );
        assert_eq!(
            refresh_interval(None, http(900, RefreshBasis::Expires), NOW, FAR, BOUNDS),
            (Duration::from_secs(900), RefreshBasis::Expires)
        );
        assert_eq!(
            refresh_interval(None, None, NOW, FAR, BOUNDS),
            (Duration::from_secs(3600), RefreshBasis::Default)
        );
    }

    #[test]
    fn never_below_the_floor() {
        assert_eq!(
            refresh_interval(Some(0), None, NOW, FAR, BOUNDS),
            (Duration::from_secs(30), RefreshBasis::MinRefresh)
        );
        assert_eq!(
            refresh_interval(Some(600), http(0, RefreshBasis::MaxAge), NOW, FAR, BOUNDS),
            (Duration::from_secs(30), RefreshBasis::MinRefresh)
        );
    }

    #[test]
    fn refreshes_ahead_of_exp() {
        // 1000 s left: a tenth (100 s) before exp.
        assert_eq!(
            refresh_interval(Some(3600), None, NOW, NOW + 1000, BOUNDS),
            (Duration::from_secs(900), RefreshBasis::Expiry)
        );
        // 300 s left: at least 60 s before exp.
        assert_eq!(
            refresh_interval(Some(3600), None, NOW, NOW + 300, BOUNDS),
            (Duration::from_secs(240), RefreshBasis::Expiry)
        );
        // Almost or already expired: the floor, never a spin.
        assert_eq!(
            refresh_interval(Some(3600), None, NOW, NOW + 10, BOUNDS),
            (Duration::from_secs(30), RefreshBasis::MinRefresh)
        );
        assert_eq!(
            refresh_interval(Some(3600), None, NOW, NOW - 10, BOUNDS),
            (Duration::from_secs(30), RefreshBasis::MinRefresh)
        );
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let (d, _) = refresh_interval(
            Some(u64::MAX),
            http(u64::MAX, RefreshBasis::MaxAge),
            i64::MIN,
            i64::MAX,
            BOUNDS,
        );
        assert_eq!(d, MAX_INTERVAL);
        let (d, _) = refresh_interval(None, None, i64::MAX, i64::MIN, BOUNDS);
        assert_eq!(d, Duration::from_secs(30));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(1, cap, u64::MAX), Duration::from_nanos(999_999_999));
        assert_eq!(backoff(1, cap, 0), Duration::from_millis(100));
        assert_eq!(backoff(1, cap, 1 << 63), Duration::from_millis(500));
        assert_eq!(backoff(3, cap, 1 << 63), Duration::from_secs(2));
        assert_eq!(backoff(7, cap, 1 << 63), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX, cap, 1 << 63), Duration::from_secs(30));
        assert_eq!(backoff(0, cap, 1 << 63), Duration::from_millis(500));
        for failures in 0..100 {
            let d = backoff(failures, cap, jitter_bits());
            assert!(d <= cap && d >= Duration::from_millis(100), "{d:?}");
        }
        // A cap below the floor is still honoured.
        assert_eq!(
            backoff(5, Duration::from_millis(10), 0),
            Duration::from_millis(10)
        );
        assert_eq!(backoff(5, Duration::ZERO, u64::MAX), Duration::ZERO);
    }
}
