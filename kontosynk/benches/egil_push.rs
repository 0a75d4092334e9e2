//! Bench: `kontosynk egil push` (the real binary, release build) re-pushing an unchanged
//! store of N persons (`ss12000::sample`: N persons, N/50 groups and activities, duties) to the
//! project's EGIL server over pinned mutual TLS on loopback. The store's push state is filled
//! as a completed earlier push leaves it, so the run must send nothing. Target (issue 16):
//! ≤ 5 s for 100,000 persons, start-up and metadata verification included.
//!
//! `cargo bench -p kontosynk --bench egil_push` (N = 100000);
//! `EGIL_BENCH_PERSONS=20000 cargo bench -p kontosynk --bench egil_push`.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use fedtls::snapshot::SnapshotCell;
use kontosynk_client::egil::Plan;
use kontosynk_client::egil::plan::{Known, state_prefix};
use kontosynk_server::egil::EgilConfig;
use kontosynk_testbed::egil::start_egil;
use kontosynk_testbed::federation::{Fed, SUPPLIER};
use serde_json::Value;
use ss12000::WriteBatch;
use ss12000::sample::{SampleSpec, generate};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("egil_push: bench");
        return;
    }
    let persons: usize = std::env::var("EGIL_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut fed = Fed::new();
        let egil_db = ss12000::testing::sqlite();
        let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
        let (running, server) =
            start_egil(&fed, Arc::clone(&cell), egil_db.open().await, EgilConfig::default(), false)
                .await;
        fed.set_base_uri(SUPPLIER, &format!("https://localhost:{}/", running.addr.port()));
        let metadata = fed.dir.path().join("md-egil.jws");
        std::fs::write(&metadata, fed.sign_at(fedtls::verify::unix_now(), 3600)).unwrap();

        let school_db = ss12000::testing::sqlite();
        let school = school_db.open().await;
        let sample = generate(&SampleSpec { school_units: 10, persons, seed: 16 });
        let objects = sample.len();
        for chunk in sample.chunks(10_000) {
            let mut batch = WriteBatch::new();
            for (collection, object) in chunk {
                batch.upsert(collection.clone(), object.clone());
            }
            school.apply(batch).await.unwrap();
        }
        // The state a completed push leaves: every mapped object accepted with its hash.
        let plan = Plan::build(&school, &Known::new()).await.unwrap();
        let mut batch = WriteBatch::new();
        let mut recorded = 0;
        for (resource, p) in &plan.resources {
            for item in &p.send {
                batch.set_state(
                    &format!("{}{}", state_prefix(SUPPLIER, *resource), item.id),
                    Some(Value::from(item.hash.clone())),
                );
                recorded += 1;
            }
        }
        school.apply(batch).await.unwrap();
        let db = match school.database() {
            ss12000::Database::Sqlite(path) => format!("sqlite:{}", path.display()),
            other => other.to_string(),
        };
        drop(school);
        let client = fed.party("school-client");
        let audit = fed.dir.path().join("audit.jsonl");
        for round in 1..=2 {
            let started = Instant::now();
            let output = Command::new(env!("CARGO_BIN_EXE_kontosynk"))
                .args(["egil", "push", "--json", "--server-entity", SUPPLIER, "--db", &db])
                .arg("--metadata")
                .arg(&metadata)
                .arg("--jwks")
                .arg(&fed.fed.jwks)
                .arg("--cert")
                .arg(&client.cert)
                .arg("--key")
                .arg(&client.key)
                .arg("--audit-log")
                .arg(&audit)
                .output()
                .unwrap();
            let elapsed = started.elapsed();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let report: Value = serde_json::from_slice(&output.stdout).unwrap();
            let sent: u64 = report["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["created"].as_u64().unwrap() + r["updated"].as_u64().unwrap() + r["deleted"].as_u64().unwrap())
                .sum();
            assert_eq!(sent, 0, "an unchanged re-push sends nothing");
            println!(
                "round {round}: unchanged re-push of {persons} persons ({objects} SS 12000 objects, {recorded} EGIL resources): {:.2} s, 0 requests (target ≤ 5 s for 100,000 persons)",
                elapsed.as_secs_f64()
            );
        }
        assert_eq!(server.store().egil_tenants().await.unwrap().len(), 0);
        drop(running);
    });
}
