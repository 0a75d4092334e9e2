//! Health check of 1,000 loopback mutual-TLS servers listed in a synthetic signed metadata,
//! concurrency 50 (target: ≤ 30 s). Prints the wall time and the per-server figures.
//!
//! `cargo bench -p kontosynk-client --bench health` (optional args: SERVERS CONCURRENCY RATE;
//! RATE 0 = no pacing).
//!
//! Figures on the shared 2-core build machine (servers and checker in one process), bench
//! profile: 1,000 servers, concurrency 50, unpaced: 0.54–0.81 s wall (p50 per server
//! 18–28 ms); concurrency 20: 0.47 s; with the CLI's default pacing of 50 checks/s: 20.0 s
//! (the pacing is the floor). Unoptimized (dev) build, concurrency 50: 4.1–5.6 s.
//!
//! Then the federation page for 5,000 servers (the 1,000 results five times over, each copy
//! its own organization and entity, a tenth of them turned into failures): its size (target
//! ≤ 1 MB), the time to build it, and the time headless Chromium (`/usr/bin/chromium`, when
//! present) takes from navigation start to the first rendered table (target ≤ 1 s), best and
//! worst of three loads.
//!
//! Figures (same machine, bench profile, 2 December 2026, after issue 18): sweep 0.56–0.63 s
//! wall at concurrency 50 unpaced (p50 14–18 ms per server); page 798–799 kB, built in
//! 12–24 ms, rendered by Chromium 59–103 ms after navigation start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fedtls::jwk::{Algorithm, SigningKey};
use fedtls::jws::{JwsFormat, SignOptions, sign_metadata};
use fedtls::snapshot::{Snapshot, SnapshotCell};
use fedtls::tls::PinnedClientVerifier;
use fedtls::verify::{VerifyOptions, unix_now, verify_metadata};
use fedtls::{Jwks, Pin};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kontosynk_client::client::Identity;
use kontosynk_client::discovery::ServerQuery;
use kontosynk_client::health::{ClientCert, HealthOptions, Summary, check_all};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn self_signed(name: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned(), "127.0.0.1".to_owned()])
        .expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("cert");
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let servers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let rate: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(servers, concurrency, rate));
}

async fn run(servers: usize, concurrency: usize, rate: f64) {
    let (server_cert, server_key) = self_signed("localhost");
    let (client_cert, client_key) = self_signed("health-client");
    let server_pin = Pin::of_certificate(&server_cert).expect("pin");
    let client_pin = Pin::of_certificate(&client_cert).expect("pin");

    // Listeners first: their ports go into the metadata.
    let mut listeners = Vec::with_capacity(servers);
    for _ in 0..servers {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    }
    let mut entities: Vec<serde_json::Value> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let port = l.local_addr().expect("addr").port();
            json!({
                "entity_id": format!("https://member{i}.bench.example"),
                "organization": format!("Bänkmedlem {} AB", i / 4),
                "organization_id": format!("SE{:010}", 5_560_000_000u64 + (i / 4) as u64),
                "issuers": [],
                "servers": [{"base_uri": format!("https://localhost:{port}/ss12000/"),
                             "pins": [{"alg": "sha256", "digest": server_pin.to_string()}],
                             "tags": ["egilv1"]}]
            })
        })
        .collect();
    entities.push(json!({
        "entity_id": "https://checker.bench.example",
        "organization": "Kontrollanten AB",
        "organization_id": "SE5569999999",
        "issuers": [],
        "clients": [{"pins": [{"alg": "sha256", "digest": client_pin.to_string()}], "tags": ["egilv1"]}]
    }));
    let payload = json!({"version": "1.0.0", "cache_ttl": 3600, "entities": entities});
    let key = SigningKey::generate(Algorithm::Es256, "bench").expect("signing key");
    let jws = sign_metadata(
        payload.as_object().expect("object"),
        &[&key],
        &SignOptions {
            iss: "https://fed.bench.example".to_owned(),
            lifetime_secs: 3600,
            now: unix_now(),
            format: JwsFormat::General,
            default_cache_ttl: 3600,
        },
    )
    .expect("sign");
    let jwks = Jwks::from_keys(vec![key.public_jwk()]);
    let verified =
        verify_metadata(jws.as_bytes(), &jwks, &VerifyOptions::default()).expect("verify");
    let cell = Arc::new(SnapshotCell::with(Snapshot::new(
        verified,
        "bench",
        unix_now(),
    )));

    // The servers: mutual TLS (client pins from the metadata), HTTP/1.1 and HTTP/2.
    let verifier = Arc::new(PinnedClientVerifier::new(cell.clone()));
    let config = fedtls::tls::server_config(
        verifier,
        vec![server_cert],
        server_key,
        &[b"h2", b"http/1.1"],
    )
    .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    for listener in listeners {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_request| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"{}"),
                        )))
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    }

    let snapshot = fedtls::SnapshotSource::current(cell.as_ref()).expect("snapshot");
    let found = ServerQuery::tag("egilv1").find(snapshot.index());
    assert_eq!(found.servers.len(), servers);
    let identity = Identity::new(vec![client_cert], client_key).expect("identity");
    let cert = Arc::new(ClientCert::new(&identity).expect("client cert"));
    let options = HealthOptions {
        concurrency,
        rate_per_second: rate,
        hostname_warn_only: false,
        ..HealthOptions::default()
    };
    let started = Instant::now();
    let results = check_all(&found, cert, &options).await;
    let wall = started.elapsed();
    let summary = Summary::of(&results, 30);
    let mut latencies: Vec<u64> = results.iter().map(|r| r.total_ms).collect();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "health: {servers} servers, concurrency {concurrency}, rate {}: wall {:.2} s ({:.0} checks/s); \
         {} healthy, {} unhealthy; per-server check p50 {} ms, p95 {} ms, max {} ms; target <= 30 s: {}",
        if rate > 0.0 {
            format!("{rate}/s")
        } else {
            "unpaced".to_owned()
        },
        wall.as_secs_f64(),
        servers as f64 / wall.as_secs_f64(),
        summary.healthy,
        summary.unhealthy,
        pct(0.5),
        pct(0.95),
        latencies.last().copied().unwrap_or(0),
        if wall <= Duration::from_secs(30) {
            "met"
        } else {
            "MISSED"
        },
    );
    if let Some(bad) = results.iter().find(|r| !r.healthy) {
        println!(
            "first unhealthy: {} {}: {:?}",
            bad.entity_id, bad.base_uri, bad.error
        );
    }
    page(&results);
}

