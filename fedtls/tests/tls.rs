//! Real mutual-TLS handshakes over loopback with the pinned verifiers, against a test
//! federation made by `fedtls::testfed::init` and metadata verified into a `SnapshotCell`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fedtls::testfed::{FederationOptions, Resigner, TestFederation};
use fedtls::tls::{
    self, PeerIdentity, PeerRejection, PinnedClientVerifier, PinnedServerVerifier,
    ReloadableCertResolver,
};
use fedtls::{Pin, Snapshot, SnapshotCell, SnapshotSource};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, ServerConfig, SupportedProtocolVersion};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

// ---------------------------------------------------------------------------------------
// The federation

struct Fed {
    _dir: TempDir,
    fed: TestFederation,
    signer: Resigner,
    payload: Map<String, Value>,
}

impl Fed {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fed = fedtls::testfed::init(dir.path(), &FederationOptions::default()).unwrap();
        let signer = Resigner::load(&fed).unwrap();
        let payload = signer.payload.clone();
        Fed {
            _dir: dir,
            fed,
            signer,
            payload,
        }
    }

    fn pin(&self, party: &str) -> Pin {
        self.fed.party(party).unwrap().pin
    }

    /// The party's chain file when it has one (leaf + CA), else its certificate.
    fn chain(&self, party: &str) -> Vec<CertificateDer<'static>> {
        let party = self.fed.party(party).unwrap();
        tls::load_cert_chain(party.chain.as_deref().unwrap_or(&party.cert)).unwrap()
    }

    fn leaf_only(&self, party: &str) -> Vec<CertificateDer<'static>> {
        tls::load_cert_chain(&self.fed.party(party).unwrap().cert).unwrap()
    }

    fn key(&self, party: &str) -> PrivateKeyDer<'static> {
        tls::load_private_key(&self.fed.party(party).unwrap().key).unwrap()
    }

    fn identity(
        &self,
        party: &str,
    ) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        Some((self.chain(party), self.key(party)))
    }

    /// The published metadata.jws, verified.
    fn published(&self) -> Snapshot {
        let doc = std::fs::read(&self.fed.metadata_jws).unwrap();
        self.signer.verify_at(&doc, unix_now()).unwrap()
    }

    /// `payload` re-signed with the federation key at `now`, valid for `lifetime` seconds,
    /// and verified at `now + 1`.
    fn sign_at(&self, payload: &Map<String, Value>, now: i64, lifetime: i64) -> Snapshot {
        let jws = self.signer.sign(payload, now, lifetime).unwrap();
        let snapshot = self.signer.verify_at(jws.as_bytes(), now + 1).unwrap();
        assert!(
            snapshot.index().rejected().is_empty(),
            "{:?}",
            snapshot.index().rejected()
        );
        snapshot
    }

    fn sign(&self, payload: &Map<String, Value>) -> Snapshot {
        self.sign_at(payload, unix_now(), 3600)
    }

    fn cell(&self) -> Arc<SnapshotCell> {
        Arc::new(SnapshotCell::with(self.published()))
    }

    /// The server side: `school-server`'s certificate, clients checked by `verifier`.
    fn server(&self, verifier: PinnedClientVerifier) -> Arc<ServerConfig> {
        Arc::new(
            tls::server_config(
                verifier.into_arc(),
                self.chain("school-server"),
                self.key("school-server"),
                &[b"h2", b"http/1.1"],
            )
            .unwrap(),
        )
    }

    /// A client pinning `school-server`, authenticating as `party`.
    fn client(&self, party: &str) -> Arc<ClientConfig> {
        let verifier = PinnedServerVerifier::new([self.pin("school-server")]).into_arc();
        Arc::new(tls::client_config(verifier, self.identity(party), &[b"h2"]).unwrap())
    }

    fn entities_mut(payload: &mut Map<String, Value>) -> &mut Vec<Value> {
        payload
            .get_mut("entities")
            .and_then(Value::as_array_mut)
            .unwrap()
    }

    fn entity_mut<'a>(
        payload: &'a mut Map<String, Value>,
        entity_id: &str,
    ) -> &'a mut Map<String, Value> {
        Self::entities_mut(payload)
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|e| e["entity_id"] == entity_id)
            .unwrap()
    }
}

fn unix_now() -> i64 {
    fedtls::verify::unix_now()
}

const SCHOOL: &str = "https://school.test.example";
const SUPPLIER: &str = "https://supplier.test.example/moa";

