//! Public-key pins (RFC 7469 SPKI SHA-256, as FedTLS metadata lists them) and RFC 8705
//! certificate thumbprints (`x5t#S256`, as the SUNET authorization server matches issuers).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::der;
use crate::encoding::{b64_decode, b64_encode, b64url_decode, b64url_encode};

/// The DER framing problem behind [`PinError::BadCertificate`].
pub use crate::der::DerError;

/// An RFC 7469 pin: SHA-256 over the DER SubjectPublicKeyInfo of an end-entity certificate.
///
/// Displayed and parsed as standard base64 with padding, the form metadata uses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pin([u8; 32]);

/// Why a pin or thumbprint could not be made or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// The text is not base64 of exactly 32 bytes.
    #[error("not a SHA-256 pin: expected base64 of 32 bytes ({0})")]
    BadEncoding(String),
    /// The pin names a hash other than SHA-256.
    #[error("unsupported pin algorithm {0:?}: only \"sha256\" is defined")]
    UnsupportedAlgorithm(String),
    /// The input holds no PEM certificate.
    #[error("no CERTIFICATE block found in the PEM input")]
    NoCertificate,
    /// The certificate bytes are not a well-formed X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    BadCertificate(#[from] der::DerError),
}

impl Pin {
    /// Wraps a raw SHA-256 digest.
    pub const fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The raw SHA-256 digest.
    pub const fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hashes a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Self(sha256(spki_der))
    }

    /// Pins the public key of a DER certificate.
    pub fn of_certificate(cert_der: &[u8]) -> Result<Self, PinError> {
        let parts = der::certificate_parts(cert_der)?;
        Ok(Self::of_spki(parts.spki))
    }

    /// Pins the first certificate of a PEM file (a leaf file or a chain whose leaf comes first).
    pub fn of_pem(pem: &[u8]) -> Result<Self, PinError> {
        let cert = first_pem_certificate(pem)?;
        Self::of_certificate(&cert)
    }

    /// The pin in curl's `--pinnedpubkey` form: `sha256//BASE64`.
    pub fn to_curl(&self) -> String {
        format!("sha256//{self}")
    }

    /// Parses a pin digest as metadata carries it: standard base64 (padding optional);
    /// base64url is accepted too, since 32 bytes leave no ambiguity.
    pub fn parse_digest(text: &str) -> Result<Self, PinError> {
        let bad = || PinError::BadEncoding(truncate_for_message(text));
        let bytes = b64_decode(text)
            .or_else(|_| b64url_decode(text))
            .map_err(|_| bad())?;
        let digest: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Self(digest))
    }

    /// Parses `alg` + `digest` members, accepting only `sha256` (case-insensitive).
    pub fn parse_with_alg(alg: &str, digest: &str) -> Result<Self, PinError> {
        if !alg.eq_ignore_ascii_case("sha256") && !alg.eq_ignore_ascii_case("sha-256") {
            return Err(PinError::UnsupportedAlgorithm(truncate_for_message(alg)));
        }
        Self::parse_digest(digest)
    }
}

impl FromStr for Pin {
    type Err = PinError;

    /// Accepts a bare digest or curl's `sha256//DIGEST`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.strip_prefix("sha256//") {
            Some(rest) => Self::parse_digest(rest),
            None => Self::parse_digest(text),
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64_encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin({self})")
    }
}

impl serde::Serialize for Pin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Pin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An RFC 8705 certificate thumbprint (`x5t#S256`): SHA-256 over the whole DER certificate,
/// displayed as base64url without padding.
///
/// The SUNET authorization server identifies a client by comparing this value with the
/// thumbprints of the entity's `issuers`, instead of using the SPKI pins.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertThumbprint([u8; 32]);

impl CertThumbprint {
    /// Thumbprint of a DER certificate (the bytes are hashed as given).
    pub fn of_certificate(cert_der: &[u8]) -> Self {
        Self(sha256(cert_der))
    }

    /// Thumbprint of the first certificate of a PEM input.
    pub fn of_pem(pem: &[u8]) -> Result<Self, PinError> {
        Ok(Self::of_certificate(&first_pem_certificate(pem)?))
    }

    /// The raw SHA-256 digest.
    pub const fn digest(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for CertThumbprint {
    type Err = PinError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PinError::BadEncoding(truncate_for_message(text));
        let bytes = b64url_decode(text.trim()).map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }
}

impl fmt::Display for CertThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&b64url_encode(self.0))
    }
}

impl fmt::Debug for CertThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertThumbprint({self})")
    }
}

/// The first CERTIFICATE block of a PEM input, as DER.
pub fn first_pem_certificate(pem: &[u8]) -> Result<CertificateDer<'static>, PinError> {
    CertificateDer::from_pem_slice(pem).map_err(|_| PinError::NoCertificate)
}

/// Every CERTIFICATE block of a PEM input, in order; other blocks are skipped.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PinError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PinError::NoCertificate)?;
    if certs.is_empty() {
        return Err(PinError::NoCertificate);
    }
    Ok(certs)
}

/// SHA-256 (aws-lc-rs): the one hash of the crate's pins, thumbprints, key thumbprints and
/// document digests.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, bytes);
    // SHA-256 is always 32 bytes; the fallback only avoids a panic path.
    <[u8; 32]>::try_from(digest.as_ref()).unwrap_or_default()
}

/// Shortens untrusted text before it goes into an error message.
pub(crate) fn truncate_for_message(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_standard_curl_and_urlsafe_forms() {
        let pin: Pin = "tP8Ti7ULYVEeg7f+kvk+wW7X1IID5QHZGeunuVSl4NA="
            .parse()
            .unwrap();
        assert_eq!(
            pin.to_string(),
            "tP8Ti7ULYVEeg7f+kvk+wW7X1IID5QHZGeunuVSl4NA="
        );
        let curl: Pin = pin.to_curl().parse().unwrap();
        assert_eq!(curl, pin);
        let urlsafe: Pin = "tP8Ti7ULYVEeg7f-kvk-wW7X1IID5QHZGeunuVSl4NA"
            .parse()
            .unwrap();
        assert_eq!(urlsafe, pin);
    }

    #[test]
    fn rejects_wrong_length_and_garbage() {
        assert!("%%%not-base64%%%".parse::<Pin>().is_err());
        assert!("AAAA".parse::<Pin>().is_err());
        assert!(
            Pin::parse_with_alg("sha1", "tP8Ti7ULYVEeg7f+kvk+wW7X1IID5QHZGeunuVSl4NA=").is_err()
        );
    }

    #[test]
    fn long_garbage_is_truncated_in_messages() {
        let err = "x".repeat(10_000).parse::<Pin>().unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }
}
