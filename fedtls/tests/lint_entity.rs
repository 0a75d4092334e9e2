//! Lint, entity generation and certificate inspection against the interop fixtures and
//! certificates made with rcgen; the CLI is exercised through the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use fedtls::entity::{EndpointSpec, EntityError, EntitySpec, build_entity};
use fedtls::jws::sign_metadata;
use fedtls::lint::{LintOptions, LintReport, Profile, SAML_SCOPE_EXTENSION, Severity, lint};
use fedtls::pin::pem_certificates;
use fedtls::tls::{MAX_CHAIN_LINKS, PeerRejection, PinnedClientVerifier};
use fedtls::x509::{KeyInfo, inspect, signature_is_sane, verify_signed_by};
use fedtls::{
    Algorithm, Jwks, Pin, SignOptions, SigningKey, Snapshot, SnapshotCell, Tag, VerifyOptions,
    verify_metadata,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::{Value, json};

use Severity::{Error, Warning};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/interop");
/// 2027-01-01T00:00:00Z: inside the validity of every fixture certificate.
const NOW: i64 = 1_798_761_600;
const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------------------------
// Helpers

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_certs(name: &str) -> Vec<CertificateDer<'static>> {
    pem_certificates(&fixture(&format!("certs/{name}"))).unwrap()
}

fn opts(profile: Profile) -> LintOptions {
    LintOptions::new(profile, NOW)
}

fn lint_value(doc: &Value, profile: Profile) -> LintReport {
    lint(&serde_json::to_vec_pretty(doc).unwrap(), &opts(profile))
}

fn summary(report: &LintReport) -> Vec<(Severity, String)> {
    report
        .problems
        .iter()
        .map(|p| (p.severity, p.path.clone()))
        .collect()
}

#[track_caller]
fn assert_problems(report: &LintReport, expected: &[(Severity, &str)]) {
    let expected: Vec<(Severity, String)> = expected
        .iter()
        .map(|(s, p)| (*s, (*p).to_owned()))
        .collect();
    assert_eq!(summary(report), expected, "{:#?}", report.problems);
}

#[track_caller]
fn message_at<'r>(report: &'r LintReport, path: &str) -> &'r str {
    report
        .problems
        .iter()
        .find(|p| p.path == path)
        .map(|p| p.message.as_str())
        .unwrap_or_else(|| panic!("no problem at {path}: {:#?}", report.problems))
}

/// A certificate made for a test, with its key.
struct Made {
    pem: String,
    der: CertificateDer<'static>,
    params: CertificateParams,
    key: KeyPair,
}

impl Made {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    fn pin(&self) -> String {
        Pin::of_certificate(&self.der).unwrap().to_string()
    }
}

struct Spec<'a> {
    cn: &'a str,
    ca: bool,
    valid_from: i64,
    valid_until: i64,
    signer: Option<&'a Made>,
}

impl<'a> Spec<'a> {
    fn leaf(cn: &'a str) -> Self {
        Self {
            cn,
            ca: false,
            valid_from: NOW - 30 * DAY,
            valid_until: NOW + 365 * DAY,
            signer: None,
        }
    }

    fn ca(cn: &'a str) -> Self {
        Self {
            ca: true,
            ..Self::leaf(cn)
        }
    }

    fn signed_by(self, signer: &'a Made) -> Self {
        Self {
            signer: Some(signer),
            ..self
        }
    }

    fn valid(self, from: i64, until: i64) -> Self {
        Self {
            valid_from: from,
            valid_until: until,
            ..self
        }
    }

    fn make(self) -> Made {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![format!("{}.example", self.cn)]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, self.cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Test AB");
        set_validity(&mut params, self.valid_from, self.valid_until);
        if self.ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = match self.signer {
            Some(signer) => params.signed_by(&key, &signer.issuer()).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        Made {
            pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        }
    }
}

fn set_validity(params: &mut CertificateParams, from: i64, until: i64) {
    let epoch = date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(u64::try_from(from).unwrap());
    params.not_after = epoch + Duration::from_secs(u64::try_from(until).unwrap());
}

fn tags(list: &[&str]) -> Vec<Tag> {
    list.iter().map(|t| Tag::new(t).unwrap()).collect()
}

fn endpoint(pem: &str, base_uri: Option<&str>, tag_list: &[&str]) -> EndpointSpec {
    EndpointSpec {
        certificate_pem: pem.as_bytes().to_vec(),
        more_certificates_pem: Vec::new(),
        base_uri: base_uri.map(str::to_owned),
        tags: tags(tag_list),
        description: None,
    }
}

/// A small, Moa-clean federation file: entity A with self-signed server and client, entity B
/// with a client certificate from a private root CA.
struct Fed {
    doc: Value,
    a_server: Made,
    a_client: Made,
    b_ca: Made,
    b_client: Made,
}

fn fed() -> Fed {
    let a_server = Spec::leaf("a-server").make();
    let a_client = Spec::leaf("a-client").make();
    let b_ca = Spec::ca("b-root").make();
    let b_client = Spec::leaf("b-client").signed_by(&b_ca).make();
    let a = build_entity(&EntitySpec {
        entity_id: "https://a.example/md".into(),
        organization: Some("Exempel kommun".into()),
        organization_id: Some("SE2120001234".into()),
        servers: vec![EndpointSpec {
            description: Some("SS 12000 API".into()),
            ..endpoint(
                &a_server.pem,
                Some("https://a-server.example/ss12000/"),
                &["egilv1"],
            )
        }],
        clients: vec![endpoint(&a_client.pem, None, &["egilv1"])],
        extra_issuers_pem: Vec::new(),
        scopes: vec!["a.example".into()],
    })
    .unwrap();
    let b = build_entity(&EntitySpec {
        entity_id: "https://b.example/md".into(),
        organization: Some("Exempel kommun".into()),
        organization_id: Some("SE2120001234".into()),
        clients: vec![endpoint(
            &format!("{}{}", b_client.pem, b_ca.pem),
            None,
            &["bolv1"],
        )],
        ..Default::default()
    })
    .unwrap();
    Fed {
        doc: json!({ "version": "1.0.0", "cache_ttl": 3600, "entities": [a, b] }),
        a_server,
        a_client,
        b_ca,
        b_client,
    }
}

/// A copy of `doc` with the value at `pointer` (RFC 6901) replaced, or added at the end of
/// its parent object.
fn set(doc: &Value, pointer: &str, value: Value) -> Value {
    let mut doc = doc.clone();
    if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = value;
        return doc;
    }
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.replace("~1", "/").replace("~0", "~"), value);
    doc
}

/// A copy of `doc` without the member at `pointer`.
fn remove(doc: &Value, pointer: &str) -> Value {
    let mut doc = doc.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let removed = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|o| o.shift_remove(key));
    assert!(removed.is_some(), "nothing at {pointer}");
    doc
}

fn issuer_json(pem: &str) -> Value {
    json!({ "x509certificate": pem })
}

// ---------------------------------------------------------------------------------------------
// The interop fixture

#[test]
fn fixture_lints_clean_under_matf() {
    let report = lint(&fixture("metadata.json"), &opts(Profile::Matf));
    assert_problems(&report, &[]);
    let expected_sha1 = {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &fixture("metadata.json"),
        );
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(report.sha1_hex, expected_sha1);
    assert_eq!(report.sha256_hex.len(), 64);
}

