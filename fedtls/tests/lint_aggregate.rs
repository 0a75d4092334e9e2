//! The operator's view (`fedtls lint --aggregate`, automatic with several organization_ids):
//! federation-wide rules without "organization differs" between members; and certificate
//! rotation: several certificates per endpoint, renewed self-signed certificates with the
//! subject of the one they replace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fedtls::entity::{EndpointSpec, EntityError, EntitySpec, build_entity};
use fedtls::lint::{LintOptions, LintReport, Profile, Severity, lint};
use fedtls::{Pin, Tag};
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{Value, json};

/// A self-signed leaf: (PEM, DER) with subject `CN=<cn>, O=Test AB` and the given DNS names.
fn self_signed(cn: &str, dns: &[&str]) -> (String, Vec<u8>) {
    self_signed_with(cn, dns, false)
}

/// Like `openssl req -x509` makes them: self-signed, basicConstraints cA when `ca`.
fn self_signed_with(cn: &str, dns: &[&str], ca: bool) -> (String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = dns.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Test AB");
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec())
}

fn pin(der: &[u8]) -> String {
    Pin::of_certificate(der).unwrap().to_string()
}

fn egil() -> Vec<Tag> {
    vec![Tag::new("egilv1").unwrap()]
}

struct Member {
    id: &'static str,
    org: &'static str,
    org_id: &'static str,
    server: (String, Vec<u8>),
    client: (String, Vec<u8>),
    host: &'static str,
}

fn member(id: &'static str, org: &'static str, org_id: &'static str, host: &'static str) -> Member {
    Member {
        id,
        org,
        org_id,
        server: self_signed(&format!("{host} server"), &[host]),
        client: self_signed(&format!("{host} client"), &[]),
        host,
    }
}

fn entity(m: &Member) -> Value {
    build_entity(&EntitySpec {
        entity_id: m.id.to_owned(),
        organization: Some(m.org.to_owned()),
        organization_id: Some(m.org_id.to_owned()),
        servers: vec![EndpointSpec {
            certificate_pem: m.server.0.clone().into_bytes(),
            base_uri: Some(format!("https://{}/ss12000/", m.host)),
            tags: egil(),
            ..Default::default()
        }],
        clients: vec![EndpointSpec {
            certificate_pem: m.client.0.clone().into_bytes(),
            tags: egil(),
            ..Default::default()
        }],
        scopes: vec![m.host.to_owned()],
        ..Default::default()
    })
    .unwrap()
}

/// Three members of a federation, each clean.
fn federation() -> (Vec<Member>, Value) {
    let members = vec![
        member(
            "https://a.example/md",
            "Exempel kommun",
            "SE2120001234",
            "api.a.example",
        ),
        member(
            "https://b.example/md",
            "Leverantör AB",
            "SE5560001234",
            "b.example",
        ),
        member(
            "https://c.example/md",
            "Skolverket",
            "SE2021004185",
            "c.example",
        ),
    ];
    let doc = json!({
        "version": "1.0.0",
        "cache_ttl": 3600,
        "entities": members.iter().map(entity).collect::<Vec<_>>(),
    });
    (members, doc)
}

fn opts() -> LintOptions {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    LintOptions::new(Profile::Moa, i64::try_from(now).unwrap())
}

fn run(doc: &Value, opts: &LintOptions) -> LintReport {
    lint(&serde_json::to_vec_pretty(doc).unwrap(), opts)
}

fn errors(report: &LintReport) -> Vec<(String, String)> {
    report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| (p.path.clone(), p.message.clone()))
        .collect()
}

#[test]
fn a_clean_aggregate_has_no_problem_and_no_organization_warning() {
    let (_, doc) = federation();
    let report = run(&doc, &opts());
    assert!(report.aggregate, "three organization_ids make an aggregate");
    assert_eq!(report.problems, vec![], "{:#?}", report.problems);
}

