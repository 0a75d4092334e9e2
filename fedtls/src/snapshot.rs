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

use crate::index::Index;
use crate::verify::{VerifiedMetadata, unix_now};

/// Verified metadata, ready for lookups: one document, or several sources merged into one
/// index (see [`MetadataSources`](crate::store::MetadataSources)). Never changes once built.
#[derive(Debug)]
pub struct Snapshot {
    content: Content,
    sources: Vec<SourceInfo>,
    expires_at: i64,
    generation: u64,
    fetched_at: i64,
    source: String,
}

/// What a snapshot looks things up in. Both variants are shared, so a merged view of a
/// single source costs no copy.
#[derive(Debug, Clone)]
enum Content {
    Document(Arc<VerifiedMetadata>),
    Merged(Arc<Index>),
}

/// One metadata source behind a snapshot: who vouched for its entities. A snapshot of one
/// document has one; a merged snapshot has one per valid source, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo {
    /// The source's configured name (for one document: where it came from).
    pub name: String,
    /// Where its document came from (URL, file path or `cache:PATH`).
    pub origin: String,
    /// The document's issuer (`iss`), if it names one.
    pub iss: Option<String>,
    /// The document's `iat`, if it has one.
    pub iat: Option<i64>,
    /// The document's `exp` (Unix seconds).
    pub exp: i64,
    /// The `kid` of the signature that verified, if it named one.
    pub kid: Option<String>,
    /// RFC 7638 thumbprint of the trust-anchor key that verified the document.
    pub key_thumbprint: String,
}

impl Snapshot {
    /// Wraps a verified document. `generation` is assigned by the [`SnapshotCell`] on store.
    pub fn new(verified: VerifiedMetadata, source: impl Into<String>, fetched_at: i64) -> Self {
        let source = source.into();
        let info = SourceInfo {
            name: source.clone(),
            origin: source.clone(),
            iss: verified.claims().iss().map(str::to_owned),
            iat: verified.claims().iat(),
            exp: verified.claims().exp(),
            kid: verified.signature().kid.clone(),
            key_thumbprint: verified.signature().key_thumbprint.clone(),
        };
        Self {
            expires_at: info.exp,
            content: Content::Document(Arc::new(verified)),
            sources: vec![info],
            generation: 0,
            fetched_at,
            source,
        }
    }

    /// Several sources' snapshots as one, in precedence order (the first source that lists
    /// an entity id or pin answers lookups for it). `parts` pairs each snapshot with the
    /// name of its source. Valid until the first part expires. `None` for no parts.
    pub fn merge(parts: &[(&str, &Snapshot)]) -> Option<Self> {
        let sources: Vec<SourceInfo> = parts
            .iter()
            .flat_map(|(name, part)| {
                part.sources.iter().map(move |info| SourceInfo {
                    name: (*name).to_owned(),
                    ..info.clone()
                })
            })
            .collect();
        let expires_at = parts.iter().map(|(_, part)| part.expires_at).min()?;
        let content = match parts {
            [(_, only)] => only.content.clone(),
            _ => Content::Merged(Arc::new(Index::merge(
                parts.iter().map(|(_, part)| part.index()),
            ))),
        };
        Some(Self {
            content,
            expires_at,
            generation: 0,
            fetched_at: parts.iter().map(|(_, p)| p.fetched_at).max()?,
            source: parts
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(" + "),
            sources,
        })
    }

    /// Lookups over the usable entities.
    pub fn index(&self) -> &Index {
        match &self.content {
            Content::Document(verified) => verified.index(),
            Content::Merged(index) => index,
        }
    }

    /// The verified document of a single-source snapshot (its claims, signature and
    /// payload); `None` for a snapshot merged from several sources (see
    /// [`sources`](Self::sources)).
    pub fn document(&self) -> Option<&VerifiedMetadata> {
        match &self.content {
            Content::Document(verified) => Some(verified),
            Content::Merged(_) => None,
        }
    }

    /// The sources behind this snapshot, in precedence order; [`EndpointMatch::source`]
    /// and [`Index::source_of_entity`] are positions in it.
    ///
    /// [`EndpointMatch::source`]: crate::index::EndpointMatch::source
    pub fn sources(&self) -> &[SourceInfo] {
        &self.sources
    }

    /// The source at `position` (from a lookup), or the first one for an out-of-range
    /// position (which lookups never give).
    pub fn source_at(&self, position: usize) -> &SourceInfo {
        self.sources.get(position).unwrap_or(&self.sources[0])
    }

    /// Increases by one with every snapshot stored into the same cell.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the document was fetched or read (Unix seconds; merged: the newest part's).
    pub fn fetched_at(&self) -> i64 {
        self.fetched_at
    }

    /// Where the document came from (URL, file path, `cache:PATH` or a label; merged: the
    /// sources' names joined with ` + `).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The document's `exp` (Unix seconds; merged: the earliest part's): from then on it
    /// must not be trusted.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// True while `now` is before `exp`.
    pub fn is_valid_at(&self, now: i64) -> bool {
        now < self.expires_at
    }

    /// The verified payload bytes of a single document, if they were kept (for writing a
    /// cache file); `None` for a merged snapshot.
    pub fn payload(&self) -> Option<&[u8]> {
        self.document().and_then(VerifiedMetadata::payload)
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
