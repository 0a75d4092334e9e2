//! The development federation committed at the repository's `certs/`: it must verify, agree
//! with its manifest and README, and not silently expire. And `fedtls federation init
//! --keep-keys`, which regenerates it, must really keep the keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fedtls::index::Role;
use fedtls::pin::pem_certificates;
use fedtls::testfed::{Party, TestFederation};
use fedtls::{Jwks, Pin, SigningKey, VerifyOptions, verify_metadata};
use rcgen::PublicKeyData;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The one command that regenerates `certs/`, from the repository root. `certs/README.md`
/// must show exactly this.
const REGENERATE: &str =
    "cargo run -p fedtls -- federation init certs --force --keep-keys --lifetime 315360000";

const YEAR: i64 = 365 * 86_400;

/// 2049-01-01T00:00:00Z: the committed certificates are valid until the end of 2049.
const CERTS_VALID_UNTIL_AT_LEAST: i64 = 2_493_072_000;

fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn now() -> i64 {
    fedtls::verify::unix_now()
}

fn dev_federation() -> TestFederation {
    TestFederation::open(&certs_dir()).unwrap_or_else(|e| {
        panic!("certs/federation.json: {e}; regenerate certs/ with `{REGENERATE}`")
    })
}

#[test]
fn readme_shows_the_regeneration_command() {
    let readme = String::from_utf8(read(&certs_dir().join("README.md"))).unwrap();
    assert!(
        readme.contains(&format!("\n{REGENERATE}\n")),
        "certs/README.md must show the regeneration command on a line of its own: {REGENERATE}"
    );
}

#[test]
fn metadata_verifies_and_stays_valid_for_a_year() {
    let fed = dev_federation();
    let jwks = Jwks::from_json(&read(&fed.jwks)).unwrap();
    let verified = verify_metadata(&read(&fed.metadata_jws), &jwks, &VerifyOptions::default())
        .unwrap_or_else(|e| {
            panic!(
                "certs/metadata.jws does not verify with certs/jwks.json ({e}); \
                 regenerate certs/ from the repository root with `{REGENERATE}` and commit it"
            )
        });
    let left = verified.claims().exp() - now();
    assert!(
        left >= YEAR,
        "certs/metadata.jws expires in {} days (exp {}); regenerate certs/ from the repository \
         root with `{REGENERATE}` and commit it",
        left / 86_400,
        fedtls::claims::Rfc3339(verified.claims().exp())
    );
    assert_eq!(verified.claims().iss(), Some(fed.iss.as_str()));
    assert_eq!(verified.index().entities().len(), 3);
    assert!(verified.index().rejected().is_empty());

    // The signing key is the private half of the trust anchor.
    let key = SigningKey::from_jwk_json(&read(&fed.signing_key)).unwrap();
    assert_eq!(jwks.keys().len(), 1);
    assert_eq!(key.public_jwk().thumbprint(), jwks.keys()[0].thumbprint());
    assert_eq!(
        verified.signature().key_thumbprint,
        jwks.keys()[0].thumbprint()
    );

    // metadata.json is the payload that was signed.
    let signed = serde_json::to_value(verified.index().metadata()).unwrap();
    let plain: serde_json::Value = serde_json::from_slice(&read(&fed.metadata_json)).unwrap();
    assert_eq!(signed["entities"], plain["entities"]);
}

