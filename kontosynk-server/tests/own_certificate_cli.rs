//! A server checks its own certificate against the metadata at start and on SIGHUP: an
//! unlisted one is named with the fix (a warning, or a refusal with `--require-listed`), and
//! `/metrics` says whether the certificate in use is listed. The real binary, real files.

use std::path::Path;
use std::process::{Command, Stdio};

mod process;

use fedtls::testfed::{FederationOptions, TestFederation};

fn whoami(fed: &TestFederation, cert: &Path, key: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"));
    command
        .args([
            "whoami",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ])
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("--metadata")
        .arg(&fed.metadata_jws)
        .arg("--jwks")
        .arg(&fed.jwks)
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("KONTOSYNK_REQUIRE_LISTED")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

type Running = process::Logged;

impl process::Logged {
    fn metrics(&self) -> String {
        let addr = self.logged("admin_addr=", "admin_addr");
        let out = Command::new(fedtls::testfed::require_program("curl", "curl"))
            .args(["--silent", "--show-error", "--max-time", "20"])
            .arg(format!("http://{addr}/metrics"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn an_unlisted_server_certificate_is_named_refused_on_request_and_shown_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let unlisted = fed.party("unlisted-client").unwrap();
    let pin = unlisted.pin.to_string();

    // --require-listed: no start, one error line with the pin and the fix.
    let out = whoami(&fed, &unlisted.cert, &unlisted.key, &["--require-listed"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    for part in [
        pin.as_str(),
        "is not listed as a server of any entity",
        "fedtls entity",
        "--require-listed",
    ] {
        assert!(last.contains(part), "{part:?} missing: {stderr}");
    }

    // Without it: the server starts, says the same in a warning, and /metrics shows it.
    let server = Running::start(
        whoami(&fed, &unlisted.cert, &unlisted.key, &[]),
        dir.path().join("unlisted.log"),
    );
    let log = server.wait_for("whoami listening");
    assert!(log.contains("WARN") && log.contains(&pin), "{log}");
    assert!(log.contains("is not listed as a server"), "{log}");
    let metrics = server.metrics();
    assert!(
        metrics.contains("\nkontosynk_own_certificate_listed 0\n"),
        "{metrics}"
    );

    let listed = fed.party("school-server").unwrap();
    let server = Running::start(
        whoami(&fed, &listed.cert, &listed.key, &[]),
        dir.path().join("listed.log"),
    );
    server.wait_for("whoami listening");
    let metrics = server.metrics();
    assert!(
        metrics.contains("\nkontosynk_own_certificate_listed 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nkontosynk_own_certificate_expires_in_seconds "),
        "{metrics}"
    );
}

#[cfg(unix)]
#[test]
fn on_sighup_an_unlisted_certificate_is_not_switched_to_with_require_listed() {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    let listed = fed.party("school-server").unwrap();
    let unlisted = fed.party("unlisted-client").unwrap();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::copy(&listed.cert, &cert).unwrap();
    std::fs::copy(&listed.key, &key).unwrap();
    let server = Running::start(
        whoami(&fed, &cert, &key, &["--require-listed"]),
        dir.path().join("reload.log"),
    );
    server.wait_for("whoami listening");

    // A renewed certificate whose pin was never published.
    std::fs::copy(&unlisted.cert, &cert).unwrap();
    std::fs::copy(&unlisted.key, &key).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let log = server.wait_for("keeping the current one");
    assert!(log.contains(&unlisted.pin.to_string()), "{log}");
    let metrics = server.metrics();
    assert!(
        metrics.contains("\nkontosynk_own_certificate_listed 1\n"),
        "{metrics}"
    );
}