/// A client entity listing `cert` (PEM) as its only client and `issuers` (PEM) as issuers.
fn client_entity(entity_id: &str, cert_der: &[u8], issuers: &[&str]) -> Value {
    let pin = Pin::of_certificate(cert_der).unwrap();
    json!({
        "entity_id": entity_id,
        "organization": "Extra AB",
        "organization_id": "SE5566999999",
        "issuers": issuers.iter().map(|pem| json!({"x509certificate": pem})).collect::<Vec<_>>(),
        "clients": [{"description": "extra", "pins": [{"alg": "sha256", "digest": pin.to_string()}], "tags": ["bolv1"]}],
    })
}

// ---------------------------------------------------------------------------------------
// One connection: server accepts, client says ping, server answers pong.

/// What the server saw of an accepted connection.
#[derive(Debug)]
struct Accepted {
    peer: Vec<CertificateDer<'static>>,
    version: Option<ProtocolVersion>,
    alpn: Option<Vec<u8>>,
}

struct Outcome {
    server: io::Result<Accepted>,
    client: io::Result<Vec<u8>>,
}

impl Outcome {
    #[track_caller]
    fn assert_ok(self) -> Accepted {
        let client = self.client.expect("client side failed");
        assert_eq!(client, b"pong");
        self.server.expect("server side failed")
    }

    /// Both sides failed; returns the server's error.
    #[track_caller]
    fn assert_server_refused(self) -> io::Error {
        assert!(self.client.is_err(), "client got {:?}", self.client);
        self.server.expect_err("server accepted")
    }

    /// Both sides failed; returns the client's error.
    #[track_caller]
    fn assert_client_refused(self) -> io::Error {
        assert!(self.server.is_err(), "server got {:?}", self.server);
        self.client.expect_err("client accepted")
    }
}

async fn exchange(server: Arc<ServerConfig>, client: Arc<ClientConfig>, name: &str) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();

    let serve = async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TlsAcceptor::from(server).accept(tcp).await?;
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).await?;
        let (_, conn) = tls.get_ref();
        let accepted = Accepted {
            peer: conn
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            version: conn.protocol_version(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        };
        tls.write_all(b"pong").await?;
        tls.shutdown().await?;
        Ok(accepted)
    };
    let call = async move {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = TlsConnector::from(client).connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply).await?;
        Ok(reply)
    };
    // A guard against a hung test, not a timing assertion.
    let guard = Duration::from_secs(20);
    let (server, client) = tokio::time::timeout(guard, async { tokio::join!(serve, call) })
        .await
        .expect("handshake hung");
    Outcome { server, client }
}

#[track_caller]
fn rejection(error: &io::Error) -> PeerRejection {
    PeerRejection::from_io(error)
        .cloned()
        .unwrap_or_else(|| panic!("not a PeerRejection: {error:?}"))
}

fn rustls_error(error: &io::Error) -> &rustls::Error {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {error:?}"))
}

