//! GNAP token exchange with Skolverket's authorization server (RFC 9635 as the SUNET auth
//! server speaks it, PROTOCOL-NOTES §3).
//!
//! A [`TokenClient`] asks the server's `/transaction` endpoint for a bearer token per access
//! type and set of locations, over an mTLS connection the caller set up (client certificate
//! from the federation, server pinned from the metadata). Tokens are cached until their
//! expiry minus a margin; concurrent callers asking for the same access share one request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::client::error_chain;

/// Access type of Skolverket's Provisioning API (push).
pub const PROVISIONING_API: &str = "provisioning-api";
/// Access type for webhooks from a school to Skolverket's SS 12000 client.
pub const SS12000_CLIENT: &str = "ss12000-client";
/// Access type of Skolverket's SS 12000 client calling a school's API.
pub const SS12000_API: &str = "ss12000-api";

/// How long before `exp` a cached token is no longer handed out, by default.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(60);

/// Longest excerpt of a non-JSON answer kept in [`TokenError::NotJson`].
const EXCERPT_BYTES: usize = 200;

/// What a token is for: one access type and the locations (API base URLs) it covers.
///
/// Locations are kept sorted and without duplicates, so two requests naming the same
/// locations in another order share a cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessRequest {
    access_type: String,
    locations: Vec<String>,
}

impl AccessRequest {
    /// An access request for `access_type` (`provisioning-api`, …) at `locations`.
    pub fn new(
        access_type: impl Into<String>,
        locations: impl IntoIterator<Item = impl Into<String>>,
    ) -> AccessRequest {
        let mut locations: Vec<String> = locations.into_iter().map(Into::into).collect();
        locations.sort();
        locations.dedup();
        AccessRequest {
            access_type: access_type.into(),
            locations,
        }
    }

    /// The access type.
    pub fn access_type(&self) -> &str {
        &self.access_type
    }

    /// The locations, sorted.
    pub fn locations(&self) -> &[String] {
        &self.locations
    }

    /// The GNAP request body for this access, with `client.key` = the client's entity id.
    pub fn transaction_body(&self, client_key: &str) -> Value {
        json!({
            "access_token": [{
                "access": [{"type": self.access_type, "locations": self.locations}],
                "flags": ["bearer"],
            }],
            "client": {"key": client_key},
        })
    }
}

/// A bearer token and when it expires. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<str>,
    expires_at: SystemTime,
    access: Value,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("access", &self.access)
            .finish()
    }
}

impl AccessToken {
    /// The token (a JWT), for an `Authorization: Bearer` header.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// When the server says it expires (`exp` of the JWT, or now + `expires_in`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Seconds since the Unix epoch of [`Self::expires_at`].
    pub fn expires_at_unix(&self) -> u64 {
        self.expires_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// The `access` array the server granted (an echo of the request on the SUNET server).
    pub fn access(&self) -> &Value {
        &self.access
    }

    /// Whether the token can still be handed out at `now` with `margin` to spare.
    fn fresh(&self, now: SystemTime, margin: Duration) -> bool {
        now + margin < self.expires_at
    }
}

/// Why no token was obtained.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The server refused to authenticate the client (`request_denied`): the certificate is not
    /// the one the metadata lists for `client.key`, or the entity is unknown.
    #[error("the authorization server denied the request (request_denied): {description}")]
    RequestDenied {
        /// The server's description.
        description: String,
    },
    /// The server found the request invalid (`invalid_request`): malformed, no `bearer` flag,
    /// or an expired client certificate.
    #[error(
        "the authorization server rejected the request as invalid (HTTP {status}): {description}"
    )]
    InvalidRequest {
        /// HTTP status (400 or 401).
        status: u16,
        /// The server's description.
        description: String,
    },
    /// Another GNAP error code.
    #[error("the authorization server answered HTTP {status} with error `{code}`: {description}")]
    Other {
        /// HTTP status.
        status: u16,
        /// The GNAP error code.
        code: String,
        /// The server's description.
        description: String,
    },
    /// The answer was not JSON (a proxy's error page, a plain-text 500).
    #[error(
        "the authorization server answered HTTP {status} with a body that is not JSON: {body_excerpt:?}"
    )]
    NotJson {
        /// HTTP status.
        status: u16,
        /// The first bytes of the body (lossy UTF-8).
        body_excerpt: String,
    },
    /// JSON, but not a GNAP grant or error (no `access_token.value`, no usable expiry).
    #[error("the authorization server's answer (HTTP {status}) is not a usable grant: {reason}")]
    Malformed {
        /// HTTP status.
        status: u16,
        /// What was missing or wrong.
        reason: String,
    },
    /// The request could not be sent or the answer not read (TLS, pin mismatch, timeout).
    #[error("cannot reach the authorization server at {url}: {message}")]
    Transport {
        /// The transaction URL.
        url: String,
        /// The error chain.
        message: String,
    },
}

