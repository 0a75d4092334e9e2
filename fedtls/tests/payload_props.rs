//! Property tests: no input makes the payload parser or the full verifier panic, and the
//! entity accounting always adds up.

use fedtls::jwk::Jwks;
use fedtls::metadata::parse_payload;
use fedtls::verify::{VerifyOptions, verify_metadata};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/interop/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Byte-level edits: overwrite, insert or delete at a position.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        if bytes.is_empty() {
            break;
        }
        match *edit {
            Edit::Set(at, b) => {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            Edit::Insert(at, b) => {
                let at = at % (bytes.len() + 1);
                bytes.insert(at, b);
            }
            Edit::Delete(at) => {
                let at = at % bytes.len();
                bytes.remove(at);
            }
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    // Bias replacement bytes towards JSON structure so mutations reach deep parser states.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\",:0123456789-eE.tfn \\".to_vec()),
    ];
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), byte.clone()).prop_map(|(a, b)| Edit::Set(a, b)),
            (any::<usize>(), byte).prop_map(|(a, b)| Edit::Insert(a, b)),
            any::<usize>().prop_map(Edit::Delete),
        ],
        1..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_payload(&bytes, 1);
    }

    #[test]
    fn mutated_payloads_never_panic_and_account_for_every_entity(edits in edits()) {
        let original = fixture("metadata.json");
        let mutated = apply(original, &edits);
        if let Ok(md) = parse_payload(&mutated, 2) {
            // Every element of `entities` is either usable or reported, never silently lost.
            let value: serde_json::Value = serde_json::from_slice(&mutated).expect("parsed before");
            let total = value["entities"].as_array().map_or(0, Vec::len);
            prop_assert_eq!(md.entities.len() + md.rejected.len(), total);
        }
    }

    #[test]
    fn mutated_signed_documents_never_panic_or_verify(edits in edits()) {
        let original = fixture("signed/general-es256.jws");
        let jwks = Jwks::from_json(&fixture("jwks.json")).expect("jwks");
        let mutated = apply(original.clone(), &edits);
        let result = verify_metadata(&mutated, &jwks, &VerifyOptions::default());
        if mutated != original {
            // Whitespace edits outside the signed strings are harmless; anything that still
            // verifies must carry exactly the signed payload.
            if let Ok(verified) = result {
                prop_assert_eq!(verified.index().entities().len(), 4);
            }
        }
    }
}
