//! The SS 12000 API server over an [`ss12000::Store`]: the subset Skolverket's SS 12000
//! client uses (PROTOCOL-NOTES §4, `specs/ss12000-reference-api.openapi.yml`).
//!
//! - `GET /{collection}` with `limit`, `pageToken` and `meta.created.*`/`meta.modified.*`
//!   filters (keyset paging: see [`paging`]), `GET /{collection}/{id}`,
//!   `POST /{collection}/lookup` (`{"ids": [...]}`),
//! - `GET /deletedEntities`,
//! - `POST /subscriptions`, `PATCH|DELETE /subscriptions/{id}` with webhook delivery
//!   ([`webhooks`]) to public `https://` targets ([`targets`]); each client may hold
//!   [`ApiConfig::max_subscriptions`] and create them at [`ApiConfig::subscription_creates`],
//! - `POST /log`, `POST /statistics` (kept with [`ss12000::Store::append_record`]).
//!
//! Authentication ([`AuthMode`]): the FedTLS peer identity the framework established (its
//! [`kontosynk_framework::Policy`] already applied), a bearer JWT ([`crate::bearer`]), or either.
//! The API is mounted under the path of its base URL (`/ss12000/v2.0`), or at `/`.

pub mod error;
pub mod paging;
pub mod query;
mod records;
mod routes;
mod subscriptions;
pub mod targets;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use fedtls::tls::PeerIdentity;
use http::{Request, Response};
use ss12000::{Collection, Store};

use crate::bearer::BearerVerifier;
use kontosynk_framework::rate_limit::RateLimiter;
use kontosynk_framework::response::Body;
use kontosynk_framework::{Handler, RateLimit, RequestBody};

pub use error::ApiError;
pub use paging::PageLimits;
pub use targets::TargetPolicy;
pub use webhooks::{Change, WebhookConfig, Webhooks};

/// How clients authenticate to the API.
#[derive(Debug, Clone)]
pub enum AuthMode {
    /// FedTLS mutual TLS only (the server's `Policy` decides who).
    MutualTls,
    /// A bearer JWT only (the server must allow connections without a client certificate).
    Bearer(Arc<BearerVerifier>),
    /// Either a FedTLS client certificate or a bearer JWT.
    Either(Arc<BearerVerifier>),
}

impl AuthMode {
    /// Whether clients may connect without a certificate (bearer-only and either).
    pub fn needs_optional_client_certificates(&self) -> bool {
        !matches!(self, AuthMode::MutualTls)
    }
}

/// Who made a request, as far as the API is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The federation entity id (mTLS), or the token's `entity_id` (bearer): subscription
    /// owner.
    pub id: String,
    /// How the caller authenticated: `mtls` or `bearer`.
    pub method: &'static str,
}

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Who may call.
    pub auth: AuthMode,
    /// The path the API is mounted under (`/ss12000/v2.0`; empty or `/` for the root).
    pub base_path: String,
    /// Page sizes.
    pub pages: PageLimits,
    /// The longest a subscription lives before it must be extended with `PATCH`.
    pub subscription_lifetime: Duration,
    /// The most ids one `lookup` may ask for.
    pub max_lookup_ids: usize,
    /// The most live subscriptions one client (entity) may hold.
    pub max_subscriptions: usize,
    /// How fast one client (entity) may create subscriptions.
    pub subscription_creates: RateLimit,
}

/// The default of [`ApiConfig::max_subscriptions`].
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 10;

/// The default of [`ApiConfig::subscription_creates`] in subscriptions per minute (also the
/// burst).
pub const DEFAULT_SUBSCRIPTION_CREATES_PER_MINUTE: u32 = 10;

/// Creating `per_minute` subscriptions a minute, up to `per_minute` at once.
pub fn subscription_creates_per_minute(per_minute: u32) -> RateLimit {
    RateLimit {
        per_second: f64::from(per_minute.max(1)) / 60.0,
        burst: per_minute.max(1),
    }
}

