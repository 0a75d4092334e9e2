//! What the store reports to health checks and metrics.

/// A point-in-time report on the store, for health endpoints and metrics.
///
/// Times are Unix seconds; durations are seconds. `expired` is the field to alarm on: the
/// store then refuses every peer (fail closed) until a newer document verifies.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoreStatus {
    /// The configured source (URL, file path or `bytes`).
    pub source: String,
    /// Where the newest snapshot came from (the source, or `cache:PATH` after a start from
    /// the cache file); `None` before the first.
    pub snapshot_source: Option<String>,
    /// Generation of the newest snapshot (0 before the first).
    pub generation: u64,
    /// When the last fetch, verification or cache load succeeded.
    pub last_success: Option<i64>,
    /// When the last refresh was attempted.
    pub last_attempt: Option<i64>,
    /// Why the last attempt failed, or why the metadata is unusable (cleared by a success
    /// while the snapshot is valid).
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Seconds since the newest snapshot was fetched (for a start from the cache file: since
    /// the cache file was written).
    pub age_secs: Option<i64>,
    /// The newest snapshot's `iat`, if it has one.
    pub issued_at: Option<i64>,
    /// The newest snapshot's `exp`.
    pub expires_at: Option<i64>,
    /// `exp` minus now; negative once expired.
    pub seconds_to_expiry: Option<i64>,
    /// True when there is a snapshot but it has expired: every peer is refused.
    pub expired: bool,
    /// Usable entities in the newest snapshot.
    pub entities: usize,
    /// Entities left out of the newest snapshot because they were malformed.
    pub rejected_entities: usize,
    /// Seconds until the next scheduled refresh (0 when due), `None` before the first
    /// attempt.
    pub next_refresh_in_secs: Option<i64>,
    /// The delay chosen after the last attempt, in seconds.
    pub refresh_interval_secs: Option<u64>,
    /// What chose it: `cache_ttl`, `max-age`, `expires`, `default`, `exp` (refreshing ahead
    /// of expiry), `min_refresh`, `backoff` (after a failure) or `cache` (right after a start
    /// from the cache file).
    pub refresh_basis: Option<&'static str>,
}

impl StoreStatus {
    /// True when a current, unexpired snapshot exists (what a readiness probe asks).
    pub fn is_ready(&self) -> bool {
        self.generation > 0 && self.expires_at.is_some() && !self.expired
    }
}
