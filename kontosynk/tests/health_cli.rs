//! `kontosynk health` end to end: the real binary against loopback mutual-TLS servers.

use std::process::Output;
use std::sync::Arc;

use fedtls::snapshot::SnapshotCell;
use fedtls::verify::unix_now;
use http::{Request, Response, StatusCode};
use kontosynk_framework::RequestBody;
use kontosynk_framework::response::{self, Body};
use kontosynk_testbed::federation::{Fed, SCHOOL, SUPPLIER};

async fn ok(_request: Request<RequestBody>) -> Response<Body> {
    response::json(StatusCode::OK, &serde_json::json!({"ok": true}))
}

/// A federation where the school's server runs on loopback and the supplier's is down; the
/// signed metadata is written to `metadata.jws` (or `expired.jws`, signed two days ago for one).
async fn setup() -> Fed {
    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::new());
    let addr = fed.serve_as("school-server", Arc::clone(&cell), ok).await;
    fed.set_base_uri(
        SCHOOL,
        &format!("https://127.0.0.1:{}/ss12000/v2.0/", addr.port()),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    fed.set_base_uri(SUPPLIER, &format!("https://127.0.0.1:{}/", closed.port()));
    cell.store(fed.snapshot());
    std::fs::write(
        fed.dir.path().join("metadata.jws"),
        fed.sign_at(unix_now(), 86_400),
    )
    .unwrap();
    std::fs::write(
        fed.dir.path().join("expired.jws"),
        fed.sign_at(unix_now() - 2 * 86_400, 86_400),
    )
    .unwrap();
    fed
}

async fn kontosynk(fed: &Fed, metadata: &str, extra: &[&str]) -> Output {
    kontosynk_with_key(fed, metadata, "supplier-client", extra).await
}

