//! The `fedtls` binary as scripts use it: exit codes, stdout/stderr shape, JSON fields.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/interop"))
}

fn fixture(relative: &str) -> String {
    fixtures().join(relative).to_string_lossy().into_owned()
}

fn fedtls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(args)
        .output()
        .expect("run fedtls")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn verify_accepts_and_reports_json() {
    let jwks = fixture("jwks.json");
    let out = fedtls(&[
        "verify",
        "--jwks",
        &jwks,
        "--json",
        &fixture("signed/some-bad-entities.jws"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["iss"], "https://interop.fed.example");
    assert_eq!(v["kid"], "interop-es256");
    assert_eq!(v["exp"], 4_102_444_800i64);
    assert!(v["iat"].is_i64());
    assert_eq!(v["entities"], 4);
    let rejected = v["rejected"].as_array().expect("rejected array");
    assert_eq!(rejected.len(), 3);
    assert_eq!(rejected[0]["index"], 4);
    assert_eq!(rejected[0]["entity_id"], "https://broken.interop.example");
    assert!(
        rejected[0]["reason"].as_str().unwrap().contains("pins"),
        "{}",
        rejected[0]
    );
    assert!(rejected[1]["entity_id"].is_null());
}

#[test]
fn verify_refusal_is_one_error_line_and_exit_1() {
    let jwks = fixture("jwks.json");
    for case in [
        "signed/expired.jws",
        "signed/alg-none.jws",
        "signed/empty.jws",
        "signed/tampered-payload.jws",
    ] {
        let out = fedtls(&["verify", "--jwks", &jwks, &fixture(case)]);
        assert_eq!(out.status.code(), Some(1), "{case}");
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{case}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{case}: {err}");
        assert!(stdout(&out).is_empty(), "{case}");
    }
    let out = fedtls(&["verify", "--jwks", &jwks, "/nonexistent/metadata.jws"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/metadata.jws"));
    let out = fedtls(&[
        "verify",
        "--jwks",
        &fixture("metadata.json"),
        &fixture("signed/general-es256.jws"),
    ]);
    assert_eq!(out.status.code(), Some(1), "a payload is not a JWKS");
    assert!(
        stderr(&out).starts_with("error: trust anchor"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(fedtls(&["verify"]).status.code(), Some(2));
    assert_eq!(fedtls(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(fedtls(&["pin"]).status.code(), Some(2));
    let out = fedtls(&["lookup", "--jwks", "x", "y"]);
    assert_eq!(out.status.code(), Some(2), "a query is required");
    let help = fedtls(&["verify", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit 0 when the document is accepted"));
}

#[test]
fn verify_writes_the_payload_and_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload.json");
    let out = fedtls(&[
        "verify",
        "--jwks",
        &fixture("jwks.json"),
        "--output",
        payload.to_str().unwrap(),
        &fixture("signed/compact-es256.jws"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written: Value = serde_json::from_slice(&std::fs::read(&payload).unwrap()).unwrap();
    let original: Value =
        serde_json::from_slice(&std::fs::read(fixture("metadata.json")).unwrap()).unwrap();
    assert_eq!(written["entities"], original["entities"]);
    assert!(stdout(&out).starts_with("OK: metadata from https://interop.fed.example"));

    let out = Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(["verify", "--jwks", &fixture("jwks.json"), "-"])
        .stdin(std::fs::File::open(fixture("signed/general-eddsa.jws")).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn verify_enforces_iss() {
    let jwks = fixture("jwks.json");
    let doc = fixture("signed/general-es256.jws");
    assert_eq!(
        fedtls(&[
            "verify",
            "--jwks",
            &jwks,
            "--iss",
            "https://interop.fed.example",
            &doc
        ])
        .status
        .code(),
        Some(0)
    );
    let out = fedtls(&[
        "verify",
        "--jwks",
        &jwks,
        "--iss",
        "https://evil.example",
        &doc,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("https://evil.example"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pin_prints_one_line_per_file() {
    let out = fedtls(&[
        "pin",
        &fixture("certs/interop-sis-client.pem"),
        &fixture("certs/interop-supplier-client-chain.pem"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "lz6QwPv/28pGG18Xjcf1V3T2EMk30dzgwTUJUg957Fs=\n1/zpoKTlTkNg9hJWJHn8CgRnhQklQuIABPtir202/aQ=\n"
    );
    let out = fedtls(&["pin", "--curl", &fixture("certs/interop-sis-server.pem")]);
    assert_eq!(
        stdout(&out),
        "sha256//tP8Ti7ULYVEeg7f+kvk+wW7X1IID5QHZGeunuVSl4NA=\n"
    );
    let out = fedtls(&["pin", &fixture("metadata.json")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: "));
}

#[test]
fn lookup_finds_and_misses() {
    let jwks = fixture("jwks.json");
    let doc = fixture("signed/general-es256.jws");
    let out = fedtls(&[
        "lookup",
        "--jwks",
        &jwks,
        &doc,
        "--client-pin",
        "lz6QwPv/28pGG18Xjcf1V3T2EMk30dzgwTUJUg957Fs=",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["entity_id"], "https://sis.interop-kommun.example");
    assert_eq!(v[0]["role"], "client");

    let out = fedtls(&[
        "lookup",
        "--jwks",
        &jwks,
        &doc,
        "--client-pin",
        "sha256//tP8Ti7ULYVEeg7f+kvk+wW7X1IID5QHZGeunuVSl4NA=",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a server pin is not a client pin"
    );

    let out = fedtls(&[
        "lookup", "--jwks", &jwks, &doc, "--tag", "egilv1", "--role", "server", "--json",
    ]);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = fedtls(&[
        "lookup",
        "--jwks",
        &jwks,
        &doc,
        "--organization-id",
        "SE2021004185",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("https://auth.interop-myndighet.example"));
    let out = fedtls(&[
        "lookup",
        "--jwks",
        &jwks,
        &doc,
        "--entity",
        "https://nobody.example",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = fedtls(&["lookup", "--jwks", &jwks, &doc, "--client-pin", "not-a-pin"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed pin is a usage error"
    );
}

#[test]
fn thumbprint_matches_expected() {
    let out = fedtls(&["thumbprint", &fixture("jwks.json")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("interop-es256\tzj-bC5YgaCJ5PVqMDUznWh4qJ1JLGg0LwC9LdvaEhGg\n"),
        "{text}"
    );
    assert!(
        text.contains("interop-rsa\t6h3R3GOEJeABiPeoYA3e5whTE1UyfQm_bK6s3kUk15c\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5);
}

fn init_federation(dir: &Path) -> Value {
    let out = fedtls(&["federation", "init", "--json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("manifest JSON")
}

#[test]
fn federation_init_keygen_sign_verify_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let fed = tmp.path().join("fed");
    let manifest = init_federation(&fed);
    assert_eq!(manifest["parties"].as_array().unwrap().len(), 7);
    let jwks = fed.join("jwks.json");
    let jws = fed.join("metadata.jws");
    let out = fedtls(&[
        "verify",
        "--jwks",
        jwks.to_str().unwrap(),
        "--json",
        jws.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entities"], 3);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 0);

    // A second init into the same directory refuses rather than overwriting keys.
    let again = fedtls(&["federation", "init", fed.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));

    // The unlisted client is unknown; the listed ones are found by their certificate's pin.
    for (party, found) in [
        ("school-client", true),
        ("supplier-client", true),
        ("unlisted-client", false),
    ] {
        let pin = stdout(&fedtls(&[
            "pin",
            fed.join(format!("certs/{party}.pem")).to_str().unwrap(),
        ]));
        let out = fedtls(&[
            "lookup",
            "--jwks",
            jwks.to_str().unwrap(),
            jws.to_str().unwrap(),
            "--client-pin",
            pin.trim(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(if found { 0 } else { 1 }),
            "{party}"
        );
    }

    // Re-sign the payload with a new operator key (flattened) and verify with its JWKS only.
    let key = tmp.path().join("op.jwk");
    let new_jwks = tmp.path().join("op-jwks.json");
    let out = fedtls(&[
        "keygen",
        "--kid",
        "op-2",
        "--alg",
        "ES384",
        "--out-private",
        key.to_str().unwrap(),
        "--out-jwks",
        new_jwks.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = fedtls(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--iss",
        "https://op.example",
        "--format",
        "flattened",
        fed.join("metadata.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let resigned = tmp.path().join("resigned.jws");
    std::fs::write(&resigned, &out.stdout).unwrap();
    let ok = fedtls(&[
        "verify",
        "--jwks",
        new_jwks.to_str().unwrap(),
        "--iss",
        "https://op.example",
        resigned.to_str().unwrap(),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let wrong = fedtls(&[
        "verify",
        "--jwks",
        jwks.to_str().unwrap(),
        resigned.to_str().unwrap(),
    ]);
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "the old trust anchor must not accept the new key"
    );
}

#[cfg(unix)]
#[test]
fn private_keys_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let fed = tmp.path().join("fed");
    init_federation(&fed);
    for file in [
        "federation-signing-key.jwk",
        "certs/school-client.key",
        "certs/supplier-ca.key",
    ] {
        let mode = std::fs::metadata(fed.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} has mode {mode:o}");
    }
}

/// A one-shot HTTP/1.1 server on loopback answering every request with `status` and `body`.
fn serve(status: &'static str, body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/md/metadata.jws", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/jose+json\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, handle)
}

#[test]
fn verify_fetches_a_url() {
    let jwks = fixture("jwks.json");
    let body = std::fs::read(fixture("signed/general-es256.jws")).unwrap();
    let (url, server) = serve("200 OK", body);
    let out = fedtls(&["verify", "--jwks", &jwks, "--json", &url]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entities"], 4);

    let (url, server) = serve("404 Not Found", b"no such file".to_vec());
    let out = fedtls(&["verify", "--jwks", &jwks, &url]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("HTTP 404"), "{}", stderr(&out));

    let (url, server) = serve("200 OK", b"<html>maintenance</html>".to_vec());
    let out = fedtls(&["verify", "--jwks", &jwks, &url]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "an error page is not metadata");
    assert!(
        stderr(&out).starts_with("error: metadata from http://127.0.0.1")
            && stderr(&out).contains("refused"),
        "{}",
        stderr(&out)
    );

    // Nothing listens here: a clear error, not a hang or a panic.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/md.jws", closed.local_addr().unwrap());
    drop(closed);
    let out = fedtls(&["verify", "--jwks", &jwks, &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: cannot fetch https://127.0.0.1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_closed_stdout_ends_quietly_instead_of_panicking() {
    // `fedtls verify … | head -0`: the reader is gone before anything is printed.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(["verify", "--jwks", &fixture("jwks.json"), "--json"])
        .arg(fixture("signed/some-bad-entities.jws"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
