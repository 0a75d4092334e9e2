//! The sync against the project's own SS 12000 server (`kontosynk_server::ss12000`) over
//! pinned mutual TLS on loopback, with `fedtls::testfed` certificates: the library, and the
//! `kontosynk sync` binary killed mid-sync and re-run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fedtls::snapshot::SnapshotCell;
use kontosynk_client::client::FederationClient;
use kontosynk_client::discovery::{Choice, ServerQuery};
use kontosynk_client::sync::{Mode, NoProgress, SyncOptions, Syncer};
use kontosynk_server::bearer::webpki_client_config;
use kontosynk_server::ss12000::{ApiConfig, AuthMode, Ss12000Api, WebhookConfig, Webhooks};
use kontosynk_testbed::federation::{Fed, SCHOOL};
use serde_json::{Value, json};
use ss12000::sample::{SampleSpec, generate};
use ss12000::{Collection, DeletedQuery, ListQuery, Object, Store, Timestamp, WriteBatch};

/// A school: the SS 12000 API over `store`, served with the school-server certificate, and
/// metadata whose school entity points at it.
struct School {
    fed: Fed,
    cell: Arc<SnapshotCell>,
    base: String,
}

async fn school(store: Store) -> School {
    let mut config = ApiConfig::new(AuthMode::MutualTls);
    config.base_path = "/ss12000/v2.0".into();
    let webhooks = Webhooks::new(
        store.clone(),
        WebhookConfig::default(),
        webpki_client_config(None).unwrap(),
    )
    .unwrap();
    let api = Ss12000Api::new(store.clone(), config, webhooks);
    listed_school(api.handler()).await
}

/// A school server answering with `handler`, listed in the metadata at `/ss12000/v2.0`.
async fn listed_school(handler: impl kontosynk_framework::Handler) -> School {
    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
    let addr = fed
        .serve_as("school-server", Arc::clone(&cell), handler)
        .await;
    let base = format!("https://localhost:{}/ss12000/v2.0", addr.port());
    fed.set_base_uri(SCHOOL, &base);
    cell.store(fed.snapshot());
    School { fed, cell, base }
}

impl School {
    fn client(&self) -> FederationClient {
        FederationClient::builder(
            Arc::clone(&self.cell) as Arc<dyn fedtls::snapshot::SnapshotSource>,
            self.fed.identity("school-client"),
        )
        .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
        .build()
        .unwrap()
    }
}

async fn seed(store: &Store, persons: usize) {
    let mut batch = WriteBatch::new();
    for (collection, object) in generate(&SampleSpec {
        school_units: 2,
        persons,
        seed: 7,
    }) {
        batch.upsert(collection, object);
    }
    store.apply(batch).await.unwrap();
}

