//! A server checks its own certificate against the metadata at start and on SIGHUP: an
//! unlisted one is named with the fix (a warning, or a refusal with `--require-listed`), and
//! `/metrics` says whether the certificate in use is listed. The real binary, real files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A running server whose stderr goes to a file; killed on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(mut command: Command, dir: &Path, name: &str) -> Running {
        let log = dir.join(format!("{name}.log"));
        let child = command
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Running { child, log }
    }

    /// Waits up to 30 s for a log line containing `text`, and returns the log so far.
    fn wait_for(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return log;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no {text:?} in the log: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metrics(&self) -> String {
        let log = self.wait_for("admin_addr=");
        let at = log.find("admin_addr=").unwrap() + "admin_addr=".len();
        let addr = log[at..].split_whitespace().next().unwrap();
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
        dir.path(),
        "unlisted",
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
        dir.path(),
        "listed",
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
        dir.path(),
        "reload",
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
