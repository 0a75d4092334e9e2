//! Integration tests of the JOSE layer: known answers from an independent implementation
//! (the interop fixtures, signed by cryptojwt), sign/verify round trips, attacks, claims,
//! property tests and the key CLI.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fedtls::claims::{Claims, ClaimsError, ClaimsPolicy, ValidClaims};
use fedtls::jwk::{Algorithm, Jwks, SigningKey};
use fedtls::jws::{Jws, JwsError, JwsFormat, SignOptions, sign_metadata, sign_raw};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// base64url without padding (JOSE), from the `base64` crate.
fn b64url_encode(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text)
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/interop");

/// The fixtures' generation time (`iat`) plus an hour: valid documents expire in 2100.
const FIXTURE_NOW: i64 = 1_795_294_269 + 3600;

const FORMATS: [JwsFormat; 3] = [JwsFormat::General, JwsFormat::Flattened, JwsFormat::Compact];

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn fixture_jwks() -> Jwks {
    Jwks::from_json(&fixture("jwks.json")).expect("jwks.json")
}

fn expected() -> Value {
    serde_json::from_slice(&fixture("expected.json")).expect("expected.json")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The claims layer as a caller does it: the payload's top-level claims (read with plain
/// serde_json) over the verified header's, checked by the default policy.
fn check_claims(
    jws: &Jws<'_>,
    header_claims: &Claims,
    now: i64,
) -> Result<ValidClaims, ClaimsError> {
    let payload = jws.decode_payload().expect("payload is base64url");
    let payload_claims = match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Object(map)) => Claims::from_json_object(&map)?,
        _ => Claims::default(),
    };
    ClaimsPolicy::default().check(&Claims::overlay(&payload_claims, header_claims), now)
}

// ---------------------------------------------------------------------------------------
// Interop fixtures
// ---------------------------------------------------------------------------------------

#[test]
fn fixture_thumbprints_match_rfc7638_known_answers() {
    let jwks = fixture_jwks();
    assert!(jwks.skipped().is_empty(), "{:?}", jwks.skipped());
    let expected = expected();
    let thumbprints = expected["jwk_thumbprints_sha256"].as_object().unwrap();
    assert_eq!(thumbprints.len(), 5);
    assert_eq!(jwks.keys().len(), thumbprints.len());
    for (kid, thumbprint) in thumbprints {
        let key = jwks
            .keys()
            .iter()
            .find(|k| k.kid() == Some(kid.as_str()))
            .unwrap_or_else(|| panic!("no key {kid}"));
        assert_eq!(key.thumbprint(), thumbprint.as_str().unwrap(), "{kid}");
    }
    let rsa = jwks
        .keys()
        .iter()
        .find(|k| k.kid() == Some("interop-rsa"))
        .unwrap();
    assert_eq!(rsa.algorithm(), None, "the fixture's RSA key has no alg");
    assert!(rsa.fits(Algorithm::Rs256) && rsa.fits(Algorithm::Ps256));
    assert!(!rsa.fits(Algorithm::Es256));
}

/// Where a reject case must fail.
#[derive(Debug)]
enum Layer {
    /// `Jws::parse` refuses it.
    Parse(fn(&JwsError) -> bool),
    /// Parses, but `verify_signatures` refuses it.
    Signature(fn(&JwsError) -> bool),
    /// Signature fine, the claims policy refuses it.
    Claims(fn(&ClaimsError) -> bool),
    /// Signature and claims fine: the payload content is for the metadata layer.
    PayloadContent,
}

fn reject_layer(file: &str) -> Layer {
    match file {
        "signed/alg-none.jws" => Layer::Parse(
            |e| matches!(e, JwsError::UnsupportedAlgorithm { index: 0, alg } if alg == "none"),
        ),
        "signed/alg-confusion-hs256.jws" => Layer::Parse(
            |e| matches!(e, JwsError::UnsupportedAlgorithm { index: 0, alg } if alg == "HS256"),
        ),
        "signed/crit-unknown.jws" => Layer::Parse(
            |e| matches!(e, JwsError::Crit { index: 0, reason } if reason.contains("x-unknown")),
        ),
        "signed/not-json.jws" => Layer::Parse(|e| matches!(e, JwsError::Compact(_))),
        "signed/empty.jws" => Layer::Parse(|e| matches!(e, JwsError::Empty)),
        "signed/rogue-key-same-kid.jws" | "signed/tampered-payload.jws" => {
            Layer::Signature(|e| matches!(e, JwsError::BadSignature { index: 0 }))
        }
        "signed/expired.jws" => Layer::Claims(|e| {
            matches!(
                e,
                ClaimsError::Expired {
                    exp: 1_795_290_669,
                    now: FIXTURE_NOW
                }
            )
        }),
        "signed/payload-expired.jws" | "signed/payload-exp-wins.jws" => Layer::Claims(|e| {
            matches!(
                e,
                ClaimsError::Expired {
                    exp: 1_795_290_669,
                    ..
                }
            )
        }),
        "signed/not-yet-valid.jws" => {
            Layer::Claims(|e| matches!(e, ClaimsError::NotYetValid { nbf: 4_102_444_790 }))
        }
        "signed/no-exp.jws" => Layer::Claims(|e| matches!(e, ClaimsError::MissingExp)),
        "signed/payload-not-json.jws"
        | "signed/payload-no-entities.jws"
        | "signed/payload-bad-version.jws" => Layer::PayloadContent,
        other => panic!("reject case {other} has no expected layer in this test: add it"),
    }
}

