//! `kontosynk-server ss12000` as a real process over a real SQLite file.

mod process;

use std::process::Command;
use std::sync::Arc;

use fedtls::testfed::{FederationOptions, TestFederation};
use fedtls::tls::{PinnedServerVerifier, client_config, load_cert_chain, load_private_key};
use kontosynk_testbed::ss12000_api::{AuthServer, SKOLVERKET, claims, person, put, token};
use process::Server;
use serde_json::Value;
use ss12000::{Collection, Database, Store, Timestamp};

const LOCATION: &str = "https://school.example/ss12000/v2.0";

fn command(fed: &TestFederation, db: &str, extra: &[&str]) -> Command {
    let mut command = process::serve_command("ss12000", fed, "school-server");
    command.args(["--db", db]).args(extra);
    command
}

fn start(fed: &TestFederation, db: &str, extra: &[&str]) -> Server {
    process::spawn(command(fed, db, extra), "SS 12000 API listening")
}

fn client(fed: &TestFederation, party: Option<&str>) -> reqwest::Client {
    let identity = party.map(|name| {
        let party = fed.party(name).unwrap();
        (
            load_cert_chain(&party.cert).unwrap(),
            load_private_key(&party.key).unwrap(),
        )
    });
    let verifier = PinnedServerVerifier::new([fed.party("school-server").unwrap().pin]).into_arc();
    let config = client_config(verifier, identity, &[b"http/1.1"]).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_a_store_to_members_and_to_bearer_clients() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let path = dir.path().join("school.sqlite");
    let store = Store::open(&Database::Sqlite(path.clone())).await.unwrap();
    let people: Vec<_> = (0..3)
        .map(|i| person(None, Timestamp::now(), &format!("p{i}")))
        .collect();
    put(&store, Collection::Persons, &people).await;
    drop(store);
    let auth = Arc::new(AuthServer::new(dir.path(), "k1"));
    let db = format!("sqlite:{}", path.display());
    let jwks = auth.jwks_path.display().to_string();
    let server = start(
        &fed,
        &db,
        &[
            "--client-tag",
            "egilv1",
            "--jwt-jwks",
            &jwks,
            "--jwt-organization-id",
            SKOLVERKET,
            "--jwt-location",
            LOCATION,
        ],
    );
    let port = server.addr.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}/ss12000/v2.0/persons?limit=2");

    let response = client(&fed, Some("school-client"))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(body["pageToken"].is_string());

    let jwt = token(&auth.key, &claims(LOCATION), "ES256");
    let response = client(&fed, None)
        .get(&url)
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client(&fed, None).get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[test]
fn configuration_mistakes_are_one_error_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let db = format!("sqlite:{}", dir.path().join("x.sqlite").display());
    let jwks = dir.path().join("missing-jwks.json").display().to_string();
    for (extra, needle) in [
        (vec!["--jwt-jwks", jwks.as_str()], "--jwt-organization-id"),
        (
            vec![
                "--jwt-jwks",
                jwks.as_str(),
                "--jwt-organization-id",
                SKOLVERKET,
                "--jwt-location",
                LOCATION,
            ],
            "missing-jwks.json",
        ),
        (vec!["--auth", "bearer"], "--jwt-jwks"),
        (vec!["--max-limit", "20000"], "--max-limit"),
    ] {
        let output = command(&fed, &db, &extra).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{extra:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(needle), "{extra:?}: {stderr}");
    }
    let output = command(&fed, "mysql://x", &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let output = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"))
        .args(["ss12000", "--help"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("--jwt-location"));
}

/// Creates a subscription as `school-client` on the server at `addr`: the status.
async fn subscribe(fed: &TestFederation, addr: &str, target: &str) -> (u16, Value) {
    let port = addr.rsplit(':').next().unwrap();
    let response = client(fed, Some("school-client"))
        // The school server's base_uri in the metadata, where it serves by default.
        .post(format!(
            "https://localhost:{port}/ss12000/v2.0/subscriptions"
        ))
        .json(&serde_json::json!({"name": "w", "target": target,
                                  "resourceTypes": [{"resource": "Person"}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn internal_targets_need_the_opt_in_and_the_cap_is_configurable_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let db = format!("sqlite:{}", dir.path().join("s.sqlite").display());
    let strict = start(&fed, &db, &[]);
    let (status, body) = subscribe(&fed, &strict.addr, "https://127.0.0.1:9/hook").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("KONTOSYNK_WEBHOOK_ALLOW_PRIVATE_TARGETS"),
        "{body}"
    );
    drop(strict);
    let mut command = command(&fed, &db, &[]);
    command
        .env("KONTOSYNK_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("KONTOSYNK_MAX_SUBSCRIPTIONS", "1");
    let open = process::spawn(command, "SS 12000 API listening");
    let (status, body) = subscribe(&fed, &open.addr, "https://127.0.0.1:9/hook").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = subscribe(&fed, &open.addr, "https://127.0.0.1:9/hook").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("(1, the server's --max-subscriptions)"),
        "{body}"
    );
}

#[tokio::test]
async fn without_a_base_path_it_serves_under_its_own_base_uri_in_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let db = format!("sqlite:{}", dir.path().join("school.sqlite").display());
    // The school server's base_uri in the test federation ends in /ss12000/v2.0/.
    let server = start(&fed, &db, &[]);
    let port = server.addr.rsplit(':').next().unwrap();
    let get = |path: &str| {
        client(&fed, Some("school-client"))
            .get(format!("https://localhost:{port}{path}"))
            .send()
    };
    assert_eq!(get("/ss12000/v2.0/persons").await.unwrap().status(), 200);
    assert_eq!(get("/persons").await.unwrap().status(), 404);
}