#[test]
fn fixture_under_moa_is_an_aggregate_without_organization_warnings() {
    // The fixture aggregates four members with four organization_ids: lint sees an aggregate
    // and does not warn that their organization names differ (that was a false alarm).
    let report = lint(&fixture("metadata.json"), &opts(Profile::Moa));
    assert!(report.aggregate);
    assert_problems(&report, &[]);
    // One member's file (one organization_id) is still held to one organization name.
    let mut doc: Value = serde_json::from_slice(&fixture("metadata.json")).unwrap();
    let id = doc["entities"][0]["organization_id"].clone();
    for entity in doc["entities"].as_array_mut().unwrap() {
        entity["organization_id"] = id.clone();
    }
    let report = lint_value(&doc, Profile::Moa);
    assert!(!report.aggregate);
    // One organization_id with four names: an error at each name after the first, once.
    assert_problems(
        &report,
        &[
            (Error, "$.entities[1].organization"),
            (Error, "$.entities[2].organization"),
            (Error, "$.entities[3].organization"),
        ],
    );
    assert!(
        message_at(&report, "$.entities[3].organization").contains("organization_id"),
        "{:#?}",
        report.problems
    );
    // Without organization_ids (MATF), one member's file still gets the Moa-style warning.
    for entity in doc["entities"].as_array_mut().unwrap() {
        entity.as_object_mut().unwrap().remove("organization_id");
    }
    let report = lint_value(&doc, Profile::Moa);
    assert!(
        message_at(&report, "$.entities[3].organization").contains("differs"),
        "{:#?}",
        report.problems
    );
}

const PARTIES: [&str; 6] = [
    "interop-sis-server",
    "interop-sis-client",
    "interop-supplier-client",
    "interop-supplier-server",
    "interop-authserver",
    "interop-rsa-client",
];

#[test]
fn fixture_certificates_match_their_pins_and_chain_to_their_issuers() {
    let mut options = opts(Profile::Matf);
    for party in PARTIES {
        options
            .certificates
            .extend(fixture_certs(&format!("{party}.pem")));
    }
    let report = lint(&fixture("metadata.json"), &options);
    assert_problems(&report, &[]);

    // The supplier's chain files work too: the root CA in them matches no pin and is used
    // as an intermediate, not reported.
    let mut options = opts(Profile::Matf);
    options
        .certificates
        .extend(fixture_certs("interop-supplier-client-chain.pem"));
    options
        .certificates
        .extend(fixture_certs("interop-supplier-server-chain.pem"));
    let report = lint(&fixture("metadata.json"), &options);
    assert!(!report.has_errors(), "{:#?}", report.problems);
    assert!(
        summary(&report)
            .iter()
            .all(|(s, p)| *s == Warning && !p.starts_with("$.entities[1]")),
        "{:#?}",
        report.problems
    );
}