#[test]
fn every_fixture_case_is_decided_at_the_right_layer() {
    let jwks = fixture_jwks();
    let expected = expected();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 28, "fixture set shrank: {}", cases.len());
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let bytes = fixture(file);
        match case["expect"].as_str().unwrap() {
            "ok" | "partial" => {
                let jws = Jws::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
                let verified = jws
                    .verify_signatures(&jwks)
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                assert!(!verified.is_empty());
                for signature in &verified {
                    check_claims(&jws, &signature.header().claims, FIXTURE_NOW)
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                }
                let document = jws
                    .verify_document(&jwks, &ClaimsPolicy::default(), FIXTURE_NOW)
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!(document.claims().exp(), 4_102_444_800, "{file}");
                assert_eq!(
                    document.claims().iss(),
                    Some("https://interop.fed.example"),
                    "{file}"
                );
                let payload: Value = serde_json::from_slice(document.payload()).unwrap();
                assert!(payload["entities"].is_array(), "{file}");
            }
            "reject" => match reject_layer(file) {
                Layer::Parse(check) => {
                    let err = Jws::parse(&bytes).expect_err(file);
                    assert!(check(&err), "{file}: wrong error {err:?}");
                }
                Layer::Signature(check) => {
                    let jws = Jws::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
                    let err = jws.verify_signatures(&jwks).expect_err(file);
                    assert!(check(&err), "{file}: wrong error {err:?}");
                    assert!(matches!(
                        jws.verify_document(&jwks, &ClaimsPolicy::default(), FIXTURE_NOW),
                        Err(e) if e == err
                    ));
                }
                Layer::Claims(check) => {
                    let jws = Jws::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
                    let verified = jws
                        .verify_signatures(&jwks)
                        .unwrap_or_else(|e| panic!("{file}: signature should verify: {e}"));
                    let err = check_claims(&jws, &verified[0].header().claims, FIXTURE_NOW)
                        .expect_err(file);
                    assert!(check(&err), "{file}: wrong error {err:?}");
                    match jws.verify_document(&jwks, &ClaimsPolicy::default(), FIXTURE_NOW) {
                        Err(JwsError::Claims(e)) => assert_eq!(e, err, "{file}"),
                        other => panic!("{file}: {other:?}"),
                    }
                }
                Layer::PayloadContent => {
                    let jws = Jws::parse(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
                    jws.verify_signatures(&jwks)
                        .unwrap_or_else(|e| panic!("{file}: signature should verify: {e}"));
                    let document =
                        jws.verify_document(&jwks, &ClaimsPolicy::default(), FIXTURE_NOW);
                    if file == "signed/payload-not-json.jws" {
                        let err = document.expect_err(file);
                        assert!(
                            matches!(err, JwsError::Payload(ClaimsError::NotAnObject(_))),
                            "{err:?}"
                        );
                        assert!(
                            err.to_string().starts_with("payload: not a JSON object"),
                            "{err}"
                        );
                    } else {
                        document.unwrap_or_else(|e| panic!("{file}: claims should pass: {e}"));
                    }
                }
            },
            other => panic!("{file}: unknown expectation {other}"),
        }
    }
}

#[test]
fn fixture_formats_and_key_selection() {
    let jwks = fixture_jwks();
    let cases = [
        (
            "signed/general-es256.jws",
            JwsFormat::General,
            Algorithm::Es256,
            "interop-es256",
        ),
        (
            "signed/flattened-es256.jws",
            JwsFormat::Flattened,
            Algorithm::Es256,
            "interop-es256",
        ),
        (
            "signed/compact-es256.jws",
            JwsFormat::Compact,
            Algorithm::Es256,
            "interop-es256",
        ),
        (
            "signed/general-es384.jws",
            JwsFormat::General,
            Algorithm::Es384,
            "interop-es384",
        ),
        (
            "signed/general-rs256.jws",
            JwsFormat::General,
            Algorithm::Rs256,
            "interop-rsa",
        ),
        (
            "signed/general-ps256.jws",
            JwsFormat::General,
            Algorithm::Ps256,
            "interop-rsa",
        ),
        (
            "signed/general-eddsa.jws",
            JwsFormat::General,
            Algorithm::EdDsa,
            "interop-ed25519",
        ),
    ];
    let thumbprint_of = |kid: &str| {
        jwks.keys()
            .iter()
            .find(|k| k.kid() == Some(kid))
            .unwrap()
            .thumbprint()
    };
    for (file, format, alg, kid) in cases {
        let bytes = fixture(file);
        let jws = Jws::parse(&bytes).unwrap();
        assert_eq!(jws.format(), format, "{file}");
        let verified = jws.verify_signatures(&jwks).unwrap();
        assert_eq!(verified.len(), 1, "{file}");
        assert_eq!(verified[0].header().alg, alg, "{file}");
        assert_eq!(verified[0].key_thumbprint(), thumbprint_of(kid), "{file}");
    }
}

#[test]
fn fixture_rollover_verifies_both_signatures_or_the_trusted_one() {
    let bytes = fixture("signed/general-two-signatures-rollover.jws");
    let jws = Jws::parse(&bytes).unwrap();
    let both = jws.verify_signatures(&fixture_jwks()).unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].header().kid.as_deref(), Some("interop-next"));
    assert_eq!(both[1].header().kid.as_deref(), Some("interop-es256"));

    let only_es256 = Jwks::from_json(&fixture("jwks-es256-only.json")).unwrap();
    let one = jws.verify_signatures(&only_es256).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].index(), 1);
    assert_eq!(one[0].header().kid.as_deref(), Some("interop-es256"));
    // A document signed only by a key not in the trust anchor names the kid.
    let eddsa = fixture("signed/general-eddsa.jws");
    let err = Jws::parse(&eddsa)
        .unwrap()
        .verify_signatures(&only_es256)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "signature 0: no trusted key has kid \"interop-ed25519\""
    );
}

