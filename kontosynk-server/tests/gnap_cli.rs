//! `kontosynk-server gnap` as a real process, asked for tokens with curl as members do;
//! key rotation by SIGHUP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod process;

use fedtls::jwk::{Algorithm, SigningKey};
use fedtls::testfed::{FederationOptions, TestFederation};
use process::Server;
use serde_json::{Value, json};

const ISSUER: &str = "https://gnap.test.example";

fn command(fed: &TestFederation) -> Command {
    let mut command = process::serve_command("gnap", fed, "authserver");
    command.args(["--issuer", ISSUER]).env_remove("RUST_LOG");
    command
}

/// Starts the server on an ephemeral port and reads the bound address from its log.
fn start(fed: &TestFederation, extra: &[&str]) -> Server {
    let mut command = command(fed);
    command.args(extra).env("RUST_LOG", "info");
    process::spawn(command, "gnap authorization server listening")
}

/// curl as `client`, pinning the authorization server; returns (HTTP status, headers, body).
fn curl(
    fed: &TestFederation,
    client: &str,
    server: &Server,
    path: &str,
    body: Option<&Value>,
) -> (u16, String, Value) {
    curl_with(fed, client, server, path, body, &[])
}

/// [`curl`] with extra curl arguments.
fn curl_with(
    fed: &TestFederation,
    client: &str,
    server: &Server,
    path: &str,
    body: Option<&Value>,
    extra: &[&str],
) -> (u16, String, Value) {
    let party = fed.party(client).unwrap();
    let pin = fed.party("authserver").unwrap().pin;
    let mut command = Command::new(fedtls::testfed::require_program("curl", "curl"));
    command
        .args(["--silent", "--show-error", "--max-time", "20", "--insecure"])
        .args(["--dump-header", "-", "--write-out", "\n%{http_code}"])
        .arg("--cert")
        .arg(&party.cert)
        .arg("--key")
        .arg(&party.key)
        .arg("--pinnedpubkey")
        .arg(pin.to_curl())
        .args(extra);
    if let Some(body) = body {
        command
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(body.to_string());
    }
    let out = command
        .arg(format!("https://{}{path}", server.addr))
        .output()
        .expect("curl is installed (see .ci/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (rest, status) = text.rsplit_once('\n').unwrap();
    let (headers, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    (
        status.trim().parse().unwrap(),
        headers.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn grant(client_key: &str) -> Value {
    json!({"access_token": [{"access": [{"type": "provisioning-api"}], "flags": ["bearer"]}],
           "client": {"key": client_key}})
}

fn verify(token: &str, jwks: &Value) -> Result<Value, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let jwk = set
        .find(&kid)
        .ok_or(format!("kid {kid} is not published"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["https://api.test.example"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

fn write_key(path: &Path, kid: &str) -> PathBuf {
    let key = SigningKey::generate(Algorithm::Es256, kid).unwrap();
    std::fs::write(path, key.to_private_jwk_json()).unwrap();
    path.to_path_buf()
}

#[test]
fn curl_gets_a_token_and_sighup_rotates_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let current = write_key(&dir.path().join("current.jwk"), "k1");
    let previous = write_key(&dir.path().join("previous.jwk"), "k0");
    let server = start(
        &fed,
        &[
            "--signing-key",
            current.to_str().unwrap(),
            "--previous-key",
            previous.to_str().unwrap(),
            "--audience",
            "https://api.test.example",
            "--lifetime",
            "600",
        ],
    );

    let (status, headers, body) = curl(
        &fed,
        "school-client",
        &server,
        "/transaction",
        Some(&grant("https://school.test.example")),
    );
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains("cache-control: no-store"), "{headers}");
    assert_eq!(body["access_token"]["expires_in"], 600);
    let first = body["access_token"]["value"].as_str().unwrap().to_owned();
    let (_, _, jwks) = curl(
        &fed,
        "school-client",
        &server,
        "/.well-known/jwks.json",
        None,
    );
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let claims = verify(&first, &jwks).unwrap();
    assert_eq!(claims["entity_id"], "https://school.test.example");
    assert_eq!(claims["aud"], "https://api.test.example");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );

    // A client naming another entity is refused.
    let (status, _, body) = curl(
        &fed,
        "school-client",
        &server,
        "/transaction",
        Some(&grant("https://supplier.test.example/moa")),
    );
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "request_denied");

    // Rotate: k1 becomes the previous key, k2 signs; SIGHUP reloads without a restart.
    std::fs::copy(&current, &previous).unwrap();
    write_key(&current, "k2");
    let hup = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut rotated = None;
    for _ in 0..100 {
        let (_, _, jwks) = curl(
            &fed,
            "school-client",
            &server,
            "/.well-known/jwks.json",
            None,
        );
        let kids: Vec<_> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        if kids.contains(&"k2".to_owned()) {
            assert_eq!(kids, ["k2", "k1"]);
            rotated = Some(jwks);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let jwks = rotated.expect("the keys are reloaded after SIGHUP");
    let (status, _, body) = curl(
        &fed,
        "school-client",
        &server,
        "/transaction",
        Some(&grant("https://school.test.example")),
    );
    assert_eq!(status, 200);
    let second = body["access_token"]["value"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(second).unwrap().kid.as_deref(),
        Some("k2")
    );
    verify(second, &jwks).unwrap();
    verify(&first, &jwks).expect("a token from before the rotation still verifies");

    // OPTIONS /transaction: discovery.
    let pin = fed.party("authserver").unwrap().pin;
    let party = fed.party("school-client").unwrap();
    let out = Command::new(fedtls::testfed::require_program("curl", "curl"))
        .args(["--silent", "--insecure", "-X", "OPTIONS", "--cert"])
        .arg(&party.cert)
        .arg("--key")
        .arg(&party.key)
        .arg("--pinnedpubkey")
        .arg(pin.to_curl())
        .arg(format!("https://{}/transaction", server.addr))
        .output()
        .unwrap();
    let discovery: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        discovery["grant_request_endpoint"],
        "https://gnap.test.example/transaction"
    );
}

#[test]
fn bad_keys_and_flags_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let garbage = dir.path().join("garbage.jwk");
    std::fs::write(&garbage, "not a key").unwrap();
    let p384 = dir.path().join("p384.jwk");
    std::fs::write(
        &p384,
        SigningKey::generate(Algorithm::Es384, "p384")
            .unwrap()
            .to_private_jwk_json(),
    )
    .unwrap();
    for (key, expected) in [(&garbage, "garbage.jwk"), (&p384, "ES256")] {
        let out = command(&fed)
            .arg("--signing-key")
            .arg(key)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error:") && last.contains(expected),
            "{stderr}"
        );
    }
    let good = write_key(&dir.path().join("good.jwk"), "k");
    let out = command(&fed)
        .arg("--signing-key")
        .arg(&good)
        .args(["--lifetime", "0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a zero lifetime is a usage error"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"))
        .args(["gnap", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--previous-key"));
}

#[test]
fn the_transaction_body_limit_is_set_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let key = write_key(&dir.path().join("k.jwk"), "k1");
    let mut command = command(&fed);
    command
        .arg("--signing-key")
        .arg(&key)
        .env("KONTOSYNK_GNAP_MAX_TRANSACTION_BODY", "2048")
        .env("RUST_LOG", "info");
    let server = process::spawn(command, "gnap authorization server listening");
    let entity = fed
        .party("school-client")
        .unwrap()
        .entity_id
        .clone()
        .unwrap();
    let (status, _, body) = curl(
        &fed,
        "school-client",
        &server,
        "/transaction",
        Some(&grant(&entity)),
    );
    assert_eq!(status, 200, "{body}");
    let mut big = grant(&entity);
    big["padding"] = Value::String("x".repeat(3000));
    // HTTP/1.1: the server answers before reading the whole body, and curl 7.88 reports the
    // HTTP/2 stream reset that follows such an early answer as an error instead of the answer.
    let (status, _, body) = curl_with(
        &fed,
        "school-client",
        &server,
        "/transaction",
        Some(&big),
        &["--http1.1"],
    );
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    let description = body["error"]["description"].as_str().unwrap();
    assert!(
        description.contains("larger than 2048 bytes"),
        "{description}"
    );
    assert!(
        description.contains("--max-transaction-body"),
        "{description}"
    );
}

#[test]
fn client_auth_is_sunets_rule_by_default_and_the_pin_rule_by_environment() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let key = write_key(&dir.path().join("k.jwk"), "k1");
    let supplier = fed
        .party("supplier-client")
        .unwrap()
        .entity_id
        .clone()
        .unwrap();
    // The supplier's leaf is issued by its CA; the metadata lists the CA and the leaf's pin.
    let sunet = start(&fed, &["--signing-key", key.to_str().unwrap()]);
    let (status, _, body) = curl(
        &fed,
        "supplier-client",
        &sunet,
        "/transaction",
        Some(&grant(&supplier)),
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "request_denied");
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("issuers"),
        "{body}"
    );
    drop(sunet);

    let mut command = command(&fed);
    command
        .arg("--signing-key")
        .arg(&key)
        .env("KONTOSYNK_GNAP_CLIENT_AUTH", "pin")
        .env("RUST_LOG", "info");
    let pin = process::spawn(command, "gnap authorization server listening");
    let (status, _, body) = curl(
        &fed,
        "supplier-client",
        &pin,
        "/transaction",
        Some(&grant(&supplier)),
    );
    assert_eq!(status, 200, "{body}");

    let out = command_with_key(&fed, &key)
        .args(["--client-auth", "cert"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown rule is a usage error"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"sunet\", \"pin\" or \"either\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`command`] with a signing key.
fn command_with_key(fed: &TestFederation, key: &Path) -> Command {
    let mut command = command(fed);
    command.arg("--signing-key").arg(key);
    command
}
