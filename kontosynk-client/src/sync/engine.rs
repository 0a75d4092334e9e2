//! The sync driver: one pass per listing, page by page, each page applied in one batch
//! together with the listing's resume state, the next page fetched while the current one is
//! written.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::Url;
use ss12000::{Collection, CollectionSummary, Store, Timestamp, WriteBatch};
use tokio::time::Instant;

use super::error::{Bound, SyncError};
use super::http::{FetchError, Fetched, endpoint, get_page, with_query};
use super::page::{parse_deleted, parse_list};
use super::progress::Progress;
use super::report::{CollectionReport, Mode, SyncReport};
use super::state::{ListingState, Pass, state_key};
use crate::client::{FederationClient, Sender};

/// What a sync fetches and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Collections in fetch order. Default: organisations, persons, groups, duties, activities.
    pub collections: Vec<Collection>,
    /// `limit` of every page request (default 1000).
    pub limit: u32,
    /// Seconds subtracted from a pass's start time to make the next watermark (default 300,
    /// as Skolverket's client does): absorbs clock skew and commits that were in flight.
    pub overlap_seconds: i64,
    /// List everything, ignoring watermarks (a pass left unfinished by a full run is resumed).
    pub full: bool,
    /// Mirror `deletedEntities` (default on). Turned on after runs without it, deletions are
    /// mirrored from that run's start on; earlier ones need a fresh store and a full sync.
    pub deletions: bool,
    /// Largest page body accepted, in bytes (default 64 MiB).
    pub max_page_bytes: usize,
    /// Empty pages in a row that still carry a token before the listing is abandoned (default 16).
    pub max_empty_pages: usize,
    /// Bounds of one run against a server that never stops paging (a bug, or hostile).
    pub bounds: RunBounds,
}

/// How much one run may take from a server: a server that keeps handing out new page tokens
/// would otherwise be followed forever. The defaults are far above any real school organizer
/// (Sweden's largest has a few hundred thousand persons); hitting one stops the run with
/// [`SyncError::Bounded`], keeps every page committed before it and leaves the listing's
/// watermark where it was, so nothing is marked complete that is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunBounds {
    /// Pages of one listing (a collection or `deletedEntities`) in one run (default 100,000).
    pub max_pages: u64,
    /// Objects (or deleted ids) of one listing in one run (default 2,000,000).
    pub max_objects: u64,
    /// Wall-clock time of the whole run (default 6 hours).
    pub deadline: Duration,
}

impl Default for RunBounds {
    fn default() -> RunBounds {
        RunBounds {
            max_pages: 100_000,
            max_objects: 2_000_000,
            deadline: Duration::from_secs(6 * 3600),
        }
    }
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions {
            collections: Collection::SYNC_ORDER.to_vec(),
            limit: 1000,
            overlap_seconds: 300,
            full: false,
            deletions: true,
            max_page_bytes: 64 << 20,
            max_empty_pages: 16,
            bounds: RunBounds::default(),
        }
    }
}

impl SyncOptions {
    /// The default collections followed by `extra` ones (duplicates skipped, order kept).
    pub fn with_extra_collections(
        mut self,
        extra: impl IntoIterator<Item = Collection>,
    ) -> SyncOptions {
        for collection in extra {
            if !self.collections.contains(&collection) {
                self.collections.push(collection);
            }
        }
        self
    }
}

/// Syncs one SS 12000 server into a store.
///
/// Requests go through a [`Sender`]: normally the one of a [`FederationClient`] (pinned
/// mutual TLS, metadata guard, retries); any `Sender` works (tests of odd servers use plain
/// HTTP).
#[derive(Clone)]
pub struct Syncer {
    http: Sender,
    base: Url,
    store: Store,
    options: SyncOptions,
}

/// What one pass over a listing did.
struct PassOutcome {
    mode: Mode,
    pages: u64,
    totals: BTreeMap<Collection, CollectionSummary>,
    watermark: Option<Timestamp>,
}

/// What one page contributes: its writes, its next token, whether it held no items.
struct PageWrites {
    batch: WriteBatch,
    next: Option<String>,
    items: usize,
}

impl Syncer {
    /// A syncer of the server a federation client calls (its `base_uri`).
    pub fn for_client(client: &FederationClient, store: Store) -> Syncer {
        Syncer::new(client.sender().clone(), client.base_uri().clone(), store)
    }

