//! The SS 12000 sync engine: mirrors a school's SS 12000 API into an [`ss12000::Store`].
//!
//! # What a run does
//!
//! For each configured collection, in order (organisations → persons → groups → duties →
//! activities, then any extra collections), one *pass*: a listing of `GET /{collection}`
//! followed page by page. The first sync of a collection (or `--full`) lists everything; later
//! ones send `meta.modified.after=<watermark>`. Then one pass over
//! `GET /deletedEntities?after=<watermark>&entities=Person,Group,…` turns the listed ids into
//! tombstones. Only `limit` and `pageToken` are sent with a page token (the API forbids
//! filters there); tokens are URL-encoded (`+/=`); a page without `pageToken`, with `null` or
//! with `""` is the last; an empty page is accepted anywhere; a token the server already gave
//! in this pass is a loop and fails the run, as do too many empty pages that keep a token.
//! A server that keeps handing out *new* tokens is stopped by the run's [`RunBounds`]: pages
//! and objects per listing, and a deadline for the whole run.
//!
//! # Atomic pages and resuming
//!
//! Every page is applied as one [`ss12000::WriteBatch`]: its upserts (or tombstones) and the
//! listing's new state (`sync/v1/<base URL>/<collection>`), so the store never holds data
//! without the state that explains it, nor state ahead of its data. The state of a pass in
//! progress is its filter, its start time and the token of the next page. A run that is killed
//! resumes with that token. When the server refuses the saved token (400, 404 or 410: tokens
//! are not durable everywhere) the pass restarts from its own filter; upserts are idempotent
//! (the same JSON again counts as unchanged), so re-reading pages loses and duplicates nothing.
//! While a page is written the next one is already being fetched; memory holds at most two
//! pages (each item kept as its raw JSON text), whatever the size of the collection.
//!
//! # Why the watermark misses nothing
//!
//! A completed pass sets the collection's watermark to `started − overlap`, where `started` is
//! the earlier of the client's clock just before the pass's first request and the server's
//! `Date` on the first response. Take any object changed on the server:
//!
//! * changed before `started`: the pass lists it with its latest state, unless it changed
//!   again meanwhile — which is the next case;
//! * changed at or after `started` (possibly after the keyset cursor of the listing passed
//!   it, so this pass missed it): its `meta.modified` is at or after `started`, above the new
//!   watermark, so the next incremental pass lists it.
//!
//! The overlap window (default 5 minutes, as Skolverket's client) absorbs what the argument
//! assumes: that the server stamps `meta.modified` from the same clock as its `Date` header
//! (seconds precision), and that a change committed slightly after its stamp is visible by the
//! next pass. The server's `Date` protects against a client clock running ahead of the
//! server's. Re-listing the overlap costs only "unchanged" upserts.
//!
//! # Deletions
//!
//! On the very first run against a server, before any listing, the `deletedEntities` watermark
//! is set to the run's start minus the overlap: objects deleted earlier are simply absent from
//! the full listings that follow; objects deleted after it (also those deleted while a listing
//! runs, or between a killed run and its resumption) are returned by the `deletedEntities`
//! pass at the end of the run. That pass keeps its own resume state and watermark like a
//! collection. The reference API gives no deletion time, so tombstones are dated by the
//! server's `Date` on the page (else the client's clock).
//!
//! A full resync does **not** infer deletions from absence: proving an object absent needs the
//! set of every id listed (memory proportional to the data) and a listing known to be
//! complete; the server's `deletedEntities` is the source of deletions.
//!
//! # Reporting
//!
//! [`SyncReport`] gives per collection new / updated / deleted / unchanged (from the store's
//! [`ss12000::ApplySummary`]) for a table or JSON; [`report_to_server`] posts them to the
//! server's `/statistics` and a summary to its `/log`, as Skolverket's client does.

mod engine;
mod error;
mod http;
mod page;
mod progress;
mod report;
mod state;

pub use engine::{RunBounds, SyncOptions, Syncer};
pub use error::{Bound, SyncError};
pub use progress::{NoProgress, Progress};
pub use report::{
    CollectionReport, LogEntry, Mode, StatisticsEntry, SyncReport, log_entry, report_to_server,
    statistics,
};
pub use state::{STATE_PREFIX, state_key};
