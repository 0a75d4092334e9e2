//! JSON Web Keys (RFC 7517/7518) for the JWS algorithms MATF metadata may use, over
//! `aws-lc-rs`: trust anchors ([`Jwks`], [`PublicJwk`]) and signing keys ([`SigningKey`]:
//! loaded from a private JWK and used to sign in the core; generated with the `tooling`
//! feature).
//!
//! Only asymmetric signature algorithms exist here ([`Algorithm`]): `none` and HMAC are not
//! representable, so the alg-confusion attack (an HMAC "signature" keyed with public key
//! material) cannot even be expressed.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;

use crate::pin::truncate_for_message;

mod jwks;
mod material;
mod public;
mod signing;

pub use jwks::{Jwks, TrustAnchorError};
pub use public::PublicJwk;
pub use signing::SigningKey;

/// The JWS algorithms accepted for federation metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (the MATF/Moa recommendation).
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA keys of at least 2048 bits).
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    Ps256,
    /// Ed25519.
    EdDsa,
}

/// The allow-list, as shown in error messages.
pub const ALLOWED_ALGORITHMS: &str = "ES256, ES384, RS256, PS256, EdDSA";

impl Algorithm {
    /// Every supported algorithm, in preference order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::EdDsa,
    ];

    /// The JOSE name (`"ES256"`, …, `"EdDSA"`).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The digest the algorithm signs, when the signature can be checked against a
    /// precomputed digest (all but EdDSA, which hashes the message itself).
    pub(crate) fn digest_algorithm(self) -> Option<&'static digest::Algorithm> {
        match self {
            Algorithm::Es256 | Algorithm::Rs256 | Algorithm::Ps256 => Some(&digest::SHA256),
            Algorithm::Es384 => Some(&digest::SHA384),
            Algorithm::EdDsa => None,
        }
    }
}

impl FromStr for Algorithm {
    type Err = JwkError;