#[test]
fn fixture_crit_exp_and_kidless_header() {
    let jwks = fixture_jwks();
    let crit = fixture("signed/general-crit-exp.jws");
    let jws = Jws::parse(&crit).unwrap();
    let verified = jws.verify_signatures(&jwks).unwrap();
    assert_eq!(verified[0].header().crit, vec!["exp".to_owned()]);
    assert_eq!(verified[0].header().claims.nbf, Some(1_795_294_209));

    let no_kid = fixture("signed/no-kid-es256.jws");
    let jws = Jws::parse(&no_kid).unwrap();
    assert!(jws.verify_signatures(&jwks).is_ok());
}

#[test]
fn fixture_payload_claims_win_over_header_claims() {
    let jwks = fixture_jwks();
    // Header exp far in the future, payload exp passed: refused.
    let bytes = fixture("signed/payload-exp-wins.jws");
    let jws = Jws::parse(&bytes).unwrap();
    let verified = jws.verify_signatures(&jwks).unwrap();
    assert_eq!(verified[0].header().claims.exp, Some(4_102_444_800));
    let err = jws
        .verify_document(&jwks, &ClaimsPolicy::default(), FIXTURE_NOW)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("expired at 2026-11-21T19:51:09Z (unix 1795290669)"),
        "{err}"
    );
    // Claims only in the payload (RFC 9932 style) are found.
    let bytes = fixture("signed/payload-claims-compact.jws");
    let jws = Jws::parse(&bytes).unwrap();
    let document = jws
        .verify_document(&jwks, &ClaimsPolicy::default(), FIXTURE_NOW)
        .unwrap();
    assert_eq!(document.claims().iat(), Some(1_795_294_269));
    assert_eq!(document.claims().exp(), 4_102_444_800);
}

#[test]
fn fixture_required_issuer() {
    let jwks = fixture_jwks();
    let bytes = fixture("signed/general-es256.jws");
    let jws = Jws::parse(&bytes).unwrap();
    let good = ClaimsPolicy {
        required_iss: Some("https://interop.fed.example".into()),
        ..ClaimsPolicy::default()
    };
    assert!(jws.verify_document(&jwks, &good, FIXTURE_NOW).is_ok());
    let bad = ClaimsPolicy {
        required_iss: Some("https://other.fed.example".into()),
        ..ClaimsPolicy::default()
    };
    assert!(matches!(
        jws.verify_document(&jwks, &bad, FIXTURE_NOW),
        Err(JwsError::Claims(ClaimsError::WrongIssuer { .. }))
    ));
}

// ---------------------------------------------------------------------------------------
// Sign -> verify round trips
// ---------------------------------------------------------------------------------------

fn metadata() -> Map<String, Value> {
    object(json!({
        "version": "1.0.0",
        "entities": [{"entity_id": "https://school.example", "issuers": [], "organization": "Skola Åäö"}],
        "iat": 1,
        "iss": "https://overwritten.example"
    }))
}

fn options(format: JwsFormat) -> SignOptions {
    SignOptions {
        iss: "https://fed.example".into(),
        lifetime_secs: 3600,
        now: 1_800_000_000,
        format,
        default_cache_ttl: 3600,
    }
}

static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();

/// One generated key per algorithm (RSA generation is slow: share them).
fn keys() -> &'static [SigningKey] {
    KEYS.get_or_init(|| {
        Algorithm::ALL
            .into_iter()
            .map(|alg| SigningKey::generate(alg, &format!("test-{alg}")).unwrap())
            .collect()
    })
}

fn key(alg: Algorithm) -> &'static SigningKey {
    keys().iter().find(|k| k.algorithm() == alg).unwrap()
}

fn trust(keys: &[&SigningKey]) -> Jwks {
    Jwks::from_keys(keys.iter().map(|k| k.public_jwk()).collect())
}

#[test]
fn round_trip_every_algorithm_and_format() {
    let now = 1_800_000_000;
    for alg in Algorithm::ALL {
        let key = key(alg);
        let jwks = trust(&[key]);
        for format in FORMATS {
            let text = sign_metadata(&metadata(), &[key], &options(format)).unwrap();
            assert!(!text.ends_with('\n'));
            let jws = Jws::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{alg} {format}: {e}"));
            assert_eq!(jws.format(), format);
            let document = jws
                .verify_document(&jwks, &ClaimsPolicy::default(), now)
                .unwrap_or_else(|e| panic!("{alg} {format}: {e}"));
            assert_eq!(document.format(), format);
            assert_eq!(document.signatures().len(), 1);
            assert_eq!(
                document.signatures()[0].key_thumbprint(),
                key.public_jwk().thumbprint()
            );
            let header = document.signatures()[0].header();
            assert_eq!(header.alg, alg);
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            assert_eq!(
                header.claims,
                Claims {
                    iat: Some(now),
                    exp: Some(now + 3600),
                    nbf: None,
                    iss: Some("https://fed.example".into())
                }
            );
            let payload: Value = serde_json::from_slice(document.payload()).unwrap();
            assert_eq!(payload["iat"], now);
            assert_eq!(payload["exp"], now + 3600);
            assert_eq!(payload["iss"], "https://fed.example");
            assert_eq!(payload["cache_ttl"], 3600);
            assert_eq!(payload["entities"][0]["organization"], "Skola Åäö");
            // Expired exactly at exp.
            assert!(matches!(
                jws.verify_document(&jwks, &ClaimsPolicy::default(), now + 3600),
                Err(JwsError::Claims(ClaimsError::Expired { .. }))
            ));
        }
    }
}

