//! Health checks against real loopback servers: healthy, down, wrong pin, expired
//! certificate, wrong host name, 5xx, and a server that refuses our client certificate.

use std::sync::Arc;

use fedtls::snapshot::SnapshotCell;
use fedtls::verify::unix_now;
use http::{Request, Response, StatusCode};
use kontosynk_framework::RequestBody;
use kontosynk_framework::response::{self, Body};

use super::*;
use crate::discovery::ServerQuery;
use crate::testsupport::{Fed, SCHOOL, rcgen_cert, serve, server_entity};

async fn ok(_request: Request<RequestBody>) -> Response<Body> {
    response::json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not_found"}),
    )
}

async fn broken(_request: Request<RequestBody>) -> Response<Body> {
    response::json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({}))
}

const DAY: i64 = 86_400;

/// A federation with one server per case; returns the results keyed by entity id.
pub(crate) async fn federation_of_cases() -> (Fed, Vec<ServerHealth>) {
    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::new());
    let dir = fed.dir.path().to_path_buf();
    let now = unix_now();

    // Healthy: the school's own server and certificate.
    let healthy = fed.serve_as("school-server", Arc::clone(&cell), ok).await;
    fed.set_base_uri(
        SCHOOL,
        &format!("https://127.0.0.1:{}/ss12000/v2.0/", healthy.port()),
    );

    // Wrong pin: serves a fresh certificate; the metadata lists another key.
    let (c, k, _) = rcgen_cert(
        &dir,
        "impostor",
        &["localhost", "127.0.0.1"],
        now - DAY,
        now + 90 * DAY,
    );
    let impostor = serve(Arc::clone(&cell), &c, &k, ok).await;
    let listed = fed.fed.party("supplier-server").unwrap().pin;
    fed.push_entity(server_entity(
        "https://wrongpin.test.example",
        "Fel Nyckel AB",
        "SE5560000001",
        &format!("https://localhost:{}/api/", impostor.port()),
        &listed,
        "egilv1",
    ));

    // Expired certificate (pinned correctly).
    let (c, k, pin) = rcgen_cert(&dir, "expired", &["localhost"], now - 90 * DAY, now - DAY);
    let expired = serve(Arc::clone(&cell), &c, &k, ok).await;
    fed.push_entity(server_entity(
        "https://expired.test.example",
        "Utgången AB",
        "SE5560000002",
        &format!("https://localhost:{}/", expired.port()),
        &pin,
        "egilv1",
    ));

    // Wrong host name (pinned correctly, valid, but names another host).
    let (c, k, pin) = rcgen_cert(
        &dir,
        "wronghost",
        &["api.other.example"],
        now - DAY,
        now + 90 * DAY,
    );
    let wronghost = serve(Arc::clone(&cell), &c, &k, ok).await;
    fed.push_entity(server_entity(
        "https://wronghost.test.example",
        "Fel Namn AB",
        "SE5560000003",
        &format!("https://localhost:{}/", wronghost.port()),
        &pin,
        "egilv1",
    ));

    // Expiring soon (10 days) and answering 503.
    let (c, k, pin) = rcgen_cert(
        &dir,
        "expiring",
        &["localhost"],
        now - DAY,
        now + 10 * DAY + 3600,
    );
    let expiring = serve(Arc::clone(&cell), &c, &k, broken).await;
    fed.push_entity(server_entity(
        "https://expiring.test.example",
        "Snart Utgången AB",
        "SE5560000004",
        &format!("https://localhost:{}/", expiring.port()),
        &pin,
        "egilv1",
    ));

    // Down: nobody listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    fed.push_entity(server_entity(
        "https://down.test.example",
        "Nere AB",
        "SE5560000005",
        &format!("https://127.0.0.1:{}/", closed.port()),
        &listed,
        "egilv1",
    ));

    // Refuses our client: its own metadata (an empty cell) lists no clients.
    let (c, k, pin) = rcgen_cert(&dir, "strict", &["localhost"], now - DAY, now + 90 * DAY);
    let strict = serve(Arc::new(SnapshotCell::new()), &c, &k, ok).await;
    fed.push_entity(server_entity(
        "https://strict.test.example",
        "Sträng AB",
        "SE5560000006",
        &format!("https://localhost:{}/", strict.port()),
        &pin,
        "egilv1",
    ));

    cell.store(fed.snapshot());
    let snapshot = fed.snapshot();
    let found = ServerQuery::tag("egilv1").find(snapshot.index());
    let cert = Arc::new(ClientCert::new(&fed.identity("supplier-client")).unwrap());
    let results = check_all(&found, cert, &HealthOptions::default()).await;
    (fed, results)
}