#[test]
fn aggregate_rules_each_name_the_entity_and_path() {
    let (members, doc) = federation();
    let mut broken = doc.clone();
    // Duplicate entity_id.
    broken["entities"][2]["entity_id"] = json!(members[0].id);
    // The same client pin in two entities.
    broken["entities"][1]["clients"][0]["pins"][0]["digest"] = json!(pin(&members[0].client.1));
    // One organization_id, two names.
    broken["entities"][2]["organization_id"] = json!(members[1].org_id);
    // An issuer subject another member's issuer already uses.
    let (clash_pem, clash_der) = self_signed("api.a.example server", &["c.example"]);
    broken["entities"][2]["issuers"] = json!([{ "x509certificate": clash_pem }]);
    broken["entities"][2]["servers"][0]["pins"][0]["digest"] = json!(pin(&clash_der));
    // A server whose certificate does not name its host.
    broken["entities"][1]["servers"][0]["base_uri"] = json!("https://api.b.example/");

    let report = run(&broken, &opts());
    assert!(report.aggregate);
    let found = errors(&report);
    let has = |path: &str, words: &[&str]| {
        found
            .iter()
            .any(|(p, m)| p == path && words.iter().all(|w| m.contains(w)))
    };
    assert!(
        has(
            "$.entities[2].entity_id",
            &["duplicate entity_id", "$.entities[0].entity_id"]
        ),
        "{found:#?}"
    );
    assert!(
        has(
            "$.entities[1].clients[0].pins[0].digest",
            &["client pin", "https://a.example/md"]
        ),
        "{found:#?}"
    );
    assert!(
        has(
            "$.entities[2].organization",
            &["SE5560001234", "Leverantör AB", "Skolverket"]
        ),
        "{found:#?}"
    );
    assert!(
        has(
            "$.entities[2].issuers[0].x509certificate",
            &["same subject", "$.entities[0].issuers[0].x509certificate"]
        ),
        "{found:#?}"
    );
    assert!(
        has(
            "$.entities[1].servers[0].pins[0].digest",
            &[
                "does not name the base_uri host \"api.b.example\"",
                "b.example"
            ]
        ),
        "{found:#?}"
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.message.contains("all of a member's entities")),
        "no organization-differs warnings in an aggregate: {:#?}",
        report.problems
    );
}

#[test]
fn aggregate_mode_can_be_asked_for() {
    // Two members without organization_id (MATF): not detected, so Moa warns that the names
    // differ, until the operator says it is an aggregate.
    let (_, mut doc) = federation();
    doc["entities"].as_array_mut().unwrap().truncate(2);
    for entity in doc["entities"].as_array_mut().unwrap() {
        entity.as_object_mut().unwrap().remove("organization_id");
    }
    let report = run(&doc, &opts());
    assert!(!report.aggregate);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path == "$.entities[1].organization" && p.message.contains("differs"))
    );
    let mut options = opts();
    options.aggregate = true;
    let report = run(&doc, &options);
    assert!(report.aggregate);
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.message.contains("differs")),
        "{:#?}",
        report.problems
    );
}

#[test]
fn host_names_match_san_and_wildcards_and_given_certificates() {
    let (members, doc) = federation();
    // A wildcard certificate names api.b.example.
    let (wild_pem, wild_der) = self_signed("b wildcard", &["*.b.example"]);
    let mut ok = doc.clone();
    ok["entities"][1]["issuers"] = json!([{ "x509certificate": wild_pem }]);
    ok["entities"][1]["servers"][0]["pins"][0]["digest"] = json!(pin(&wild_der));
    ok["entities"][1]["servers"][0]["base_uri"] = json!("https://api.b.example/");
    assert_eq!(errors(&run(&ok, &opts())), vec![]);
    // ...but not b.example itself, nor x.api.b.example.
    for host in ["https://b.example/", "https://x.api.b.example/"] {
        let mut bad = ok.clone();
        bad["entities"][1]["servers"][0]["base_uri"] = json!(host);
        assert_eq!(errors(&run(&bad, &opts())).len(), 1, "{host}");
    }
    // A CA-issued server certificate is found when given with --cert.
    let mut options = opts();
    let (_, other_der) = self_signed("given", &["elsewhere.example"]);
    let mut given = doc.clone();
    given["entities"][0]["servers"][0]["pins"]
        .as_array_mut()
        .unwrap()
        .push(json!({"alg": "sha256", "digest": pin(&other_der)}));
    options.certificates = vec![other_der.clone().into()];
    let found = errors(&run(&given, &options));
    assert!(
        found
            .iter()
            .any(|(p, m)| p == "$.entities[0].servers[0].pins[1].digest"
                && m.contains("elsewhere.example")),
        "{found:#?}"
    );
    let _ = members;
}

