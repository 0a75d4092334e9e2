//! `kontosynk egil push` against the project's EGIL server over real mutual TLS on loopback:
//! first run, a change, a deletion, EgilSCIM's recoveries (409 → PUT, 404 → POST), a killed
//! run resumed without duplicates, `--rebuild`, the mass-change guard, and the command's exit
//! codes and JSON.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fedtls::snapshot::SnapshotCell;
use kontosynk_client::client::FederationClient;
use kontosynk_client::discovery::{Choice, ServerQuery};
use kontosynk_client::egil::{EgilPushConfig, EgilPushError, EgilPushReport, EgilPusher};
use kontosynk_server::egil::{EgilConfig, EgilServer};
use kontosynk_testbed::egil::{EgilScim, organisation, start_egil};
use kontosynk_testbed::federation::{Fed, Running, SCHOOL, SUPPLIER};
use serde_json::Value;
use ss12000::sample::{SampleSpec, generate};
use ss12000::testing::TestDatabase;
use ss12000::{Collection, EgilResource, Store, Timestamp, WriteBatch};

struct Env {
    fed: Fed,
    cell: Arc<SnapshotCell>,
    running: Option<Running>,
    addr: std::net::SocketAddr,
    server: EgilServer,
    school: Store,
    audit: PathBuf,
    _dbs: (TestDatabase, TestDatabase),
}

async fn setup(persons: usize) -> Env {
    let mut fed = Fed::new();
    let egil_db = ss12000::testing::sqlite();
    let school_db = ss12000::testing::sqlite();
    let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
    let (running, server) = start_egil(
        &fed,
        Arc::clone(&cell),
        egil_db.open().await,
        EgilConfig::default(),
        false,
    )
    .await;
    fed.set_base_uri(
        SUPPLIER,
        &format!("https://localhost:{}/", running.addr.port()),
    );
    cell.store(fed.snapshot());
    let school = school_db.open().await;
    let mut batch = WriteBatch::new();
    for (collection, object) in generate(&SampleSpec {
        school_units: 2,
        persons,
        seed: 7,
    }) {
        batch.upsert(collection, object);
    }
    school.apply(batch).await.unwrap();
    let audit = fed.dir.path().join("audit.jsonl");
    Env {
        fed,
        cell,
        addr: running.addr,
        running: Some(running),
        server,
        school,
        audit,
        _dbs: (egil_db, school_db),
    }
}

impl Env {
    fn config(&self) -> EgilPushConfig {
        EgilPushConfig {
            server: SUPPLIER.to_owned(),
            rebuild: false,
            max_change_share: 0.1,
            accept_changes: false,
            progress: false,
            audit_log: Some(self.audit.clone()),
        }
    }

    fn pusher(&self, config: EgilPushConfig) -> EgilPusher {
        let client =
            FederationClient::builder(self.cell.clone(), self.fed.identity("school-client"))
                .discover(
                    ServerQuery::entity(SUPPLIER).with_tag("egilv1"),
                    Choice::Unique,
                )
                .build()
                .unwrap();
        EgilPusher::new(self.school.clone(), client, config)
    }

    async fn push(&self) -> EgilPushReport {
        self.pusher(self.config()).run().await.unwrap()
    }

    async fn on_server(&self, resource: EgilResource) -> u64 {
        self.server
            .store()
            .egil_list(SCHOOL, resource, 0, 0)
            .await
            .unwrap()
            .total
    }

