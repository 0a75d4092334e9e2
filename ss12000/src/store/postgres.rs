//! The PostgreSQL back end: a deadpool of tokio-postgres connections; writers serialised by a
//! transaction-level advisory lock so upsert classification and record numbering are exact.
//! Ids and names use the `C` collation so ordering is byte order, as in SQLite.
//! Connections are made without TLS (a Unix socket or a trusted network).

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};

use super::{
    ApplySummary, Database, DeletedQuery, ListQuery, SCHEMA_VERSION, StoreError, Tombstone,
    UpsertPlan, Write, page_limit, stored_object,
};
use crate::collection::Collection;
use crate::object::Object;
use crate::timestamp::Timestamp;

#[path = "postgres_egil.rs"]
mod egil;

/// Connections in the pool.
const POOL_SIZE: usize = 8;

/// Advisory lock taken by batch writers (and schema creation).
const WRITE_LOCK: i64 = 0x6b6f_6e74_6f01;
/// Advisory lock taken by record appenders.
const RECORD_LOCK: i64 = 0x6b6f_6e74_6f02;

const SCHEMA: &str = r#"
CREATE TABLE objects (
    collection TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    created BIGINT,
    modified BIGINT,
    body TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE TABLE tombstones (
    collection TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX tombstones_by_time ON tombstones (deleted_at, collection, id);
CREATE TABLE collections (name TEXT COLLATE "C" PRIMARY KEY);
CREATE TABLE sync_state (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE subscriptions (id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE records (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX records_by_kind ON records (kind, seq);
CREATE TABLE kontosynk_schema (version BIGINT NOT NULL);
"#;

/// An open PostgreSQL store.
pub(crate) struct PgStore {
    pool: Pool,
    label: String,
}

/// The most useful text of a tokio-postgres error (the server's message when there is one).
fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn query_error(operation: &str, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Query {
        operation: operation.to_owned(),
        message: pg_message(e),
    }
}

fn micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix_micros)
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(page_limit(limit)).unwrap_or(i64::MAX)
}

/// What the batch's upserts will find: `(collection, id)` → the stored body, or `None`.
type Live = std::collections::HashMap<(String, String), Option<String>>;

/// Reads the stored bodies of every object a batch upserts (one query per collection).
async fn prefetch(
    tx: &deadpool_postgres::Transaction<'_>,
    writes: &[Write],
) -> Result<Live, StoreError> {
    let op = "apply";
    let mut wanted: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for write in writes {
        if let Write::Upsert(collection, object, _) = write {
            wanted
                .entry(collection.path())
                .or_default()
                .push(object.id());
        }
    }
    let mut live = Live::new();
    if wanted.is_empty() {
        return Ok(live);
    }
    let select = tx
        .prepare_cached("SELECT id, body FROM objects WHERE collection = $1 AND id = ANY($2)")
        .await
        .map_err(|e| query_error(op, &e))?;
    for (name, ids) in wanted {
        for id in &ids {
            live.insert((name.to_owned(), (*id).to_owned()), None);
        }
        let rows = tx
            .query(&select, &[&name, &ids])
            .await
            .map_err(|e| query_error(op, &e))?;
        for row in rows {
            live.insert((name.to_owned(), row.get(0)), Some(row.get(1)));
        }
    }
    Ok(live)
}

impl PgStore {
    pub(crate) async fn open(url: &str, database: &Database) -> Result<PgStore, StoreError> {
        let label = database.to_string();
        let open_error = |message: String| StoreError::Open {
            database: label.clone(),
            message,
        };
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| open_error(pg_message(&e)))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| open_error(e.to_string()))?;
        let store = PgStore {
            pool,
            label: label.clone(),
        };
        let mut client = store.client(&format!("open {label}")).await.map_err(|e| {
            let message = match e {
                StoreError::Query { message, .. } => message,
                other => other.to_string(),
            };
            open_error(message)
        })?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| open_error(pg_message(&e)))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(|e| open_error(pg_message(&e)))?;
        let has_schema: bool = tx
            .query_one("SELECT to_regclass('kontosynk_schema') IS NOT NULL", &[])
            .await
            .map_err(|e| open_error(pg_message(&e)))?
            .get(0);
        if has_schema {
            let found: Option<i64> = tx
                .query_one("SELECT max(version) FROM kontosynk_schema", &[])
                .await
                .map_err(|e| open_error(pg_message(&e)))?
                .get(0);
            let found = found.ok_or_else(|| StoreError::Corrupt {
                operation: format!("open {label}"),
                message: "kontosynk_schema holds no version".to_owned(),
            })?;
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    database: label,
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
        } else {
            let tables: i64 = tx
                .query_one(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
                    &[],
                )
                .await
                .map_err(|e| open_error(pg_message(&e)))?
                .get(0);
            if tables > 0 {
                return Err(open_error(
                    "the database holds tables but no kontosynk schema: not a kontosynk store"
                        .to_owned(),
                ));
            }
            tx.batch_execute(SCHEMA)
                .await
                .map_err(|e| open_error(pg_message(&e)))?;
            tx.execute(
                "INSERT INTO kontosynk_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(|e| open_error(pg_message(&e)))?;
            tracing::info!(database = %label, version = SCHEMA_VERSION, "created store schema");
        }
        tx.batch_execute(super::egil::SCHEMA_POSTGRES)
            .await
            .map_err(|e| open_error(pg_message(&e)))?;
        tx.commit().await.map_err(|e| open_error(pg_message(&e)))?;
        drop(client);
        Ok(store)
    }

    async fn client(&self, operation: &str) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let text = s.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = s.source();
            }
            StoreError::Query {
                operation: format!("{operation} on {}", self.label),
                message,
            }
        })
    }

    pub(crate) async fn apply(&self, writes: Vec<Write>) -> Result<ApplySummary, StoreError> {
        let op = "apply";
        let mut client = self.client(op).await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| query_error(op, &e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .await
            .map_err(|e| query_error(op, &e))?;
        // One query per collection reads what the batch's upserts will replace, so each upsert
        // costs at most one round trip.
        let mut live = prefetch(&tx, &writes).await?;
        let update = tx
            .prepare_cached(
                "UPDATE objects SET body = $3, created = $4, modified = $5
                 WHERE collection = $1 AND id = $2",
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        let insert = tx
            .prepare_cached(
                "WITH unburied AS (DELETE FROM tombstones WHERE collection = $1 AND id = $2)
                 INSERT INTO objects (collection, id, body, created, modified)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        let remove = tx
            .prepare_cached("DELETE FROM objects WHERE collection = $1 AND id = $2")
            .await
            .map_err(|e| query_error(op, &e))?;
        let bury = tx
            .prepare_cached(
                "INSERT INTO tombstones (collection, id, deleted_at) VALUES ($1, $2, $3)
                 ON CONFLICT (collection, id) DO NOTHING",
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        let mut summary = ApplySummary::default();
        let mut seen = std::collections::BTreeSet::new();
        for (index, write) in writes.into_iter().enumerate() {
            write.check(index)?;
            match write {
                Write::Upsert(collection, object, touch) => {
                    let name = collection.path();
                    let key = (name.to_owned(), object.id().to_owned());
                    let old = live.get(&key).cloned().flatten();
                    let counts = summary.entry(&collection);
                    let (statement, object) =
                        match UpsertPlan::new(old.as_deref(), object, touch, counts)? {
                            UpsertPlan::Unchanged => {
                                seen.insert(collection);
                                continue;
                            }
                            UpsertPlan::Update(object) => (&update, object),
                            UpsertPlan::Insert(object) => (&insert, object),
                        };
                    let created = micros(object.created());
                    let modified = micros(object.modified());
                    let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                        [&name, &object.id(), &object.json(), &created, &modified];
                    tx.execute(statement, &args)
                        .await
                        .map_err(|e| query_error(op, &e))?;
                    live.insert(key, Some(object.json().to_owned()));
                    seen.insert(collection);
                }
                Write::Delete(collection, id, at) => {
                    let name = collection.path();
                    let removed = tx
                        .execute(&remove, &[&name, &id])
                        .await
                        .map_err(|e| query_error(op, &e))?;
                    tx.execute(&bury, &[&name, &id, &at.unix_micros()])
                        .await
                        .map_err(|e| query_error(op, &e))?;
                    summary.entry(&collection).deleted += removed;
                    if let Some(known) = live.get_mut(&(name.to_owned(), id.clone())) {
                        *known = None;
                    }
                    seen.insert(collection);
                }
                Write::State(key, value) => match value {
                    Some(value) => {
                        tx.execute(
                            "INSERT INTO sync_state (key, value) VALUES ($1, $2)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            &[&key, &value.to_string()],
                        )
                        .await
                        .map_err(|e| query_error(op, &e))?;
                    }
                    None => {
                        tx.execute("DELETE FROM sync_state WHERE key = $1", &[&key])
                            .await
                            .map_err(|e| query_error(op, &e))?;
                    }
                },
            }
        }
        for collection in &seen {
            tx.execute(
                "INSERT INTO collections (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&collection.path()],
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        }
        tx.commit().await.map_err(|e| query_error(op, &e))?;
        Ok(summary)
    }

    pub(crate) async fn lookup(
        &self,
        collection: &Collection,
        ids: &[String],
    ) -> Result<Vec<Object>, StoreError> {
        let name = collection.path();
        let op = format!("lookup {name}");
        let client = self.client(&op).await?;
        let stmt = client
            .prepare_cached("SELECT id, body FROM objects WHERE collection = $1 AND id = ANY($2)")
            .await
            .map_err(|e| query_error(&op, &e))?;
        let rows = client
            .query(&stmt, &[&name, &ids])
            .await
            .map_err(|e| query_error(&op, &e))?;
        rows.iter()
            .map(|row| stored_object(name, row.get(0), row.get(1)))
            .collect()
    }

    pub(crate) async fn list(
        &self,
        collection: &Collection,
        query: &ListQuery,
    ) -> Result<Vec<Object>, StoreError> {
        let name = collection.path();
        let op = format!("list {name}");
        let client = self.client(&op).await?;
        // Only the filters asked for, so each shape gets a plan of its own (at most 16 texts).
        let mut sql =
            String::from("SELECT id, body FROM objects WHERE collection = $1 AND id > $2");
        let mut args: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = vec![
            Box::new(name.to_owned()),
            Box::new(query.after_id.clone().unwrap_or_default()),
        ];
        for (column, op_sign, value) in [
            ("created", "<", query.created_before),
            ("created", ">", query.created_after),
            ("modified", "<", query.modified_before),
            ("modified", ">", query.modified_after),
        ] {
            if let Some(value) = value {
                args.push(Box::new(value.unix_micros()));
                sql.push_str(&format!(" AND {column} {op_sign} ${}", args.len()));
            }
        }
        args.push(Box::new(limit_param(query.limit)));
        sql.push_str(&format!(" ORDER BY collection, id LIMIT ${}", args.len()));
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(|e| query_error(&op, &e))?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let rows = client
            .query(&stmt, &refs)
            .await
            .map_err(|e| query_error(&op, &e))?;
        rows.iter()
            .map(|row| stored_object(name, row.get(0), row.get(1)))
            .collect()
    }

    pub(crate) async fn deleted(&self, query: &DeletedQuery) -> Result<Vec<Tombstone>, StoreError> {
        let op = "deleted";
        let client = self.client(op).await?;
        let stmt = client
            .prepare_cached(
                "SELECT collection, id, deleted_at FROM tombstones
                 WHERE ($1::bigint IS NULL OR deleted_at > $1)
                   AND ($2::bigint IS NULL OR (deleted_at, collection, id) > ($2, $3::text, $4::text))
                   AND (cardinality($5::text[]) = 0 OR collection = ANY($5))
                 ORDER BY deleted_at, collection, id LIMIT $6",
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        let key = query.after_key.as_ref();
        let names: Vec<&str> = query.collections.iter().map(Collection::path).collect();
        let rows = client
            .query(
                &stmt,
                &[
                    &micros(query.after),
                    &key.map(|(at, _, _)| at.unix_micros()),
                    &key.map(|(_, c, _)| c.path()),
                    &key.map(|(_, _, id)| id.as_str()),
                    &names,
                    &limit_param(query.limit),
                ],
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        rows.iter()
            .map(|row| {
                let name: &str = row.get(0);
                let collection = Collection::from_path(name).map_err(|e| StoreError::Corrupt {
                    operation: op.to_owned(),
                    message: e.to_string(),
                })?;
                Ok(Tombstone {
                    collection,
                    id: row.get(1),
                    deleted_at: Timestamp::from_unix_micros(row.get(2)),
                })
            })
            .collect()
    }

    pub(crate) async fn count(&self, collection: &Collection) -> Result<u64, StoreError> {
        let op = format!("count {collection}");
        let client = self.client(&op).await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM objects WHERE collection = $1",
                &[&collection.path()],
            )
            .await
            .map_err(|e| query_error(&op, &e))?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(crate) async fn collections(&self) -> Result<Vec<String>, StoreError> {
        let op = "collections";
        let client = self.client(op).await?;
        let rows = client
            .query("SELECT name FROM collections ORDER BY name", &[])
            .await
            .map_err(|e| query_error(op, &e))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub(crate) async fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        let op = format!("state {key}");
        let client = self.client(&op).await?;
        let row = client
            .query_opt("SELECT value FROM sync_state WHERE key = $1", &[&key])
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(row.map(|row| row.get(0)))
    }

    pub(crate) async fn states_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let op = format!("states {prefix}*");
        let client = self.client(&op).await?;
        let rows = client
            .query(
                "SELECT key, value FROM sync_state WHERE key >= $1 AND starts_with(key, $1)
                 ORDER BY key",
                &[&prefix],
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    pub(crate) async fn put_subscription(&self, id: &str, body: &str) -> Result<(), StoreError> {
        let op = format!("put subscription {id}");
        let client = self.client(&op).await?;
        client
            .execute(
                "INSERT INTO subscriptions (id, body) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                &[&id, &body],
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(())
    }

    pub(crate) async fn subscriptions(
        &self,
        only: Option<&[String]>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let op = "subscriptions";
        let client = self.client(op).await?;
        let only: Option<&str> = only.and_then(|ids| ids.first()).map(String::as_str);
        let rows = client
            .query(
                "SELECT id, body FROM subscriptions WHERE $1::text IS NULL OR id = $1 ORDER BY id",
                &[&only],
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    pub(crate) async fn delete_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let op = format!("delete subscription {id}");
        let client = self.client(&op).await?;
        let n = client
            .execute("DELETE FROM subscriptions WHERE id = $1", &[&id])
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(n > 0)
    }

    pub(crate) async fn append_record(
        &self,
        kind: &str,
        at: Timestamp,
        body: &str,
    ) -> Result<i64, StoreError> {
        let op = format!("append {kind} record");
        let mut client = self.client(&op).await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| query_error(&op, &e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RECORD_LOCK])
            .await
            .map_err(|e| query_error(&op, &e))?;
        let seq: i64 = tx
            .query_one(
                "INSERT INTO records (kind, at, body) VALUES ($1, $2, $3) RETURNING seq",
                &[&kind, &at.unix_micros(), &body],
            )
            .await
            .map_err(|e| query_error(&op, &e))?
            .get(0);
        tx.commit().await.map_err(|e| query_error(&op, &e))?;
        Ok(seq)
    }

    pub(crate) async fn trim_records(
        &self,
        kind: &str,
        field: &str,
        value: &str,
        keep: usize,
    ) -> Result<u64, StoreError> {
        let op = format!("trim {kind} records");
        let client = self.client(&op).await?;
        let keep = limit_param(keep);
        client
            .execute(
                "DELETE FROM records WHERE kind = $1 AND (body::jsonb ->> $2::text) = $3::text
                 AND seq NOT IN (SELECT seq FROM records WHERE kind = $1
                                 AND (body::jsonb ->> $2::text) = $3::text ORDER BY seq DESC LIMIT $4)",
                &[&kind, &field, &value, &keep],
            )
            .await
            .map_err(|e| query_error(&op, &e))
    }

    pub(crate) async fn expire_records(
        &self,
        kind: &str,
        before: Timestamp,
    ) -> Result<u64, StoreError> {
        let op = format!("expire {kind} records");
        let client = self.client(&op).await?;
        client
            .execute(
                "DELETE FROM records WHERE kind = $1 AND at < $2",
                &[&kind, &before.unix_micros()],
            )
            .await
            .map_err(|e| query_error(&op, &e))
    }

    pub(crate) async fn records(
        &self,
        kind: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let op = format!("{kind} records");
        let client = self.client(&op).await?;
        let rows = client
            .query(
                "SELECT seq, at, body FROM records WHERE kind = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&kind, &after, &limit_param(limit)],
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect())
    }
}
