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
#[cfg(feature = "tooling")]
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rand::SystemRandom;
#[cfg(feature = "tooling")]
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair,
};
use serde_json::{Map, Value};

#[cfg(feature = "tooling")]
use crate::der;
use crate::encoding::{b64url_decode, b64url_encode};
use crate::pin::{sha256, truncate_for_message};

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

/// Elliptic curves for ECDSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Curve::P256 => Algorithm::Es256,
            Curve::P384 => Algorithm::Es384,
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }

    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }

    fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            _ => None,
        }
    }
}

/// Public key material, kept both as JWK members (for thumbprints and output) and parsed
/// (validated once, reused for every verification).
#[derive(Clone)]
enum Material {
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
        key: ParsedPublicKey,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        pkcs1: ParsedPublicKey,
        pss: ParsedPublicKey,
    },
    Ed25519 {
        x: Vec<u8>,
        key: ParsedPublicKey,
    },
}

impl Material {
    fn describe(&self) -> String {
        match self {
            Material::Ec { curve, .. } => format!("EC {}", curve.name()),
            Material::Rsa { n, .. } => format!("RSA {}-bit", bit_len(n)),
            Material::Ed25519 { .. } => "OKP Ed25519".to_owned(),
        }
    }

    fn type_fits(&self, alg: Algorithm) -> bool {
        match self {
            Material::Ec { curve, .. } => curve.algorithm() == alg,
            Material::Rsa { .. } => matches!(alg, Algorithm::Rs256 | Algorithm::Ps256),
            Material::Ed25519 { .. } => alg == Algorithm::EdDsa,
        }
    }

    /// Builds EC material, validating the point.
    fn ec(curve: Curve, x: Vec<u8>, y: Vec<u8>) -> Result<Material, JwkError> {
        let len = curve.coordinate_len();
        if x.len() != len {
            return Err(member_err(
                "x",
                format!(
                    "must be {len} bytes for {}, found {}",
                    curve.name(),
                    x.len()
                ),
            ));
        }
        if y.len() != len {
            return Err(member_err(
                "y",
                format!(
                    "must be {len} bytes for {}, found {}",
                    curve.name(),
                    y.len()
                ),
            ));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let key = ParsedPublicKey::new(curve.verification(), &point)
            .map_err(|e| JwkError::Rejected(format!("EC {} point: {e}", curve.name())))?;
        Ok(Material::Ec { curve, x, y, key })
    }

    /// Builds RSA material (2048 to 8192 bits, as `aws-lc-rs` verifies).
    fn rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Material, JwkError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        if n.is_empty() {
            return Err(member_err("n", "must not be zero"));
        }
        if e.is_empty() {
            return Err(member_err("e", "must not be zero"));
        }
        // e = 1 would make every "signature" trivially forgeable; even exponents are
        // invalid. Same bounds as aws-lc-rs applies to private keys (odd, > 1, <= 33 bits).
        let e_is_odd = e.last().is_some_and(|b| b & 1 == 1);
        if !e_is_odd || bit_len(&e) < 2 || bit_len(&e) > 33 {
            return Err(member_err(
                "e",
                "RSA public exponent must be odd, greater than 1 and at most 33 bits",
            ));
        }
        let bits = bit_len(&n);
        if !(2048..=8192).contains(&bits) {
            return Err(JwkError::Rejected(format!(
                "RSA modulus of {bits} bits (2048 to 8192 required)"
            )));
        }
        let components = PublicKeyComponents {
            n: n.as_slice(),
            e: e.as_slice(),
        };
        let pkcs1 = components
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .map_err(|err| JwkError::Rejected(format!("RSA public key: {err}")))?;
        let pss = components
            .to_parsed_public_key(&signature::RSA_PSS_2048_8192_SHA256)
            .map_err(|err| JwkError::Rejected(format!("RSA public key: {err}")))?;
        Ok(Material::Rsa { n, e, pkcs1, pss })
    }

