//! Certificate inspection for the member-side tools (lint, entity generation, `fedtls cert`):
//! names, validity, key type and size, pins, and signature checks with aws-lc-rs.
//!
//! This is not a path validator. It answers the questions metadata authors and the federation
//! operator ask: what is this certificate, is it a CA or self-signed, is its algorithm sane,
//! and did that issuer sign it.

use std::fmt;
use std::net::IpAddr;

use aws_lc_rs::signature::{self, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::pin::{CertThumbprint, Pin};

/// What could not be read or verified in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X509Error {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    Parse(String),
    /// Bytes follow the certificate's outer SEQUENCE.
    #[error("{0} unexpected bytes after the end of the DER certificate")]
    TrailingData(usize),
    /// A field of the certificate is malformed (named in the message).
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// The issuer name of the child is not the subject name of the candidate issuer.
    #[error(
        "the certificate's issuer name ({child_issuer}) is not the subject name ({issuer_subject}) of the given issuer certificate"
    )]
    NameMismatch {
        /// The child's issuer name.
        child_issuer: String,
        /// The candidate issuer's subject name.
        issuer_subject: String,
    },
    /// The signature algorithm or the signer's key type is not one this crate verifies.
    #[error("cannot verify a {algorithm} signature made with a {key} key")]
    UnsupportedAlgorithm {
        /// The signature algorithm of the child certificate.
        algorithm: String,
        /// The signer's key type.
        key: String,
    },
    /// The signature uses a broken hash (MD5, SHA-1) and is refused.
    #[error("refusing the {0} signature: MD5 and SHA-1 signatures are forgeable")]
    WeakAlgorithm(String),
    /// The signature does not verify with the issuer's public key.
    #[error("the signature does not verify with the issuer's public key")]
    BadSignature,
}

/// The public key of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyInfo {
    /// An elliptic-curve key; `curve` is `P-256`, `P-384`, `P-521`, `secp256k1` or the
    /// dotted OID of another curve.
    Ec {
        /// The named curve.
        curve: String,
    },
    /// An RSA key with a modulus of `bits` bits.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// An Ed25519 key.
    Ed25519,
    /// Any other key type (its name, or its algorithm OID in dotted form).
    Other(String),
}

impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ec { curve } => write!(f, "EC {curve}"),
            Self::Rsa { bits } => write!(f, "RSA {bits}"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// What [`inspect`] found in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject name, `CN=…, O=…` in certificate order.
    pub subject: String,
    /// The DER encoding of the subject name (compare these, not the display strings).
    pub subject_der: Vec<u8>,
    /// The issuer name, displayed like `subject`.
    pub issuer: String,
    /// The DER encoding of the issuer name.
    pub issuer_der: Vec<u8>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// The basicConstraints extension says `cA: TRUE`.
    pub is_ca: bool,
    /// Subject and issuer names are byte-for-byte equal.
    pub self_issued: bool,
    /// Self-issued and the signature verifies with the certificate's own key. Legacy SHA-1 RSA
    /// signatures count here (so a old root is described truthfully); [`signature_is_sane`]
    /// flags them.
    pub self_signed: bool,
    /// The signature algorithm, e.g. `ecdsa-with-SHA256`, `sha256WithRSAEncryption`,
    /// `rsassaPss-SHA256`, `Ed25519`, or a dotted OID.
    pub signature_algorithm: String,
    /// The subject public key.
    pub key: KeyInfo,
    /// The RFC 7469 SPKI pin, as metadata lists it.
    pub pin: Pin,
    /// The RFC 8705 thumbprint of the whole certificate.
    pub thumbprint: CertThumbprint,
    /// DNS names from the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// IP addresses from the subjectAltName extension.
    pub ip_addresses: Vec<IpAddr>,
}

