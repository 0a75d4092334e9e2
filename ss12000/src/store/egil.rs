//! The store's EGIL tables: objects keyed (tenant, resource, id), and what is known of each
//! tenant. Each call is one transaction.

use super::{Backend, Store, StoreError};
use crate::egil::{EGIL_MAX_PAGE, EgilPage, EgilResource, EgilTenant};

/// The tables, created when missing by both back ends when a store opens (so a store made by
/// an older build gains them; the other tables are unchanged, so the schema version stays).
pub(crate) const SCHEMA_SQLITE: &str = "
CREATE TABLE IF NOT EXISTS egil_objects (
    tenant TEXT NOT NULL,
    resource TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, resource, id)
);
CREATE TABLE IF NOT EXISTS egil_tenants (
    tenant TEXT PRIMARY KEY NOT NULL,
    organization TEXT,
    organization_id TEXT,
    objects INTEGER NOT NULL DEFAULT 0
);
";

/// The PostgreSQL spelling of [`SCHEMA_SQLITE`] (byte-order collation, as the other tables).
pub(crate) const SCHEMA_POSTGRES: &str = r#"
CREATE TABLE IF NOT EXISTS egil_objects (
    tenant TEXT COLLATE "C" NOT NULL,
    resource TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, resource, id)
);
CREATE TABLE IF NOT EXISTS egil_tenants (
    tenant TEXT COLLATE "C" PRIMARY KEY,
    organization TEXT,
    organization_id TEXT,
    objects BIGINT NOT NULL DEFAULT 0
);
"#;

/// One write to the EGIL tables.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EgilWrite {
    /// Insert unless the id exists, or the tenant holds this many objects (`None`: no cap).
    Create(Option<u64>),
    /// Replace only when the id exists.
    Replace,
}

/// What became of a create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgilCreated {
    /// Stored.
    Created,
    /// The tenant already has an object of this resource with this id; nothing written.
    Exists,
    /// The tenant already holds the most objects allowed; nothing written.
    TenantFull,
}

fn check(tenant: &str, id: &str) -> Result<(), StoreError> {
    if tenant.is_empty() || id.is_empty() || tenant.len() > 1024 || id.len() > 1024 {
        return Err(StoreError::InvalidInput(
            "an EGIL tenant and id are 1 to 1024 bytes".to_owned(),
        ));
    }
    Ok(())
}

impl Store {
    /// Stores a new object of `tenant`, unless it has one of this resource with this id or
    /// already holds `max_objects` objects (of all resources; counted exactly, also under
    /// concurrent creates). Records the tenant's organization.
    pub async fn egil_create(
        &self,
        tenant: &EgilTenant,
        resource: EgilResource,
        id: &str,
        body: &str,
        max_objects: Option<u64>,
    ) -> Result<EgilCreated, StoreError> {
        check(&tenant.id, id)?;
        dispatch!(self.egil_write(EgilWrite::Create(max_objects), tenant, resource, id, body))
    }

    /// Replaces an existing object of `tenant`. `Ok(false)` (and nothing written) when the
    /// tenant has no object of this resource with this id.
    pub async fn egil_replace(
        &self,
        tenant: &EgilTenant,
        resource: EgilResource,
        id: &str,
        body: &str,
    ) -> Result<bool, StoreError> {
        check(&tenant.id, id)?;
        let outcome = dispatch!(self.egil_write(EgilWrite::Replace, tenant, resource, id, body))?;
        Ok(outcome == EgilCreated::Created)
    }

    /// Deletes an object of `tenant`; `Ok(false)` when there was none.
    pub async fn egil_delete(
        &self,
        tenant: &str,
        resource: EgilResource,
        id: &str,
    ) -> Result<bool, StoreError> {
        check(tenant, id)?;
        dispatch!(self.egil_delete(tenant, resource, id))
    }

    /// One object of `tenant`, as stored.
    pub async fn egil_get(
        &self,
        tenant: &str,
        resource: EgilResource,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        check(tenant, id)?;
        dispatch!(self.egil_get(tenant, resource, id))
    }

    /// A page of `tenant`'s objects of `resource` ordered by id: `limit` (at most
    /// [`EGIL_MAX_PAGE`]) objects after skipping `offset`, with the total count.
    pub async fn egil_list(
        &self,
        tenant: &str,
        resource: EgilResource,
        offset: u64,
        limit: usize,
    ) -> Result<EgilPage, StoreError> {
        let limit = limit.min(EGIL_MAX_PAGE);
        dispatch!(self.egil_list(tenant, resource, offset, limit))
    }

    /// Every id `tenant` has of `resource`, ordered (for reference checks).
    pub async fn egil_ids(
        &self,
        tenant: &str,
        resource: EgilResource,
    ) -> Result<Vec<String>, StoreError> {
        dispatch!(self.egil_ids(tenant, resource))
    }

    /// How many objects (of all resources) `tenant` holds.
    pub async fn egil_count(&self, tenant: &str) -> Result<u64, StoreError> {
        dispatch!(self.egil_count(tenant))
    }

    /// Every tenant that has written, with its organization, ordered by id.
    pub async fn egil_tenants(&self) -> Result<Vec<EgilTenant>, StoreError> {
        dispatch!(self.egil_tenants())
    }
}
