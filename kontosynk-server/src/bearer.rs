//! Verification of bearer JWTs issued by an authorization server (Skolverket's SUNET auth
//! server, PROTOCOL-NOTES §3): the checks Skolverket requires of a school's SS 12000 API.
//!
//! A token is accepted when its ES256 signature verifies with the key its `kid` names in the
//! authorization server's JWKS, `nbf`/`exp` hold (with a small leeway), its `organization_id`
//! is the configured one, and an `ss12000-api` entry of `requested_access` lists this API's
//! base URL in `locations`. `iss` and `aud` are checked when configured. An unknown `kid`
//! triggers one rate-limited refresh of the JWKS (key rotation), then the token is refused.
//!
//! Failures map to HTTP the way RFC 6750 describes: 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"` for a missing, malformed, unverifiable or expired token, 403 with
//! `error="insufficient_scope"` for a valid token that does not grant this API.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The access type Skolverket's SS 12000 client requests for calling a school's API.
pub const SS12000_API_ACCESS: &str = "ss12000-api";

/// Where the authorization server's JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A local file (re-read on refresh).
    File(PathBuf),
    /// An `https://` URL (fetched with the webpki roots; `http://` only for loopback tests).
    Url(String),
}

impl std::str::FromStr for JwksSource {
    type Err = std::convert::Infallible;
    /// `https://…` or `http://…` is a URL, anything else a file path.
    fn from_str(text: &str) -> Result<JwksSource, Self::Err> {
        Ok(
            if text.starts_with("https://") || text.starts_with("http://") {
                JwksSource::Url(text.to_owned())
            } else {
                JwksSource::File(PathBuf::from(text))
            },
        )
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            JwksSource::Url(url) => f.write_str(url),
        }
    }
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct BearerConfig {
    /// The authorization server's signing keys.
    pub jwks: JwksSource,
    /// The required `organization_id` claim (Skolverket: `SE2021004185`).
    pub organization_id: String,
    /// This API's base URL, which an `ss12000-api` entry of `requested_access` must list.
    pub location: String,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud` (one of the token's audiences), when set.
    pub audience: Option<String>,
    /// Clock skew allowed on `nbf` and `exp`, in seconds.
    pub leeway_secs: u64,
    /// The JWKS is re-read at least this often.
    pub refresh_interval: Duration,
    /// An unknown `kid` re-reads the JWKS at most this often.
    pub min_refresh_interval: Duration,
    /// Extra CA certificates (a PEM file) trusted for an `https://` JWKS URL besides the
    /// webpki roots: e.g. the certificate of the project's own `kontosynk-server gnap`.
    pub jwks_ca: Option<PathBuf>,
}

impl BearerConfig {
    /// The defaults: 60 s leeway, hourly refresh, unknown-`kid` refresh at most every 30 s,
    /// only the webpki roots trusted for an https JWKS.
    pub fn new(jwks: JwksSource, organization_id: String, location: String) -> BearerConfig {
        BearerConfig {
            jwks,
            organization_id,
            location,
            issuer: None,
            audience: None,
            leeway_secs: 60,
            refresh_interval: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_secs(30),
            jwks_ca: None,
        }
    }
}

