//! The `skolfed-sso` binary: output and exit codes of lint, links and saml verify.

use std::process::{Command, Output};

use skolfed_sso::testing::{AggregateBuilder, TestSigner, numbered_idps, write_file};

const EXAMPLE: &str = include_str!("data/skolfederation-sso-links-example.json");

fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_skolfed-sso"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn lint_human_and_json_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_file(dir.path(), "good.json", EXAMPLE.as_bytes());
    let (code, out, _) = run(&["lint", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 organizations, 2 usable services; 0 errors, 0 warnings"),
        "{out}"
    );

    let broken = EXAMPLE.replace("\"sso_type\": \"link_map\"", "\"sso_type\": \"magic\"");
    let broken = write_file(dir.path(), "broken.json", broken.as_bytes());
    let (code, out, _) = run(&["lint", broken.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: $[0].sso_links[1].sso_type: unknown sso_type \"magic\""),
        "{out}"
    );
    let (code, out, _) = run(&["lint", "--json", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["errors"], 1);
    assert_eq!(report["services"], 1);
    assert_eq!(report["problems"][0]["path"], "$[0].sso_links[1].sso_type");

    let (code, _, err) = run(&["lint", "/nonexistent/links.json"]);
    assert_eq!(code, 3);
    assert!(err.contains("/nonexistent/links.json"), "{err}");
    let (code, _, err) = run(&["lint", "http://fed.example/links.json"]);
    assert_eq!(code, 3);
    assert!(err.contains("use https"), "{err}");
    let (code, _, _) = run(&["lint"]);
    assert_eq!(code, 2);
}

#[test]
fn links_for_an_idp() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "links.json", EXAMPLE.as_bytes());
    let (code, out, _) = run(&[
        "links",
        "--idp",
        "https://idp.example3.com",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("  Math Rocket: https://example.com/math/Shibboleth.sso/Login?entityID=https%3A%2F%2Fidp.example3.com&Target"), "{out}");
    assert!(out.contains("  Example Digital Brazilian Jiu-Jitsu Service: https://example.com/bjj/login?idp=example3-idp"), "{out}");
    let (code, out, _) = run(&[
        "links",
        "--json",
        "--idp",
        "https://other.example/idp",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "the entity_id service still links");
    let links: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        links["organizations"][0]["services"][1]["login_url"],
        serde_json::Value::Null
    );
}

#[test]
fn saml_verify_lists_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let signer = TestSigner::generate("md signer");
    let mut builder = AggregateBuilder::new(numbered_idps(3));
    builder.sps = vec!["https://sp.example.com/math".into()];
    let signed = signer.sign_with_xmlsec1(&builder.build()).unwrap();
    let aggregate = write_file(dir.path(), "md.xml", &signed);
    let cert = write_file(dir.path(), "cert.pem", signer.cert_pem.as_bytes());
    let args = [
        "saml",
        "verify",
        "--cert",
        cert.to_str().unwrap(),
        aggregate.to_str().unwrap(),
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("verified: 3 IdPs, 1 SPs"), "{out}");
    assert!(out.contains("idp  https://idp.skola0001.example.se/idp  Skola 0001 kommun / School 0001 municipality  scopes: skola0001.example.se"), "{out}");
    let (code, out, _) = run(&[
        "saml",
        "verify",
        "--json",
        "--cert",
        cert.to_str().unwrap(),
        aggregate.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json["idps"][2]["display_name"]["en"],
        "School 0002 municipality"
    );

    let tampered = String::from_utf8(signed)
        .unwrap()
        .replace("Skola 0001", "Skola 9999");
    let tampered = write_file(dir.path(), "tampered.xml", tampered.as_bytes());
    let (code, _, err) = run(&[
        "saml",
        "verify",
        "--cert",
        cert.to_str().unwrap(),
        tampered.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("digest does not match"), "{err}");
    let (code, _, _) = run(&[
        "saml",
        "verify",
        "--cert",
        "/nonexistent.pem",
        aggregate.to_str().unwrap(),
    ]);
    assert_eq!(code, 3);
}
