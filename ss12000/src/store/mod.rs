//! Where SS 12000 objects live: SQLite (embedded default) or PostgreSQL, same behaviour.
//!
//! Live objects and tombstones per collection, written in atomic batches ([`WriteBatch`]);
//! keyset paging by `id` ([`ListQuery`]), so a listing that runs while data changes never skips
//! or repeats an object that existed throughout; tombstones listed by deletion time
//! ([`DeletedQuery`]); sync state (watermarks, push progress) as JSON values under string keys,
//! written in the same transaction as the data; subscriptions and append-only records for
//! servers (`/log`, `/statistics`).

mod postgres;
mod sqlite;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

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
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
                return Err(StoreError::InvalidDatabase(s.to_owned()));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return match s.parse::<tokio_postgres::Config>() {
                Ok(_) => Ok(Database::Postgres(s.to_owned())),
                Err(_) => Err(StoreError::InvalidDatabase(mask_password(s))),
            };
        }
        Err(StoreError::InvalidDatabase(mask_password(s)))
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Database::Postgres(url) => f.write_str(&mask_password(url)),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A URL (or any text) with the password of its user info and any `password=` parameter
/// replaced by `***`, for messages and logs.
fn mask_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = &out[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(authority_start + colon + 1..authority_start + at, "***");
            }
        }
    }
    let mut search = 0;
    while let Some(found) = out[search..].find("password=") {
        let start = search + found + "password=".len();
        let end = out[start..]
            .find(['&', ' '])
            .map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "***");
        search = start + 3;
    }
    out
}

/// The newest schema version this build knows (stored in `kontosynk_schema`).
pub const SCHEMA_VERSION: i64 = 1;

/// The most objects or tombstones one page returns.
pub const MAX_PAGE: usize = 10_000;

/// The longest sync-state key or record kind accepted (bytes).
const MAX_KEY: usize = 512;

/// A handle on a store; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    database: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// The object, and the time to move its `meta.modified` to when its content changed but
    /// its `meta.modified` did not move ([`WriteBatch::upsert_touching_modified`]).
    Upsert(Collection, Object, Option<Timestamp>),
    Delete(Collection, String, Timestamp),
    State(String, Option<serde_json::Value>),
}

/// Writes applied all-or-nothing by [`Store::apply`], in the order they were added.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    writes: Vec<Write>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Inserts or replaces a live object. Idempotent: the same JSON value again (whatever
    /// its whitespace or member order) is "unchanged" and the stored text stays. An object
    /// with the id of a tombstone brings it back to life.
    pub fn upsert(&mut self, collection: Collection, object: Object) -> &mut WriteBatch {
        self.writes.push(Write::Upsert(collection, object, None));
        self
    }

    /// Like [`upsert`](Self::upsert), for a source that edits objects without keeping their
    /// `meta.modified` (a school's export files): when the content changed but `meta.modified`
    /// is not later than the stored one's, it is set to `at`, so readers that follow
    /// `meta.modified` (an incremental sync) see the change. Counted in
    /// [`CollectionSummary::modified_set`].
    pub fn upsert_touching_modified(
        &mut self,
        collection: Collection,
        object: Object,
        at: Timestamp,
    ) -> &mut WriteBatch {
        self.writes
            .push(Write::Upsert(collection, object, Some(at)));
        self
    }

    /// Deletes an object, leaving a tombstone dated `at` (even when the id was never seen:
    /// a client mirrors the server's deletions).
    ///
    /// Deleting an id that already has a tombstone keeps the first deletion time.
    pub fn delete(&mut self, collection: Collection, id: &str, at: Timestamp) -> &mut WriteBatch {
        self.writes
            .push(Write::Delete(collection, id.to_owned(), at));
        self
    }

    /// Sets a sync-state value (a watermark, push progress); `None` removes it.
    ///
    /// Keys are 1 to 512 bytes without control characters (checked by [`Store::apply`]).
    pub fn set_state(&mut self, key: &str, value: Option<serde_json::Value>) -> &mut WriteBatch {
        self.writes.push(Write::State(key.to_owned(), value));
        self
    }

    /// Whether the batch has no writes.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// How many writes the batch holds.
    pub fn len(&self) -> usize {
        self.writes.len()
    }
}