#[test]
fn every_pin_matches_the_manifest_the_metadata_and_the_readme() {
    let fed = dev_federation();
    let jwks = Jwks::from_json(&read(&fed.jwks)).unwrap();
    let verified =
        verify_metadata(&read(&fed.metadata_jws), &jwks, &VerifyOptions::default()).unwrap();
    let index = verified.index();
    let readme = readme_table();
    assert_eq!(fed.parties.len(), 7);
    assert_eq!(
        readme.len(),
        fed.parties.len(),
        "certs/README.md lists other parties than certs/federation.json"
    );
    for party in &fed.parties {
        let name = &party.name;
        let pem = read(&party.cert);
        let pin = Pin::of_pem(&pem).unwrap();
        assert_eq!(pin, party.pin, "{name}: certificate vs federation.json");
        if let Some(chain) = &party.chain {
            assert_eq!(
                Pin::of_pem(&read(chain)).unwrap(),
                pin,
                "{name}: chain leaf"
            );
        }

        let der = pem_certificates(&pem).unwrap().remove(0);
        match (party.role.as_str(), party.entity_id.as_deref()) {
            ("ca", Some(entity_id)) => {
                let entity = index.entity(entity_id).unwrap();
                assert!(
                    entity.issuers.iter().any(|i| i.certificate == der),
                    "{name}: not an issuer of {entity_id} in the metadata"
                );
            }
            (role, Some(entity_id)) => {
                let role = if role == "server" {
                    Role::Server
                } else {
                    Role::Client
                };
                let found = index
                    .by_pin(&pin, role)
                    .unwrap_or_else(|| panic!("{name}: pin {pin} not in the metadata"));
                assert_eq!(found.entity.entity_id, entity_id, "{name}");
                let tags: Vec<&str> = found.endpoint.tags.iter().map(|t| t.as_str()).collect();
                assert_eq!(tags, party.tags, "{name}: tags");
                assert_eq!(found.endpoint.base_uri, party.base_uri, "{name}: base URI");
            }
            (_, None) => {
                assert!(
                    index.client_by_pin(&pin).is_none(),
                    "{name} must be unlisted"
                );
                assert!(
                    index.server_by_pin(&pin).is_none(),
                    "{name} must be unlisted"
                );
            }
        }
        // Self-signed members are their own issuers; the listed certificate must be the file.
        if party.chain.is_none()
            && let Some(entity_id) = &party.entity_id
        {
            let entity = index.entity(entity_id).unwrap();
            assert!(
                entity.issuers.iter().any(|i| i.certificate == der),
                "{name}: the metadata lists another certificate; regenerate with `{REGENERATE}`"
            );
        }

        let row = readme
            .get(name.as_str())
            .unwrap_or_else(|| panic!("certs/README.md has no row for {name}"));
        let expected = [
            name.clone(),
            format!(
                "certs/{}",
                party.cert.strip_prefix(&fed.dir).unwrap().to_str().unwrap()
            ),
            party.role.clone(),
            party
                .entity_id
                .clone()
                .unwrap_or_else(|| "(not in the metadata)".to_owned()),
            if party.tags.is_empty() {
                "–".to_owned()
            } else {
                party.tags.join(", ")
            },
            party.pin.to_string(),
        ];
        assert_eq!(row, &expected, "certs/README.md row for {name}");
    }
}

/// The rows of the README's certificate table, by name, backticks removed.
fn readme_table() -> BTreeMap<String, Vec<String>> {
    let readme = String::from_utf8(read(&certs_dir().join("README.md"))).unwrap();
    let section = readme
        .split("## Certificates and pins")
        .nth(1)
        .expect("certs/README.md has a `## Certificates and pins` section");
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2) // header and separator
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().trim_matches('`').to_owned())
                .collect();
            (cells[0].clone(), cells)
        })
        .collect()
}