    /// Parses a JOSE alg name (case-sensitive); `none`, HMAC and anything else are errors.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| JwkError::UnsupportedAlgorithm(truncate_for_message(s)))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be read, made or used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    /// The alg is not on the allow-list.
    #[error("alg {0:?} is not allowed (allowed: {ALLOWED_ALGORITHMS})")]
    UnsupportedAlgorithm(String),
    /// The input is not JSON of the expected shape.
    #[error("not a JWK/JWKS: {0}")]
    Json(String),
    /// A member is missing or has a bad value.
    #[error("JWK member {member:?}: {reason}")]
    Member {
        /// The member name.
        member: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The key type (or curve) is not one this crate can use for signatures.
    #[error("unsupported key type: {0}")]
    UnsupportedKey(String),
    /// The key's own `alg` does not fit its type.
    #[error("alg {alg} does not fit a {key} key")]
    AlgorithmMismatch {
        /// The `alg` the key claims.
        alg: Algorithm,
        /// The key type, e.g. `EC P-256`.
        key: String,
    },
    /// The key material was rejected by the crypto library (not on the curve,
    /// inconsistent private/public parts, RSA size out of range, …).
    #[error("invalid key material: {0}")]
    Rejected(String),
    /// A JWKS has no key usable for signature verification.
    #[error("the JWKS has no usable signature key{}", if .0.is_empty() { String::new() } else { format!(" ({})", .0.join("; ")) })]
    NoUsableKeys(Vec<String>),
    /// A private JWK is expected but the key has no private part.
    #[error("not a private key: member \"d\" is missing")]
    NotPrivate,
    /// Key generation or signing failed inside the crypto library.
    #[error("crypto operation failed: {0}")]
    Crypto(&'static str),
}

fn member_err(member: &'static str, reason: impl Into<String>) -> JwkError {
    JwkError::Member {
        member,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::encoding::b64url_encode;

    #[test]
    fn algorithm_names_round_trip_and_reject_none_and_hmac() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.name().parse::<Algorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.name());
        }
        for bad in ["none", "HS256", "HS384", "HS512", "es256", "RS512", ""] {
            let err = bad.parse::<Algorithm>().unwrap_err();
            assert!(err.to_string().contains("not allowed"), "{err}");
        }
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = PublicJwk::from_json_value(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn fits_by_type_and_own_alg() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg, "k").unwrap();
            let public = key.public_jwk();
            for other in Algorithm::ALL {
                assert_eq!(public.fits(other), other == alg, "{alg} key vs {other}");
            }
        }
    }

    #[test]
    fn skips_unusable_keys_and_warns_on_private_members() {
        let ec = SigningKey::generate(Algorithm::Es256, "ec").unwrap();
        let private: Value = serde_json::from_str(&ec.to_private_jwk_json()).unwrap();
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "short"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny-rsa"},
            ec.public_jwk().to_json_value().as_object().map(|o| {
                let mut o = o.clone(); o.insert("use".into(), "enc".into()); Value::Object(o)
            }).unwrap(),
            {"kty": "XYZ"},
            "not an object",
            private,
        ]});
        let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
        assert_eq!(jwks.keys().len(), 1);
        assert_eq!(jwks.keys()[0].kid(), Some("ec"));
        assert_eq!(jwks.skipped().len(), 8, "{:#?}", jwks.skipped());
        assert!(jwks.skipped().last().unwrap().contains("private"));
        // Only unusable keys: an error that lists why.
        let err = Jwks::from_json(br#"{"keys":[{"kty":"oct","k":"AA"}]}"#).unwrap_err();
        assert!(err.to_string().contains("oct"), "{err}");
        assert!(Jwks::from_json(br#"{"keys":[]}"#).is_err());
        assert!(Jwks::from_json(b"[]").is_err());
        assert!(Jwks::from_json(b"").is_err());
    }

    #[test]
    fn private_jwk_round_trip_for_every_algorithm() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg, "round-trip").unwrap();
            let json = key.to_private_jwk_json();
            let back = SigningKey::from_jwk_json(json.as_bytes()).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.kid(), "round-trip");
            assert_eq!(back.public_jwk(), key.public_jwk());
            let sig = back.sign(b"message").unwrap();
            assert!(key.public_jwk().verify(alg, b"message", &sig), "{alg}");
            assert!(!key.public_jwk().verify(alg, b"messagE", &sig), "{alg}");
            // A JWKS made from it round-trips too, without private members.
            let jwks = Jwks::from_keys(vec![key.public_jwk()]);
            let text = jwks.to_json();
            assert!(!text.contains("\"d\""));
            let again = Jwks::from_json(text.as_bytes()).unwrap();
            assert_eq!(again.keys(), jwks.keys());
            assert!(again.skipped().is_empty());
        }
    }

    #[test]
    fn private_jwk_inference_and_errors() {
        let key = SigningKey::generate(Algorithm::Rs256, "r").unwrap();
        let mut value: Value = serde_json::from_str(&key.to_private_jwk_json()).unwrap();
        let obj = value.as_object_mut().unwrap();
        obj.remove("alg");
        obj.remove("kid");
        let back = SigningKey::from_jwk_json(value.to_string().as_bytes()).unwrap();
        assert_eq!(back.algorithm(), Algorithm::Rs256);
        assert_eq!(back.kid(), key.public_jwk().thumbprint());

        let public = key.public_jwk().to_json_value().to_string();
        assert_eq!(
            SigningKey::from_jwk_json(public.as_bytes()).unwrap_err(),
            JwkError::NotPrivate
        );
        // A private part that does not match the public part is rejected.
        let a = SigningKey::generate(Algorithm::Es256, "a").unwrap();
        let b = SigningKey::generate(Algorithm::Es256, "b").unwrap();
        let mut mixed: Value = serde_json::from_str(&a.to_private_jwk_json()).unwrap();
        let b_value: Value = serde_json::from_str(&b.to_private_jwk_json()).unwrap();
        mixed["d"] = b_value["d"].clone();
        assert!(SigningKey::from_jwk_json(mixed.to_string().as_bytes()).is_err());
        // alg that does not fit the key type.
        let mut wrong: Value = serde_json::from_str(&a.to_private_jwk_json()).unwrap();
        wrong["alg"] = "ES384".into();
        assert!(matches!(
            SigningKey::from_jwk_json(wrong.to_string().as_bytes()),
            Err(JwkError::AlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn verify_rejects_wrong_lengths_and_algs() {
        let key = SigningKey::generate(Algorithm::Es256, "k").unwrap();
        let sig = key.sign(b"m").unwrap();
        assert_eq!(sig.len(), 64);
        let public = key.public_jwk();
        assert!(public.verify(Algorithm::Es256, b"m", &sig));
        assert!(!public.verify(Algorithm::Es384, b"m", &sig));
        assert!(!public.verify(Algorithm::Es256, b"m", &sig[..63]));
        assert!(!public.verify(Algorithm::Es256, b"m", &[]));
        let digest = digest::digest(&digest::SHA256, b"m");
        assert!(public.verify_digest(Algorithm::Es256, &digest, &sig));
        let wrong_digest = digest::digest(&digest::SHA384, b"m");
        assert!(!public.verify_digest(Algorithm::Es256, &wrong_digest, &sig));
    }

    #[test]
    fn a_jwk_alg_restricts_an_rsa_key_to_that_alg() {
        let rs = SigningKey::generate(Algorithm::Rs256, "rsa").unwrap();
        let mut private: Value = serde_json::from_str(&rs.to_private_jwk_json()).unwrap();
        private["alg"] = "PS256".into();
        let ps = SigningKey::from_jwk_json(private.to_string().as_bytes()).unwrap();
        assert_eq!(ps.algorithm(), Algorithm::Ps256);
        let signature = ps.sign(b"m").unwrap();
        // Same key material, but the trusted JWK says RS256 only.
        assert!(!rs.public_jwk().verify(Algorithm::Ps256, b"m", &signature));
        assert!(ps.public_jwk().verify(Algorithm::Ps256, b"m", &signature));
        // Without alg, both RSA algs fit.
        let mut unlabelled = rs.public_jwk().to_json_value();
        unlabelled.as_object_mut().unwrap().remove("alg");
        let unlabelled = PublicJwk::from_json_value(&unlabelled).unwrap();
        assert!(unlabelled.verify(Algorithm::Ps256, b"m", &signature));
        assert!(!unlabelled.verify(Algorithm::Rs256, b"m", &signature));
        let digest = digest::digest(&digest::SHA256, b"m");
        assert!(
            !rs.public_jwk()
                .verify_digest(Algorithm::Ps256, &digest, &signature)
        );
        assert!(unlabelled.verify_digest(Algorithm::Ps256, &digest, &signature));
    }

    #[test]
    fn rejects_weak_rsa_exponents_and_bad_private_sizes() {
        let key = SigningKey::generate(Algorithm::Rs256, "r").unwrap();
        let public = key.public_jwk().to_json_value();
        for e in ["AQ", "Ag", "AAE", "AQAAAAAB"] {
            let mut weak = public.clone();
            weak["e"] = e.into();
            assert!(
                matches!(
                    PublicJwk::from_json_value(&weak),
                    Err(JwkError::Member { member: "e", .. })
                ),
                "e = {e}"
            );
        }
        let mut three = public.clone();
        three["e"] = "Aw".into();
        assert!(PublicJwk::from_json_value(&three).is_ok());

        let ed = SigningKey::generate(Algorithm::EdDsa, "e").unwrap();
        let mut private: Value = serde_json::from_str(&ed.to_private_jwk_json()).unwrap();
        for d in [
            "",
            "AA",
            &b64url_encode([7u8; 33]),
            &b64url_encode([7u8; 64]),
        ] {
            private["d"] = d.into();
            assert!(
                SigningKey::from_jwk_json(private.to_string().as_bytes()).is_err(),
                "d = {d}"
            );
        }
        let ec = SigningKey::generate(Algorithm::Es384, "c").unwrap();
        let mut private: Value = serde_json::from_str(&ec.to_private_jwk_json()).unwrap();
        for d in [
            "",
            "AA",
            &b64url_encode([7u8; 49]),
            &b64url_encode([0u8; 48]),
        ] {
            private["d"] = d.into();
            assert!(
                SigningKey::from_jwk_json(private.to_string().as_bytes()).is_err(),
                "d = {d}"
            );
        }
        let rsa: Value = serde_json::from_str(&key.to_private_jwk_json()).unwrap();
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            let mut broken = rsa.clone();
            broken[member] = "AQ".into();
            assert!(
                SigningKey::from_jwk_json(broken.to_string().as_bytes()).is_err(),
                "{member}"
            );
            broken.as_object_mut().unwrap().remove(member);
            assert!(
                SigningKey::from_jwk_json(broken.to_string().as_bytes()).is_err(),
                "{member}"
            );
        }
    }
}
