//! A GNAP (RFC 9635) authorization server for FedTLS federations: the token exchange of
//! Skolverket's authorization server (the SUNET auth server), so a federation can run its
//! own and tests have a faithful local stand-in.
//!
//! A client authenticated by mutual TLS (or by a trusted terminator's `Client-Cert`) posts a
//! grant request to `POST /transaction` naming itself in `client.key` (its `entity_id`); it
//! gets a bearer JWT signed with ES256 saying who it is (`entity_id`, `organization_id`,
//! `scopes`) and what it asked for (`requested_access`). The client certificate must belong to
//! that entity: its SPKI pin is one of the entity's client pins (FedTLS), or the certificate is
//! byte for byte one of the entity's `issuers` (the SUNET server's `cert#S256` rule), so one
//! metadata document works with both servers.
//!
//! Also served: `GET /.well-known/jwks.json` (the keys verifying issued tokens, including
//! previous keys after a rotation) and GNAP discovery at `OPTIONS /transaction` and
//! `GET /.well-known/gnap-as-rs`.
//!
//! ```no_run
//! # async fn run(store: fedtls::store::MetadataStore, resolver: std::sync::Arc<fedtls::tls::ReloadableCertResolver>) {
//! use std::sync::Arc;
//! use kontosynk_framework::ServerBuilder;
//! use kontosynk_server::gnap::{GnapConfig, GnapService, KeyRing, TokenKeys};
//!
//! let keys = TokenKeys::load("signing.jwk".as_ref(), &[]).expect("keys");
//! let service = GnapService::new(
//!     GnapConfig::new("https://auth.example.org"),
//!     Arc::new(KeyRing::new(keys)),
//!     Arc::new(store.clone()),
//! );
//! let server = GnapService::configure(ServerBuilder::with_store(store).tls(resolver))
//!     .bind("127.0.0.1:7443".parse().unwrap())
//!     .await
//!     .expect("bind");
//! server.serve(service.handler(), kontosynk_framework::shutdown::signal()).await;
//! # }
//! ```

mod error;
mod keys;
mod request;
mod token;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fedtls::snapshot::{Snapshot, SnapshotSource};
use fedtls::{CertThumbprint, Entity, Pin};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use kontosynk_framework::response::{self, Body};
use kontosynk_framework::{ClientCertificate, Handler, RequestBody, ServerBuilder};

pub use error::{ErrorCode, GnapError, refusal_response};
pub use keys::{KeyError, KeyRing, TokenKeys};
pub use request::{GrantLimits, GrantRequest, check_content_type, parse as parse_grant_request};
pub use token::{
    AUTH_SOURCE, TOKEN_VERSION, TokenFacts, claims as token_claims, sign as sign_token,
};

/// The grant endpoint's path.
pub const TRANSACTION_PATH: &str = "/transaction";
/// Where the token-verification keys are published.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// GNAP discovery by GET (the same document as `OPTIONS /transaction`).
pub const DISCOVERY_PATH: &str = "/.well-known/gnap-as-rs";
/// The token lifetime Skolverket's server uses: 10 hours.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(10 * 3600);
/// The default of [`GnapConfig::max_body`]: 64 KiB, far above a real grant request (~200
/// bytes).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// What the authorization server says about itself and puts in tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GnapConfig {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens, if any.
    pub audience: Option<String>,
    /// How long tokens are valid (`exp - iat`, and `expires_in`).
    pub lifetime: Duration,
    /// The absolute URL of `/transaction`, announced by discovery.
    pub grant_request_endpoint: String,
    /// The largest `POST /transaction` body read, in bytes (413 beyond it).
    pub max_body: usize,
    /// How much `access` a grant request may carry.
    pub limits: GrantLimits,
}

impl GnapConfig {
    /// Tokens issued by `issuer`, no audience, valid 10 hours; discovery announces
    /// `{issuer}/transaction`; bodies of at most 64 KiB, the default [`GrantLimits`].
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let grant_request_endpoint = format!("{}{TRANSACTION_PATH}", issuer.trim_end_matches('/'));
        Self {
            issuer,
            audience: None,
            lifetime: DEFAULT_LIFETIME,
            grant_request_endpoint,
            max_body: DEFAULT_MAX_BODY,
            limits: GrantLimits::default(),
        }
    }
}