/// The 5,000-server page: size, build time and Chromium's render time.
fn page(results: &[kontosynk_client::health::ServerHealth]) {
    use kontosynk_client::health::HealthState;
    use kontosynk_client::health::html::{ReportContext, render};

    let mut many = Vec::with_capacity(5000);
    for copy in 0..5 {
        for (i, r) in results.iter().enumerate() {
            let mut r = r.clone();
            let n = copy * results.len() + i;
            r.entity_id = format!("https://kommun{}.example.se", n / 5);
            r.organization = Some(format!("Kommun {}", n / 5));
            if n % 10 == 3 {
                r.healthy = false;
                r.error = Some("tcp: 192.0.2.10:443: connection refused".to_owned());
                r.state = HealthState::Unhealthy;
            }
            many.push(r);
            if many.len() == 5000 {
                break;
            }
        }
    }
    let started = Instant::now();
    let html = render(
        &many,
        &ReportContext {
            title: "Federationens hälsa".to_owned(),
            expiry_warning_days: 30,
            ..ReportContext::default()
        },
    );
    let built = started.elapsed();
    let dir = std::env::temp_dir().join(format!("kontosynk-health-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("health.html");
    std::fs::write(&path, &html).expect("write");
    let mut renders = Vec::new();
    if std::path::Path::new("/usr/bin/chromium").exists() {
        for _ in 0..3 {
            let profile = dir.join("profile");
            let output = std::process::Command::new("/usr/bin/chromium")
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(format!("file://{}", path.display()))
                .stderr(std::process::Stdio::null())
                .output()
                .expect("chromium");
            let dom = String::from_utf8_lossy(&output.stdout);
            if let Some(ms) = dom
                .split("data-render-ms=\"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .and_then(|t| t.parse::<u64>().ok())
            {
                renders.push(ms);
            }
        }
    }
    renders.sort_unstable();
    println!(
        "page: 5,000 servers, {} bytes (target <= 1,000,000: {}); built in {:.1} ms; Chromium render {} ms (target <= 1000 ms)",
        html.len(),
        if html.len() <= 1_000_000 {
            "met"
        } else {
            "MISSED"
        },
        built.as_secs_f64() * 1000.0,
        match (renders.first(), renders.last()) {
            (Some(best), Some(worst)) => format!("{best}–{worst}"),
            _ => "not measured (no /usr/bin/chromium)".to_owned(),
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}
