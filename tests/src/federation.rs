//! THE test-federation set-up of the workspace: a federation on disk whose metadata can be
//! edited and re-signed, its verified snapshot, each party's TLS material, pinned mutual-TLS
//! clients, and servers on loopback ports.
//!
//! It is a module of `kontosynk-testbed` and is also compiled into `kontosynk-client`'s own
//! unit tests (with `#[path]`), which cannot depend on the testbed; so it uses only `fedtls`,
//! `kontosynk-framework` and `kontosynk-client`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use fedtls::snapshot::{Snapshot, SnapshotCell};
use fedtls::testfed::Party;
use fedtls::testfed::{self, FederationOptions, Resigner, TestFederation};
use fedtls::tls::{
    PinnedServerVerifier, ReloadableCertResolver, load_cert_chain, load_private_key,
};
use fedtls::verify::unix_now;
use kontosynk_framework::{BoundServer, Handler, ServerBuilder};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use kontosynk_client::client::Identity;

pub const SCHOOL: &str = "https://school.test.example";
pub const SUPPLIER: &str = "https://supplier.test.example/moa";
pub const AUTHORITY: &str = "https://auth.test.example";

/// A test federation whose metadata can be edited and re-signed.
pub struct Fed {
    pub dir: tempfile::TempDir,
    pub fed: TestFederation,
    /// Its signing key and trust anchor ([`Resigner::sign`], [`Resigner::verify_at`]).
    pub signer: Resigner,
    /// The payload to sign, edited by the setters below.
    pub payload: Map<String, Value>,
    /// The snapshot of the metadata as created, shared by servers started from this value.
    pub cell: Arc<SnapshotCell>,
}

impl Default for Fed {
    fn default() -> Self {
        Self::new()
    }
}

impl Fed {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fed = testfed::init(dir.path(), &FederationOptions::default()).unwrap();
        let signer = Resigner::load(&fed).unwrap();
        let payload = signer.payload.clone();
        let document = std::fs::read(&fed.metadata_jws).unwrap();
        let cell = Arc::new(SnapshotCell::with(
            signer.verify_at(&document, unix_now()).unwrap(),
        ));
        Self {
            dir,
            fed,
            signer,
            payload,
            cell,
        }
    }

    /// A party of the federation (panics on an unknown name: a typo in a test).
    pub fn party(&self, name: &str) -> &Party {
        self.fed
            .party(name)
            .unwrap_or_else(|| panic!("no party {name}"))
    }

    /// A certificate resolver serving `name`'s certificate.
    pub fn resolver(&self, name: &str) -> Arc<ReloadableCertResolver> {
        let party = self.party(name);
        Arc::new(
            ReloadableCertResolver::new(
                load_cert_chain(&party.cert).unwrap(),
                load_private_key(&party.key).unwrap(),
            )
            .unwrap(),
        )
    }

    /// An HTTP/1.1 client presenting `client`'s certificate (none for `None`) and pinning
    /// `server`'s.
    pub fn mtls_client_as(&self, client: Option<&str>, server: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls_config(client, server))
            .build()
            .unwrap()
    }

    /// A rustls client config (HTTP/1.1) presenting `client`'s certificate and pinning
    /// `server`'s.
    fn tls_config(&self, client: Option<&str>, server: &str) -> rustls::ClientConfig {
        let identity = client.map(|name| {
            let party = self.party(name);
            let chain = party.chain.clone().unwrap_or_else(|| party.cert.clone());
            (
                load_cert_chain(&chain).unwrap(),
                load_private_key(&party.key).unwrap(),
            )
        });
        let verifier = PinnedServerVerifier::new([self.party(server).pin]).into_arc();
        fedtls::tls::client_config(verifier, identity, &[b"http/1.1"]).unwrap()
    }

    /// An HTTP/1.1 client presenting `client`'s certificate and pinning `server`'s.
    pub fn mtls_client(&self, client: &str, server: &str) -> reqwest::Client {
        self.mtls_client_as(Some(client), server)
    }

    /// The metadata with every `gnapv1` server's `base_uri` moved to
    /// `https://localhost:{port}/transaction`, signed for an hour, as a file.
    pub fn metadata_with_auth_port(&self, port: u16) -> std::path::PathBuf {
        let mut payload = self.payload.clone();
        for entity in payload["entities"].as_array_mut().unwrap() {
            for server in entity["servers"].as_array_mut().into_iter().flatten() {
                let tagged = server["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "gnapv1"));
                if tagged {
                    server["base_uri"] =
                        serde_json::json!(format!("https://localhost:{port}/transaction"));
                }
            }
        }
        let path = self.fed.dir.join(format!("metadata-auth-{port}.jws"));
        std::fs::write(&path, self.sign_payload(&payload, unix_now(), 3600)).unwrap();
        path
    }

    fn entity_mut(&mut self, entity_id: &str) -> &mut Map<String, Value> {
        self.payload["entities"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["entity_id"] == entity_id)
            .and_then(Value::as_object_mut)
            .unwrap()
    }

    /// Points the entity's first server at `base_uri`.
    pub fn set_base_uri(&mut self, entity_id: &str, base_uri: &str) {
        self.entity_mut(entity_id)["servers"][0]["base_uri"] = Value::from(base_uri);
    }

    /// Replaces the pins of the entity's first server.
    pub fn set_server_pins(&mut self, entity_id: &str, pins: &[fedtls::Pin]) {
        let pins: Vec<Value> = pins
            .iter()
            .map(|p| serde_json::json!({"alg": "sha256", "digest": p.to_string()}))
            .collect();
        self.entity_mut(entity_id)["servers"][0]["pins"] = Value::from(pins);
    }

    /// Appends an entity (raw JSON).
    pub fn push_entity(&mut self, entity: Value) {
        self.payload["entities"]
            .as_array_mut()
            .unwrap()
            .push(entity);
    }

    /// The payload signed at `now` for `lifetime` seconds.
    pub fn sign_at(&self, now: i64, lifetime: i64) -> String {
        self.sign_payload(&self.payload, now, lifetime)
    }

    /// `payload` signed by the federation's key at `now` for `lifetime` seconds.
    pub fn sign_payload(&self, payload: &Map<String, Value>, now: i64, lifetime: i64) -> String {
        self.signer.sign(payload, now, lifetime).unwrap()
    }

    /// The payload as `edit` leaves it, signed now for `lifetime` seconds (the JWS bytes).
    pub fn signed(&self, edit: impl FnOnce(&mut Value), lifetime: i64) -> Vec<u8> {
        let mut payload = Value::Object(self.payload.clone());
        edit(&mut payload);
        let Value::Object(map) = payload else {
            panic!("the edited payload is not an object")
        };
        self.sign_payload(&map, unix_now(), lifetime).into_bytes()
    }

    /// The snapshot of a signed `document`, verified now against the federation's JWKS.
    pub fn snapshot_of(&self, document: &[u8]) -> Snapshot {
        self.signer.verify_at(document, unix_now()).unwrap()
    }

    /// A new snapshot cell holding the metadata as created (not shared with [`Fed::cell`]).
    pub fn fresh_cell(&self) -> Arc<SnapshotCell> {
        let document = std::fs::read(&self.fed.metadata_jws).unwrap();
        Arc::new(SnapshotCell::with(self.snapshot_of(&document)))
    }

    /// A TLS connector presenting `client`'s certificate (its chain when it has one; none for
    /// `None`) and pinning `server`'s, for tests that speak HTTP by hand.
    pub fn connector(&self, client: Option<&str>, server: &str) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::new(self.tls_config(client, server)))
    }

    /// The current payload, signed now for a day and verified.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_at(unix_now(), 86_400)
    }

    /// The payload signed at `now` for `lifetime` s, verified as of `now` (so it may be
    /// expired today).
    pub fn snapshot_at(&self, now: i64, lifetime: i64) -> Snapshot {
        let jws = self.sign_at(now, lifetime);
        self.signer.verify_at(jws.as_bytes(), now).unwrap()
    }

    /// A party's identity (cert + key).
    pub fn identity(&self, party: &str) -> Identity {
        let p = self.fed.party(party).unwrap();
        Identity::from_pem_files(&p.cert, &p.key).unwrap()
    }

    /// A party's certificate and key paths.
    pub fn files(&self, party: &str) -> (&Path, &Path) {
        let p = self.fed.party(party).unwrap();
        (&p.cert, &p.key)
    }

    /// [`serve`] as `party` (its certificate and key), checking clients against `cell`.
    pub async fn serve_as(
        &self,
        party: &str,
        cell: Arc<SnapshotCell>,
        handler: impl Handler,
    ) -> SocketAddr {
        let (cert, key) = self.files(party);
        serve(cell, cert, key, handler).await
    }
}

