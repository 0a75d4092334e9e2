//! A GNAP (RFC 9635) authorization server for FedTLS federations: the token exchange of
//! Skolverket's authorization server (the SUNET auth server), so a federation can run its
//! own and tests have a faithful local stand-in.
//!
//! A client authenticated by mutual TLS (or by a trusted terminator's `Client-Cert`) posts a
//! grant request to `POST /transaction` naming itself in `client.key` (its `entity_id`); it
//! gets a bearer JWT signed with ES256 saying who it is (`entity_id`, `organization_id`,
//! `scopes`) and what it asked for (`requested_access`). The client certificate must belong to
//! that entity by the [`ClientAuth`] rule in force: by default SUNET's (the certificate is byte
//! for byte one of the entity's `issuers`: their `cert#S256` thumbprints, SHA-256 over the
//! whole DER certificate, are equal), or FedTLS's (its SPKI pin is one of the entity's client
//! pins), or either.
//!
//! Also served, with or without a client certificate, as SUNET serves them:
//! `GET /.well-known/jwks.json` (the keys verifying issued tokens, including previous keys
//! after a rotation), `GET /.well-known/jwk.json` (the signing key's public JWK),
//! `GET /.well-known/public.pem` (the same key as PEM), `GET /status/healthy`, and GNAP
//! discovery at `OPTIONS /transaction` and `GET /.well-known/gnap-as-rs`.
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
/// The signing key's public JWK (SUNET's `/.well-known/jwk.json`).
pub const JWK_PATH: &str = "/.well-known/jwk.json";
/// The signing key's public key as PEM (SUNET's `/.well-known/public.pem`).
pub const PUBLIC_PEM_PATH: &str = "/.well-known/public.pem";
/// SUNET's health check: `{"status": "STATUS_OK_"}` (or `"STATUS_FAIL_"`).
pub const HEALTH_PATH: &str = "/status/healthy";
/// GNAP discovery by GET (the same document as `OPTIONS /transaction`).
pub const DISCOVERY_PATH: &str = "/.well-known/gnap-as-rs";
/// The token lifetime Skolverket's server uses: 10 hours.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(10 * 3600);
/// The default of [`GnapConfig::max_body`]: 64 KiB, far above a real grant request (~200
/// bytes).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// How a client certificate is tied to the entity named in `client.key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// The SUNET authorization server's rule (what Skolverket's production server does): the
    /// client certificate's `cert#S256` (base64url SHA-256 of the whole DER certificate)
    /// equals that of one of the entity's `issuers`, i.e. the client certificate itself is
    /// listed under `issuers`. Client pins are not looked at; a CA-issued leaf whose entity
    /// lists only the CA is refused. Its validity period is checked before the match.
    #[default]
    Sunet,
    /// The FedTLS rule: the certificate's SPKI pin is one of the entity's client pins.
    Pin,
    /// Either rule (one metadata document works with both kinds of server).
    Either,
}

impl ClientAuth {
    /// The name used on the command line: `sunet`, `pin` or `either`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sunet => "sunet",
            Self::Pin => "pin",
            Self::Either => "either",
        }
    }
}

impl std::fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client authentication rule name other than `sunet`, `pin` or `either`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown client authentication rule {0:?}: expected \"sunet\", \"pin\" or \"either\"")]
pub struct UnknownClientAuth(pub String);

impl std::str::FromStr for ClientAuth {
    type Err = UnknownClientAuth;

