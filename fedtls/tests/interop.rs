//! Known-answer tests on metadata signed by an independent implementation
//! (`fixtures/interop`): every case's outcome, pins and index answers.

use std::path::PathBuf;

use fedtls::OrganizationId;
use fedtls::index::Role;
use fedtls::jwk::Jwks;
use fedtls::pin::Pin;
use fedtls::verify::{VerifyError, VerifyOptions, verify_metadata};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/interop"))
}

fn read(relative: &str) -> Vec<u8> {
    let path = fixtures().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected() -> Value {
    serde_json::from_slice(&read("expected.json")).expect("expected.json")
}

fn jwks(name: &str) -> Jwks {
    Jwks::from_json(&read(name)).expect("trust anchor")
}

#[test]
fn every_case_has_its_expected_outcome() {
    let expected = expected();
    let jwks = jwks("jwks.json");
    let cases = expected["cases"].as_array().expect("cases");
    assert!(cases.len() >= 28, "the fixture set shrank");
    for case in cases {
        let file = case["file"].as_str().expect("file");
        let result = verify_metadata(&read(file), &jwks, &VerifyOptions::default());
        match case["expect"].as_str() {
            Some("ok") => {
                let verified = result.unwrap_or_else(|e| panic!("{file}: refused: {e}"));
                assert_eq!(
                    verified.index().entities().len() as u64,
                    case["entities"].as_u64().expect("entities"),
                    "{file}"
                );
                assert!(verified.index().rejected().is_empty(), "{file}");
                assert_eq!(
                    verified.claims().iss(),
                    Some("https://interop.fed.example"),
                    "{file}"
                );
                assert_eq!(verified.claims().exp(), 4_102_444_800, "{file}");
            }
            Some("partial") => {
                let verified = result.unwrap_or_else(|e| panic!("{file}: refused: {e}"));
                assert_eq!(
                    verified.index().entities().len() as u64,
                    case["entities"].as_u64().expect("entities"),
                    "{file}"
                );
                assert_eq!(
                    verified.index().rejected().len() as u64,
                    case["rejected"].as_u64().expect("rejected"),
                    "{file}"
                );
            }
            Some("reject") => {
                let err = result.err().unwrap_or_else(|| panic!("{file}: accepted"));
                assert!(!err.to_string().is_empty(), "{file}: empty error");
            }
            other => panic!("{file}: unknown expectation {other:?}"),
        }
    }
}

/// Each refusal happens at the layer the fixture is about, not by accident elsewhere.
#[test]
fn refusals_happen_for_the_stated_reason() {
    let jwks = jwks("jwks.json");
    let verify = |file: &str| {
        verify_metadata(&read(file), &jwks, &VerifyOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{file}: accepted"))
    };
    for file in [
        "signed/expired.jws",
        "signed/payload-expired.jws",
        "signed/payload-exp-wins.jws",
        "signed/not-yet-valid.jws",
        "signed/no-exp.jws",
    ] {
        assert!(
            matches!(verify(file), VerifyError::Claims(_)),
            "{file}: {}",
            verify(file)
        );
    }
    for file in [
        "signed/rogue-key-same-kid.jws",
        "signed/tampered-payload.jws",
        "signed/crit-unknown.jws",
        "signed/alg-none.jws",
        "signed/alg-confusion-hs256.jws",
        "signed/not-json.jws",
        "signed/empty.jws",
    ] {
        assert!(
            matches!(verify(file), VerifyError::Jws(_)),
            "{file}: {}",
            verify(file)
        );
    }
    for file in [
        "signed/payload-not-json.jws",
        "signed/payload-no-entities.jws",
        "signed/payload-bad-version.jws",
    ] {
        assert!(
            matches!(verify(file), VerifyError::Document(_)),
            "{file}: {}",
            verify(file)
        );
    }
    assert!(
        verify("signed/payload-exp-wins.jws")
            .to_string()
            .contains("expired")
    );
    assert!(verify("signed/alg-none.jws").to_string().contains("none"));
}

#[test]
fn partial_document_names_each_left_out_entity() {
    let verified = verify_metadata(
        &read("signed/some-bad-entities.jws"),
        &jwks("jwks.json"),
        &VerifyOptions::default(),
    )
    .expect("verifies");
    let rejected = verified.index().rejected();
    assert_eq!(rejected[0].index, 4);
    assert_eq!(
        rejected[0].entity_id.as_deref(),
        Some("https://broken.interop.example")
    );
    assert_eq!(rejected[1].index, 5);
    assert_eq!(rejected[1].entity_id, None);
    assert!(
        rejected[1].reason.contains("entity_id is required"),
        "{}",
        rejected[1].reason
    );
    assert_eq!(rejected[2].index, 6);
    assert_eq!(
        rejected[2].entity_id.as_deref(),
        Some("https://sis.interop-kommun.example")
    );
    assert!(
        rejected[2].reason.contains("duplicate entity_id"),
        "{}",
        rejected[2].reason
    );
    // The first of the duplicates is the one kept, with its servers intact.
    let kept = verified
        .index()
        .entity("https://sis.interop-kommun.example")
        .expect("kept");
    assert_eq!(kept.servers.len(), 1);
}

#[test]
fn rollover_verifies_with_either_trust_anchor() {
    for anchor in ["jwks.json", "jwks-es256-only.json"] {
        let verified = verify_metadata(
            &read("signed/general-two-signatures-rollover.jws"),
            &jwks(anchor),
            &VerifyOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{anchor}: {e}"));
        assert_eq!(verified.index().entities().len(), 4);
    }
    // Only the ES256 key is trusted: documents signed by the others are refused.
    let narrow = jwks("jwks-es256-only.json");
    for file in [
        "signed/general-es384.jws",
        "signed/general-eddsa.jws",
        "signed/general-rs256.jws",
    ] {
        assert!(
            verify_metadata(&read(file), &narrow, &VerifyOptions::default()).is_err(),
            "{file} must need its own key"
        );
    }
}

#[test]
fn required_issuer_is_enforced() {
    let mut options = VerifyOptions::default();
    options.policy.required_iss = Some("https://interop.fed.example".into());
    let doc = read("signed/general-es256.jws");
    assert!(verify_metadata(&doc, &jwks("jwks.json"), &options).is_ok());
    options.policy.required_iss = Some("https://other.example".into());
    let err = verify_metadata(&doc, &jwks("jwks.json"), &options).unwrap_err();
    assert!(matches!(err, VerifyError::Claims(_)), "{err}");
}

#[test]
fn verification_is_pinned_to_the_clock() {
    let doc = read("signed/general-es256.jws");
    let jwks = jwks("jwks.json");
    let at = |now| {
        verify_metadata(
            &doc,
            &jwks,
            &VerifyOptions {
                now: Some(now),
                ..VerifyOptions::default()
            },
        )
    };
    assert!(at(4_102_444_799).is_ok(), "one second before exp");
    assert!(at(4_102_444_800).is_err(), "no leeway on exp");
    assert!(at(1_795_294_269 - 30).is_ok(), "iat within the leeway");
    assert!(at(1_795_294_269 - 3600).is_err(), "issued in the future");
}

#[test]
fn party_pins_match_expected_and_the_index() {
    let expected = expected();
    for (name, party) in expected["parties"].as_object().expect("parties") {
        let pem = read(party["cert"].as_str().expect("cert"));
        let pin = Pin::of_pem(&pem).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            pin.to_string(),
            party["pin"].as_str().expect("pin"),
            "{name}"
        );
    }
    // Chain files pin their leaf.
    let chain = Pin::of_pem(&read("certs/interop-supplier-client-chain.pem")).unwrap();
    let leaf = Pin::of_pem(&read("certs/interop-supplier-client.pem")).unwrap();
    assert_eq!(chain, leaf);
}

#[test]
fn index_answers_the_fixture_lookups() {
    let expected = expected();
    let verified = verify_metadata(
        &read("signed/general-es256.jws"),
        &jwks("jwks.json"),
        &VerifyOptions::default(),
    )
    .expect("verifies");
    let index = &verified.index();
    for lookup in expected["client_lookups"]
        .as_array()
        .expect("client_lookups")
    {
        let pin: Pin = lookup["pin"]
            .as_str()
            .expect("pin")
            .parse()
            .expect("pin parses");
        let role = match lookup["role"].as_str() {
            Some("server") => Role::Server,
            _ => Role::Client,
        };
        let found = index.by_pin(&pin, role);
        match lookup["entity_id"].as_str() {
            Some(entity_id) => {
                let found = found.unwrap_or_else(|| panic!("{pin:?} ({role}) not found"));
                assert_eq!(found.entity.entity_id, entity_id);
                if let Some(org) = lookup["organization_id"].as_str() {
                    let found_org = found.entity.organization_id.as_ref();
                    assert_eq!(found_org.map(OrganizationId::as_str), Some(org));
                }
            }
            None => assert!(found.is_none(), "{pin:?} ({role}) must not be found"),
        }
    }
    for query in expected["server_tag_queries"]
        .as_array()
        .expect("server_tag_queries")
    {
        let tag = query["tag"].as_str().expect("tag");
        assert_eq!(
            index.servers_with_tag(tag).len() as u64,
            query["servers"].as_u64().expect("servers"),
            "tag {tag}"
        );
    }
    let org: OrganizationId = "SE2021004185".parse().unwrap();
    assert_eq!(index.entities_by_organization_id(&org).len(), 1);
    let scoped: Vec<_> = index.entities_by_scope("Skola.Angelholm.Example").collect();
    assert_eq!(scoped.len(), 1);
    assert_eq!(scoped[0].entity_id, "https://interop-angelholm.example");
    assert!(index.ambiguities().is_empty());
}

#[test]
fn sunet_issuer_thumbprint_matches_self_signed_client() {
    let verified = verify_metadata(
        &read("signed/general-es256.jws"),
        &jwks("jwks.json"),
        &VerifyOptions::default(),
    )
    .expect("verifies");
    let entity = verified
        .index()
        .entity("https://sis.interop-kommun.example")
        .unwrap();
    let client = fedtls::CertThumbprint::of_pem(&read("certs/interop-sis-client.pem")).unwrap();
    assert!(entity.has_issuer_thumbprint(&client));
    let other = fedtls::CertThumbprint::of_pem(&read("certs/interop-unlisted-client.pem")).unwrap();
    assert!(!entity.has_issuer_thumbprint(&other));
}
