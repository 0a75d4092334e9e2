//! The EGIL tables on PostgreSQL (see `store/egil.rs`).

use deadpool_postgres::GenericClient;

use super::{PgStore, query_error};
use crate::egil::{EgilPage, EgilResource, EgilTenant};
use crate::store::StoreError;
use crate::store::egil::{EgilCreated, EgilWrite};

impl PgStore {
    pub(crate) async fn egil_write(
        &self,
        write: EgilWrite,
        tenant: &EgilTenant,
        resource: EgilResource,
        id: &str,
        body: &str,
    ) -> Result<EgilCreated, StoreError> {
        let op = format!("egil {write:?} {resource}");
        let mut client = self.client(&op).await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| query_error(&op, &e))?;
        match write {
            EgilWrite::Create(max) => {
                // The tenant's row is locked until commit: concurrent creates of one tenant
                // count one after the other, so the cap is exact.
                let statement = tx
                    .prepare_cached(
                        "INSERT INTO egil_tenants (tenant, organization, organization_id, objects)
                         VALUES ($1, $2, $3, 1)
                         ON CONFLICT (tenant) DO UPDATE SET organization = excluded.organization,
                           organization_id = excluded.organization_id,
                           objects = egil_tenants.objects + 1
                         RETURNING objects",
                    )
                    .await
                    .map_err(|e| query_error(&op, &e))?;
                let objects: i64 = tx
                    .query_one(
                        &statement,
                        &[&tenant.id, &tenant.organization, &tenant.organization_id],
                    )
                    .await
                    .map_err(|e| query_error(&op, &e))?
                    .get(0);
                if max.is_some_and(|max| u64::try_from(objects).unwrap_or(0) > max) {
                    return Ok(EgilCreated::TenantFull);
                }
                let statement = tx
                    .prepare_cached(
                        "INSERT INTO egil_objects (tenant, resource, id, body) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (tenant, resource, id) DO NOTHING",
                    )
                    .await
                    .map_err(|e| query_error(&op, &e))?;
                let inserted = tx
                    .execute(&statement, &[&tenant.id, &resource.path(), &id, &body])
                    .await
                    .map_err(|e| query_error(&op, &e))?;
                if inserted == 0 {
                    return Ok(EgilCreated::Exists);
                }
            }
            EgilWrite::Replace => {
                let statement = tx
                    .prepare_cached(
                        "UPDATE egil_objects SET body = $4 WHERE tenant = $1 AND resource = $2 AND id = $3",
                    )
                    .await
                    .map_err(|e| query_error(&op, &e))?;
                let updated = tx
                    .execute(&statement, &[&tenant.id, &resource.path(), &id, &body])
                    .await
                    .map_err(|e| query_error(&op, &e))?;
                if updated == 0 {
                    return Ok(EgilCreated::Exists);
                }
            }
        }
        tx.commit().await.map_err(|e| query_error(&op, &e))?;
        Ok(EgilCreated::Created)
    }

    pub(crate) async fn egil_delete(
        &self,
        tenant: &str,
        resource: EgilResource,
        id: &str,
    ) -> Result<bool, StoreError> {
        let op = format!("egil delete {resource}");
        let mut client = self.client(&op).await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| query_error(&op, &e))?;
        let statement = tx
            .prepare_cached(
                "DELETE FROM egil_objects WHERE tenant = $1 AND resource = $2 AND id = $3",
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        let n = tx
            .execute(&statement, &[&tenant, &resource.path(), &id])
            .await
            .map_err(|e| query_error(&op, &e))?;
        if n > 0 {
            tx.execute(
                "UPDATE egil_tenants SET objects = greatest(objects - 1, 0) WHERE tenant = $1",
                &[&tenant],
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        }
        tx.commit().await.map_err(|e| query_error(&op, &e))?;
        Ok(n > 0)
    }

    pub(crate) async fn egil_count(&self, tenant: &str) -> Result<u64, StoreError> {
        let op = "egil count";
        let client = self.client(op).await?;
        let row = client
            .query_opt(
                "SELECT objects FROM egil_tenants WHERE tenant = $1",
                &[&tenant],
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        Ok(row.map_or(0, |row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }

    pub(crate) async fn egil_get(
        &self,
        tenant: &str,
        resource: EgilResource,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let op = format!("egil get {resource}");
        let client = self.client(&op).await?;
        let statement = client
            .prepare_cached(
                "SELECT body FROM egil_objects WHERE tenant = $1 AND resource = $2 AND id = $3",
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        let row = client
            .query_opt(&statement, &[&tenant, &resource.path(), &id])
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(row.map(|row| row.get(0)))
    }

    pub(crate) async fn egil_list(
        &self,
        tenant: &str,
        resource: EgilResource,
        offset: u64,
        limit: usize,
    ) -> Result<EgilPage, StoreError> {
        let op = format!("egil list {resource}");
        let client = self.client(&op).await?;
        let total: i64 = client
            .query_one(
                "SELECT count(*) FROM egil_objects WHERE tenant = $1 AND resource = $2",
                &[&tenant, &resource.path()],
            )
            .await
            .map_err(|e| query_error(&op, &e))?
            .get(0);
        let rows = client
            .query(
                "SELECT body FROM egil_objects WHERE tenant = $1 AND resource = $2
                 ORDER BY id LIMIT $3 OFFSET $4",
                &[
                    &tenant,
                    &resource.path(),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                    &i64::try_from(offset).unwrap_or(i64::MAX),
                ],
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(EgilPage {
            total: u64::try_from(total).unwrap_or(0),
            bodies: rows.iter().map(|row| row.get(0)).collect(),
        })
    }

    pub(crate) async fn egil_ids(
        &self,
        tenant: &str,
        resource: EgilResource,
    ) -> Result<Vec<String>, StoreError> {
        let op = format!("egil ids {resource}");
        let client = self.client(&op).await?;
        let rows = client
            .query(
                "SELECT id FROM egil_objects WHERE tenant = $1 AND resource = $2 ORDER BY id",
                &[&tenant, &resource.path()],
            )
            .await
            .map_err(|e| query_error(&op, &e))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub(crate) async fn egil_tenants(&self) -> Result<Vec<EgilTenant>, StoreError> {
        let op = "egil tenants";
        let client = self.client(op).await?;
        let rows = client
            .query(
                "SELECT tenant, organization, organization_id FROM egil_tenants ORDER BY tenant",
                &[],
            )
            .await
            .map_err(|e| query_error(op, &e))?;
        Ok(rows
            .iter()
            .map(|row| EgilTenant {
                id: row.get(0),
                organization: row.get(1),
                organization_id: row.get(2),
            })
            .collect())
    }
}
