//! JSON Web Signatures (RFC 7515) as FedTLS/MATF metadata uses them: General JSON (what
//! federations publish), Flattened JSON and Compact, with several signatures for key
//! rollover.
//!
//! Verification is deliberately strict where JOSE is known to be dangerous: the alg
//! allow-list has no `none` and no HMAC, `alg` and `crit` must be integrity protected,
//! duplicate header members are refused, `crit` may only name parameters this verifier
//! understands, and the key is chosen by `kid` among trusted keys only (never from the
//! document). Parsing borrows the payload text from the input, so a 17 MB payload is not
//! copied before it is hashed.
//!
//! Typical use: [`Jws::parse`], then [`Jws::verify_document`] (signatures, payload claims
//! over header claims, [`ClaimsPolicy`](crate::claims::ClaimsPolicy)), or the lower-level
//! [`Jws::verify_signatures`].
//!
//! Signing: [`sign_raw`] signs bytes with a loaded [`SigningKey`](crate::jwk::SigningKey)
//! (what a server issuing tokens needs); signing federation metadata (`sign_metadata`,
//! `SignOptions`) is operator tooling, behind the `tooling` feature.
//!
//! ```
//! # #[cfg(feature = "tooling")] {
//! use fedtls::claims::ClaimsPolicy;
//! use fedtls::jwk::{Algorithm, Jwks, SigningKey};
//! use fedtls::jws::{Jws, JwsFormat, SignOptions, sign_metadata};
//!
//! let key = SigningKey::generate(Algorithm::Es256, "fed-2026")?;
//! let metadata = serde_json::json!({"version": "1.0.0", "entities": []});
//! let options = SignOptions {
//!     iss: "https://fed.example".into(),
//!     lifetime_secs: 86_400,
//!     now: 1_800_000_000,
//!     format: JwsFormat::General,
//!     default_cache_ttl: 3600,
//! };
//! let signed = sign_metadata(metadata.as_object().unwrap(), &[&key], &options)?;
//!
//! let trust = Jwks::from_keys(vec![key.public_jwk()]);
//! let jws = Jws::parse(signed.as_bytes())?;
//! let document = jws.verify_document(&trust, &ClaimsPolicy::default(), 1_800_000_060)?;
//! assert_eq!(document.claims().exp(), 1_800_086_400);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::claims::{Claims, ClaimsError, ValidClaims};
use crate::jwk::{ALLOWED_ALGORITHMS, Algorithm, JwkError};

mod parse;
mod sign;
mod verify;

pub use parse::MAX_SIGNATURES;
pub use sign::sign_raw;
#[cfg(feature = "tooling")]
pub use sign::{SignOptions, sign_metadata};
pub use verify::accepted_signatures;

/// The three JWS serializations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JwsFormat {
    /// JSON with a `signatures` array (RFC 7515 §7.2.1): what federations publish.
    #[default]
    General,
    /// JSON with one signature at the top level (RFC 7515 §7.2.2).
    Flattened,
    /// `header.payload.signature` (RFC 7515 §7.1).
    Compact,
}

impl JwsFormat {
    /// The lowercase name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            JwsFormat::General => "general",
            JwsFormat::Flattened => "flattened",
            JwsFormat::Compact => "compact",
        }
    }
}

/// A name that is not one of the [`JwsFormat`]s (truncated for display).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown JWS format {0:?} (expected general, flattened or compact)")]
pub struct UnknownJwsFormat(pub String);

impl FromStr for JwsFormat {
    type Err = UnknownJwsFormat;

    /// Parses `general`, `flattened` or `compact` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [JwsFormat::General, JwsFormat::Flattened, JwsFormat::Compact]
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownJwsFormat(crate::pin::truncate_for_message(s)))
    }
}

impl fmt::Display for JwsFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the verifier uses from one signature's protected header.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtectedHeader {
    /// The signature algorithm (always from the protected header).
    pub alg: Algorithm,
    /// The key id (protected header, else the unprotected `header`): selects the trusted key.
    pub kid: Option<String>,
    /// `iat`/`exp`/`nbf`/`iss` from the protected header (never from the unprotected one).
    pub claims: Claims,
    /// The `crit` names (all understood by this verifier), empty if absent.
    pub crit: Vec<String>,
}

/// A signature that verified with a trusted key (only [`Jws::verify_signatures`] makes one).
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedSignature {
    index: usize,
    header: ProtectedHeader,
    key_thumbprint: String,
}

impl VerifiedSignature {
    /// Position of the signature in the document (0 for Flattened and Compact).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its protected header.
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// RFC 7638 thumbprint of the trusted key that verified it.
    pub fn key_thumbprint(&self) -> &str {
        &self.key_thumbprint
    }
}

/// A document whose signature and claims were both accepted (only
/// [`Jws::verify_document`] makes one).
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedDocument {
    payload: Vec<u8>,
    claims: ValidClaims,
    signatures: Vec<VerifiedSignature>,
    format: JwsFormat,
}