fn client_with_versions(
    fed: &Fed,
    party: &str,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let (chain, key) = fed.identity(party).unwrap();
    let config = ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(
            PinnedServerVerifier::new([fed.pin("school-server")]).into_arc(),
        )
        .with_client_auth_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

// ---------------------------------------------------------------------------------------
// Server side: which clients get in

#[tokio::test]
async fn listed_self_signed_client_is_accepted_and_identified() {
    let fed = Fed::new();
    let cell = fed.cell();
    let server = fed.server(PinnedClientVerifier::new(cell.clone()));
    let accepted = exchange(server, fed.client("school-client"), "localhost")
        .await
        .assert_ok();
    assert_eq!(accepted.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(accepted.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(accepted.peer.len(), 1);

    let snapshot = cell.current().unwrap();
    let who = PeerIdentity::resolve(&snapshot, &accepted.peer[0]).unwrap();
    assert_eq!(who.entity_id, SCHOOL);
    assert_eq!(who.organization.as_deref(), Some("Exempla kommun"));
    let organization_id = who.organization_id.as_ref().map(|id| id.as_str());
    assert_eq!(organization_id, Some("SE2120009999"));
    assert_eq!(who.tags, ["egilv1"]);
    assert_eq!(
        who.scopes,
        ["exempla.test.example", "skola.exempla.test.example"]
    );
    assert_eq!(who.pin, fed.pin("school-client"));
    assert_eq!(who.generation, 1);
    assert_eq!(
        PeerIdentity::resolve_pin(&snapshot, &fed.pin("school-client")),
        Some(who.clone())
    );
    let json = serde_json::to_value(&who).unwrap();
    assert_eq!(json["pin"], fed.pin("school-client").to_string());
    // A server pin or an unlisted pin is no client.
    assert!(PeerIdentity::resolve_pin(&snapshot, &fed.pin("school-server")).is_none());
    assert!(PeerIdentity::resolve_pin(&snapshot, &fed.pin("unlisted-client")).is_none());
}

#[tokio::test]
async fn ca_issued_client_with_its_chain_is_accepted_with_and_without_the_issuer_check() {
    let fed = Fed::new();
    let cell = fed.cell();
    assert_eq!(fed.chain("supplier-client").len(), 2);
    for require in [false, true] {
        let verifier = PinnedClientVerifier::new(cell.clone()).require_issuer_chain(require);
        let accepted = exchange(
            fed.server(verifier),
            fed.client("supplier-client"),
            "localhost",
        )
        .await
        .assert_ok();
        assert_eq!(accepted.peer.len(), 2, "leaf and CA presented");
        let who = PeerIdentity::resolve(&cell.current().unwrap(), &accepted.peer[0]).unwrap();
        assert_eq!(who.entity_id, SUPPLIER);
        assert!(who.scopes.is_empty());
    }
    // The CA is listed under the entity's issuers, so the leaf alone is enough too.
    let verifier = PinnedClientVerifier::new(cell.clone()).require_issuer_chain(true);
    let leaf_only = Arc::new(
        tls::client_config(
            PinnedServerVerifier::new([fed.pin("school-server")]).into_arc(),
            Some((fed.leaf_only("supplier-client"), fed.key("supplier-client"))),
            &[],
        )
        .unwrap(),
    );
    exchange(fed.server(verifier), leaf_only, "localhost")
        .await
        .assert_ok();
}

#[tokio::test]
async fn unlisted_client_is_refused_in_the_handshake() {
    let fed = Fed::new();
    let server = fed.server(PinnedClientVerifier::new(fed.cell()));
    let err = exchange(server, fed.client("unlisted-client"), "localhost")
        .await
        .assert_server_refused();
    match rejection(&err) {
        PeerRejection::UnknownClientPin {
            pin,
            subject,
            generation,
        } => {
            assert_eq!(pin, fed.pin("unlisted-client"));
            assert!(subject.contains("unlisted-client"), "{subject}");
            assert_eq!(generation, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .contains(&fed.pin("unlisted-client").to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_certificate_is_not_a_client_pin() {
    let fed = Fed::new();
    let server = fed.server(PinnedClientVerifier::new(fed.cell()));
    let err = exchange(server, fed.client("supplier-server"), "localhost")
        .await
        .assert_server_refused();
    assert!(matches!(
        rejection(&err),
        PeerRejection::UnknownClientPin { .. }
    ));
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let fed = Fed::new();
    let server = fed.server(PinnedClientVerifier::new(fed.cell()));
    let verifier = PinnedServerVerifier::new([fed.pin("school-server")]).into_arc();
    let anonymous = Arc::new(tls::client_config(verifier, None, &[]).unwrap());
    let err = exchange(server, anonymous, "localhost")
        .await
        .assert_server_refused();
    assert!(
        matches!(rustls_error(&err), rustls::Error::NoCertificatesPresented),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_pin_removed_by_a_snapshot_swap_fails_new_handshakes() {
    let fed = Fed::new();
    let cell = fed.cell();
    let server = fed.server(PinnedClientVerifier::new(cell.clone()));
    // One client config throughout: it caches sessions, and a resumed handshake would skip
    // the pin check, so the server configs of fedtls::tls must not resume.
    let client = fed.client("school-client");
    exchange(server.clone(), client.clone(), "localhost")
        .await
        .assert_ok();
    exchange(server.clone(), client.clone(), "localhost")
        .await
        .assert_ok();

    let mut payload = fed.payload.clone();
    Fed::entity_mut(&mut payload, SCHOOL).remove("clients");
    let stored = cell.store(fed.sign(&payload));
    assert_eq!(stored.generation(), 2);

    let err = exchange(server.clone(), client.clone(), "localhost")
        .await
        .assert_server_refused();
    match rejection(&err) {
        PeerRejection::UnknownClientPin { generation, .. } => assert_eq!(generation, 2),
        other => panic!("{other:?}"),
    }
    // Other clients are unaffected.
    exchange(server, fed.client("supplier-client"), "localhost")
        .await
        .assert_ok();
}

#[tokio::test]
async fn expired_metadata_refuses_every_client_until_a_valid_snapshot_is_stored() {
    let fed = Fed::new();
    let cell = Arc::new(SnapshotCell::new());
    let server = fed.server(PinnedClientVerifier::new(cell.clone()));

    // Nothing loaded yet.
    let err = exchange(server.clone(), fed.client("school-client"), "localhost")
        .await
        .assert_server_refused();
    assert_eq!(rejection(&err), PeerRejection::NoMetadata);

    // Signed a while ago with a 10 s lifetime: expired now.
    let signed_at = unix_now() - 1000;
    cell.store(fed.sign_at(&fed.payload, signed_at, 10));
    assert!(cell.current().is_none() && cell.newest().is_some());
    for party in ["school-client", "supplier-client"] {
        let err = exchange(server.clone(), fed.client(party), "localhost")
            .await
            .assert_server_refused();
        assert_eq!(rejection(&err), PeerRejection::NoMetadata);
        assert!(err.to_string().contains("expired"), "{err}");
    }

    cell.store(fed.sign(&fed.payload));
    exchange(server, fed.client("school-client"), "localhost")
        .await
        .assert_ok();
}

#[tokio::test]
async fn issuer_chain_check_refuses_a_certificate_not_issued_by_the_entitys_issuers() {
    let fed = Fed::new();
    let pem = |party: &str| std::fs::read_to_string(&fed.fed.party(party).unwrap().cert).unwrap();
    let mut payload = fed.payload.clone();
    // The supplier's client pin stays; its CA is replaced by an unrelated certificate.
    Fed::entity_mut(&mut payload, SUPPLIER).insert(
        "issuers".into(),
        json!([{"x509certificate": pem("school-server")}]),
    );
    // The school no longer lists its client's self-signed certificate as an issuer.
    Fed::entity_mut(&mut payload, SCHOOL).insert(
        "issuers".into(),
        json!([{"x509certificate": pem("school-server")}]),
    );
    let cell = Arc::new(SnapshotCell::with(fed.sign(&payload)));

    let strict = || PinnedClientVerifier::new(cell.clone()).require_issuer_chain(true);
    for (party, entity_id) in [("supplier-client", SUPPLIER), ("school-client", SCHOOL)] {
        let err = exchange(fed.server(strict()), fed.client(party), "localhost")
            .await
            .assert_server_refused();
        match rejection(&err) {
            PeerRejection::NotIssuedByEntity {
                entity_id: got,
                pin,
                ..
            } => {
                assert_eq!(got, entity_id);
                assert_eq!(pin, fed.pin(party));
            }
            other => panic!("{other:?}"),
        }
        // Without the check the pin alone decides.
        exchange(
            fed.server(PinnedClientVerifier::new(cell.clone())),
            fed.client(party),
            "localhost",
        )
        .await
        .assert_ok();
    }
}

#[tokio::test]
async fn issuer_chain_check_follows_presented_intermediates_to_a_listed_root() {
    let fed = Fed::new();
    let ca = |cn: &str| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        (params, rcgen::KeyPair::generate().unwrap())
    };
    let (root_params, root_key) = ca("Extra Root CA");
    let root = root_params.clone().self_signed(&root_key).unwrap();
    let root_issuer = rcgen::Issuer::from_params(&root_params, &root_key);
    let (mid_params, mid_key) = ca("Extra Issuing CA");
    let mid = mid_params
        .clone()
        .signed_by(&mid_key, &root_issuer)
        .unwrap();
    let mid_issuer = rcgen::Issuer::from_params(&mid_params, &mid_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["extra.example".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "extra-client");
    let leaf = leaf_params.signed_by(&leaf_key, &mid_issuer).unwrap();

    let mut payload = fed.payload.clone();
    Fed::entities_mut(&mut payload).push(client_entity(
        "https://extra.test.example",
        leaf.der(),
        &[&root.pem()],
    ));
    let cell = Arc::new(SnapshotCell::with(fed.sign(&payload)));
    let server = fed.server(PinnedClientVerifier::new(cell.clone()).require_issuer_chain(true));
    let client = |chain: Vec<CertificateDer<'static>>| {
        let verifier = PinnedServerVerifier::new([fed.pin("school-server")]).into_arc();
        let key = PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        Arc::new(tls::client_config(verifier, Some((chain, key)), &[]).unwrap())
    };

    let accepted = exchange(
        server.clone(),
        client(vec![leaf.der().clone(), mid.der().clone()]),
        "localhost",
    )
    .await
    .assert_ok();
    assert_eq!(accepted.peer.len(), 2);
    // Without the intermediate there is no path to the listed root.
    let err = exchange(server, client(vec![leaf.der().clone()]), "localhost")
        .await
        .assert_server_refused();
    assert!(matches!(
        rejection(&err),
        PeerRejection::NotIssuedByEntity { .. }
    ));
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused_while_validity_is_checked() {
    let fed = Fed::new();
    let now = unix_now();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["expired.example".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "expired-client");
    params.not_before = time::OffsetDateTime::from_unix_timestamp(now - 10 * 86_400).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(now - 86_400).unwrap();
    let cert = params.self_signed(&key).unwrap();

    let mut payload = fed.payload.clone();
    Fed::entities_mut(&mut payload).push(client_entity(
        "https://expired.test.example",
        cert.der(),
        &[&cert.pem()],
    ));
    let cell = Arc::new(SnapshotCell::with(fed.sign(&payload)));
    let identity = || {
        Some((
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        ))
    };
    let client = || {
        let verifier = PinnedServerVerifier::new([fed.pin("school-server")]).into_arc();
        Arc::new(tls::client_config(verifier, identity(), &[]).unwrap())
    };

    let verifier = PinnedClientVerifier::new(cell.clone()).require_issuer_chain(true);
    let err = exchange(fed.server(verifier), client(), "localhost")
        .await
        .assert_server_refused();
    assert!(
        matches!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
        ),
        "{err:?}"
    );

    let lax = PinnedClientVerifier::new(cell.clone()).check_validity(false);
    let accepted = exchange(fed.server(lax), client(), "localhost")
        .await
        .assert_ok();
    let who = PeerIdentity::resolve(&cell.current().unwrap(), &accepted.peer[0]).unwrap();
    assert_eq!(who.entity_id, "https://expired.test.example");
    assert_eq!(who.tags, ["bolv1"]);
}

#[tokio::test]
async fn tls12_only_and_tls13_only_clients_both_work() {
    let fed = Fed::new();
    let server = fed.server(PinnedClientVerifier::new(fed.cell()).require_issuer_chain(true));
    for (versions, expected) in [
        (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
    ] {
        for party in ["school-client", "supplier-client"] {
            let accepted = exchange(
                server.clone(),
                client_with_versions(&fed, party, versions),
                "localhost",
            )
            .await
            .assert_ok();
            assert_eq!(accepted.version, Some(expected), "{party}");
        }
        // The unlisted client is refused in both versions.
        let err = exchange(
            server.clone(),
            client_with_versions(&fed, "unlisted-client", versions),
            "localhost",
        )
        .await
        .assert_server_refused();
        assert!(matches!(
            rejection(&err),
            PeerRejection::UnknownClientPin { .. }
        ));
    }
}

#[tokio::test]
async fn p384_and_rsa_client_keys_work() {
    let fed = Fed::new();
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let rsa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let mut made = Vec::new();
    let mut payload = fed.payload.clone();
    for (name, key) in [("p384", &p384), ("rsa", &rsa)] {
        let mut params = rcgen::CertificateParams::new(vec![format!("{name}.example")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name}-client"));
        let cert = params.self_signed(key).unwrap();
        let entity_id = format!("https://{name}.test.example");
        Fed::entities_mut(&mut payload).push(client_entity(&entity_id, cert.der(), &[&cert.pem()]));
        made.push((entity_id, cert, key));
    }
    let cell = Arc::new(SnapshotCell::with(fed.sign(&payload)));
    let server = fed.server(PinnedClientVerifier::new(cell.clone()).require_issuer_chain(true));
    for (entity_id, cert, key) in &made {
        for versions in [
            &[&rustls::version::TLS12][..],
            &[&rustls::version::TLS13][..],
        ] {
            let config = ClientConfig::builder_with_provider(tls::provider())
                .with_protocol_versions(versions)
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(
                    PinnedServerVerifier::new([fed.pin("school-server")]).into_arc(),
                )
                .with_client_auth_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .unwrap();
            let accepted = exchange(server.clone(), Arc::new(config), "localhost")
                .await
                .assert_ok();
            let who = PeerIdentity::resolve(&cell.current().unwrap(), &accepted.peer[0]).unwrap();
            assert_eq!(&who.entity_id, entity_id);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Client side: which servers get trusted

#[tokio::test]
async fn the_client_refuses_a_server_whose_pin_was_not_selected() {
    let fed = Fed::new();
    let cell = fed.cell();
    let server = || fed.server(PinnedClientVerifier::new(cell.clone()));
    let client = |pins: Vec<Pin>| {
        let verifier = PinnedServerVerifier::new(pins).into_arc();
        Arc::new(tls::client_config(verifier, fed.identity("school-client"), &[]).unwrap())
    };

    // Pinned to another server of the federation.
    let err = exchange(server(), client(vec![fed.pin("authserver")]), "localhost")
        .await
        .assert_client_refused();
    match rejection(&err) {
        PeerRejection::UnexpectedServerPin { pin, selected, .. } => {
            assert_eq!(pin, fed.pin("school-server"));
            assert_eq!(selected, 1);
        }
        other => panic!("{other:?}"),
    }
    // No pins selected: every server refused.
    let err = exchange(server(), client(vec![]), "localhost")
        .await
        .assert_client_refused();
    assert!(matches!(
        rejection(&err),
        PeerRejection::UnexpectedServerPin { selected: 0, .. }
    ));
    // The selected pin among others.
    exchange(
        server(),
        client(vec![fed.pin("authserver"), fed.pin("school-server")]),
        "localhost",
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn hostname_check_refuses_a_wrong_name_and_accepts_the_right_ones() {
    let fed = Fed::new();
    let cell = fed.cell();
    let client = |check: bool| {
        let verifier = PinnedServerVerifier::new([fed.pin("school-server")])
            .check_hostname(check)
            .into_arc();
        Arc::new(tls::client_config(verifier, fed.identity("school-client"), &[]).unwrap())
    };
    let server = || fed.server(PinnedClientVerifier::new(cell.clone()));

    let err = exchange(server(), client(true), "wrong.example")
        .await
        .assert_client_refused();
    assert!(
        matches!(
            rustls_error(&err),
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{err:?}"
    );
    for name in ["localhost", "127.0.0.1"] {
        exchange(server(), client(true), name).await.assert_ok();
    }
    // Off by default: the pin is the trust.
    exchange(server(), client(false), "wrong.example")
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_reloaded_server_certificate_is_used_by_the_next_handshake() {
    let fed = Fed::new();
    let cell = fed.cell();
    let party = |name: &str| fed.fed.party(name).unwrap().clone();
    let school = party("school-server");
    let resolver =
        Arc::new(ReloadableCertResolver::from_pem_files(&school.cert, &school.key).unwrap());
    let server = Arc::new(
        tls::server_config_with_resolver(
            PinnedClientVerifier::new(cell.clone()).into_arc(),
            resolver.clone(),
            &[],
        )
        .unwrap(),
    );
    let client = |pin: Pin| {
        let verifier = PinnedServerVerifier::new([pin]).into_arc();
        Arc::new(tls::client_config(verifier, fed.identity("school-client"), &[]).unwrap())
    };
    exchange(server.clone(), client(school.pin), "localhost")
        .await
        .assert_ok();

    // A bad replacement (key of another certificate) keeps the current one.
    let auth = party("authserver");
    assert!(resolver.reload_pem_files(&auth.cert, &school.key).is_err());
    assert_eq!(resolver.pin(), Some(school.pin));

    resolver.reload_pem_files(&auth.cert, &auth.key).unwrap();
    assert_eq!(resolver.pin(), Some(auth.pin));
    exchange(server.clone(), client(auth.pin), "localhost")
        .await
        .assert_ok();
    exchange(server, client(school.pin), "localhost")
        .await
        .assert_client_refused();
}

#[test]
fn config_helpers_refuse_a_key_that_does_not_match_the_certificate() {
    let fed = Fed::new();
    let verifier = PinnedClientVerifier::new(fed.cell()).into_arc();
    assert!(
        tls::server_config(
            verifier,
            fed.chain("school-server"),
            fed.key("school-client"),
            &[]
        )
        .is_err()
    );
    let verifier = PinnedServerVerifier::new([]).into_arc();
    assert!(
        tls::client_config(
            verifier,
            Some((fed.chain("school-client"), fed.key("school-server"))),
            &[]
        )
        .is_err()
    );
    let missing = Path::new("/nonexistent/fedtls/cert.pem");
    let err = tls::load_cert_chain(missing).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/fedtls/cert.pem"),
        "{err}"
    );
}