#[test]
fn several_certificates_per_endpoint_and_a_renewed_same_subject_certificate() {
    // Plain self-signed leaves, and cA ones as `openssl req -x509` makes by default.
    for ca in [false, true] {
        renewal(ca);
    }
}

fn renewal(ca: bool) {
    // The old and the renewed self-signed certificate: same subject, new key.
    let (old_pem, old_der) = self_signed_with("api.a.example", &["api.a.example"], ca);
    let (new_pem, new_der) = self_signed_with("api.a.example", &["api.a.example"], ca);
    let (client_pem, client_der) = self_signed("a client", &[]);
    let (client2_pem, client2_der) = self_signed("a client 2026", &[]);
    let spec = EntitySpec {
        entity_id: "https://a.example/md".into(),
        organization: Some("Exempel kommun".into()),
        organization_id: Some("SE2120001234".into()),
        servers: vec![EndpointSpec {
            certificate_pem: old_pem.clone().into_bytes(),
            more_certificates_pem: vec![new_pem.clone().into_bytes()],
            base_uri: Some("https://api.a.example/".into()),
            tags: egil(),
            ..Default::default()
        }],
        clients: vec![EndpointSpec {
            certificate_pem: client_pem.into_bytes(),
            more_certificates_pem: vec![client2_pem.into_bytes()],
            tags: egil(),
            ..Default::default()
        }],
        scopes: vec!["a.example".into()],
        ..Default::default()
    };
    let entity = build_entity(&spec).unwrap();
    assert_eq!(
        entity["servers"][0]["pins"],
        json!([
            {"alg": "sha256", "digest": pin(&old_der)},
            {"alg": "sha256", "digest": pin(&new_der)},
        ])
    );
    assert_eq!(
        entity["clients"][0]["pins"],
        json!([
            {"alg": "sha256", "digest": pin(&client_der)},
            {"alg": "sha256", "digest": pin(&client2_der)},
        ])
    );
    assert_eq!(entity["issuers"].as_array().unwrap().len(), 4);

    // Lint: no error; the renewal is a warning that says when to remove the old one, and the
    // report lists the endpoints being renewed.
    let doc = json!({"version": "1.0.0", "cache_ttl": 3600, "entities": [entity]});
    let report = run(&doc, &opts());
    assert!(!report.has_errors(), "{:#?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.severity == Severity::Warning
                && p.path == "$.entities[0].issuers[1].x509certificate"
                && p.message.contains("renewed")),
        "{:#?}",
        report.problems
    );
    assert_eq!(report.cache_ttl, Some(3600));
    assert_eq!(
        report.rotating,
        vec![
            ("$.entities[0].servers[0]".to_owned(), 2),
            ("$.entities[0].clients[0]".to_owned(), 2)
        ]
    );

    // The same subject on two different endpoints is still a clash.
    let clash = EntitySpec {
        servers: vec![EndpointSpec {
            certificate_pem: old_pem.into_bytes(),
            base_uri: Some("https://api.a.example/".into()),
            tags: egil(),
            ..Default::default()
        }],
        clients: vec![EndpointSpec {
            certificate_pem: new_pem.into_bytes(),
            tags: egil(),
            ..Default::default()
        }],
        ..spec
    };
    assert!(matches!(
        build_entity(&clash),
        Err(EntityError::DuplicateIssuerSubject(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// The CLI

fn fedtls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(args)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn cli_entity_takes_old_and_new_certificate_and_says_when_peers_see_the_new_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (old_pem, old_der) = self_signed("api.a.example", &["api.a.example"]);
    let (new_pem, new_der) = self_signed("api.a.example", &["api.a.example"]);
    let old = write(dir.path(), "old.pem", &old_pem);
    let new = write(dir.path(), "new.pem", &new_pem);
    let server = format!(
        "cert={},cert={},base_uri=https://api.a.example/,tags=egilv1",
        old.display(),
        new.display()
    );
    let out = fedtls(&[
        "entity",
        "--entity-id",
        "https://a.example/md",
        "--organization",
        "Exempel kommun",
        "--organization-id",
        "SE2120001234",
        "--server",
        &server,
        "--document",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pins = &doc["entities"][0]["servers"][0]["pins"];
    assert_eq!(pins[0]["digest"], json!(pin(&old_der)));
    assert_eq!(pins[1]["digest"], json!(pin(&new_der)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server 1 lists 2 certificates") && stderr.contains("cache_ttl"),
        "{stderr}"
    );

    // lint of the document prints the time peers see the new pin.
    let metadata = write(dir.path(), "metadata.json", &doc.to_string());
    let out = fedtls(&["lint", metadata.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("note: $.entities[0].servers[0] lists 2 pins")
            && stdout.contains("peers see the new pin at the latest at ")
            && stdout.contains("(cache_ttl 3600 s after publication)"),
        "{stdout}"
    );
}

#[test]
fn cli_lint_aggregate_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut doc) = federation();
    doc["entities"].as_array_mut().unwrap().truncate(2);
    for entity in doc["entities"].as_array_mut().unwrap() {
        entity.as_object_mut().unwrap().remove("organization_id");
    }
    let path = write(dir.path(), "agg.json", &doc.to_string());
    let path = path.to_str().unwrap();
    let out = fedtls(&["lint", "--profile", "matf", "--aggregate", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("no problems (matf profile, aggregate)"),
        "{stdout}"
    );
}

#[test]
fn cli_sign_refuses_a_broken_aggregate_unless_allowed_and_compact_has_no_newline() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("op.jwk");
    let jwks = dir.path().join("op.jwks");
    let out = fedtls(&[
        "keygen",
        "--kid",
        "op-1",
        "--out-private",
        key.to_str().unwrap(),
        "--out-jwks",
        jwks.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let key = key.to_str().unwrap();

    let (members, doc) = federation();
    let mut broken = doc.clone();
    broken["entities"][2]["entity_id"] = json!(members[0].id);
    let digest = pin(&members[1].client.1);
    broken["entities"][1]["clients"][0]["pins"][0]["digest"] = json!(
        digest
            .replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
    );
    let broken = write(dir.path(), "broken.json", &broken.to_string());
    let broken = broken.to_str().unwrap();
    let sign = |extra: &[&str], file: &str| {
        let mut args = vec!["sign", "--key", key, "--iss", "https://fed.example"];
        args.extend_from_slice(extra);
        args.push(file);
        fedtls(&args)
    };

    // Refused: nothing on stdout, every error on stderr with its path.
    let out = sign(&[], broken);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("error: $.entities[2].entity_id: duplicate entity_id"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: $.entities[1].clients[0].pins[0].digest: ")
            && stderr.contains("official MATF schema"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nothing signed") && stderr.contains("--allow-invalid"),
        "{stderr}"
    );

    // --allow-invalid signs and says what it let through.
    let out = sign(&["--allow-invalid"], broken);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("signed with --allow-invalid despite 2 lint errors")
            && stderr.contains("$.entities[2].entity_id")
            && stderr.contains("$.entities[1].clients[0].pins[0].digest"),
        "{stderr}"
    );
    let signed = write(dir.path(), "broken.jws", &text(&out.stdout));
    let verified = fedtls(&[
        "verify",
        "--jwks",
        jwks.to_str().unwrap(),
        signed.to_str().unwrap(),
    ]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );

    // A clean aggregate signs without a word; compact output ends without a newline, JSON with one.
    let clean = write(dir.path(), "clean.json", &doc.to_string());
    let clean = clean.to_str().unwrap();
    let out = sign(&["--format", "compact"], clean);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'.').count(), 2);
    assert!(
        !out.stdout.ends_with(b"\n") && !out.stdout.ends_with(b"\r"),
        "compact JWS ends with a newline"
    );
    let out = sign(&[], clean);
    assert!(out.stdout.ends_with(b"}\n"));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
