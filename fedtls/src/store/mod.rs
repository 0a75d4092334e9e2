//! Keeping verified metadata fresh for long-running servers and clients.
//!
//! A [`MetadataStore`] fetches the federation's signed metadata (HTTP(S), a file or bytes),
//! verifies it with [`verify_metadata`] and swaps the result into a [`SnapshotCell`] in one
//! atomic store. Verifiers and handlers read the cell (or the store, which implements
//! [`SnapshotSource`]) and never wait on I/O.
//!
//! - **Schedule**: the next refresh comes after the smaller of the document's `cache_ttl`
//!   and the HTTP freshness (`Cache-Control: max-age`, `Expires`), `default_refresh` when
//!   neither says, never sooner than `min_refresh` and always ahead of the document's `exp`.
//!   Requests are conditional (`If-None-Match`, `If-Modified-Since`).
//! - **Failures** (network, timeout, HTTP status, oversized body, a document that does not
//!   verify, a rollback to an older `iat`): the previous snapshot stays in use until its own
//!   `exp`, the error is recorded in [`StoreStatus`], and the attempt is retried with
//!   exponential backoff and full jitter, capped at `retry_cap`.
//! - **Fail closed**: past `exp` the cell answers `None`; the status says `expired` and an
//!   error is logged once. The next good document recovers.
//! - **Cache file**: the exact signed bytes of every new document, replaced atomically
//!   (private temporary file, fsync, rename, directory fsync). On start a cache that
//!   verifies and has not expired is used at once; anything else in it is ignored.
//!
//! ```no_run
//! # async fn run(jwks: fedtls::Jwks) -> Result<(), fedtls::store::StoreError> {
//! use fedtls::SnapshotSource;
//! use fedtls::store::{MetadataStore, StoreConfig};
//!
//! let source = "https://fed.skolfederation.se/prod/md/kontosynk.jws".parse().unwrap();
//! let mut config = StoreConfig::new(source, jwks);
//! config.cache_file = Some("/var/cache/kontosynk/metadata.jws".into());
//! let store = MetadataStore::new(config)?;
//! store.load().await?;
//! let _refresher = store.spawn();
//! if let Some(snapshot) = store.current() {
//!     println!("{} entities", snapshot.index().entities().len());
//! }
//! # Ok(())
//! # }
//! ```

mod cache;
mod fetch;
mod schedule;
mod status;

use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use tokio::sync::{Notify, watch};
use tracing::{debug, error, info, warn};

use crate::jwk::Jwks;
use crate::pin::sha256;
use crate::snapshot::{Snapshot, SnapshotCell, SnapshotSource};
use crate::verify::{VerifiedMetadata, VerifyError, VerifyOptions, unix_now, verify_metadata};

use fetch::{Fetched, Validators};
use schedule::{Bounds, HttpFreshness, RefreshBasis};
pub use status::StoreStatus;

/// Where the signed metadata comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum MetadataSource {
    /// An `http://` or `https://` URL, fetched with conditional requests.
    Url(String),
    /// A file, re-read on every refresh.
    File(PathBuf),
    /// A document in memory (tests, embedding); it never changes.
    Bytes(Vec<u8>),
}

impl FromStr for MetadataSource {
    type Err = Infallible;

    /// `http://…` and `https://…` (any letter case) are URLs; anything else is a file path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        Ok(
            if lower.starts_with("https://") || lower.starts_with("http://") {
                Self::Url(s.to_owned())
            } else {
                Self::File(PathBuf::from(s))
            },
        )
    }
}

impl fmt::Display for MetadataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Bytes(_) => f.write_str("bytes"),
        }
    }
}

impl fmt::Debug for MetadataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(url).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

/// The default largest document accepted (real aggregates are a few tens of MB).
pub const DEFAULT_MAX_BODY: u64 = 100 * 1024 * 1024;