/// The transaction endpoint for a server's metadata `base_uri`: the URI itself when its path
/// already ends in `/transaction` (as the SUNET server is listed), else `base_uri` +
/// `transaction`.
pub fn transaction_url(base_uri: &str) -> Result<reqwest::Url, url_error::InvalidUrl> {
    let url = reqwest::Url::parse(base_uri)
        .map_err(|e| url_error::InvalidUrl(format!("`{base_uri}`: {e}")))?;
    transaction_url_of(url)
}

/// [`transaction_url`] for a `base_uri` that is already a URL (a discovered server's).
pub fn transaction_url_of(mut url: reqwest::Url) -> Result<reqwest::Url, url_error::InvalidUrl> {
    let base_uri = url.to_string();
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(url_error::InvalidUrl(format!(
            "`{base_uri}`: not an http(s) URL"
        )));
    }
    if url.path().trim_end_matches('/').ends_with("/transaction") {
        return Ok(url);
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.join("transaction")
        .map_err(|e| url_error::InvalidUrl(format!("`{base_uri}`: {e}")))
}

/// The error of [`transaction_url`].
pub mod url_error {
    /// A URL that cannot name an authorization server.
    #[derive(Debug, Clone, thiserror::Error)]
    #[error("invalid authorization server URL {0}")]
    pub struct InvalidUrl(pub String);
}

/// Why [`TokenClient::discover`] found no usable authorization server.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// No (or no unique) server tagged `gnapv1`, or no HTTP client for it.
    #[error("authorization server (tag gnapv1): {0}")]
    Client(#[from] crate::ClientError),
    /// Its `base_uri` cannot be a transaction URL.
    #[error("authorization server (tag gnapv1): {0}")]
    Url(#[from] url_error::InvalidUrl),
}

type Slot = Arc<tokio::sync::Mutex<Option<AccessToken>>>;

/// Obtains and caches GNAP bearer tokens. Cheap to share behind an `Arc`.
pub struct TokenClient {
    http: reqwest::Client,
    url: reqwest::Url,
    client_key: String,
    margin: Duration,
    slots: Mutex<HashMap<AccessRequest, Slot>>,
    requests: AtomicU64,
}

impl std::fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClient")
            .field("url", &self.url.as_str())
            .field("client_key", &self.client_key)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl TokenClient {
    /// A client posting to `transaction_url` (see [`transaction_url`]) with `http`, which must
    /// present the federation client certificate and pin the server. `client_key` is the
    /// client's own `entity_id`.
    pub fn new(
        http: reqwest::Client,
        transaction_url: reqwest::Url,
        client_key: impl Into<String>,
    ) -> TokenClient {
        TokenClient {
            http,
            url: transaction_url,
            client_key: client_key.into(),
            margin: DEFAULT_MARGIN,
            slots: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        }
    }

    /// A client of the federation's authorization server: the server tagged `gnapv1` in the
    /// metadata (exactly one must be listed), reached with the member's certificate and pinned
    /// from the current metadata at every handshake. `client_key` is the member's `entity_id`.
    pub fn discover(
        source: Arc<dyn fedtls::snapshot::SnapshotSource>,
        identity: crate::Identity,
        client_key: impl Into<String>,
    ) -> Result<TokenClient, DiscoverError> {
        let client = crate::FederationClient::builder(source, identity)
            .discover(crate::ServerQuery::tag("gnapv1"), crate::Choice::default())
            .build()?;
        let url = transaction_url_of(client.base_uri().clone())?;
        Ok(TokenClient::new(
            client.sender().http().clone(),
            url,
            client_key,
        ))
    }

    /// Stops handing out a cached token `margin` before it expires (default 60 s).
    pub fn with_margin(mut self, margin: Duration) -> TokenClient {
        self.margin = margin;
        self
    }

    /// The transaction URL.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// How many transaction requests this client has sent (cache hits send none).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// A token for `access`: the cached one while it is fresh, else a new one. Callers asking
    /// for the same access at the same time wait for one request.
    pub async fn token(&self, access: &AccessRequest) -> Result<AccessToken, TokenError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(slots.entry(access.clone()).or_default())
        };
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && token.fresh(SystemTime::now(), self.margin)
        {
            return Ok(token.clone());
        }
        let token = self.request(access).await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Forgets the cached token for `access` (after a resource server refused it).
    pub async fn invalidate(&self, access: &AccessRequest) {
        let slot = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.get(access).cloned()
        };
        if let Some(slot) = slot {
            *slot.lock().await = None;
        }
    }

    async fn request(&self, access: &AccessRequest) -> Result<AccessToken, TokenError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let transport = |e: reqwest::Error| TokenError::Transport {
            url: self.url.to_string(),
            message: error_chain(&e),
        };
        tracing::debug!(url = %self.url, access_type = access.access_type(), "requesting a GNAP token");
        let response = self
            .http
            .post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(access.transaction_body(&self.client_key).to_string())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        parse_answer(status, &body, SystemTime::now())
    }
}

