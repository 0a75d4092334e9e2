//! Private signing keys: generating, importing and exporting private JWKs, and signing.

use std::fmt;

#[cfg(feature = "tooling")]
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rand::SystemRandom;
#[cfg(feature = "tooling")]
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Map, Value};

#[cfg(feature = "tooling")]
use crate::der;
use crate::encoding::b64url_encode;

#[cfg(feature = "tooling")]
use super::material::strip_leading_zeros;
use super::material::{Curve, Material};
use super::public::{PublicJwk, public_members, read_public_jwk, req_bytes};
use super::{Algorithm, JwkError, member_err};

enum PrivateKey {
    Ec(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key with its JOSE alg and kid: the federation operator's, or a server's
/// that issues tokens.
pub struct SigningKey {
    key: PrivateKey,
    alg: Algorithm,
    kid: String,
    public: PublicJwk,
    /// The private JWK members (base64url), for [`SigningKey::to_private_jwk_json`].
    private_members: Vec<(&'static str, String)>,
}

impl fmt::Debug for SigningKey {
    /// Never shows private material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("thumbprint", &self.public.thumbprint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key for `alg` (EC P-256/P-384, Ed25519, or 2048-bit RSA for
    /// RS256/PS256). Key generation is operator tooling: it needs the `tooling` feature.
    #[cfg(feature = "tooling")]
    pub fn generate(alg: Algorithm, kid: &str) -> Result<SigningKey, JwkError> {
        match alg {
            Algorithm::Es256 | Algorithm::Es384 => {
                let curve = if alg == Algorithm::Es256 {
                    Curve::P256
                } else {
                    Curve::P384
                };
                let pair = EcdsaKeyPair::generate(curve.signing())
                    .map_err(|_| JwkError::Crypto("EC key generation"))?;
                let d = pair
                    .private_key()
                    .as_be_bytes()
                    .map_err(|_| JwkError::Crypto("EC private key export"))?;
                let d = d.as_ref().to_vec();
                Self::from_ec_pair(pair, curve, alg, kid.to_owned(), &d)
            }
            Algorithm::EdDsa => {
                let pair = Ed25519KeyPair::generate()
                    .map_err(|_| JwkError::Crypto("Ed25519 key generation"))?;
                let seed = pair
                    .seed()
                    .and_then(|s| s.as_be_bytes())
                    .map_err(|_| JwkError::Crypto("Ed25519 seed export"))?;
                let seed = seed.as_ref().to_vec();
                Self::from_ed_pair(pair, alg, kid.to_owned(), &seed)
            }
            Algorithm::Rs256 | Algorithm::Ps256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| JwkError::Crypto("RSA key generation"))?;
                let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                    .map_err(|_| JwkError::Crypto("RSA private key export"))?;
                let parts = rsa_parts_from_pkcs8(pkcs8.as_ref())?;
                Self::from_rsa_parts(pair, alg, kid.to_owned(), parts)
            }
        }
    }

    fn from_ec_pair(
        pair: EcdsaKeyPair,
        curve: Curve,
        alg: Algorithm,
        kid: String,
        d: &[u8],
    ) -> Result<SigningKey, JwkError> {
        let point = pair.public_key().as_ref();
        let len = curve.coordinate_len();
        let (x, y) = match point.split_first() {
            Some((0x04, rest)) if rest.len() == 2 * len => rest.split_at(len),
            _ => return Err(JwkError::Crypto("unexpected EC public key encoding")),
        };
        let material = Material::ec(curve, x.to_vec(), y.to_vec())?;
        let public = PublicJwk::new(Some(kid.clone()), Some(alg), material)?;
        Ok(SigningKey {
            key: PrivateKey::Ec(pair),
            alg,
            kid,
            public,
            private_members: vec![("d", b64url_encode(d))],
        })
    }

    fn from_ed_pair(
        pair: Ed25519KeyPair,
        alg: Algorithm,
        kid: String,
        seed: &[u8],
    ) -> Result<SigningKey, JwkError> {
        let material = Material::ed25519(pair.public_key().as_ref().to_vec())?;
        let public = PublicJwk::new(Some(kid.clone()), Some(alg), material)?;
        Ok(SigningKey {
            key: PrivateKey::Ed25519(pair),
            alg,
            kid,
            public,
            private_members: vec![("d", b64url_encode(seed))],
        })
    }

    fn from_rsa_parts(
        pair: RsaKeyPair,
        alg: Algorithm,
        kid: String,
        parts: RsaParts,
    ) -> Result<SigningKey, JwkError> {
        let material = Material::rsa(parts.n, parts.e)?;
        let public = PublicJwk::new(Some(kid.clone()), Some(alg), material)?;
        let private_members = vec![
            ("d", b64url_encode(&parts.d)),
            ("p", b64url_encode(&parts.p)),
            ("q", b64url_encode(&parts.q)),
            ("dp", b64url_encode(&parts.dp)),
            ("dq", b64url_encode(&parts.dq)),
            ("qi", b64url_encode(&parts.qi)),
        ];
        Ok(SigningKey {
            key: PrivateKey::Rsa(pair),
            alg,
            kid,
            public,
            private_members,
        })
    }

    /// Reads a private JWK: EC (`d`,`x`,`y`), OKP Ed25519 (`d`,`x`) or RSA
    /// (`n`,`e`,`d`,`p`,`q`,`dp`,`dq`,`qi`). The alg is the JWK's `alg`, else inferred
    /// (P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA, RSA → RS256). Without `kid`, the
    /// RFC 7638 thumbprint is used as kid.
    pub fn from_jwk_json(bytes: &[u8]) -> Result<SigningKey, JwkError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| JwkError::Json(e.to_string()))?;
        let read = read_public_jwk(&value)?;
        let Value::Object(obj) = &value else {
            return Err(JwkError::Json("a JWK must be a JSON object".into()));
        };
        if !obj.contains_key("d") {
            return Err(JwkError::NotPrivate);
        }
        let public = read.key;
        let alg = match public.alg {
            Some(alg) => alg,
            None => match &public.material {
                Material::Ec { curve, .. } => curve.algorithm(),
                Material::Rsa { .. } => Algorithm::Rs256,
                Material::Ed25519 { .. } => Algorithm::EdDsa,
            },
        };
        let kid = public
            .kid
            .clone()
            .unwrap_or_else(|| public.thumbprint.clone());
        match &public.material {
            Material::Ec { curve, x, y, .. } => {
                let mut d = req_bytes(obj, "d")?;
                let len = curve.coordinate_len();
                if d.len() > len {
                    return Err(member_err("d", format!("longer than {len} bytes")));
                }
                // Left-pad a short encoding to the fixed length aws-lc-rs expects.
                let mut padded = vec![0u8; len - d.len()];
                padded.append(&mut d);
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let pair =
                    EcdsaKeyPair::from_private_key_and_public_key(curve.signing(), &padded, &point)
                        .map_err(|e| JwkError::Rejected(format!("EC private key: {e}")))?;
                Self::from_ec_pair(pair, *curve, alg, kid, &padded)
            }
            Material::Ed25519 { x, .. } => {
                let d = req_bytes(obj, "d")?;
                if d.len() != 32 {
                    return Err(member_err(
                        "d",
                        format!("must be 32 bytes for Ed25519, found {}", d.len()),
                    ));
                }
                let pair = Ed25519KeyPair::from_seed_and_public_key(&d, x)
                    .map_err(|e| JwkError::Rejected(format!("Ed25519 private key: {e}")))?;
                Self::from_ed_pair(pair, alg, kid, &d)
            }
            Material::Rsa { n, e, .. } => {
                let parts = RsaParts {
                    n: n.clone(),
                    e: e.clone(),
                    d: req_bytes(obj, "d")?,
                    p: req_bytes(obj, "p")?,
                    q: req_bytes(obj, "q")?,
                    dp: req_bytes(obj, "dp")?,
                    dq: req_bytes(obj, "dq")?,
                    qi: req_bytes(obj, "qi")?,
                };
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents {
                        n: parts.n.as_slice(),
                        e: parts.e.as_slice(),
                    },
                    d: parts.d.as_slice(),
                    p: parts.p.as_slice(),
                    q: parts.q.as_slice(),
                    dP: parts.dp.as_slice(),
                    dQ: parts.dq.as_slice(),
                    qInv: parts.qi.as_slice(),
                };
                let pair = RsaKeyPair::from_components(&components)
                    .map_err(|e| JwkError::Rejected(format!("RSA private key: {e}")))?;
                Self::from_rsa_parts(pair, alg, kid, parts)
            }
        }
    }

    /// The private JWK as pretty JSON (`kty`, `kid`, `alg`, `use: "sig"` and the key
    /// members); reads back with [`SigningKey::from_jwk_json`]. Keep it secret.
    pub fn to_private_jwk_json(&self) -> String {
        let mut map = Map::new();
        let (kty, members) = public_members(&self.public.material);
        map.insert("kty".into(), kty.into());
        map.insert("kid".into(), self.kid.clone().into());
        map.insert("alg".into(), self.alg.name().into());
        map.insert("use".into(), "sig".into());
        for (name, value) in members
            .into_iter()
            .chain(self.private_members.iter().cloned())
        {
            map.insert(name.into(), value.into());
        }
        serde_json::to_string_pretty(&Value::Object(map)).unwrap_or_default()
    }

    /// The public half, with this key's kid and alg.
    pub fn public_jwk(&self) -> PublicJwk {
        self.public.clone()
    }

    /// The alg this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id put in protected headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `message`, returning the JOSE signature bytes (ECDSA as fixed `r||s`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JwkError> {
        match &self.key {
            PrivateKey::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JwkError::Crypto("ECDSA signing")),
            PrivateKey::Ed25519(pair) => pair
                .try_sign(message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JwkError::Crypto("Ed25519 signing")),
            PrivateKey::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut out)
                    .map_err(|_| JwkError::Crypto("RSA signing"))?;
                Ok(out)
            }
        }
    }
}

