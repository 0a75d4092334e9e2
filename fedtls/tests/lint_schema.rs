//! Lint equals the official MATF JSON Schema, and more: mutations of a real document (the MATF
//! specification's `example.json`, unchanged in `fixtures/real-world/`) that either official
//! schema version rejects must each be a lint error at the mutated path, under every profile,
//! while `verify` keeps reading the forms it always read.

use fedtls::jws::sign_metadata;
use fedtls::lint::{LintOptions, LintReport, Profile, Severity, lint};
use fedtls::{Algorithm, Jwks, SignOptions, SigningKey, VerifyOptions, verify_metadata};
use serde_json::{Value, json};

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/real-world/dotse-example.json"
);
/// 2017-04-20: inside the (one-month) validity of the example's issuer certificate.
const NOW: i64 = 1_492_646_400;

fn real() -> Value {
    serde_json::from_slice(&std::fs::read(REAL).unwrap()).unwrap()
}

fn lint_value(value: &Value, profile: Profile) -> LintReport {
    lint(
        &serde_json::to_vec_pretty(value).unwrap(),
        &LintOptions::new(profile, NOW),
    )
}

fn schema_errors(report: &LintReport) -> Vec<(String, String)> {
    report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error && p.message.contains("official MATF schema"))
        .map(|p| (p.path.clone(), p.message.clone()))
        .collect()
}

fn mutate(pointer: &str, new: Option<Value>) -> Value {
    let mut doc = real();
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let target = doc.pointer_mut(parent).unwrap();
    match (target, new) {
        (Value::Object(map), Some(v)) => {
            map.insert(last.to_owned(), v);
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), Some(v)) => items[last.parse::<usize>().unwrap()] = v,
        (Value::Array(items), None) => {
            items.remove(last.parse::<usize>().unwrap());
        }
        (other, _) => panic!("{pointer}: parent is {other}"),
    }
    doc
}

#[test]
fn the_unmutated_real_document_has_no_schema_error() {
    for profile in [Profile::Matf, Profile::Moa] {
        let report = lint_value(&real(), profile);
        assert_eq!(schema_errors(&report), vec![], "{:#?}", report.problems);
    }
    let report = lint_value(&real(), Profile::Matf);
    assert!(!report.has_errors(), "{:#?}", report.problems);
}