/// Why a token was refused (or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token: send Authorization: Bearer <JWT>")]
    Missing,
    /// Not a JWT, or a header/claim of the wrong shape.
    #[error("malformed bearer token: {0}")]
    Malformed(String),
    /// The token's `alg` is not ES256 (`none` and HMAC are never accepted).
    #[error("token algorithm {0} is not accepted; only ES256")]
    Algorithm(String),
    /// No key in the JWKS has the token's `kid`, even after a refresh.
    #[error("no key with kid {0:?} in the authorization server's JWKS")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the token signature does not verify")]
    Signature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `iss` or `aud` is not the configured one, or a required claim is missing.
    #[error("invalid token claims: {0}")]
    Claims(String),
    /// `organization_id` is not the configured organization.
    #[error("organization_id {found:?} is not allowed; this API accepts {expected}")]
    WrongOrganization {
        /// The token's value (`None` when absent).
        found: Option<String>,
        /// The configured value.
        expected: String,
    },
    /// No `ss12000-api` entry of `requested_access` lists this API's base URL.
    #[error("the token grants no ss12000-api access to {location}")]
    WrongLocation {
        /// This API's base URL.
        location: String,
    },
    /// The JWKS could not be read and no keys are known.
    #[error("the authorization server's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl BearerError {
    /// 401 for authentication failures, 403 for a valid token without access, 503 when the
    /// keys are unavailable.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BearerError::WrongOrganization { .. } | BearerError::WrongLocation { .. } => {
                http::StatusCode::FORBIDDEN
            }
            BearerError::KeysUnavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 error code: `invalid_request`, `invalid_token` or `insufficient_scope`.
    pub fn code(&self) -> &'static str {
        match self {
            BearerError::Missing => "invalid_request",
            BearerError::WrongOrganization { .. } | BearerError::WrongLocation { .. } => {
                "insufficient_scope"
            }
            BearerError::KeysUnavailable(_) => "temporarily_unavailable",
            _ => "invalid_token",
        }
    }

    /// The `WWW-Authenticate` value for this refusal.
    pub fn www_authenticate(&self) -> String {
        match self {
            // RFC 6750 §3.1: no error code when the request had no credentials.
            BearerError::Missing => "Bearer".to_owned(),
            _ => format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                self.code(),
                self.to_string().replace(['"', '\\'], "'")
            ),
        }
    }
}

/// The claims of an accepted token that callers use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BearerClaims {
    /// The issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// The client's federation entity id (the auth server sets it).
    #[serde(default)]
    pub entity_id: Option<String>,
    /// The client's organization id.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

impl BearerClaims {
    /// Who the token speaks for: `entity_id`, else `organization_id`, else `iss`.
    pub fn subject(&self) -> String {
        self.entity_id
            .clone()
            .or_else(|| self.organization_id.clone())
            .or_else(|| self.iss.clone())
            .unwrap_or_else(|| "-".to_owned())
    }
}

/// The claims checked here beyond what `jsonwebtoken` validates.
#[derive(Deserialize)]
struct AccessClaims {
    #[serde(default)]
    organization_id: Option<serde_json::Value>,
    #[serde(default)]
    requested_access: Option<serde_json::Value>,
}

struct Keys {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    without_kid: Vec<Arc<DecodingKey>>,
    loaded_at: Option<Instant>,
}

/// Verifies bearer tokens against a JWKS kept fresh in the background of requests.
/// Cheap to share (`Arc`).
pub struct BearerVerifier {
    config: BearerConfig,
    location: String,
    keys: RwLock<Arc<Keys>>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for BearerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerVerifier")
            .field("jwks", &self.config.jwks)
            .field("organization_id", &self.config.organization_id)
            .field("location", &self.location)
            .finish()
    }
}

