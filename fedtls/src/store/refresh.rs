//! One refresh attempt and the refresh loop: obtain, verify, swap, record, cache, schedule.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use crate::pin::sha256;
use crate::snapshot::{Snapshot, SnapshotSource};
use crate::verify::{VerifiedMetadata, unix_now, verify_metadata};

use super::fetch::{Fetched, Validators};
use super::schedule::{HttpFreshness, RefreshBasis};

use super::{
    Checked, Inner, Obtained, RefreshOutcome, Scheduled, Source, State, StoreError, StoreStatus,
    blocking,
};
use super::{cache, fetch, schedule};

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetch, verify, swap; records the result and schedules the next attempt. The caller
    /// holds `attempt_lock`.
    pub(super) async fn attempt(self: &Arc<Self>) -> Result<RefreshOutcome, StoreError> {
        self.state().last_attempt = Some(unix_now());
        let result = self.try_attempt().await;
        match &result {
            Ok(_) => {}
            Err(e) => self.record_failure(e),
        }
        result
    }

    async fn try_attempt(self: &Arc<Self>) -> Result<RefreshOutcome, StoreError> {
        let (obtained, validators, freshness) = match self.obtain().await? {
            Obtained::NotModified {
                validators,
                freshness,
            } => {
                self.confirm_current()?;
                self.record_success(Some(validators), freshness);
                debug!(source = %self.label, "metadata not modified");
                return Ok(RefreshOutcome::NotModified);
            }
            Obtained::Bytes {
                bytes,
                validators,
                freshness,
            } => (Input::Owned(bytes), validators, freshness),
            Obtained::Shared(bytes) => (Input::Shared(bytes), None, None),
        };
        let current_digest = self.state().digest;
        let this = Arc::clone(self);
        let checked = blocking(move || {
            let input = obtained.as_slice();
            let verify = || {
                verify_metadata(input, &this.jwks, &this.verify).map_err(|error| {
                    StoreError::Verify {
                        origin: this.label.clone(),
                        error,
                    }
                })
            };
            let (digest, verified) = match current_digest {
                // A refresh: an unchanged document needs no verification at all.
                Some(current) => {
                    let digest = sha256(input);
                    if digest == current {
                        return Ok(Checked::Same);
                    }
                    (digest, verify()?)
                }
                // The first load: nothing to compare with, so hash while verifying.
                None => std::thread::scope(|scope| {
                    let digest = scope.spawn(|| sha256(input));
                    let verified = verify();
                    let digest = digest
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    verified.map(|v| (digest, v))
                })?,
            };
            Ok(Checked::New {
                verified: Box::new(verified),
                digest,
                bytes: obtained.into_owned(),
            })
        })
        .await?;
        match checked {
            Checked::Same => {
                self.confirm_current()?;
                self.record_success(validators, freshness);
                debug!(source = %self.label, "metadata unchanged");
                Ok(RefreshOutcome::Unchanged)
            }
            Checked::New {
                verified,
                digest,
                bytes,
            } => {
                self.check_rollback(&verified)?;
                let snapshot =
                    self.cell
                        .store(Snapshot::new(*verified, self.label.clone(), unix_now()));
                self.state().digest = Some(digest);
                self.record_success(validators, freshness);
                self.log_update(&snapshot);
                self.write_cache(bytes).await;
                Ok(RefreshOutcome::Updated(snapshot))
            }
        }
    }

    async fn obtain(&self) -> Result<Obtained, StoreError> {
        match &self.source {
            Source::Url { url, client } => {
                let validators = {
                    let state = self.state();
                    state.validators.clone().filter(|_| state.digest.is_some())
                };
                match fetch::fetch_url(
                    client,
                    url,
                    validators.as_ref(),
                    self.fetch_timeout,
                    self.max_body,
                )
                .await?
                {
                    Fetched::Body {
                        bytes,
                        validators,
                        freshness,
                    } => Ok(Obtained::Bytes {
                        bytes,
                        validators: Some(validators),
                        freshness,
                    }),
                    Fetched::NotModified {
                        validators,
                        freshness,
                    } => Ok(Obtained::NotModified {
                        validators,
                        freshness,
                    }),
                }
            }
            Source::File(path) => {
                let path = path.clone();
                let max_body = self.max_body;
                let bytes = blocking(move || fetch::read_file(&path, max_body)).await?;
                Ok(Obtained::Bytes {
                    bytes,
                    validators: None,
                    freshness: None,
                })
            }
            Source::Bytes(bytes) => Ok(Obtained::Shared(Arc::clone(bytes))),
        }
    }

    /// The source says the newest snapshot is still what it publishes: fine unless that
    /// snapshot has expired (or there is none).
    fn confirm_current(&self) -> Result<(), StoreError> {
        let newest = self.cell.newest().ok_or(StoreError::NoMetadata)?;
        if !newest.is_valid_at(unix_now()) {
            return Err(StoreError::Expired {
                origin: self.label.clone(),
                exp: newest.expires_at(),
            });
        }
        Ok(())
    }

    fn check_rollback(&self, verified: &VerifiedMetadata) -> Result<(), StoreError> {
        let Some(newest) = self.cell.newest() else {
            return Ok(());
        };
        if let (Some(iat), Some(current_iat)) = (verified.claims().iat(), newest.sources()[0].iat)
            && iat < current_iat
        {
            return Err(StoreError::Rollback {
                origin: self.label.clone(),
                iat,
                current_iat,
            });
        }
        Ok(())
    }

    fn record_success(&self, validators: Option<Validators>, freshness: Option<HttpFreshness>) {
        let now = unix_now();
        let (cache_ttl, exp) = match self.cell.newest() {
            Some(s) => (s.index().metadata().cache_ttl, s.expires_at()),
            None => (None, now),
        };
        let (interval, basis) =
            schedule::refresh_interval(cache_ttl, freshness, now, exp, self.bounds);
        let mut state = self.state();
        state.last_success = Some(now);
        state.last_error = None;
        state.last_error_is_expiry = false;
        state.consecutive_failures = 0;
        if let Some(validators) = validators {
            state.validators = Some(validators);
        }
        state.next = Some(Scheduled {
            at: Instant::now() + interval,
            interval,
            basis,
        });
    }

    fn record_failure(&self, error: &StoreError) {
        let now = unix_now();
        let current = self.cell.current();
        let mut state = self.state();
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        state.last_error = Some(error.to_string());
        state.last_error_is_expiry = matches!(error, StoreError::Expired { .. });
        let delay = schedule::backoff(
            state.consecutive_failures,
            self.retry_cap,
            schedule::jitter_bits(),
        );
        state.next = Some(Scheduled {
            at: Instant::now() + delay,
            interval: delay,
            basis: RefreshBasis::Backoff,
        });
        let failures = state.consecutive_failures;
        drop(state);
        let kept = current.map(|s| s.generation());
        let retry_in = format!("{delay:.1?}");
        let what = if error.is_bad_content() {
            "metadata refused"
        } else {
            "metadata refresh failed"
        };
        match kept {
            Some(generation) => warn!(
                source = %self.label, error = %error, kept_generation = generation, failures, %retry_in,
                "{what}; keeping the previous snapshot"
            ),
            None => warn!(
                source = %self.label, error = %error, failures, %retry_in,
                "{what}; no usable metadata, every peer is refused"
            ),
        }
        if kept.is_none() {
            self.report_expiry(now);
        }
    }

    fn log_update(&self, snapshot: &Snapshot) {
        let index = snapshot.index();
        let next = self.state().next.map(|n| n.interval.as_secs());
        info!(
            source = %self.label,
            generation = snapshot.generation(),
            entities = index.entities().len(),
            rejected = index.rejected().len(),
            iat = snapshot.sources()[0].iat,
            exp = snapshot.expires_at(),
            next_refresh_secs = next,
            "metadata updated"
        );
        for rejected in index.rejected().iter().take(20) {
            warn!(
                source = %self.label,
                index = rejected.index,
                entity_id = rejected.entity_id.as_deref(),
                reason = %rejected.reason,
                "entity left out of the metadata"
            );
        }
        for warning in &index.metadata().warnings {
            warn!(source = %self.label, %warning, "metadata warning");
        }
    }

    async fn write_cache(&self, bytes: Option<Vec<u8>>) {
        let Some(path) = self.cache_file.clone() else {
            return;
        };
        let bytes: Arc<[u8]> = match (bytes, &self.source) {
            (Some(bytes), _) => bytes.into(),
            (None, Source::Bytes(shared)) => Arc::clone(shared),
            (None, _) => return,
        };
        let target = path.clone();
        match blocking(move || cache::write_atomically(&target, &bytes)).await {
            Ok(()) => debug!(cache = %path.display(), "metadata cache written"),
            Err(e) => warn!(cache = %path.display(), error = %e, "cannot write the metadata cache"),
        }
    }

    /// Verifies the cache file and makes it current. The caller holds `attempt_lock`.
    pub(super) async fn load_cache(
        self: &Arc<Self>,
        path: &Path,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let this = Arc::clone(self);
        let file = path.to_path_buf();
        let origin = format!("cache:{}", path.display());
        let label = origin.clone();
        let (verified, digest, written_at) = blocking(move || {
            let bytes = fetch::read_file(&file, this.max_body)?;
            let written_at = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok());
            let verified = verify_metadata(&bytes, &this.jwks, &this.verify).map_err(|error| {
                StoreError::Verify {
                    origin: label,
                    error,
                }
            })?;
            Ok((verified, sha256(&bytes), written_at))
        })
        .await?;
        let now = unix_now();
        let fetched_at = written_at.filter(|&t| t <= now).unwrap_or(now);
        let snapshot = self.cell.store(Snapshot::new(verified, origin, fetched_at));
        {
            let mut state = self.state();
            state.digest = Some(digest);
            state.last_success = Some(now);
            state.last_error = None;
            state.last_error_is_expiry = false;
            state.next = Some(Scheduled {
                at: Instant::now(),
                interval: Duration::ZERO,
                basis: RefreshBasis::AfterCache,
            });
        }
        info!(
            cache = %path.display(),
            generation = snapshot.generation(),
            entities = snapshot.index().entities().len(),
            exp = snapshot.expires_at(),
            "metadata loaded from the cache file; refreshing from the source next"
        );
        Ok(snapshot)
    }

    /// Logs an error once per snapshot when it has expired.
    fn report_expiry(&self, now: i64) {
        let Some(newest) = self.cell.newest() else {
            return;
        };
        if newest.is_valid_at(now) {
            return;
        }
        let generation = newest.generation();
        if self.expiry_reported.swap(generation, Ordering::AcqRel) != generation {
            error!(
                source = %self.label,
                generation,
                exp = newest.expires_at(),
                "federation metadata has EXPIRED: every peer is refused until a newer document verifies"
            );
        }
    }

    pub(super) async fn run(self: Arc<Self>) {
        loop {
            let now = unix_now();
            self.report_expiry(now);
            let due = self.state().next.map(|n| n.at);
            let wait = due.map_or(Duration::ZERO, |at| {
                at.saturating_duration_since(Instant::now())
            });
            if wait.is_zero() {
                let _attempt = self.attempt_lock.lock().await;
                // A caller may have refreshed while we waited for the lock.
                let still_due = self.state().next.is_none_or(|n| n.at <= Instant::now());
                if still_due {
                    // The outcome is recorded in the status and logged.
                    let _ = self.attempt().await;
                }
                continue;
            }
            // Also wake at `exp`, to report the expiry when it happens.
            let until_exp = self
                .cell
                .newest()
                .map(|s| s.expires_at().saturating_sub(now))
                .filter(|&secs| secs > 0)
                .and_then(|secs| u64::try_from(secs).ok())
                .map(Duration::from_secs);
            let wait = until_exp.map_or(wait, |e| wait.min(e));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    pub(super) fn status(&self) -> StoreStatus {
        let now = unix_now();
        self.report_expiry(now);
        let newest = self.cell.newest();
        let state = self.state();
        let expired = newest.as_ref().is_some_and(|s| !s.is_valid_at(now));
        let last_error = match (&newest, expired) {
            (Some(s), true) => Some(match &state.last_error {
                Some(e) if state.last_error_is_expiry => e.clone(),
                Some(e) => format!(
                    "metadata expired at {}; every peer is refused (fail closed); last refresh error: {e}",
                    s.expires_at()
                ),
                None => format!(
                    "metadata expired at {}; every peer is refused (fail closed) until a newer document verifies",
                    s.expires_at()
                ),
            }),
            _ => state.last_error.clone(),
        };
        let instant_now = Instant::now();
        StoreStatus {
            source: self.label.clone(),
            snapshot_source: newest.as_ref().map(|s| s.source().to_owned()),
            generation: self.cell.generation(),
            last_success: state.last_success,
            last_attempt: state.last_attempt,
            last_error,
            consecutive_failures: state.consecutive_failures,
            age_secs: newest.as_ref().map(|s| now.saturating_sub(s.fetched_at())),
            issued_at: newest.as_ref().and_then(|s| s.sources()[0].iat),
            expires_at: newest.as_ref().map(|s| s.expires_at()),
            seconds_to_expiry: newest.as_ref().map(|s| s.expires_at().saturating_sub(now)),
            expired,
            entities: newest.as_ref().map_or(0, |s| s.index().entities().len()),
            rejected_entities: newest.as_ref().map_or(0, |s| s.index().rejected().len()),
            next_refresh_in_secs: state.next.map(|n| {
                i64::try_from(n.at.saturating_duration_since(instant_now).as_secs())
                    .unwrap_or(i64::MAX)
            }),
            refresh_interval_secs: state.next.map(|n| n.interval.as_secs()),
            refresh_basis: state.next.map(|n| n.basis.as_str()),
        }
    }
}

/// The document bytes, owned (fetched) or shared (a `Bytes` source).
pub(super) enum Input {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Input {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Owned(v) => v,
            Self::Shared(s) => s,
        }
    }

    fn into_owned(self) -> Option<Vec<u8>> {
        match self {
            Self::Owned(v) => Some(v),
            Self::Shared(_) => None,
        }
    }
}
