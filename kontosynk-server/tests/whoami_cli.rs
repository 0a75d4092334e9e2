//! `kontosynk-server whoami` as a real process, queried with curl as members do.

use std::process::Command;

mod process;

use fedtls::testfed::{FederationOptions, TestFederation};
use process::Server;
use serde_json::Value;

/// Starts whoami on an ephemeral port and reads the bound address from its log.
fn start(fed: &TestFederation, extra: &[&str]) -> Server {
    let mut command = process::serve_command("whoami", fed, "school-server");
    command.args(extra);
    process::spawn(command, "whoami listening")
}

fn curl(fed: &TestFederation, client: &str, server: &Server) -> std::process::Output {
    let party = fed.party(client).unwrap();
    let pin = fed.party("school-server").unwrap().pin;
    Command::new(fedtls::testfed::require_program("curl", "curl"))
        .args(["--silent", "--show-error", "--max-time", "20", "--insecure"])
        .arg("--cert")
        .arg(&party.cert)
        .arg("--key")
        .arg(&party.key)
        .arg("--pinnedpubkey")
        .arg(pin.to_curl())
        .arg(format!("https://{}/", server.addr))
        .output()
        .expect("curl is installed (see .ci/run)")
}

#[test]
fn curl_with_a_listed_client_sees_its_identity_and_an_unlisted_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let server = start(&fed, &[]);

    let out = curl(&fed, "school-client", &server);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(body["entity_id"], "https://school.test.example");
    assert_eq!(body["organization"], "Exempla kommun");
    assert_eq!(body["organization_id"], "SE2120009999");
    assert_eq!(body["tags"], serde_json::json!(["egilv1"]));
    assert_eq!(body["scopes"][1], "skola.exempla.test.example");
    assert_eq!(
        body["pin"],
        fed.party("school-client").unwrap().pin.to_string()
    );

    let out = curl(&fed, "unlisted-client", &server);
    assert!(
        !out.status.success(),
        "an unlisted client must fail the handshake"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn startup_errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let server = fed.party("school-server").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"))
        .args(["whoami", "--listen", "127.0.0.1:0", "--metadata"])
        .arg(&fed.metadata_jws)
        .arg("--jwks")
        .arg(&fed.metadata_json)
        .arg("--cert")
        .arg(&server.cert)
        .arg("--key")
        .arg(&server.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("error: trust anchor "),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"))
        .args(["whoami", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing required flags is a usage error"
    );
}