/// Interprets the server's answer (status and body) received at `now`.
fn parse_answer(status: u16, body: &[u8], now: SystemTime) -> Result<AccessToken, TokenError> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(TokenError::NotJson {
            status,
            body_excerpt: excerpt(body),
        });
    };
    if let Some(error) = value.get("error") {
        let (code, description) = match error {
            Value::String(code) => (
                code.clone(),
                value
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            other => (
                other
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                other
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        };
        return Err(match code.as_str() {
            "request_denied" => TokenError::RequestDenied { description },
            "invalid_request" => TokenError::InvalidRequest {
                status,
                description,
            },
            _ => TokenError::Other {
                status,
                code,
                description,
            },
        });
    }
    let malformed = |reason: &str| TokenError::Malformed {
        status,
        reason: reason.to_owned(),
    };
    if !(200..300).contains(&status) {
        return Err(malformed("an error status without a GNAP `error` member"));
    }
    // `access_token` is an object, or a one-element array when several were requested.
    let grant = match value.get("access_token") {
        Some(Value::Array(items)) => items.first(),
        other => other,
    }
    .ok_or_else(|| malformed("no `access_token` member"))?;
    let token = grant
        .get("value")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| malformed("no `access_token.value`"))?;
    let expires_at = jwt_exp(token)
        .map(|exp| UNIX_EPOCH + Duration::from_secs(exp))
        .or_else(|| {
            grant
                .get("expires_in")
                .and_then(Value::as_u64)
                .map(|secs| now + Duration::from_secs(secs))
        })
        .ok_or_else(|| malformed("neither a JWT `exp` nor `expires_in`"))?;
    Ok(AccessToken {
        value: Arc::from(token),
        expires_at,
        access: grant.get("access").cloned().unwrap_or(Value::Null),
    })
}

/// The `exp` claim of a JWT, read without verifying the signature (the client only needs it
/// to know when to ask again; the resource server verifies the token).
pub fn jwt_exp(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    match claims.get("exp")? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        _ => None,
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &Value) -> String {
        let b = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b(br#"{"alg":"ES256"}"#),
            b(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn grant_object_or_array_with_exp_from_the_jwt() {
        let token = jwt(&json!({"exp": 2_000_000_000u64}));
        for body in [
            json!({"access_token": {"value": token, "expires_in": 5}}),
            json!({"access_token": [{"value": token}]}),
        ] {
            let t = parse_answer(200, body.to_string().as_bytes(), UNIX_EPOCH).unwrap();
            assert_eq!(t.expires_at_unix(), 2_000_000_000);
            assert_eq!(t.value(), token);
        }
    }

    #[test]
    fn expires_in_when_the_token_is_opaque() {
        let body = json!({"access_token": {"value": "opaque", "expires_in": 100}});
        let t = parse_answer(200, body.to_string().as_bytes(), UNIX_EPOCH).unwrap();
        assert_eq!(t.expires_at_unix(), 100);
        assert!(!format!("{t:?}").contains("opaque"));
    }

    #[test]
    fn errors_are_typed() {
        let denied = json!({"error": {"code": "request_denied", "description": "no"}});
        assert!(matches!(
            parse_answer(401, denied.to_string().as_bytes(), UNIX_EPOCH),
            Err(TokenError::RequestDenied { description }) if description == "no"
        ));
        let invalid = json!({"error": {"code": "invalid_request", "description": "flags"}});
        assert!(matches!(
            parse_answer(400, invalid.to_string().as_bytes(), UNIX_EPOCH),
            Err(TokenError::InvalidRequest { status: 400, .. })
        ));
        assert!(matches!(
            parse_answer(500, b"Internal Server Error", UNIX_EPOCH),
            Err(TokenError::NotJson { status: 500, body_excerpt }) if body_excerpt == "Internal Server Error"
        ));
        assert!(matches!(
            parse_answer(200, b"{\"access_token\": {}}", UNIX_EPOCH),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            parse_answer(200, b"{\"access_token\": {\"value\": \"x\"}}", UNIX_EPOCH),
            Err(TokenError::Malformed { .. })
        ));
    }

    #[test]
    fn transaction_url_keeps_or_appends_the_path() {
        assert_eq!(
            transaction_url("https://nutid-auth.sunet.se/transaction")
                .unwrap()
                .as_str(),
            "https://nutid-auth.sunet.se/transaction"
        );
        assert_eq!(
            transaction_url("https://as.example/gnap").unwrap().as_str(),
            "https://as.example/gnap/transaction"
        );
        assert!(transaction_url("ftp://x/").is_err());
        assert!(transaction_url("not a url").is_err());
    }

    #[test]
    fn cache_key_ignores_location_order() {
        let a = AccessRequest::new("provisioning-api", ["b", "a", "a"]);
        let b = AccessRequest::new("provisioning-api", ["a", "b"]);
        assert_eq!(a, b);
        assert_eq!(a.locations(), ["a", "b"]);
    }
}