impl VerifiedDocument {
    /// The decoded payload bytes (the metadata JSON).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The decoded payload bytes, without copying them.
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// The effective claims (payload over header) that passed the policy.
    pub fn claims(&self) -> &ValidClaims {
        &self.claims
    }

    /// The verified signatures whose claims passed, in document order (at least one).
    pub fn signatures(&self) -> &[VerifiedSignature] {
        &self.signatures
    }

    /// The serialization the document used.
    pub fn format(&self) -> JwsFormat {
        self.format
    }
}

/// Why a JWS was refused. Messages name the signature index and header member.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Nothing but whitespace.
    #[error("empty input: no JWS found")]
    Empty,
    /// The input is not UTF-8.
    #[error("not a JWS: invalid UTF-8 at byte {offset}")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// JSON serialization that is not valid JSON of the JWS shape.
    #[error("not a JWS JSON serialization: {0}")]
    Json(String),
    /// A JSON serialization with missing or conflicting members.
    #[error("malformed JWS: {0}")]
    Malformed(String),
    /// Input that is neither JSON nor three base64url parts.
    #[error("not a compact JWS: {0}")]
    Compact(String),
    /// General syntax with an empty `signatures` array.
    #[error("malformed JWS: \"signatures\" is empty")]
    NoSignatures,
    /// A `signatures` entry that is not an object with the expected members.
    #[error("signature {index}: {reason}")]
    Entry {
        /// Signature index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The protected header is absent (alg must be integrity protected).
    #[error("signature {index}: no protected header (alg must be integrity protected)")]
    MissingProtected {
        /// Signature index.
        index: usize,
    },
    /// The protected or unprotected header is not base64url of a JSON object.
    #[error("signature {index}: {location} header: {reason}")]
    Header {
        /// Signature index.
        index: usize,
        /// `protected` or `unprotected`.
        location: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A header member name appears twice (RFC 7515 §4).
    #[error("signature {index}: {location} header has duplicate member {name:?}")]
    DuplicateMember {
        /// Signature index.
        index: usize,
        /// `protected` or `unprotected`.
        location: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A member is in both the protected and the unprotected header (RFC 7515 §7.2.1).
    #[error(
        "signature {index}: header member {name:?} is in both the protected and the unprotected header"
    )]
    NotDisjoint {
        /// Signature index.
        index: usize,
        /// The shared name.
        name: String,
    },
    /// No `alg` in the protected header.
    #[error("signature {index}: protected header has no alg")]
    MissingAlg {
        /// Signature index.
        index: usize,
    },
    /// `alg` or `crit` only in the unprotected header.
    #[error("signature {index}: {member} must be in the protected header, not the unprotected one")]
    NotProtected {
        /// Signature index.
        index: usize,
        /// `alg` or `crit`.
        member: &'static str,
    },
    /// `alg` is not on the allow-list (`none`, HMAC, unknown).
    #[error("signature {index}: alg {alg:?} is not allowed (allowed: {ALLOWED_ALGORITHMS})")]
    UnsupportedAlgorithm {
        /// Signature index.
        index: usize,
        /// The alg as found (truncated).
        alg: String,
    },
    /// A header member with the wrong type (e.g. a non-string `kid`).
    #[error("signature {index}: header member {member:?}: {reason}")]
    HeaderMember {
        /// Signature index.
        index: usize,
        /// Member name.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// `crit` is malformed or names a parameter this verifier does not understand.
    #[error("signature {index}: crit: {reason}")]
    Crit {
        /// Signature index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A claim in the protected header has a bad type or value.
    #[error("signature {index}: protected header {source}")]
    HeaderClaims {
        /// Signature index.
        index: usize,
        /// The claim problem.
        source: ClaimsError,
    },
    /// The signature value is not base64url.
    #[error("signature {index}: the signature value is not base64url")]
    SignatureEncoding {
        /// Signature index.
        index: usize,
    },
    /// The header's kid is not in the trust anchor.
    #[error("signature {index}: no trusted key has kid {kid:?}")]
    UnknownKid {
        /// Signature index.
        index: usize,
        /// The kid (truncated).
        kid: String,
    },
    /// Trusted keys have the kid, but none fits the header's alg.
    #[error("signature {index}: the trusted key with kid {kid:?} cannot verify alg {alg}")]
    KeyAlgMismatch {
        /// Signature index.
        index: usize,
        /// The kid (truncated).
        kid: String,
        /// The header's alg.
        alg: Algorithm,
    },
    /// No kid, and no trusted key fits the alg.
    #[error("signature {index}: no kid, and no trusted key fits alg {alg}")]
    NoKeyForAlgorithm {
        /// Signature index.
        index: usize,
        /// The header's alg.
        alg: Algorithm,
    },
    /// The signature does not verify with any selected trusted key.
    #[error(
        "signature {index}: the signature does not verify with the trusted key(s) selected by its kid and alg (tampered, or signed by another key)"
    )]
    BadSignature {
        /// Signature index.
        index: usize,
    },
    /// The payload is not base64url.
    #[error("payload is not base64url")]
    PayloadEncoding,
    /// The verified payload is unusable for claims (not a JSON object, bad claim).
    #[error("payload: {0}")]
    Payload(ClaimsError),
    /// The claims of every verified signature failed the policy.
    #[error("{0}")]
    Claims(ClaimsError),
    /// Signing failed (key problem or bad options).
    #[error("cannot sign: {0}")]
    Sign(String),
    /// A key operation failed while signing.
    #[error("cannot sign: {0}")]
    Key(#[from] JwkError),
}

impl JwsError {
    /// How useful the error is when several signatures failed: higher is more telling.
    fn usefulness(&self) -> u8 {
        match self {
            JwsError::BadSignature { .. } => 6,
            JwsError::KeyAlgMismatch { .. } => 5,
            JwsError::UnknownKid { .. } | JwsError::NoKeyForAlgorithm { .. } => 4,
            JwsError::UnsupportedAlgorithm { .. }
            | JwsError::Crit { .. }
            | JwsError::DuplicateMember { .. }
            | JwsError::NotDisjoint { .. }
            | JwsError::NotProtected { .. }
            | JwsError::MissingAlg { .. }
            | JwsError::HeaderClaims { .. } => 3,
            _ => 2,
        }
    }
}

/// Picks the most telling error (the first of the highest rank), or `fallback` if none.
fn most_useful(errors: Vec<JwsError>, fallback: JwsError) -> JwsError {
    let mut best: Option<JwsError> = None;
    for error in errors {
        if best
            .as_ref()
            .is_none_or(|b| error.usefulness() > b.usefulness())
        {
            best = Some(error);
        }
    }
    best.unwrap_or(fallback)
}

/// One signature entry: its protected header text (for the signing input) and what
/// parsing it gave.
#[derive(Clone)]
struct Entry<'a> {
    protected_b64: Cow<'a, str>,
    parsed: Result<ParsedSignature, JwsError>,
}