/// Runs `kontosynk health` as the supplier's client, with `key_party`'s key.
async fn kontosynk_with_key(fed: &Fed, metadata: &str, key_party: &str, extra: &[&str]) -> Output {
    let (cert, _) = fed.files("supplier-client");
    let (_, key) = fed.files(key_party);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kontosynk"));
    command
        .arg("health")
        .arg("--metadata")
        .arg(fed.dir.path().join(metadata))
        .arg("--jwks")
        .arg(&fed.fed.jwks)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["--timeout", "5"])
        .args(extra)
        .env_remove("RUST_LOG");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_and_exit_codes() {
    let fed = setup().await;

    let output = kontosynk(&fed, "metadata.jws", &["--json", "--tag", "egilv1"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    for r in results {
        for key in [
            "entity_id",
            "base_uri",
            "healthy",
            "error",
            "pin_match",
            "cert_not_after",
            "latency_ms",
        ] {
            assert!(r.get(key).is_some(), "{key} missing: {r}");
        }
    }
    let school = results.iter().find(|r| r["entity_id"] == SCHOOL).unwrap();
    assert_eq!(school["healthy"], true, "{school}");
    assert_eq!(school["error"], serde_json::Value::Null);
    assert_eq!(school["pin_match"], true);
    assert_eq!(school["http_status"], 200);
    let supplier = results.iter().find(|r| r["entity_id"] == SUPPLIER).unwrap();
    assert_eq!(supplier["healthy"], false);
    assert!(
        supplier["error"].as_str().unwrap().starts_with("tcp: "),
        "{supplier}"
    );

    // Only the healthy server: exit 0, text report.
    let output = kontosynk(&fed, "metadata.jws", &["--entity", SCHOOL]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with(&format!("OK    {SCHOOL}")), "{text}");
    assert!(
        text.contains("1 server(s): 1 healthy, 0 unhealthy"),
        "{text}"
    );

    // --only-failures: only the down servers are printed; the summary line and the exit
    // code still count every server; no progress bar when stderr is not a terminal.
    let output = kontosynk(&fed, "metadata.jws", &["--only-failures"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with(&format!("FAIL  {SUPPLIER}")), "{text}");
    assert!(!text.contains(&format!("OK    {SCHOOL}")), "{text}");
    assert!(
        text.contains("3 server(s): 1 healthy, 2 unhealthy"),
        "{text}"
    );
    assert!(!stderr(&output).contains("ETA"), "{}", stderr(&output));
    let output = kontosynk(&fed, "metadata.jws", &["--only-failures", "--json"]).await;
    let only: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(only.len(), 2, "{only:?}");
    assert!(only.iter().all(|r| r["healthy"] == false));
    assert!(only.iter().any(|r| r["entity_id"] == SUPPLIER));
    assert!(
        stderr(&output).contains("3 server(s): 1 healthy, 2 unhealthy"),
        "the summary goes to stderr with --json: {}",
        stderr(&output)
    );

    // The HTML report is written beside the text report.
    let html = fed.dir.path().join("report.html");
    let output = kontosynk(&fed, "metadata.jws", &["--html", html.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(r##"id="count-unhealthy" href="#state=unhealthy"><b>2</b>"##),
        "{page}"
    );
    assert!(page.contains("<html lang=\"sv\""), "Swedish by default");
    assert!(
        page.contains(&format!("[0,1,\"{SUPPLIER}\"")),
        "the down supplier is a failure row: {page}"
    );
    let output = kontosynk(
        &fed,
        "metadata.jws",
        &["--html", html.to_str().unwrap(), "--lang", "en"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<html lang=\"en\"") && page.contains("<title>Federation health</title>")
    );
    let output = kontosynk(&fed, "metadata.jws", &["--lang", "fi"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("use sv (svenska) or en (English)"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_errors_exit_2_with_one_error_line() {
    let fed = setup().await;

    // Expired metadata: refused, nothing is checked.
    let output = kontosynk(&fed, "expired.jws", &["--json"]).await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.starts_with("error: metadata "), "{err}");
    assert!(err.contains("exp"), "{err}");
    assert!(output.stdout.is_empty());

    // No server matches the filter.
    let output = kontosynk(&fed, "metadata.jws", &["--tag", "bolv1"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no server in the metadata matches tag=bolv1"),
        "{}",
        stderr(&output)
    );

    // A key that does not belong to the certificate.
    let output = kontosynk_with_key(&fed, "metadata.jws", "school-client", &[]).await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.starts_with("error: ") && err.contains("refused"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // Metadata from another issuer than --iss requires: refused, naming the source.
    let output = kontosynk(&fed, "metadata.jws", &["--iss", "https://other.example/"]).await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.starts_with("error: metadata "), "{err}");
    assert!(err.contains("metadata.jws"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(output.stdout.is_empty());

    // Usage errors are clap's, exit 2.
    let output = kontosynk(&fed, "metadata.jws", &["--concurrency", "0"]).await;
    assert_eq!(output.status.code(), Some(2));
}

/// Two federations given as two `--metadata`/`--jwks` pairs: one has expired, so its servers
/// are left out with a warning naming it, and the valid one's are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_federation_that_expired_is_named_and_the_valid_one_is_used() {
    let fed = setup().await;
    let expired = fed.dir.path().join("expired.jws");
    let jwks = fed.fed.jwks.display().to_string();
    let output = kontosynk(
        &fed,
        "metadata.jws",
        &[
            "--metadata",
            expired.to_str().unwrap(),
            "--jwks",
            &jwks,
            "--entity",
            SCHOOL,
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let warning = stderr(&output);
    assert!(
        warning.contains(&format!("warning: metadata source {}", expired.display()))
            && warning.contains("expired"),
        "{warning}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with(&format!("OK    {SCHOOL}")));

    // Both expired: nothing to check with, and the error names the first source.
    let output = kontosynk(
        &fed,
        "expired.jws",
        &["--metadata", expired.to_str().unwrap(), "--jwks", &jwks],
    )
    .await;
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("expired"), "{}", stderr(&output));

    // Pairs that do not match are a usage problem named by flag.
    let output = kontosynk(
        &fed,
        "metadata.jws",
        &["--metadata", expired.to_str().unwrap()],
    )
    .await;
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("2 --metadata but 1 --jwks"),
        "{}",
        stderr(&output)
    );
}
