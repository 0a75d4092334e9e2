//! Bench: `kontosynk sync` (the real binary, release build) pulling a sample school of N
//! persons (and N/50 groups, `ss12000::sample`) from the project's SS 12000 server over pinned
//! mutual TLS on loopback into a fresh SQLite store. Prints wall time, objects per second and
//! the client process's peak RSS (VmHWM, sampled from /proc every 10 ms) for each N, so the
//! memory can be compared between data sizes.
//!
//! `cargo bench -p kontosynk-client --bench sync` (default N = 10000 and 100000);
//! `SYNC_BENCH_PERSONS=20000,200000 cargo bench -p kontosynk-client --bench sync`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fedtls::snapshot::SnapshotCell;
use kontosynk_server::bearer::webpki_client_config;
use kontosynk_server::ss12000::{ApiConfig, AuthMode, Ss12000Api, WebhookConfig, Webhooks};
use kontosynk_testbed::federation::{Fed, SCHOOL};
use ss12000::sample::{SampleSpec, generate};
use ss12000::{Collection, Database, Store, WriteBatch};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("sync: bench");
        return;
    }
    let sizes: Vec<usize> = std::env::var("SYNC_BENCH_PERSONS")
        .unwrap_or_else(|_| "10000,100000".to_owned())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("SYNC_BENCH_PERSONS: comma-separated numbers")
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:>9} {:>7} {:>9} {:>10} {:>12} {:>14}",
        "persons", "groups", "objects", "wall s", "objects/s", "client peak MB"
    );
    for persons in sizes {
        runtime.block_on(run(persons));
    }
}

async fn run(persons: usize) {
    let dir = tempfile::tempdir().unwrap();
    let server_store = Store::open(&Database::Sqlite(dir.path().join("server.sqlite")))
        .await
        .unwrap();
    let mut batch = WriteBatch::new();
    let mut objects = 0u64;
    for (collection, object) in generate(&SampleSpec {
        school_units: 20,
        persons,
        seed: 1,
    }) {
        batch.upsert(collection, object);
        objects += 1;
        if objects.is_multiple_of(10_000) {
            server_store
                .apply(std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
    server_store.apply(batch).await.unwrap();
    let groups = server_store.count(&Collection::Groups).await.unwrap();

    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
    let mut config = ApiConfig::new(AuthMode::MutualTls);
    config.base_path = "/ss12000/v2.0".into();
    let webhooks = Webhooks::new(
        server_store.clone(),
        WebhookConfig::default(),
        webpki_client_config(None).unwrap(),
    )
    .unwrap();
    let api = Ss12000Api::new(server_store.clone(), config, webhooks);
    let addr = fed
        .serve_as("school-server", Arc::clone(&cell), api.handler())
        .await;
    fed.set_base_uri(
        SCHOOL,
        &format!("https://localhost:{}/ss12000/v2.0", addr.port()),
    );
    cell.store(fed.snapshot());
    let metadata = dir.path().join("md.jws");
    std::fs::write(&metadata, fed.sign_at(fedtls::verify::unix_now(), 86_400)).unwrap();
    let (client_cert, client_key) = fed.files("school-client");

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kontosynk"))
        .arg("sync")
        .arg("--metadata")
        .arg(&metadata)
        .arg("--jwks")
        .arg(&fed.fed.jwks)
        .arg("--cert")
        .arg(client_cert)
        .arg("--key")
        .arg(client_key)
        .arg("--server-entity")
        .arg(SCHOOL)
        .arg("--db")
        .arg(format!(
            "sqlite:{}",
            dir.path().join("client.sqlite").display()
        ))
        .args(["--limit", "1000", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let wall = started.elapsed();
    assert!(status.success(), "kontosynk sync failed: {status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let synced: u64 = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["new"].as_u64().unwrap())
        .sum();
    assert_eq!(synced, objects, "every object synced");
    println!(
        "{:>9} {:>7} {:>9} {:>10.2} {:>12.0} {:>14.1}",
        persons,
        groups,
        objects,
        wall.as_secs_f64(),
        objects as f64 / wall.as_secs_f64(),
        peak_kb as f64 / 1024.0
    );
}