/// The authorization server's request handling; cheap to clone.
#[derive(Clone)]
pub struct GnapService {
    inner: Arc<Inner>,
}

struct Inner {
    config: GnapConfig,
    keys: Arc<KeyRing>,
    source: Arc<dyn SnapshotSource>,
}

impl std::fmt::Debug for GnapService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GnapService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl GnapService {
    /// A service issuing tokens per `config`, signed with the keys in `keys`, for clients of
    /// the federation whose metadata `source` holds (the same source the server uses).
    pub fn new(config: GnapConfig, keys: Arc<KeyRing>, source: Arc<dyn SnapshotSource>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                keys,
                source,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GnapConfig {
        &self.inner.config
    }

    /// The signing keys (replace them to rotate without a restart).
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.inner.keys
    }

    /// Sets the server options the authorization server needs: clients whose certificate is
    /// one of their entity's issuers pass the handshake (SUNET's rule); expired client
    /// certificates pass the handshake so the handler can answer 401 `invalid_request` as
    /// documented; refusals before the handler become GNAP errors (401 `request_denied`).
    pub fn configure(builder: ServerBuilder) -> ServerBuilder {
        builder
            .accept_issuer_certificates(true)
            .check_validity(false)
            .refusal_response(Arc::new(refusal_response))
    }

    /// The handler to pass to [`BoundServer::serve`](kontosynk_framework::BoundServer::serve).
    pub fn handler(&self) -> impl Handler {
        let service = self.clone();
        move |request: Request<RequestBody>| {
            let service = service.clone();
            async move { service.handle(request).await }
        }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<RequestBody>) -> Response<Body> {
        let path = request.uri().path();
        let method = request.method().clone();
        match path {
            TRANSACTION_PATH => match method {
                Method::POST => match self.grant(request).await {
                    Ok(response) => response,
                    Err(error) => {
                        tracing::info!(status = %error.status, code = error.code.as_str(), description = %error.description, "grant refused");
                        error.into_response()
                    }
                },
                Method::OPTIONS => self.discovery(),
                _ => method_not_allowed("POST, OPTIONS"),
            },
            JWKS_PATH => match method {
                Method::GET | Method::HEAD => self.jwks(),
                _ => method_not_allowed("GET, HEAD"),
            },
            DISCOVERY_PATH => match method {
                Method::GET | Method::HEAD => self.discovery(),
                _ => method_not_allowed("GET, HEAD"),
            },
            _ => GnapError::with_status(
                StatusCode::NOT_FOUND,
                ErrorCode::InvalidRequest,
                format!("no such endpoint {path:?}: grant requests go to POST {TRANSACTION_PATH}"),
            )
            .into_response(),
        }
    }