fn by_entity<'a>(results: &'a [ServerHealth], entity_id: &str) -> &'a ServerHealth {
    results
        .iter()
        .find(|r| r.entity_id == entity_id)
        .unwrap_or_else(|| panic!("no result for {entity_id}"))
}

#[tokio::test]
async fn each_failure_is_found_and_named() {
    let (fed, results) = federation_of_cases().await;
    // school, supplier (nobody on 9443 → down), six cases.
    assert_eq!(results.len(), 8, "{results:#?}");

    let school = by_entity(&results, SCHOOL);
    assert!(school.healthy, "{school:#?}");
    assert_eq!(school.error, None);
    assert_eq!(school.pin_match, Some(true));
    assert_eq!(school.hostname_match, Some(true));
    assert_eq!(school.http_status, Some(404));
    assert_eq!(school.alpn.as_deref(), Some("h2"));
    assert!(school.latency_ms.is_some());
    assert!(school.cert_not_after.is_some());
    assert!(school.warnings.is_empty(), "{:?}", school.warnings);
    let stages: Vec<Stage> = school.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Dns,
            Stage::Tcp,
            Stage::Tls,
            Stage::Hostname,
            Stage::Http
        ]
    );

    let wrong = by_entity(&results, "https://wrongpin.test.example");
    assert!(!wrong.healthy);
    assert_eq!(wrong.pin_match, Some(false));
    let presented = wrong.presented_pin.as_deref().unwrap();
    let error = wrong.error.as_deref().unwrap();
    assert!(
        error.starts_with("tls: the server presented pin"),
        "{error}"
    );
    assert!(error.contains(presented), "{error}");
    assert!(
        error.contains(&fed.fed.party("supplier-server").unwrap().pin.to_string()),
        "{error}"
    );
    assert_eq!(wrong.http_status, None, "no HTTP to an unpinned server");

    let expired = by_entity(&results, "https://expired.test.example");
    assert!(!expired.healthy);
    assert_eq!(expired.pin_match, Some(true));
    assert!(expired.cert_days_left.unwrap() < 0);
    let error = expired.error.as_deref().unwrap();
    assert!(error.contains("expired on 20"), "{error}");

    let host = by_entity(&results, "https://wronghost.test.example");
    assert!(!host.healthy);
    assert_eq!(host.pin_match, Some(true));
    assert_eq!(host.hostname_match, Some(false));
    let error = host.error.as_deref().unwrap();
    assert!(
        error.starts_with("hostname: the certificate does not name localhost"),
        "{error}"
    );
    assert!(error.contains("api.other.example"), "{error}");
    assert_eq!(
        host.http_status,
        Some(404),
        "HTTP is still tried and reported"
    );

    let expiring = by_entity(&results, "https://expiring.test.example");
    assert!(!expiring.healthy);
    assert_eq!(expiring.http_status, Some(503));
    assert!(expiring.error.as_deref().unwrap().contains("HTTP 503"));
    assert_eq!(expiring.cert_days_left, Some(10));
    assert!(
        expiring.warnings[0].contains("expires in 10 day(s)"),
        "{:?}",
        expiring.warnings
    );

    let down = by_entity(&results, "https://down.test.example");
    assert!(!down.healthy);
    assert!(
        down.error.as_deref().unwrap().starts_with("tcp: "),
        "{down:?}"
    );
    assert_eq!(down.pin_match, None);

    // Refuses our client certificate: the handshake is judged on its own (reachable, pin
    // OK, valid, names the host), so this is a warning state, not a failure.
    let strict = by_entity(&results, "https://strict.test.example");
    assert!(strict.healthy, "{strict:#?}");
    assert_eq!(strict.state, HealthState::RefusedClient);
    assert_eq!(strict.error, None);
    assert_eq!(strict.client_accepted, Some(false));
    assert_eq!(strict.pin_match, Some(true));
    assert_eq!(strict.hostname_match, Some(true));
    assert!(
        strict.warnings[0]
            .starts_with("reachable, pin OK, but the server refused our client certificate"),
        "{:?}",
        strict.warnings
    );
    assert_eq!(school.state, HealthState::Healthy);
    assert_eq!(school.client_accepted, Some(true));
    assert_eq!(wrong.state, HealthState::Unhealthy);
    assert_eq!(
        wrong.client_accepted, None,
        "an unpinned server is not asked"
    );
    assert_eq!(expiring.state, HealthState::Unhealthy);

    let summary = Summary::of(&results, 30);
    assert_eq!(summary.total, 8);
    assert_eq!(summary.healthy, 2);
    assert_eq!(summary.unhealthy, 6);
    assert_eq!(summary.expiring, 1);
    assert_eq!(summary.refused_client, 1);
}