#[test]
fn protected_header_member_order_and_existing_cache_ttl() {
    let key = key(Algorithm::Es256);
    let mut payload = metadata();
    payload.insert("cache_ttl".into(), 60.into());
    let text = sign_metadata(&payload, &[key], &options(JwsFormat::Compact)).unwrap();
    let protected = text.split('.').next().unwrap();
    let header = String::from_utf8(b64url_decode(protected).unwrap()).unwrap();
    assert_eq!(
        header,
        r#"{"alg":"ES256","kid":"test-ES256","iat":1800000000,"exp":1800003600,"iss":"https://fed.example"}"#
    );
    let jws = Jws::parse(text.as_bytes()).unwrap();
    let payload: Value = serde_json::from_slice(&jws.decode_payload().unwrap()).unwrap();
    assert_eq!(payload["cache_ttl"], 60, "an existing cache_ttl is kept");
}

#[test]
fn multi_key_general_document() {
    let signers: Vec<&SigningKey> = vec![
        key(Algorithm::Es256),
        key(Algorithm::EdDsa),
        key(Algorithm::Ps256),
    ];
    let text = sign_metadata(&metadata(), &signers, &options(JwsFormat::General)).unwrap();
    let jws = Jws::parse(text.as_bytes()).unwrap();
    assert_eq!(jws.signature_count(), 3);
    let all = jws.verify_signatures(&trust(&signers)).unwrap();
    assert_eq!(
        all.iter().map(|s| s.index()).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    // Members that trust only one key still accept the document.
    let only_eddsa = jws.verify_signatures(&trust(&[signers[1]])).unwrap();
    assert_eq!(only_eddsa.len(), 1);
    assert_eq!(only_eddsa[0].index(), 1);
    assert_eq!(only_eddsa[0].header().alg, Algorithm::EdDsa);
    // Flattened and compact hold one signature only.
    for format in [JwsFormat::Flattened, JwsFormat::Compact] {
        assert!(matches!(
            sign_metadata(&metadata(), &signers, &options(format)),
            Err(JwsError::Sign(_))
        ));
    }
    assert!(sign_metadata(&metadata(), &[], &options(JwsFormat::General)).is_err());
    let bad_lifetime = SignOptions {
        lifetime_secs: 0,
        ..options(JwsFormat::General)
    };
    assert!(sign_metadata(&metadata(), &signers, &bad_lifetime).is_err());
}

#[test]
fn private_jwk_round_trip_signs_verifiably() {
    for alg in Algorithm::ALL {
        let original = key(alg);
        let restored =
            SigningKey::from_jwk_json(original.to_private_jwk_json().as_bytes()).unwrap();
        assert_eq!(restored.kid(), original.kid());
        assert_eq!(restored.algorithm(), alg);
        let text = sign_metadata(&metadata(), &[&restored], &options(JwsFormat::General)).unwrap();
        let jws = Jws::parse(text.as_bytes()).unwrap();
        assert!(jws.verify_signatures(&trust(&[original])).is_ok(), "{alg}");
    }
}

// ---------------------------------------------------------------------------------------
// Attacks and header rules
// ---------------------------------------------------------------------------------------

#[test]
fn another_key_with_the_same_kid_is_refused() {
    for alg in Algorithm::ALL {
        let genuine = key(alg);
        let rogue = SigningKey::generate(alg, genuine.kid()).unwrap();
        let text = sign_metadata(&metadata(), &[&rogue], &options(JwsFormat::General)).unwrap();
        let jws = Jws::parse(text.as_bytes()).unwrap();
        assert_eq!(
            jws.verify_signatures(&trust(&[genuine])),
            Err(JwsError::BadSignature { index: 0 }),
            "{alg}"
        );
    }
}

#[test]
fn a_mutated_signature_byte_is_refused() {
    for alg in Algorithm::ALL {
        let key = key(alg);
        let text = sign_metadata(&metadata(), &[key], &options(JwsFormat::Compact)).unwrap();
        let (prefix, signature) = text.rsplit_once('.').unwrap();
        let mut bytes = b64url_decode(signature).unwrap();
        for position in [0, bytes.len() / 2, bytes.len() - 1] {
            bytes[position] ^= 0x01;
            let tampered = format!("{prefix}.{}", b64url_encode(&bytes));
            let jws = Jws::parse(tampered.as_bytes()).unwrap();
            assert_eq!(
                jws.verify_signatures(&trust(&[key])),
                Err(JwsError::BadSignature { index: 0 }),
                "{alg} byte {position}"
            );
            bytes[position] ^= 0x01;
        }
        // A truncated signature is refused too.
        let short = format!("{prefix}.{}", b64url_encode(&bytes[..bytes.len() - 1]));
        let jws = Jws::parse(short.as_bytes()).unwrap();
        assert!(jws.verify_signatures(&trust(&[key])).is_err());
    }
}

/// Builds a compact JWS over a hand-written protected header, validly signed by `key`.
fn craft_compact(key: &SigningKey, header_json: &str, payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64url_encode(header_json), b64url_encode(payload));
    let signature = key.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64url_encode(signature))
}