#[derive(Clone)]
struct ParsedSignature {
    header: ProtectedHeader,
    signature: Vec<u8>,
}

/// A parsed (not yet verified) JWS, borrowing the payload text from the input.
#[derive(Clone)]
pub struct Jws<'a> {
    format: JwsFormat,
    payload_b64: Cow<'a, str>,
    entries: Vec<Entry<'a>>,
    /// Compact only: `protected.payload` as one slice of the input (the signing input).
    compact_signing_input: Option<&'a str>,
}

impl fmt::Debug for Jws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jws")
            .field("format", &self.format)
            .field("payload_b64_len", &self.payload_b64.len())
            .field("headers", &self.headers())
            .finish()
    }
}

impl<'a> Jws<'a> {
    /// The serialization the input used.
    pub fn format(&self) -> JwsFormat {
        self.format
    }

    /// The payload exactly as received (base64url text).
    pub fn payload_b64(&self) -> &str {
        &self.payload_b64
    }

    /// Decodes the payload (call once: it allocates the decoded bytes).
    pub fn decode_payload(&self) -> Result<Vec<u8>, JwsError> {
        crate::encoding::b64url_decode(self.payload_b64.as_bytes())
            .map_err(|_| JwsError::PayloadEncoding)
    }

    /// Number of signature entries (including ones whose header did not parse).
    pub fn signature_count(&self) -> usize {
        self.entries.len()
    }

    /// Each signature's protected header, or why it was refused, in document order.
    pub fn headers(&self) -> Vec<Result<&ProtectedHeader, &JwsError>> {
        self.entries
            .iter()
            .map(|e| e.parsed.as_ref().map(|p| &p.header))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names() {
        for f in [JwsFormat::General, JwsFormat::Flattened, JwsFormat::Compact] {
            assert_eq!(f.to_string().parse::<JwsFormat>(), Ok(f));
        }
        assert_eq!("GENERAL".parse::<JwsFormat>(), Ok(JwsFormat::General));
        assert!("json".parse::<JwsFormat>().is_err());
        assert_eq!(JwsFormat::default(), JwsFormat::General);
    }

    #[test]
    fn error_messages_name_the_signature() {
        let e = JwsError::UnsupportedAlgorithm {
            index: 0,
            alg: "none".into(),
        };
        assert_eq!(
            e.to_string(),
            "signature 0: alg \"none\" is not allowed (allowed: ES256, ES384, RS256, PS256, EdDSA)"
        );
        let e = JwsError::UnknownKid {
            index: 1,
            kid: "x".into(),
        };
        assert_eq!(e.to_string(), "signature 1: no trusted key has kid \"x\"");
    }

    #[test]
    fn most_useful_prefers_signature_failures() {
        let picked = most_useful(
            vec![
                JwsError::UnknownKid {
                    index: 0,
                    kid: "a".into(),
                },
                JwsError::BadSignature { index: 1 },
                JwsError::BadSignature { index: 2 },
            ],
            JwsError::NoSignatures,
        );
        assert_eq!(picked, JwsError::BadSignature { index: 1 });
        assert_eq!(
            most_useful(vec![], JwsError::NoSignatures),
            JwsError::NoSignatures
        );
    }
}