impl Write {
    /// Checks what the types cannot: a hand-built collection name, a deletion's id, a state
    /// key. `index` is the write's position in its batch, for the message.
    pub(crate) fn check(&self, index: usize) -> Result<(), StoreError> {
        let problem = match self {
            Write::Upsert(collection, _, _) | Write::Delete(collection, _, _)
                if !collection.is_valid() =>
            {
                format!("`{}` is not a valid collection name", collection.path())
            }
            Write::Delete(_, id, _) => match crate::object::check_id(id) {
                Ok(()) => return Ok(()),
                Err(e) => e.to_string(),
            },
            Write::State(key, _) => match check_key(key, "state key") {
                Ok(()) => return Ok(()),
                Err(e) => e,
            },
            Write::Upsert(..) => return Ok(()),
        };
        Err(StoreError::InvalidInput(format!(
            "write {index} of the batch: {problem}"
        )))
    }
}

fn check_key(key: &str, what: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY || key.chars().any(char::is_control) {
        Err(format!(
            "{what} {key:?} must be 1 to {MAX_KEY} bytes without control characters"
        ))
    } else {
        Ok(())
    }
}

impl ApplySummary {
    /// The counts of one collection, created empty when missing.
    pub(crate) fn entry(&mut self, collection: &Collection) -> &mut CollectionSummary {
        self.collections.entry(collection.clone()).or_default()
    }

    /// Adds another summary's counts to this one.
    pub fn merge(&mut self, other: &ApplySummary) {
        for (collection, counts) in &other.collections {
            let mine = self.entry(collection);
            mine.inserted += counts.inserted;
            mine.updated += counts.updated;
            mine.unchanged += counts.unchanged;
            mine.deleted += counts.deleted;
            mine.modified_set += counts.modified_set;
        }
    }
}

/// What an upsert does, decided the same way by every backend.
pub(crate) enum UpsertPlan {
    /// No live object with this id: insert it (and drop a tombstone).
    Insert(Object),
    /// The same JSON value is stored: nothing to write.
    Unchanged,
    /// Replace the stored object with this one (its `meta.modified` possibly set).
    Update(Object),
}

impl UpsertPlan {
    /// The plan for upserting `new` over the stored JSON text `old` (see [`upsert_over`]),
    /// counted in `counts`.
    pub(crate) fn new(
        old: Option<&str>,
        new: Object,
        touch: Option<Timestamp>,
        counts: &mut CollectionSummary,
    ) -> Result<UpsertPlan, StoreError> {
        let Some(old) = old else {
            counts.inserted += 1;
            return Ok(UpsertPlan::Insert(new));
        };
        Ok(match upsert_over(old, &new, touch)? {
            None => {
                counts.unchanged += 1;
                UpsertPlan::Unchanged
            }
            Some((object, touched)) => {
                counts.updated += 1;
                counts.modified_set += u64::from(touched);
                UpsertPlan::Update(object)
            }
        })
    }
}

/// What an upsert of `new` writes over the stored JSON text `old`: `None` when the content
/// is the same JSON value (whitespace and member order do not count); else the object to
/// store and whether its `meta.modified` was set to `touch` (the content changed, and its
/// `meta.modified` is missing or not later than the stored one's).
fn upsert_over(
    old: &str,
    new: &Object,
    touch: Option<Timestamp>,
) -> Result<Option<(Object, bool)>, StoreError> {
    if old == new.json() {
        return Ok(None);
    }
    let old_value: Option<serde_json::Value> = serde_json::from_str(old).ok();
    let mut new_value: serde_json::Value = serde_json::from_str(new.json())
        .map_err(|e| StoreError::InvalidInput(format!("object {}: {e}", new.id())))?;
    if old_value.as_ref() == Some(&new_value) {
        return Ok(None);
    }
    let Some(at) = touch else {
        return Ok(Some((new.clone(), false)));
    };
    let old_modified = Object::from_json(old).ok().and_then(|o| o.modified());
    let moved = match (new.modified(), old_modified) {
        (Some(new_at), Some(old_at)) => new_at > old_at,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if moved {
        return Ok(Some((new.clone(), false)));
    }
    let Some(map) = new_value.as_object_mut() else {
        return Ok(Some((new.clone(), false)));
    };
    let meta = map
        .entry("meta")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if !meta.is_object() {
        *meta = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(
            "modified".to_owned(),
            serde_json::Value::String(at.to_string()),
        );
    }
    let touched = Object::from_value(&new_value)
        .map_err(|e| StoreError::InvalidInput(format!("object {}: {e}", new.id())))?;
    Ok(Some((touched, true)))
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
    /// Of the updated, those whose `meta.modified` was set to the write time because their
    /// content changed and it did not ([`WriteBatch::upsert_touching_modified`]).
    pub modified_set: u64,
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

/// Dispatches one call to the back end.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.backend {
            Backend::Sqlite(b) => b.$method($($arg),*).await,
            Backend::Postgres(b) => b.$method($($arg),*).await,
        }
    };
}

pub(crate) mod egil;

/// Caps a requested page size at [`MAX_PAGE`].
pub(crate) fn page_limit(limit: usize) -> usize {
    limit.min(MAX_PAGE)
}

