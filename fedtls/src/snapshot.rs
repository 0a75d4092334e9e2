//! Verified metadata as the rest of the system sees it: an immutable [`Snapshot`], read
//! through a [`SnapshotSource`] that fails closed when the metadata has expired.
//!
//! TLS verifiers and request handlers call [`SnapshotSource::current`] on every decision: it
//! is one atomic load and never waits on I/O. Whoever fetches metadata stores new snapshots
//! into a [`SnapshotCell`], which swaps them atomically and tells listeners.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use crate::claims::ValidClaims;
use crate::index::Index;
use crate::verify::{SignatureInfo, VerifiedMetadata, unix_now};

/// One verified metadata document, ready for lookups. Never changes once built.
#[derive(Debug)]
pub struct Snapshot {
    verified: VerifiedMetadata,
    generation: u64,
    fetched_at: i64,
    source: String,
}

impl Snapshot {
    /// Wraps a verified document. `generation` is assigned by the [`SnapshotCell`] on store.
    pub fn new(verified: VerifiedMetadata, source: impl Into<String>, fetched_at: i64) -> Self {
        Self {
            verified,
            generation: 0,
            fetched_at,
            source: source.into(),
        }
    }

    /// Lookups over the usable entities.
    pub fn index(&self) -> &Index {
        self.verified.index()
    }

    /// The document's validated `iat`/`exp`/`nbf`/`iss`.
    pub fn claims(&self) -> &ValidClaims {
        self.verified.claims()
    }

    /// The signature that vouched for the document.
    pub fn signature(&self) -> &SignatureInfo {
        self.verified.signature()
    }

    /// Increases by one with every snapshot stored into the same cell.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the document was fetched or read (Unix seconds).
    pub fn fetched_at(&self) -> i64 {
        self.fetched_at
    }

    /// Where the document came from (URL, file path, `cache:PATH` or a label).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The document's `exp` (Unix seconds): from then on it must not be trusted.
    pub fn expires_at(&self) -> i64 {
        self.verified.claims().exp()
    }

    /// True while `now` is before `exp`.
    pub fn is_valid_at(&self, now: i64) -> bool {
        now < self.verified.claims().exp()
    }

    /// The verified payload bytes, if they were kept (for writing a cache file).
    pub fn payload(&self) -> Option<&[u8]> {
        self.verified.payload()
    }
}

/// Where verifiers and handlers get the metadata to decide with.
pub trait SnapshotSource: Send + Sync + std::fmt::Debug {
    /// The snapshot to decide with now, or `None` when there is no verified metadata or the
    /// newest has expired. Callers must refuse every peer on `None` (fail closed).
    fn current(&self) -> Option<Arc<Snapshot>>;

    /// The generation of the newest stored snapshot (0 before the first). A change means
    /// earlier decisions must be re-checked.
    fn generation(&self) -> u64;
}

/// An atomically swappable slot for the newest snapshot, with change notification.
#[derive(Debug)]
pub struct SnapshotCell {
    slot: ArcSwapOption<Snapshot>,
    generation: AtomicU64,
    changes: watch::Sender<u64>,
}

impl Default for SnapshotCell {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotCell {
    /// An empty cell: every peer is refused until a snapshot is stored.
    pub fn new() -> Self {
        Self {
            slot: ArcSwapOption::empty(),
            generation: AtomicU64::new(0),
            changes: watch::channel(0).0,
        }
    }

    /// A cell holding `snapshot` (for tools and tests that verify a document once).
    pub fn with(snapshot: Snapshot) -> Self {
        let cell = Self::new();
        cell.store(snapshot);
        cell
    }

    /// Makes `snapshot` the current one in a single atomic swap, gives it the next
    /// generation and notifies subscribers. Returns the stored snapshot.
    pub fn store(&self, mut snapshot: Snapshot) -> Arc<Snapshot> {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        snapshot.generation = generation;
        let snapshot = Arc::new(snapshot);
        self.slot.store(Some(Arc::clone(&snapshot)));
        self.changes.send_replace(generation);
        snapshot
    }

    /// The newest snapshot even if it has expired (for status reporting, never for trust).
    pub fn newest(&self) -> Option<Arc<Snapshot>> {
        self.slot.load_full()
    }

    /// A receiver that sees the generation of every stored snapshot.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

impl SnapshotSource for SnapshotCell {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.slot
            .load_full()
            .filter(|snapshot| snapshot.is_valid_at(unix_now()))
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::Jwks;
    use crate::verify::{VerifyOptions, verify_metadata};

    fn fixture_snapshot(now: Option<i64>) -> Snapshot {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/interop");
        let jwks = Jwks::from_json(&std::fs::read(format!("{dir}/jwks.json")).unwrap()).unwrap();
        let doc = std::fs::read(format!("{dir}/signed/general-es256.jws")).unwrap();
        let options = VerifyOptions {
            now,
            ..VerifyOptions::default()
        };
        Snapshot::new(
            verify_metadata(&doc, &jwks, &options).unwrap(),
            "fixture",
            0,
        )
    }

    #[test]
    fn empty_cell_fails_closed_and_stores_bump_the_generation() {
        let cell = SnapshotCell::new();
        assert!(cell.current().is_none());
        assert_eq!(cell.generation(), 0);
        let mut changes = cell.subscribe();
        let first = cell.store(fixture_snapshot(None));
        assert_eq!(first.generation(), 1);
        assert_eq!(cell.current().unwrap().generation(), 1);
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), 1);
        cell.store(fixture_snapshot(None));
        assert_eq!(cell.generation(), 2);
        assert_eq!(*changes.borrow_and_update(), 2);
    }

    /// A document signed an hour ago for ten minutes, verified as of its signing time.
    fn expired_snapshot() -> Snapshot {
        use crate::jwk::{Algorithm, SigningKey};
        use crate::jws::{SignOptions, sign_metadata};

        let key = SigningKey::generate(Algorithm::Es256, "k").unwrap();
        let signed_at = unix_now() - 3600;
        let payload = serde_json::json!({"version": "1.0.0", "entities": []});
        let options = SignOptions {
            iss: "https://fed.example".into(),
            lifetime_secs: 600,
            now: signed_at,
            ..SignOptions::default()
        };
        let document = sign_metadata(payload.as_object().unwrap(), &[&key], &options).unwrap();
        let jwks = Jwks::from_keys(vec![key.public_jwk()]);
        let options = VerifyOptions {
            now: Some(signed_at),
            ..VerifyOptions::default()
        };
        let verified = verify_metadata(document.as_bytes(), &jwks, &options).unwrap();
        Snapshot::new(verified, "expired", 0)
    }

    #[test]
    fn an_expired_snapshot_is_not_current() {
        let snapshot = expired_snapshot();
        assert!(snapshot.expires_at() < unix_now());
        let cell = SnapshotCell::with(snapshot);
        assert!(cell.current().is_none(), "fail closed at exp");
        assert!(cell.newest().is_some(), "still visible for status");
    }
}