#[test]
fn duplicate_header_members_are_refused_even_when_signed() {
    let key = key(Algorithm::Es256);
    let payload = br#"{"exp":4102444800}"#;
    let ok = craft_compact(key, r#"{"alg":"ES256","kid":"test-ES256"}"#, payload);
    assert!(
        Jws::parse(ok.as_bytes())
            .unwrap()
            .verify_signatures(&trust(&[key]))
            .is_ok()
    );
    for header in [
        r#"{"alg":"ES256","kid":"test-ES256","kid":"other"}"#,
        r#"{"alg":"ES256","alg":"none","kid":"test-ES256"}"#,
        r#"{"alg":"ES256","kid":"test-ES256","exp":4102444800,"exp":1}"#,
    ] {
        let text = craft_compact(key, header, payload);
        let err = Jws::parse(text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, JwsError::DuplicateMember { index: 0, .. }),
            "{header}: {err:?}"
        );
    }
}

fn header(value: Value) -> Map<String, Value> {
    object(value)
}

#[test]
fn crit_rules() {
    let key = key(Algorithm::Es256);
    let jwks = trust(&[key]);
    let payload = br#"{"version":"1.0.0","entities":[]}"#;
    let accepted = sign_raw(
        payload,
        &[(
            key,
            header(json!({"exp": 4_102_444_800_i64, "crit": ["exp"]})),
        )],
        JwsFormat::General,
    )
    .unwrap();
    let jws = Jws::parse(accepted.as_bytes()).unwrap();
    let document = jws
        .verify_document(&jwks, &ClaimsPolicy::default(), 1_800_000_000)
        .unwrap();
    assert_eq!(
        document.signatures()[0].header().crit,
        vec!["exp".to_owned()]
    );

    let refused = [
        json!({"exp": 4_102_444_800_i64, "crit": ["x-custom"], "x-custom": 1}),
        json!({"exp": 4_102_444_800_i64, "crit": ["b64"], "b64": false}),
        json!({"exp": 4_102_444_800_i64, "crit": ["alg"]}),
        json!({"exp": 4_102_444_800_i64, "crit": "exp"}),
        json!({"exp": 4_102_444_800_i64, "crit": []}),
        json!({"crit": ["exp"]}),
    ];
    for h in refused {
        let text = sign_raw(payload, &[(key, header(h.clone()))], JwsFormat::Flattened).unwrap();
        let err = Jws::parse(text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, JwsError::Crit { index: 0, .. }),
            "{h}: {err:?}"
        );
    }
}

#[test]
fn none_and_hmac_are_refused_even_for_keys_without_alg() {
    let key = key(Algorithm::Es256);
    // A trust anchor whose key has no alg member.
    let mut public = key.public_jwk().to_json_value();
    public.as_object_mut().unwrap().remove("alg");
    let jwks_text = json!({"keys": [public]}).to_string();
    let jwks = Jwks::from_json(jwks_text.as_bytes()).unwrap();
    assert_eq!(jwks.keys()[0].algorithm(), None);

    let payload = br#"{"exp":4102444800}"#;
    let protected_none = b64url_encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid()));
    let none = format!("{protected_none}.{}.", b64url_encode(payload));
    assert!(matches!(
        Jws::parse(none.as_bytes()),
        Err(JwsError::UnsupportedAlgorithm { ref alg, .. }) if alg == "none"
    ));

    // HS256 keyed with the public key's own JSON: the classic confusion attack.
    let protected = b64url_encode(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, key.kid()));
    let signing_input = format!("{protected}.{}", b64url_encode(payload));
    let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, jwks_text.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&mac_key, signing_input.as_bytes());
    let forged = format!("{signing_input}.{}", b64url_encode(tag.as_ref()));
    let err = Jws::parse(forged.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "signature 0: alg \"HS256\" is not allowed (allowed: ES256, ES384, RS256, PS256, EdDSA)"
    );
    // The same in General syntax next to nothing else: still refused at parse.
    let general = format!(
        r#"{{"payload":"{}","signatures":[{{"protected":"{protected}","signature":"{}"}}]}}"#,
        b64url_encode(payload),
        b64url_encode(tag.as_ref())
    );
    assert!(matches!(
        Jws::parse(general.as_bytes()),
        Err(JwsError::UnsupportedAlgorithm { .. })
    ));
}

#[test]
fn a_bad_signature_entry_does_not_hide_a_good_one() {
    let key = key(Algorithm::Es256);
    let good = sign_metadata(&metadata(), &[key], &options(JwsFormat::General)).unwrap();
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    let none_header = b64url_encode(r#"{"alg":"none"}"#);
    doc["signatures"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"protected": none_header, "signature": ""}));
    let text = doc.to_string();
    let jws = Jws::parse(text.as_bytes()).unwrap();
    let verified = jws.verify_signatures(&trust(&[key])).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].index(), 1);
    // When nothing verifies, the most telling error is reported.
    let other = SigningKey::generate(Algorithm::Es256, key.kid()).unwrap();
    assert_eq!(
        jws.verify_signatures(&trust(&[&other])),
        Err(JwsError::BadSignature { index: 1 })
    );
}

