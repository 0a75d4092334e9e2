//! A server trusting two federations at once (as a member of Moa production and Moa trial
//! does): each source's members are served and named with their source, `/readyz` and
//! `/metrics` show each source, and when one source expires only its members are refused.
//! The real binary, real files, curl as the members' client.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod process;

use fedtls::jwk::SigningKey;
use fedtls::jws::{JwsFormat, SignOptions, sign_metadata};
use fedtls::testfed::{FederationOptions, TestFederation};
use fedtls::verify::unix_now;
use serde_json::Value;

const PROD_ISS: &str = "https://prod.fed.test.example";
const TRIAL_ISS: &str = "https://trial.fed.test.example";

fn federation(dir: &Path, iss: &str) -> TestFederation {
    let options = FederationOptions {
        iss: iss.to_owned(),
        ..FederationOptions::default()
    };
    fedtls::testfed::init(dir, &options).unwrap()
}

/// Re-signs `fed`'s metadata valid for `lifetime` seconds from now, to `fed`'s metadata file.
fn republish(fed: &TestFederation, lifetime: i64) {
    let key = SigningKey::from_jwk_json(&std::fs::read(&fed.signing_key).unwrap()).unwrap();
    let payload: Value =
        serde_json::from_slice(&std::fs::read(&fed.metadata_json).unwrap()).unwrap();
    let signed = sign_metadata(
        payload.as_object().unwrap(),
        &[&key],
        &SignOptions {
            iss: fed.iss.clone(),
            lifetime_secs: lifetime,
            now: unix_now(),
            format: JwsFormat::General,
            default_cache_ttl: 3600,
        },
    )
    .unwrap();
    std::fs::write(&fed.metadata_jws, signed).unwrap();
}

type Running = process::Logged;

impl process::Logged {
    fn addr(&self) -> String {
        self.logged("whoami listening", "addr")
    }

    fn admin(&self, path: &str) -> (u16, String) {
        let admin = self.logged("admin endpoints", "admin_addr");
        let out = Command::new(fedtls::testfed::require_program("curl", "curl"))
            .args(["--silent", "--show-error", "--max-time", "20"])
            .args(["--write-out", "\n%{http_code}"])
            .arg(format!("http://{admin}{path}"))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_owned())
    }

    /// whoami over mutual TLS with `client`'s certificate; the identity, or `None` when the
    /// server refused the client.
    fn whoami(&self, fed: &TestFederation, client: &str, server_pin: &str) -> Option<Value> {
        let party = fed.party(client).unwrap();
        let out = Command::new(fedtls::testfed::require_program("curl", "curl"))
            .args(["--silent", "--max-time", "20", "--insecure"])
            .arg("--cert")
            .arg(&party.cert)
            .arg("--key")
            .arg(&party.key)
            .arg("--pinnedpubkey")
            .arg(server_pin)
            .arg(format!("https://{}/", self.addr()))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("JSON"))
    }
}

fn whoami_command(server: &fedtls::testfed::Party) -> Command {
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
        .arg(&server.cert)
        .arg("--key")
        .arg(&server.key);
    for (variable, _) in std::env::vars() {
        if variable.starts_with("KONTOSYNK_") {
            command.env_remove(variable);
        }
    }
    command
}

