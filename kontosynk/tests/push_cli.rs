//! `kontosynk token` and `kontosynk push` as processes, and webhooks to a local receiver.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kontosynk_client::push::webhook;
use kontosynk_client::token::{AccessRequest, SS12000_CLIENT};
use kontosynk_testbed::federation::Fed;
use kontosynk_testbed::gnap::{start_gnap, start_standin, token_client};
use serde_json::{Value, json};
use ss12000::{Collection, Database, Object, Store, WriteBatch};

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_kontosynk"))
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn token_prints_a_token_or_json_and_exits_1_when_denied() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let client = fed.party("school-client");
    let base = |party: &str| {
        let p = fed.party(party);
        vec![
            "token".to_owned(),
            "--metadata".into(),
            path(&fed.fed.metadata_jws),
            "--jwks".into(),
            path(&fed.fed.jwks),
            "--cert".into(),
            path(&p.cert),
            "--key".into(),
            path(&p.key),
            "--as-url".into(),
            format!("https://127.0.0.1:{}/transaction", gnap.server.addr.port()),
            "--as-pin".into(),
            fed.party("authserver").pin.to_string(),
            "--access-type".into(),
            "provisioning-api".into(),
            "--location".into(),
            "https://api.skolverket.se/provtjanst/provisioning/v1".into(),
        ]
    };
    let out = run(base("school-client")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3);
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    // client.key was found in the metadata from our certificate's pin.
    assert_eq!(claims["entity_id"].as_str(), client.entity_id.as_deref());

    let mut json_args = base("school-client");
    json_args.push("--json".into());
    let out = run(json_args).await;
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["expires_in"].as_u64().unwrap() > 9 * 3600);
    assert_eq!(v["access_type"], "provisioning-api");

    // Claiming the school's entity with the supplier's certificate: denied, exit 1.
    let mut denied = base("supplier-client");
    denied.extend(["--entity-id".into(), "https://school.test.example".into()]);
    let out = run(denied).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("request_denied"),
        "{stderr}"
    );

    // Without --as-url the server is found by tag gnapv1 in the metadata.
    let moved = fed.metadata_with_auth_port(gnap.server.addr.port());
    let mut by_tag: Vec<String> = base("school-client")
        .into_iter()
        .filter(|a| {
            !a.starts_with("https://127.0.0.1") && *a != fed.party("authserver").pin.to_string()
        })
        .filter(|a| a != "--as-url" && a != "--as-pin")
        .collect();
    let at = by_tag.iter().position(|a| a == "--metadata").unwrap();
    by_tag[at + 1] = path(&moved);
    let out = run(by_tag).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .split('.')
            .count(),
        3
    );

    // A missing flag is a usage error.
    let out = run(vec!["token".into(), "--access-type".into(), "x".into()]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn push_reports_json_and_exit_codes() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let standin = start_standin(&gnap, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("school.sqlite");
    let store = Store::open(&Database::Sqlite(db.clone())).await.unwrap();
    let person = |n: usize, given: &str| {
        json!({"id": format!("00000000-0000-4000-8000-{n:012}"), "givenName": given,
               "familyName": "F", "eduPersonPrincipalNames": [format!("p{n}@x")],
               "civicNo": {"value": "200901272385"}})
    };
    let mut batch = WriteBatch::new();
    batch.upsert(
        Collection::Persons,
        Object::from_value(&person(1, "A")).unwrap(),
    );
    batch.upsert(
        Collection::Persons,
        Object::from_value(&person(2, "B")).unwrap(),
    );
    store.apply(batch).await.unwrap();
    drop(store);

    let tokens = token_client(&fed, "school-client", gnap.server.addr);
    let token = tokens
        .token(&AccessRequest::new(
            "provisioning-api",
            [standin.base_url()],
        ))
        .await
        .unwrap();
    let token_file = dir.path().join("token.jwt");
    std::fs::write(&token_file, token.value()).unwrap();
    let ca_file = dir.path().join("ca.pem");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(standin.ca_certificate())
    );
    std::fs::write(&ca_file, pem).unwrap();
    let args = vec![
        "push".to_owned(),
        "--db".into(),
        format!("sqlite:{}", db.display()),
        "--api-url".into(),
        standin.base_url().to_owned(),
        "--token-file".into(),
        path(&token_file),
        "--ca-file".into(),
        path(&ca_file),
        "--poll-interval".into(),
        "0.05".into(),
        "--json".into(),
    ];
    standin.fail_object(
        "00000000-0000-4000-8000-000000000002",
        "Ogiltigt personnummer",
    );
    let out = run(args.clone()).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["types"][0]["objectType"], "persons");
    assert_eq!(report["types"][0]["succeeded"], 1);
    assert_eq!(report["types"][0]["failed"], 1);

    standin.clear_object_failure("00000000-0000-4000-8000-000000000002");
    let out = run(args.clone()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["types"][0]["sent"], 1);
    assert_eq!(report["types"][0]["unchanged"], 1);

    // Without the stand-in's CA the API is not trusted: operational error, exit 2.
    let store = Store::open(&Database::Sqlite(db.clone())).await.unwrap();
    let mut batch = WriteBatch::new();
    batch.upsert(
        Collection::Persons,
        Object::from_value(&person(3, "C")).unwrap(),
    );
    store.apply(batch).await.unwrap();
    drop(store);
    let untrusted: Vec<String> = args
        .iter()
        .filter(|a| **a != "--ca-file" && **a != path(&ca_file))
        .cloned()
        .collect();
    let out = run(untrusted).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: "), "{stderr}");
}

/// One webhook: its `Authorization` header and its JSON body.
type Webhook = (Option<String>, Value);

#[derive(Default, Clone)]
struct Received(Arc<Mutex<Vec<Webhook>>>);

/// A plain-HTTP webhook receiver standing in for Skolverket's SS 12000 client.
async fn receiver(status: u16) -> (std::net::SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let log = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            let auth = request
                                .headers()
                                .get(http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            log.0.lock().unwrap().push((auth, value));
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, received)
}

#[tokio::test]
async fn webhooks_carry_modified_entities_and_an_ss12000_client_token() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let (addr, received) = receiver(200).await;
    let url: reqwest::Url = format!("http://{addr}/webhook").parse().unwrap();
    let tokens = token_client(&fed, "school-client", gnap.server.addr);
    let token = tokens
        .token(&AccessRequest::new(SS12000_CLIENT, [url.as_str()]))
        .await
        .unwrap();
    let entities = vec!["Person".to_owned(), "Group".to_owned()];
    webhook::send(&reqwest::Client::new(), &url, token.value(), &entities)
        .await
        .unwrap();
    let got = received.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0.as_deref(),
        Some(format!("Bearer {}", token.value()).as_str())
    );
    assert_eq!(got[0].1, json!({"modifiedEntities": ["Person", "Group"]}));
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.value().split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["requested_access"][0]["type"], SS12000_CLIENT);

    assert!(matches!(
        webhook::send(&reqwest::Client::new(), &url, "t", &[]).await,
        Err(webhook::WebhookError::Empty)
    ));
    let (refusing, _) = receiver(503).await;
    let error = webhook::send(
        &reqwest::Client::new(),
        &format!("http://{refusing}/webhook").parse().unwrap(),
        "t",
        &entities,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, webhook::WebhookError::Status { status: 503, .. }),
        "{error}"
    );
}
