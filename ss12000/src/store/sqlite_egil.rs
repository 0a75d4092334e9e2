//! The EGIL tables on SQLite (see `store/egil.rs`).

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, query_error};
use crate::egil::{EgilPage, EgilResource, EgilTenant};
use crate::store::StoreError;
use crate::store::egil::{EgilCreated, EgilWrite};

impl SqliteStore {
    pub(crate) async fn egil_write(
        &self,
        write: EgilWrite,
        tenant: &EgilTenant,
        resource: EgilResource,
        id: &str,
        body: &str,
    ) -> Result<EgilCreated, StoreError> {
        let tenant = tenant.clone();
        let id = id.to_owned();
        let body = body.to_owned();
        let op = format!("egil {write:?} {resource}");
        self.write(op.clone(), move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| query_error(&op, e))?;
            match write {
                EgilWrite::Create(max) => {
                    let objects: i64 = tx
                        .prepare_cached(
                            "INSERT INTO egil_tenants (tenant, organization, organization_id, objects)
                             VALUES (?1, ?2, ?3, 1)
                             ON CONFLICT (tenant) DO UPDATE SET organization = excluded.organization,
                               organization_id = excluded.organization_id, objects = objects + 1
                             RETURNING objects",
                        )
                        .and_then(|mut s| {
                            s.query_row(
                                params![tenant.id, tenant.organization, tenant.organization_id],
                                |row| row.get(0),
                            )
                        })
                        .map_err(|e| query_error(&op, e))?;
                    if max.is_some_and(|max| u64::try_from(objects).unwrap_or(0) > max) {
                        return Ok(EgilCreated::TenantFull);
                    }
                    let inserted = tx
                        .prepare_cached(
                            "INSERT INTO egil_objects (tenant, resource, id, body) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (tenant, resource, id) DO NOTHING",
                        )
                        .and_then(|mut s| s.execute(params![tenant.id, resource.path(), id, body]))
                        .map_err(|e| query_error(&op, e))?;
                    if inserted == 0 {
                        return Ok(EgilCreated::Exists);
                    }
                }
                EgilWrite::Replace => {
                    let updated = tx
                        .prepare_cached(
                            "UPDATE egil_objects SET body = ?4 WHERE tenant = ?1 AND resource = ?2 AND id = ?3",
                        )
                        .and_then(|mut s| s.execute(params![tenant.id, resource.path(), id, body]))
                        .map_err(|e| query_error(&op, e))?;
                    if updated == 0 {
                        return Ok(EgilCreated::Exists);
                    }
                }
            }
            tx.commit().map_err(|e| query_error(&op, e))?;
            Ok(EgilCreated::Created)
        })
        .await
    }

    pub(crate) async fn egil_delete(
        &self,
        tenant: &str,
        resource: EgilResource,
        id: &str,
    ) -> Result<bool, StoreError> {
        let tenant = tenant.to_owned();
        let id = id.to_owned();
        let op = format!("egil delete {resource}");
        self.write(op.clone(), move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| query_error(&op, e))?;
            let n = tx
                .prepare_cached(
                    "DELETE FROM egil_objects WHERE tenant = ?1 AND resource = ?2 AND id = ?3",
                )
                .and_then(|mut s| s.execute(params![tenant, resource.path(), id]))
                .map_err(|e| query_error(&op, e))?;
            if n > 0 {
                tx.prepare_cached(
                    "UPDATE egil_tenants SET objects = max(objects - 1, 0) WHERE tenant = ?1",
                )
                .and_then(|mut s| s.execute(params![tenant]))
                .map_err(|e| query_error(&op, e))?;
            }
            tx.commit().map_err(|e| query_error(&op, e))?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn egil_count(&self, tenant: &str) -> Result<u64, StoreError> {
        let tenant = tenant.to_owned();
        let op = "egil count".to_owned();
        self.read(op.clone(), move |conn| {
            let n: Option<i64> = conn
                .prepare_cached("SELECT objects FROM egil_tenants WHERE tenant = ?1")
                .and_then(|mut s| s.query_row(params![tenant], |row| row.get(0)).optional())
                .map_err(|e| query_error(&op, e))?;
            Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
        })
        .await
    }

    pub(crate) async fn egil_get(
        &self,
        tenant: &str,
        resource: EgilResource,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let tenant = tenant.to_owned();
        let id = id.to_owned();
        let op = format!("egil get {resource}");
        self.read(op.clone(), move |conn| {
            conn.prepare_cached(
                "SELECT body FROM egil_objects WHERE tenant = ?1 AND resource = ?2 AND id = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![tenant, resource.path(), id], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| query_error(&op, e))
        })
        .await
    }

    pub(crate) async fn egil_list(
        &self,
        tenant: &str,
        resource: EgilResource,
        offset: u64,
        limit: usize,
    ) -> Result<EgilPage, StoreError> {
        let tenant = tenant.to_owned();
        let op = format!("egil list {resource}");
        self.read(op.clone(), move |conn| {
            let total: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM egil_objects WHERE tenant = ?1 AND resource = ?2",
                )
                .and_then(|mut s| s.query_row(params![tenant, resource.path()], |row| row.get(0)))
                .map_err(|e| query_error(&op, e))?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT body FROM egil_objects WHERE tenant = ?1 AND resource = ?2
                     ORDER BY id LIMIT ?3 OFFSET ?4",
                )
                .map_err(|e| query_error(&op, e))?;
            let bodies = stmt
                .query_map(
                    params![
                        tenant,
                        resource.path(),
                        i64::try_from(limit).unwrap_or(i64::MAX),
                        i64::try_from(offset).unwrap_or(i64::MAX)
                    ],
                    |row| row.get::<_, String>(0),
                )
                .and_then(Iterator::collect::<Result<Vec<String>, _>>)
                .map_err(|e| query_error(&op, e))?;
            Ok(EgilPage {
                total: u64::try_from(total).unwrap_or(0),
                bodies,
            })
        })
        .await
    }

    pub(crate) async fn egil_ids(
        &self,
        tenant: &str,
        resource: EgilResource,
    ) -> Result<Vec<String>, StoreError> {
        let tenant = tenant.to_owned();
        let op = format!("egil ids {resource}");
        self.read(op.clone(), move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id FROM egil_objects WHERE tenant = ?1 AND resource = ?2 ORDER BY id",
                )
                .map_err(|e| query_error(&op, e))?;
            stmt.query_map(params![tenant, resource.path()], |row| row.get(0))
                .and_then(Iterator::collect::<Result<Vec<String>, _>>)
                .map_err(|e| query_error(&op, e))
        })
        .await
    }

    pub(crate) async fn egil_tenants(&self) -> Result<Vec<EgilTenant>, StoreError> {
        let op = "egil tenants".to_owned();
        self.read(op.clone(), move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT tenant, organization, organization_id FROM egil_tenants ORDER BY tenant",
                )
                .map_err(|e| query_error(&op, e))?;
            stmt.query_map([], |row| {
                Ok(EgilTenant {
                    id: row.get(0)?,
                    organization: row.get(1)?,
                    organization_id: row.get(2)?,
                })
            })
            .and_then(Iterator::collect::<Result<Vec<EgilTenant>, _>>)
            .map_err(|e| query_error(&op, e))
        })
        .await
    }
}