#[test]
fn two_federations_are_served_and_one_expiring_takes_only_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let prod = federation(&dir.path().join("prod"), PROD_ISS);
    let trial = federation(&dir.path().join("trial"), TRIAL_ISS);
    let server = prod.party("school-server").unwrap();
    let server_pin = server.pin.to_curl();
    // The trial federation's document is valid for a few seconds only.
    republish(&trial, 8);

    // Flags: one --metadata/--jwks pair per federation, named.
    let mut flags = whoami_command(server);
    flags
        .arg("--metadata")
        .arg(&prod.metadata_jws)
        .arg("--jwks")
        .arg(&prod.jwks)
        .arg("--metadata")
        .arg(&trial.metadata_jws)
        .arg("--jwks")
        .arg(&trial.jwks)
        .args(["--source-name", "moa-prod", "--source-name", "moa-trial"]);
    let any = Running::start(flags, dir.path().join("any.log"));
    // The same through the environment only, requiring every source.
    let join = |a: &Path, b: &Path| format!("{},{}", a.display(), b.display());
    let mut env = whoami_command(server);
    env.env(
        "KONTOSYNK_METADATA",
        join(&prod.metadata_jws, &trial.metadata_jws),
    )
    .env("KONTOSYNK_JWKS", join(&prod.jwks, &trial.jwks))
    .env("KONTOSYNK_SOURCE_NAMES", "moa-prod,moa-trial")
    .env("KONTOSYNK_REQUIRE_ALL_SOURCES", "true");
    let all = Running::start(env, dir.path().join("all.log"));

    for running in [&any, &all] {
        let me = running
            .whoami(&prod, "school-client", &server_pin)
            .expect("a production member is served");
        assert_eq!(me["entity_id"], "https://school.test.example");
        assert_eq!(me["source"], "moa-prod");
        assert_eq!(me["source_iss"], PROD_ISS);
        let me = running
            .whoami(&trial, "school-client", &server_pin)
            .expect("a trial member is served");
        assert_eq!(me["source"], "moa-trial");
        assert_eq!(me["source_iss"], TRIAL_ISS);
        let (code, body) = running.admin("/readyz");
        assert_eq!(code, 200, "{body}");
        let ready: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ready["valid_sources"], 2, "{body}");
        assert_eq!(ready["sources"][1]["name"], "moa-trial", "{body}");
        assert!(ready["sources"][1]["expires_at"].is_i64(), "{body}");
    }
    let (_, metrics) = any.admin("/metrics");
    for line in [
        "kontosynk_metadata_valid{source=\"moa-prod\"} 1",
        "kontosynk_metadata_valid{source=\"moa-trial\"} 1",
        "kontosynk_metadata_sources_valid 2",
        "kontosynk_metadata_ready 1",
    ] {
        assert!(metrics.contains(line), "{line} missing: {metrics}");
    }

    // The trial document expires and nothing newer is published: trial members are
    // refused, production members are still served.
    let started = Instant::now();
    while any.whoami(&trial, "school-client", &server_pin).is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the trial member should be refused once its metadata expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(any.whoami(&prod, "school-client", &server_pin).is_some());
    let log = any.wait_for("metadata source is no longer valid");
    let line = log
        .lines()
        .find(|l| l.contains("metadata source is no longer valid"))
        .unwrap();
    assert!(
        line.contains("moa-trial") && line.contains("moa-prod"),
        "{line}"
    );

    // Ready while one source is valid; with every source required, not ready, but the valid
    // source's members are still served.
    let (code, body) = any.admin("/readyz");
    assert_eq!(code, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["valid_sources"], 1, "{body}");
    assert_eq!(ready["sources"][1]["expired"], true, "{body}");
    let (_, metrics) = any.admin("/metrics");
    for line in [
        "kontosynk_metadata_valid{source=\"moa-trial\"} 0",
        "kontosynk_metadata_valid{source=\"moa-prod\"} 1",
        "kontosynk_metadata_sources_valid 1",
        "kontosynk_metadata_ready 1",
    ] {
        assert!(metrics.contains(line), "{line} missing: {metrics}");
    }
    let (code, body) = all.admin("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("moa-trial"), "{body}");
    let (_, metrics) = all.admin("/metrics");
    assert!(metrics.contains("kontosynk_metadata_ready 0"), "{metrics}");
    assert!(all.whoami(&prod, "school-client", &server_pin).is_some());
    assert!(all.whoami(&trial, "school-client", &server_pin).is_none());
}

#[test]
fn flags_that_do_not_pair_up_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let prod = federation(&dir.path().join("prod"), PROD_ISS);
    let server = prod.party("school-server").unwrap();
    let out = whoami_command(server)
        .arg("--metadata")
        .arg(&prod.metadata_jws)
        .arg("--metadata")
        .arg(&prod.metadata_jws)
        .arg("--jwks")
        .arg(&prod.jwks)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 --metadata but 1 --jwks"), "{stderr}");

    // A [[federation]] file; two sources with the same name are refused.
    let file = dir.path().join("federations.toml");
    let entry = format!(
        "[[federation]]\nname = \"moa\"\nmetadata = {:?}\njwks = {:?}\n",
        prod.metadata_jws.display().to_string(),
        prod.jwks.display().to_string()
    );
    std::fs::write(&file, format!("{entry}\n{entry}")).unwrap();
    let out = whoami_command(server)
        .arg("--federations")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("two metadata sources are named \"moa\""),
        "{stderr}"
    );
}