#[tokio::test]
async fn hostname_mismatch_can_be_a_warning() {
    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::new());
    let now = unix_now();
    let (c, k, pin) = rcgen_cert(
        fed.dir.path(),
        "wronghost",
        &["api.other.example"],
        now - DAY,
        now + 90 * DAY,
    );
    let addr = serve(Arc::clone(&cell), &c, &k, ok).await;
    fed.push_entity(server_entity(
        "https://wronghost.test.example",
        "Fel Namn AB",
        "SE5560000003",
        &format!("https://localhost:{}/", addr.port()),
        &pin,
        "bolv1",
    ));
    cell.store(fed.snapshot());
    let snapshot = fed.snapshot();
    let found = ServerQuery::tag("bolv1").find(snapshot.index());
    let cert = Arc::new(ClientCert::new(&fed.identity("supplier-client")).unwrap());
    let options = HealthOptions {
        hostname_warn_only: true,
        ..HealthOptions::default()
    };
    let results = check_all(&found, cert, &options).await;
    assert_eq!(results.len(), 1);
    assert!(results[0].healthy, "{:#?}", results[0]);
    assert_eq!(results[0].state, HealthState::Warning);
    assert_eq!(results[0].hostname_match, Some(false));
    assert!(results[0].warnings[0].contains("does not name localhost"));
}

#[tokio::test]
async fn unusable_servers_and_dns_failures_are_unhealthy() {
    let mut fed = Fed::new();
    let pin = fed.fed.party("school-server").unwrap().pin;
    fed.push_entity(server_entity(
        "https://plain.test.example",
        "Okrypterad AB",
        "SE5560000007",
        "http://plain.test.example/",
        &pin,
        "bolv1",
    ));
    fed.push_entity(server_entity(
        "https://nxdomain.test.example",
        "Finns Inte AB",
        "SE5560000008",
        "https://does-not-exist.invalid/",
        &pin,
        "bolv1",
    ));
    let snapshot = fed.snapshot();
    let found = ServerQuery::tag("bolv1").find(snapshot.index());
    let cert = Arc::new(ClientCert::new(&fed.identity("supplier-client")).unwrap());
    let results = check_all(&found, cert, &HealthOptions::default()).await;
    assert_eq!(results.len(), 2);
    let dns = by_entity(&results, "https://nxdomain.test.example");
    assert!(!dns.healthy);
    assert!(
        dns.error.as_deref().unwrap().starts_with("dns: "),
        "{dns:?}"
    );
    let plain = by_entity(&results, "https://plain.test.example");
    assert!(!plain.healthy);
    assert!(
        plain.error.as_deref().unwrap().contains("not https"),
        "{plain:?}"
    );
}

