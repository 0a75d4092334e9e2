//! The SS 12000 API scenarios' servers: the project's SS 12000 API over a store, served over
//! real TLS on loopback with the federation's `school-server` certificate, clients with and
//! without certificates, sample objects, and bearer tokens from a stand-in authorization server.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fedtls::jwk::{Algorithm, Jwks, SigningKey};
use fedtls::verify::unix_now;
use kontosynk_framework::{Policy, ServerBuilder};
use kontosynk_server::bearer::webpki_client_config;
use kontosynk_server::ss12000::{
    ApiConfig, AuthMode, Ss12000Api, TargetPolicy, WebhookConfig, Webhooks,
};
use serde_json::{Value, json};
use ss12000::{Collection, Object, Store, Timestamp, WriteBatch};

use crate::federation::{Fed, Running, spawn};

/// Skolverket's organization id, the `organization_id` of its tokens.
pub const SKOLVERKET: &str = "SE2021004185";

/// A running API over TLS on loopback.
pub struct Harness {
    /// The federation it belongs to.
    pub fed: Fed,
    /// The API (its store, webhooks).
    pub api: Ss12000Api,
    /// Where it listens.
    pub addr: SocketAddr,
    _server: Running,
}

/// Fast retries for tests, to local targets: `http://` and loopback allowed (the opt-in a
/// private deployment would use).
pub fn fast_webhooks() -> WebhookConfig {
    WebhookConfig {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_secs(3600),
        targets: TargetPolicy {
            allow_http: true,
            allow_private: true,
        },
        ..WebhookConfig::default()
    }
}

/// Serves the API over `store` with `auth`, webhooks per [`fast_webhooks`] but to public
/// addresses only (as in production; `http://` allowed); `configure` adjusts the settings.
pub async fn start(
    store: Store,
    auth: impl FnOnce(&std::path::Path) -> AuthMode,
    configure: impl FnOnce(&mut ApiConfig),
) -> Harness {
    let webhooks = WebhookConfig {
        targets: TargetPolicy {
            allow_http: true,
            allow_private: false,
        },
        ..fast_webhooks()
    };
    start_with(store, auth, configure, webhooks).await
}

/// Like [`start`], with these webhook settings.
pub async fn start_with(
    store: Store,
    auth: impl FnOnce(&std::path::Path) -> AuthMode,
    configure: impl FnOnce(&mut ApiConfig),
    webhook_config: WebhookConfig,
) -> Harness {
    let fed = Fed::new();
    let resolver = fed.resolver("school-server");
    let auth = auth(fed.dir.path());
    let optional = auth.needs_optional_client_certificates();
    let mut config = ApiConfig::new(auth);
    configure(&mut config);
    let webhooks = Webhooks::new(
        store.clone(),
        webhook_config,
        webpki_client_config(None).unwrap(),
    )
    .unwrap();
    let api = Ss12000Api::new(store, config, webhooks);
    let bound = ServerBuilder::new(fed.cell.clone())
        .tls(resolver)
        .optional_client_certificates(optional)
        .policy(Policy {
            client_tags: vec!["egilv1".parse().unwrap()],
            ..Policy::default()
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = spawn(bound, api.handler());
    Harness {
        fed,
        api,
        addr: server.addr,
        _server: server,
    }
}

impl Harness {
    /// A keep-alive HTTPS client presenting `party`'s certificate (none for `None`),
    /// pinning the server.
    pub fn client(&self, party: Option<&str>) -> reqwest::Client {
        self.fed.mtls_client_as(party, "school-server")
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}

/// A person with a fresh id (or `id`), created and modified at `at`.
pub fn person(id: Option<&str>, at: Timestamp, given: &str) -> Object {
    let id = id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    Object::from_value(&json!({
        "id": id,
        "meta": {"created": at.to_string(), "modified": at.to_string()},
        "givenName": given,
        "familyName": "Testsson",
        "eduPersonPrincipalNames": [format!("{given}@school.example")],
        "civicNo": {"value": "200001012384", "nationality": "SE"},
        "extension": {"kept": true}
    }))
    .unwrap()
}

/// Stores `objects` in `collection` in one batch.
pub async fn put(store: &Store, collection: Collection, objects: &[Object]) {
    let mut batch = WriteBatch::new();
    for object in objects {
        batch.upsert(collection.clone(), object.clone());
    }
    store.apply(batch).await.unwrap();
}

/// Reads a JSON response: status and body.
pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// The authorization server of the bearer tests: an ES256 key and its JWKS file.
pub struct AuthServer {
    pub key: SigningKey,
    pub jwks_path: std::path::PathBuf,
}

impl AuthServer {
    /// A key with `kid`, its JWKS written to `dir/jwks.json`.
    pub fn new(dir: &std::path::Path, kid: &str) -> AuthServer {
        let key = SigningKey::generate(Algorithm::Es256, kid).unwrap();
        let jwks_path = dir.join("auth-jwks.json");
        let server = AuthServer { key, jwks_path };
        server.publish(&[&server.key]);
        server
    }

    /// Writes the JWKS holding `keys`.
    pub fn publish(&self, keys: &[&SigningKey]) {
        let jwks = Jwks::from_keys(keys.iter().map(|k| k.public_jwk()).collect());
        std::fs::write(&self.jwks_path, jwks.to_json()).unwrap();
    }
}

/// Skolverket-like claims for calling the API at `location`, valid for an hour.
pub fn claims(location: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": "https://nutid-auth-test.sunet.se",
        "iat": now, "nbf": now, "exp": now + 3600,
        "version": 1, "auth_source": "tlsfed",
        "entity_id": "https://skolverket.example/ss12000-client",
        "organization_id": SKOLVERKET,
        "requested_access": [{"type": "ss12000-api", "locations": [location]}]
    })
}

/// A compact JWS of `claims` signed by `key` with header `alg` (ES256 unless overridden).
pub fn token(key: &SigningKey, claims: &Value, alg: &str) -> String {
    let header = json!({"alg": alg, "kid": key.kid()});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}
