//! Where SS 12000 objects live: SQLite (embedded default) or PostgreSQL, same behaviour.
//!
//! Live objects and tombstones per collection, written in atomic batches ([`WriteBatch`]);
//! keyset paging by `id` ([`ListQuery`]), so a listing that runs while data changes never skips
//! or repeats an object that existed throughout; tombstones listed by deletion time
//! ([`DeletedQuery`]); sync state (watermarks, push progress) as JSON values under string keys,
//! written in the same transaction as the data; subscriptions and append-only records for
//! servers (`/log`, `/statistics`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::collection::Collection;
use crate::object::Object;
use crate::timestamp::Timestamp;

/// Which database a store uses, parsed from `sqlite:PATH` or a `postgres://` /
/// `postgresql://` URL. Displayed with any password masked.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl std::str::FromStr for Database {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Database, StoreError> {
        todo!("{s}")
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        todo!()
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A handle on a store; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Store {
    // IMPLEMENTATION NOTE (skeleton): Arc of an enum over the SQLite and PostgreSQL back ends.
    _private: (),
}

/// Writes applied all-or-nothing by [`Store::apply`], in the order they were added.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    // IMPLEMENTATION NOTE (skeleton)
    _private: (),
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Inserts or replaces a live object. Idempotent: the same JSON again is "unchanged".
    /// An object with the id of a tombstone brings it back to life.
    pub fn upsert(&mut self, collection: Collection, object: Object) -> &mut WriteBatch {
        let _ = (collection, object);
        todo!()
    }

    /// Deletes an object, leaving a tombstone dated `at` (even when the id was never seen:
    /// a client mirrors the server's deletions).
    pub fn delete(&mut self, collection: Collection, id: &str, at: Timestamp) -> &mut WriteBatch {
        let _ = (collection, id, at);
        todo!()
    }

    /// Sets a sync-state value (a watermark, push progress); `None` removes it.
    pub fn set_state(&mut self, key: &str, value: Option<serde_json::Value>) -> &mut WriteBatch {
        let _ = (key, value);
        todo!()
    }

    /// Whether the batch has no writes.
    pub fn is_empty(&self) -> bool {
        todo!()
    }
}

/// What a batch did, per collection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    /// Counts per collection touched by the batch.
    pub collections: BTreeMap<Collection, CollectionSummary>,
}

/// What a batch did to one collection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CollectionSummary {
    /// Objects that were not live before (new, or back from a tombstone).
    pub inserted: u64,
    /// Live objects whose JSON changed.
    pub updated: u64,
    /// Upserts with the JSON already stored.
    pub unchanged: u64,
    /// Live objects turned into tombstones.
    pub deleted: u64,
}

/// A page of live objects, ordered by `id` (byte order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only ids strictly greater than this (the last id of the previous page).
    pub after_id: Option<String>,
    /// At most this many objects (the store caps it at 10,000).
    pub limit: usize,
    /// `meta.created` strictly before.
    pub created_before: Option<Timestamp>,
    /// `meta.created` strictly after.
    pub created_after: Option<Timestamp>,
    /// `meta.modified` strictly before.
    pub modified_before: Option<Timestamp>,
    /// `meta.modified` strictly after.
    pub modified_after: Option<Timestamp>,
}

/// A page of tombstones, ordered by (deletion time, collection, id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedQuery {
    /// Only these collections (all when empty).
    pub collections: Vec<Collection>,
    /// Deleted strictly after this time.
    pub after: Option<Timestamp>,
    /// Resume after this tombstone (the last of the previous page).
    pub after_key: Option<(Timestamp, Collection, String)>,
    /// At most this many tombstones (capped at 10,000).
    pub limit: usize,
}

/// A deleted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// Its collection.
    pub collection: Collection,
    /// Its id.
    pub id: String,
    /// When it was deleted.
    pub deleted_at: Timestamp,
}