/// Parses a DER certificate and describes it.
pub fn inspect(cert_der: &[u8]) -> Result<CertInfo, X509Error> {
    let cert = parse(cert_der)?;
    let tbs = &cert.tbs_certificate;

    let is_ca = tbs
        .basic_constraints()
        .map_err(|e| X509Error::Malformed(format!("basicConstraints extension: {e}")))?
        .is_some_and(|bc| bc.value.ca);

    let subject_der = tbs.subject.as_raw().to_vec();
    let issuer_der = tbs.issuer.as_raw().to_vec();
    let self_issued = subject_der == issuer_der;
    let self_signed = self_issued && verify_with(&cert, tbs.public_key(), true).is_ok();

    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let san = tbs
        .subject_alternative_name()
        .map_err(|e| X509Error::Malformed(format!("subjectAltName extension: {e}")))?;
    if let Some(san) = san {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }

    Ok(CertInfo {
        subject: tbs.subject.to_string(),
        subject_der,
        issuer: tbs.issuer.to_string(),
        issuer_der,
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        is_ca,
        self_issued,
        self_signed,
        signature_algorithm: signature_algorithm_name(&cert.signature_algorithm),
        key: key_info(tbs.public_key())?,
        pin: Pin::of_spki(tbs.public_key().raw),
        thumbprint: CertThumbprint::of_certificate(cert_der),
        dns_names,
        ip_addresses,
    })
}

/// Why [`signature_is_sane`] refuses a certificate's signature algorithm or key; the
/// message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnacceptableCrypto {
    /// An MD2, MD4 or MD5 signature (the algorithm's name is given).
    #[error(
        "signed with {0}: MD5 signatures are forgeable; reissue the certificate with a SHA-256 signature"
    )]
    Md5Signature(String),
    /// A SHA-1 signature (the algorithm's name is given).
    #[error(
        "signed with {0}: SHA-1 signatures are forgeable and refused by current TLS stacks; reissue the certificate with a SHA-256 signature"
    )]
    Sha1Signature(String),
    /// Another signature algorithm the federation's TLS stacks do not accept.
    #[error(
        "signed with {0}, which is not a supported signature algorithm; use ecdsa-with-SHA256 (recommended), sha256WithRSAEncryption or Ed25519"
    )]
    UnsupportedSignature(String),
    /// An RSA key shorter than 2048 bits (its size is given).
    #[error("RSA key of {0} bits is too small: use at least 2048 bits, or an EC P-256 key")]
    SmallRsaKey(u32),
    /// An EC key on a curve other than P-256, P-384 or P-521.
    #[error(
        "EC key on curve {0}, which TLS peers do not support: use P-256 (recommended) or P-384"
    )]
    UnsupportedCurve(String),
    /// A key type other than EC, RSA or Ed25519.
    #[error(
        "{0} public key is not supported by the federation's TLS stacks: use EC P-256 (recommended), RSA 2048+ or Ed25519"
    )]
    UnsupportedKey(String),
}

/// Checks that a certificate's signature algorithm and key are ones the federation's TLS
/// stacks accept: no MD5 or SHA-1 signature, RSA keys of at least 2048 bits, EC keys on
/// P-256, P-384 or P-521, or Ed25519. The error explains what is wrong and what to do.
pub fn signature_is_sane(info: &CertInfo) -> Result<(), UnacceptableCrypto> {
    let alg = info.signature_algorithm.as_str();
    let lower = alg.to_ascii_lowercase();
    if ["md2", "md4", "md5"].iter().any(|h| lower.contains(h)) {
        return Err(UnacceptableCrypto::Md5Signature(alg.to_owned()));
    }
    if lower.contains("sha1") {
        return Err(UnacceptableCrypto::Sha1Signature(alg.to_owned()));
    }
    const GOOD: [&str; 11] = [
        "ecdsa-with-SHA256",
        "ecdsa-with-SHA384",
        "ecdsa-with-SHA512",
        "sha256WithRSAEncryption",
        "sha384WithRSAEncryption",
        "sha512WithRSAEncryption",
        "rsassaPss-SHA256",
        "rsassaPss-SHA384",
        "rsassaPss-SHA512",
        "Ed25519",
        "Ed448",
    ];
    if !GOOD.contains(&alg) {
        return Err(UnacceptableCrypto::UnsupportedSignature(alg.to_owned()));
    }
    match &info.key {
        KeyInfo::Rsa { bits } if *bits < 2048 => Err(UnacceptableCrypto::SmallRsaKey(*bits)),
        KeyInfo::Rsa { .. } | KeyInfo::Ed25519 => Ok(()),
        KeyInfo::Ec { curve } if ["P-256", "P-384", "P-521"].contains(&curve.as_str()) => Ok(()),
        KeyInfo::Ec { curve } => Err(UnacceptableCrypto::UnsupportedCurve(curve.clone())),
        KeyInfo::Other(name) => Err(UnacceptableCrypto::UnsupportedKey(name.clone())),
    }
}

