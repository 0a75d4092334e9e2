//! `kontosynk-server egil` as a real process over a real SQLite file, and `export
//! --egil-tenant` turning what a school organizer pushed into an SS 12000:2020 file that
//! `import` loads.

mod process;

use std::process::Command;

use fedtls::testfed::{FederationOptions, TestFederation};
use fedtls::tls::{PinnedServerVerifier, client_config, load_cert_chain, load_private_key};
use kontosynk_testbed::egil::{organisation, pupil, school_unit, uuid};
use serde_json::Value;

fn command(fed: &TestFederation, db: &str, extra: &[&str]) -> Command {
    let mut command = process::serve_command("egil", fed, "supplier-server");
    command.args(["--db", db]).args(extra);
    command
}

fn client(fed: &TestFederation, party: &str) -> reqwest::Client {
    let party = fed.party(party).unwrap();
    let identity = (
        load_cert_chain(&party.cert).unwrap(),
        load_private_key(&party.key).unwrap(),
    );
    let verifier =
        PinnedServerVerifier::new([fed.party("supplier-server").unwrap().pin]).into_arc();
    let config = client_config(verifier, Some(identity), &[b"http/1.1"]).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn pushed_data_is_exported_as_ss12000_2020_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let db = format!("sqlite:{}", dir.path().join("egil.sqlite").display());
    let server = process::spawn(
        command(
            &fed,
            &db,
            &["--client-tag", "egilv1", "--base-path", "/egil"],
        ),
        "EGIL server listening",
    );
    let port = server.addr.rsplit(':').next().unwrap();
    let url = |path: &str| format!("https://localhost:{port}/egil/{path}");
    let school = client(&fed, "school-client");
    let org = uuid(1, 1);
    let unit = uuid(2, 1);
    for (path, body) in [
        ("Organisations", organisation(&org, "Exempla kommun")),
        ("SchoolUnits", school_unit(&unit, &org, "87654321")),
        ("Users", pupil(&uuid(3, 1), 1, &unit)),
        ("Users", pupil(&uuid(3, 2), 2, &unit)),
    ] {
        let response = school
            .post(url(path))
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{path}");
    }
    // Not under the base path: 404.
    let response = school
        .get(format!("https://localhost:{port}/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    drop(server);

    let (code, stdout, stderr) = run(&["export", "--db", &db, "--egil-tenants"]);
    assert_eq!(code, 0, "{stderr}");
    let tenant: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(tenant["tenant"], kontosynk_testbed::federation::SCHOOL);
    assert_eq!(tenant["organization_id"], "SE2120009999");

    let out = dir.path().join("school.json");
    let (code, _, stderr) = run(&[
        "export",
        "--db",
        &db,
        "--egil-tenant",
        kontosynk_testbed::federation::SCHOOL,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("persons: 2"), "{stderr}");
    let exported: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(exported["organisations"].as_array().unwrap().len(), 2);
    assert_eq!(
        exported["persons"][0]["enrolments"][0]["enroledAt"]["id"],
        unit
    );

    // The mapped file is valid SS 12000:2020 input for the project's own import.
    let school_db = format!("sqlite:{}", dir.path().join("school.sqlite").display());
    let (code, _, stderr) = run(&["import", "--db", &school_db, out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");

    // Another tenant has nothing.
    let (code, stdout, _) = run(&[
        "export",
        "--db",
        &db,
        "--egil-tenant",
        "https://other.example",
    ]);
    assert_eq!(code, 0);
    let empty: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(empty["persons"], serde_json::json!([]));
}

#[test]
fn configuration_mistakes_are_one_error_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let db = format!("sqlite:{}", dir.path().join("x.sqlite").display());
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "skola=short\n").unwrap();
    for (extra, needle) in [
        (vec!["--api-key-listen", "127.0.0.1:0"], "--api-key-file"),
        (
            vec!["--api-key-file", keys.to_str().unwrap()],
            "--api-key-listen",
        ),
        (
            vec![
                "--api-key-listen",
                "127.0.0.1:0",
                "--api-key-file",
                keys.to_str().unwrap(),
            ],
            "shorter than 16",
        ),
        (vec!["--tenant-rate-limit", "0"], "--tenant-rate-limit"),
        (
            vec!["--default-count", "500", "--max-count", "100"],
            "--default-count",
        ),
    ] {
        let output = command(&fed, &db, &extra).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{extra:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(needle), "{extra:?}: {stderr}");
    }
    // The key in the environment is never shown by --help.
    let output = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"))
        .args(["egil", "--help"])
        .env("KONTOSYNK_EGIL_API_KEYS", "skola=secret-secret-secret")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--tenant-rate-limit"));
    assert!(!help.contains("secret-secret"));
}