    fn ed25519(x: Vec<u8>) -> Result<Material, JwkError> {
        if x.len() != 32 {
            return Err(member_err(
                "x",
                format!("must be 32 bytes for Ed25519, found {}", x.len()),
            ));
        }
        let key = ParsedPublicKey::new(&signature::ED25519, &x)
            .map_err(|e| JwkError::Rejected(format!("Ed25519 public key: {e}")))?;
        Ok(Material::Ed25519 { x, key })
    }

    fn parsed_for(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        match (self, alg) {
            (Material::Ec { curve, key, .. }, alg) if curve.algorithm() == alg => Some(key),
            (Material::Rsa { pkcs1, .. }, Algorithm::Rs256) => Some(pkcs1),
            (Material::Rsa { pss, .. }, Algorithm::Ps256) => Some(pss),
            (Material::Ed25519 { key, .. }, Algorithm::EdDsa) => Some(key),
            _ => None,
        }
    }

    /// The exact signature length the algorithm produces with this key.
    fn signature_len(&self) -> usize {
        match self {
            Material::Ec { curve, .. } => 2 * curve.coordinate_len(),
            Material::Rsa { n, .. } => n.len(),
            Material::Ed25519 { .. } => 64,
        }
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn bit_len(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        Some(i) => {
            let first = bytes.get(i).copied().unwrap_or(0);
            (bytes.len() - i - 1) * 8 + (8 - first.leading_zeros() as usize)
        }
        None => 0,
    }
}

/// A trusted public key (a member of the federation's JWKS).
#[derive(Clone)]
pub struct PublicJwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    material: Material,
    thumbprint: String,
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &self.material.describe())
            .field("thumbprint", &self.thumbprint)
            .finish()
    }
}

impl PartialEq for PublicJwk {
    /// Same key material (thumbprint), same kid and same alg.
    fn eq(&self, other: &Self) -> bool {
        self.thumbprint == other.thumbprint && self.kid == other.kid && self.alg == other.alg
    }
}

/// What reading one JWK found besides the key: notes for the operator.
struct ReadJwk {
    key: PublicJwk,
    has_private_part: bool,
}

impl PublicJwk {
    fn new(
        kid: Option<String>,
        alg: Option<Algorithm>,
        material: Material,
    ) -> Result<Self, JwkError> {
        if let Some(alg) = alg
            && !material.type_fits(alg)
        {
            return Err(JwkError::AlgorithmMismatch {
                alg,
                key: material.describe(),
            });
        }
        let thumbprint = thumbprint_of(&material);
        Ok(Self {
            kid,
            alg,
            material,
            thumbprint,
        })
    }

    /// Reads one public JWK (a JSON object). Private members are ignored (only the public
    /// part is kept); keys not meant for signatures (`use` other than `sig`, `key_ops`
    /// without `verify`) and unsupported types are errors.
    pub fn from_json_value(value: &Value) -> Result<PublicJwk, JwkError> {
        read_public_jwk(value).map(|read| read.key)
    }

    /// The key id, if the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The JWK's own `alg` member, if present.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// True if this key can verify `alg` signatures: EC P-256 ↔ ES256, P-384 ↔ ES384,
    /// RSA ↔ RS256/PS256, OKP Ed25519 ↔ EdDSA; a JWK with `alg` fits only that alg.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && self.material.type_fits(alg)
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order
    /// without whitespace, base64url without padding. Lets an operator compare a trust
    /// anchor through a second channel.
    pub fn thumbprint(&self) -> String {
        self.thumbprint.clone()
    }

