//! The SQLite back end: one file in WAL mode, one writer connection and a few readers so
//! reads never wait on a write; all blocking work on `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{
    ApplySummary, Database, DeletedQuery, ListQuery, SCHEMA_VERSION, StoreError, Tombstone,
    UpsertPlan, Write, page_limit, stored_object,
};
use crate::collection::Collection;
use crate::object::Object;
use crate::timestamp::Timestamp;

#[path = "sqlite_egil.rs"]
mod egil;

/// Idle reader connections kept open.
const IDLE_READERS: usize = 4;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Ids per `IN (…)` lookup statement.
const LOOKUP_CHUNK: usize = 500;

const SCHEMA: &str = "
CREATE TABLE objects (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    created INTEGER,
    modified INTEGER,
    body TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE TABLE tombstones (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX tombstones_by_time ON tombstones (deleted_at, collection, id);
CREATE TABLE collections (name TEXT PRIMARY KEY NOT NULL);
CREATE TABLE sync_state (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE subscriptions (id TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL);
CREATE TABLE records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX records_by_kind ON records (kind, seq);
";

/// An open SQLite store.
pub(crate) struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    label: String,
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn query_error(operation: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Query {
        operation: operation.to_owned(),
        message: e.to_string(),
    }
}

fn open_connection(path: &Path, label: &str) -> Result<Connection, StoreError> {
    let open_error = |e: rusqlite::Error| StoreError::Open {
        database: label.to_owned(),
        message: e.to_string(),
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "cache_size", -32_000)
        .map_err(open_error)?;
    Ok(conn)
}

/// Creates the schema in a new file, or checks the version of an existing one.
fn prepare_schema(conn: &mut Connection, label: &str) -> Result<(), StoreError> {
    let open_error = |e: rusqlite::Error| StoreError::Open {
        database: label.to_owned(),
        message: e.to_string(),
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_error)?;
    let has_schema: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kontosynk_schema')",
            [],
            |row| row.get(0),
        )
        .map_err(open_error)?;
    if has_schema {
        let found: Option<i64> = tx
            .query_row("SELECT max(version) FROM kontosynk_schema", [], |row| {
                row.get(0)
            })
            .map_err(open_error)?;
        let found = found.ok_or_else(|| StoreError::Corrupt {
            operation: format!("open {label}"),
            message: "kontosynk_schema holds no version".to_owned(),
        })?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                database: label.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        return Ok(());
    }
    let other_tables: i64 = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(open_error)?;
    if other_tables > 0 {
        return Err(StoreError::Open {
            database: label.to_owned(),
            message: "the file holds tables but no kontosynk schema: not a kontosynk store"
                .to_owned(),
        });
    }
    tx.execute_batch(SCHEMA).map_err(open_error)?;
    tx.execute_batch("CREATE TABLE kontosynk_schema (version INTEGER NOT NULL);")
        .map_err(open_error)?;
    tx.execute(
        "INSERT INTO kontosynk_schema (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )
    .map_err(open_error)?;
    tx.commit().map_err(open_error)?;
    tracing::info!(
        database = label,
        version = SCHEMA_VERSION,
        "created store schema"
    );
    Ok(())
}

impl Shared {
    fn reader(&self) -> Result<Connection, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = open_connection(&self.path, &self.label)?;
                conn.pragma_update(None, "query_only", true)
                    .map_err(|e| query_error("open reader", e))?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

impl SqliteStore {
    pub(crate) async fn open(path: &Path, database: &Database) -> Result<SqliteStore, StoreError> {
        let label = database.to_string();
        let path = path.to_owned();
        let shared = tokio::task::spawn_blocking(move || -> Result<Shared, StoreError> {
            let mut writer = open_connection(&path, &label)?;
            prepare_schema(&mut writer, &label)?;
            writer
                .execute_batch(super::egil::SCHEMA_SQLITE)
                .map_err(|e| StoreError::Open {
                    database: label.clone(),
                    message: e.to_string(),
                })?;
            Ok(Shared {
                label,
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            })
        })
        .await
        .map_err(|e| StoreError::Open {
            database: database.to_string(),
            message: e.to_string(),
        })??;
        Ok(SqliteStore {
            shared: Arc::new(shared),
        })
    }

    /// Runs `f` on an idle reader connection, off the async threads.
    async fn read<T, F>(&self, operation: String, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = self.shared.clone();
        let op = operation.clone();
        tokio::task::spawn_blocking(move || {
            let conn = shared.reader()?;
            let result = f(&conn);
            shared.give_back(conn);
            result
        })
        .await
        .map_err(|e| query_error(&op, e))?
    }

    /// Runs `f` on the writer connection, off the async threads.
    async fn write<T, F>(&self, operation: String, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let shared = self.shared.clone();
        let op = operation.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = shared.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| query_error(&op, e))?
    }

    pub(crate) async fn apply(&self, writes: Vec<Write>) -> Result<ApplySummary, StoreError> {
        self.write("apply".to_owned(), move |conn| apply(conn, writes))
            .await
    }

    pub(crate) async fn lookup(
        &self,
        collection: &Collection,
        ids: &[String],
    ) -> Result<Vec<Object>, StoreError> {
        let name = collection.path().to_owned();
        let ids = ids.to_vec();
        self.read(format!("lookup {name}"), move |conn| {
            let op = format!("lookup {name}");
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!(
                    "SELECT id, body FROM objects WHERE collection = ? AND id IN ({marks})"
                );
                let mut stmt = conn.prepare_cached(&sql).map_err(|e| query_error(&op, e))?;
                let args = std::iter::once(&name).chain(chunk.iter());
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(args))
                    .map_err(|e| query_error(&op, e))?;
                while let Some(row) = rows.next().map_err(|e| query_error(&op, e))? {
                    let id: String = row.get(0).map_err(|e| query_error(&op, e))?;
                    let body: String = row.get(1).map_err(|e| query_error(&op, e))?;
                    out.push(stored_object(&name, &id, &body)?);
                }
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn list(
        &self,
        collection: &Collection,
        query: &ListQuery,
    ) -> Result<Vec<Object>, StoreError> {
        let name = collection.path().to_owned();
        let query = query.clone();
        self.read(format!("list {name}"), move |conn| {
            let op = format!("list {name}");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, body FROM objects
                     WHERE collection = ?1 AND id > ?2
                       AND (?3 IS NULL OR created < ?3) AND (?4 IS NULL OR created > ?4)
                       AND (?5 IS NULL OR modified < ?5) AND (?6 IS NULL OR modified > ?6)
                     ORDER BY collection, id LIMIT ?7",
                )
                .map_err(|e| query_error(&op, e))?;
            let micros = |t: Option<Timestamp>| t.map(Timestamp::unix_micros);
            let limit = i64::try_from(page_limit(query.limit)).unwrap_or(i64::MAX);
            let mut rows = stmt
                .query(params![
                    name,
                    query.after_id.as_deref().unwrap_or(""),
                    micros(query.created_before),
                    micros(query.created_after),
                    micros(query.modified_before),
                    micros(query.modified_after),
                    limit,
                ])
                .map_err(|e| query_error(&op, e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| query_error(&op, e))? {
                let id: String = row.get(0).map_err(|e| query_error(&op, e))?;
                let body: String = row.get(1).map_err(|e| query_error(&op, e))?;
                out.push(stored_object(&name, &id, &body)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn deleted(&self, query: &DeletedQuery) -> Result<Vec<Tombstone>, StoreError> {
        let query = query.clone();
        self.read("deleted".to_owned(), move |conn| {
            let op = "deleted";
            let mut sql = String::from(
                "SELECT collection, id, deleted_at FROM tombstones WHERE (?1 IS NULL OR deleted_at > ?1)
                 AND (?2 IS NULL OR (deleted_at, collection, id) > (?2, ?3, ?4))",
            );
            if !query.collections.is_empty() {
                let marks = vec!["?"; query.collections.len()].join(",");
                sql.push_str(&format!(" AND collection IN ({marks})"));
            }
            sql.push_str(" ORDER BY deleted_at, collection, id LIMIT ?");
            let mut args: Vec<rusqlite::types::Value> = vec![
                query.after.map(Timestamp::unix_micros).into(),
                query
                    .after_key
                    .as_ref()
                    .map(|(at, _, _)| at.unix_micros())
                    .into(),
                query
                    .after_key
                    .as_ref()
                    .map(|(_, c, _)| c.path().to_owned())
                    .into(),
                query.after_key.as_ref().map(|(_, _, id)| id.clone()).into(),
            ];
            args.extend(
                query
                    .collections
                    .iter()
                    .map(|c| rusqlite::types::Value::from(c.path().to_owned())),
            );
            args.push(i64::try_from(page_limit(query.limit)).unwrap_or(i64::MAX).into());
            let mut stmt = conn.prepare_cached(&sql).map_err(|e| query_error(op, e))?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(args))
                .map_err(|e| query_error(op, e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| query_error(op, e))? {
                let name: String = row.get(0).map_err(|e| query_error(op, e))?;
                let id: String = row.get(1).map_err(|e| query_error(op, e))?;
                let at: i64 = row.get(2).map_err(|e| query_error(op, e))?;
                let collection = Collection::from_path(&name).map_err(|e| StoreError::Corrupt {
                    operation: op.to_owned(),
                    message: e.to_string(),
                })?;
                out.push(Tombstone {
                    collection,
                    id,
                    deleted_at: Timestamp::from_unix_micros(at),
                });
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn count(&self, collection: &Collection) -> Result<u64, StoreError> {
        let name = collection.path().to_owned();
        self.read(format!("count {name}"), move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM objects WHERE collection = ?1",
                    [&name],
                    |row| row.get(0),
                )
                .map_err(|e| query_error(&format!("count {name}"), e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    pub(crate) async fn collections(&self) -> Result<Vec<String>, StoreError> {
        self.read("collections".to_owned(), |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name FROM collections ORDER BY name")
                .map_err(|e| query_error("collections", e))?;
            let rows = stmt
                .query_map([], |row| row.get(0))
                .map_err(|e| query_error("collections", e))?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(|e| query_error("collections", e))
        })
        .await
    }

    pub(crate) async fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(format!("state {key}"), move |conn| {
            conn.query_row(
                "SELECT value FROM sync_state WHERE key = ?1",
                [&key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| query_error(&format!("state {key}"), e))
        })
        .await
    }

    pub(crate) async fn states_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let prefix = prefix.to_owned();
        self.read(format!("states {prefix}*"), move |conn| {
            let op = format!("states {prefix}*");
            let mut stmt = conn
                .prepare_cached("SELECT key, value FROM sync_state WHERE key >= ?1 ORDER BY key")
                .map_err(|e| query_error(&op, e))?;
            let mut rows = stmt.query([&prefix]).map_err(|e| query_error(&op, e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| query_error(&op, e))? {
                let key: String = row.get(0).map_err(|e| query_error(&op, e))?;
                if !key.starts_with(&prefix) {
                    break;
                }
                out.push((key, row.get(1).map_err(|e| query_error(&op, e))?));
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn put_subscription(&self, id: &str, body: &str) -> Result<(), StoreError> {
        let (id, body) = (id.to_owned(), body.to_owned());
        self.write(format!("put subscription {id}"), move |conn| {
            conn.execute(
                "INSERT INTO subscriptions (id, body) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                params![id, body],
            )
            .map_err(|e| query_error(&format!("put subscription {id}"), e))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn subscriptions(
        &self,
        only: Option<&[String]>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let only = only.and_then(|ids| ids.first().cloned());
        self.read("subscriptions".to_owned(), move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, body FROM subscriptions WHERE ?1 IS NULL OR id = ?1 ORDER BY id",
                )
                .map_err(|e| query_error("subscriptions", e))?;
            let rows = stmt
                .query_map([only], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(|e| query_error("subscriptions", e))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| query_error("subscriptions", e))
        })
        .await
    }

    pub(crate) async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(format!("delete subscription {id}"), move |conn| {
            let n = conn
                .execute("DELETE FROM subscriptions WHERE id = ?1", [&id])
                .map_err(|e| query_error(&format!("delete subscription {id}"), e))?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn append_record(
        &self,
        kind: &str,
        at: Timestamp,
        body: &str,
    ) -> Result<i64, StoreError> {
        let (kind, body) = (kind.to_owned(), body.to_owned());
        self.write(format!("append {kind} record"), move |conn| {
            conn.execute(
                "INSERT INTO records (kind, at, body) VALUES (?1, ?2, ?3)",
                params![kind, at.unix_micros(), body],
            )
            .map_err(|e| query_error(&format!("append {kind} record"), e))?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    pub(crate) async fn trim_records(
        &self,
        kind: &str,
        field: &str,
        value: &str,
        keep: usize,
    ) -> Result<u64, StoreError> {
        let (kind, value) = (kind.to_owned(), value.to_owned());
        // `field` is letters, digits and underscores (checked by the caller).
        let path = format!("$.{field}");
        self.write(format!("trim {kind} records"), move |conn| {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let n = conn
                .execute(
                    "DELETE FROM records WHERE kind = ?1 AND json_extract(body, ?2) = ?3
                     AND seq NOT IN (SELECT seq FROM records WHERE kind = ?1
                                     AND json_extract(body, ?2) = ?3 ORDER BY seq DESC LIMIT ?4)",
                    params![kind, path, value, keep],
                )
                .map_err(|e| query_error(&format!("trim {kind} records"), e))?;
            Ok(n as u64)
        })
        .await
    }

    pub(crate) async fn expire_records(
        &self,
        kind: &str,
        before: Timestamp,
    ) -> Result<u64, StoreError> {
        let kind = kind.to_owned();
        self.write(format!("expire {kind} records"), move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM records WHERE kind = ?1 AND at < ?2",
                    params![kind, before.unix_micros()],
                )
                .map_err(|e| query_error(&format!("expire {kind} records"), e))?;
            Ok(n as u64)
        })
        .await
    }

    pub(crate) async fn records(
        &self,
        kind: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let kind = kind.to_owned();
        self.read(format!("{kind} records"), move |conn| {
            let op = format!("{kind} records");
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at, body FROM records WHERE kind = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .map_err(|e| query_error(&op, e))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![kind, after, limit], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .map_err(|e| query_error(&op, e))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| query_error(&op, e))
        })
        .await
    }
}

/// Applies a batch in one immediate transaction; any error rolls all of it back.
fn apply(conn: &mut Connection, writes: Vec<Write>) -> Result<ApplySummary, StoreError> {
    let op = "apply";
    let e = |e: rusqlite::Error| query_error(op, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(e)?;
    let mut summary = ApplySummary::default();
    let mut seen = std::collections::BTreeSet::new();
    for (index, write) in writes.into_iter().enumerate() {
        write.check(index)?;
        match write {
            Write::Upsert(collection, object, touch) => {
                let name = collection.path();
                let old: Option<String> = tx
                    .prepare_cached("SELECT body FROM objects WHERE collection = ?1 AND id = ?2")
                    .map_err(e)?
                    .query_row(params![name, object.id()], |row| row.get(0))
                    .optional()
                    .map_err(e)?;
                let counts = summary.entry(&collection);
                let times = |o: &Object| {
                    (
                        o.created().map(Timestamp::unix_micros),
                        o.modified().map(Timestamp::unix_micros),
                    )
                };
                match UpsertPlan::new(old.as_deref(), object, touch, counts)? {
                    UpsertPlan::Unchanged => {}
                    UpsertPlan::Update(object) => {
                        let (created, modified) = times(&object);
                        tx.prepare_cached(
                            "UPDATE objects SET body = ?3, created = ?4, modified = ?5
                             WHERE collection = ?1 AND id = ?2",
                        )
                        .map_err(e)?
                        .execute(params![name, object.id(), object.json(), created, modified])
                        .map_err(e)?;
                    }
                    UpsertPlan::Insert(object) => {
                        let (created, modified) = times(&object);
                        tx.prepare_cached(
                            "INSERT INTO objects (collection, id, body, created, modified)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )
                        .map_err(e)?
                        .execute(params![name, object.id(), object.json(), created, modified])
                        .map_err(e)?;
                        tx.prepare_cached(
                            "DELETE FROM tombstones WHERE collection = ?1 AND id = ?2",
                        )
                        .map_err(e)?
                        .execute(params![name, object.id()])
                        .map_err(e)?;
                    }
                }
                seen.insert(collection);
            }
            Write::Delete(collection, id, at) => {
                let name = collection.path();
                let removed = tx
                    .prepare_cached("DELETE FROM objects WHERE collection = ?1 AND id = ?2")
                    .map_err(e)?
                    .execute(params![name, id])
                    .map_err(e)?;
                tx.prepare_cached(
                    "INSERT INTO tombstones (collection, id, deleted_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (collection, id) DO NOTHING",
                )
                .map_err(e)?
                .execute(params![name, id, at.unix_micros()])
                .map_err(e)?;
                summary.entry(&collection).deleted += removed as u64;
                seen.insert(collection);
            }
            Write::State(key, value) => match value {
                Some(value) => {
                    tx.prepare_cached(
                        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )
                    .map_err(e)?
                    .execute(params![key, value.to_string()])
                    .map_err(e)?;
                }
                None => {
                    tx.prepare_cached("DELETE FROM sync_state WHERE key = ?1")
                        .map_err(e)?
                        .execute([key])
                        .map_err(e)?;
                }
            },
        }
    }
    for collection in &seen {
        tx.prepare_cached("INSERT OR IGNORE INTO collections (name) VALUES (?1)")
            .map_err(e)?
            .execute([collection.path()])
            .map_err(e)?;
    }
    tx.commit().map_err(e)?;
    Ok(summary)
}