impl Store {
    /// Opens (creating the schema when missing) a store. Refuses a schema from a newer version.
    pub async fn open(database: &Database) -> Result<Store, StoreError> {
        let backend = match database {
            Database::Sqlite(path) => {
                Backend::Sqlite(sqlite::SqliteStore::open(path, database).await?)
            }
            Database::Postgres(url) => {
                Backend::Postgres(postgres::PgStore::open(url, database).await?)
            }
        };
        tracing::debug!(database = %database, "store opened");
        Ok(Store {
            backend: Arc::new(backend),
            database: database.clone(),
        })
    }

    /// The database this store uses.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Applies a batch in one transaction: all of it or none of it.
    ///
    /// Fails with [`StoreError::InvalidInput`] (and writes nothing) when a write names an
    /// invalid collection, id or state key.
    pub async fn apply(&self, batch: WriteBatch) -> Result<ApplySummary, StoreError> {
        if batch.is_empty() {
            return Ok(ApplySummary::default());
        }
        dispatch!(self.apply(batch.writes))
    }

    /// One live object.
    pub async fn get(
        &self,
        collection: &Collection,
        id: &str,
    ) -> Result<Option<Object>, StoreError> {
        let ids = [id.to_owned()];
        Ok(self.lookup(collection, &ids).await?.into_iter().next())
    }

    /// The live objects among `ids` (unknown and deleted ids are left out), in `ids` order.
    /// An id given twice is returned once, at its first place.
    pub async fn lookup(
        &self,
        collection: &Collection,
        ids: &[String],
    ) -> Result<Vec<Object>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: std::collections::HashMap<String, Object> =
            dispatch!(self.lookup(collection, ids))?
                .into_iter()
                .map(|o| (o.id().to_owned(), o))
                .collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// One page of live objects, ordered by `id`. A `limit` of 0 returns nothing; more than
    /// [`MAX_PAGE`] returns [`MAX_PAGE`].
    pub async fn list(
        &self,
        collection: &Collection,
        query: &ListQuery,
    ) -> Result<Vec<Object>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        dispatch!(self.list(collection, query))
    }

    /// One page of tombstones, ordered by (deletion time, collection name, id).
    pub async fn deleted(&self, query: &DeletedQuery) -> Result<Vec<Tombstone>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        dispatch!(self.deleted(query))
    }

    /// How many live objects a collection has.
    pub async fn count(&self, collection: &Collection) -> Result<u64, StoreError> {
        dispatch!(self.count(collection))
    }

    /// The collections that have ever held an object (or a tombstone), by name.
    pub async fn collections(&self) -> Result<Vec<Collection>, StoreError> {
        let names: Vec<String> = dispatch!(self.collections())?;
        names
            .into_iter()
            .map(|name| {
                Collection::from_path(&name).map_err(|e| StoreError::Corrupt {
                    operation: "collections".to_owned(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// A sync-state value.
    pub async fn state(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = dispatch!(self.state(key))?;
        text.map(|text| {
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                operation: format!("state {key}"),
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// Every sync-state value whose key starts with `prefix`, ordered by key (byte order).
    pub async fn states_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let rows: Vec<(String, String)> = dispatch!(self.states_with_prefix(prefix))?;
        rows.into_iter()
            .map(|(key, text)| {
                let value = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    operation: format!("state {key}"),
                    message: e.to_string(),
                })?;
                Ok((key, value))
            })
            .collect()
    }

    /// Creates or replaces a subscription.
    pub async fn put_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        check_key(&subscription.id, "subscription id").map_err(StoreError::InvalidInput)?;
        let body = serde_json::to_string(subscription).map_err(|e| {
            StoreError::InvalidInput(format!("subscription {}: {e}", subscription.id))
        })?;
        dispatch!(self.put_subscription(&subscription.id, &body))
    }

    /// One subscription.
    pub async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let ids = [id.to_owned()];
        let rows: Vec<(String, String)> = dispatch!(self.subscriptions(Some(&ids[..])))?;
        rows.into_iter()
            .next()
            .map(|row| parse_subscription(&row))
            .transpose()
    }

    /// Deletes a subscription; whether it existed.
    pub async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self.delete_subscription(id))
    }

    /// Every subscription (expired ones included; callers filter by `expires`), by id.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let rows: Vec<(String, String)> = dispatch!(self.subscriptions(None))?;
        rows.iter().map(parse_subscription).collect()
    }

    /// Appends a record (`kind` is e.g. `log` or `statistics`), returning its sequence number.
    /// Sequence numbers grow with commit order, so a reader polling with `after` misses none.
    pub async fn append_record(
        &self,
        kind: &str,
        body: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        check_key(kind, "record kind").map_err(StoreError::InvalidInput)?;
        let text = body.to_string();
        dispatch!(self.append_record(kind, Timestamp::now(), &text))
    }

    /// Deletes the records of `kind` whose JSON body has `field` equal to the string `value`,
    /// except the newest `keep` of them; returns how many were deleted. Bounds a per-key
    /// history (e.g. the webhook records of one subscription).
    pub async fn trim_records(
        &self,
        kind: &str,
        field: &str,
        value: &str,
        keep: usize,
    ) -> Result<u64, StoreError> {
        check_key(kind, "record kind").map_err(StoreError::InvalidInput)?;
        check_key(field, "record field").map_err(StoreError::InvalidInput)?;
        if !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::InvalidInput(format!(
                "record field {field:?} must be letters, digits and underscores"
            )));
        }
        dispatch!(self.trim_records(kind, field, value, keep))
    }

    /// Deletes the records of `kind` appended before `before`; returns how many.
    pub async fn expire_records(&self, kind: &str, before: Timestamp) -> Result<u64, StoreError> {
        check_key(kind, "record kind").map_err(StoreError::InvalidInput)?;
        dispatch!(self.expire_records(kind, before))
    }

    /// Records of a kind with sequence numbers greater than `after`, oldest first (at most
    /// [`MAX_PAGE`]).
    pub async fn records(
        &self,
        kind: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Timestamp, serde_json::Value)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i64, String)> =
            dispatch!(self.records(kind, after, page_limit(limit)))?;
        rows.into_iter()
            .map(|(seq, at, text)| {
                let value = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    operation: format!("{kind} record {seq}"),
                    message: e.to_string(),
                })?;
                Ok((seq, Timestamp::from_unix_micros(at), value))
            })
            .collect()
    }
}