/// Runs headless Chromium with `args` plus the file URL of `page`; its stdout.
fn chromium(page: &std::path::Path, args: &[String]) -> String {
    chromium_url(&format!("file://{}", page.display()), args)
}

/// Runs headless Chromium with `args` plus `url`; its stdout.
pub(crate) fn chromium_url(url: &str, args: &[String]) -> String {
    let binary = fedtls::testfed::require_program("chromium", "chromium");
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        text
    });
    // A hung browser must not hang the test suite: give it two minutes, then kill it.
    for _ in 0..1200 {
        if child.try_wait().unwrap().is_some() {
            return reader.join().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromium did not finish within two minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_chromium_with_counts_and_red_rows() {
    let (fed, results) = federation_of_cases().await;
    let context = html::ReportContext {
        title: "Federation health <test>".to_owned(),
        metadata_source: "metadata.jws".to_owned(),
        metadata_iss: Some(fed.fed.iss.clone()),
        metadata_expires: Some("2030-01-01T00:00:00Z".to_owned()),
        checked_at: "2026-01-01T00:00:00Z".to_owned(),
        expiry_warning_days: 30,
        ..html::ReportContext::default()
    };
    let page = html::render(&results, &context);
    assert!(
        !page.contains(" src=") && !page.contains("<link"),
        "no external scripts, styles or fonts"
    );
    assert!(
        page.contains("Federation health &lt;test&gt;"),
        "titles are escaped"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, &page).unwrap();

    let path_for_dom = path.clone();
    let dom = tokio::task::spawn_blocking(move || {
        chromium_url(
            &format!("file://{}#lang=en", path_for_dom.display()),
            &["--dump-dom".to_owned()],
        )
    })
    .await
    .unwrap();
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let dom = squeeze(&dom);
    let count = |id: &str, n: usize, word: &str| {
        format!(
            r##"id="count-{id}" href="#state={}"><b>{n}</b><span data-t="{id}">{word}</span>"##,
            if id == "total" { "" } else { id }
        )
    };
    assert!(dom.contains(&count("total", 8, "servers")), "{dom}");
    assert!(dom.contains(&count("healthy", 1, "healthy")), "{dom}");
    assert!(dom.contains(&count("unhealthy", 6, "unhealthy")), "{dom}");
    assert!(
        dom.contains(&count("refused_client", 1, "refuse our client certificate")),
        "{dom}"
    );
    assert!(
        dom.contains(r##"id="count-expiring" href="#state=warning"><b>1</b>"##),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr class="s0" data-entity="https://wrongpin.test.example" data-state="unhealthy"><td class="state">✘ FAIL</td>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr class="s1" data-entity="https://strict.test.example" data-state="refused_client"><td class="state">⚠ Refuses us</td>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<td class="state">✔ OK</td><td colspan="10">Exempla kommun"#),
        "the healthy school is collapsed into its organization: {dom}"
    );
    assert!(dom.contains("expires in 10 day(s)"), "{dom}");
    assert!(dom.contains("Fel Nyckel AB"), "{dom}");
    let first_failure = dom.find("data-state=\"unhealthy\"").unwrap();
    let refused = dom.find("data-state=\"refused_client\"").unwrap();
    let group = dom.find("<tr class=\"group\"").unwrap();
    assert!(
        first_failure < refused && refused < group,
        "failures, then refused, then healthy"
    );

    // A screenshot a person can look at (KONTOSYNK_KEEP_SCREENSHOT=DIR keeps it).
    let shot = dir.path().join("report.png");
    let path_for_shot = path.clone();
    let shot_arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || {
        chromium(
            &path_for_shot,
            &[shot_arg, "--window-size=1400,1800".to_owned()],
        )
    })
    .await
    .unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("KONTOSYNK_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, std::path::Path::new(&keep).join("health-report.png")).unwrap();
        std::fs::copy(
            &path,
            std::path::Path::new(&keep).join("health-report.html"),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn json_and_metrics_carry_the_promised_fields() {
    let (_fed, results) = federation_of_cases().await;
    let json = serde_json::to_value(&results).unwrap();
    let array = json.as_array().unwrap();
    assert_eq!(array.len(), 8);
    for object in array {
        for key in [
            "entity_id",
            "base_uri",
            "healthy",
            "error",
            "pin_match",
            "cert_not_after",
            "latency_ms",
            "stages",
        ] {
            assert!(object.get(key).is_some(), "{key} missing in {object}");
        }
        assert!(object["healthy"].is_boolean());
        assert_eq!(
            object["healthy"].as_bool().unwrap(),
            object["error"].is_null(),
            "{object}"
        );
    }
    let school = array.iter().find(|o| o["entity_id"] == SCHOOL).unwrap();
    assert_eq!(school["pin_match"], true);
    assert!(school["latency_ms"].is_u64());
    assert!(school["cert_not_after"].as_str().unwrap().ends_with('Z'));

    let text = metrics::render(&results, 3, 1_700_000_000, 30);
    assert!(
        text.contains("kontosynk_health_servers{state=\"refused_client\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("kontosynk_health_runs_total 3\n"), "{text}");
    assert!(
        text.contains("kontosynk_health_servers{state=\"unhealthy\"} 6\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "kontosynk_health_server_up{{entity_id=\"{SCHOOL}\",base_uri=\"{}\",organization_id=\"SE2120009999\"}} 1\n",
            school["base_uri"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "kontosynk_health_server_pin_match{entity_id=\"https://wrongpin.test.example\""
        ),
        "{text}"
    );
    assert!(
        text.contains("kontosynk_health_server_cert_expiry_timestamp_seconds{"),
        "{text}"
    );
}

#[tokio::test]
async fn the_prometheus_rules_example_uses_metrics_we_export() {
    let rules = include_str!("../../../deploy/prometheus/kontosynk-health.rules.yml");
    let (_fed, results) = federation_of_cases().await;
    let text = metrics::render(&results, 1, 1_700_000_000, 30);
    let mut used = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("kontosynk_health_") {
            used += 1;
            assert!(
                text.contains(&format!("\n{word}{{")) || text.contains(&format!("\n{word} ")),
                "{word} is not exported:\n{text}"
            );
        }
    }
    assert!(used >= 4, "{used}");
    for alert in [
        "KontosynkServerDown",
        "KontosynkPinMismatch",
        "KontosynkCertificateExpiring",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_keeps_history_and_serves_page_metrics_and_api() {
    use std::time::Duration;

    use super::history::History;
    use super::serve::{Monitor, MonitorConfig, bind, serve_dashboard};

    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::new());
    let addr = fed.serve_as("school-server", Arc::clone(&cell), ok).await;
    fed.set_base_uri(
        SCHOOL,
        &format!("https://127.0.0.1:{}/ss12000/v2.0/", addr.port()),
    );
    cell.store(fed.snapshot());
    let metadata = Arc::new(SnapshotCell::with(fed.snapshot()));

    let db = fed.dir.path().join("history.sqlite");
    let monitor = Arc::new(Monitor::new(
        metadata.clone(),
        Arc::new(ClientCert::new(&fed.identity("supplier-client")).unwrap()),
        MonitorConfig {
            query: ServerQuery::entity(SCHOOL),
            options: HealthOptions::default(),
            interval: Duration::from_secs(3600),
            keep_days: 30,
            uptime_runs: 10,
            title: "Moa health".to_owned(),
            metadata_label: "test".to_owned(),
            lang: html_lang_default(),
            alert_expiry_days: 14,
        },
        History::open(&db).unwrap(),
    ));
    assert!(
        !monitor.all_healthy(),
        "nothing is healthy before the first run"
    );
    monitor.run_once().await;
    monitor.run_once().await;
    assert!(monitor.all_healthy());

    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dashboard = listener.local_addr().unwrap();
    tokio::spawn(serve_dashboard(
        listener,
        Arc::clone(&monitor),
        std::future::pending(),
    ));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("http://{dashboard}{path}");
        async move { http.get(url).send().await.unwrap() }
    };

    let page = get("/").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("<title>Moa health</title>"), "{page}");
    assert!(
        page.contains("\"refresh\":300"),
        "the live page reloads itself"
    );
    assert!(page.contains("<html lang=\"sv\""), "Swedish by default");
    assert!(
        page.contains("\"++\",\"\",2,2]"),
        "two healthy checks in the history bar and uptime: {page}"
    );
    assert!(page.contains("\"check\":true"), "check-now buttons");
    let english = http
        .get(format!("http://{dashboard}/"))
        .header("accept-language", "en-GB,en;q=0.9,sv;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("<html lang=\"en\""));
    let swedish = get("/?lang=sv").await.text().await.unwrap();
    assert!(swedish.contains("<html lang=\"sv\"") && swedish.contains(">fungerar<"));

    // Check now: one server, by its entity and base_uri; bad forms are refused.
    let base_uri = ServerQuery::entity(SCHOOL)
        .find(fed.snapshot().index())
        .servers[0]
        .base_uri
        .to_string();
    let checked = http
        .post(format!("http://{dashboard}/api/check"))
        .body(form(&[
            ("entity_id", SCHOOL),
            ("base_uri", base_uri.as_str()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    let checked: serde_json::Value = checked.json().await.unwrap();
    assert_eq!(checked["checked"], 1, "{checked}");
    assert_eq!(checked["results"][0]["state"], "healthy");
    let bad = http
        .post(format!("http://{dashboard}/api/check"))
        .body(form(&[("nothing", "here")]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = http
        .post(format!("http://{dashboard}/api/check"))
        .body(form(&[("entity_id", "https://nobody.example")]))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // Two runs and the "check now" are recorded.
    let metrics = get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("kontosynk_health_runs_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kontosynk_health_servers{state=\"healthy\"} 1\n"),
        "{metrics}"
    );

    let api: serde_json::Value = get("/api/results").await.json().await.unwrap();
    assert_eq!(api["summary"]["healthy"], 1);
    assert_eq!(api["results"][0]["entity_id"], SCHOOL);
    assert_eq!(api["run_error"], serde_json::Value::Null);

    let history: serde_json::Value =
        get("/api/history?entity_id=https%3A%2F%2Fschool.test.example")
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 3, "{history}");
    assert_eq!(history[0]["healthy"], true);
    assert_eq!(get("/api/history").await.status(), 400);
    assert_eq!(get("/nope").await.status(), 404);

    // The metadata expires: the next run checks nothing and says why (fail closed).
    metadata.store(fed.snapshot_at(unix_now() - 7200, 3600));
    monitor.run_once().await;
    assert!(!monitor.all_healthy());
    let api: serde_json::Value = get("/api/results").await.json().await.unwrap();
    assert!(
        api["run_error"]
            .as_str()
            .unwrap()
            .contains("no valid federation metadata"),
        "{api}"
    );
    let page = get("/").await.text().await.unwrap();
    assert!(page.contains("id=\"run-error\""), "{page}");
    assert_eq!(
        api["results"][0]["entity_id"], SCHOOL,
        "the last known results stay under expired metadata: {api}"
    );
    assert!(page.contains(&format!("\"{SCHOOL}\"")), "{page}");

    // The history and the last results survive a restart: a new monitor shows them before
    // its first run.
    let reopened = History::open(&db).unwrap();
    assert_eq!(
        reopened.runs().unwrap(),
        4,
        "two runs, a check now, an expired run"
    );
    assert_eq!(
        reopened
            .uptime(10)
            .unwrap()
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![(3, 3)]
    );
    let restarted = Monitor::new(
        metadata.clone(),
        Arc::new(ClientCert::new(&fed.identity("supplier-client")).unwrap()),
        MonitorConfig {
            query: ServerQuery::entity(SCHOOL),
            options: HealthOptions::default(),
            interval: Duration::from_secs(3600),
            keep_days: 30,
            uptime_runs: 10,
            title: "Moa health".to_owned(),
            metadata_label: "test".to_owned(),
            lang: html_lang_default(),
            alert_expiry_days: 14,
        },
        reopened,
    );
    let page = restarted
        .respond(&http::Method::GET, "/?lang=en", None)
        .await;
    let page = String::from_utf8(
        http_body_util::BodyExt::collect(page.into_body())
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(page.contains(&format!("\"{SCHOOL}\"")), "{page}");
    assert!(page.contains("not yet since the start"), "{page}");
}

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn html_lang_default() -> super::i18n::Lang {
    super::i18n::Lang::Sv
}

/// A plain HTTP server that keeps every POSTed JSON body.
async fn webhook_receiver() -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let store = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let store = Arc::clone(&store);
                        async move {
                            let body = http_body_util::BodyExt::collect(request.into_body())
                                .await
                                .unwrap()
                                .to_bytes();
                            store
                                .lock()
                                .unwrap()
                                .push(serde_json::from_slice(&body).unwrap());
                            Ok::<_, std::convert::Infallible>(Response::new(
                                http_body_util::Full::new(bytes::Bytes::new()),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_posted_once_per_change() {
    use std::time::Duration;

    use super::alerts::Webhook;
    use super::history::History;
    use super::serve::{Monitor, MonitorConfig};

    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::new());
    let up = fed.serve_as("school-server", Arc::clone(&cell), ok).await;
    let healthy_uri = format!("https://127.0.0.1:{}/", up.port());
    fed.set_base_uri(SCHOOL, &healthy_uri);
    cell.store(fed.snapshot());
    let metadata = Arc::new(SnapshotCell::with(fed.snapshot()));
    let (url, received) = webhook_receiver().await;
    let monitor = Monitor::new(
        metadata.clone(),
        Arc::new(ClientCert::new(&fed.identity("supplier-client")).unwrap()),
        MonitorConfig {
            query: ServerQuery::entity(SCHOOL),
            options: HealthOptions::default(),
            interval: Duration::from_secs(3600),
            keep_days: 30,
            uptime_runs: 10,
            title: "t".to_owned(),
            metadata_label: "test".to_owned(),
            lang: html_lang_default(),
            alert_expiry_days: 14,
        },
        History::open(&fed.dir.path().join("alerts.sqlite")).unwrap(),
    )
    .with_webhook(Webhook::new(url.parse().unwrap()).unwrap());

    // Healthy the first time it is seen: nothing to say.
    monitor.run_once().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received.lock().unwrap().is_empty());

    // The server moves to a port nobody listens on: it went down, once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down_uri = format!("https://127.0.0.1:{}/", closed.port());
    fed.set_base_uri(SCHOOL, &down_uri);
    metadata.store(fed.snapshot());
    monitor.run_once().await;
    monitor.run_once().await;
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["alert"], "server_down");
        assert_eq!(got[0]["entity_id"], SCHOOL);
        assert_eq!(got[0]["base_uri"], down_uri);
        assert_eq!(got[0]["resolved"], false);
        assert!(got[0]["error"].as_str().unwrap().starts_with("tcp: "));
    }

    // Back where it answers: that server's condition was ok all along (no alert); the down
    // address is no longer checked.
    fed.set_base_uri(SCHOOL, &healthy_uri);
    metadata.store(fed.snapshot());
    monitor.run_once().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received.lock().unwrap().len(), 1);
}
