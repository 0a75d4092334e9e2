//! Shared set-up of the SS 12000 API tests: a test federation, the API served over real TLS on
//! loopback, clients with and without certificates, sample objects, bearer tokens.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fedtls::jwk::{Algorithm, Jwks, SigningKey};
use fedtls::snapshot::{Snapshot, SnapshotCell};
use fedtls::testfed::{FederationOptions, TestFederation};
use fedtls::tls::{
    PinnedServerVerifier, ReloadableCertResolver, client_config, load_cert_chain, load_private_key,
};
use fedtls::verify::{VerifyOptions, unix_now, verify_metadata};
use kontosynk_server::bearer::webpki_client_config;
use kontosynk_server::ss12000::{ApiConfig, AuthMode, Ss12000Api, WebhookConfig, Webhooks};
use kontosynk_server::{Policy, ServerBuilder};
use serde_json::{Value, json};
use ss12000::{Collection, Object, Store, Timestamp, WriteBatch};
use tokio::sync::oneshot;

pub const SKOLVERKET: &str = "SE2021004185";

/// A running API over TLS on loopback.
pub struct Harness {
    _dir: tempfile::TempDir,
    pub fed: TestFederation,
    pub api: Ss12000Api,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Fast retries for tests.
pub fn fast_webhooks() -> WebhookConfig {
    WebhookConfig {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_secs(3600),
    }
}

/// Serves the API over `store` with `auth`; `configure` adjusts the settings.
pub async fn start(
    store: Store,
    auth: impl FnOnce(&std::path::Path) -> AuthMode,
    configure: impl FnOnce(&mut ApiConfig),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let jwks = Jwks::from_json(&std::fs::read(&fed.jwks).unwrap()).unwrap();
    let document = std::fs::read(&fed.metadata_jws).unwrap();
    let verified = verify_metadata(&document, &jwks, &VerifyOptions::default()).unwrap();
    let cell = Arc::new(SnapshotCell::with(Snapshot::new(
        verified,
        "test",
        unix_now(),
    )));
    let server = fed.party("school-server").unwrap();
    let resolver = Arc::new(
        ReloadableCertResolver::new(
            load_cert_chain(&server.cert).unwrap(),
            load_private_key(&server.key).unwrap(),
        )
        .unwrap(),
    );
    let auth = auth(dir.path());
    let optional = auth.needs_optional_client_certificates();
    let mut config = ApiConfig::new(auth);
    config.allow_http_targets = true;
    configure(&mut config);
    let webhooks = Webhooks::new(
        store.clone(),
        fast_webhooks(),
        webpki_client_config(None).unwrap(),
    )
    .unwrap();
    let api = Ss12000Api::new(store, config, webhooks);
    let bound = ServerBuilder::new(cell)
        .tls(resolver)
        .optional_client_certificates(optional)
        .policy(Policy {
            client_tags: vec!["egilv1".into()],
            ..Policy::default()
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handler = api.handler();
    tokio::spawn(async move {
        bound
            .serve(handler, async move {
                let _ = stopped.await;
            })
            .await;
    });
    Harness {
        _dir: dir,
        fed,
        api,
        addr,
        stop: Some(stop),
    }
}

impl Harness {
    /// A keep-alive HTTPS client presenting `party`'s certificate (none for `None`),
    /// pinning the server.
    pub fn client(&self, party: Option<&str>) -> reqwest::Client {
        let identity = party.map(|name| {
            let party = self.fed.party(name).unwrap();
            let chain = party.chain.clone().unwrap_or_else(|| party.cert.clone());
            (
                load_cert_chain(&chain).unwrap(),
                load_private_key(&party.key).unwrap(),
            )
        });
        let verifier =
            PinnedServerVerifier::new([self.fed.party("school-server").unwrap().pin]).into_arc();
        let config = client_config(verifier, identity, &[b"http/1.1"]).unwrap();
        reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .build()
            .unwrap()
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
