//! What a GNAP token costs on this machine:
//!
//! 1. Token signing alone (claims + ES256 compact JWS), tokens/s.
//! 2. End to end: `POST /transaction` over one kept-alive mutual-TLS HTTP/1.1 connection on
//!    loopback against a test federation, requests/s with p50/p99 latency.
//!
//! Run: `cargo bench -p kontosynk-server --bench gnap` (`QUICK=1` for a short run).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use fedtls::jwk::{Algorithm, SigningKey};
use fedtls::testfed::FederationOptions;
use fedtls::tls::{
    PinnedServerVerifier, ReloadableCertResolver, client_config, load_cert_chain, load_private_key,
};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kontosynk_framework::ServerBuilder;
use kontosynk_server::gnap::{
    GnapConfig, GnapService, KeyRing, TokenFacts, TokenKeys, sign_token, token_claims,
};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn main() {
    let quick = std::env::var_os("QUICK").is_some();
    let rounds = if quick { 300 } else { 3000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let fed = fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default())
        .expect("test federation");
    let keys = || {
        TokenKeys::new(
            SigningKey::generate(Algorithm::Es256, "bench").expect("key"),
            vec![],
        )
        .expect("keys")
    };

    // 1. Signing alone.
    let signing = keys();
    let document = std::fs::read(&fed.metadata_jws).expect("metadata");
    let jwks = fedtls::Jwks::from_json(&std::fs::read(&fed.jwks).expect("jwks")).expect("jwks");
    let verified =
        fedtls::verify_metadata(&document, &jwks, &fedtls::VerifyOptions::default()).expect("ok");
    let snapshot = fedtls::Snapshot::new(verified, "bench", fedtls::verify::unix_now());
    let entity = snapshot
        .index()
        .entity("https://school.test.example")
        .expect("school");
    let access = [serde_json::json!({"type": "provisioning-api"})];
    let started = Instant::now();
    for i in 0..rounds {
        let facts = TokenFacts {
            issuer: "https://auth.test.example",
            audience: None,
            source: Some("https://fed.test.example/md"),
            now: 1_700_000_000 + i64::from(i),
            lifetime_secs: 36_000,
            requested_access: &access,
        };
        let token = sign_token(&signing, &token_claims(entity, &facts)).expect("sign");
        std::hint::black_box(token);
    }
    let elapsed = started.elapsed();
    println!(
        "sign: {rounds} tokens in {:.3} s = {:.0} tokens/s ({:.1} µs each)",
        elapsed.as_secs_f64(),
        f64::from(rounds) / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / f64::from(rounds)
    );

    // 2. End to end over mutual TLS.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cell = Arc::new(fedtls::SnapshotCell::with(snapshot));
        let party = fed.party("authserver").expect("authserver");
        let resolver = Arc::new(
            ReloadableCertResolver::new(
                load_cert_chain(&party.cert).expect("cert"),
                load_private_key(&party.key).expect("key"),
            )
            .expect("resolver"),
        );
        let service = GnapService::new(
            GnapConfig::new("https://auth.test.example"),
            Arc::new(KeyRing::new(keys())),
            cell.clone(),
        );
        let server = GnapService::configure(ServerBuilder::new(cell).tls(resolver))
            .bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = server.local_addr().expect("addr");
        tokio::spawn(server.serve(service.handler(), std::future::pending()));

        let client = fed.party("school-client").expect("client");
        let verifier = PinnedServerVerifier::new([party.pin]).into_arc();
        let config = client_config(
            verifier,
            Some((
                load_cert_chain(&client.cert).expect("cert"),
                load_private_key(&client.key).expect("key"),
            )),
            &[b"http/1.1"],
        )
        .expect("client config");
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("http");
        tokio::spawn(connection);
        let body = Bytes::from(
            serde_json::json!({
                "access_token": {"access": [{"type": "provisioning-api"}], "flags": ["bearer"]},
                "client": {"key": "https://school.test.example"}
            })
            .to_string(),
        );
        let mut latencies = Vec::with_capacity(rounds as usize);
        let started = Instant::now();
        for _ in 0..rounds {
            let request = Request::post("/transaction")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .expect("request");
            let at = Instant::now();
            sender.ready().await.expect("ready");
            let response = sender.send_request(request).await.expect("response");
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.expect("body");
            latencies.push(at.elapsed());
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
        println!(
            "POST /transaction over mTLS (one connection): {rounds} in {:.3} s = {:.0} req/s, p50 {:?}, p99 {:?}",
            elapsed.as_secs_f64(),
            f64::from(rounds) / elapsed.as_secs_f64(),
            pick(0.5),
            pick(0.99)
        );
    });
}
