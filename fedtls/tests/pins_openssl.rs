//! Pins cross-checked against the `openssl` command-line recipe from the MATF draft, for
//! every key type members use (EC P-256, P-384, RSA, Ed25519) and for the interop fixtures.

use std::io::Write;
use std::process::{Command, Stdio};

use fedtls::pin::Pin;

/// The spec's recipe: x509 -pubkey | pkey -pubin -outform der | dgst -sha256 -binary | base64.
fn openssl_pin(pem: &str) -> String {
    let script = "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der \
                  | openssl dgst -sha256 -binary | openssl enc -base64";
    fedtls::testfed::require_program("openssl", "openssl");
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh and openssl are installed (see .ci/run)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pem.as_bytes())
        .expect("write pem");
    let out = child.wait_with_output().expect("openssl ran");
    assert!(out.status.success(), "openssl failed");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

#[test]
fn generated_certificates_of_every_key_type() {
    let algorithms: [&'static rcgen::SignatureAlgorithm; 4] = [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_RSA_SHA256,
        &rcgen::PKCS_ED25519,
    ];
    for alg in algorithms {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let ours = Pin::of_pem(cert.pem().as_bytes()).expect("pin");
        assert_eq!(ours.to_string(), openssl_pin(&cert.pem()), "{alg:?}");
        assert_eq!(Pin::of_certificate(cert.der()).expect("der pin"), ours);
    }
}

#[test]
fn interop_fixture_certificates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/interop/certs");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("certs dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
        let pem = std::fs::read_to_string(&path).expect("read");
        let ours = Pin::of_pem(pem.as_bytes()).expect("pin");
        assert_eq!(ours.to_string(), openssl_pin(&pem), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} certificates found");
}
