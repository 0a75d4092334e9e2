//! Several metadata sources (federations) as one: each kept fresh by its own
//! [`MetadataStore`], merged into one snapshot that verifiers and handlers read.
//!
//! Members live in more than one federation at once (Moa production and Moa trial, or Moa
//! and another FedTLS federation). Each source has its own trust anchor, schedule, cache file
//! and `exp`; the merged view holds the entities of every source that is valid now, in the
//! configured order, so an entity id or pin listed by two sources answers with the first
//! (and [`PeerIdentity`](crate::tls::PeerIdentity) names the source that vouched). A source
//! that expires takes only its own entities with it: the merged view is rebuilt at once,
//! and a snapshot that would still hold the expired source's entities is never returned.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use crate::snapshot::{Snapshot, SnapshotCell, SnapshotSource};
use crate::verify::unix_now;

use super::{MetadataStore, StoreError, StoreStatus};

/// How many sources must be valid for the whole to count as ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// Ready while at least one source is valid (the default: peers of a valid federation
    /// keep being served while another federation's metadata is unavailable).
    #[default]
    AnySource,
    /// Ready only while every source is valid; starting also needs every source.
    AllSources,
}

/// One configured source of a [`MetadataSources`]: its name and its store.
#[derive(Debug, Clone)]
pub struct NamedStore {
    /// Shown in identities, logs, `/readyz` and metrics (e.g. `moa-prod`).
    pub name: String,
    /// The store that fetches, verifies and caches this source.
    pub store: MetadataStore,
}

/// The state of every source, for `/readyz`, metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourcesStatus {
    /// True when the sources valid now satisfy [`Readiness`].
    pub ready: bool,
    /// What "ready" requires.
    pub readiness: Readiness,
    /// How many sources are valid now.
    pub valid_sources: usize,
    /// Each source's report, in precedence order.
    pub sources: Vec<NamedStatus>,
}

/// One source's name and report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamedStatus {
    /// The source's configured name.
    pub name: String,
    /// Its store's report.
    #[serde(flatten)]
    pub status: StoreStatus,
}

/// Several [`MetadataStore`]s merged into one [`SnapshotSource`]. Cheap to clone: clones
/// share the sources. See the [module documentation](self).
#[derive(Clone, Debug)]
pub struct MetadataSources {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    members: Vec<NamedStore>,
    readiness: Readiness,
    cell: SnapshotCell,
    /// The member generations (0 = not included) the cell's snapshot was built from;
    /// serializes rebuilds.
    built_from: Mutex<Vec<u64>>,
    /// Each member store's generation when the view was last built, included or not: a
    /// member with a newer document makes the view stale.
    seen: Vec<AtomicU64>,
    /// The earliest `exp` among the view's parts: from then on the view is stale.
    valid_until: AtomicI64,
}

impl From<MetadataStore> for MetadataSources {
    /// One source, named after where it comes from.
    fn from(store: MetadataStore) -> Self {
        let name = store.status().source;
        Self::build(vec![NamedStore { name, store }], Readiness::AnySource)
    }
}

impl MetadataSources {
    /// Several sources in precedence order. Names must be unique and not empty.
    pub fn new(members: Vec<NamedStore>, readiness: Readiness) -> Result<Self, StoreError> {
        if members.is_empty() {
            return Err(StoreError::Config(
                "at least one metadata source is needed".into(),
            ));
        }
        for (i, member) in members.iter().enumerate() {
            if member.name.trim().is_empty() {
                return Err(StoreError::Config(format!(
                    "metadata source {} has an empty name",
                    i + 1
                )));
            }
            if members[..i].iter().any(|m| m.name == member.name) {
                return Err(StoreError::Config(format!(
                    "two metadata sources are named {:?}; give each its own name",
                    member.name
                )));
            }
        }
        Ok(Self::build(members, readiness))
    }