/// A webhook subscription of the SS 12000 API (`POST /subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Server-assigned id.
    pub id: String,
    /// The subscriber's name for it.
    pub name: String,
    /// The webhook URL.
    pub target: String,
    /// Entity types (`Person`, …) it covers.
    pub resource_types: Vec<String>,
    /// When it lapses.
    pub expires: Timestamp,
    /// The entity id of the client that created it (only it may change or delete it).
    pub owner: String,
}

impl Store {
    /// Opens (creating the schema when missing) a store. Refuses a schema from a newer version.
    pub async fn open(database: &Database) -> Result<Store, StoreError> {
        let _ = database;
        todo!()
    }

    /// Applies a batch in one transaction: all of it or none of it.
    pub async fn apply(&self, batch: WriteBatch) -> Result<ApplySummary, StoreError> {
        let _ = batch;
        todo!()
    }

    /// One live object.
    pub async fn get(
        &self,
        collection: &Collection,
        id: &str,
    ) -> Result<Option<Object>, StoreError> {
        let _ = (collection, id);
        todo!()
    }

    /// The live objects among `ids` (unknown and deleted ids are left out), in `ids` order.
    pub async fn lookup(
        &self,
        collection: &Collection,
        ids: &[String],
    ) -> Result<Vec<Object>, StoreError> {
        let _ = (collection, ids);
        todo!()
    }

    /// One page of live objects.
    pub async fn list(
        &self,
        collection: &Collection,
        query: &ListQuery,
    ) -> Result<Vec<Object>, StoreError> {
        let _ = (collection, query);
        todo!()
    }

    /// One page of tombstones.
    pub async fn deleted(&self, query: &DeletedQuery) -> Result<Vec<Tombstone>, StoreError> {
        let _ = query;
        todo!()
    }

    /// How many live objects a collection has.
    pub async fn count(&self, collection: &Collection) -> Result<u64, StoreError> {
        let _ = collection;
        todo!()
    }

    /// The collections that have ever held an object.
    pub async fn collections(&self) -> Result<Vec<Collection>, StoreError> {
        todo!()
    }

    /// A sync-state value.
    pub async fn state(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let _ = key;
        todo!()
    }

    /// Every sync-state value whose key starts with `prefix`, ordered by key.
    pub async fn states_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let _ = prefix;
        todo!()
    }

    /// Creates or replaces a subscription.
    pub async fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let _ = subscription;
        todo!()
    }

    /// One subscription.
    pub async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let _ = id;
        todo!()
    }

    /// Deletes a subscription; whether it existed.
    pub async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let _ = id;
        todo!()
    }

    /// Every subscription (expired ones included; callers filter by `expires`).
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        todo!()
    }

    /// Appends a record (`kind` is e.g. `log` or `statistics`), returning its sequence number.
    pub async fn append_record(
        &self,
        kind: &str,
        body: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let _ = (kind, body);
        todo!()
    }

    /// Records of a kind with sequence numbers greater than `after`, oldest first.
    pub async fn records(
        &self,
        kind: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Timestamp, serde_json::Value)>, StoreError> {
        let _ = (kind, after, limit);
        todo!()
    }
}

/// Why a store operation failed. Names the database (password masked) and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `--db` text is neither `sqlite:PATH` nor a `postgres://` URL.
    #[error("invalid database `{0}`: use sqlite:PATH or postgres://USER@HOST/DB")]
    InvalidDatabase(String),
    /// The database could not be opened or reached.
    #[error("cannot open {database}: {message}")]
    Open {
        /// The database, password masked.
        database: String,
        /// What went wrong.
        message: String,
    },
    /// The schema was written by a newer version of this software.
    #[error(
        "{database} has schema version {found}; this build knows up to {supported}: upgrade kontosynk"
    )]
    SchemaTooNew {
        /// The database, password masked.
        database: String,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A query or transaction failed.
    #[error("{operation} failed: {message}")]
    Query {
        /// What was being done (`apply`, `list persons`, …).
        operation: String,
        /// The database's message.
        message: String,
    },
    /// Stored data could not be read back (corruption or a foreign schema).
    #[error("corrupt data in {operation}: {message}")]
    Corrupt {
        /// What was being done.
        operation: String,
        /// What was wrong.
        message: String,
    },
}