/// Checks that `issuer_der` issued `child_der`: the child's issuer name equals the issuer's
/// subject name and the child's signature verifies with the issuer's public key (aws-lc-rs).
///
/// MD5 and SHA-1 signatures are refused with [`X509Error::WeakAlgorithm`]. Validity periods
/// and CA flags are not checked here.
pub fn verify_signed_by(child_der: &[u8], issuer_der: &[u8]) -> Result<(), X509Error> {
    let child = parse(child_der)?;
    let issuer = parse(issuer_der)?;
    if child.tbs_certificate.issuer.as_raw() != issuer.tbs_certificate.subject.as_raw() {
        return Err(X509Error::NameMismatch {
            child_issuer: child.tbs_certificate.issuer.to_string(),
            issuer_subject: issuer.tbs_certificate.subject.to_string(),
        });
    }
    verify_with(&child, issuer.tbs_certificate.public_key(), false)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, X509Error> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| X509Error::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(X509Error::TrailingData(rest.len()));
    }
    Ok(cert)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
}

// Object identifiers, dotted.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const ED25519: &str = "1.3.101.112";
const ED448: &str = "1.3.101.113";
const DSA: &str = "1.2.840.10040.4.1";

fn hash_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.3.14.3.2.26" => "SHA1",
        "2.16.840.1.101.3.4.2.4" => "SHA224",
        "2.16.840.1.101.3.4.2.1" => "SHA256",
        "2.16.840.1.101.3.4.2.2" => "SHA384",
        "2.16.840.1.101.3.4.2.3" => "SHA512",
        _ => return None,
    })
}

fn signature_algorithm_name(alg: &AlgorithmIdentifier<'_>) -> String {
    let oid = alg.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSA",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        ED25519 => "Ed25519",
        ED448 => "Ed448",
        RSASSA_PSS => {
            return match pss_hash(alg) {
                Some(hash) => format!("rsassaPss-{hash}"),
                None => "rsassaPss-unknown-hash".to_owned(),
            };
        }
        _ => return oid,
    };
    name.to_owned()
}

