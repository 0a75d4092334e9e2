//! Issue targets for the SS 12000 API, from a 100,000-person SQLite store served over mutual
//! TLS on loopback with a keep-alive client (data from `ss12000::sample`):
//!
//! 1. a 1,000-item page of `/persons`: p50 ≤ 20 ms (p90, max also printed), from sending the
//!    request to having received the whole page (the client's JSON parse is not included);
//! 2. listing all 100,000 persons by following `pageToken`, the client parsing every page:
//!    ≤ 5 s (with `limit=1000` and with the largest page, `limit=5000`).
//!
//! Server and client share the machine; the server gets two runtime threads.
//! Run: `cargo bench -p kontosynk-server --bench ss12000` (`PERSONS=10000` for a short run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fedtls::jwk::Jwks;
use fedtls::snapshot::{Snapshot, SnapshotCell};
use fedtls::testfed::FederationOptions;
use fedtls::tls::{
    PinnedServerVerifier, ReloadableCertResolver, client_config, load_cert_chain, load_private_key,
};
use fedtls::verify::{VerifyOptions, unix_now, verify_metadata};
use kontosynk_framework::{Policy, ServerBuilder};
use kontosynk_server::bearer::webpki_client_config;
use kontosynk_server::ss12000::query::percent_encode;
use kontosynk_server::ss12000::{ApiConfig, AuthMode, Ss12000Api, WebhookConfig, Webhooks};
use serde_json::Value;
use ss12000::{Collection, Database, Store, WriteBatch};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn list_all(
    client: &reqwest::Client,
    base: &str,
    limit: usize,
) -> (usize, Duration, Vec<Duration>) {
    let started = Instant::now();
    let mut pages = Vec::new();
    let mut count = 0;
    let mut url = format!("{base}/persons?limit={limit}");
    loop {
        let t = Instant::now();
        let response = client.get(&url).send().await.expect("request");
        assert_eq!(response.status(), 200);
        let bytes = response.bytes().await.expect("body");
        // Page latency: request sent until the whole page is received (client parse excluded).
        pages.push(t.elapsed());
        let body: Value = serde_json::from_slice(&bytes).expect("JSON");
        count += body["data"].as_array().expect("data").len();
        match body["pageToken"].as_str() {
            Some(token) => {
                url = format!(
                    "{base}/persons?limit={limit}&pageToken={}",
                    percent_encode(token)
                )
            }
            None => break,
        }
    }
    (count, started.elapsed(), pages)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let persons: usize = std::env::var("PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let fed = fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default())
            .expect("federation");
        let store = Store::open(&Database::Sqlite(dir.path().join("bench.sqlite")))
            .await
            .expect("store");

        let seeding = Instant::now();
        let sample = ss12000::sample::generate(&ss12000::sample::SampleSpec {
            school_units: 20,
            persons,
            seed: 2026,
        });
        let persons = sample
            .iter()
            .filter(|(c, _)| *c == Collection::Persons)
            .count();
        let objects = sample.len();
        for chunk in sample.chunks(5_000) {
            let mut batch = WriteBatch::new();
            for (collection, object) in chunk {
                batch.upsert(collection.clone(), object.clone());
            }
            store.apply(batch).await.expect("seed");
        }
        println!(
            "seeded {objects} objects ({persons} persons) from ss12000::sample into SQLite in {:.2?}",
            seeding.elapsed()
        );

        let jwks = Jwks::from_json(&std::fs::read(&fed.jwks).unwrap()).unwrap();
        let document = std::fs::read(&fed.metadata_jws).unwrap();
        let verified = verify_metadata(&document, &jwks, &VerifyOptions::default()).unwrap();
        let cell = Arc::new(SnapshotCell::with(Snapshot::new(verified, "bench", unix_now())));
        let server = fed.party("school-server").unwrap();
        let resolver = Arc::new(
            ReloadableCertResolver::new(
                load_cert_chain(&server.cert).unwrap(),
                load_private_key(&server.key).unwrap(),
            )
            .unwrap(),
        );
        let webhooks = Webhooks::new(
            store.clone(),
            WebhookConfig::default(),
            webpki_client_config(None).unwrap(),
        )
        .unwrap();
        let api = Ss12000Api::new(store, ApiConfig::new(AuthMode::MutualTls), webhooks);
        let bound = ServerBuilder::new(cell)
            .tls(resolver)
            .policy(Policy {
                client_tags: vec!["egilv1".parse().unwrap()],
                ..Policy::default()
            })
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = format!("https://localhost:{}", bound.local_addr().unwrap().port());
        let handler = api.handler();
        tokio::spawn(async move { bound.serve(handler, std::future::pending()).await });

        let party = fed.party("school-client").unwrap();
        let identity = (load_cert_chain(&party.cert).unwrap(), load_private_key(&party.key).unwrap());
        let verifier = PinnedServerVerifier::new([server.pin]).into_arc();
        let config = client_config(verifier, Some(identity), &[b"http/1.1"]).unwrap();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .build()
            .unwrap();

        // Warm-up (connection, SQLite page cache).
        let _ = list_all(&client, &base, 1_000).await;

        let mut pages = Vec::new();
        let mut totals = Vec::new();
        for _ in 0..3 {
            let (count, total, page_times) = list_all(&client, &base, 1_000).await;
            assert_eq!(count, persons, "every person listed once");
            totals.push(total);
            pages.extend(page_times);
        }
        pages.sort();
        println!(
            "1,000-item page over mTLS ({} pages): p50 {:.2?}, p90 {:.2?}, max {:.2?}  (target p50 <= 20 ms)",
            pages.len(),
            percentile(&pages, 0.5),
            percentile(&pages, 0.9),
            pages.last().unwrap()
        );
        totals.sort();
        println!(
            "list all {persons} with limit=1000: best {:.2?}, median {:.2?}  (target <= 5 s)",
            totals[0],
            totals[totals.len() / 2]
        );
        let mut big = Vec::new();
        for _ in 0..3 {
            let (count, total, _) = list_all(&client, &base, 5_000).await;
            assert_eq!(count, persons);
            big.push(total);
        }
        big.sort();
        println!(
            "list all {persons} with limit=5000: best {:.2?}, median {:.2?}",
            big[0],
            big[big.len() / 2]
        );
    });
}