#[test]
fn kidless_header_tries_every_fitting_key() {
    let first = SigningKey::generate(Algorithm::Es256, "first").unwrap();
    let second = SigningKey::generate(Algorithm::Es256, "second").unwrap();
    let ed = key(Algorithm::EdDsa);
    let jwks = trust(&[&first, ed, &second]);
    let payload = br#"{"exp":4102444800}"#;
    for format in FORMATS {
        let text = sign_raw(payload, &[(&second, header(json!({"kid": null})))], format).unwrap();
        let jws = Jws::parse(text.as_bytes()).unwrap();
        assert_eq!(jws.headers()[0].unwrap().kid, None);
        let verified = jws.verify_signatures(&jwks).unwrap();
        assert_eq!(
            verified[0].key_thumbprint(),
            second.public_jwk().thumbprint(),
            "{format}"
        );
    }
    // EdDSA without kid (contiguous signing input path) too.
    let text = sign_raw(
        payload,
        &[(ed, header(json!({"kid": null})))],
        JwsFormat::General,
    )
    .unwrap();
    let verified = Jws::parse(text.as_bytes())
        .unwrap()
        .verify_signatures(&jwks)
        .unwrap();
    assert_eq!(verified[0].key_thumbprint(), ed.public_jwk().thumbprint());
    // No fitting key at all.
    let text = sign_raw(
        payload,
        &[(key(Algorithm::Es384), header(json!({"kid": null})))],
        JwsFormat::Compact,
    )
    .unwrap();
    assert!(matches!(
        Jws::parse(text.as_bytes())
            .unwrap()
            .verify_signatures(&jwks),
        Err(JwsError::NoKeyForAlgorithm {
            alg: Algorithm::Es384,
            ..
        })
    ));
}