/// The hash of RSASSA-PSS parameters (SHA-1 when absent, per RFC 4055).
fn pss_hash(alg: &AlgorithmIdentifier<'_>) -> Option<&'static str> {
    let params = alg.parameters.as_ref()?;
    let params = RsaSsaPssParams::try_from(params).ok()?;
    hash_name(&params.hash_algorithm_oid().to_id_string())
}

fn curve_name(spki: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    let oid = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
    let oid = oid.to_id_string();
    Some(
        match oid.as_str() {
            "1.2.840.10045.3.1.7" => "P-256",
            "1.3.132.0.34" => "P-384",
            "1.3.132.0.35" => "P-521",
            "1.3.132.0.10" => "secp256k1",
            _ => return Some(oid),
        }
        .to_owned(),
    )
}

fn key_info(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyInfo, X509Error> {
    let oid = spki.algorithm.algorithm.to_id_string();
    Ok(match oid.as_str() {
        RSA_ENCRYPTION | RSASSA_PSS => KeyInfo::Rsa {
            bits: rsa_bits(spki.subject_public_key.data.as_ref())?,
        },
        EC_PUBLIC_KEY => KeyInfo::Ec {
            curve: curve_name(spki).ok_or_else(|| {
                X509Error::Malformed("EC public key without a named curve".to_owned())
            })?,
        },
        ED25519 => KeyInfo::Ed25519,
        ED448 => KeyInfo::Other("Ed448".to_owned()),
        DSA => KeyInfo::Other("DSA".to_owned()),
        _ => KeyInfo::Other(oid),
    })
}

/// Modulus size of a DER RSAPublicKey.
fn rsa_bits(rsa_public_key: &[u8]) -> Result<u32, X509Error> {
    let bad = || X509Error::Malformed("RSA public key is not a DER RSAPublicKey".to_owned());
    let mut outer = crate::der::Reader::new(rsa_public_key);
    let seq = outer
        .expect(0x30, "RSAPublicKey SEQUENCE")
        .map_err(|_| bad())?;
    let mut inner = outer.enter(&seq);
    let modulus = inner.expect(0x02, "modulus INTEGER").map_err(|_| bad())?;
    let digits: &[u8] = {
        let start = modulus
            .contents
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(modulus.contents.len());
        modulus.contents.get(start..).unwrap_or_default()
    };
    let Some(&first) = digits.first() else {
        return Err(bad());
    };
    let bits = digits.len().saturating_mul(8) - first.leading_zeros() as usize;
    u32::try_from(bits).map_err(|_| bad())
}

/// Verifies `cert`'s signature with `signer`. With `allow_legacy`, SHA-1 RSA and ECDSA
/// signatures are checked too (for describing old roots); otherwise they are refused.
fn verify_with(
    cert: &X509Certificate<'_>,
    signer: &SubjectPublicKeyInfo<'_>,
    allow_legacy: bool,
) -> Result<(), X509Error> {
    if cert.signature_algorithm.algorithm != cert.tbs_certificate.signature.algorithm {
        return Err(X509Error::Malformed(
            "the signature algorithm inside the signed part differs from the outer one".to_owned(),
        ));
    }
    let algorithm = signature_algorithm_name(&cert.signature_algorithm);
    let key_oid = signer.algorithm.algorithm.to_id_string();
    let curve = curve_name(signer);
    let unsupported = || X509Error::UnsupportedAlgorithm {
        algorithm: algorithm.clone(),
        key: match &curve {
            Some(curve) if key_oid == EC_PUBLIC_KEY => format!("EC {curve}"),
            _ => key_info(signer).map_or_else(|_| key_oid.clone(), |k| k.to_string()),
        },
    };
    let is_rsa_key = key_oid == RSA_ENCRYPTION || key_oid == RSASSA_PSS;
    let is_legacy = algorithm.to_ascii_lowercase().contains("sha1")
        || algorithm.to_ascii_lowercase().starts_with("md");
    if is_legacy && !allow_legacy {
        return Err(X509Error::WeakAlgorithm(algorithm));
    }

    let verifier: &'static dyn VerificationAlgorithm = match algorithm.as_str() {
        "sha1WithRSAEncryption" | "sha1WithRSA" if is_rsa_key => {
            &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        "sha256WithRSAEncryption" if is_rsa_key => &signature::RSA_PKCS1_2048_8192_SHA256,
        "sha384WithRSAEncryption" if is_rsa_key => &signature::RSA_PKCS1_2048_8192_SHA384,
        "sha512WithRSAEncryption" if is_rsa_key => &signature::RSA_PKCS1_2048_8192_SHA512,
        "rsassaPss-SHA256" if is_rsa_key => &signature::RSA_PSS_2048_8192_SHA256,
        "rsassaPss-SHA384" if is_rsa_key => &signature::RSA_PSS_2048_8192_SHA384,
        "rsassaPss-SHA512" if is_rsa_key => &signature::RSA_PSS_2048_8192_SHA512,
        "Ed25519" if key_oid == ED25519 => &signature::ED25519,
        ecdsa if key_oid == EC_PUBLIC_KEY => match (curve.as_deref().unwrap_or_default(), ecdsa) {
            ("P-256", "ecdsa-with-SHA1") => &signature::ECDSA_P256_SHA1_ASN1,
            ("P-256", "ecdsa-with-SHA256") => &signature::ECDSA_P256_SHA256_ASN1,
            ("P-256", "ecdsa-with-SHA384") => &signature::ECDSA_P256_SHA384_ASN1,
            ("P-256", "ecdsa-with-SHA512") => &signature::ECDSA_P256_SHA512_ASN1,
            ("P-384", "ecdsa-with-SHA256") => &signature::ECDSA_P384_SHA256_ASN1,
            ("P-384", "ecdsa-with-SHA384") => &signature::ECDSA_P384_SHA384_ASN1,
            ("P-384", "ecdsa-with-SHA512") => &signature::ECDSA_P384_SHA512_ASN1,
            ("P-521", "ecdsa-with-SHA1") => &signature::ECDSA_P521_SHA1_ASN1,
            ("P-521", "ecdsa-with-SHA256") => &signature::ECDSA_P521_SHA256_ASN1,
            ("P-521", "ecdsa-with-SHA384") => &signature::ECDSA_P521_SHA384_ASN1,
            ("P-521", "ecdsa-with-SHA512") => &signature::ECDSA_P521_SHA512_ASN1,
            _ => return Err(unsupported()),
        },
        _ => return Err(unsupported()),
    };
    if cert.signature_value.unused_bits != 0 {
        return Err(X509Error::BadSignature);
    }
    signature::UnparsedPublicKey::new(verifier, signer.subject_public_key.data.as_ref())
        .verify(
            cert.tbs_certificate.as_ref(),
            cert.signature_value.data.as_ref(),
        )
        .map_err(|_| X509Error::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn self_signed(alg: &'static rcgen::SignatureAlgorithm) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::new(vec!["leaf.example".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        (params.self_signed(&key).unwrap(), key)
    }

    #[test]
    fn describes_self_signed_ec_leaf() {
        let (cert, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let info = inspect(cert.der()).unwrap();
        assert!(info.self_issued && info.self_signed && !info.is_ca);
        assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(
            info.key,
            KeyInfo::Ec {
                curve: "P-256".into()
            }
        );
        assert_eq!(info.dns_names, vec!["leaf.example".to_owned()]);
        assert_eq!(
            info.ip_addresses,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(info.pin, Pin::of_certificate(cert.der()).unwrap());
        assert_eq!(info.thumbprint, CertThumbprint::of_certificate(cert.der()));
        assert!(signature_is_sane(&info).is_ok());
        verify_signed_by(cert.der(), cert.der()).unwrap();
    }

    #[test]
    fn describes_p384_ed25519_and_rsa() {
        let (p384, _) = self_signed(&rcgen::PKCS_ECDSA_P384_SHA384);
        let info = inspect(p384.der()).unwrap();
        assert_eq!(
            info.key,
            KeyInfo::Ec {
                curve: "P-384".into()
            }
        );
        assert_eq!(info.signature_algorithm, "ecdsa-with-SHA384");
        assert!(info.self_signed);

        let (ed, _) = self_signed(&rcgen::PKCS_ED25519);
        let info = inspect(ed.der()).unwrap();
        assert_eq!(info.key, KeyInfo::Ed25519);
        assert_eq!(info.signature_algorithm, "Ed25519");
        assert!(info.self_signed);

        let key =
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let rsa = CertificateParams::new(vec!["rsa.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let info = inspect(rsa.der()).unwrap();
        assert_eq!(info.key, KeyInfo::Rsa { bits: 2048 });
        assert_eq!(info.signature_algorithm, "sha256WithRSAEncryption");
        assert!(info.self_signed);
        assert!(signature_is_sane(&info).is_ok());
    }

    #[test]
    fn ca_and_leaf() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Root CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["leaf.example".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();

        let ca_info = inspect(ca.der()).unwrap();
        assert!(ca_info.is_ca && ca_info.self_signed);
        assert_eq!(ca_info.subject, "CN=Test Root CA");
        let leaf_info = inspect(leaf.der()).unwrap();
        assert!(!leaf_info.is_ca && !leaf_info.self_issued && !leaf_info.self_signed);
        assert_eq!(leaf_info.issuer_der, ca_info.subject_der);

        verify_signed_by(leaf.der(), ca.der()).unwrap();
        assert!(matches!(
            verify_signed_by(ca.der(), leaf.der()),
            Err(X509Error::NameMismatch { .. })
        ));

        // Same name, other key: the signature must not verify.
        let rogue_key = KeyPair::generate().unwrap();
        let mut rogue_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        rogue_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Root CA");
        rogue_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let rogue = rogue_params.self_signed(&rogue_key).unwrap();
        assert_eq!(
            verify_signed_by(leaf.der(), rogue.der()),
            Err(X509Error::BadSignature)
        );
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors() {
        assert!(matches!(inspect(b""), Err(X509Error::Parse(_))));
        assert!(inspect(b"\x30\x03\x02\x01\x00").is_err());
        let (cert, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut der = cert.der().to_vec();
        der.push(0);
        assert_eq!(inspect(&der), Err(X509Error::TrailingData(1)));
        // Every truncation is an error, never a panic.
        for len in 0..cert.der().len() {
            assert!(inspect(&cert.der()[..len]).is_err());
        }
    }

    fn info_with(signature_algorithm: &str, key: KeyInfo) -> CertInfo {
        let (cert, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut info = inspect(cert.der()).unwrap();
        info.signature_algorithm = signature_algorithm.to_owned();
        info.key = key;
        info
    }

    #[test]
    fn sanity_rules() {
        let p256 = || KeyInfo::Ec {
            curve: "P-256".into(),
        };
        let md5 = signature_is_sane(&info_with("md5WithRSAEncryption", p256()))
            .unwrap_err()
            .to_string();
        assert!(md5.contains("MD5"), "{md5}");
        let sha1 = signature_is_sane(&info_with("sha1WithRSAEncryption", p256()))
            .unwrap_err()
            .to_string();
        assert!(sha1.contains("SHA-1"), "{sha1}");
        assert!(signature_is_sane(&info_with("ecdsa-with-SHA1", p256())).is_err());
        assert!(signature_is_sane(&info_with("rsassaPss-SHA1", p256())).is_err());
        assert!(signature_is_sane(&info_with("1.2.3.4", p256())).is_err());
        let small = signature_is_sane(&info_with(
            "sha256WithRSAEncryption",
            KeyInfo::Rsa { bits: 1024 },
        ))
        .unwrap_err()
        .to_string();
        assert!(small.contains("1024"), "{small}");
        assert!(
            signature_is_sane(&info_with(
                "sha256WithRSAEncryption",
                KeyInfo::Rsa { bits: 2048 }
            ))
            .is_ok()
        );
        let curve = signature_is_sane(&info_with(
            "ecdsa-with-SHA256",
            KeyInfo::Ec {
                curve: "secp256k1".into(),
            },
        ))
        .unwrap_err()
        .to_string();
        assert!(curve.contains("secp256k1"), "{curve}");
        assert!(
            signature_is_sane(&info_with(
                "ecdsa-with-SHA256",
                KeyInfo::Other("DSA".into())
            ))
            .is_err()
        );
    }

    #[test]
    fn rsa_bits_counts_significant_bits() {
        // SEQUENCE { INTEGER 0x00 0x80 .. (1024 bits), INTEGER 65537 }
        let mut der = vec![0x30, 0x81, 0x89, 0x02, 0x81, 0x81, 0x00, 0x80];
        der.extend([0u8; 127]);
        der.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(rsa_bits(&der), Ok(1024));
        assert!(rsa_bits(&[0x30, 0x00]).is_err());
        assert!(rsa_bits(&[]).is_err());
    }
}