/// How a [`MetadataStore`] fetches, verifies, schedules and caches.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Where the signed metadata comes from.
    pub source: MetadataSource,
    /// The federation's trust anchor.
    pub jwks: Jwks,
    /// Leeway and required issuer. `now` must be `None`: the store verifies against the
    /// clock. `keep_payload` is honoured but not needed (the cache holds the signed bytes).
    pub verify: VerifyOptions,
    /// Where to keep the newest good document across restarts.
    pub cache_file: Option<PathBuf>,
    /// The refresh interval when neither `cache_ttl` nor HTTP says (default 1 h).
    pub default_refresh: Duration,
    /// The shortest interval between refreshes after a good document, so that a
    /// `cache_ttl` of 0 does not spin (default 30 s; at least 1 s).
    pub min_refresh: Duration,
    /// The longest a whole fetch may take, body included (default 30 s).
    pub fetch_timeout: Duration,
    /// The largest document accepted, in bytes (default 100 MiB).
    pub max_body: u64,
    /// The longest wait between retries after failures (default 1 min; at least 100 ms).
    pub retry_cap: Duration,
    /// Extra trusted roots for `https` sources behind a private CA (added to the system's).
    pub extra_root_certificates: Vec<CertificateDer<'static>>,
}

impl StoreConfig {
    /// A configuration with the defaults: refresh hourly unless told otherwise, at most
    /// every 30 s, 30 s fetch timeout, 100 MiB limit, retries capped at 1 min, no cache file.
    pub fn new(source: MetadataSource, jwks: Jwks) -> Self {
        Self {
            source,
            jwks,
            verify: VerifyOptions::default(),
            cache_file: None,
            default_refresh: Duration::from_secs(3600),
            min_refresh: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_BODY,
            retry_cap: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
        }
    }
}

/// What a successful [`MetadataStore::refresh`] did.
#[derive(Clone, Debug)]
pub enum RefreshOutcome {
    /// A new document verified and is now current.
    Updated(Arc<Snapshot>),
    /// The server answered `304 Not Modified`: the current document stays.
    NotModified,
    /// The source returned the same bytes as the current document.
    Unchanged,
}

/// Why loading or refreshing metadata failed. The previous snapshot, if any, stays in use
/// until its own `exp`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The configured source is not usable.
    #[error("invalid metadata source {given:?}: {reason}")]
    InvalidSource {
        /// The source as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid metadata store configuration: {0}")]
    Config(String),
    /// The request failed: DNS, connect, TLS, a broken connection or a truncated body.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// The URL fetched.
        url: String,
        /// What went wrong, with its causes.
        reason: String,
    },
    /// The server answered with a status other than 2xx or 304.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The URL fetched.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The document is larger than `max_body`.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL or file (with the announced length, when the server sent one).
        what: String,
        /// The configured limit.
        limit: u64,
    },
    /// The whole fetch (connect, headers and body) took longer than `fetch_timeout`.
    #[error("fetching {url} took longer than {after:?}")]
    Timeout {
        /// The URL fetched.
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The document was refused by [`verify_metadata`] (signature, claims, expiry, payload).
    #[error("metadata from {origin} refused: {error}")]
    Verify {
        /// Where the document came from (URL, path or `cache:PATH`).
        origin: String,
        /// Why it was refused.
        #[source]
        error: VerifyError,
    },
    /// The document verified but is older than the current one (a replay or rollback).
    #[error(
        "metadata from {origin} refused: its iat {iat} is older than the current document's iat {current_iat} (rollback)"
    )]
    Rollback {
        /// Where the document came from.
        origin: String,
        /// The refused document's `iat`.
        iat: i64,
        /// The current document's `iat`.
        current_iat: i64,
    },
    /// The newest document has expired and the source offers nothing newer.
    #[error(
        "metadata from {origin} expired at {exp} and the source offers nothing newer; every peer is refused (fail closed)"
    )]
    Expired {
        /// Where the source is.
        origin: String,
        /// The expired document's `exp`.
        exp: i64,
    },
    /// A file (source or cache) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// There is no verified, unexpired metadata.
    #[error("no verified metadata is available")]
    NoMetadata,
    /// A background task failed unexpectedly.
    #[error("internal error in the metadata store: {0}")]
    Internal(String),
}

impl StoreError {
    /// True when the source delivered a document and the document itself was refused
    /// (as opposed to the source being unreachable or misbehaving).
    pub fn is_bad_content(&self) -> bool {
        matches!(
            self,
            Self::Verify { .. } | Self::Rollback { .. } | Self::Expired { .. }
        )
    }
}

