//! Public key material: curves, validated EC/RSA/Ed25519 members and their parsed form.

use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self, ParsedPublicKey};

use super::{Algorithm, JwkError, member_err};

/// Elliptic curves for ECDSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Curve {
    P256,
    P384,
}

impl Curve {
    pub(super) fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }

    pub(super) fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    pub(super) fn algorithm(self) -> Algorithm {
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

    pub(super) fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Curve> {
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
pub(super) enum Material {
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
    pub(super) fn describe(&self) -> String {
        match self {
            Material::Ec { curve, .. } => format!("EC {}", curve.name()),
            Material::Rsa { n, .. } => format!("RSA {}-bit", bit_len(n)),
            Material::Ed25519 { .. } => "OKP Ed25519".to_owned(),
        }
    }

    pub(super) fn type_fits(&self, alg: Algorithm) -> bool {
        match self {
            Material::Ec { curve, .. } => curve.algorithm() == alg,
            Material::Rsa { .. } => matches!(alg, Algorithm::Rs256 | Algorithm::Ps256),
            Material::Ed25519 { .. } => alg == Algorithm::EdDsa,
        }
    }

    /// Builds EC material, validating the point.
    pub(super) fn ec(curve: Curve, x: Vec<u8>, y: Vec<u8>) -> Result<Material, JwkError> {
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
    pub(super) fn rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Material, JwkError> {
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

    pub(super) fn ed25519(x: Vec<u8>) -> Result<Material, JwkError> {
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

    pub(super) fn parsed_for(&self, alg: Algorithm) -> Option<&ParsedPublicKey> {
        match (self, alg) {
            (Material::Ec { curve, key, .. }, alg) if curve.algorithm() == alg => Some(key),
            (Material::Rsa { pkcs1, .. }, Algorithm::Rs256) => Some(pkcs1),
            (Material::Rsa { pss, .. }, Algorithm::Ps256) => Some(pss),
            (Material::Ed25519 { key, .. }, Algorithm::EdDsa) => Some(key),
            _ => None,
        }
    }

    /// The exact signature length the algorithm produces with this key.
    pub(super) fn signature_len(&self) -> usize {
        match self {
            Material::Ec { curve, .. } => 2 * curve.coordinate_len(),
            Material::Rsa { n, .. } => n.len(),
            Material::Ed25519 { .. } => 64,
        }
    }
}

pub(super) fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

pub(super) fn bit_len(bytes: &[u8]) -> usize {
    match bytes.iter().position(|b| *b != 0) {
        Some(i) => {
            let first = bytes.get(i).copied().unwrap_or(0);
            (bytes.len() - i - 1) * 8 + (8 - first.leading_zeros() as usize)
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
    }
}
