//! Keeping verified metadata fresh for long-running servers and clients.
//!
//! A [`MetadataStore`] fetches the federation's signed metadata (HTTP(S), a file or bytes),
//! verifies it with [`verify_metadata`](crate::verify::verify_metadata) and swaps the result
//! into a [`SnapshotCell`] in one atomic store. Verifiers and handlers read the cell (or the
//! store, which implements [`SnapshotSource`](crate::snapshot::SnapshotSource)) and never wait
//! on I/O.
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
mod config;
pub mod federations;
mod fetch;
mod handle;
mod refresh;
mod schedule;
mod sources;
mod status;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::jwk::Jwks;
use crate::snapshot::{Snapshot, SnapshotCell};
use crate::verify::{VerifiedMetadata, VerifyError, VerifyOptions};

pub use config::{DEFAULT_MAX_BODY, MetadataSource, StoreConfig};
use fetch::Validators;
pub use handle::MetadataStore;
use schedule::{Bounds, HttpFreshness, RefreshBasis};
pub use sources::{MetadataSources, NamedStatus, NamedStore, Readiness, SourcesStatus};
pub use status::StoreStatus;

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
    /// The document was refused by [`verify_metadata`](crate::verify::verify_metadata)
    /// (signature, claims, expiry, payload).
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
    /// A source of several could not be loaded, and it was the only one, or every source
    /// is required.
    #[error(
        "metadata source {name:?} could not be loaded{}: {source}",
        if *required { " and every source is required" } else { ", and no other source is valid" }
    )]
    Source {
        /// The source's configured name.
        name: String,
        /// Whether every source is required ([`Readiness::AllSources`]).
        required: bool,
        /// Why it failed.
        #[source]
        source: Box<StoreError>,
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

/// Runs blocking work off the async threads; a panic there becomes an error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Internal(format!("background task failed: {e}")))?
}