    /// A syncer of the server at `base` (the opaque base URL, e.g. `https://s.example/v2.0`).
    pub fn new(http: Sender, base: Url, store: Store) -> Syncer {
        Syncer {
            http,
            base,
            store,
            options: SyncOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn options(mut self, options: SyncOptions) -> Syncer {
        self.options = options;
        self
    }

    /// The server's base URL without a trailing `/` (the prefix of its state keys).
    pub fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// Runs one sync: every configured collection in order, then `deletedEntities`.
    ///
    /// Cancel-safe: dropping the future (or killing the process) at any point leaves the store
    /// with whole pages and their resume state; the next run continues from there.
    pub async fn run(&self, progress: &dyn Progress) -> Result<SyncReport, SyncError> {
        let run_started = Timestamp::now();
        let deadline = Instant::now()
            .checked_add(self.options.bounds.deadline)
            .unwrap_or_else(far_future);
        let mut report = SyncReport {
            server: self.server(),
            collections: Vec::new(),
            deletion_pages: 0,
            ignored_deletions: Vec::new(),
        };
        if self.options.deletions {
            self.init_deletions(run_started).await?;
        }
        for collection in &self.options.collections {
            let item = self.collection(collection, deadline, progress).await?;
            progress.finished(&item);
            report.collections.push(item);
        }
        if self.options.deletions {
            self.deletions(deadline, &mut report).await?;
        }
        Ok(report)
    }

    /// On the first sync from this server, the deletions watermark starts at the run's start
    /// (minus the overlap), written before any listing: deletions before it concern objects
    /// the listings below never see; deletions after it are fetched at the end of this run.
    async fn init_deletions(&self, run_started: Timestamp) -> Result<(), SyncError> {
        let key = state_key(&self.server(), "deletedEntities");
        let state = ListingState::load(&self.store, &key).await?;
        if state.watermark.is_none() && state.pass.is_none() {
            let mut batch = WriteBatch::new();
            ListingState {
                watermark: Some(run_started.add_seconds(-self.options.overlap_seconds)),
                pass: None,
            }
            .write(&key, &mut batch);
            self.store.apply(batch).await?;
        }
        Ok(())
    }

    async fn collection(
        &self,
        collection: &Collection,
        deadline: Instant,
        progress: &dyn Progress,
    ) -> Result<CollectionReport, SyncError> {
        let url = endpoint(&self.base, collection.path())?;
        let target = collection.clone();
        let outcome = self
            .pass(
                self.budget(collection.path(), deadline),
                &url,
                Listing::Collection,
                &[],
                Some((collection, progress)),
                move |fetched: Fetched| {
                    let page = parse_list(&fetched.url, &fetched.body)?;
                    let items = page.objects.len();
                    let mut batch = WriteBatch::new();
                    for object in page.objects {
                        batch.upsert(target.clone(), object);
                    }
                    Ok(PageWrites {
                        batch,
                        next: page.next,
                        items,
                    })
                },
            )
            .await?;
        let mut item = CollectionReport::new(collection.clone(), outcome.mode);
        item.pages = outcome.pages;
        item.add(outcome.totals.get(collection));
        item.watermark = outcome.watermark;
        Ok(item)
    }

    async fn deletions(&self, deadline: Instant, report: &mut SyncReport) -> Result<(), SyncError> {
        let url = endpoint(&self.base, "deletedEntities")?;
        let entities: Vec<String> = self
            .options
            .collections
            .iter()
            .map(Collection::entity_type)
            .collect();
        let entities = entities.join(",");
        let wanted: HashSet<Collection> = self.options.collections.iter().cloned().collect();
        let mut ignored: Vec<String> = Vec::new();
        let outcome = self
            .pass(
                self.budget("deletedEntities", deadline),
                &url,
                Listing::DeletedEntities,
                &[("entities", entities.as_str())],
                None,
                |fetched: Fetched| {
                    let page = parse_deleted(&fetched.url, &fetched.body)?;
                    let at = fetched.server_date.unwrap_or_else(Timestamp::now);
                    let mut batch = WriteBatch::new();
                    let mut items = 0;
                    for (collection, ids) in page.ids {
                        if !wanted.contains(&collection) {
                            if !ids.is_empty() && !ignored.contains(&collection.to_string()) {
                                ignored.push(collection.to_string());
                            }
                            continue;
                        }
                        items += ids.len();
                        for id in ids {
                            batch.delete(collection.clone(), &id, at);
                        }
                    }
                    for name in page.unknown {
                        if !ignored.contains(&name) {
                            ignored.push(name);
                        }
                    }
                    Ok(PageWrites {
                        batch,
                        next: page.next,
                        items,
                    })
                },
            )
            .await?;
        report.deletion_pages = outcome.pages;
        for item in &mut report.collections {
            if let Some(summary) = outcome.totals.get(&item.collection) {
                item.deleted += summary.deleted;
            }
        }
        if !ignored.is_empty() {
            tracing::warn!(names = ?ignored, "deletedEntities named collections this sync does not keep; ignored");
        }
        report.ignored_deletions = ignored;
        Ok(())
    }

    /// Drives one pass of a listing to its end. The request of a new pass carries `limit`,
    /// the listing's filter (= the watermark, unless full) and `fixed` parameters; every later
    /// request only `limit` and `pageToken`, as the API requires.
    async fn pass<F>(
        &self,
        mut budget: Budget,
        url: &Url,
        listing: Listing,
        fixed: &[(&str, &str)],
        progress: Option<(&Collection, &dyn Progress)>,
        mut on_page: F,
    ) -> Result<PassOutcome, SyncError>
    where
        F: FnMut(Fetched) -> Result<PageWrites, SyncError>,
    {
        let options = &self.options;
        let key = &state_key(&budget.server, &budget.listing);
        let limit = options.limit.max(1).to_string();
        let mut state = ListingState::load(&self.store, key).await?;
        let full = options.full && listing.can_be_full();
        let filter = listing.filter();
        let (resumed, mode, after) = plan_pass(&mut state, full);
        let after_text = after.map(|t| t.to_string());
        let request = |token: Option<&str>| -> Url {
            match token {
                Some(token) => with_query(url, &[("limit", &limit), ("pageToken", token)]),
                None => {
                    let mut pairs: Vec<(&str, &str)> = vec![("limit", &limit)];
                    if let Some(after) = &after_text {
                        pairs.push((filter, after));
                    }
                    pairs.extend_from_slice(fixed);
                    with_query(url, &pairs)
                }
            }
        };
        if let Some((collection, progress)) = progress {
            progress.started(collection, mode);
        }
        let mut guard = PageGuard::new(options.max_empty_pages);
        let resume_token = resumed.as_ref().and_then(|p| p.page_token.clone());
        let sent_at = Timestamp::now();
        let first = budget
            .in_time(
                &request(resume_token.as_deref()),
                self.first_page(key, &request, resume_token.clone(), &mut guard),
            )
            .await??;
        let mut pass = resumed.unwrap_or_else(|| Pass {
            after,
            started: first
                .server_date
                .map_or(sent_at, |server| server.min(sent_at)),
            page_token: None,
            pages: 0,
        });
        let mut outcome = PassOutcome {
            mode,
            pages: 0,
            totals: BTreeMap::new(),
            watermark: state.watermark,
        };
        let mut fetched = first;
        loop {
            let url_text = fetched.url.clone();
            let PageWrites {
                mut batch,
                next,
                items,
            } = on_page(fetched)?;
            guard.check(&url_text, next.as_deref(), items)?;
            budget.admit(items, &url_text)?;
            pass.pages += 1;
            match &next {
                Some(token) => {
                    pass.page_token = Some(token.clone());
                    state.pass = Some(pass.clone());
                }
                None => {
                    state.watermark = Some(pass.started.add_seconds(-options.overlap_seconds));
                    state.pass = None;
                }
            }
            state.write(key, &mut batch);
            // The next page is fetched while this one is committed.
            let (applied, prefetched) = match &next {
                Some(token) => {
                    let next_url = request(Some(token));
                    let (applied, fetched) = tokio::join!(
                        self.store.apply(batch),
                        budget.in_time(
                            &next_url,
                            get_page(&self.http, next_url.clone(), options.max_page_bytes)
                        )
                    );
                    (applied, Some(fetched))
                }
                None => (self.store.apply(batch).await, None),
            };
            outcome.add(applied?);
            if let Some((collection, progress)) = progress {
                progress.page(collection, items);
            }
            match prefetched {
                None => break,
                Some(result) => fetched = result?.map_err(|e| e.error)?,
            }
        }
        outcome.watermark = state.watermark;
        Ok(outcome)
    }

    /// The first page of a pass: the saved page token's when resuming; when the server
    /// refuses that token (400, 404, 410), the pass restarts from its filter instead.
    async fn first_page(
        &self,
        key: &str,
        request: &(dyn Fn(Option<&str>) -> Url + Sync),
        resume_token: Option<String>,
        guard: &mut PageGuard,
    ) -> Result<Fetched, SyncError> {
        let max_page_bytes = self.options.max_page_bytes;
        match get_page(&self.http, request(resume_token.as_deref()), max_page_bytes).await {
            Ok(fetched) => {
                guard.seen_tokens.extend(resume_token);
                Ok(fetched)
            }
            Err(FetchError {
                status: Some(400 | 404 | 410),
                error,
            }) if resume_token.is_some() => {
                tracing::warn!(%error, key, "the server refused the saved page token; restarting the pass from its filter (upserts are idempotent)");
                get_page(&self.http, request(None), max_page_bytes)
                    .await
                    .map_err(|e| e.error)
            }
            Err(e) => Err(e.error),
        }
    }
}

impl Syncer {
    /// The bounds of one listing in a run ending at `deadline`.
    fn budget(&self, listing: &str, deadline: Instant) -> Budget {
        Budget {
            server: self.server(),
            listing: listing.to_owned(),
            bounds: self.options.bounds,
            deadline,
            pages: 0,
            objects: 0,
        }
    }
}

/// An instant no run reaches (a deadline too far away to represent).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

/// What one listing may still take in this run ([`RunBounds`]), and what it took.
struct Budget {
    server: String,
    listing: String,
    bounds: RunBounds,
    deadline: Instant,
    pages: u64,
    objects: u64,
}

impl Budget {
    /// Admits a page of `items` fetched from `url`, or refuses it when it would exceed the
    /// pages or objects of one listing in one run.
    fn admit(&mut self, items: usize, url: &str) -> Result<(), SyncError> {
        let objects = self.objects.saturating_add(items as u64);
        if self.pages >= self.bounds.max_pages {
            return Err(self.exceeded(Bound::Pages(self.bounds.max_pages), url));
        }
        if objects > self.bounds.max_objects {
            return Err(self.exceeded(Bound::Objects(self.bounds.max_objects), url));
        }
        self.pages += 1;
        self.objects = objects;
        Ok(())
    }

    /// Runs a request to `url` unless the run's deadline passes first.
    async fn in_time<T>(
        &self,
        url: &Url,
        request: impl Future<Output = T>,
    ) -> Result<T, SyncError> {
        tokio::time::timeout_at(self.deadline, request)
            .await
            .map_err(|_| self.exceeded(Bound::Deadline(self.bounds.deadline), url.as_str()))
    }

    fn exceeded(&self, bound: Bound, url: &str) -> SyncError {
        SyncError::Bounded {
            server: self.server.clone(),
            listing: self.listing.clone(),
            bound,
            pages: self.pages,
            objects: self.objects,
            url: url.to_owned(),
        }
    }
}

/// The two kinds of listing a sync drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// `GET /{collection}`, filtered by `meta.modified.after`.
    Collection,
    /// `GET /deletedEntities`, filtered by `after`.
    DeletedEntities,
}

impl Listing {
    /// The query parameter that carries the watermark.
    fn filter(self) -> &'static str {
        match self {
            Listing::Collection => "meta.modified.after",
            Listing::DeletedEntities => "after",
        }
    }