/// Keeps the newest verified metadata in a [`SnapshotCell`] and refreshes it.
///
/// Cheap to clone: clones share one store. See the [module documentation](self).
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

struct Inner {
    source: Source,
    label: String,
    jwks: Jwks,
    verify: VerifyOptions,
    cache_file: Option<PathBuf>,
    bounds: Bounds,
    fetch_timeout: Duration,
    max_body: u64,
    retry_cap: Duration,
    cell: Arc<SnapshotCell>,
    state: Mutex<State>,
    /// Serializes fetch/verify/swap attempts (the loop's and callers').
    attempt_lock: tokio::sync::Mutex<()>,
    /// Wakes the refresh loop to re-read the schedule.
    wake: Notify,
    /// The generation whose expiry has been logged.
    expiry_reported: AtomicU64,
}

enum Source {
    Url {
        url: String,
        client: reqwest::Client,
    },
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

#[derive(Default)]
struct State {
    last_success: Option<i64>,
    last_attempt: Option<i64>,
    last_error: Option<String>,
    /// `last_error` is a [`StoreError::Expired`] (it already says the metadata expired).
    last_error_is_expiry: bool,
    consecutive_failures: u32,
    /// SHA-256 of the signed bytes of the newest snapshot.
    digest: Option<[u8; 32]>,
    /// Validators of the response that delivered (or confirmed) the newest snapshot.
    validators: Option<Validators>,
    next: Option<Scheduled>,
}

#[derive(Clone, Copy)]
struct Scheduled {
    at: Instant,
    interval: Duration,
    basis: RefreshBasis,
}

/// What the source produced, before verification.
enum Obtained {
    Bytes {
        bytes: Vec<u8>,
        validators: Option<Validators>,
        freshness: Option<HttpFreshness>,
    },
    Shared(Arc<[u8]>),
    NotModified {
        validators: Validators,
        freshness: Option<HttpFreshness>,
    },
}

/// The bytes after hashing and, when new, verification.
enum Checked {
    Same,
    New {
        verified: Box<VerifiedMetadata>,
        digest: [u8; 32],
        bytes: Option<Vec<u8>>,
    },
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
        .redirect(reqwest::redirect::Policy::limited(5));
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
            fetch::error_chain(&e)
        ))
    })
}

/// Runs blocking work off the async threads; a panic there becomes an error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Internal(format!("background task failed: {e}")))?
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetch, verify, swap; records the result and schedules the next attempt. The caller
    /// holds `attempt_lock`.
    async fn attempt(self: &Arc<Self>) -> Result<RefreshOutcome, StoreError> {
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
        if let (Some(iat), Some(current_iat)) = (verified.claims().iat(), newest.claims().iat())
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
            iat = ?snapshot.claims().iat(),
            exp = snapshot.expires_at(),
            next_refresh_secs = ?next,
            "metadata updated"
        );
        for rejected in index.rejected().iter().take(20) {
            warn!(
                source = %self.label,
                index = rejected.index,
                entity_id = ?rejected.entity_id,
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
    async fn load_cache(self: &Arc<Self>, path: &Path) -> Result<Arc<Snapshot>, StoreError> {
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

    async fn run(self: Arc<Self>) {
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

    fn status(&self) -> StoreStatus {
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
            issued_at: newest.as_ref().and_then(|s| s.claims().iat()),
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
enum Input {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_by_scheme() {
        let parse = |s: &str| s.parse::<MetadataSource>().unwrap();
        assert_eq!(
            parse("https://fed.example/md.jws"),
            MetadataSource::Url("https://fed.example/md.jws".into())
        );
        assert_eq!(
            parse("HTTP://fed.example/md.jws"),
            MetadataSource::Url("HTTP://fed.example/md.jws".into())
        );
        assert_eq!(
            parse("/var/cache/md.jws"),
            MetadataSource::File("/var/cache/md.jws".into())
        );
        assert_eq!(parse("https"), MetadataSource::File("https".into()));
        assert_eq!(parse("ftp://x"), MetadataSource::File("ftp://x".into()));
        assert_eq!(parse("é"), MetadataSource::File("é".into()));
        assert_eq!(
            format!("{:?}", MetadataSource::Bytes(vec![0; 5])),
            "Bytes(5 bytes)"
        );
    }

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