    /// Verifies a JOSE signature (ECDSA as fixed-length `r||s`) over `message`.
    /// False if the key does not fit `alg` or the signature is wrong.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.fits(alg) || signature.len() != self.material.signature_len() {
            return false;
        }
        self.material
            .parsed_for(alg)
            .is_some_and(|key| key.verify_sig(message, signature).is_ok())
    }

    /// Verifies against a precomputed digest of the signing input (so several candidate
    /// keys or a split signing input cost one hash). Not for EdDSA, which has no
    /// prehashed form: returns false there.
    pub(crate) fn verify_digest(
        &self,
        alg: Algorithm,
        digest: &digest::Digest,
        signature: &[u8],
    ) -> bool {
        if !self.fits(alg)
            || signature.len() != self.material.signature_len()
            || alg.digest_algorithm() != Some(digest.algorithm())
        {
            return false;
        }
        self.material
            .parsed_for(alg)
            .is_some_and(|key| key.verify_digest_sig(digest, signature).is_ok())
    }

    /// The public JWK as JSON: `kty`, `kid`, key members, `alg` (if known) and `use: "sig"`.
    pub fn to_json_value(&self) -> Value {
        let mut map = Map::new();
        let (kty, members) = public_members(&self.material);
        map.insert("kty".into(), kty.into());
        if let Some(kid) = &self.kid {
            map.insert("kid".into(), kid.clone().into());
        }
        for (name, value) in members {
            map.insert(name.into(), value.into());
        }
        if let Some(alg) = self.alg {
            map.insert("alg".into(), alg.name().into());
        }
        map.insert("use".into(), "sig".into());
        Value::Object(map)
    }
}

/// `kty` and the public members in RFC 7638 (lexicographic) order.
fn public_members(material: &Material) -> (&'static str, Vec<(&'static str, String)>) {
    match material {
        Material::Ec { curve, x, y, .. } => (
            "EC",
            vec![
                ("crv", curve.name().to_owned()),
                ("x", b64url_encode(x)),
                ("y", b64url_encode(y)),
            ],
        ),
        Material::Rsa { n, e, .. } => (
            "RSA",
            vec![("e", b64url_encode(e)), ("n", b64url_encode(n))],
        ),
        Material::Ed25519 { x, .. } => (
            "OKP",
            vec![("crv", "Ed25519".to_owned()), ("x", b64url_encode(x))],
        ),
    }
}

fn thumbprint_of(material: &Material) -> String {
    let (kty, members) = public_members(material);
    // Every value is ASCII (base64url or a curve name): no JSON escaping needed, but
    // serialize through serde_json anyway so this stays correct if that ever changes.
    let mut all: Vec<(&str, String)> = members;
    all.push(("kty", kty.to_owned()));
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::from("{");
    for (i, (name, value)) in all.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&Value::from(*name).to_string());
        text.push(':');
        text.push_str(&Value::from(value.as_str()).to_string());
    }
    text.push('}');
    b64url_encode(sha256(text.as_bytes()))
}

fn get_str<'v>(
    obj: &'v Map<String, Value>,
    member: &'static str,
) -> Result<Option<&'v str>, JwkError> {
    match obj.get(member) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(member_err(member, "must be a string")),
    }
}

fn req_str<'v>(obj: &'v Map<String, Value>, member: &'static str) -> Result<&'v str, JwkError> {
    get_str(obj, member)?.ok_or_else(|| member_err(member, "is required"))
}

fn req_bytes(obj: &Map<String, Value>, member: &'static str) -> Result<Vec<u8>, JwkError> {
    let text = req_str(obj, member)?;
    b64url_decode(text).map_err(|_| member_err(member, "is not base64url"))
}

/// Common checks on a JWK object: `kty`, optional `alg`, `use` and `key_ops`.
fn read_public_jwk(value: &Value) -> Result<ReadJwk, JwkError> {
    let Value::Object(obj) = value else {
        return Err(JwkError::Json("a JWK must be a JSON object".into()));
    };
    let kid = get_str(obj, "kid")?.map(str::to_owned);
    if let Some(usage) = get_str(obj, "use")?
        && usage != "sig"
    {
        return Err(JwkError::UnsupportedKey(format!(
            "use {:?} (only \"sig\" keys verify signatures)",
            truncate_for_message(usage)
        )));
    }
    if let Some(ops) = obj.get("key_ops") {
        let Value::Array(ops) = ops else {
            return Err(member_err("key_ops", "must be an array"));
        };
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(JwkError::UnsupportedKey(
                "key_ops does not include \"verify\"".into(),
            ));
        }
    }
    let alg = get_str(obj, "alg")?
        .map(str::parse::<Algorithm>)
        .transpose()?;
    let material = read_material(obj)?;
    let key = PublicJwk::new(kid, alg, material)?;
    Ok(ReadJwk {
        key,
        has_private_part: obj.contains_key("d"),
    })
}

