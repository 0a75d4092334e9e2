//! One trusted public JWK: reading it from JSON, verifying with it, its thumbprint and its
//! JSON form.

use std::fmt;

use aws_lc_rs::digest;
use serde_json::{Map, Value};

use crate::encoding::{b64url_decode, b64url_encode};
use crate::pin::{sha256, truncate_for_message};

use super::material::{Curve, Material};
use super::{Algorithm, JwkError, member_err};

/// A trusted public key (a member of the federation's JWKS).
#[derive(Clone)]
pub struct PublicJwk {
    pub(super) kid: Option<String>,
    pub(super) alg: Option<Algorithm>,
    pub(super) material: Material,
    pub(super) thumbprint: String,
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
pub(super) struct ReadJwk {
    pub(super) key: PublicJwk,
    pub(super) has_private_part: bool,
}

impl PublicJwk {
    pub(super) fn new(
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
pub(super) fn public_members(material: &Material) -> (&'static str, Vec<(&'static str, String)>) {
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

pub(super) fn get_str<'v>(
    obj: &'v Map<String, Value>,
    member: &'static str,
) -> Result<Option<&'v str>, JwkError> {
    match obj.get(member) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(member_err(member, "must be a string")),
    }
}

pub(super) fn req_str<'v>(
    obj: &'v Map<String, Value>,
    member: &'static str,
) -> Result<&'v str, JwkError> {
    get_str(obj, member)?.ok_or_else(|| member_err(member, "is required"))
}

pub(super) fn req_bytes(
    obj: &Map<String, Value>,
    member: &'static str,
) -> Result<Vec<u8>, JwkError> {
    let text = req_str(obj, member)?;
    b64url_decode(text).map_err(|_| member_err(member, "is not base64url"))
}

/// Common checks on a JWK object: `kty`, optional `alg`, `use` and `key_ops`.
pub(super) fn read_public_jwk(value: &Value) -> Result<ReadJwk, JwkError> {
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

pub(super) fn read_material(obj: &Map<String, Value>) -> Result<Material, JwkError> {
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
