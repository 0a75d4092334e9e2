//! Health history in SQLite: one row per run and one per server per run, for uptime figures
//! and the `--serve` page, and each server's latest result with the time it entered its
//! state (`server_state`), so the page survives restarts and alerts fire once per change.
//! Writes are one transaction per run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::{HealthState, ServerHealth};

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("health history {path}: {source}")]
pub struct HistoryError {
    /// The database file.
    pub path: PathBuf,
    /// The SQLite error.
    #[source]
    pub source: rusqlite::Error,
}

/// Healthy and total checks per `(entity_id, base_uri)`.
pub type Uptime = BTreeMap<(String, String), (u64, u64)>;

/// The history database.
#[derive(Debug)]
pub struct History {
    connection: Connection,
    path: PathBuf,
}

/// A server whose alert condition changed (see [`History::update_states`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The new result.
    pub health: ServerHealth,
    /// The new alert condition (`ok`, `server_down`, `pin_mismatch`, `certificate_expiring`).
    pub alert: &'static str,
    /// The previous one, `None` the first time the server is seen.
    pub previous: Option<String>,
}

/// One past check of one server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PastCheck {
    /// The run's id.
    pub run_id: i64,
    /// When the run started (Unix seconds).
    pub started_at: i64,
    /// Whether the server was healthy.
    pub healthy: bool,
    /// The error, if any.
    pub error: Option<String>,
    /// The HTTP latency, if measured.
    pub latency_ms: Option<i64>,
}

impl History {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let wrap = |source| HistoryError {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(wrap)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA foreign_keys = ON;
                 CREATE TABLE IF NOT EXISTS runs (
                     id INTEGER PRIMARY KEY,
                     started_at INTEGER NOT NULL,
                     finished_at INTEGER NOT NULL,
                     total INTEGER NOT NULL,
                     healthy INTEGER NOT NULL,
                     error TEXT
                 );
                 CREATE TABLE IF NOT EXISTS results (
                     run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                     entity_id TEXT NOT NULL,
                     base_uri TEXT NOT NULL,
                     healthy INTEGER NOT NULL,
                     error TEXT,
                     pin_match INTEGER,
                     cert_not_after TEXT,
                     latency_ms INTEGER,
                     detail TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS results_by_server ON results(entity_id, base_uri, run_id);
                 CREATE TABLE IF NOT EXISTS server_state (
                     entity_id TEXT NOT NULL,
                     base_uri TEXT NOT NULL,
                     state TEXT NOT NULL,
                     since INTEGER NOT NULL,
                     alert TEXT NOT NULL,
                     detail TEXT NOT NULL,
                     PRIMARY KEY (entity_id, base_uri)
                 );",
            )
            .map_err(wrap)?;
        Ok(Self {
            connection,
            path: path.to_path_buf(),
        })
    }

    fn wrap(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores one run; `error` is a problem with the run as a whole (e.g. no valid
    /// metadata). Returns the run's id.
    pub fn record(
        &mut self,
        started_at: i64,
        finished_at: i64,
        results: &[ServerHealth],
        error: Option<&str>,
    ) -> Result<i64, HistoryError> {
        let tx = self.connection.transaction().map_err(|e| HistoryError {
            path: self.path.clone(),
            source: e,
        })?;
        let run_id = {
            tx.execute(
                "INSERT INTO runs (started_at, finished_at, total, healthy, error) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    started_at,
                    finished_at,
                    results.len() as i64,
                    results.iter().filter(|r| r.healthy).count() as i64,
                    error
                ],
            )
            .map_err(|e| HistoryError { path: self.path.clone(), source: e })?;
            let run_id = tx.last_insert_rowid();
            let mut insert = tx
                .prepare(
                    "INSERT INTO results (run_id, entity_id, base_uri, healthy, error, pin_match, cert_not_after, latency_ms, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(|e| HistoryError { path: self.path.clone(), source: e })?;
            for r in results {
                let detail = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned());
                insert
                    .execute(params![
                        run_id,
                        r.entity_id,
                        r.base_uri,
                        r.healthy,
                        r.error,
                        r.pin_match,
                        r.cert_not_after,
                        r.latency_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                        detail
                    ])
                    .map_err(|e| HistoryError {
                        path: self.path.clone(),
                        source: e,
                    })?;
            }
            run_id
        };
        tx.commit().map_err(|e| self.wrap(e))?;
        Ok(run_id)
    }

    /// Records each result as its server's latest, keeping `since` while the state stays
    /// and resetting it on a change; `alert_of` names the alert condition of a result
    /// (`ok` when none). Returns the results whose alert condition changed, with the previous
    /// one (`None` for a server seen for the first time, which alerts only when not `ok`).
    pub fn update_states(
        &mut self,
        now: i64,
        results: &[ServerHealth],
        alert_of: impl Fn(&ServerHealth) -> &'static str,
    ) -> Result<Vec<StateChange>, HistoryError> {
        let path = self.path.clone();
        let wrap = |source| HistoryError {
            path: path.clone(),
            source,
        };
        let tx = self.connection.transaction().map_err(wrap)?;
        let mut changes = Vec::new();
        {
            let mut select = tx
                .prepare("SELECT state, since, alert FROM server_state WHERE entity_id = ?1 AND base_uri = ?2")
                .map_err(wrap)?;
            let mut upsert = tx
                .prepare(
                    "INSERT INTO server_state (entity_id, base_uri, state, since, alert, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (entity_id, base_uri) DO UPDATE SET
                        state = excluded.state, since = excluded.since, alert = excluded.alert,
                        detail = excluded.detail",
                )
                .map_err(wrap)?;
            for r in results {
                let previous: Option<(String, i64, String)> = select
                    .query_row(params![r.entity_id, r.base_uri], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })
                    .map_err(wrap)?;
                let state = r.state.as_str();
                let since = match &previous {
                    Some((old, since, _)) if old == state => *since,
                    _ => now,
                };
                let alert = alert_of(r);
                let old_alert = previous.as_ref().map(|(_, _, a)| a.clone());
                if old_alert.as_deref() != Some(alert) && (old_alert.is_some() || alert != "ok") {
                    changes.push(StateChange {
                        health: r.clone(),
                        alert,
                        previous: old_alert,
                    });
                }
                let detail = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned());
                upsert
                    .execute(params![
                        r.entity_id,
                        r.base_uri,
                        state,
                        since,
                        alert,
                        detail
                    ])
                    .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)?;
        Ok(changes)
    }