/// RSA key components, big-endian without leading zeros.
struct RsaParts {
    n: Vec<u8>,
    e: Vec<u8>,
    d: Vec<u8>,
    p: Vec<u8>,
    q: Vec<u8>,
    dp: Vec<u8>,
    dq: Vec<u8>,
    qi: Vec<u8>,
}

/// Extracts the RSAPrivateKey (RFC 8017 A.1.2) components from a PKCS#8 PrivateKeyInfo.
#[cfg(feature = "tooling")]
fn rsa_parts_from_pkcs8(pkcs8: &[u8]) -> Result<RsaParts, JwkError> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    let bad = |e: der::DerError| JwkError::Rejected(format!("PKCS#8 RSA key: {e}"));
    let mut top = der::Reader::new(pkcs8);
    let info = top.expect(SEQUENCE, "PrivateKeyInfo").map_err(bad)?;
    let mut info = top.enter(&info);
    info.expect(INTEGER, "version").map_err(bad)?;
    info.expect(SEQUENCE, "privateKeyAlgorithm").map_err(bad)?;
    let octets = info.expect(OCTET_STRING, "privateKey").map_err(bad)?;
    let mut inner = der::Reader::new(octets.contents);
    let rsa = inner.expect(SEQUENCE, "RSAPrivateKey").map_err(bad)?;
    let mut rsa = inner.enter(&rsa);
    let mut next = || -> Result<Vec<u8>, JwkError> {
        let element = rsa.expect(INTEGER, "RSAPrivateKey INTEGER").map_err(bad)?;
        Ok(strip_leading_zeros(element.contents.to_vec()))
    };
    let _version = next()?;
    Ok(RsaParts {
        n: next()?,
        e: next()?,
        d: next()?,
        p: next()?,
        q: next()?,
        dp: next()?,
        dq: next()?,
        qi: next()?,
    })
}