    fn build(members: Vec<NamedStore>, readiness: Readiness) -> Self {
        let built_from = Mutex::new(vec![0; members.len()]);
        let seen = members.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(Inner {
                members,
                readiness,
                cell: SnapshotCell::new(),
                built_from,
                seen,
                valid_until: AtomicI64::new(i64::MIN),
            }),
        }
    }

    /// The sources, in precedence order.
    pub fn members(&self) -> &[NamedStore] {
        &self.inner.members
    }

    /// What "ready" requires.
    pub fn readiness(&self) -> Readiness {
        self.inner.readiness
    }

    /// Loads every source at once (each from its cache file or its source). Succeeds when at
    /// least one source (with [`Readiness::AllSources`]: every source) has valid metadata;
    /// each failure is logged with the source's name, and its store keeps retrying once
    /// [`spawn`](Self::spawn)ed.
    pub async fn load(&self) -> Result<Arc<Snapshot>, StoreError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (position, member) in self.inner.members.iter().enumerate() {
            let store = member.store.clone();
            tasks.spawn(async move { (position, store.load().await) });
        }
        let mut failures: Vec<(usize, StoreError)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(_))) => {}
                Ok((position, Err(e))) => failures.push((position, e)),
                Err(e) => {
                    return Err(StoreError::Internal(format!(
                        "loading a metadata source failed: {e}"
                    )));
                }
            }
        }
        failures.sort_by_key(|(position, _)| *position);
        let loaded = self.inner.members.len() - failures.len();
        for (position, error) in &failures {
            let name = &self.inner.members[*position].name;
            if loaded > 0 && self.inner.readiness == Readiness::AnySource {
                warn!(source = %name, error = %error, "metadata source unavailable at start; its members are refused until it loads (the others are served)");
            }
        }
        if let Some((position, error)) = failures.into_iter().next()
            && (loaded == 0 || self.inner.readiness == Readiness::AllSources)
        {
            // One source needs no "which source" around its error.
            if self.inner.members.len() == 1 {
                return Err(error);
            }
            return Err(StoreError::Source {
                name: self.inner.members[position].name.clone(),
                required: self.inner.readiness == Readiness::AllSources,
                source: Box::new(error),
            });
        }
        self.rebuild().ok_or(StoreError::NoMetadata)
    }

    /// Starts every source's refresh loop and the merge loop on the current tokio runtime.
    /// The merge loop rebuilds the merged snapshot whenever a source stores a new document
    /// and when a source expires. Runs until the handle is aborted.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (as [`tokio::spawn`] does).
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let loops: Vec<_> = self.inner.members.iter().map(|m| m.store.spawn()).collect();
        let this = self.clone();
        tokio::spawn(async move {
            let _abort_with_me = AbortOnDrop(loops);
            this.merge_loop().await;
        })
    }

    async fn merge_loop(&self) {
        // One permit-keeping wake-up for every source's change: a change that arrives while
        // a rebuild runs is not lost.
        let wake = Arc::new(Notify::new());
        let forwarders: Vec<_> = self
            .inner
            .members
            .iter()
            .map(|m| {
                let mut changes = m.store.subscribe();
                let wake = Arc::clone(&wake);
                tokio::spawn(async move {
                    while changes.changed().await.is_ok() {
                        wake.notify_one();
                    }
                })
            })
            .collect();
        let _abort_with_me = AbortOnDrop(forwarders);
        loop {
            self.rebuild();
            let wait = self.until_next_expiry();
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// How long until a source that is part of the merged view expires (then the view must
    /// be rebuilt without it), at most an hour.
    fn until_next_expiry(&self) -> Duration {
        let now = unix_now();
        let soonest = self
            .inner
            .members
            .iter()
            .filter_map(|m| m.store.current().map(|s| s.expires_at()))
            .min();
        match soonest {
            Some(exp) => Duration::from_secs(u64::try_from(exp - now).unwrap_or(0))
                .min(Duration::from_secs(3600)),
            None => Duration::from_secs(3600),
        }
    }

    /// True when a member has a newer document than the view was built from, or a part of
    /// the view has expired: a few atomic loads, so every read can afford it.
    fn is_stale(&self) -> bool {
        let inner = &self.inner;
        unix_now() >= inner.valid_until.load(Ordering::Acquire)
            || inner
                .members
                .iter()
                .zip(&inner.seen)
                .any(|(m, seen)| m.store.generation() != seen.load(Ordering::Acquire))
    }

    /// Builds the merged snapshot from the sources valid now, unless it is already built
    /// from exactly those documents. Returns the current merged snapshot.
    fn rebuild(&self) -> Option<Arc<Snapshot>> {
        let inner = &self.inner;
        let mut built_from = inner
            .built_from
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Generations first: a document stored after this read leaves the view stale, so
        // the next read rebuilds it.
        let generations: Vec<u64> = inner.members.iter().map(|m| m.store.generation()).collect();
        let parts: Vec<Option<Arc<Snapshot>>> =
            inner.members.iter().map(|m| m.store.current()).collect();
        let key: Vec<u64> = parts
            .iter()
            .map(|p| p.as_ref().map_or(0, |s| s.generation()))
            .collect();
        let current = if key == *built_from
            && let Some(current) = inner.cell.current()
        {
            Some(current)
        } else {
            let named: Vec<(&str, &Snapshot)> = inner
                .members
                .iter()
                .zip(&parts)
                .filter_map(|(m, p)| p.as_deref().map(|s| (m.name.as_str(), s)))
                .collect();
            let merged = Snapshot::merge(&named);
            self.log_change(&built_from, &key);
            *built_from = key;
            merged.map(|snapshot| inner.cell.store(snapshot))
        };
        for (seen, generation) in inner.seen.iter().zip(generations) {
            seen.store(generation, Ordering::Release);
        }
        let valid_until = current.as_ref().map_or(i64::MAX, |s| s.expires_at());
        inner.valid_until.store(valid_until, Ordering::Release);
        current
    }

    /// Logs sources that joined or left the merged view.
    fn log_change(&self, before: &[u64], after: &[u64]) {
        let valid: Vec<&str> = self
            .inner
            .members
            .iter()
            .zip(after)
            .filter(|(_, g)| **g != 0)
            .map(|(m, _)| m.name.as_str())
            .collect();
        for ((member, was), now) in self.inner.members.iter().zip(before).zip(after) {
            if *was != 0 && *now == 0 {
                let status = member.store.status();
                error!(
                    source = %member.name,
                    expired_at = status.expires_at,
                    last_error = status.last_error.as_deref(),
                    still_valid = ?valid,
                    "metadata source is no longer valid: its entities are refused until it recovers"
                );
            } else if *was == 0 && *now != 0 && self.inner.members.len() > 1 {
                info!(source = %member.name, valid = ?valid, "metadata source is valid and merged");
            }
        }
    }

    /// The state of every source.
    pub fn status(&self) -> SourcesStatus {
        let sources: Vec<NamedStatus> = self
            .inner
            .members
            .iter()
            .map(|m| NamedStatus {
                name: m.name.clone(),
                status: m.store.status(),
            })
            .collect();
        let valid_sources = sources.iter().filter(|s| s.status.is_ready()).count();
        let ready = match self.inner.readiness {
            Readiness::AnySource => valid_sources > 0,
            Readiness::AllSources => valid_sources == sources.len(),
        };
        SourcesStatus {
            ready,
            readiness: self.inner.readiness,
            valid_sources,
            sources,
        }
    }

    /// A receiver that sees the generation of every merged snapshot.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.cell.subscribe()
    }
}

impl SnapshotSource for MetadataSources {
    /// The merged snapshot of the sources valid now. When a source has a newer document or
    /// has expired since the last merge, the view is rebuilt before answering (fail closed
    /// per source), so it is current even without [`MetadataSources::spawn`]'s merge loop.
    fn current(&self) -> Option<Arc<Snapshot>> {
        if self.is_stale() {
            self.rebuild()
        } else {
            self.inner.cell.current()
        }
    }

    /// The merged view's generation, after rebuilding a stale view (so a new document or an
    /// expired source shows as a new generation to whoever checks it).
    fn generation(&self) -> u64 {
        if self.is_stale() {
            self.rebuild();
        }
        self.inner.cell.generation()
    }
}

/// Aborts the tasks it holds when the merge loop ends.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}