#[test]
fn supplier_client_is_checked_against_the_entity_issuers() {
    // Drop the supplier's client root CA from its issuers: the private-CA client cert no
    // longer chains to the entity.
    let doc: Value = serde_json::from_slice(&fixture("metadata.json")).unwrap();
    let issuers = doc["entities"][1]["issuers"].as_array().unwrap().clone();
    let ca = fixture_certs("interop-supplier-client-ca.pem");
    let ca_pem = pem::encode_config(
        &pem::Pem::new("CERTIFICATE", ca[0].as_ref()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    assert_eq!(
        issuers[0]["x509certificate"],
        ca_pem.as_str(),
        "fixture layout"
    );
    let without_ca = set(&doc, "/entities/1/issuers", json!([issuers[1].clone()]));

    let mut options = opts(Profile::Matf);
    options
        .certificates
        .extend(fixture_certs("interop-supplier-client.pem"));
    let report = lint(&serde_json::to_vec(&without_ca).unwrap(), &options);
    let errors: Vec<_> = summary(&report)
        .into_iter()
        .filter(|(s, _)| *s == Error)
        .collect();
    assert_eq!(
        errors,
        [(Error, "$.entities[1].clients[0].pins[0].digest".to_owned())],
        "{:#?}",
        report.problems
    );
    let message = message_at(&report, "$.entities[1].clients[0].pins[0].digest");
    assert!(
        message.contains("not issued by any of the entity's issuers"),
        "{message}"
    );
    assert!(
        message.contains("interop-supplier-client Root CA"),
        "{message}"
    );

    // With the CA in place, the same certificate is fine.
    let report = lint(&fixture("metadata.json"), &options);
    assert!(!report.has_errors(), "{:#?}", report.problems);
}

#[test]
fn unlisted_certificate_is_an_error() {
    let mut options = opts(Profile::Matf);
    options
        .certificates
        .extend(fixture_certs("interop-unlisted-client.pem"));
    let report = lint(&fixture("metadata.json"), &options);
    let errors: Vec<_> = summary(&report)
        .into_iter()
        .filter(|(s, _)| *s == Error)
        .collect();
    assert_eq!(errors, [(Error, "$".to_owned())], "{:#?}", report.problems);
    let message = message_at(&report, "$");
    assert!(
        message.contains("mKZXRvFVSs49EWuglEReEJFTwGUw9ztsSFOIvunru+0="),
        "{message}"
    );
    assert!(message.contains("matches no pin"), "{message}");
    // Every pin of the file now has no given certificate: one warning each (7 pins).
    assert_eq!(report.warnings(), 7, "{:#?}", report.problems);
}

#[test]
fn inspect_gives_the_pins_of_expected_json() {
    let expected: Value = serde_json::from_slice(&fixture("expected.json")).unwrap();
    let parties = expected["parties"].as_object().unwrap();
    assert_eq!(parties.len(), 7);
    for (name, party) in parties {
        let certs = pem_certificates(&fixture(party["cert"].as_str().unwrap())).unwrap();
        assert_eq!(certs.len(), 1, "{name}");
        let info = inspect(&certs[0]).unwrap();
        assert_eq!(
            info.pin.to_string(),
            party["pin"].as_str().unwrap(),
            "{name}"
        );
        assert!(!info.is_ca, "{name}");
        assert!(signature_is_sane(&info).is_ok(), "{name}");
        assert!(
            info.dns_names.is_empty() || info.dns_names == ["localhost"],
            "{name}"
        );
    }

    let sis = inspect(&fixture_certs("interop-sis-server.pem")[0]).unwrap();
    assert!(sis.self_issued && sis.self_signed);
    assert_eq!(sis.subject, "CN=interop-sis-server, O=Exempelkommun");
    assert_eq!(
        sis.key,
        KeyInfo::Ec {
            curve: "P-256".into()
        }
    );
    assert_eq!(sis.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(
        sis.ip_addresses,
        ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(sis.dns_names, ["localhost"]);

    let auth = inspect(&fixture_certs("interop-authserver.pem")[0]).unwrap();
    assert_eq!(
        auth.key,
        KeyInfo::Ec {
            curve: "P-384".into()
        }
    );
    let rsa = inspect(&fixture_certs("interop-rsa-client.pem")[0]).unwrap();
    assert_eq!(rsa.key, KeyInfo::Rsa { bits: 2048 });
    assert_eq!(rsa.signature_algorithm, "sha256WithRSAEncryption");
    assert!(rsa.self_signed);

    let ca = &fixture_certs("interop-supplier-client-ca.pem")[0];
    let ca_info = inspect(ca).unwrap();
    assert!(ca_info.is_ca && ca_info.self_signed);
    assert_eq!(
        ca_info.subject,
        "CN=interop-supplier-client Root CA, O=Leverantör AB"
    );
    let client = &fixture_certs("interop-supplier-client.pem")[0];
    let client_info = inspect(client).unwrap();
    assert!(!client_info.self_issued && !client_info.self_signed);
    assert_eq!(client_info.issuer_der, ca_info.subject_der);
    assert_eq!(client_info.not_after, 1_866_487_869, "2029-02-22T20:51:09Z");
    verify_signed_by(client, ca).unwrap();
    let other_ca = &fixture_certs("interop-supplier-server-ca.pem")[0];
    assert!(verify_signed_by(client, other_ca).is_err());

    // The chain file is leaf first, root last.
    let chain = fixture_certs("interop-supplier-client-chain.pem");
    assert_eq!(chain.len(), 2);
    assert_eq!(&chain[0], client);
    assert_eq!(&chain[1], ca);
}

// ---------------------------------------------------------------------------------------------
// Generated federation: the baseline is clean, every rule has a negative test

#[test]
fn generated_federation_is_clean_with_and_without_certificates() {
    let fed = fed();
    assert_problems(&lint_value(&fed.doc, Profile::Moa), &[]);
    assert_problems(&lint_value(&fed.doc, Profile::Matf), &[]);

    let mut options = opts(Profile::Moa);
    options.certificates = vec![
        fed.a_server.der.clone(),
        fed.a_client.der.clone(),
        fed.b_client.der.clone(),
        fed.b_ca.der.clone(),
    ];
    let report = lint(&serde_json::to_vec(&fed.doc).unwrap(), &options);
    assert_problems(&report, &[]);

    // The layout the negative tests rely on.
    let a = &fed.doc["entities"][0];
    assert_eq!(
        a["issuers"][0]["x509certificate"],
        fed.a_server.pem.as_str()
    );
    assert_eq!(
        a["issuers"][1]["x509certificate"],
        fed.a_client.pem.as_str()
    );
    assert_eq!(
        a["servers"][0]["pins"][0]["digest"],
        fed.a_server.pin().as_str()
    );
    assert_eq!(
        a["clients"][0]["pins"][0]["digest"],
        fed.a_client.pin().as_str()
    );
    let b = &fed.doc["entities"][1];
    assert_eq!(b["issuers"][0]["x509certificate"], fed.b_ca.pem.as_str());
    assert_eq!(
        b["clients"][0]["pins"][0]["digest"],
        fed.b_client.pin().as_str()
    );
}

#[test]
fn document_rules() {
    let doc = fed().doc;
    let cases: Vec<(Value, Vec<(Severity, &str)>)> = vec![
        (remove(&doc, "/version"), vec![(Error, "$.version")]),
        (
            set(&doc, "/version", json!("1.0")),
            vec![(Error, "$.version")],
        ),
        (set(&doc, "/version", json!(1)), vec![(Error, "$.version")]),
        (
            set(&doc, "/cache_ttl", json!(-1)),
            vec![(Error, "$.cache_ttl")],
        ),
        (
            set(&doc, "/cache_ttl", json!("3600")),
            vec![(Error, "$.cache_ttl")],
        ),
        (
            set(&doc, "/cache_ttl", json!(1.5)),
            vec![(Error, "$.cache_ttl")],
        ),
        (remove(&doc, "/cache_ttl"), vec![]),
        (remove(&doc, "/entities"), vec![(Error, "$.entities")]),
        (
            set(&doc, "/entities", json!({})),
            vec![(Error, "$.entities")],
        ),
        (
            set(&doc, "/entities", json!([])),
            vec![(Warning, "$.entities")],
        ),
        (
            set(&doc, "/entities/1", json!("x")),
            vec![(Error, "$.entities[1]")],
        ),
    ];
    for (input, expected) in cases {
        assert_problems(&lint_value(&input, Profile::Matf), &expected);
    }
}

#[test]
fn entity_rules() {
    let doc = fed().doc;
    let id = "$.entities[0].entity_id";
    let cases: Vec<(Value, Vec<(Severity, &str)>)> = vec![
        (remove(&doc, "/entities/0/entity_id"), vec![(Error, id)]),
        (
            set(&doc, "/entities/0/entity_id", json!(7)),
            vec![(Error, id)],
        ),
        (
            set(&doc, "/entities/0/entity_id", json!("a.example/md")),
            vec![(Error, id)],
        ),
        (
            set(&doc, "/entities/0/entity_id", json!("https://a example")),
            vec![(Error, id)],
        ),
        (
            set(&doc, "/entities/0/entity_id", json!("http://a.example/md")),
            vec![(Warning, id)],
        ),
        (
            set(&doc, "/entities/1/entity_id", json!("https://a.example/md")),
            vec![(Error, "$.entities[1].entity_id")],
        ),
        (
            remove(&doc, "/entities/1/issuers"),
            vec![(Error, "$.entities[1].issuers")],
        ),
        (
            set(&doc, "/entities/1/issuers", json!({})),
            vec![(Error, "$.entities[1].issuers")],
        ),
        (
            set(&doc, "/entities/1/issuers", json!([])),
            vec![(Warning, "$.entities[1].issuers")],
        ),
        (
            set(&doc, "/entities/1/issuers/0", json!("PEM")),
            vec![(Error, "$.entities[1].issuers[0]")],
        ),
        (
            set(&doc, "/entities/1/issuers/0", json!({})),
            vec![(Error, "$.entities[1].issuers[0].x509certificate")],
        ),
        (
            set(&doc, "/entities/1/clients", json!({})),
            vec![(Error, "$.entities[1].clients")],
        ),
        (
            remove(&doc, "/entities/1/clients"),
            vec![(Warning, "$.entities[1]")],
        ),
        (
            set(&doc, "/entities/0/extensions", json!([])),
            vec![(Error, "$.entities[0].extensions")],
        ),
        (
            set(&doc, "/entities/0/organization", json!(1)),
            vec![(Error, "$.entities[0].organization")],
        ),
        (
            set(&doc, "/entities/0/organization_id", json!(1)),
            vec![(Error, "$.entities[0].organization_id")],
        ),
        // Unknown members are fine.
        (
            set(
                &doc,
                "/entities/0/contact",
                json!({"email": "it@a.example"}),
            ),
            vec![],
        ),
    ];
    for (input, expected) in cases {
        assert_problems(&lint_value(&input, Profile::Matf), &expected);
    }
    let report = lint_value(&remove(&doc, "/entities/0/entity_id"), Profile::Matf);
    assert!(message_at(&report, id).contains("required"));
}

#[test]
fn issuer_rules() {
    let fed = fed();
    let doc = &fed.doc;
    let path = "$.entities[1].issuers[0].x509certificate";
    let with_issuer = |pem: &str| set(doc, "/entities/1/issuers/0", issuer_json(pem));

    let two = with_issuer(&format!("{}{}", fed.b_ca.pem, fed.a_server.pem));
    let report = lint_value(&two, Profile::Matf);
    assert_problems(&report, &[(Error, path)]);
    assert!(message_at(&report, path).contains("2 certificates"));

    let garbage = with_issuer("MIIB...not a certificate");
    assert_problems(&lint_value(&garbage, Profile::Matf), &[(Error, path)]);

    // A leaf signed by a CA is neither a CA nor self-signed.
    let leaf = Spec::leaf("b-intermediate-leaf")
        .signed_by(&fed.b_ca)
        .make();
    let report = lint_value(&with_issuer(&leaf.pem), Profile::Matf);
    assert_problems(&report, &[(Error, path)]);
    assert!(message_at(&report, path).contains("neither a CA certificate"));

    // A CA that is not self-signed (an intermediate) is accepted.
    let intermediate = Spec::ca("b-intermediate").signed_by(&fed.b_ca).make();
    assert_problems(
        &lint_value(&with_issuer(&intermediate.pem), Profile::Matf),
        &[],
    );

    let expired = Spec::ca("old-root")
        .valid(NOW - 400 * DAY, NOW - DAY)
        .make();
    let report = lint_value(&with_issuer(&expired.pem), Profile::Matf);
    assert_problems(&report, &[(Error, path)]);
    assert!(message_at(&report, path).contains("expired"));

    let soon = Spec::ca("soon-root")
        .valid(NOW - DAY, NOW + 10 * DAY)
        .make();
    let report = lint_value(&with_issuer(&soon.pem), Profile::Matf);
    assert_problems(&report, &[(Warning, path)]);
    assert!(message_at(&report, path).contains("in 10 days"));
    let mut quiet = opts(Profile::Matf);
    quiet.expiry_warning_days = 5;
    let report = lint(
        &serde_json::to_vec(&with_issuer(&soon.pem)).unwrap(),
        &quiet,
    );
    assert_problems(&report, &[]);

    let future = Spec::ca("future-root")
        .valid(NOW + DAY, NOW + 400 * DAY)
        .make();
    let report = lint_value(&with_issuer(&future.pem), Profile::Matf);
    assert_problems(&report, &[(Error, path)]);
    assert!(message_at(&report, path).contains("not valid until"));

    let weak = weak_rsa_ca();
    assert_eq!(inspect(&weak.1).unwrap().key, KeyInfo::Rsa { bits: 1024 });
    let report = lint_value(&with_issuer(&weak.0), Profile::Matf);
    assert_problems(&report, &[(Error, path)]);
    assert!(
        message_at(&report, path).contains("1024 bits"),
        "{:#?}",
        report.problems
    );

    // Another certificate with the subject of entity A's first issuer.
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = fed.a_server.params.distinguished_name.clone();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let clash = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
    let report = lint_value(&with_issuer(&clash.pem()), Profile::Matf);
    assert_problems(&report, &[(Error, path)]);
    assert!(
        message_at(&report, path).contains("$.entities[0].issuers[0].x509certificate"),
        "{:#?}",
        report.problems
    );

    // The same certificate twice in one entity: a warning; in two entities: fine.
    let twice = set(
        doc,
        "/entities/1/issuers",
        json!([issuer_json(&fed.b_ca.pem), issuer_json(&fed.b_ca.pem)]),
    );
    assert_problems(
        &lint_value(&twice, Profile::Matf),
        &[(Warning, "$.entities[1].issuers[1].x509certificate")],
    );
    let shared = set(
        doc,
        "/entities/1/issuers",
        json!([issuer_json(&fed.b_ca.pem), issuer_json(&fed.a_server.pem)]),
    );
    assert_problems(&lint_value(&shared, Profile::Matf), &[]);

    // A private key pasted along with the certificate.
    let with_key = with_issuer(&format!("{}{}", fed.b_ca.pem, fed.b_ca.key.serialize_pem()));
    let report = lint_value(&with_key, Profile::Matf);
    assert_problems(&report, &[(Error, path)]);
    assert!(message_at(&report, path).contains("PRIVATE KEY"));
}

/// A CA certificate with a 1024-bit RSA key (aws-lc-rs cannot make one, so the key is a fixed
/// modulus and the signature is filler: the lint only needs the key size).
fn weak_rsa_ca() -> (String, CertificateDer<'static>) {
    struct WeakRsa(Vec<u8>);
    impl rcgen::PublicKeyData for WeakRsa {
        fn der_bytes(&self) -> &[u8] {
            &self.0
        }
        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            &rcgen::PKCS_RSA_SHA256
        }
    }
    impl rcgen::SigningKey for WeakRsa {
        fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
            Ok(vec![0x5a; 128])
        }
    }
    // RSAPublicKey { modulus: 1024 bits, publicExponent: 65537 }
    let mut der = vec![0x30, 0x81, 0x89, 0x02, 0x81, 0x81, 0x00];
    der.extend((0..128u8).map(|i| i.wrapping_mul(37) | 0x81));
    der.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
    let key = WeakRsa(der);
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "weak-root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().clone())
}

#[test]
fn endpoint_rules() {
    let doc = fed().doc;
    let server = "/entities/0/servers/0";
    let s = "$.entities[0].servers[0]";
    let p = |suffix: &str| format!("{s}{suffix}");
    let cases: Vec<(Value, Vec<(Severity, String)>)> = vec![
        (
            remove(&doc, &format!("{server}/pins")),
            vec![(Error, p(".pins"))],
        ),
        (
            set(&doc, &format!("{server}/pins"), json!([])),
            vec![(Error, p(".pins"))],
        ),
        (
            set(&doc, &format!("{server}/pins"), json!("x")),
            vec![(Error, p(".pins"))],
        ),
        (
            set(&doc, &format!("{server}/pins/0"), json!("x")),
            vec![(Error, p(".pins[0]"))],
        ),
        (
            set(&doc, &format!("{server}/pins/0"), json!({})),
            vec![(Error, p(".pins[0]"))],
        ),
        (
            set(&doc, &format!("{server}/pins/0/alg"), json!("sha1")),
            vec![(Error, p(".pins[0].alg"))],
        ),
        (
            set(&doc, &format!("{server}/pins/0/alg"), json!("SHA-256")),
            vec![(Error, p(".pins[0].alg"))],
        ),
        (
            remove(&doc, &format!("{server}/pins/0/alg")),
            vec![(Error, p(".pins[0].alg"))],
        ),
        (
            set(&doc, &format!("{server}/pins/0/digest"), json!("AAAA")),
            vec![(Error, p(".pins[0].digest"))],
        ),
        (
            set(&doc, &format!("{server}/pins/0/digest"), json!(32)),
            vec![(Error, p(".pins[0].digest"))],
        ),
        (
            remove(&doc, &format!("{server}/pins/0/digest")),
            vec![(Error, p(".pins[0].digest"))],
        ),
        (
            set(&doc, &format!("{server}/tags"), json!(["egilv1", "EGIL"])),
            vec![(Error, p(".tags[1]"))],
        ),
        (
            set(&doc, &format!("{server}/tags"), json!(["egilv1", 7])),
            vec![(Error, p(".tags[1]"))],
        ),
        (
            set(&doc, &format!("{server}/tags"), json!("egilv1")),
            vec![(Error, p(".tags"))],
        ),
        (
            set(&doc, &format!("{server}/tags"), json!(["egilv1", "egilv1"])),
            vec![(Warning, p(".tags[1]"))],
        ),
        (
            remove(&doc, &format!("{server}/base_uri")),
            vec![(Error, p(".base_uri"))],
        ),
        (
            set(
                &doc,
                &format!("{server}/base_uri"),
                json!("api.a.example/ss12000"),
            ),
            vec![(Error, p(".base_uri"))],
        ),
        (
            set(
                &doc,
                &format!("{server}/base_uri"),
                json!("ftp://api.a.example/"),
            ),
            vec![(Error, p(".base_uri"))],
        ),
        (
            set(
                &doc,
                &format!("{server}/base_uri"),
                json!("http://api.a.example/"),
            ),
            vec![(Warning, p(".base_uri"))],
        ),
        (
            set(&doc, &format!("{server}/base_uri"), json!(1)),
            vec![(Error, p(".base_uri"))],
        ),
        (
            set(&doc, &format!("{server}/description"), json!(["x"])),
            vec![(Error, p(".description"))],
        ),
        (
            set(&doc, "/entities/0/servers/0", json!(1)),
            vec![(Error, s.to_owned())],
        ),
        // A client needs no base_uri, but one it has must be a URL.
        (
            set(
                &doc,
                "/entities/0/clients/0/base_uri",
                json!("https://c.a.example/"),
            ),
            vec![],
        ),
        (
            set(&doc, "/entities/0/clients/0/base_uri", json!("c.a.example")),
            vec![(Error, "$.entities[0].clients[0].base_uri".to_owned())],
        ),
    ];
    for (input, expected) in cases {
        let expected: Vec<(Severity, &str)> =
            expected.iter().map(|(s, p)| (*s, p.as_str())).collect();
        assert_problems(&lint_value(&input, Profile::Matf), &expected);
    }

    // Unpadded or base64url digests are understood (verify reads them), but lint refuses them,
    // as the official schema does, and gives the canonical form.
    let digest = doc["entities"][0]["servers"][0]["pins"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let unpadded = set(
        &doc,
        &format!("{server}/pins/0/digest"),
        json!(digest.trim_end_matches('=')),
    );
    let report = lint_value(&unpadded, Profile::Matf);
    assert_problems(&report, &[(Error, &p(".pins[0].digest"))]);
    assert!(message_at(&report, &p(".pins[0].digest")).contains(&digest));
    assert!(message_at(&report, &p(".pins[0].digest")).contains("official MATF schema"));

    // The legacy {name, value} form: verify reads it, lint refuses it.
    let legacy = set(
        &doc,
        &format!("{server}/pins/0"),
        json!({ "name": "sha256", "value": digest }),
    );
    let report = lint_value(&legacy, Profile::Matf);
    assert_problems(&report, &[(Error, &p(".pins[0]"))]);
    assert!(message_at(&report, &p(".pins[0]")).contains("\"alg\""));
    assert!(message_at(&report, &p(".pins[0]")).contains("official MATF schema"));
    let legacy_bad = set(
        &doc,
        &format!("{server}/pins/0"),
        json!({ "name": "md5", "value": "AAAA" }),
    );
    assert_problems(
        &lint_value(&legacy_bad, Profile::Matf),
        &[
            (Error, &p(".pins[0]")),
            (Error, &p(".pins[0].name")),
            (Error, &p(".pins[0].value")),
        ],
    );
}

#[test]
fn near_misses_are_warned_about() {
    let doc = fed().doc;
    let renamed = |doc: &Value, pointer: &str, new_name: &str| {
        let value = doc.pointer(pointer).unwrap().clone();
        let (parent, _) = pointer.rsplit_once('/').unwrap();
        set(
            &remove(doc, pointer),
            &format!("{parent}/{new_name}"),
            value,
        )
    };
    let entityid = renamed(&doc, "/entities/0/entity_id", "entityid");
    let report = lint_value(&entityid, Profile::Matf);
    assert_problems(
        &report,
        &[
            (Warning, "$.entities[0].entityid"),
            (Error, "$.entities[0].entity_id"),
        ],
    );
    assert!(message_at(&report, "$.entities[0].entityid").contains("did you mean \"entity_id\""));

    let base_url = renamed(&doc, "/entities/0/servers/0/base_uri", "base_url");
    assert_problems(
        &lint_value(&base_url, Profile::Matf),
        &[
            (Warning, "$.entities[0].servers[0].base_url"),
            (Error, "$.entities[0].servers[0].base_uri"),
        ],
    );

    let organisation_id = renamed(&doc, "/entities/0/organization_id", "organisation_id");
    let report = lint_value(&organisation_id, Profile::Moa);
    assert_problems(
        &report,
        &[
            (Warning, "$.entities[0].organisation_id"),
            (Error, "$.entities[0].organization_id"),
        ],
    );
    assert_problems(
        &lint_value(&organisation_id, Profile::Matf),
        &[(Warning, "$.entities[0].organisation_id")],
    );

    let pin = renamed(&doc, "/entities/1/clients/0/pins", "pin");
    assert_problems(
        &lint_value(&pin, Profile::Matf),
        &[
            (Warning, "$.entities[1].clients[0].pin"),
            (Error, "$.entities[1].clients[0].pins"),
        ],
    );

    // A near-miss next to the real member is left alone (it is just an unknown member).
    let both = set(&doc, "/entities/0/servers/0/base_url", json!("x"));
    assert_problems(&lint_value(&both, Profile::Matf), &[]);
}

#[test]
fn duplicate_client_pins() {
    let fed = fed();
    let a_client_pin = fed.a_client.pin();
    // Entity B's client uses entity A's client pin: an error at the later one.
    let across = set(
        &fed.doc,
        "/entities/1/clients/0/pins/0/digest",
        json!(a_client_pin),
    );
    let report = lint_value(&across, Profile::Matf);
    assert_problems(
        &report,
        &[(Error, "$.entities[1].clients[0].pins[0].digest")],
    );
    assert!(
        message_at(&report, "$.entities[1].clients[0].pins[0].digest")
            .contains("https://a.example/md"),
        "{:#?}",
        report.problems
    );

    // Two clients of one entity with the same pin: a warning.
    let client = fed.doc["entities"][0]["clients"][0].clone();
    let mut second = client.clone();
    second["tags"] = json!(["bolv1"]);
    let within = set(&fed.doc, "/entities/0/clients", json!([client, second]));
    assert_problems(
        &lint_value(&within, Profile::Moa),
        &[(Warning, "$.entities[0].clients[1].pins[0].digest")],
    );

    // The same pin twice in one client: a warning.
    let twice = set(
        &fed.doc,
        "/entities/0/clients/0/pins",
        json!([
            { "alg": "sha256", "digest": a_client_pin },
            { "alg": "sha256", "digest": a_client_pin }
        ]),
    );
    assert_problems(
        &lint_value(&twice, Profile::Matf),
        &[(Warning, "$.entities[0].clients[0].pins[1].digest")],
    );

    // A server pin equal to another entity's server pin is not a client-pin clash.
    let server_pin = fed.a_server.pin();
    let b_server = json!([{ "base_uri": "https://b.example/", "pins": [{ "alg": "sha256", "digest": server_pin }], "tags": ["bolv1"] }]);
    let servers = set(&fed.doc, "/entities/1/servers", b_server);
    assert_problems(&lint_value(&servers, Profile::Moa), &[]);
}

#[test]
fn moa_rules() {
    let doc = fed().doc;
    let scope_ptr = format!(
        "/entities/0/extensions/{}/scope",
        SAML_SCOPE_EXTENSION.replace('~', "~0").replace('/', "~1")
    );
    let scope = format!("$.entities[0].extensions[\"{SAML_SCOPE_EXTENSION}\"].scope");
    let cases: Vec<(Value, Vec<(Severity, String)>)> = vec![
        (
            set(&doc, "/entities/0/clients/0/tags", json!(["custom"])),
            vec![(Error, "$.entities[0].clients[0].tags".into())],
        ),
        (
            remove(&doc, "/entities/1/clients/0/tags"),
            vec![(Error, "$.entities[1].clients[0].tags".into())],
        ),
        (
            set(
                &doc,
                "/entities/0/servers/0/tags",
                json!(["ss12000", "custom"]),
            ),
            vec![(Error, "$.entities[0].servers[0].tags".into())],
        ),
        (
            set(&doc, "/entities/0/servers/0/tags", json!([])),
            vec![(Error, "$.entities[0].servers[0].tags".into())],
        ),
        (
            remove(&doc, "/entities/0/organization"),
            vec![(Error, "$.entities[0].organization".into())],
        ),
        (
            set(&doc, "/entities/0/organization", json!("  ")),
            vec![(Error, "$.entities[0].organization".into())],
        ),
        (
            remove(&doc, "/entities/1/organization_id"),
            vec![(Error, "$.entities[1].organization_id".into())],
        ),
        (
            set(&doc, "/entities/1/organization_id", json!("SE212000-1234")),
            vec![(Error, "$.entities[1].organization_id".into())],
        ),
        (
            set(&doc, &scope_ptr, json!("a.example")),
            vec![(Error, scope.clone())],
        ),
        (
            set(
                &doc,
                &scope_ptr,
                json!(["a.example", "Skola.A.Example", "not a domain", 3]),
            ),
            vec![
                (Error, format!("{scope}[1]")),
                (Error, format!("{scope}[2]")),
                (Error, format!("{scope}[3]")),
            ],
        ),
        (
            set(
                &doc,
                &scope_ptr.replace("/scope", ""),
                json!({ "scopes": ["a.example"] }),
            ),
            vec![(Error, scope.clone())],
        ),
        // Several strengthened tags on a server are fine.
        (
            set(
                &doc,
                "/entities/0/servers/0/tags",
                json!(["egilv1", "userlistv1", "x"]),
            ),
            vec![],
        ),
    ];
    // A contractor's name under the member's organization_id: one organization_id goes with
    // one legal name, an error under every profile (once, not also the Moa warning).
    let contractor = set(&doc, "/entities/1/organization", json!("Konsult AB"));
    for profile in [Profile::Moa, Profile::Matf] {
        let report = lint_value(&contractor, profile);
        assert_problems(&report, &[(Error, "$.entities[1].organization")]);
        assert!(message_at(&report, "$.entities[1].organization").contains("SE2120001234"));
    }
    for (input, expected) in cases {
        let expected: Vec<(Severity, &str)> =
            expected.iter().map(|(s, p)| (*s, p.as_str())).collect();
        assert_problems(&lint_value(&input, Profile::Moa), &expected);
        // None of these are MATF problems (an empty organization is only a warning there).
        assert!(
            !lint_value(&input, Profile::Matf).has_errors(),
            "{:#?}",
            lint_value(&input, Profile::Matf).problems
        );
    }
    let report = lint_value(&set(&doc, &scope_ptr, json!(["A.Example"])), Profile::Moa);
    assert!(message_at(&report, &format!("{scope}[0]")).contains("\"a.example\""));
    let report = lint_value(
        &set(&doc, "/entities/0/clients/0/tags", json!(["custom"])),
        Profile::Moa,
    );
    assert!(message_at(&report, "$.entities[0].clients[0].tags").contains("egilv1"));
}

#[test]
fn input_forms_and_paths() {
    let doc = fed().doc;
    let entity = doc["entities"][0].clone();
    assert_problems(&lint_value(&entity, Profile::Moa), &[]);
    let broken = set(&entity, "/servers/0/pins/0/digest", json!("AAAA"));
    assert_problems(
        &lint_value(&broken, Profile::Moa),
        &[(Error, "$.servers[0].pins[0].digest")],
    );

    let array = doc["entities"].clone();
    assert_problems(&lint_value(&array, Profile::Moa), &[]);
    let broken = set(&array, "/1/clients/0/tags", json!(["nope"]));
    assert_problems(
        &lint_value(&broken, Profile::Moa),
        &[(Error, "$[1].clients[0].tags")],
    );

    assert_problems(&lint(b"42", &opts(Profile::Moa)), &[(Error, "$")]);
    assert_problems(&lint(b"[]", &opts(Profile::Moa)), &[(Warning, "$")]);
}

#[test]
fn unparseable_json_is_one_error_at_the_root() {
    for input in [&b"{\"version\": \"1.0.0\","[..], b"", b"\x00\x01", b"{} {}"] {
        let report = lint(input, &opts(Profile::Moa));
        assert_problems(&report, &[(Error, "$")]);
        assert!(report.problems[0].message.starts_with("not valid JSON"));
        assert_eq!(report.sha256_hex.len(), 64);
    }
    let report = lint(
        br#"{"version":"1.0.0","version":"1.0.1","entities":[]}"#,
        &opts(Profile::Matf),
    );
    assert_problems(&report, &[(Error, "$.version"), (Warning, "$.entities")]);
}

#[test]
fn problems_come_in_document_order() {
    let doc = fed().doc;
    let doc = set(&doc, "/entities/1/clients/0/tags", json!(["BAD"]));
    let doc = set(&doc, "/entities/0/servers/0/base_uri", json!("nope"));
    let doc = remove(&doc, "/entities/0/entity_id");
    let doc = set(&doc, "/version", json!("one"));
    let doc = set(&doc, "/entities/0/clients/0/pins/0/alg", json!("md5"));
    let report = lint_value(&doc, Profile::Moa);
    assert_problems(
        &report,
        &[
            (Error, "$.version"),
            (Error, "$.entities[0].servers[0].base_uri"),
            (Error, "$.entities[0].clients[0].pins[0].alg"),
            // A missing member sorts after the members that are present.
            (Error, "$.entities[0].entity_id"),
            (Error, "$.entities[1].clients[0].tags"),
            (Error, "$.entities[1].clients[0].tags[0]"),
        ],
    );
}

#[test]
fn given_certificates_are_checked() {
    let fed = fed();
    let bytes = serde_json::to_vec(&fed.doc).unwrap();
    let with = |certs: Vec<CertificateDer<'static>>| {
        let mut options = opts(Profile::Moa);
        options.certificates = certs;
        lint(&bytes, &options)
    };
    let b_pin = "$.entities[1].clients[0].pins[0].digest";

    // B's client pin, but the certificate comes from another CA with the same name: the
    // signature does not verify against B's issuer.
    let mut rogue_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    rogue_params.distinguished_name = fed.b_ca.params.distinguished_name.clone();
    rogue_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let rogue_key = KeyPair::generate().unwrap();
    rogue_params.self_signed(&rogue_key).unwrap();
    let rogue_issuer = Issuer::new(rogue_params, rogue_key);
    let mut params = CertificateParams::new(vec!["b-client.example".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "b-client");
    let forged = params.signed_by(&fed.b_client.key, &rogue_issuer).unwrap();
    assert_eq!(
        Pin::of_certificate(forged.der()).unwrap().to_string(),
        fed.b_client.pin()
    );
    let report = with(vec![forged.der().clone()]);
    let errors: Vec<_> = summary(&report)
        .into_iter()
        .filter(|(s, _)| *s == Error)
        .collect();
    assert_eq!(
        errors,
        [(Error, b_pin.to_owned())],
        "{:#?}",
        report.problems
    );
    assert!(
        message_at(&report, b_pin).contains("does not verify"),
        "{:#?}",
        report.problems
    );

    // A self-signed certificate for A's client key is not listed under A's issuers.
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "a-client-renewed");
    let renewed = params.self_signed(&fed.a_client.key).unwrap();
    let report = with(vec![renewed.der().clone()]);
    assert!(
        summary(&report).contains(&(Error, "$.entities[0].clients[0].pins[0].digest".to_owned())),
        "{:#?}",
        report.problems
    );

    // An expired certificate for a pin: an error at the pin; one expiring soon: a warning.
    let mut params = fed.b_client.params.clone();
    set_validity(&mut params, NOW - 100 * DAY, NOW - DAY);
    let expired = params
        .signed_by(&fed.b_client.key, &fed.b_ca.issuer())
        .unwrap();
    let report = with(vec![expired.der().clone()]);
    let mine: Vec<_> = report.problems.iter().filter(|p| p.path == b_pin).collect();
    assert_eq!(mine.len(), 1, "{:#?}", report.problems);
    assert_eq!(mine[0].severity, Error);
    assert!(mine[0].message.contains("expired"));

    set_validity(&mut params, NOW - 100 * DAY, NOW + 3 * DAY);
    let soon = params
        .signed_by(&fed.b_client.key, &fed.b_ca.issuer())
        .unwrap();
    let report = with(vec![soon.der().clone()]);
    let mine: Vec<_> = report.problems.iter().filter(|p| p.path == b_pin).collect();
    assert_eq!(mine.len(), 1, "{:#?}", report.problems);
    assert_eq!(mine[0].severity, Warning);

    // Only certificates given: the other pins get a warning each, nothing more.
    let report = with(vec![fed.b_client.der.clone()]);
    assert_problems(
        &report,
        &[
            (Warning, "$.entities[0].servers[0].pins[0].digest"),
            (Warning, "$.entities[0].clients[0].pins[0].digest"),
        ],
    );

    // Garbage handed in as a certificate.
    let report = with(vec![CertificateDer::from(vec![0x30, 0x00])]);
    assert!(summary(&report).contains(&(Error, "$".to_owned())));
}

/// Lint walks issuer chains as the server's client verifier does: a client certificate
/// `MAX_CHAIN_LINKS` links below the listed issuer passes both, one a link further fails both
/// (lint used to follow eight links, so it approved chains servers refuse).
#[test]
fn lint_and_the_client_verifier_agree_at_the_chain_limit() {
    let mut cas = vec![Spec::ca("c0").make()];
    for i in 1..=MAX_CHAIN_LINKS {
        let cn = format!("c{i}");
        let next = Spec::ca(&cn).signed_by(&cas[i - 1]).make();
        cas.push(next);
    }
    let leaf = Spec::leaf("deep-client")
        .signed_by(&cas[MAX_CHAIN_LINKS])
        .make();
    // What the client presents and the member gives lint: the intermediates, nearest first.
    let presented: Vec<CertificateDer<'static>> =
        cas[1..].iter().rev().map(|c| c.der.clone()).collect();
    let key = SigningKey::generate(Algorithm::Es256, "k1").unwrap();
    let jwks = Jwks::from_keys(vec![key.public_jwk()]);
    let pin_path = "$.entities[0].clients[0].pins[0].digest";
    let handshake_time = UnixTime::since_unix_epoch(Duration::from_secs(NOW as u64));

    // Listing c1 makes the chain MAX_CHAIN_LINKS links long; listing c0, one more.
    for (listed, links) in [(1, MAX_CHAIN_LINKS), (0, MAX_CHAIN_LINKS + 1)] {
        let doc = json!({
            "version": "1.0.0",
            "cache_ttl": 3600,
            "entities": [{
                "entity_id": "https://deep.example/md",
                "issuers": [issuer_json(&cas[listed].pem)],
                "clients": [{
                    "pins": [{"alg": "sha256", "digest": leaf.pin()}],
                    "tags": ["egilv1"],
                }],
            }],
        });
        let too_long = links > MAX_CHAIN_LINKS;

        let mut options = opts(Profile::Matf);
        options.certificates = std::iter::once(leaf.der.clone())
            .chain(presented.iter().cloned())
            .collect();
        let report = lint(&serde_json::to_vec(&doc).unwrap(), &options);
        let lint_refuses = report.problems.iter().any(|p| {
            p.path == pin_path
                && p.severity == Error
                && p.message
                    .contains("not issued by any of the entity's issuers")
        });
        assert_eq!(
            lint_refuses, too_long,
            "{links} links: {:#?}",
            report.problems
        );

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let jws = sign_metadata(
            doc.as_object().unwrap(),
            &[&key],
            &SignOptions {
                iss: "https://fed.example".into(),
                lifetime_secs: 3600,
                now,
                ..SignOptions::default()
            },
        )
        .unwrap();
        let verified = verify_metadata(jws.as_bytes(), &jwks, &VerifyOptions::default()).unwrap();
        let cell = Arc::new(SnapshotCell::with(Snapshot::new(verified, "test", now)));
        let verifier = PinnedClientVerifier::new(cell).require_issuer_chain(true);
        match verifier.verify_client_cert(&leaf.der, &presented, handshake_time) {
            Ok(_) => assert!(!too_long, "{links} links accepted"),
            Err(e) => {
                assert!(too_long, "{links} links refused: {e}");
                assert!(
                    matches!(
                        PeerRejection::from_rustls(&e),
                        Some(PeerRejection::NotIssuedByEntity { .. })
                    ),
                    "{e}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entity generation

#[test]
fn entity_generation() {
    let leaf = Spec::leaf("solo").make();
    let ca = Spec::ca("gen-root").make();
    let child = Spec::leaf("gen-child").signed_by(&ca).make();
    let base = EntitySpec {
        entity_id: "https://gen.example/md".into(),
        organization: Some("Gen AB".into()),
        organization_id: Some("SE5566778899".into()),
        ..Default::default()
    };

    // Self-signed: listed as its own issuer.
    let spec = EntitySpec {
        servers: vec![endpoint(
            &leaf.pem,
            Some("https://gen.example/api/"),
            &["egilv1"],
        )],
        ..base.clone()
    };
    let value = build_entity(&spec).unwrap();
    assert_eq!(value["issuers"], json!([issuer_json(&leaf.pem)]));
    assert_eq!(
        value["servers"][0],
        json!({
            "base_uri": "https://gen.example/api/",
            "pins": [{ "alg": "sha256", "digest": leaf.pin() }],
            "tags": ["egilv1"]
        })
    );
    assert!(value.get("clients").is_none() && value.get("extensions").is_none());

    // Chain: the root is the issuer, the leaf is pinned.
    let spec = EntitySpec {
        clients: vec![endpoint(
            &format!("{}{}", child.pem, ca.pem),
            None,
            &["gnapv1"],
        )],
        ..base.clone()
    };
    let value = build_entity(&spec).unwrap();
    // A gnapv1 client's own certificate is listed too: the SUNET authorization server
    // (Skolverket's) accepts a client only when its certificate is one of the issuers.
    assert_eq!(
        value["issuers"],
        json!([issuer_json(&ca.pem), issuer_json(&child.pem)])
    );
    assert_eq!(
        value["clients"][0]["pins"][0]["digest"],
        child.pin().as_str()
    );
    for profile in [Profile::Moa, Profile::Matf] {
        let mut options = opts(profile);
        options.certificates = vec![child.der.clone()];
        let report = lint(&serde_json::to_vec(&value).unwrap(), &options);
        assert_problems(&report, &[]);
    }
    // Without the leaf, Moa warns that SUNET would refuse the client.
    let mut without = value.clone();
    without["issuers"].as_array_mut().unwrap().pop();
    assert_problems(
        &lint_value(&without, Profile::Moa),
        &[(Severity::Warning, "$.clients[0]")],
    );

    // A leaf alone that is not self-signed: refused, unless --issuer gave its root.
    let spec = EntitySpec {
        clients: vec![endpoint(&child.pem, None, &["gnapv1"])],
        ..base.clone()
    };
    let err = build_entity(&spec).unwrap_err();
    assert!(matches!(err, EntityError::MissingIssuer { .. }), "{err}");
    assert!(err.to_string().contains("client 1"), "{err}");
    let with_issuer = EntitySpec {
        extra_issuers_pem: vec![ca.pem.clone().into_bytes()],
        ..spec
    };
    let value = build_entity(&with_issuer).unwrap();
    assert_eq!(
        value["issuers"],
        json!([issuer_json(&child.pem), issuer_json(&ca.pem)])
    );

    // A server without base_uri.
    let spec = EntitySpec {
        servers: vec![endpoint(&leaf.pem, None, &["egilv1"])],
        ..base.clone()
    };
    assert_eq!(
        build_entity(&spec),
        Err(EntityError::MissingBaseUri {
            endpoint: "server 1".into()
        })
    );

    // Everything together passes the Moa lint with no problem at all.
    let spec = EntitySpec {
        servers: vec![
            endpoint(
                &leaf.pem,
                Some("https://solo.example/egil/"),
                &["egilv1", "userlistv1"],
            ),
            endpoint(&leaf.pem, Some("https://solo.example/bol/"), &["bolv1"]),
        ],
        clients: vec![endpoint(
            &format!("{}{}", child.pem, ca.pem),
            None,
            &["egilv1"],
        )],
        scopes: vec!["gen.example".into(), "skola.gen.example".into()],
        ..base
    };
    let value = build_entity(&spec).unwrap();
    let mut options = opts(Profile::Moa);
    options.certificates = vec![leaf.der.clone(), child.der.clone(), ca.der.clone()];
    assert_problems(&lint(&serde_json::to_vec(&value).unwrap(), &options), &[]);
    let document = json!({ "version": "1.0.0", "cache_ttl": 3600, "entities": [value] });
    assert_problems(&lint_value(&document, Profile::Moa), &[]);
}

// ---------------------------------------------------------------------------------------------
// The command line

fn fedtls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(args)
        .output()
        .expect("run fedtls")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

const NOW_ARG: &str = "--now=1798761600";

#[test]
fn cli_lint() {
    let metadata = format!("{FIXTURES}/metadata.json");
    let report = lint(&fixture("metadata.json"), &opts(Profile::Matf));

    let out = fedtls(&["lint", NOW_ARG, "--profile", "matf", &metadata]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("SHA-1: {}\n", report.sha1_hex)),
        "{text}"
    );
    assert!(
        text.contains(&format!("SHA-256: {}\n", report.sha256_hex)),
        "{text}"
    );
    assert!(text.contains("no problems"), "{text}");

    // Moa (the default): four members' organization_ids make it an aggregate, and an
    // aggregate's members differ by design: no problems, exit 0.
    let out = fedtls(&["lint", NOW_ARG, &metadata]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("no problems (moa profile, aggregate)"),
        "{text}"
    );

    // Certificates: the fixture's match; the unlisted one is an error (exit 1).
    let mut args = vec![
        "lint".to_owned(),
        NOW_ARG.to_owned(),
        "--profile=matf".to_owned(),
    ];
    for party in PARTIES {
        args.push("--cert".into());
        args.push(format!("{FIXTURES}/certs/{party}.pem"));
    }
    args.push(metadata.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = fedtls(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let unlisted = format!("{FIXTURES}/certs/interop-unlisted-client.pem");
    let out = fedtls(&["lint", NOW_ARG, "--cert", &unlisted, &metadata]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("error: $: given certificate 1"),
        "{}",
        stdout(&out)
    );

    // --json
    let out = fedtls(&["lint", NOW_ARG, "--json", "--cert", &unlisted, &metadata]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["errors"], 1);
    // Seven pins without a given certificate (no "organization differs" between members).
    assert_eq!(json["warnings"], 7);
    assert_eq!(json["sha1"], report.sha1_hex.as_str());
    assert_eq!(json["sha256"], report.sha256_hex.as_str());
    assert_eq!(json["problems"][0]["severity"], "error");
    assert_eq!(json["problems"][0]["path"], "$");
    assert!(json["problems"][0]["message"].is_string());

    // Usage errors: exit 2. Missing files: exit 1.
    assert_eq!(
        fedtls(&["lint", "--profile", "saml", &metadata])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(fedtls(&["lint"]).status.code(), Some(2));
    let out = fedtls(&["lint", "/nonexistent/metadata.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read /nonexistent"));

    let help = stdout(&fedtls(&["lint", "--help"]));
    assert!(help.contains("SHA-1") && help.contains("phone"), "{help}");
}

#[test]
fn cli_entity_output_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Spec::ca("cli-root").make();
    let client = Spec::leaf("cli-client").signed_by(&ca).make();
    let server = Spec::leaf("cli-server").make();
    let chain = write(
        dir.path(),
        "client-chain.pem",
        &format!("{}{}", client.pem, ca.pem),
    );
    let server_pem = write(dir.path(), "server.pem", &server.pem);
    let client_pem = write(dir.path(), "client.pem", &client.pem);
    let ca_pem = write(dir.path(), "ca.pem", &ca.pem);

    let server_spec = format!(
        "cert={},base_uri=https://cli-server.example/ss12000/,tags=egilv1+userlistv1,description=\"SS 12000, EGIL\"",
        server_pem.display()
    );
    let client_spec = format!("cert={},tags=egilv1", chain.display());
    let out = fedtls(&[
        "entity",
        "--entity-id",
        "https://cli.example/md",
        "--organization",
        "Cli kommun",
        "--organization-id",
        "SE2120009999",
        "--server",
        &server_spec,
        "--client",
        &client_spec,
        "--scope",
        "cli.example",
        "--document",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let document: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["version"], "1.0.0");
    assert_eq!(document["cache_ttl"], 3600);
    let entity = &document["entities"][0];
    assert_eq!(entity["servers"][0]["description"], "SS 12000, EGIL");
    assert_eq!(
        entity["servers"][0]["tags"],
        json!(["egilv1", "userlistv1"])
    );
    assert_eq!(
        entity["issuers"],
        json!([issuer_json(&server.pem), issuer_json(&ca.pem)])
    );
    let file = write(dir.path(), "metadata.json", &stdout(&out));

    let out = fedtls(&[
        "lint",
        NOW_ARG,
        "--cert",
        server_pem.to_str().unwrap(),
        "--cert",
        chain.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("no problems (moa profile)"),
        "{}",
        stdout(&out)
    );

    // Without --document: the bare entity, which lints clean too.
    let out = fedtls(&[
        "entity",
        "--entity-id=https://cli.example/md",
        "--organization=Cli kommun",
        "--organization-id=SE2120009999",
        &format!("--client=cert={},tags=egilv1", client_pem.display()),
        &format!("--issuer={}", ca_pem.display()),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entity: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entity["entity_id"], "https://cli.example/md");
    assert_eq!(lint_value(&entity, Profile::Moa).problems, []);

    // Refused inputs: exit 1 with one error line.
    let out = fedtls(&[
        "entity",
        "--entity-id=https://cli.example/md",
        &format!("--server=cert={},tags=egilv1", server_pem.display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: server 1: a server needs a base_uri"),
        "{stderr}"
    );

    let out = fedtls(&[
        "entity",
        "--entity-id=https://cli.example/md",
        &format!("--client=cert={}", client_pem.display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--issuer"));

    // Usage errors: exit 2.
    for args in [
        vec!["entity", "--entity-id=https://cli.example/md"],
        vec!["entity", "--entity-id=https://x", "--client=tags=egilv1"],
        vec![
            "entity",
            "--entity-id=https://x",
            "--client=cert=a.pem,tags=EGIL",
        ],
        vec![
            "entity",
            "--entity-id=https://x",
            "--client=cert=a.pem,colour=blue",
        ],
        vec!["entity", "--client=cert=a.pem"],
    ] {
        assert_eq!(fedtls(&args).status.code(), Some(2), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// No panics on any input

fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9+/=:. -]{0,48}".prop_map(Value::String),
        Just(json!(
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        )),
        Just(json!("tP8Ti7ULYVEeg7f+kvk+wW7X1IID5QHZGeunuVSl4NA=")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("entity_id".to_owned()),
                        Just("pins".to_owned()),
                        Just("digest".to_owned()),
                        Just("issuers".to_owned()),
                        Just("x509certificate".to_owned()),
                        Just("tags".to_owned()),
                        "[a-z_]{1,12}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

const POINTERS: [&str; 14] = [
    "",
    "/version",
    "/cache_ttl",
    "/entities",
    "/entities/1",
    "/entities/0/entity_id",
    "/entities/0/issuers",
    "/entities/1/issuers/0",
    "/entities/1/issuers/0/x509certificate",
    "/entities/1/servers",
    "/entities/1/servers/0/pins",
    "/entities/1/servers/0/pins/0",
    "/entities/3/extensions",
    "/entities/3/extensions/https:~1~1kontosynk.internetstiftelsen.se~1saml-scope/scope",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn lint_never_panics_on_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        let report = lint(&bytes, &opts(Profile::Moa));
        proptest::prop_assert_eq!(report.sha256_hex.len(), 64);
    }

    #[test]
    fn lint_never_panics_on_mutated_fixture(
        pointer in proptest::sample::select(&POINTERS[..]),
        value in json_value(),
        profile in proptest::prop_oneof![proptest::strategy::Just(Profile::Matf), proptest::strategy::Just(Profile::Moa)],
    ) {
        let doc: Value = serde_json::from_slice(&fixture("metadata.json")).unwrap();
        let doc = if pointer.is_empty() { value } else { set(&doc, pointer, value) };
        let mut options = opts(profile);
        options.certificates = fixture_certs("interop-supplier-client-chain.pem");
        let report = lint(&serde_json::to_vec(&doc).unwrap(), &options);
        for problem in &report.problems {
            proptest::prop_assert!(problem.path.starts_with('$'));
            proptest::prop_assert!(!problem.message.is_empty());
        }
    }

    #[test]
    fn inspect_never_panics_on_damaged_certificates(
        index in 0usize..2000,
        byte in proptest::prelude::any::<u8>(),
        cut in 0usize..2000,
    ) {
        let mut der = fixture_certs("interop-rsa-client.pem")[0].to_vec();
        let len = der.len();
        if let Some(b) = der.get_mut(index % len) {
            *b = byte;
        }
        let _ = inspect(&der);
        let ca = &fixture_certs("interop-supplier-client-ca.pem")[0];
        let _ = verify_signed_by(&der, ca);
        der.truncate(cut);
        let _ = inspect(&der);
    }
}

#[test]
fn moa_warns_about_gnap_clients_the_sunet_authorization_server_refuses() {
    let fed = fed();
    // b's client is issued by b's CA and b lists only the CA: SUNET (Skolverket's token
    // service) compares the client certificate itself with each issuer and refuses it.
    let gnap = set(&fed.doc, "/entities/1/clients/0/tags", json!(["gnapv1"]));
    let report = lint_value(&gnap, Profile::Moa);
    assert_problems(&report, &[(Severity::Warning, "$.entities[1].clients[0]")]);
    let message = message_at(&report, "$.entities[1].clients[0]");
    assert!(
        message.contains("https://b.example/md")
            && message.contains("SUNET")
            && message.contains("add the client certificate (PEM) to issuers"),
        "{message}"
    );
    // MATF has no such rule; a client without gnapv1 never asks for a token.
    assert_problems(&lint_value(&gnap, Profile::Matf), &[]);
    assert_problems(&lint_value(&fed.doc, Profile::Moa), &[]);
    // Listing the client certificate itself under issuers, beside the CA, satisfies SUNET.
    let mut listed = gnap.clone();
    listed["entities"][1]["issuers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"x509certificate": fed.b_client.pem}));
    assert_problems(&lint_value(&listed, Profile::Moa), &[]);
    // A self-signed gnapv1 client listed under its own issuers is fine.
    let a_gnap = set(&fed.doc, "/entities/0/clients/0/tags", json!(["gnapv1"]));
    assert_problems(&lint_value(&a_gnap, Profile::Moa), &[]);
}