#[test]
fn kid_selects_only_keys_that_fit_the_alg() {
    let es = key(Algorithm::Es256);
    let payload = br#"{"exp":4102444800}"#;
    // Header claims RS256 for an EC key id.
    let text = sign_raw(
        payload,
        &[(key(Algorithm::Rs256), header(json!({"kid": es.kid()})))],
        JwsFormat::General,
    )
    .unwrap();
    let err = Jws::parse(text.as_bytes())
        .unwrap()
        .verify_signatures(&trust(&[es]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            JwsError::KeyAlgMismatch {
                alg: Algorithm::Rs256,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn header_claims_and_policy() {
    let key = key(Algorithm::Es256);
    let jwks = trust(&[key]);
    let policy = ClaimsPolicy::default();
    let sign = |header_claims: Value, payload: Value| {
        sign_raw(
            payload.to_string().as_bytes(),
            &[(key, header(header_claims))],
            JwsFormat::General,
        )
        .unwrap()
    };
    // Leeway on iat and nbf, none on exp.
    let text = sign(json!({"iat": 1000, "nbf": 1000, "exp": 2000}), json!({}));
    let jws = Jws::parse(text.as_bytes()).unwrap();
    assert!(jws.verify_document(&jwks, &policy, 940).is_ok());
    assert!(matches!(
        jws.verify_document(&jwks, &policy, 939),
        Err(JwsError::Claims(ClaimsError::NotYetValid { nbf: 1000 }))
    ));
    assert!(jws.verify_document(&jwks, &policy, 1999).is_ok());
    assert!(matches!(
        jws.verify_document(&jwks, &policy, 2000),
        Err(JwsError::Claims(ClaimsError::Expired {
            exp: 2000,
            now: 2000
        }))
    ));
    let text = sign(json!({"iat": 1000, "exp": 2000}), json!({}));
    let jws = Jws::parse(text.as_bytes()).unwrap();
    assert!(matches!(
        jws.verify_document(&jwks, &policy, 939),
        Err(JwsError::Claims(ClaimsError::IssuedInFuture { iat: 1000 }))
    ));
    // The payload wins, both ways.
    let text = sign(json!({"exp": 5000}), json!({"exp": 1500}));
    let jws = Jws::parse(text.as_bytes()).unwrap();
    assert!(jws.verify_document(&jwks, &policy, 1600).is_err());
    let text = sign(json!({"exp": 1500}), json!({"exp": 5000}));
    let jws = Jws::parse(text.as_bytes()).unwrap();
    assert_eq!(
        jws.verify_document(&jwks, &policy, 1600)
            .unwrap()
            .claims()
            .exp(),
        5000
    );
    // Bad claim types: in the protected header at parse, in the payload at verify.
    let text = sign(json!({"exp": "tomorrow"}), json!({}));
    assert!(matches!(
        Jws::parse(text.as_bytes()),
        Err(JwsError::HeaderClaims { index: 0, .. })
    ));
    let text = sign(json!({"exp": 5000}), json!({"exp": -1}));
    assert!(matches!(
        Jws::parse(text.as_bytes())
            .unwrap()
            .verify_document(&jwks, &policy, 10),
        Err(JwsError::Payload(ClaimsError::Invalid { .. }))
    ));
    // Missing exp anywhere.
    let text = sign(json!({"iat": 1}), json!({"iss": "x"}));
    assert!(matches!(
        Jws::parse(text.as_bytes())
            .unwrap()
            .verify_document(&jwks, &policy, 10),
        Err(JwsError::Claims(ClaimsError::MissingExp))
    ));
    // Required issuer.
    let text = sign(
        json!({"exp": 5000, "iss": "https://a.example"}),
        json!({"iss": "https://b.example"}),
    );
    let jws = Jws::parse(text.as_bytes()).unwrap();
    let strict = ClaimsPolicy {
        required_iss: Some("https://a.example".into()),
        ..ClaimsPolicy::default()
    };
    assert!(matches!(
        jws.verify_document(&jwks, &strict, 10),
        Err(JwsError::Claims(ClaimsError::WrongIssuer { .. }))
    ));
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

struct Sample {
    text: Vec<u8>,
    payload: Vec<u8>,
    jwks: Jwks,
}

static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();

/// Small signed documents (every format, ES256 and EdDSA).
fn samples() -> &'static [Sample] {
    SAMPLES.get_or_init(|| {
        let payload =
            object(json!({"version": "1.0.0", "entities": [{"entity_id": "https://e.example"}]}));
        let mut out = Vec::new();
        for alg in [Algorithm::Es256, Algorithm::EdDsa] {
            let key = SigningKey::generate(alg, "p").unwrap();
            for format in FORMATS {
                let text = sign_metadata(&payload, &[&key], &options(format)).unwrap();
                let jws = Jws::parse(text.as_bytes()).unwrap();
                let decoded = jws.decode_payload().unwrap();
                out.push(Sample {
                    text: text.into_bytes(),
                    payload: decoded,
                    jwks: trust(&[&key]),
                });
            }
        }
        out
    })
}

fn header_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[A-Za-z0-9 -]{0,8}".prop_map(Value::from),
        prop_oneof![
            Just("ES256"),
            Just("none"),
            Just("HS256"),
            Just("EdDSA"),
            Just("PS256")
        ]
        .prop_map(Value::from),
        proptest::collection::vec(
            prop_oneof![Just("exp"), Just("iat"), Just("x"), Just("alg")].prop_map(Value::from),
            0..3
        )
        .prop_map(Value::Array),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let jwks = &samples()[0].jwks;
        if let Ok(jws) = Jws::parse(&bytes) {
            let _ = jws.verify_signatures(jwks);
            let _ = jws.verify_document(jwks, &ClaimsPolicy::default(), 0);
        }
    }

    #[test]
    fn json_like_text_never_panics(text in r#"[ {}\[\]":,.a-z0-9=_-]{0,200}"#) {
        let jwks = &samples()[0].jwks;
        let wrapped = format!(r#"{{"payload":"e30","signatures":[{text}]}}"#);
        for input in [text.as_str(), wrapped.as_str()] {
            if let Ok(jws) = Jws::parse(input.as_bytes()) {
                let _ = jws.verify_signatures(jwks);
            }
        }
    }

    #[test]
    fn arbitrary_headers_never_panic(
        members in proptest::collection::vec(
            (prop_oneof![Just("alg"), Just("kid"), Just("crit"), Just("exp"), Just("iat"),
                         Just("nbf"), Just("iss"), Just("x")], header_value()),
            0..6),
        signature in proptest::collection::vec(any::<u8>(), 0..70),
    ) {
        let sample = &samples()[0];
        // Written by hand so duplicate names survive.
        let body: Vec<String> = members.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        let header = format!("{{{}}}", body.join(","));
        let text = format!("{}.e30.{}", b64url_encode(&header), b64url_encode(&signature));
        if let Ok(jws) = Jws::parse(text.as_bytes()) {
            prop_assert!(jws.verify_signatures(&sample.jwks).is_err());
        }
    }

    #[test]
    fn arbitrary_jwks_never_panic(
        members in proptest::collection::vec(
            (prop_oneof![Just("kty"), Just("crv"), Just("x"), Just("y"), Just("n"), Just("e"),
                         Just("d"), Just("p"), Just("q"), Just("dp"), Just("dq"), Just("qi"),
                         Just("alg"), Just("use"), Just("kid"), Just("key_ops")],
             prop_oneof![
                 prop_oneof![Just("EC"), Just("RSA"), Just("OKP"), Just("oct"), Just("P-256"),
                             Just("P-384"), Just("Ed25519"), Just("X25519"), Just("ES256"),
                             Just("sig"), Just("enc")].prop_map(Value::from),
                 proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| Value::from(b64url_encode(b))),
                 any::<i64>().prop_map(Value::from),
                 Just(json!(["verify"])),
             ]),
            0..10),
    ) {
        let jwk = Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let text = json!({"keys": [jwk.clone()]}).to_string();
        if let Ok(jwks) = Jwks::from_json(text.as_bytes()) {
            let key = &jwks.keys()[0];
            let _ = key.thumbprint();
            for alg in Algorithm::ALL {
                prop_assert!(!key.verify(alg, b"m", &[0u8; 64]));
            }
        }
        if let Ok(key) = SigningKey::from_jwk_json(jwk.to_string().as_bytes()) {
            let signature = key.sign(b"m").unwrap();
            prop_assert!(key.public_jwk().verify(key.algorithm(), b"m", &signature));
        }
    }

    /// Flipping, inserting or deleting a byte never panics, and never makes a document
    /// verify with a different payload or header. (Some edits are harmless by design: JSON
    /// whitespace, base64 padding on the signature; they must yield the same content.)
    #[test]
    fn mutations_never_verify_different_content(
        which in 0..6usize,
        kind in 0..3u8,
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let sample = &samples()[which];
        let original_headers: Vec<_> = {
            let jws = Jws::parse(&sample.text).unwrap();
            jws.headers().into_iter().map(|h| h.ok().cloned()).collect()
        };
        let mut mutated = sample.text.clone();
        match kind {
            0 => {
                let i = position.index(mutated.len());
                mutated[i] ^= if byte == 0 { 1 } else { byte };
            }
            1 => mutated.insert(position.index(mutated.len() + 1), byte),
            _ => {
                mutated.remove(position.index(mutated.len()));
            }
        }
        prop_assume!(mutated != sample.text);
        if let Ok(jws) = Jws::parse(&mutated)
            && jws.verify_signatures(&sample.jwks).is_ok()
        {
            prop_assert_eq!(jws.decode_payload().ok(), Some(sample.payload.clone()));
            let headers: Vec<_> = jws.headers().into_iter().map(|h| h.ok().cloned()).collect();
            prop_assert_eq!(headers, original_headers);
        }
    }
}

#[test]
fn mutations_of_signed_content_are_exhaustively_refused() {
    // Every single-byte flip inside the protected header, payload and signature text of
    // a compact document must fail (no whitespace or padding slack there).
    let sample = &samples()[2];
    let text = std::str::from_utf8(&sample.text).unwrap();
    for i in 0..text.len() {
        let mut mutated = sample.text.clone();
        mutated[i] ^= 0x01;
        if let Ok(jws) = Jws::parse(&mutated) {
            assert!(
                jws.verify_signatures(&sample.jwks).is_err(),
                "flip at byte {i} still verifies"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

fn fedtls(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_fedtls"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fedtls");
    if let Some(input) = stdin {
        // A command that fails before reading its input closes the pipe early; its exit
        // status and output are what the test asserts, so a broken pipe here is not an error.
        match child.stdin.take().unwrap().write_all(input) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => panic!("writing fedtls's stdin: {e}"),
        }
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn cli_keygen_sign_thumbprint() {
    let dir = tempfile::tempdir().unwrap();
    let private: PathBuf = dir.path().join("fed.jwk");
    let jwks_path: PathBuf = dir.path().join("fed.jwks");
    let out = fedtls(
        &[
            "keygen",
            "--kid",
            "fed-1",
            "--out-private",
            path_str(&private),
            "--out-jwks",
            path_str(&jwks_path),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let (kid, thumbprint) = printed.trim_end().split_once('\t').unwrap();
    assert_eq!(kid, "fed-1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = SigningKey::from_jwk_json(&std::fs::read(&private).unwrap()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Es256);
    let jwks = Jwks::from_json(&std::fs::read(&jwks_path).unwrap()).unwrap();
    assert_eq!(jwks.keys()[0].thumbprint(), thumbprint);
    assert!(
        !std::fs::read_to_string(&jwks_path)
            .unwrap()
            .contains("\"d\"")
    );

    // Refuses to overwrite, unless --force.
    let again = fedtls(
        &[
            "keygen",
            "--kid",
            "fed-2",
            "--out-private",
            path_str(&private),
            "--out-jwks",
            path_str(&jwks_path),
        ],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        SigningKey::from_jwk_json(&std::fs::read(&private).unwrap())
            .unwrap()
            .kid(),
        "fed-1"
    );

    // thumbprint prints KID<TAB>THUMBPRINT.
    let out = fedtls(&["thumbprint", path_str(&jwks_path)], None);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("fed-1\t{thumbprint}\n")
    );

    // sign from stdin, verify with the library.
    let metadata = json!({"version": "1.0.0", "entities": []}).to_string();
    let out = fedtls(
        &[
            "sign",
            "--key",
            path_str(&private),
            "--iss",
            "https://fed.example",
            "-",
        ],
        Some(metadata.as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jws = Jws::parse(&out.stdout).unwrap();
    assert_eq!(jws.format(), JwsFormat::General);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let document = jws
        .verify_document(&jwks, &ClaimsPolicy::default(), now)
        .unwrap();
    assert_eq!(document.claims().iss(), Some("https://fed.example"));
    assert!(document.claims().exp() > now + 86_000);
    let payload: Value = serde_json::from_slice(document.payload()).unwrap();
    assert_eq!(payload["cache_ttl"], 3600);

    // Compact from a file, with a custom lifetime and cache_ttl.
    let metadata_path = dir.path().join("metadata.json");
    std::fs::write(&metadata_path, &metadata).unwrap();
    let out = fedtls(
        &[
            "sign",
            "--key",
            path_str(&private),
            "--iss",
            "https://fed.example",
            "--format",
            "compact",
            "--lifetime",
            "600",
            "--cache-ttl",
            "120",
            path_str(&metadata_path),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jws = Jws::parse(&out.stdout).unwrap();
    assert_eq!(jws.format(), JwsFormat::Compact);
    let document = jws
        .verify_document(&jwks, &ClaimsPolicy::default(), now)
        .unwrap();
    assert!(document.claims().exp() <= now + 700);
    let payload: Value = serde_json::from_slice(document.payload()).unwrap();
    assert_eq!(payload["cache_ttl"], 120);

    // A payload that is not an object is refused, naming the file.
    let array_path = dir.path().join("array.json");
    std::fs::write(&array_path, "[1,2]").unwrap();
    let out = fedtls(
        &[
            "sign",
            "--key",
            path_str(&private),
            "--iss",
            "https://fed.example",
            path_str(&array_path),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("array.json"),
        "{stderr}"
    );
    // Two keys need the general format (usage error).
    let out = fedtls(
        &[
            "sign",
            "--key",
            path_str(&private),
            "--key",
            path_str(&private),
            "--iss",
            "x",
            "--format",
            "flattened",
            "-",
        ],
        Some(b"{}"),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_thumbprint_of_the_fixtures_and_bad_input() {
    let out = fedtls(&["thumbprint", &format!("{FIXTURES}/jwks.json")], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = expected();
    for (kid, thumbprint) in expected["jwk_thumbprints_sha256"].as_object().unwrap() {
        assert!(
            text.contains(&format!("{kid}\t{}\n", thumbprint.as_str().unwrap())),
            "{text}"
        );
    }
    let out = fedtls(&["thumbprint", &format!("{FIXTURES}/expected.json")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    let out = fedtls(&["thumbprint", "/nonexistent/jwks.json"], None);
    assert_eq!(out.status.code(), Some(1));
    let out = fedtls(
        &[
            "keygen",
            "--kid",
            "k",
            "--alg",
            "HS256",
            "--out-private",
            "/tmp/x",
            "--out-jwks",
            "/tmp/y",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}
