//! The GNAP authorization server over real mutual-TLS handshakes (and behind a terminator)
//! on loopback, against a test federation; issued tokens are verified with `jsonwebtoken`
//! against the served JWKS.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use fedtls::jwk::{Algorithm, Jwks, SigningKey};
use fedtls::jws::{JwsFormat, SignOptions, sign_metadata};
use fedtls::snapshot::{Snapshot, SnapshotCell};
use fedtls::testfed::{FederationOptions, TestFederation};
use fedtls::tls::{
    PinnedServerVerifier, ReloadableCertResolver, client_config, load_cert_chain, load_private_key,
};
use fedtls::verify::{VerifyOptions, unix_now, verify_metadata};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use kontosynk_framework::{ServerBuilder, TrustedProxy};
use kontosynk_server::gnap::{ClientAuth, GnapConfig, GnapService, KeyRing, TokenKeys};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// Standard base64, from the `base64` crate.
fn b64_encode(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A PEM block with `\n` line endings, from the `pem` crate.
fn pem_encode(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

const SCHOOL: &str = "https://school.test.example";
const SUPPLIER: &str = "https://supplier.test.example/moa";
const SUNET_STYLE: &str = "https://sunet-style.test.example";
const EXPIRED: &str = "https://expired.test.example";
const ISSUER: &str = "https://auth.test.example";

/// A certificate made in the test, with its key.
struct Made {
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn made(cn: &str, expired: bool) -> Made {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.self_signed(&key).unwrap();
    Made {
        der: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

/// A test federation plus two members the generator does not make: one whose client is known
/// only as an issuer certificate (SUNET style, no client pins) and one whose listed client
/// certificate has expired.
struct Fed {
    _dir: tempfile::TempDir,
    fed: TestFederation,
    cell: Arc<SnapshotCell>,
    issuer_only: Made,
    expired: Made,
}

fn federation() -> Fed {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let issuer_only = made("sunet-style-client", false);
    let expired = made("expired-client", true);
    let mut payload: Value =
        serde_json::from_slice(&std::fs::read(&fed.metadata_json).unwrap()).unwrap();
    let entities = payload["entities"].as_array_mut().unwrap();
    entities.push(json!({
        "entity_id": SUNET_STYLE,
        "organization": "Sunet-stil AB",
        "organization_id": "SE5590000001",
        "issuers": [{"x509certificate": pem_encode("CERTIFICATE", &issuer_only.der)}],
        "extensions": {(fedtls::metadata::SAML_SCOPE_EXTENSION): {"scope": ["sunet-style.test.example"]}},
    }));
    entities.push(json!({
        "entity_id": EXPIRED,
        "organization_id": "SE5590000002",
        "issuers": [{"x509certificate": pem_encode("CERTIFICATE", &expired.der)}],
        "clients": [{"pins": [{"alg": "sha256", "digest": fedtls::Pin::of_certificate(&expired.der).unwrap().to_string()}], "tags": ["gnapv1"]}],
    }));
    let Value::Object(map) = payload else {
        panic!("payload is an object")
    };
    let key = SigningKey::from_jwk_json(&std::fs::read(&fed.signing_key).unwrap()).unwrap();
    let options = SignOptions {
        iss: fed.iss.clone(),
        lifetime_secs: 86_400,
        now: unix_now(),
        format: JwsFormat::General,
        default_cache_ttl: 3600,
    };
    let document = sign_metadata(&map, &[&key], &options).unwrap().into_bytes();
    let jwks = Jwks::from_json(&std::fs::read(&fed.jwks).unwrap()).unwrap();
    let verified = verify_metadata(&document, &jwks, &VerifyOptions::default()).unwrap();
    assert!(verified.index().rejected().is_empty());
    let cell = Arc::new(SnapshotCell::with(Snapshot::new(
        verified,
        "test",
        unix_now(),
    )));
    Fed {
        _dir: dir,
        fed,
        cell,
        issuer_only,
        expired,
    }
}

impl Fed {
    fn party(&self, name: &str) -> &fedtls::testfed::Party {
        self.fed.party(name).unwrap()
    }

    /// The identity (chain, key) of a generated party or one of the made certificates.
    fn identity(&self, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        match name {
            "issuer-only" => (
                vec![self.issuer_only.der.clone()],
                self.issuer_only.key.clone_key(),
            ),
            "expired" => (vec![self.expired.der.clone()], self.expired.key.clone_key()),
            _ => {
                let party = self.party(name);
                let chain = party.chain.clone().unwrap_or_else(|| party.cert.clone());
                (
                    load_cert_chain(&chain).unwrap(),
                    load_private_key(&party.key).unwrap(),
                )
            }
        }
    }

    /// The leaf certificate (DER) of `name`.
    fn leaf(&self, name: &str) -> CertificateDer<'static> {
        self.identity(name).0.remove(0)
    }

    fn connector(&self, client: &str) -> TlsConnector {
        let verifier = PinnedServerVerifier::new([self.party("authserver").pin]).into_arc();
        let config = client_config(verifier, Some(self.identity(client)), &[b"http/1.1"]).unwrap();
        TlsConnector::from(Arc::new(config))
    }

    /// A connector presenting no client certificate.
    fn anonymous(&self) -> TlsConnector {
        let verifier = PinnedServerVerifier::new([self.party("authserver").pin]).into_arc();
        let config = client_config(verifier, None, &[b"http/1.1"]).unwrap();
        TlsConnector::from(Arc::new(config))
    }

    fn resolver(&self) -> Arc<ReloadableCertResolver> {
        let party = self.party("authserver");
        Arc::new(
            ReloadableCertResolver::new(
                load_cert_chain(&party.cert).unwrap(),
                load_private_key(&party.key).unwrap(),
            )
            .unwrap(),
        )
    }
}

struct Running {
    addr: SocketAddr,
    service: GnapService,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn service(fed: &Fed, keys: TokenKeys) -> GnapService {
    service_with(fed, keys, ClientAuth::default())
}

/// A service authenticating clients by `rule`.
fn service_with(fed: &Fed, keys: TokenKeys, rule: ClientAuth) -> GnapService {
    let mut config = GnapConfig::new(ISSUER);
    config.client_auth = rule;
    GnapService::new(config, Arc::new(KeyRing::new(keys)), fed.cell.clone())
}

fn fresh_keys(kid: &str) -> TokenKeys {
    TokenKeys::new(SigningKey::generate(Algorithm::Es256, kid).unwrap(), vec![]).unwrap()
}

async fn start(builder: ServerBuilder, service: GnapService) -> Running {
    let server = GnapService::configure(builder)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(service.handler(), async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        service,
        stop: Some(stop),
    }
}

async fn start_tls(fed: &Fed, keys: TokenKeys) -> Running {
    start_tls_with(fed, keys, ClientAuth::default()).await
}

/// A mutual-TLS server authenticating clients by `rule`.
async fn start_tls_with(fed: &Fed, keys: TokenKeys, rule: ClientAuth) -> Running {
    let builder = ServerBuilder::new(fed.cell.clone()).tls(fed.resolver());
    start(builder, service_with(fed, keys, rule)).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    raw: Bytes,
}

/// One request on a fresh connection: over mutual TLS as `client`, or plain HTTP when
/// `connector` is `None` (behind a terminator).
async fn call(
    addr: SocketAddr,
    connector: Option<&TlsConnector>,
    request: Request<Full<Bytes>>,
) -> Result<Reply, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let response = match connector {
        Some(connector) => {
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?
        }
        None => {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: bytes,
    })
}

fn grant_body(access_token: Value, client_key: &str) -> Vec<u8> {
    json!({"access_token": access_token, "client": {"key": client_key}})
        .to_string()
        .into_bytes()
}

fn provisioning_access() -> Value {
    json!([{"type": "provisioning-api", "locations": ["https://api.skolverket.se/provtjanst/provisioning/v1"]}])
}

fn post(
    body: Vec<u8>,
    content_type: Option<&str>,
    headers: &[(&str, String)],
) -> Request<Full<Bytes>> {
    let mut builder = Request::post("/transaction").header("host", "localhost");
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

fn request_for(client_key: &str) -> Request<Full<Bytes>> {
    let token = json!({"access": provisioning_access(), "flags": ["bearer"]});
    post(grant_body(token, client_key), Some("application/json"), &[])
}

async fn fetch_jwks(
    addr: SocketAddr,
    connector: Option<&TlsConnector>,
) -> jsonwebtoken::jwk::JwkSet {
    let reply = call(
        addr,
        connector,
        Request::get("/.well-known/jwks.json")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    serde_json::from_value(reply.body).unwrap()
}

/// Verifies a token with `jsonwebtoken` against the JWKS, by its `kid`; returns the claims.
fn verify(token: &str, jwks: &jsonwebtoken::jwk::JwkSet) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ, None, "no typ in the header");
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or(format!("kid {kid} not in the JWKS"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// The refusal's `error.description`.
fn description(reply: &Reply) -> &str {
    reply.body["error"]["description"]
        .as_str()
        .expect("an error description")
}

fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
    assert!(
        reply.body["error"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn issues_verifiable_tokens_for_the_object_and_array_forms() {
    let fed = federation();
    // The FedTLS pin rule, so the CA-issued supplier client (its leaf is not an issuer) is in.
    let server = start_tls_with(&fed, fresh_keys("gnap-1"), ClientAuth::Pin).await;
    let jwks = fetch_jwks(server.addr, Some(&fed.connector("school-client"))).await;

    // Object form, a CA-issued client presenting its chain.
    let supplier = fed.connector("supplier-client");
    let reply = call(server.addr, Some(&supplier), request_for(SUPPLIER))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert_eq!(reply.headers["content-type"], "application/json");
    let token = &reply.body["access_token"];
    assert_eq!(token["access"], provisioning_access());
    assert_eq!(token["expires_in"], 36_000);
    assert_eq!(token["flags"], json!(["bearer"]));
    let mut keys: Vec<_> = token.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["access", "expires_in", "flags", "value"]);
    let claims = verify(token["value"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["entity_id"], SUPPLIER);
    assert_eq!(claims["organization_id"], "SE5566000001");
    // No saml-scope extension, no scopes claim (SUNET leaves it out, not `[]`).
    assert!(claims.get("scopes").is_none(), "{claims}");
    assert_eq!(claims["requested_access"], provisioning_access());
    assert_eq!(claims["auth_source"], "tlsfed");
    assert_eq!(claims["source"], fed.fed.iss);
    assert_eq!(claims["version"], 1);
    assert!(claims.get("aud").is_none());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    assert_eq!(claims["exp"].as_i64(), Some(iat + 36_000));
    assert!((iat - unix_now()).abs() < 600);
    let mut names: Vec<_> = claims.as_object().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "auth_source",
            "entity_id",
            "exp",
            "iat",
            "iss",
            "nbf",
            "organization_id",
            "requested_access",
            "source",
            "version"
        ]
    );

    // Array form, a self-signed client with saml scopes; two access types echoed.
    let access = json!([{"type": "ss12000-client", "locations": ["https://hook.example/"]}, {"type": "provisioning-api"}]);
    let body = grant_body(json!([{"access": access, "flags": ["bearer"]}]), SCHOOL);
    let school = fed.connector("school-client");
    let reply = call(
        server.addr,
        Some(&school),
        post(body, Some("application/json; charset=utf-8"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["access_token"]["access"], access);
    let claims = verify(reply.body["access_token"]["value"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(claims["entity_id"], SCHOOL);
    assert_eq!(claims["organization_id"], "SE2120009999");
    assert_eq!(
        claims["scopes"],
        json!(["exempla.test.example", "skola.exempla.test.example"])
    );
    assert_eq!(claims["requested_access"], access);

    // A forged token (payload swapped) does not verify.
    let value = reply.body["access_token"]["value"].as_str().unwrap();
    let parts: Vec<&str> = value.split('.').collect();
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({"iss": ISSUER, "entity_id": SUPPLIER, "exp": unix_now() + 100, "nbf": 0})
            .to_string(),
    );
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert!(verify(&forged, &jwks).is_err());
}

#[tokio::test]
async fn sunet_style_issuer_certificates_authenticate_their_entity_only() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let jwks = fetch_jwks(server.addr, Some(&fed.connector("school-client"))).await;
    // Its pin is listed nowhere; the certificate is byte for byte an issuer of its entity.
    let issuer_only = fed.connector("issuer-only");
    let reply = call(server.addr, Some(&issuer_only), request_for(SUNET_STYLE))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let claims = verify(reply.body["access_token"]["value"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(claims["entity_id"], SUNET_STYLE);
    assert_eq!(claims["organization_id"], "SE5590000001");
    assert_eq!(claims["scopes"], json!(["sunet-style.test.example"]));

    // The same certificate cannot claim another entity.
    let reply = call(server.addr, Some(&issuer_only), request_for(SCHOOL))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");

    // The school client is also listed as an issuer of its entity: both rules agree.
    let reply = call(
        server.addr,
        Some(&fed.connector("school-client")),
        request_for(SCHOOL),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);

    // Without the option, such a certificate fails the handshake (fail closed by default).
    let strict = ServerBuilder::new(fed.cell.clone())
        .tls(fed.resolver())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let strict_addr = strict.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(strict.serve(server.service.handler(), async {
        let _ = stopped.await;
    }));
    assert!(
        call(strict_addr, Some(&issuer_only), request_for(SUNET_STYLE))
            .await
            .is_err()
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn authentication_failures_are_401_request_denied() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let school = fed.connector("school-client");

    // client.key names another entity.
    let reply = call(server.addr, Some(&school), request_for(SUPPLIER))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    // client.key names no entity at all.
    let reply = call(
        server.addr,
        Some(&school),
        request_for("https://nobody.example"),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    assert!(description(&reply).contains("https://nobody.example"));
    // A Client-Cert header sent over mutual TLS is ignored: the handshake decides.
    let forged = b64_encode(fed.leaf("supplier-client"));
    let token = json!({"access": provisioning_access(), "flags": ["bearer"]});
    let reply = call(
        server.addr,
        Some(&school),
        post(
            grant_body(token, SUPPLIER),
            Some("application/json"),
            &[("client-cert", forged)],
        ),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    // An unlisted client never gets past the handshake.
    assert!(
        call(
            server.addr,
            Some(&fed.connector("unlisted-client")),
            request_for(SCHOOL)
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn an_expired_listed_certificate_is_401_invalid_request() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let expired = fed.connector("expired");
    let reply = call(server.addr, Some(&expired), request_for(EXPIRED))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "invalid_request");
    assert!(description(&reply).contains("expired"));
    // Claiming another entity with it: SUNET (the default rule) looks at the validity period
    // before matching the certificate, so it is 401 invalid_request as well...
    let reply = call(server.addr, Some(&expired), request_for(SCHOOL))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "invalid_request");
    // ...while the pin rule checks whom the certificate belongs to first.
    let pin = start_tls_with(&fed, fresh_keys("gnap-1"), ClientAuth::Pin).await;
    let reply = call(pin.addr, Some(&expired), request_for(SCHOOL))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    let reply = call(pin.addr, Some(&expired), request_for(EXPIRED))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "invalid_request");
}

#[tokio::test]
async fn malformed_requests_are_400_invalid_request() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let school = fed.connector("school-client");
    let good = json!({"access": provisioning_access(), "flags": ["bearer"]});
    let json_ct = Some("application/json");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "wrong content type",
            grant_body(good.clone(), SCHOOL),
            Some("text/plain"),
        ),
        ("no content type", grant_body(good.clone(), SCHOOL), None),
        (
            "form content type",
            grant_body(good.clone(), SCHOOL),
            Some("application/x-www-form-urlencoded"),
        ),
        (
            "plain text body",
            b"give me a token please".to_vec(),
            json_ct,
        ),
        (
            "plain text body as text",
            b"give me a token please".to_vec(),
            Some("text/plain"),
        ),
        (
            "binary garbage",
            vec![0xff, 0x00, 0xfe, 0x7b, 0x22],
            json_ct,
        ),
        ("empty body", Vec::new(), json_ct),
        (
            "truncated JSON",
            br#"{"access_token": {"access": ["#.to_vec(),
            json_ct,
        ),
        ("JSON array", b"[]".to_vec(), json_ct),
        (
            "missing bearer flag",
            grant_body(json!({"access": provisioning_access()}), SCHOOL),
            json_ct,
        ),
        (
            "other flags only",
            grant_body(
                json!({"access": provisioning_access(), "flags": ["split"]}),
                SCHOOL,
            ),
            json_ct,
        ),
        (
            "access_token empty array",
            grant_body(json!([]), SCHOOL),
            json_ct,
        ),
        (
            "access_token a string",
            grant_body(json!("token please"), SCHOOL),
            json_ct,
        ),
        (
            "access_token missing",
            json!({"client": {"key": SCHOOL}}).to_string().into_bytes(),
            json_ct,
        ),
        (
            "client missing",
            json!({"access_token": good}).to_string().into_bytes(),
            json_ct,
        ),
    ];
    for (name, body, content_type) in cases {
        let reply = call(server.addr, Some(&school), post(body, content_type, &[]))
            .await
            .unwrap();
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "invalid_request", "{name}");
    }
    // A schema error is reported before authentication (a bad body from a stranger's key is
    // 400); a missing bearer flag only after it (401 for a stranger), as SUNET does.
    let reply = call(
        server.addr,
        Some(&school),
        post(
            grant_body(json!({"access": [], "flags": ["foo"]}), SUPPLIER),
            json_ct,
            &[],
        ),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    let reply = call(
        server.addr,
        Some(&school),
        post(grant_body(json!({"access": []}), SUPPLIER), json_ct, &[]),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    // Wrong method and path.
    let reply = call(
        server.addr,
        Some(&school),
        Request::get("/transaction")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
    assert_eq!(reply.headers["allow"], "POST, OPTIONS");
    let reply = call(
        server.addr,
        Some(&school),
        Request::post("/token")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::NOT_FOUND, "invalid_request");
}

#[tokio::test]
async fn discovery_and_jwks() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let school = fed.connector("school-client");
    for request in [
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/transaction"),
        Request::get("/.well-known/gnap-as-rs"),
    ] {
        let reply = call(
            server.addr,
            Some(&school),
            request
                .header("host", "localhost")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body["grant_request_endpoint"],
            "https://auth.test.example/transaction"
        );
        assert_eq!(reply.body["interaction_start_modes_supported"], json!([]));
        assert_eq!(reply.body["key_proofs_supported"], json!(["mtls"]));
    }
    let jwks = fetch_jwks(server.addr, Some(&school)).await;
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some("gnap-1"));
    let raw = call(
        server.addr,
        Some(&school),
        Request::get("/.well-known/jwks.json")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(raw.body["keys"][0].get("d").is_none(), "no private members");
    assert_eq!(raw.body["keys"][0]["crv"], "P-256");
}

#[tokio::test]
async fn tokens_signed_before_a_rotation_still_verify() {
    let fed = federation();
    let old = SigningKey::generate(Algorithm::Es256, "gnap-2025").unwrap();
    let old_public = old.public_jwk();
    let server = start_tls(&fed, TokenKeys::new(old, vec![]).unwrap()).await;
    let school = fed.connector("school-client");
    let before = call(server.addr, Some(&school), request_for(SCHOOL))
        .await
        .unwrap();
    let before = before.body["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    // Rotate: a new key signs, the old one stays published.
    let new = SigningKey::generate(Algorithm::Es256, "gnap-2026").unwrap();
    server
        .service
        .keys()
        .replace(TokenKeys::new(new, vec![old_public]).unwrap());
    let after = call(server.addr, Some(&school), request_for(SCHOOL))
        .await
        .unwrap();
    let after = after.body["access_token"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some("gnap-2026")
    );
    let jwks = fetch_jwks(server.addr, Some(&school)).await;
    assert_eq!(jwks.keys.len(), 2);
    assert_eq!(verify(&before, &jwks).unwrap()["entity_id"], SCHOOL);
    assert_eq!(verify(&after, &jwks).unwrap()["entity_id"], SCHOOL);

    // Once the old key is retired, its tokens no longer verify.
    let newest = SigningKey::generate(Algorithm::Es256, "gnap-2027").unwrap();
    server
        .service
        .keys()
        .replace(TokenKeys::new(newest, vec![]).unwrap());
    let jwks = fetch_jwks(server.addr, Some(&school)).await;
    assert!(verify(&before, &jwks).is_err());
}

#[tokio::test]
async fn behind_a_terminator_every_client_cert_format_works_and_spoofing_is_refused() {
    let fed = federation();
    let trusted: TrustedProxy = "127.0.0.1".parse().unwrap();
    let builder = ServerBuilder::new(fed.cell.clone()).behind_terminator(vec![trusted]);
    let server = start(builder, service(&fed, fresh_keys("gnap-1"))).await;
    // The keys are public, as SUNET serves them behind its terminator.
    let reply = call(
        server.addr,
        None,
        Request::get("/.well-known/jwks.json")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["keys"][0]["kid"], "gnap-1");

    let der = fed.leaf("school-client");
    let pem = pem_encode("CERTIFICATE", &der);
    let formats = [
        ("PEM, newlines as spaces", pem.trim().replace('\n', " ")),
        ("bare base64 DER", b64_encode(&der)),
        ("RFC 9440", format!(":{}:", b64_encode(&der))),
    ];
    let token = json!({"access": provisioning_access(), "flags": ["bearer"]});
    for (name, value) in formats {
        let reply = call(
            server.addr,
            None,
            post(
                grant_body(token.clone(), SCHOOL),
                Some("application/json"),
                &[("client-cert", value)],
            ),
        )
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.body);
        assert_eq!(reply.headers["cache-control"], "no-store");
    }
    // SUNET style through the terminator.
    let reply = call(
        server.addr,
        None,
        post(
            grant_body(token.clone(), SUNET_STYLE),
            Some("application/json"),
            &[("client-cert", b64_encode(&fed.issuer_only.der))],
        ),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // Expired listed certificate: 401 invalid_request.
    let reply = call(
        server.addr,
        None,
        post(
            grant_body(token.clone(), EXPIRED),
            Some("application/json"),
            &[("client-cert", b64_encode(&fed.expired.der))],
        ),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "invalid_request");
    // Unlisted, missing and unreadable certificates: 401 request_denied.
    let unlisted = b64_encode(fed.leaf("unlisted-client"));
    for (name, headers) in [
        ("unlisted", vec![("client-cert", unlisted)]),
        ("missing", vec![]),
        (
            "garbage",
            vec![("client-cert", "not a certificate".to_owned())],
        ),
    ] {
        let reply = call(
            server.addr,
            None,
            post(
                grant_body(token.clone(), SCHOOL),
                Some("application/json"),
                &headers,
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "request_denied", "{name}");
    }

    // From an address that is not a trusted terminator, a valid-looking header is refused.
    let elsewhere: TrustedProxy = "192.0.2.1".parse().unwrap();
    let builder = ServerBuilder::new(fed.cell.clone()).behind_terminator(vec![elsewhere]);
    let spoofed = start(builder, service(&fed, fresh_keys("gnap-1"))).await;
    let reply = call(
        spoofed.addr,
        None,
        post(
            grant_body(token, SCHOOL),
            Some("application/json"),
            &[("client-cert", b64_encode(&der))],
        ),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    assert!(description(&reply).contains("untrusted_proxy"));
}

/// A grant request for SCHOOL with `access`.
fn access_request(access: Value) -> Request<Full<Bytes>> {
    let token = json!({"access": access, "flags": ["bearer"]});
    post(grant_body(token, SCHOOL), Some("application/json"), &[])
}

#[tokio::test]
async fn access_beyond_the_limits_is_400_invalid_request_naming_the_limit() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let school = fed.connector("school-client");
    let entry =
        |locations: Vec<String>| json!({"type": "provisioning-api", "locations": locations});
    let location = "https://api.skolverket.se/provtjanst/provisioning/v1".to_owned();
    let cases = [
        (
            Value::Array((0..33).map(|_| entry(vec![location.clone()])).collect()),
            "access_token.access has 33 entries; this server accepts at most 32",
        ),
        (
            json!([entry(vec![location.clone(); 33])]),
            "access_token.access[0].locations has 33 elements; this server accepts at most 32",
        ),
        (
            json!([entry(vec![format!(
                "https://a.example/{}",
                "x".repeat(2100)
            )])]),
            "strings of at most 2048 bytes",
        ),
        (
            json!([{"type": "t".repeat(2049)}]),
            "access_token.access[0].type is 2049 bytes long",
        ),
        (
            Value::Array(
                (0..32)
                    .map(|i| entry(vec![format!("https://a.example/{i}/{}", "x".repeat(1100))]))
                    .collect(),
            ),
            "bytes as JSON; this server accepts at most 32768",
        ),
    ];
    for (access, expected) in cases {
        let reply = call(server.addr, Some(&school), access_request(access))
            .await
            .unwrap();
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        let text = description(&reply);
        assert!(text.contains(expected), "{text}");
    }
    // A real request, and one far larger than any real one, still get their token.
    let reply = call(
        server.addr,
        Some(&school),
        access_request(provisioning_access()),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let generous = Value::Array((0..8).map(|_| entry(vec![location.clone(); 8])).collect());
    let reply = call(server.addr, Some(&school), access_request(generous))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn a_transaction_body_beyond_64_kib_is_413() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let school = fed.connector("school-client");
    // Valid JSON, 100 KiB, one location padded: with Content-Length, and chunked (no length).
    let padded = json!([{"type": "provisioning-api", "locations": [format!("https://a.example/{}", "x".repeat(100 * 1024))]}]);
    let body = grant_body(json!({"access": padded, "flags": ["bearer"]}), SCHOOL);
    for chunked in [false, true] {
        let headers = if chunked {
            vec![("transfer-encoding", "chunked".to_owned())]
        } else {
            vec![]
        };
        let request = post(body.clone(), Some("application/json"), &headers);
        let reply = call(server.addr, Some(&school), request).await.unwrap();
        assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
        let text = description(&reply);
        assert!(
            text.contains("larger than 65536 bytes") && text.contains("--max-transaction-body"),
            "chunked {chunked}: {text}"
        );
    }
    // A smaller configured limit applies.
    let mut config = GnapConfig::new(ISSUER);
    config.max_body = 1024;
    let small = start(
        ServerBuilder::new(fed.cell.clone()).tls(fed.resolver()),
        GnapService::new(
            config,
            Arc::new(KeyRing::new(fresh_keys("gnap-2"))),
            fed.cell.clone(),
        ),
    )
    .await;
    let mut padded = json!({"access": provisioning_access(), "flags": ["bearer"]});
    padded["padding"] = Value::String("p".repeat(1100));
    let request = post(grant_body(padded, SCHOOL), Some("application/json"), &[]);
    let reply = call(small.addr, Some(&school), request).await.unwrap();
    assert_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
    let reply = call(small.addr, Some(&school), request_for(SCHOOL))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn the_sunet_rule_is_the_default_and_refuses_a_leaf_listed_only_by_its_ca() {
    let fed = federation();
    let sunet = start_tls(&fed, fresh_keys("gnap-1")).await;
    let pin = start_tls_with(&fed, fresh_keys("gnap-1"), ClientAuth::Pin).await;
    let either = start_tls_with(&fed, fresh_keys("gnap-1"), ClientAuth::Either).await;
    let supplier = fed.connector("supplier-client");
    let issuer_only = fed.connector("issuer-only");
    let school = fed.connector("school-client");

    // The supplier's leaf is issued by its CA and the metadata lists only the CA (and the
    // leaf's pin): SUNET compares the leaf's cert#S256 with the CA's and refuses it.
    let reply = call(sunet.addr, Some(&supplier), request_for(SUPPLIER))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    let text = description(&reply);
    assert!(
        text.contains(SUPPLIER) && text.contains("add the client certificate itself"),
        "{text}"
    );
    for (name, server) in [("pin", &pin), ("either", &either)] {
        let reply = call(server.addr, Some(&supplier), request_for(SUPPLIER))
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.body);
    }

    // A client known only as an issuer certificate (no client pins): SUNET and either.
    for (name, server, status) in [
        ("sunet", &sunet, StatusCode::OK),
        ("either", &either, StatusCode::OK),
        ("pin", &pin, StatusCode::UNAUTHORIZED),
    ] {
        let reply = call(server.addr, Some(&issuer_only), request_for(SUNET_STYLE))
            .await
            .unwrap();
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
    }
    let reply = call(pin.addr, Some(&issuer_only), request_for(SUNET_STYLE))
        .await
        .unwrap();
    assert!(
        description(&reply).contains("not a client pin"),
        "{}",
        reply.body
    );

    // A self-signed client listed both ways passes every rule.
    for server in [&sunet, &pin, &either] {
        let reply = call(server.addr, Some(&school), request_for(SCHOOL))
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

/// What SUNET's server answers a request shape with: a status, and the error code (or, for
/// 200, `None`).
struct Shape {
    name: &'static str,
    body: Vec<u8>,
    content_type: &'static str,
    status: StatusCode,
    code: Option<&'static str>,
}

/// The request shapes of the SUNET auth server's own tests (`src/auth_server/tests/test_app.py`)
/// and of issue 15, as a federation client (the tls_fed flow, certificate presented) sends them,
/// each with the answer the SUNET server gives (PROTOCOL-NOTES §3; its flows and FastAPI's
/// validation): our server must give the same status, code and body shape.
fn sunet_shapes() -> Vec<Shape> {
    let json = "application/json";
    let with = |token: Value, client: Value| {
        json!({"access_token": token, "client": client})
            .to_string()
            .into_bytes()
    };
    let me = json!({"key": SCHOOL});
    let ok = |name, body| Shape {
        name,
        body,
        content_type: json,
        status: StatusCode::OK,
        code: None,
    };
    let refused = |name, body, status, code| Shape {
        name,
        body,
        content_type: json,
        status,
        code: Some(code),
    };
    vec![
        ok(
            "tls_fed flow: [{flags: [bearer]}], key = entity_id (no access)",
            with(json!([{"flags": ["bearer"]}]), me.clone()),
        ),
        ok(
            "access: [] (empty)",
            with(json!({"access": [], "flags": ["bearer"]}), me.clone()),
        ),
        ok(
            "requested_access_in_jwt: a string and {type, scope}",
            with(
                json!({"flags": ["bearer"], "access": ["test_access_string", {"type": "test_access", "scope": "a_scope"}]}),
                me.clone(),
            ),
        ),
        ok(
            "unknown and null access members",
            with(
                json!({"flags": ["bearer"], "access": [{"type": "provisioning-api", "locations": ["https://x.example/"], "color": "blue", "actions": null}]}),
                me.clone(),
            ),
        ),
        ok(
            "flags [bearer, durable]",
            with(json!({"flags": ["bearer", "durable"]}), me.clone()),
        ),
        Shape {
            content_type: "application/gnap+json",
            ..ok(
                "Content-Type application/gnap+json",
                with(json!({"flags": ["bearer"]}), me.clone()),
            )
        },
        refused(
            "without_bearer_flag: [{}]",
            with(json!([{}]), me.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        refused(
            "unknown flag [foo]",
            with(json!({"flags": ["foo"]}), me.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        refused(
            "unknown flag beside bearer, with access",
            with(
                json!({"flags": ["bearer", "foo"], "access": [{"type": "provisioning-api"}]}),
                me.clone(),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        refused(
            "access entry without type",
            with(
                json!({"flags": ["bearer"], "access": [{"locations": []}]}),
                me.clone(),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        refused(
            "access_token: two requests",
            with(
                json!([{"flags": ["bearer"]}, {"flags": ["bearer"]}]),
                me.clone(),
            ),
            StatusCode::UNAUTHORIZED,
            "request_denied",
        ),
        refused(
            "client as a string",
            with(json!({"flags": ["bearer"]}), json!(SCHOOL)),
            StatusCode::UNAUTHORIZED,
            "request_denied",
        ),
        refused(
            "test_mode: client.key {proof: test}",
            with(
                json!([{"flags": ["bearer"]}]),
                json!({"key": {"proof": "test"}}),
            ),
            StatusCode::UNAUTHORIZED,
            "request_denied",
        ),
        refused(
            "transaction_mtls: client.key {proof: {method: mtls}, cert#S256}",
            with(
                json!([{"flags": ["bearer"]}]),
                json!({"key": {"proof": {"method": "mtls"}, "cert#S256": "abc"}}),
            ),
            StatusCode::UNAUTHORIZED,
            "request_denied",
        ),
        refused(
            "interact_start: {proof: test} + interact",
            json!({"access_token": {"flags": ["bearer"]}, "client": {"key": {"proof": "test"}},
                   "interact": {"start": ["redirect", "user_code"]}})
            .to_string()
            .into_bytes(),
            StatusCode::UNAUTHORIZED,
            "request_denied",
        ),
        refused(
            "client.key an object without proof",
            with(json!({"flags": ["bearer"]}), json!({"key": {"jwk": {}}})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        Shape {
            content_type: "application/jose",
            ..refused(
                "deserialize_bad_jws: application/jose bogus_jws",
                b"bogus_jws".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_client",
            )
        },
        Shape {
            content_type: "text/plain",
            ..refused(
                "Content-Type text/plain",
                with(json!({"flags": ["bearer"]}), me.clone()),
                StatusCode::BAD_REQUEST,
                "invalid_request",
            )
        },
        refused(
            "not JSON",
            b"{".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ]
}

#[tokio::test]
async fn sunet_test_request_shapes_get_sunet_answers() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let jwks = fetch_jwks(server.addr, Some(&fed.connector("school-client"))).await;
    let school = fed.connector("school-client");
    for shape in sunet_shapes() {
        let request: Value = serde_json::from_slice(&shape.body).unwrap_or(Value::Null);
        let reply = call(
            server.addr,
            Some(&school),
            post(shape.body, Some(shape.content_type), &[]),
        )
        .await
        .unwrap();
        let name = shape.name;
        assert_eq!(reply.headers["cache-control"], "no-store", "{name}");
        let Some(code) = shape.code else {
            assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.body);
            let token = &reply.body["access_token"];
            let mut keys: Vec<_> = token.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            assert_eq!(keys, ["access", "expires_in", "flags", "value"], "{name}");
            assert_eq!(token["flags"], json!(["bearer"]), "{name}");
            // access: the request's, with only the members SUNET knows, never null.
            let first = if request["access_token"].is_array() {
                &request["access_token"][0]
            } else {
                &request["access_token"]
            };
            let mut expected = first["access"].clone();
            if expected.is_null() {
                expected = json!([]);
            }
            for entry in expected.as_array_mut().unwrap() {
                if let Some(entry) = entry.as_object_mut() {
                    entry.retain(|k, v| {
                        !v.is_null()
                            && [
                                "type",
                                "actions",
                                "locations",
                                "datatypes",
                                "identifier",
                                "privileges",
                                "scope",
                            ]
                            .contains(&k.as_str())
                    });
                }
            }
            assert_eq!(token["access"], expected, "{name}");
            let claims = verify(token["value"].as_str().unwrap(), &jwks).unwrap();
            assert_eq!(claims["requested_access"], expected, "{name}");
            continue;
        };
        assert_error(&reply, shape.status, code);
        let mut members: Vec<_> = reply.body["error"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        members.sort();
        assert_eq!(members, ["code", "description"], "{name}");
    }
}

#[tokio::test]
async fn public_endpoints_answer_without_a_client_certificate() {
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let anonymous = fed.anonymous();
    let get = |path: &str| {
        Request::get(path)
            .header("host", "localhost")
            .body(Full::default())
            .unwrap()
    };
    let health = call(server.addr, Some(&anonymous), get("/status/healthy"))
        .await
        .unwrap();
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, json!({"status": "STATUS_OK_"}));

    let jwks = call(server.addr, Some(&anonymous), get("/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 1);

    let jwk = call(server.addr, Some(&anonymous), get("/.well-known/jwk.json"))
        .await
        .unwrap();
    assert_eq!(jwk.status, StatusCode::OK);
    assert_eq!(jwk.body, jwks.body["keys"][0]);
    assert_eq!(jwk.body["kty"], "EC");
    assert_eq!(jwk.body["crv"], "P-256");
    assert_eq!(jwk.body["kid"], "gnap-1");

    let pem = call(
        server.addr,
        Some(&anonymous),
        get("/.well-known/public.pem"),
    )
    .await
    .unwrap();
    assert_eq!(pem.status, StatusCode::OK);
    assert_eq!(pem.headers["content-type"], "application/x-pem-file");
    let text = String::from_utf8(pem.raw.to_vec()).unwrap();
    let parsed = pem::parse(&text).unwrap();
    assert_eq!(parsed.tag(), "PUBLIC KEY");
    // The SubjectPublicKeyInfo holds the JWK's point: 0x04 || x || y at its end.
    let coordinate = |name: &str| {
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jwk.body[name].as_str().unwrap(),
        )
        .unwrap()
    };
    let mut point = vec![0x04];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    assert!(parsed.contents().ends_with(&point));
    assert_eq!(parsed.contents().len(), 91);

    let discovery = call(
        server.addr,
        Some(&anonymous),
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/transaction")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(discovery.status, StatusCode::OK);

    // A token still needs a certificate.
    let reply = call(server.addr, Some(&anonymous), request_for(SCHOOL))
        .await
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    assert!(
        description(&reply).contains("no client certificate"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn the_bearer_checker_fetches_the_jwks_over_https_from_our_gnap_server() {
    use kontosynk_server::bearer::{BearerConfig, BearerVerifier, JwksSource};
    let fed = federation();
    let server = start_tls(&fed, fresh_keys("gnap-1")).await;
    let location = "https://school.test.example/api";
    let token =
        json!({"access": [{"type": "ss12000-api", "locations": [location]}], "flags": ["bearer"]});
    let reply = call(
        server.addr,
        Some(&fed.connector("school-client")),
        post(grant_body(token, SCHOOL), Some("application/json"), &[]),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let jwt = reply.body["access_token"]["value"].as_str().unwrap();

    let url = format!(
        "https://127.0.0.1:{}/.well-known/jwks.json",
        server.addr.port()
    );
    let source = || url.parse::<JwksSource>().unwrap();
    let mut config = BearerConfig::new(source(), "SE2120009999".into(), location.into());
    config.issuer = Some(ISSUER.into());
    config.jwks_ca = Some(fed.party("authserver").cert.clone());
    let verifier = BearerVerifier::new(config).unwrap();
    assert_eq!(verifier.load().await.unwrap(), 1);
    let claims = verifier.verify(jwt).await.unwrap();
    assert_eq!(claims.entity_id.as_deref(), Some(SCHOOL));
    assert_eq!(claims.organization_id.as_deref(), Some("SE2120009999"));

    // Without trusting the server's certificate the fetch fails, naming the URL.
    let untrusting = BearerVerifier::new(BearerConfig::new(
        source(),
        "SE2120009999".into(),
        location.into(),
    ))
    .unwrap();
    let error = untrusting.load().await.unwrap_err().to_string();
    assert!(error.contains(&url), "{error}");
}

#[tokio::test]
async fn without_valid_metadata_grants_are_401_request_denied_and_health_fails() {
    let fed = federation();
    let empty = Arc::new(SnapshotCell::new());
    let service = || {
        GnapService::new(
            GnapConfig::new(ISSUER),
            Arc::new(KeyRing::new(fresh_keys("gnap-1"))),
            empty.clone(),
        )
    };
    // Behind a terminator (as SUNET runs): the framework refuses before the handler.
    let trusted: TrustedProxy = "127.0.0.1".parse().unwrap();
    let builder = ServerBuilder::new(empty.clone()).behind_terminator(vec![trusted]);
    let server = start(builder, service()).await;
    let token = json!({"access": provisioning_access(), "flags": ["bearer"]});
    let reply = call(
        server.addr,
        None,
        post(
            grant_body(token, SCHOOL),
            Some("application/json"),
            &[("client-cert", b64_encode(fed.leaf("school-client")))],
        ),
    )
    .await
    .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "request_denied");
    assert!(description(&reply).contains("metadata"), "{}", reply.body);
    // Over TLS, anonymously: the health check says it cannot work, with SUNET's 200.
    let builder = ServerBuilder::new(empty.clone()).tls(fed.resolver());
    let tls = start(builder, service()).await;
    let reply = call(
        tls.addr,
        Some(&fed.anonymous()),
        Request::get("/status/healthy")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"status": "STATUS_FAIL_"}));
}
