//! The EGIL server: SS 12000:2018 over SCIM, as EgilSCIM pushes it and Windermere serves it
//! (`egilv1` in Moa; see `EGIL-NOTES.md` in the shared docs).
//!
//! - [`routes`]: the seven resource endpoints with the statuses EgilSCIM depends on, SCIM
//!   ListResponse paging, SCIM error bodies ([`error`]), and a per-tenant report of dangling
//!   references ([`references`]).
//! - [`validate`]: the members each resource needs; every other member is kept as sent.
//! - [`tenancy`]: the tenant is the authenticated client's federation entity, or the name of
//!   an API-key client; each object is stored under (tenant, resource, id) in the project's
//!   store (`ss12000::Store`, SQLite or PostgreSQL), each request one transaction.
//! - [`limit`]: the optional per-tenant rate limit that waits before refusing.
//! - A tenant's objects as SS 12000:2020 objects: `ss12000::egil::export`, behind
//!   `kontosynk-server export --egil-tenant`.

pub mod error;
pub mod limit;
pub mod references;
pub mod routes;
pub mod tenancy;
pub mod validate;

use std::sync::Arc;

use fedtls::tls::PeerIdentity;
use http::{Request, Response, StatusCode};
use ss12000::Store;

use kontosynk_framework::response::Body;
use kontosynk_framework::{Handler, RequestBody};

pub use error::ScimError;
pub use limit::{TenantLimit, WaitingLimiter};
pub use tenancy::ApiKeys;

/// Settings of the EGIL server.
#[derive(Debug, Clone)]
pub struct EgilConfig {
    /// The path the endpoints are under (the path of the server's `base_uri`; empty for `/`).
    pub base_path: String,
    /// Items in a `GET /X` page when the client gives no `count`.
    pub default_count: usize,
    /// The most items in one page.
    pub max_count: usize,
    /// The most dangling references listed by the report (all are counted).
    pub max_report: usize,
    /// Clients without FedTLS, identified by an API key (only on a listener that lets clients
    /// connect without a certificate).
    pub api_keys: Option<Arc<ApiKeys>>,
    /// The optional per-tenant rate limit.
    pub tenant_limit: Option<TenantLimit>,
    /// The most objects (of all resources) one tenant may hold; creates beyond get 507.
    pub max_objects_per_tenant: Option<u64>,
}

/// The default of [`EgilConfig::max_objects_per_tenant`]: far above the largest school
/// organizer (Stockholm: some 150,000 pupils and staff with their groups and activities).
pub const DEFAULT_MAX_OBJECTS_PER_TENANT: u64 = 5_000_000;

impl Default for EgilConfig {
    /// Mounted at `/`, 1,000 items per page by default and at most 10,000, 1,000 dangling
    /// references in a report, no API keys, no per-tenant rate limit,
    /// [`DEFAULT_MAX_OBJECTS_PER_TENANT`] objects per tenant.
    fn default() -> EgilConfig {
        EgilConfig {
            base_path: String::new(),
            default_count: 1_000,
            max_count: ss12000::EGIL_MAX_PAGE,
            max_report: 1_000,
            api_keys: None,
            tenant_limit: None,
            max_objects_per_tenant: Some(DEFAULT_MAX_OBJECTS_PER_TENANT),
        }
    }
}

/// The server: a store and its settings. Cheap to clone.
#[derive(Clone)]
pub struct EgilServer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: EgilConfig,
    limiter: Option<WaitingLimiter>,
}

impl EgilServer {
    /// A server over `store`.
    pub fn new(store: Store, mut config: EgilConfig) -> EgilServer {
        config.base_path = config.base_path.trim_end_matches('/').to_owned();
        if !config.base_path.is_empty() && !config.base_path.starts_with('/') {
            config.base_path.insert(0, '/');
        }
        config.max_count = config.max_count.clamp(1, ss12000::EGIL_MAX_PAGE);
        config.default_count = config.default_count.clamp(1, config.max_count);
        let limiter = config.tenant_limit.map(WaitingLimiter::new);
        EgilServer {
            inner: Arc::new(Inner {
                store,
                config,
                limiter,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &EgilConfig {
        &self.inner.config
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<RequestBody>) -> Response<Body> {
        let tenant = match self.tenant(&request) {
            Ok(tenant) => tenant,
            Err(err) => return err.into_response(),
        };
        if let Some(limiter) = &self.inner.limiter
            && let Err(err) = limiter.admit(&tenant.id).await
        {
            tracing::info!(tenant = %tenant.id, "EGIL request refused by the per-tenant rate limit");
            return err.into_response();
        }
        match routes::route(self, &tenant, request).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        }
    }

    /// The server as a framework [`Handler`].
    pub fn handler(&self) -> impl Handler {
        let server = self.clone();
        move |request: Request<RequestBody>| {
            let server = server.clone();
            async move { server.handle(request).await }
        }
    }

    /// The tenant of a request, failing closed: a FedTLS peer (the framework already applied
    /// its policy), else a known API key, else 401.
    fn tenant(&self, request: &Request<RequestBody>) -> Result<ss12000::EgilTenant, ScimError> {
        if let Some(peer) = request.extensions().get::<PeerIdentity>() {
            return Ok(tenancy::tenant_of_peer(peer));
        }
        let Some(keys) = &self.inner.config.api_keys else {
            return Err(ScimError::new(
                StatusCode::UNAUTHORIZED,
                "this server requires a FedTLS client certificate listed in the federation metadata",
            ));
        };
        match keys.client(request.headers()) {
            Some(name) => Ok(tenancy::tenant_of_api_client(name)),
            None => {
                let what = if request.headers().contains_key(keys.header()) {
                    "the API key is not known"
                } else {
                    "no API key"
                };
                tracing::info!(header = %keys.header(), "EGIL request refused: {what}");
                Err(ScimError::new(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "{what}: send the key you were given in the {} header, or connect with a FedTLS client certificate",
                        keys.header()
                    ),
                ))
            }
        }
    }
}