    /// `POST /transaction`.
    async fn grant(&self, request: Request<RequestBody>) -> Result<Response<Body>, GnapError> {
        check_content_type(request.headers())?;
        let certificate = request.extensions().get::<ClientCertificate>().cloned();
        let grant = request::parse(&self.read_body(request).await?, &self.inner.config.limits)?;
        let Some(certificate) = certificate else {
            return Err(GnapError::denied(
                "no client certificate: authenticate with mutual TLS",
            ));
        };
        let Some(snapshot) = self.inner.source.current() else {
            return Err(GnapError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RequestDenied,
                "no valid federation metadata is available",
            ));
        };
        let now = fedtls::verify::unix_now();
        let entity = authenticate(&snapshot, &grant.client_key, &certificate.0, now)?;
        let keys = self.inner.keys.current();
        let config = &self.inner.config;
        let lifetime_secs = i64::try_from(config.lifetime.as_secs()).unwrap_or(i64::MAX);
        let facts = TokenFacts {
            issuer: &config.issuer,
            audience: config.audience.as_deref(),
            source: snapshot.claims().iss(),
            now,
            lifetime_secs,
            requested_access: &grant.access,
        };
        let jwt = token::sign(&keys, &token::claims(entity, &facts)).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            GnapError::with_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::RequestDenied,
                "the token could not be signed",
            )
        })?;
        tracing::info!(
            entity_id = %entity.entity_id,
            kid = keys.signing_key().kid(),
            expires_in = lifetime_secs,
            "access token issued"
        );
        let mut response = response::json(
            StatusCode::OK,
            &serde_json::json!({
                "access_token": {
                    "value": jwt,
                    "access": grant.access,
                    "expires_in": lifetime_secs,
                    "flags": ["bearer"],
                }
            }),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// The request body, at most [`GnapConfig::max_body`] bytes (413 `invalid_request`
    /// beyond it, before reading more).
    async fn read_body(&self, request: Request<RequestBody>) -> Result<Bytes, GnapError> {
        let max = self.inner.config.max_body;
        let too_large = || {
            GnapError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                format!(
                    "the grant request is larger than {max} bytes, the most this server reads \
                     (--max-transaction-body); a grant request is a few hundred bytes"
                ),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > u64::try_from(max).unwrap_or(u64::MAX)) {
            return Err(too_large());
        }
        match Limited::new(request.into_body(), max).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if is_length_limit(&*e) => Err(too_large()),
            Err(e) => Err(GnapError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                format!("the request body could not be read in full: {e}"),
            )),
        }
    }

    /// The RFC 9635 §9 discovery document.
    fn discovery(&self) -> Response<Body> {
        let mut response = response::json(
            StatusCode::OK,
            &serde_json::json!({
                "grant_request_endpoint": self.inner.config.grant_request_endpoint,
                "interaction_start_modes_supported": [],
                "interaction_finish_methods_supported": [],
                "key_proofs_supported": ["mtls"],
                "sub_id_formats_supported": [],
                "assertion_formats_supported": [],
                "key_rotation_supported": false,
            }),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        response
    }

    /// The public keys verifying issued tokens.
    fn jwks(&self) -> Response<Body> {
        let keys = self.inner.keys.current();
        let mut response = response::json_text(StatusCode::OK, keys.jwks_json().to_owned());
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        response
    }
}

/// The entity named by `client_key`, when the certificate belongs to it: its pin is one of
/// the entity's client pins, or it is one of the entity's issuer certificates. Then the
/// certificate's validity period is checked (401 `invalid_request` outside it).
pub fn authenticate<'a>(
    snapshot: &'a Snapshot,
    client_key: &str,
    certificate_der: &[u8],
    now: i64,
) -> Result<&'a Entity, GnapError> {
    let Some(entity) = snapshot.index().entity(client_key) else {
        return Err(GnapError::denied(format!(
            "client.key {client_key:?} is not an entity in the federation metadata"
        )));
    };
    let info = fedtls::tls::PresentedCertificate::read(certificate_der)
        .map_err(|e| GnapError::denied(format!("the client certificate is unreadable: {e}")))?;
    let pin: Pin = info.pin;
    let by_pin = entity.clients.iter().any(|c| c.pins.contains(&pin));
    let by_issuer = entity.has_issuer_thumbprint(&CertThumbprint::of_certificate(certificate_der));
    if !by_pin && !by_issuer {
        return Err(GnapError::denied(format!(
            "the client certificate (pin {pin}) is neither a client pin nor an issuer certificate of {client_key}"
        )));
    }
    if now < info.not_before {
        return Err(GnapError::expired_certificate(format!(
            "the client certificate is not valid before {}",
            fedtls::claims::Rfc3339(info.not_before)
        )));
    }
    if now >= info.not_after {
        return Err(GnapError::expired_certificate(format!(
            "the client certificate expired at {}",
            fedtls::claims::Rfc3339(info.not_after)
        )));
    }
    Ok(entity)
}

/// Whether a body error is a length limit (this one's or the framework's, nested inside).
fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = GnapError::with_status(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::InvalidRequest,
        format!("method not allowed here; use {allow}"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