fn read_material(obj: &Map<String, Value>) -> Result<Material, JwkError> {
    let kty = req_str(obj, "kty")?;
    match kty {
        "EC" => {
            let crv = req_str(obj, "crv")?;
            let curve = Curve::from_name(crv).ok_or_else(|| {
                JwkError::UnsupportedKey(format!("EC curve {:?}", truncate_for_message(crv)))
            })?;
            Material::ec(curve, req_bytes(obj, "x")?, req_bytes(obj, "y")?)
        }
        "RSA" => {
            if obj.contains_key("oth") {
                return Err(JwkError::UnsupportedKey("multi-prime RSA (oth)".into()));
            }
            Material::rsa(req_bytes(obj, "n")?, req_bytes(obj, "e")?)
        }
        "OKP" => {
            let crv = req_str(obj, "crv")?;
            if crv != "Ed25519" {
                return Err(JwkError::UnsupportedKey(format!(
                    "OKP curve {:?} (only Ed25519 signs)",
                    truncate_for_message(crv)
                )));
            }
            Material::ed25519(req_bytes(obj, "x")?)
        }
        "oct" => Err(JwkError::UnsupportedKey(
            "kty \"oct\" (symmetric keys are never trusted for metadata)".into(),
        )),
        other => Err(JwkError::UnsupportedKey(format!(
            "kty {:?}",
            truncate_for_message(other)
        ))),
    }
}

/// A JWK Set of usable public signature keys: the federation's trust anchor.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Vec<PublicJwk>,
    skipped: Vec<String>,
}

impl Jwks {
    /// Reads `{"keys":[...]}`. Keys that cannot verify signatures (symmetric, `use: enc`,
    /// unknown type or curve, unsupported alg, invalid material) are skipped with a note in
    /// [`Jwks::skipped`]; a key with private members is used for its public part, with a
    /// warning. Zero usable keys is an error.
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, JwkError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| JwkError::Json(e.to_string()))?;
        let Some(Value::Array(entries)) = value.get("keys") else {
            return Err(JwkError::Json(
                "a JWKS must be an object with a \"keys\" array".into(),
            ));
        };
        let mut jwks = Jwks::default();
        for (i, entry) in entries.iter().enumerate() {
            let label = match entry.get("kid").and_then(Value::as_str) {
                Some(kid) => format!("key {i} (kid {:?})", truncate_for_message(kid)),
                None => format!("key {i}"),
            };
            match read_public_jwk(entry) {
                Ok(read) => {
                    if read.has_private_part {
                        jwks.skipped.push(format!(
                            "{label}: warning: contains private key members; only its public part is used (do not distribute private keys in a trust anchor)"
                        ));
                    }
                    if let Some(kid) = read.key.kid()
                        && jwks.keys.iter().any(|k| k.kid() == Some(kid))
                    {
                        jwks.skipped.push(format!(
                            "{label}: warning: another key has the same kid; both are tried"
                        ));
                    }
                    jwks.keys.push(read.key);
                }
                Err(e) => jwks.skipped.push(format!("{label}: skipped: {e}")),
            }
        }
        if jwks.keys.is_empty() {
            return Err(JwkError::NoUsableKeys(jwks.skipped));
        }
        Ok(jwks)
    }

    /// The usable keys, in file order.
    pub fn keys(&self) -> &[PublicJwk] {
        &self.keys
    }

    /// Human-readable notes on skipped keys and warnings, in file order.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// A set of the given keys (no notes).
    pub fn from_keys(keys: Vec<PublicJwk>) -> Jwks {
        Jwks {
            keys,
            skipped: Vec::new(),
        }
    }

    /// Pretty JSON `{"keys":[...]}` of the public keys, for publishing a trust anchor.
    pub fn to_json(&self) -> String {
        let keys: Vec<Value> = self.keys.iter().map(PublicJwk::to_json_value).collect();
        let mut map = Map::new();
        map.insert("keys".into(), Value::Array(keys));
        serde_json::to_string_pretty(&Value::Object(map)).unwrap_or_default()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
    }
}