/// Starts a kontosynk-server on 127.0.0.1 with `party`'s certificate, checking clients
/// against `cell`. Runs until the test's runtime ends.
pub async fn serve(
    cell: Arc<SnapshotCell>,
    cert: &Path,
    key: &Path,
    handler: impl Handler,
) -> SocketAddr {
    let resolver = ReloadableCertResolver::new(
        load_cert_chain(cert).unwrap(),
        load_private_key(key).unwrap(),
    )
    .unwrap();
    let server = ServerBuilder::new(cell)
        .tls(Arc::new(resolver))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(handler, std::future::pending()));
    addr
}

/// A running server; stops when dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves `handler` on a bound server until the returned [`Running`] is dropped.
pub fn spawn<H: Handler>(server: BoundServer, handler: H) -> Running {
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(handler, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
    }
}

/// A self-signed certificate for `names` valid from `not_before` to `not_after` (Unix
/// seconds), written to `dir`; returns (cert path, key path, pin).
pub fn rcgen_cert(
    dir: &Path,
    stem: &str,
    names: &[&str],
    not_before: i64,
    not_after: i64,
) -> (std::path::PathBuf, std::path::PathBuf, fedtls::Pin) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, stem);
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let pin = fedtls::Pin::of_certificate(cert.der()).unwrap();
    (cert_path, key_path, pin)
}

/// A raw metadata entity with one server.
pub fn server_entity(
    entity_id: &str,
    org: &str,
    org_id: &str,
    base_uri: &str,
    pin: &fedtls::Pin,
    tag: &str,
) -> Value {
    serde_json::json!({
        "entity_id": entity_id,
        "organization": org,
        "organization_id": org_id,
        "issuers": [],
        "servers": [{
            "base_uri": base_uri,
            "pins": [{"alg": "sha256", "digest": pin.to_string()}],
            "tags": [tag]
        }]
    })
}