impl BearerVerifier {
    /// A verifier; call [`load`](Self::load) before serving so a bad JWKS fails at startup.
    pub fn new(config: BearerConfig) -> Result<BearerVerifier, BearerError> {
        let tls = webpki_client_config(config.jwks_ca.as_deref())
            .map_err(|e| BearerError::KeysUnavailable(format!("TLS configuration: {e}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BearerError::KeysUnavailable(format!("HTTP client: {e}")))?;
        Ok(BearerVerifier {
            location: normalise_location(&config.location),
            config,
            keys: RwLock::new(Arc::new(Keys {
                by_kid: HashMap::new(),
                without_kid: Vec::new(),
                loaded_at: None,
            })),
            refresh: tokio::sync::Mutex::new(None),
            http,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BearerConfig {
        &self.config
    }

    /// Reads the JWKS now; returns how many usable keys it has.
    pub async fn load(&self) -> Result<usize, BearerError> {
        let mut last = self.refresh.lock().await;
        *last = Some(Instant::now());
        self.reload().await
    }

    async fn reload(&self) -> Result<usize, BearerError> {
        let bytes = match &self.config.jwks {
            JwksSource::File(path) => tokio::fs::read(path).await.map_err(|e| {
                BearerError::KeysUnavailable(format!("cannot read {}: {e}", path.display()))
            })?,
            JwksSource::Url(url) => {
                let response = self.http.get(url).send().await.map_err(|e| {
                    BearerError::KeysUnavailable(format!("cannot fetch {url}: {e}"))
                })?;
                if !response.status().is_success() {
                    return Err(BearerError::KeysUnavailable(format!(
                        "{url} answered {}",
                        response.status()
                    )));
                }
                response
                    .bytes()
                    .await
                    .map_err(|e| BearerError::KeysUnavailable(format!("cannot read {url}: {e}")))?
                    .to_vec()
            }
        };
        let keys = parse_jwks(&bytes)
            .map_err(|e| BearerError::KeysUnavailable(format!("{}: {e}", self.config.jwks)))?;
        let count = keys.by_kid.len() + keys.without_kid.len();
        tracing::info!(jwks = %self.config.jwks, keys = count, "authorization server keys loaded");
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(count)
    }

    /// Re-reads the JWKS when it is older than the refresh interval, or (when `forced`, for an
    /// unknown `kid`) when the last attempt is older than the minimum interval. A failed
    /// refresh keeps the current keys.
    async fn maybe_refresh(&self, forced: bool) {
        let Ok(mut last) = self.refresh.try_lock() else {
            // Another request is refreshing. For an unknown `kid`, wait for it: its keys may
            // have that kid. A routine refresh never holds up other requests: the current
            // keys serve until the new ones arrive.
            if forced {
                let _ = self.refresh.lock().await;
            }
            return;
        };
        let now = Instant::now();
        let due = match *last {
            None => true,
            Some(at) if forced => now.duration_since(at) >= self.config.min_refresh_interval,
            Some(at) => now.duration_since(at) >= self.config.refresh_interval,
        };
        if !due {
            return;
        }
        *last = Some(now);
        if let Err(err) = self.reload().await {
            tracing::warn!(error = %err, "JWKS refresh failed; keeping the current keys");
        }
    }

    fn current_keys(&self) -> Arc<Keys> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Verifies the value of an `Authorization` header (`None` when absent).
    pub async fn verify_header(
        &self,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<BearerClaims, BearerError> {
        let value = authorization.ok_or(BearerError::Missing)?;
        let text = value
            .to_str()
            .map_err(|_| BearerError::Malformed("the Authorization header is not ASCII".into()))?;
        let (scheme, token) = text.trim().split_once(' ').ok_or(BearerError::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(BearerError::Missing);
        }
        self.verify(token.trim()).await
    }

    /// Verifies one token and the access it grants.
    pub async fn verify(&self, token: &str) -> Result<BearerClaims, BearerError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| BearerError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::ES256 {
            return Err(BearerError::Algorithm(format!("{:?}", header.alg)));
        }
        let stale = self
            .current_keys()
            .loaded_at
            .is_none_or(|at| at.elapsed() >= self.config.refresh_interval);
        if stale {
            self.maybe_refresh(false).await;
        }
        let mut keys = self.current_keys();
        if let Some(kid) = &header.kid
            && !keys.by_kid.contains_key(kid)
        {
            self.maybe_refresh(true).await;
            keys = self.current_keys();
        }
        let candidates: Vec<Arc<DecodingKey>> = match &header.kid {
            Some(kid) => match keys.by_kid.get(kid) {
                Some(key) => vec![Arc::clone(key)],
                None if keys.by_kid.is_empty() && keys.without_kid.is_empty() => {
                    return Err(BearerError::KeysUnavailable(
                        "no keys have been loaded".into(),
                    ));
                }
                None => return Err(BearerError::UnknownKey(kid.clone())),
            },
            None => keys
                .by_kid
                .values()
                .chain(keys.without_kid.iter())
                .cloned()
                .collect(),
        };
        let validation = self.validation();
        let mut last_error = BearerError::Signature;
        for key in candidates {
            match jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation) {
                Ok(data) => return self.check_access(data.claims),
                Err(err) => {
                    last_error = map_jwt_error(&err);
                    if last_error != BearerError::Signature {
                        return Err(last_error);
                    }
                }
            }
        }
        Err(last_error)
    }

    fn validation(&self) -> Validation {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = self.config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &self.config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.config.issuer {
            validation.set_issuer(&[iss]);
        }
        validation
    }

    fn check_access(&self, claims: serde_json::Value) -> Result<BearerClaims, BearerError> {
        let access: AccessClaims = serde_json::from_value(claims.clone())
            .map_err(|e| BearerError::Malformed(format!("claims: {e}")))?;
        let organization = access
            .organization_id
            .as_ref()
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        if organization.as_deref() != Some(self.config.organization_id.as_str()) {
            return Err(BearerError::WrongOrganization {
                found: organization,
                expected: self.config.organization_id.clone(),
            });
        }
        if !grants_location(access.requested_access.as_ref(), &self.location) {
            return Err(BearerError::WrongLocation {
                location: self.config.location.clone(),
            });
        }
        serde_json::from_value(claims).map_err(|e| BearerError::Malformed(format!("claims: {e}")))
    }
}

/// Whether an `ss12000-api` entry of `requested_access` lists `location` (normalised).
fn grants_location(requested: Option<&serde_json::Value>, location: &str) -> bool {
    let entries: Vec<&serde_json::Value> = match requested {
        Some(serde_json::Value::Array(items)) => items.iter().collect(),
        Some(item @ serde_json::Value::Object(_)) => vec![item],
        _ => return false,
    };
    entries.iter().any(|entry| {
        entry.get("type").and_then(|t| t.as_str()) == Some(SS12000_API_ACCESS)
            && entry
                .get("locations")
                .and_then(|l| l.as_array())
                .is_some_and(|locations| {
                    locations
                        .iter()
                        .filter_map(|l| l.as_str())
                        .any(|l| normalise_location(l) == location)
                })
    })
}

/// A base URL compared loosely: scheme and host case-insensitive, trailing slashes ignored.
pub fn normalise_location(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => (String::new(), url),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let authority = authority.to_ascii_lowercase();
    let authority = match scheme.as_str() {
        "https" => authority
            .strip_suffix(":443")
            .unwrap_or(&authority)
            .to_owned(),
        "http" => authority
            .strip_suffix(":80")
            .unwrap_or(&authority)
            .to_owned(),
        _ => authority,
    };
    format!("{scheme}://{authority}{}", path.trim_end_matches('/'))
}

fn map_jwt_error(err: &jsonwebtoken::errors::Error) -> BearerError {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidSignature => BearerError::Signature,
        ErrorKind::ExpiredSignature => BearerError::Expired,
        ErrorKind::ImmatureSignature => BearerError::NotYetValid,
        ErrorKind::InvalidIssuer => BearerError::Claims("iss is not the expected issuer".into()),
        ErrorKind::InvalidAudience => BearerError::Claims("aud is not this API".into()),
        ErrorKind::MissingRequiredClaim(claim) => {
            BearerError::Claims(format!("the {claim} claim is required"))
        }
        ErrorKind::InvalidAlgorithm => BearerError::Algorithm("mismatch with the key".into()),
        _ => BearerError::Malformed(err.to_string()),
    }
}

/// Reads the EC P-256 keys of a JWKS; other key types are skipped, none at all is an error.
fn parse_jwks(bytes: &[u8]) -> Result<Keys, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let keys = value
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("no `keys` array")?;
    let mut by_kid = HashMap::new();
    let mut without_kid = Vec::new();
    for (index, jwk) in keys.iter().enumerate() {
        let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
        if field("kty") != Some("EC") || field("crv") != Some("P-256") {
            tracing::debug!(index, "JWKS key skipped: not EC P-256");
            continue;
        }
        if field("alg").is_some_and(|alg| alg != "ES256") {
            continue;
        }
        let (Some(x), Some(y)) = (field("x"), field("y")) else {
            return Err(format!("keys[{index}]: missing x or y"));
        };
        let key =
            DecodingKey::from_ec_components(x, y).map_err(|e| format!("keys[{index}]: {e}"))?;
        match field("kid") {
            Some(kid) => {
                by_kid.insert(kid.to_owned(), Arc::new(key));
            }
            None => without_kid.push(Arc::new(key)),
        }
    }
    if by_kid.is_empty() && without_kid.is_empty() {
        return Err("no EC P-256 (ES256) key".into());
    }
    Ok(Keys {
        by_kid,
        without_kid,
        loaded_at: Some(Instant::now()),
    })
}

/// Why [`webpki_client_config`] could not build a TLS client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsClientConfigError {
    /// The extra CA file could not be read or is not PEM.
    #[error("cannot read the CA file {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A certificate in the extra CA file is not usable as a trust anchor.
    #[error("CA file {}: {source}", path.display())]
    Anchor {
        /// The file.
        path: std::path::PathBuf,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
    /// The extra CA file holds no certificate.
    #[error("CA file {} holds no certificate", path.display())]
    Empty {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The TLS provider refused the protocol versions.
    #[error("TLS configuration: {0}")]
    Tls(#[source] rustls::Error),
}

/// A rustls client config (aws-lc-rs) trusting the webpki roots, plus the CA certificates in
/// `extra_ca` (PEM) when given. Used for JWKS fetches and webhook deliveries.
pub fn webpki_client_config(
    extra_ca: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, TlsClientConfigError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    if let Some(path) = extra_ca {
        let read = |source| TlsClientConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(read)?;
        let mut added = 0;
        for cert in certs {
            roots
                .add(cert.map_err(read)?)
                .map_err(|source| TlsClientConfigError::Anchor {
                    path: path.to_owned(),
                    source,
                })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsClientConfigError::Empty {
                path: path.to_owned(),
            });
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(fedtls::tls::provider())
        .with_protocol_versions(fedtls::tls::PROTOCOL_VERSIONS)
        .map_err(TlsClientConfigError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_compare_normalised() {
        assert_eq!(
            normalise_location("HTTPS://School.Example:443/ss12000/v2.0/"),
            "https://school.example/ss12000/v2.0"
        );
        let access = serde_json::json!([
            {"type": "provisioning-api", "locations": ["https://school.example/api"]},
            {"type": "ss12000-api", "locations": ["https://other.example", "https://school.example/api/"]}
        ]);
        let want = normalise_location("https://school.example/api");
        assert!(grants_location(Some(&access), &want));
        assert!(!grants_location(
            Some(&access),
            &normalise_location("https://school.example/api/v2")
        ));
        let wrong_type = serde_json::json!([{"type": "provisioning-api", "locations": ["https://school.example/api"]}]);
        assert!(!grants_location(Some(&wrong_type), &want));
        assert!(!grants_location(None, &want));
        assert!(!grants_location(
            Some(&serde_json::json!("ss12000-api")),
            &want
        ));
    }

    #[test]
    fn refusals_map_to_401_and_403() {
        assert_eq!(BearerError::Missing.status(), 401);
        assert_eq!(BearerError::Missing.www_authenticate(), "Bearer");
        assert_eq!(BearerError::Expired.status(), 401);
        assert!(
            BearerError::Expired
                .www_authenticate()
                .starts_with("Bearer error=\"invalid_token\"")
        );
        let wrong = BearerError::WrongLocation {
            location: "https://x".into(),
        };
        assert_eq!(wrong.status(), 403);
        assert!(wrong.www_authenticate().contains("insufficient_scope"));
    }

    #[test]
    fn jwks_without_p256_keys_is_refused() {
        assert!(parse_jwks(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }
}