    /// Parses `sunet`, `pin` or `either` (case-insensitive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "sunet" => Ok(Self::Sunet),
            "pin" => Ok(Self::Pin),
            "either" => Ok(Self::Either),
            _ => Err(UnknownClientAuth(text.chars().take(64).collect())),
        }
    }
}

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
    /// How a client certificate is tied to its entity (SUNET's rule by default).
    pub client_auth: ClientAuth,
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
            client_auth: ClientAuth::default(),
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
    /// documented; clients without a certificate may connect, for the public endpoints (keys,
    /// discovery, health), and get 401 `request_denied` from `POST /transaction`; refusals
    /// before the handler become GNAP errors (401 `request_denied`).
    pub fn configure(builder: ServerBuilder) -> ServerBuilder {
        builder
            .accept_issuer_certificates(true)
            .check_validity(false)
            .optional_client_certificates(true)
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
            JWKS_PATH | JWK_PATH | PUBLIC_PEM_PATH | HEALTH_PATH => match method {
                Method::GET | Method::HEAD => self.public(path),
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
            // SUNET finds no entity in missing or expired metadata: 401 request_denied.
            return Err(GnapError::denied(
                "no valid federation metadata is available (missing or expired), so no client \
                 can be authenticated until it is",
            ));
        };
        let now = fedtls::verify::unix_now();
        let entity = authenticate(
            &snapshot,
            &grant.client_key,
            &certificate.0,
            now,
            self.inner.config.client_auth,
        )?;
        grant.check_token_request()?;
        let keys = self.inner.keys.current();
        let config = &self.inner.config;
        let lifetime_secs = i64::try_from(config.lifetime.as_secs()).unwrap_or(i64::MAX);
        let facts = TokenFacts {
            issuer: &config.issuer,
            audience: config.audience.as_deref(),
            // The `source` claim is the `iss` of the metadata that vouched for the entity.
            source: snapshot
                .source_at(snapshot.index().source_of_entity(entity))
                .iss
                .as_deref(),
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

    /// The public documents: the JWKS, the signing JWK, its PEM, and the health status.
    fn public(&self, path: &str) -> Response<Body> {
        let keys = self.inner.keys.current();
        let mut response = match path {
            JWK_PATH => response::json_text(StatusCode::OK, keys.signing_jwk_json()),
            PUBLIC_PEM_PATH => match keys.signing_public_pem() {
                Some(pem) => {
                    let mut response = Response::new(response::full(pem));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/x-pem-file"),
                    );
                    response
                }
                None => GnapError::with_status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::InvalidRequest,
                    "the signing key has no EC P-256 coordinates",
                )
                .into_response(),
            },
            HEALTH_PATH => {
                // SUNET answers 200 either way; FAIL when it cannot work (here: no valid
                // metadata, so no client can be authenticated).
                let status = if self.inner.source.current().is_some() {
                    "STATUS_OK_"
                } else {
                    "STATUS_FAIL_"
                };
                let mut response =
                    response::json(StatusCode::OK, &serde_json::json!({"status": status}));
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return response;
            }
            _ => response::json_text(StatusCode::OK, keys.jwks_json().to_owned()),
        };
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        response
    }
}

/// The entity named by `client_key`, when the certificate belongs to it by `rule`, and the
/// certificate is within its validity period (401 `invalid_request` outside it). Every other
/// refusal is 401 `request_denied` naming what is missing from the metadata.
///
/// Under [`ClientAuth::Sunet`] the order is SUNET's: the entity must exist and list issuers,
/// then the validity period is checked, then the certificate must be one of the issuers.
/// Under the other rules the certificate must belong to the entity before its validity is
/// looked at.
///
/// With several metadata sources, an entity id registered in more than one is tried in
/// precedence order and the first registration the certificate belongs to answers (as the
/// SUNET server accepts the same `entity_id` from each of its sources); when none does, the
/// first registration's refusal is returned.
pub fn authenticate<'a>(
    snapshot: &'a Snapshot,
    client_key: &str,
    certificate_der: &[u8],
    now: i64,
    rule: ClientAuth,
) -> Result<&'a Entity, GnapError> {
    let mut first_refusal = None;
    for entity in snapshot.index().entities_with_id(client_key) {
        match authenticate_registration(entity, client_key, certificate_der, now, rule) {
            Ok(()) => return Ok(entity),
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    Err(first_refusal.unwrap_or_else(|| {
        GnapError::denied(format!(
            "client.key {client_key:?} is not an entity in the federation metadata"
        ))
    }))
}

/// Whether the certificate belongs to this registration of `client_key` by `rule`.
fn authenticate_registration(
    entity: &Entity,
    client_key: &str,
    certificate_der: &[u8],
    now: i64,
    rule: ClientAuth,
) -> Result<(), GnapError> {
    let info = fedtls::tls::PresentedCertificate::read(certificate_der)
        .map_err(|e| GnapError::denied(format!("the client certificate is unreadable: {e}")))?;
    let pin: Pin = info.pin;
    let thumbprint = CertThumbprint::of_certificate(certificate_der);
    let by_pin = || entity.clients.iter().any(|c| c.pins.contains(&pin));
    let by_issuer = || entity.has_issuer_thumbprint(&thumbprint);
    let validity = || {
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
        Ok(())
    };
    match rule {
        ClientAuth::Sunet => {
            if entity.issuers.is_empty() {
                return Err(GnapError::denied(format!(
                    "{client_key} lists no issuers: this server (SUNET's rule) accepts a client \
                     certificate listed under the entity's issuers"
                )));
            }
            validity()?;
            if !by_issuer() {
                return Err(GnapError::denied(format!(
                    "the client certificate (cert#S256 {thumbprint}, pin {pin}) is not one of the \
                     issuers of {client_key}: this server (SUNET's rule, as Skolverket's) accepts \
                     only a client certificate listed byte for byte under issuers; add the \
                     client certificate itself (PEM) to the entity's issuers"
                )));
            }
        }
        ClientAuth::Pin | ClientAuth::Either => {
            let belongs = by_pin() || (rule == ClientAuth::Either && by_issuer());
            if !belongs {
                let what = if rule == ClientAuth::Pin {
                    "not a client pin"
                } else {
                    "neither a client pin nor an issuer certificate"
                };
                return Err(GnapError::denied(format!(
                    "the client certificate (pin {pin}) is not {what} of {client_key}"
                )));
            }
            validity()?;
        }
    }
    Ok(())
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