fn parse_subscription((id, body): &(String, String)) -> Result<Subscription, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        operation: format!("subscription {id}"),
        message: e.to_string(),
    })
}

/// Reads a stored object back, naming the row when it is not a valid object any more.
pub(crate) fn stored_object(collection: &str, id: &str, body: &str) -> Result<Object, StoreError> {
    let object = Object::from_json(body).map_err(|e| StoreError::Corrupt {
        operation: format!("read {collection}/{id}"),
        message: e.to_string(),
    })?;
    if object.id() != id {
        return Err(StoreError::Corrupt {
            operation: format!("read {collection}/{id}"),
            message: format!("the stored body has id {:?}", object.id()),
        });
    }
    Ok(object)
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
    /// A write or argument the store refuses (invalid collection name, id or key).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Stored data could not be read back (corruption or a foreign schema).
    #[error("corrupt data in {operation}: {message}")]
    Corrupt {
        /// What was being done.
        operation: String,
        /// What was wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::{Database, StoreError};
    use std::path::PathBuf;

    #[test]
    fn parses_sqlite_and_postgres() {
        assert_eq!(
            "sqlite:data/store.db".parse::<Database>().unwrap(),
            Database::Sqlite(PathBuf::from("data/store.db"))
        );
        assert_eq!(
            "sqlite:///var/lib/k.db".parse::<Database>().unwrap(),
            Database::Sqlite(PathBuf::from("/var/lib/k.db"))
        );
        let pg = "postgres://kontosynk:hemligt@db.example:5432/kontosynk?sslmode=disable";
        let parsed = pg.parse::<Database>().unwrap();
        assert_eq!(parsed, Database::Postgres(pg.to_owned()));
        assert!(
            "postgresql://u@%2Fvar%2Frun%2Fpostgresql/db"
                .parse::<Database>()
                .is_ok()
        );
    }

    #[test]
    fn masks_passwords() {
        let pg: Database = "postgres://kontosynk:hemligt@db.example/k".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://kontosynk:***@db.example/k");
        assert_eq!(format!("{pg:?}"), "postgres://kontosynk:***@db.example/k");
        let pg: Database = "postgres://u@h/k?password=hemligt&application_name=x"
            .parse()
            .unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://u@h/k?password=***&application_name=x"
        );
        let err = "mysql://u:hemligt@h/k".parse::<Database>().unwrap_err();
        assert!(!err.to_string().contains("hemligt"), "{err}");
    }

    #[test]
    fn refuses_other_text() {
        for bad in [
            "",
            "store.db",
            "sqlite:",
            "sqlite::memory:",
            "mysql://h/db",
            "postgres://u@h:notaport/db",
        ] {
            assert!(
                matches!(bad.parse::<Database>(), Err(StoreError::InvalidDatabase(_))),
                "{bad:?}"
            );
        }
    }
}