/// Every live object of `collection`, in id order.
async fn all(store: &Store, collection: &Collection) -> Vec<Object> {
    let mut out = Vec::new();
    let mut after_id = None;
    loop {
        let page = store
            .list(
                collection,
                &ListQuery {
                    after_id: after_id.clone(),
                    limit: 1000,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after_id = Some(last.id().to_owned());
        out.extend(page);
    }
    out
}

async fn assert_same(server: &Store, client: &Store) {
    for collection in Collection::SYNC_ORDER {
        let expected = all(server, &collection).await;
        let got = all(client, &collection).await;
        assert_eq!(got.len(), expected.len(), "{collection}");
        for (a, b) in expected.iter().zip(&got) {
            assert_eq!(a.id(), b.id(), "{collection}");
            assert_eq!(a.json(), b.json(), "{collection}/{}", a.id());
        }
    }
}

async fn full_incremental_and_deletions(client_store: Store) {
    let server_db = ss12000::testing::sqlite();
    let server_store = server_db.open().await;
    seed(&server_store, 300).await;
    let school = school(server_store.clone()).await;
    let syncer = Syncer::for_client(&school.client(), client_store.clone()).options(SyncOptions {
        limit: 40,
        ..SyncOptions::default()
    });

    let first = syncer.run(&NoProgress).await.unwrap();
    let persons = first.collection(&Collection::Persons).unwrap();
    assert_eq!(persons.mode, Mode::Full);
    assert_eq!(
        persons.new,
        server_store.count(&Collection::Persons).await.unwrap()
    );
    assert!(persons.pages >= 8, "{persons:?}");
    assert_same(&server_store, &client_store).await;

    // The school changes: one person renamed, two deleted, one group added.
    let victims: Vec<Object> = all(&server_store, &Collection::Persons).await[..3].to_vec();
    let now = Timestamp::now();
    let mut renamed: Value = serde_json::from_str(victims[0].json()).unwrap();
    renamed["givenName"] = json!("Omdöpt");
    renamed["meta"]["modified"] = json!(now.to_string());
    let mut batch = WriteBatch::new();
    batch.upsert(Collection::Persons, Object::from_value(&renamed).unwrap());
    batch.delete(Collection::Persons, victims[1].id(), now);
    batch.delete(Collection::Persons, victims[2].id(), now);
    batch.upsert(
        Collection::Groups,
        Object::from_value(&json!({
            "id": "0d4c3a6e-0000-4000-8000-000000000001",
            "meta": {"created": now.to_string(), "modified": now.to_string()},
            "displayName": "Ny grupp", "groupType": "Undervisning"
        }))
        .unwrap(),
    );
    server_store.apply(batch).await.unwrap();

    let second = syncer.run(&NoProgress).await.unwrap();
    let persons = second.collection(&Collection::Persons).unwrap();
    assert_eq!(persons.mode, Mode::Incremental);
    assert_eq!((persons.new, persons.updated, persons.deleted), (0, 1, 2));
    assert_eq!(second.collection(&Collection::Groups).unwrap().new, 1);
    assert_same(&server_store, &client_store).await;
    let tombstones = client_store
        .deleted(&DeletedQuery {
            collections: vec![Collection::Persons],
            limit: 10,
            ..DeletedQuery::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<&str> = tombstones.iter().map(|t| t.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![victims[1].id(), victims[2].id()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    // Reporting back lands in the server's records.
    kontosynk_client::sync::report_to_server(
        school.client().sender(),
        school.client().base_uri(),
        Ok(&second),
    )
    .await
    .unwrap();
    let statistics = server_store.records("statistics", 0, 100).await.unwrap();
    assert_eq!(statistics.len(), 5, "{statistics:?}");
    assert!(
        statistics
            .iter()
            .any(|(_, _, v)| v["entry"]["resourceType"] == "Person"
                && v["entry"]["updatedCount"] == 1
                && v["entry"]["deletedCount"] == 2),
        "{statistics:?}"
    );
    assert_eq!(server_store.records("log", 0, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn full_incremental_and_deletions_over_mutual_tls_sqlite() {
    let db = ss12000::testing::sqlite();
    full_incremental_and_deletions(db.open().await).await;
}

#[tokio::test]
async fn full_incremental_and_deletions_over_mutual_tls_postgres() {
    let db = ss12000::testing::postgres().await;
    full_incremental_and_deletions(db.open().await).await;
}

#[tokio::test]
async fn a_client_outside_the_metadata_is_refused_and_nothing_is_written() {
    let server_db = ss12000::testing::sqlite();
    let server_store = server_db.open().await;
    seed(&server_store, 10).await;
    let school = school(server_store).await;
    let client = FederationClient::builder(
        Arc::clone(&school.cell) as Arc<dyn fedtls::snapshot::SnapshotSource>,
        school.fed.identity("unlisted-client"),
    )
    .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
    .retry(kontosynk_client::RetryPolicy::never())
    .build()
    .unwrap();
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let error = Syncer::for_client(&client, store.clone())
        .run(&NoProgress)
        .await
        .unwrap_err();
    // Said before connecting, naming the pin and the fix, instead of the bare TLS alert the
    // server would answer with.
    let pin = school.fed.identity("unlisted-client").pin().unwrap();
    let text = error.to_string();
    assert!(text.contains("/ss12000/v2.0/organisations"), "{text}");
    assert!(
        text.contains(&format!(
            "your client certificate's pin {pin} is not listed as a client"
        )),
        "{text}"
    );
    assert!(text.contains("fedtls entity"), "{text}");
    assert_eq!(store.count(&Collection::Organisations).await.unwrap(), 0);
}

fn kontosynk(dir: &Path, school: &School, db: &Path, extra: &[&str]) -> Command {
    let metadata = dir.join("md.jws");
    std::fs::write(
        &metadata,
        school.fed.sign_at(fedtls::verify::unix_now(), 86_400),
    )
    .unwrap();
    let (cert, key) = school.fed.files("school-client");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kontosynk"));
    command
        .arg("sync")
        .arg("--metadata")
        .arg(&metadata)
        .arg("--jwks")
        .arg(&school.fed.fed.jwks)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(if extra.contains(&"--url") {
            vec![]
        } else {
            vec!["--server-entity", SCHOOL]
        })
        .arg("--db")
        .arg(format!("sqlite:{}", db.display()))
        .args(extra)
        .stdin(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_killed_mid_sync_resumes_without_loss() {
    let server_db = ss12000::testing::sqlite();
    let server_store = server_db.open().await;
    seed(&server_store, 6000).await;
    let total = server_store.count(&Collection::Persons).await.unwrap();
    let school = school(server_store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("client.sqlite");

    let mut child = kontosynk(dir.path(), &school, &db, &["--limit", "20", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client_store = Store::open(&ss12000::Database::Sqlite(db.clone()))
        .await
        .unwrap();
    let mut killed = false;
    for _ in 0..6000 {
        let stored = client_store.count(&Collection::Persons).await.unwrap_or(0);
        if stored > 0 && stored < total {
            child.kill().unwrap();
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the sync finished before it could be killed ({status})"
    );
    assert!(!status.success());
    let stored = client_store.count(&Collection::Persons).await.unwrap();
    assert!(stored < total, "{stored} of {total}");

    let output = kontosynk(dir.path(), &school, &db, &["--limit", "20", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let persons = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["collection"] == "persons")
        .unwrap();
    assert_eq!(persons["mode"], "resumed", "{persons}");
    assert_eq!(
        persons["new"].as_u64().unwrap(),
        total - stored,
        "{persons}"
    );
    assert_same(&server_store, &client_store).await;

    // A plain table when stdout is not a terminal and --json is not given.
    let output = kontosynk(dir.path(), &school, &db, &[]).output().unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.starts_with("collection"), "{table}");
    assert!(
        table.contains("persons") && table.contains("incremental"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_finds_a_server_by_url_and_pin_and_reports_to_it() {
    let server_db = ss12000::testing::sqlite();
    let server_store = server_db.open().await;
    seed(&server_store, 30).await;
    let school = school(server_store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("client.sqlite");
    let pin = school
        .fed
        .fed
        .party("school-server")
        .unwrap()
        .pin
        .to_string();
    let output = kontosynk(
        dir.path(),
        &school,
        &db,
        &["--url", &school.base, "--pin", &pin, "--report"],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        server_store
            .records("statistics", 0, 100)
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(server_store.records("log", 0, 100).await.unwrap().len(), 1);

    // A pin the metadata does not list for that server: refused before any connection.
    let wrong = school
        .fed
        .fed
        .party("school-client")
        .unwrap()
        .pin
        .to_string();
    let output = kontosynk(
        dir.path(),
        &school,
        &db,
        &["--url", &school.base, "--pin", &wrong],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: no server in the federation metadata has base_uri"),
        "{stderr}"
    );
}

#[test]
fn the_cli_refuses_bad_usage_with_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_kontosynk"))
        .args(["sync", "--metadata", "md.jws"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(env!("CARGO_BIN_EXE_kontosynk"))
        .args([
            "sync",
            "--metadata",
            "/nonexistent/md.jws",
            "--jwks",
            "/nonexistent/fed.jwks",
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            "/nonexistent/c.key",
            "--server-entity",
            "https://x",
            "--collection",
            "9bad",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: --collection"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// A listed school server whose `organisations` listing never ends: every page holds new
/// objects and a new page token (the red-team run's "55,344 junk objects in 100 s").
async fn endless_school() -> School {
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    listed_school(move |request: http::Request<_>| {
        let n = requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let page = if request.uri().path().ends_with("/organisations") {
                kontosynk_testbed::sync_standin::endless_page(n, 50)
            } else {
                json!({"data": []})
            };
            kontosynk_framework::response::json(http::StatusCode::OK, &page)
        }
    })
    .await
}

/// Runs a command that must end by itself within two minutes (stderr into a file, so a chatty
/// run cannot block on a full pipe); a run that does not end is killed and fails the test.
fn output_within_two_minutes(mut command: Command, dir: &Path) -> (Option<i32>, String) {
    let log = dir.join("stderr.log");
    let mut child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("the sync did not stop by itself within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(&log).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_stops_a_server_that_never_stops_paging() {
    let school = endless_school().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("client.sqlite");

    // The objects bound, given by its environment variable.
    let mut command = kontosynk(dir.path(), &school, &db, &["--limit", "50"]);
    command.env("KONTOSYNK_SYNC_MAX_OBJECTS", "500");
    let (code, stderr) = output_within_two_minutes(command, dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&school.base), "{stderr}");
    assert!(stderr.contains("`organisations` listing"), "{stderr}");
    assert!(stderr.contains("500 objects (--max-objects)"), "{stderr}");
    let store = Store::open(&ss12000::Database::Sqlite(db.clone()))
        .await
        .unwrap();
    assert_eq!(store.count(&Collection::Organisations).await.unwrap(), 500);
    let key = kontosynk_client::sync::state_key(&school.base, "organisations");
    let state = store.state(&key).await.unwrap().unwrap();
    assert!(state["watermark"].is_null(), "{state}");
    assert!(state["pass"]["page_token"].is_string(), "{state}");

    // The deadline, given as a flag: the server answers at once, so only the clock stops it.
    let command = kontosynk(
        dir.path(),
        &school,
        &db,
        &["--limit", "50", "--deadline", "2"],
    );
    let (code, stderr) = output_within_two_minutes(command, dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("deadline of 2 s passed (--deadline)"),
        "{stderr}"
    );
    assert!(stderr.contains("`organisations` listing"), "{stderr}");
    let state = store.state(&key).await.unwrap().unwrap();
    assert!(state["watermark"].is_null(), "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_no_redirect_off_the_pinned_origin_and_names_its_target() {
    // `organisations` moved within the server's origin (followed); `persons` redirects to
    // another host, as a misconfigured load balancer or a hostile server would.
    let elsewhere = "https://127.0.0.1:9/ss12000/v2.0/persons";
    let school = listed_school(move |request: http::Request<_>| async move {
        let path = request.uri().path().to_owned();
        let redirect = |to: &str| {
            let mut response =
                kontosynk_framework::response::json(http::StatusCode::FOUND, &json!({"moved": to}));
            response
                .headers_mut()
                .insert(http::header::LOCATION, to.parse().unwrap());
            response
        };
        if path == "/ss12000/v2.0/organisations" {
            redirect("/moved/organisations")
        } else if path == "/ss12000/v2.0/persons" {
            redirect(elsewhere)
        } else if path == "/moved/organisations" {
            kontosynk_framework::response::json(
                http::StatusCode::OK,
                &json!({"data": [{"id": "o1", "displayName": "Skolan"}]}),
            )
        } else {
            kontosynk_framework::response::json(http::StatusCode::OK, &json!({"data": []}))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("client.sqlite");
    let command = kontosynk(dir.path(), &school, &db, &[]);
    let (code, stderr) = output_within_two_minutes(command, dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("redirected to {elsewhere}, another origin")),
        "{stderr}"
    );
    assert!(stderr.contains("/ss12000/v2.0/persons"), "{stderr}");
    assert!(!stderr.contains("invalid peer certificate"), "{stderr}");
    let store = Store::open(&ss12000::Database::Sqlite(db.clone()))
        .await
        .unwrap();
    assert_eq!(store.count(&Collection::Organisations).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_plain_text_off_a_terminal_and_json_lines_have_typed_values() {
    let server_db = ss12000::testing::sqlite();
    let server_store = server_db.open().await;
    seed(&server_store, 5).await;
    let school = school(server_store).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("client.sqlite");

    let output = kontosynk(dir.path(), &school, &db, &[])
        .env("RUST_LOG", "info")
        .env_remove("KONTOSYNK_LOG_FORMAT")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("metadata updated"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes off a terminal: {stderr}"
    );

    let output = kontosynk(dir.path(), &school, &db, &[])
        .env("RUST_LOG", "info")
        .env("KONTOSYNK_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let updated: Value = stderr
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .find(|line| line["fields"]["message"] == "metadata updated")
        .unwrap_or_else(|| panic!("no metadata update logged: {stderr}"));
    let fields = &updated["fields"];
    assert!(fields["iat"].is_i64(), "{updated}");
    assert!(fields["exp"].is_i64(), "{updated}");
    assert!(
        fields["next_refresh_secs"].is_u64() || fields.get("next_refresh_secs").is_none(),
        "{updated}"
    );
}