impl ApiConfig {
    /// Defaults: mounted at `/`, 100/5,000 items per page, 30-day subscriptions, 1,000 ids per
    /// lookup, 10 subscriptions per client created at most 10 a minute.
    pub fn new(auth: AuthMode) -> ApiConfig {
        ApiConfig {
            auth,
            base_path: String::new(),
            pages: PageLimits::default(),
            subscription_lifetime: Duration::from_secs(30 * 86_400),
            max_lookup_ids: 1_000,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            subscription_creates: subscription_creates_per_minute(
                DEFAULT_SUBSCRIPTION_CREATES_PER_MINUTE,
            ),
        }
    }
}

/// The API: a store, its settings and the webhook dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Ss12000Api {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ApiConfig,
    webhooks: Webhooks,
    /// Per-client buckets of subscription creation.
    creates: RateLimiter,
    /// Serialises subscription creation, so two concurrent creates cannot both pass the cap.
    create_lock: tokio::sync::Mutex<()>,
}

impl Ss12000Api {
    /// The API over `store`, notifying subscribers through `webhooks`.
    pub fn new(store: Store, mut config: ApiConfig, webhooks: Webhooks) -> Ss12000Api {
        config.base_path = config.base_path.trim_end_matches('/').to_owned();
        if !config.base_path.is_empty() && !config.base_path.starts_with('/') {
            config.base_path.insert(0, '/');
        }
        let creates = RateLimiter::new(config.subscription_creates);
        Ss12000Api {
            inner: Arc::new(Inner {
                store,
                config,
                webhooks,
                creates,
                create_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The webhook dispatcher (to report writes made in this process).
    pub fn webhooks(&self) -> &Webhooks {
        &self.inner.webhooks
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// Whether `collection` is one of the five Skolverket uses or one the store has held
    /// (for the endpoints that name entity types).
    async fn is_known(&self, collection: &Collection) -> Result<bool, ApiError> {
        if Collection::SYNC_ORDER.contains(collection) {
            return Ok(true);
        }
        let held = self
            .store()
            .collections()
            .await
            .map_err(|e| ApiError::store(&e))?;
        Ok(held.contains(collection))
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<RequestBody>) -> Response<Body> {
        let caller = match self.authenticate(&request).await {
            Ok(caller) => caller,
            Err(err) => return err.into_response(),
        };
        match routes::route(self, &caller, request).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        }
    }

    /// The API as a server [`Handler`].
    pub fn handler(&self) -> impl Handler {
        let api = self.clone();
        move |request: Request<RequestBody>| {
            let api = api.clone();
            async move { api.handle(request).await }
        }
    }

    /// Decides who the caller is, failing closed: without an accepted identity, 401/403.
    async fn authenticate(&self, request: &Request<RequestBody>) -> Result<Caller, ApiError> {
        let peer = request.extensions().get::<PeerIdentity>();
        let bearer = match &self.inner.config.auth {
            AuthMode::MutualTls => {
                return peer
                    .map(|p| Caller {
                        id: p.entity_id.clone(),
                        method: "mtls",
                    })
                    .ok_or_else(|| {
                        ApiError::new(
                            http::StatusCode::UNAUTHORIZED,
                            "client_certificate_required",
                            "this API requires a FedTLS client certificate",
                        )
                    });
            }
            AuthMode::Either(verifier) => {
                if let Some(peer) = peer {
                    return Ok(Caller {
                        id: peer.entity_id.clone(),
                        method: "mtls",
                    });
                }
                verifier
            }
            AuthMode::Bearer(verifier) => verifier,
        };
        let header = request.headers().get(http::header::AUTHORIZATION);
        match bearer.verify_header(header).await {
            Ok(claims) => Ok(Caller {
                id: claims.subject(),
                method: "bearer",
            }),
            Err(err) => {
                tracing::info!(reason = %err, "bearer token refused");
                Err(ApiError {
                    status: err.status(),
                    code: err.code(),
                    challenge: Some(err.www_authenticate()),
                    message: err.to_string(),
                    retry_after: None,
                    allow: None,
                })
            }
        }
    }
}