    /// A full sync lists collections from the start; deletions are always read since the
    /// watermark (a full listing of every deletion ever would only repeat them).
    fn can_be_full(self) -> bool {
        self == Listing::Collection
    }
}

/// How a pass starts: the interrupted pass it resumes (unless a full sync overrides one that
/// had a filter), its mode, and its `meta.modified.after` bound.
fn plan_pass(state: &mut ListingState, full: bool) -> (Option<Pass>, Mode, Option<Timestamp>) {
    let (resumed, mode) = match state.pass.take() {
        Some(pass) if !(full && pass.after.is_some()) => (Some(pass), Mode::Resumed),
        _ if full || state.watermark.is_none() => (None, Mode::Full),
        _ => (None, Mode::Incremental),
    };
    let after = match &resumed {
        Some(pass) => pass.after,
        None if full => None,
        None => state.watermark,
    };
    (resumed, mode, after)
}

/// Stops a pass that would never end: a page token seen before in this pass (a loop), or
/// too many empty pages in a row that still point to a next page.
struct PageGuard {
    seen_tokens: HashSet<String>,
    empty_run: usize,
    max_empty_pages: usize,
}

impl PageGuard {
    fn new(max_empty_pages: usize) -> Self {
        Self {
            seen_tokens: HashSet::new(),
            empty_run: 0,
            max_empty_pages: max_empty_pages.max(1),
        }
    }

    /// Checks a page fetched from `url` with `items` items and the `next` token.
    fn check(&mut self, url: &str, next: Option<&str>, items: usize) -> Result<(), SyncError> {
        if let Some(token) = next
            && !self.seen_tokens.insert(token.to_owned())
        {
            return Err(SyncError::TokenLoop {
                url: url.to_owned(),
                token: token.to_owned(),
            });
        }
        if items == 0 && next.is_some() {
            self.empty_run += 1;
            if self.empty_run >= self.max_empty_pages {
                return Err(SyncError::EmptyPages {
                    url: url.to_owned(),
                    count: self.empty_run,
                });
            }
        } else {
            self.empty_run = 0;
        }
        Ok(())
    }
}

impl PassOutcome {
    /// Adds one committed page's counts.
    fn add(&mut self, summary: ss12000::ApplySummary) {
        self.pages += 1;
        for (collection, counts) in summary.collections {
            let total = self.totals.entry(collection).or_default();
            total.inserted += counts.inserted;
            total.updated += counts.updated;
            total.unchanged += counts.unchanged;
            total.deleted += counts.deleted;
        }
    }
}
