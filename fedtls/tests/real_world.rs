//! Every real-world fixture (`fixtures/real-world/`, made outside this project) gives the
//! outcome its README states, through the `fedtls` command line.

use std::process::{Command, Output};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/real-world");

fn fedtls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(args)
        .current_dir(DIR)
        .output()
        .unwrap()
}

fn verify(file: &str, json: bool) -> Output {
    let mut args = vec!["verify", "--jwks", "dotse-examples-public.jwks.json"];
    if json {
        args.push("--json");
    }
    args.push(file);
    fedtls(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn warnings(file: &str) -> Vec<String> {
    let out = verify(file, true);
    assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn accepted_documents_verify_and_warn_only_about_what_they_lack() {
    // RFC 9932 style: iat/exp/iss in the payload, cache_ttl present: no warning.
    for file in [
        "cryptojwt-rfc9932-payload-claims-compact.jws",
        "cryptojwt-rfc9932-payload-claims-flattened.jws",
    ] {
        assert_eq!(warnings(file), Vec::<String>::new(), "{file}");
        let out = verify(file, false);
        assert!(text(&out.stdout).starts_with("OK: "), "{file}");
        assert_eq!(text(&out.stderr), "", "{file}");
    }
    // The draft's own sign.py: no iss anywhere.
    let found = warnings("cryptojwt-draft-tool-style-crit-exp.jws");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("no issuer (iss"), "{found:?}");
    // No cache_ttl: accepted, with a warning (on stderr in text mode).
    let found = warnings("cryptojwt-no-cache_ttl.jws");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("no cache_ttl"), "{found:?}");
    let out = verify("cryptojwt-no-cache_ttl.jws", false);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).starts_with("warning: the document has no cache_ttl"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("cache_ttl"));
}

#[test]
fn refused_documents_are_refused() {
    for file in [
        "cryptojwt-payload-exp-past-header-exp-future.jws",
        "cryptojwt-no-exp-anywhere.jws",
        "cryptojwt-header-exp-as-string.jws",
        "cryptojwt-crit-unknown.jws",
        "cryptojwt-iat-in-far-future.jws",
    ] {
        let out = verify(file, false);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(text(&out.stderr).starts_with("error: "), "{file}");
    }
}

#[test]
fn moa_trust_anchor_thumbprints() {
    for (file, thumbprint) in [
        (
            "moa-prod.jwks.json",
            "6b8_Zz8HBDWmhtggM8FiYeGLxug3OO8h1t8lUxn0abc",
        ),
        (
            "moa-trial.jwks.json",
            "QEj_3nAwYAiR3N0zQX6p6qNxlNFVvAVryV0-5zDu9oc",
        ),
    ] {
        let out = fedtls(&["thumbprint", file]);
        assert_eq!(out.status.code(), Some(0), "{file}");
        assert!(
            text(&out.stdout)
                .trim_end()
                .ends_with(&format!("\t{thumbprint}")),
            "{file}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn the_spec_example_lints_with_its_expired_issuer_and_unmatched_pins() {
    let out = fedtls(&["lint", "--profile", "matf", "dotse-example.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("error: $.entities[0].issuers[0].x509certificate: the issuer certificate (CN=scim.example.com) expired"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: $.entities[0].issuers[0].x509certificate: this self-signed certificate (CN=scim.example.com)")
            && stdout.contains("no pin in the file is its pin"),
        "{stdout}"
    );
    assert!(!stdout.contains("official MATF schema"), "{stdout}");
}
