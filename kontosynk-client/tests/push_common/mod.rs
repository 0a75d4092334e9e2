//! Shared set-up of the token and push tests: a test federation, the project's GNAP
//! authorization server on loopback (real mTLS), mTLS clients and the provisioning stand-in.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use fedtls::jwk::{Algorithm, Jwks, SigningKey};
use fedtls::snapshot::{Snapshot, SnapshotCell};
use fedtls::testfed::{FederationOptions, TestFederation};
use fedtls::tls::{
    PinnedServerVerifier, ReloadableCertResolver, load_cert_chain, load_private_key,
};
use fedtls::verify::{VerifyOptions, unix_now, verify_metadata};
use kontosynk_client::provisioning_standin::{ProvisioningStandIn, StandInConfig};
use kontosynk_client::token::{TokenClient, transaction_url};
use kontosynk_server::ServerBuilder;
use kontosynk_server::gnap::{GnapConfig, GnapService, KeyRing, TokenKeys};
use tokio::sync::oneshot;

/// A test federation on disk and its verified snapshot.
pub struct Fed {
    _dir: tempfile::TempDir,
    pub fed: TestFederation,
    pub cell: Arc<SnapshotCell>,
}

impl Fed {
    pub fn new() -> Fed {
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
        Fed {
            _dir: dir,
            fed,
            cell,
        }
    }

    pub fn party(&self, name: &str) -> &fedtls::testfed::Party {
        self.fed
            .party(name)
            .unwrap_or_else(|| panic!("no party {name}"))
    }

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

    /// The federation's metadata with the authorization server's `base_uri` moved to
    /// `https://localhost:{port}/transaction`, re-signed by the federation key, as a file.
    pub fn metadata_with_auth_port(&self, port: u16) -> std::path::PathBuf {
        let mut payload: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.fed.metadata_json).unwrap()).unwrap();
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
        let serde_json::Value::Object(map) = payload else {
            panic!("payload is not an object")
        };
        let key =
            SigningKey::from_jwk_json(&std::fs::read(&self.fed.signing_key).unwrap()).unwrap();
        let options = fedtls::jws::SignOptions {
            iss: self.fed.iss.clone(),
            lifetime_secs: 3600,
            now: unix_now(),
            format: fedtls::jws::JwsFormat::General,
            default_cache_ttl: 3600,
        };
        let signed = fedtls::jws::sign_metadata(&map, &[&key], &options).unwrap();
        let path = self.fed.dir.join(format!("metadata-auth-{port}.jws"));
        std::fs::write(&path, signed.into_bytes()).unwrap();
        path
    }

    /// An HTTP client presenting `client`'s certificate and pinning `server`'s.
    pub fn mtls_client(&self, client: &str, server: &str) -> reqwest::Client {
        let party = self.party(client);
        let chain = party.chain.clone().unwrap_or_else(|| party.cert.clone());
        let identity = (
            load_cert_chain(&chain).unwrap(),
            load_private_key(&party.key).unwrap(),
        );
        let verifier = PinnedServerVerifier::new([self.party(server).pin]).into_arc();
        let config = fedtls::tls::client_config(verifier, Some(identity), &[b"http/1.1"]).unwrap();
        reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .build()
            .unwrap()
    }
}

/// A running server; stops when dropped.
pub struct Running {
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

/// The project's GNAP server (`kontosynk_server::gnap`) with the `authserver` certificate.
pub struct Gnap {
    pub server: Running,
    pub jwks: jsonwebtoken::jwk::JwkSet,
}

pub async fn start_gnap(fed: &Fed) -> Gnap {
    let keys = TokenKeys::new(
        SigningKey::generate(Algorithm::Es256, "as-1").unwrap(),
        vec![],
    )
    .unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(keys.jwks_json()).unwrap();
    let service = GnapService::new(
        GnapConfig::new("https://auth.test.example"),
        Arc::new(KeyRing::new(keys)),
        fed.cell.clone(),
    );
    let builder = GnapService::configure(
        ServerBuilder::new(fed.cell.clone()).tls(fed.resolver("authserver")),
    );
    let server = builder.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    Gnap {
        server: spawn(server, service.handler()),
        jwks,
    }
}

pub fn spawn<H: kontosynk_server::Handler>(
    server: kontosynk_server::BoundServer,
    handler: H,
) -> Running {
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

/// A token client of `client` (a party name) for the GNAP server at `addr`.
pub fn token_client(fed: &Fed, client: &str, addr: SocketAddr) -> TokenClient {
    let http = fed.mtls_client(client, "authserver");
    let url = transaction_url(&format!("https://127.0.0.1:{}/transaction", addr.port())).unwrap();
    let entity = fed.party(client).entity_id.clone().unwrap_or_default();
    TokenClient::new(http, url, entity)
}

/// An HTTP client trusting only the stand-in's CA.
pub fn standin_http(standin: &ProvisioningStandIn) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(standin.ca_certificate().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(fedtls::tls::provider())
        .with_protocol_versions(fedtls::tls::PROTOCOL_VERSIONS)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

pub async fn start_standin(
    gnap: &Gnap,
    configure: impl FnOnce(&mut StandInConfig),
) -> ProvisioningStandIn {
    let mut config = StandInConfig::new(gnap.jwks.clone());
    configure(&mut config);
    ProvisioningStandIn::start(config).await.unwrap()
}