#[test]
fn certificates_keys_and_chains_hold_for_decades() {
    let fed = dev_federation();
    let now = now();
    for party in &fed.parties {
        let name = &party.name;
        let der = pem_certificates(&read(&party.cert)).unwrap().remove(0);
        let info = fedtls::x509::inspect(&der).unwrap();
        assert!(info.not_before <= now, "{name}: not valid yet");
        assert!(
            info.not_after >= CERTS_VALID_UNTIL_AT_LEAST && info.not_after - now >= YEAR,
            "{name}: valid only until {}; regenerate certs/ from the repository root with \
             `{REGENERATE}` and commit it",
            fedtls::claims::Rfc3339(info.not_after)
        );

        // The key file holds the certificate's private key, labelled as public test material.
        let key_pem = read(&party.key);
        assert!(
            key_pem.starts_with(b"Private key of a fedtls test federation"),
            "{name}: key file without its test-material note"
        );
        let key = rcgen::KeyPair::try_from(&PrivateKeyDer::from_pem_slice(&key_pem).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            Pin::of_spki(&key.subject_public_key_info()),
            party.pin,
            "{name}: key and certificate"
        );

        if let Some(chain) = &party.chain {
            let chain = pem_certificates(&read(chain)).unwrap();
            assert_eq!(chain.len(), 2, "{name}: leaf and CA");
            assert_eq!(chain[0], der, "{name}: chain starts with the leaf");
            fedtls::x509::verify_signed_by(&chain[0], &chain[1])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let ca = fed.party("supplier-ca").unwrap();
            assert_eq!(chain[1], pem_certificates(&read(&ca.cert)).unwrap()[0]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// --keep-keys

fn fedtls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(args)
        .output()
        .expect("run fedtls")
}

fn init(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["federation", "init", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    fedtls(&args)
}

fn init_ok(dir: &Path, extra: &[&str]) -> String {
    let out = init(dir, extra);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pins(dir: &Path) -> BTreeMap<String, Pin> {
    TestFederation::open(dir)
        .unwrap()
        .parties
        .into_iter()
        .map(|Party { name, pin, .. }| (name, pin))
        .collect()
}

/// Serial number and validity of every certificate: what a regeneration must reproduce.
fn cert_identity(dir: &Path) -> Vec<(String, String, i64, i64)> {
    TestFederation::open(dir)
        .unwrap()
        .parties
        .iter()
        .map(|p| {
            let der = pem_certificates(&read(&p.cert)).unwrap().remove(0);
            let info = fedtls::x509::inspect(&der).unwrap();
            let parsed = x509_parser::parse_x509_certificate(&der).unwrap().1;
            (
                p.name.clone(),
                parsed.tbs_certificate.raw_serial_as_string(),
                info.not_before,
                info.not_after,
            )
        })
        .collect()
}

#[test]
fn keep_keys_keeps_pins_and_jwks_and_without_it_everything_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fed");
    let first = init_ok(&dir, &[]);
    assert!(first.contains("0 reused, 8 created"), "{first}");
    let pins_before = pins(&dir);
    let jwks_before = read(&dir.join("jwks.json"));
    let certs_before = cert_identity(&dir);
    let cert_pem_before = read(&dir.join("certs/school-server.pem"));
    let key_before = read(&dir.join("certs/school-server.key"));

    // Without --force, keeping keys still refuses to overwrite the rest, and says how.
    let refused = init(&dir, &["--keep-keys"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));

    let again = init_ok(&dir, &["--force", "--keep-keys", "--lifetime", "315360000"]);
    assert!(again.contains("8 reused, 0 created"), "{again}");
    assert_eq!(pins(&dir), pins_before);
    assert_eq!(read(&dir.join("jwks.json")), jwks_before);
    assert_eq!(cert_identity(&dir), certs_before, "serials and validity");
    assert_eq!(read(&dir.join("certs/school-server.key")), key_before);
    assert_ne!(
        read(&dir.join("certs/school-server.pem")),
        cert_pem_before,
        "the certificate is re-issued (a new ECDSA signature)"
    );
    let jwks = Jwks::from_json(&read(&dir.join("jwks.json"))).unwrap();
    let verified = verify_metadata(
        &read(&dir.join("metadata.jws")),
        &jwks,
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(verified.claims().exp() - now() > 9 * YEAR);

    // A missing key is created; the others are still kept.
    std::fs::remove_file(dir.join("certs/authserver.key")).unwrap();
    let partly = init_ok(&dir, &["--force", "--keep-keys"]);
    assert!(partly.contains("7 reused, 1 created"), "{partly}");
    let after = pins(&dir);
    for (name, pin) in &pins_before {
        assert_eq!(after[name] == *pin, name != "authserver", "{name}");
    }
    let pins_kept = after;

    // Without --keep-keys, every key is new: no pin and no JWKS survive.
    let fresh = init_ok(&dir, &["--force"]);
    assert!(fresh.contains("0 reused, 8 created"), "{fresh}");
    let pins_fresh = pins(&dir);
    for (name, pin) in &pins_kept {
        assert_ne!(pins_fresh[name], *pin, "{name}");
    }
    assert_ne!(read(&dir.join("jwks.json")), jwks_before);
}

#[test]
fn an_unreadable_kept_key_stops_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fed");
    init_ok(&dir, &[]);
    let jws = read(&dir.join("metadata.jws"));
    std::fs::write(dir.join("certs/school-client.key"), "not a key\n").unwrap();
    let out = init(&dir, &["--force", "--keep-keys"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("school-client.key"), "{stderr}");
    assert_eq!(read(&dir.join("metadata.jws")), jws);
    assert_eq!(
        std::fs::read_to_string(dir.join("certs/school-client.key")).unwrap(),
        "not a key\n"
    );
}

#[test]
fn validity_window_is_fixed_and_can_be_chosen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fed");
    init_ok(
        &dir,
        &["--not-before", "2025-06-01", "--not-after", "2030-05-31"],
    );
    for (name, _, not_before, not_after) in cert_identity(&dir) {
        assert_eq!(not_before, 1_748_736_000, "{name}: 2025-06-01T00:00:00Z");
        assert_eq!(not_after, 1_906_502_399, "{name}: 2030-05-31T23:59:59Z");
    }
    let backwards = init(
        &tmp.path().join("other"),
        &["--not-before", "2030-01-01", "--not-after", "2029-12-31"],
    );
    assert_eq!(backwards.status.code(), Some(2));
}