#[test]
fn every_schema_mutation_is_an_error_naming_its_path() {
    let digest = "+hcmCjJEtLq4BRPhrILyhgn98Lhy6DaWdpmsBAgOLCQ=";
    let server_pin = "/entities/0/servers/0/pins/0";
    let cases: Vec<(Value, &str)> = vec![
        // The digest forms the SUNET auth server drops whole documents for.
        (
            mutate(
                &format!("{server_pin}/digest"),
                Some(json!(digest.replace('+', "-"))),
            ),
            "$.entities[0].servers[0].pins[0].digest",
        ),
        (
            mutate(
                &format!("{server_pin}/digest"),
                Some(json!(digest.trim_end_matches('='))),
            ),
            "$.entities[0].servers[0].pins[0].digest",
        ),
        (
            mutate(
                "/entities/0/clients/0/pins/0",
                Some(json!({"alg": "sha256", "digest": digest, "comment": "new key"})),
            ),
            "$.entities[0].clients[0].pins[0]",
        ),
        (
            mutate(server_pin, Some(json!({"name": "sha256", "value": digest}))),
            "$.entities[0].servers[0].pins[0]",
        ),
        (
            mutate("/entities/0/issuers/0/valid_until", Some(json!("2030"))),
            "$.entities[0].issuers[0]",
        ),
        (
            mutate(&format!("{server_pin}/alg"), Some(json!("SHA256"))),
            "$.entities[0].servers[0].pins[0].alg",
        ),
        (
            mutate(&format!("{server_pin}/alg"), None),
            "$.entities[0].servers[0].pins[0].alg",
        ),
        (mutate("/version", Some(json!("1.0"))), "$.version"),
        (mutate("/version", Some(json!(1))), "$.version"),
        (mutate("/version", None), "$.version"),
        (mutate("/cache_ttl", Some(json!(-1))), "$.cache_ttl"),
        (mutate("/cache_ttl", Some(json!("3600"))), "$.cache_ttl"),
        (mutate("/cache_ttl", Some(json!(1.5))), "$.cache_ttl"),
        (mutate("/entities", Some(json!({}))), "$.entities"),
        (
            mutate("/entities/0/entity_id", None),
            "$.entities[0].entity_id",
        ),
        (
            mutate("/entities/0/entity_id", Some(json!("example.com"))),
            "$.entities[0].entity_id",
        ),
        (
            mutate("/entities/0/organization", Some(json!(["Example Org"]))),
            "$.entities[0].organization",
        ),
        (mutate("/entities/0/issuers", None), "$.entities[0].issuers"),
        (
            mutate("/entities/0/issuers/0/x509certificate", Some(json!(1))),
            "$.entities[0].issuers[0].x509certificate",
        ),
        (
            mutate("/entities/0/servers/0/tags/0", Some(json!("SCIM"))),
            "$.entities[0].servers[0].tags[0]",
        ),
        (
            mutate(
                "/entities/0/servers/0/base_uri",
                Some(json!("scim.example.com")),
            ),
            "$.entities[0].servers[0].base_uri",
        ),
        (
            mutate("/entities/0/servers/0/description", Some(json!(1))),
            "$.entities[0].servers[0].description",
        ),
        (
            mutate("/entities/0/clients/0/pins", None),
            "$.entities[0].clients[0].pins",
        ),
        (
            mutate("/entities/0/servers", Some(json!({}))),
            "$.entities[0].servers",
        ),
    ];
    for (doc, path) in cases {
        for profile in [Profile::Matf, Profile::Moa] {
            let report = lint_value(&doc, profile);
            let found = schema_errors(&report);
            assert!(
                found.iter().any(|(p, m)| p == path
                    && (m.contains("Moa production schema 712c5bf")
                        || m.contains("MATF schema HEAD c4134bc"))),
                "{profile}: no schema error at {path}: {:#?}",
                report.problems
            );
            assert!(report.has_errors());
        }
    }
}

#[test]
fn single_entities_and_arrays_are_checked_against_the_entity_definition() {
    let mut entity = real()["entities"][0].clone();
    entity["clients"][0]["pins"][0]["digest"] = json!("not base64!");
    let report = lint_value(&entity, Profile::Matf);
    assert!(
        schema_errors(&report)
            .iter()
            .any(|(p, _)| p == "$.clients[0].pins[0].digest"),
        "{:#?}",
        report.problems
    );
    let report = lint_value(&json!([entity]), Profile::Matf);
    assert!(
        schema_errors(&report)
            .iter()
            .any(|(p, _)| p == "$[0].clients[0].pins[0].digest"),
        "{:#?}",
        report.problems
    );
}

/// Be liberal in what verify accepts: the forms lint refuses still verify, and their pins
/// still identify the entity.
#[test]
fn verify_keeps_reading_what_lint_refuses() {
    let digest = "+hcmCjJEtLq4BRPhrILyhgn98Lhy6DaWdpmsBAgOLCQ=";
    let mut doc = real();
    doc["entities"][0]["servers"][0]["pins"][0] = json!({"name": "sha256", "value": digest});
    doc["entities"][0]["clients"][0]["pins"][0] = json!({"alg": "sha256", "digest": digest.replace('+', "-").trim_end_matches('='), "note": 1});
    doc["entities"][0]["issuers"][0]["comment"] = json!("extra");
    assert!(lint_value(&doc, Profile::Matf).has_errors());

    let key = SigningKey::generate(Algorithm::Es256, "k1").unwrap();
    let jwks = Jwks::from_keys(vec![key.public_jwk()]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let options = SignOptions {
        iss: "https://fed.example".to_owned(),
        lifetime_secs: 3600,
        now,
        format: fedtls::JwsFormat::General,
        default_cache_ttl: 3600,
    };
    let Value::Object(payload) = doc else {
        unreachable!()
    };
    let jws = sign_metadata(&payload, &[&key], &options).unwrap();
    let snapshot = verify_metadata(jws.as_bytes(), &jwks, &VerifyOptions::default()).unwrap();
    assert_eq!(snapshot.index().entities().len(), 1);
    assert!(snapshot.index().rejected().is_empty());
}
