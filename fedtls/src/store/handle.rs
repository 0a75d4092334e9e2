//! The public handle: creating a store, loading, refreshing, spawning its loop, reading it.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use crate::snapshot::{Snapshot, SnapshotCell, SnapshotSource};

use super::schedule::Bounds;

use super::{
    Inner, MetadataSource, RefreshOutcome, Source, State, StoreConfig, StoreError, StoreStatus,
};

/// Keeps the newest verified metadata in a [`SnapshotCell`] and refreshes it.
///
/// Cheap to clone: clones share one store. See the [module documentation](super).
#[derive(Clone)]
pub struct MetadataStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataStore")
            .field("source", &self.inner.label)
            .field("generation", &self.inner.cell.generation())
            .finish_non_exhaustive()
    }
}

impl MetadataStore {
    /// Checks the configuration and prepares the HTTP client; no I/O happens yet.
    pub fn new(config: StoreConfig) -> Result<MetadataStore, StoreError> {
        if config.verify.now.is_some() {
            return Err(StoreError::Config(
                "verify.now must be None: the store verifies against the clock".into(),
            ));
        }
        if config.min_refresh < Duration::from_secs(1) {
            return Err(StoreError::Config(format!(
                "min_refresh must be at least 1 s, got {:?}",
                config.min_refresh
            )));
        }
        if config.retry_cap < Duration::from_millis(100) {
            return Err(StoreError::Config(format!(
                "retry_cap must be at least 100 ms, got {:?}",
                config.retry_cap
            )));
        }
        if config.fetch_timeout.is_zero() {
            return Err(StoreError::Config("fetch_timeout must not be zero".into()));
        }
        if config.max_body == 0 {
            return Err(StoreError::Config("max_body must not be zero".into()));
        }
        let label = config.source.to_string();
        let source = match config.source {
            MetadataSource::Url(url) => {
                let client =
                    http_client(&url, &config.extra_root_certificates, config.fetch_timeout)?;
                Source::Url { url, client }
            }
            MetadataSource::File(path) => Source::File(path),
            MetadataSource::Bytes(bytes) => Source::Bytes(bytes.into()),
        };
        Ok(MetadataStore {
            inner: Arc::new(Inner {
                source,
                label,
                jwks: config.jwks,
                verify: config.verify,
                cache_file: config.cache_file,
                bounds: Bounds {
                    default_refresh: config.default_refresh,
                    min_refresh: config.min_refresh,
                },
                fetch_timeout: config.fetch_timeout,
                max_body: config.max_body,
                retry_cap: config.retry_cap,
                cell: Arc::new(SnapshotCell::new()),
                state: Mutex::new(State::default()),
                attempt_lock: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                expiry_reported: AtomicU64::new(0),
            }),
        })
    }

    /// The first load. A cache file that verifies and has not expired is used at once (as
    /// source `cache:PATH`; the refresh loop asks the source right after); otherwise the
    /// source is fetched. A corrupt, foreign or expired cache is ignored with a warning.
    ///
    /// Called again later, it refreshes from the source and returns the current snapshot.
    pub async fn load(&self) -> Result<Arc<Snapshot>, StoreError> {
        let inner = &self.inner;
        let _attempt = inner.attempt_lock.lock().await;
        if inner.cell.newest().is_none()
            && let Some(path) = &inner.cache_file
        {
            match inner.load_cache(path).await {
                Ok(snapshot) => {
                    inner.wake.notify_waiters();
                    return Ok(snapshot);
                }
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    debug!(cache = %path.display(), "no metadata cache file yet");
                }
                Err(e) => warn!(
                    cache = %path.display(),
                    error = %e,
                    "ignoring the metadata cache file; fetching from the source"
                ),
            }
        }
        let result = inner.attempt().await;
        inner.wake.notify_waiters();
        result?;
        inner.cell.current().ok_or(StoreError::NoMetadata)
    }

    /// One fetch, verify and swap attempt now. On failure the error is recorded in the
    /// status, a retry is scheduled with backoff, and the previous snapshot stays.
    pub async fn refresh(&self) -> Result<RefreshOutcome, StoreError> {
        let inner = &self.inner;
        let _attempt = inner.attempt_lock.lock().await;
        let result = inner.attempt().await;
        inner.wake.notify_waiters();
        result
    }

    /// Starts the refresh loop on the current tokio runtime: it refreshes when the schedule
    /// says (at once if nothing was loaded yet), retries failures with backoff, and logs an
    /// error when the metadata expires. It runs until the handle is aborted.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (as [`tokio::spawn`] does).
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.run().await })
    }

    /// The cell that verifiers and handlers read (it implements [`SnapshotSource`]).
    /// Only the store should store into it.
    pub fn cell(&self) -> Arc<SnapshotCell> {
        Arc::clone(&self.inner.cell)
    }

    /// A report for health checks and metrics.
    pub fn status(&self) -> StoreStatus {
        self.inner.status()
    }

    /// A receiver that sees the generation of every new snapshot (= `cell().subscribe()`).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.cell.subscribe()
    }
}

impl SnapshotSource for MetadataStore {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.inner.cell.current()
    }

    fn generation(&self) -> u64 {
        self.inner.cell.generation()
    }
}

fn http_client(
    url: &str,
    extra_roots: &[CertificateDer<'static>],
    timeout: Duration,
) -> Result<reqwest::Client, StoreError> {
    let invalid = |reason: String| StoreError::InvalidSource {
        given: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("only http and https URLs can be fetched".into()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    let roots = extra_roots
        .iter()
        .map(|der| reqwest::Certificate::from_der(der.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Config(format!("extra root certificate: {e}")))?;
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("fedtls/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    builder.build().map_err(|e| {
        StoreError::Config(format!(
            "cannot set up the HTTP client{}: {}",
            if extra_roots.is_empty() {
                ""
            } else {
                " with the extra root certificates"
            },
            crate::error_chain(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::Jwks;

    #[test]
    fn configuration_is_checked_without_io() {
        let jwks = Jwks::default();
        let with = |edit: &dyn Fn(&mut StoreConfig)| {
            let mut config = StoreConfig::new(
                MetadataSource::Url("https://fed.example/md.jws".into()),
                jwks.clone(),
            );
            edit(&mut config);
            MetadataStore::new(config)
        };
        assert!(with(&|_| {}).is_ok());
        for (edit, expect) in [
            (
                &(|c: &mut StoreConfig| c.source = MetadataSource::Url("https://".into()))
                    as &dyn Fn(&mut StoreConfig),
                "invalid metadata source",
            ),
            (&|c: &mut StoreConfig| c.verify.now = Some(1), "verify.now"),
            (
                &|c: &mut StoreConfig| c.min_refresh = Duration::ZERO,
                "min_refresh",
            ),
            (
                &|c: &mut StoreConfig| c.retry_cap = Duration::from_millis(1),
                "retry_cap",
            ),
            (
                &|c: &mut StoreConfig| c.fetch_timeout = Duration::ZERO,
                "fetch_timeout",
            ),
            (&|c: &mut StoreConfig| c.max_body = 0, "max_body"),
            (
                &|c: &mut StoreConfig| {
                    c.extra_root_certificates = vec![CertificateDer::from(vec![1, 2, 3])]
                },
                "root certificate",
            ),
        ] {
            let err = with(edit).unwrap_err().to_string();
            assert!(err.contains(expect), "{err} should mention {expect}");
        }
    }
}