    async fn live(&self, collection: Collection) -> Vec<ss12000::Object> {
        self.school
            .list(
                &collection,
                &ss12000::ListQuery {
                    limit: 10_000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }
}

fn summary<'a>(
    report: &'a EgilPushReport,
    resource: &str,
) -> &'a kontosynk_client::egil::ResourceSummary {
    report
        .resources
        .iter()
        .find(|r| r.resource == resource)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_a_change_and_a_deletion_send_only_what_changed() {
    let env = setup(120).await;
    let persons = env.live(Collection::Persons).await.len() as u64;
    let report = env.push().await;
    assert!(!report.has_failures(), "{report:#?}");
    let users = summary(&report, "Users");
    assert_eq!(
        (users.live, users.created, users.unchanged),
        (persons, persons, 0)
    );
    assert_eq!(env.on_server(EgilResource::Users).await, persons);
    assert_eq!(env.on_server(EgilResource::Organisations).await, 1);
    assert_eq!(env.on_server(EgilResource::SchoolUnits).await, 2);
    let groups = env.live(Collection::Groups).await.len() as u64;
    assert_eq!(env.on_server(EgilResource::StudentGroups).await, groups);
    assert!(env.on_server(EgilResource::Employments).await > 0);
    assert_eq!(env.on_server(EgilResource::Activities).await, groups);
    let first_sent = report.sent();
    let audit = std::fs::read_to_string(&env.audit).unwrap();
    assert_eq!(audit.lines().count() as u64, first_sent);
    let line: Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            line["method"].as_str(),
            line["resource"].as_str(),
            line["status"].as_u64()
        ),
        (Some("POST"), Some("Organisations"), Some(201))
    );

    // Unchanged: nothing is sent.
    let report = env.push().await;
    assert_eq!(report.sent(), 0, "{report:#?}");
    assert_eq!(summary(&report, "Users").unchanged, persons);

    // One person changes: one PUT.
    let mut person: Value =
        serde_json::from_str(env.live(Collection::Persons).await[0].json()).unwrap();
    person["givenName"] = Value::from("Ändrad");
    let id = person["id"].as_str().unwrap().to_owned();
    let mut batch = WriteBatch::new();
    batch.upsert(
        Collection::Persons,
        ss12000::Object::from_value(&person).unwrap(),
    );
    env.school.apply(batch).await.unwrap();
    let report = env.push().await;
    assert_eq!(report.sent(), 1);
    assert_eq!(summary(&report, "Users").updated, 1);
    let stored = env
        .server
        .store()
        .egil_get(SCHOOL, EgilResource::Users, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.contains("Ändrad"));

    // One group is deleted in the store: one DELETE (after the upserts), and nothing else.
    let group = env.live(Collection::Groups).await[0].id().to_owned();
    let mut batch = WriteBatch::new();
    batch.delete(Collection::Groups, &group, Timestamp::now());
    env.school.apply(batch).await.unwrap();
    let report = env.push().await;
    assert_eq!(report.sent(), 1, "{report:#?}");
    assert_eq!(summary(&report, "StudentGroups").deleted, 1);
    assert!(
        env.server
            .store()
            .egil_get(SCHOOL, EgilResource::StudentGroups, &group)
            .await
            .unwrap()
            .is_none()
    );
    let last: Value = serde_json::from_str(
        std::fs::read_to_string(&env.audit)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (last["method"].as_str(), last["status"].as_u64()),
        (Some("DELETE"), Some(204))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_resumed_without_duplicates() {
    let env = setup(1_500).await;
    let persons = env.live(Collection::Persons).await.len() as u64;
    let pusher = env.pusher(env.config());
    let run = tokio::spawn(async move { pusher.run().await });
    // Kill the run once the server holds some users but not all.
    let started = std::time::Instant::now();
    loop {
        let users = env.on_server(EgilResource::Users).await;
        if users > 600 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    // A request that reached the server before the kill still completes there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = env.on_server(EgilResource::Users).await;
    assert!(
        held > 0 && held < persons,
        "killed midway: {held} of {persons}"
    );
    let recorded = env
        .school
        .states_with_prefix(&format!("egil/{SUPPLIER}/Users/"))
        .await
        .unwrap()
        .len() as u64;
    assert!(recorded <= held, "only acknowledged objects are recorded");

    let report = env.push().await;
    assert!(!report.has_failures(), "{report:#?}");
    let users = summary(&report, "Users");
    assert_eq!(users.created + users.updated + users.unchanged, persons);
    // Objects the killed run sent but did not record come back as 409 and are PUT.
    assert_eq!(users.updated, held - recorded);
    assert_eq!(env.on_server(EgilResource::Users).await, persons);
    assert_eq!(env.push().await.sent(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recoveries_rebuild_and_the_mass_change_guard() {
    let env = setup(240).await;
    assert!(!env.push().await.has_failures());
    let persons = env.live(Collection::Persons).await;

    // The server lost a user the state says it has, and the user changed: PUT 404 → POST.
    let lost = persons[1].id().to_owned();
    assert!(
        env.server
            .store()
            .egil_delete(SCHOOL, EgilResource::Users, &lost)
            .await
            .unwrap()
    );
    let mut person: Value = serde_json::from_str(persons[1].json()).unwrap();
    person["familyName"] = Value::from("Ny");
    let mut batch = WriteBatch::new();
    batch.upsert(
        Collection::Persons,
        ss12000::Object::from_value(&person).unwrap(),
    );
    env.school.apply(batch).await.unwrap();
    let report = env.push().await;
    assert_eq!(summary(&report, "Users").created, 1, "{report:#?}");
    assert!(
        env.server
            .store()
            .egil_get(SCHOOL, EgilResource::Users, &lost)
            .await
            .unwrap()
            .unwrap()
            .contains("Ny")
    );

    // Deleting over 10 % of the persons trips the guard: nothing is sent.
    let mut batch = WriteBatch::new();
    for p in &persons[..60] {
        batch.delete(Collection::Persons, p.id(), Timestamp::now());
    }
    env.school.apply(batch).await.unwrap();
    let before = env.on_server(EgilResource::Users).await;
    let report = env.push().await;
    assert!(report.stopped_by_guard && report.has_failures());
    assert_eq!(report.guard[0].resource, "Users");
    assert_eq!(report.guard[0].deleted, 60);
    assert_eq!(report.sent(), 0);
    assert_eq!(env.on_server(EgilResource::Users).await, before);
    // Accepted: the deletions go out.
    let mut config = env.config();
    config.accept_changes = true;
    let report = env.pusher(config).run().await.unwrap();
    assert_eq!(summary(&report, "Users").deleted, 60);
    assert_eq!(env.on_server(EgilResource::Users).await, before - 60);

    // Someone else put an organisation on the server under this school's tenant; a rebuild
    // reconciles: PUT what the server has, DELETE what the store lacks.
    let stray = "0e610001-0000-4000-8001-000000000999";
    let mut scim = EgilScim::connect(&env.fed, env.addr, Some("school-client"))
        .await
        .unwrap();
    assert_eq!(
        scim.post("Organisations", &organisation(stray, "Okänd"))
            .await
            .status,
        201
    );
    let mut config = env.config();
    config.rebuild = true;
    let report = env.pusher(config).run().await.unwrap();
    assert!(!report.has_failures(), "{report:#?}");
    assert_eq!(summary(&report, "Organisations").deleted, 1);
    assert_eq!(summary(&report, "Organisations").updated, 1);
    assert_eq!(
        summary(&report, "Users").updated,
        summary(&report, "Users").live
    );
    assert_eq!(env.on_server(EgilResource::Organisations).await, 1);
    assert_eq!(
        env.push().await.sent(),
        0,
        "after a rebuild the state is complete again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_an_error() {
    let env = setup(60).await;
    let mut env = env;
    drop(env.running.take());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = env.pusher(env.config()).run().await.unwrap_err();
    assert!(matches!(err, EgilPushError::Client(_)), "{err}");
}

fn md_file(fed: &mut Fed, port: u16) -> PathBuf {
    fed.set_base_uri(SUPPLIER, &format!("https://localhost:{port}/"));
    let path = fed.dir.path().join("md-egil.jws");
    std::fs::write(&path, fed.sign_at(fedtls::verify::unix_now(), 3600)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_prints_json_and_exits_1_on_a_refusal_or_the_guard() {
    let mut env = setup(60).await;
    let port = env.addr.port();
    let md = md_file(&mut env.fed, port);
    let school_db = match env.school.database() {
        ss12000::Database::Sqlite(p) => format!("sqlite:{}", p.display()),
        other => other.to_string(),
    };
    let client = env.fed.party("school-client");
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "egil".into(),
            "push".into(),
            "--metadata".into(),
            md.display().to_string(),
            "--jwks".into(),
            env.fed.fed.jwks.display().to_string(),
            "--cert".into(),
            client.cert.display().to_string(),
            "--key".into(),
            client.key.display().to_string(),
            "--server-entity".into(),
            SUPPLIER.into(),
            "--db".into(),
            school_db.clone(),
            "--audit-log".into(),
            env.audit.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_kontosynk"))
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let out = run(args(&["--json"])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["server"], SUPPLIER);
    assert_eq!(report["resources"][3]["resource"], "Users");
    assert!(report["resources"][3]["created"].as_u64().unwrap() > 0);

    // The server refuses a school unit code that is not 8 digits: exit 1, named on stderr.
    let unit = env
        .live(Collection::Organisations)
        .await
        .into_iter()
        .find(|o| o.json().contains("Skolenhet"))
        .unwrap();
    let mut value: Value = serde_json::from_str(unit.json()).unwrap();
    value["schoolUnitCode"] = Value::from("123");
    let mut batch = WriteBatch::new();
    batch.upsert(
        Collection::Organisations,
        ss12000::Object::from_value(&value).unwrap(),
    );
    env.school.apply(batch).await.unwrap();
    let out = run(args(&[])).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused: PUT SchoolUnits/") && stderr.contains("schoolUnitCode"),
        "{stderr}"
    );

    // Deleting every person trips the guard: exit 1 and advice.
    let mut batch = WriteBatch::new();
    for p in env.live(Collection::Persons).await {
        batch.delete(Collection::Persons, p.id(), Timestamp::now());
    }
    env.school.apply(batch).await.unwrap();
    let out = run(args(&[])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--accept-changes"));
    // A server entity that is not in the metadata: exit 2 with the reason.
    let mut bad = args(&[]);
    let at = bad.iter().position(|a| a == SUPPLIER).unwrap();
    bad[at] = "https://nobody.example".into();
    let out = run(bad).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