    /// Every server's latest result and since when it has been in its state (Unix seconds).
    pub fn states(&self) -> Result<Vec<(ServerHealth, i64)>, HistoryError> {
        let mut statement = self
            .connection
            .prepare("SELECT detail, since FROM server_state ORDER BY entity_id, base_uri")
            .map_err(|e| self.wrap(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(|e| self.wrap(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (detail, since) = row.map_err(|e| self.wrap(e))?;
            // A row an older or newer version wrote that does not read is skipped, not fatal.
            if let Ok(mut health) = serde_json::from_str::<ServerHealth>(&detail) {
                health.state = HealthState::of(&health);
                out.push((health, since));
            }
        }
        Ok(out)
    }

    /// The last `checks` results of every server over the last `checks` runs, oldest first,
    /// as `+` (healthy) and `-` (unhealthy): the page's history bar.
    pub fn recent(&self, checks: u32) -> Result<BTreeMap<(String, String), String>, HistoryError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT entity_id, base_uri, healthy FROM results
                 WHERE run_id IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?1)
                 ORDER BY entity_id, base_uri, run_id",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = statement
            .query_map(params![checks], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                ))
            })
            .map_err(|e| self.wrap(e))?;
        let mut out: BTreeMap<(String, String), String> = BTreeMap::new();
        for row in rows {
            let (entity, base_uri, healthy) = row.map_err(|e| self.wrap(e))?;
            out.entry((entity, base_uri))
                .or_default()
                .push(if healthy { '+' } else { '-' });
        }
        Ok(out)
    }

    /// How many runs are stored.
    pub fn runs(&self) -> Result<u64, HistoryError> {
        self.connection
            .query_row("SELECT COUNT(*) FROM runs", [], |row| row.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.wrap(e))
    }

    /// Healthy and total checks per `(entity_id, base_uri)` over the last `last_runs` runs.
    pub fn uptime(&self, last_runs: u32) -> Result<Uptime, HistoryError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT entity_id, base_uri, SUM(healthy), COUNT(*) FROM results
                 WHERE run_id IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?1)
                 GROUP BY entity_id, base_uri",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = statement
            .query_map(params![last_runs], |row| {
                Ok((
                    (row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                    (
                        u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                        u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                    ),
                ))
            })
            .map_err(|e| self.wrap(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.wrap(e))
    }

    /// The last `limit` checks of one server, newest first.
    pub fn server(&self, entity_id: &str, limit: u32) -> Result<Vec<PastCheck>, HistoryError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT r.run_id, runs.started_at, r.healthy, r.error, r.latency_ms
                 FROM results r JOIN runs ON runs.id = r.run_id
                 WHERE r.entity_id = ?1 ORDER BY r.run_id DESC LIMIT ?2",
            )
            .map_err(|e| self.wrap(e))?;
        let rows = statement
            .query_map(params![entity_id, limit], |row| {
                Ok(PastCheck {
                    run_id: row.get(0)?,
                    started_at: row.get(1)?,
                    healthy: row.get(2)?,
                    error: row.get(3)?,
                    latency_ms: row.get(4)?,
                })
            })
            .map_err(|e| self.wrap(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.wrap(e))
    }

    /// Deletes runs that started before `before` (Unix seconds); returns how many.
    pub fn prune(&mut self, before: i64) -> Result<usize, HistoryError> {
        self.connection
            .execute("DELETE FROM runs WHERE started_at < ?1", params![before])
            .map_err(|e| self.wrap(e))
    }
}
