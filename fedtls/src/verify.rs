//! One call from signed bytes to a usable index: JWS signature, header and claims checks,
//! lenient payload parsing and indexing.

use crate::claims::{ClaimsError, ClaimsPolicy, ValidClaims};
use crate::index::Index;
use crate::jwk::{Algorithm, Jwks};
use crate::jws::{Jws, JwsError, JwsFormat, accepted_signatures};
use crate::metadata::{DocumentError, Metadata, parse_payload};

/// How to verify a metadata document.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Leeway on `iat`/`nbf` and the required issuer, if any (`exp` never gets leeway).
    pub policy: ClaimsPolicy,
    /// The time to verify at, in Unix seconds; `None` means now.
    pub now: Option<i64>,
    /// Threads for parsing entities (the signature is checked on another thread meanwhile).
    pub threads: usize,
    /// Keep the verified payload bytes in the result (for tools that save them).
    pub keep_payload: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            policy: ClaimsPolicy::default(),
            now: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            keep_payload: false,
        }
    }
}

/// Which signature vouched for the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInfo {
    /// The serialization the document used.
    pub format: JwsFormat,
    /// Position of the accepted signature (General JSON may carry several).
    pub index: usize,
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The `kid` of the signature's header, if it named one.
    pub kid: Option<String>,
    /// RFC 7638 thumbprint of the trusted key that verified it.
    pub key_thumbprint: String,
}

/// A verified document: its index, its validated claims and the signature that vouched for it.
///
/// Only [`verify_metadata`] makes one, so holding a `VerifiedMetadata` means the document's
/// signature and claims were checked.
#[derive(Debug)]
pub struct VerifiedMetadata {
    index: Index,
    claims: ValidClaims,
    signature: SignatureInfo,
    payload: Option<Vec<u8>>,
}

impl VerifiedMetadata {
    /// Lookups over the usable entities (rejected ones are in [`Index::rejected`]).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// `iat`/`exp`/`nbf`/`iss`, payload values taking precedence over the header's.
    pub fn claims(&self) -> &ValidClaims {
        &self.claims
    }

    /// The accepted signature.
    pub fn signature(&self) -> &SignatureInfo {
        &self.signature
    }

    /// The verified payload bytes, when [`VerifyOptions::keep_payload`] was set.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }
}

/// Why a document was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The JWS could not be parsed, or no signature verified with a trusted key.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// The signature verified but the time or issuer claims are not acceptable.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The signature verified but the payload is not usable metadata.
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// Verifies signed federation metadata against a trust anchor and indexes it.
///
/// The document is accepted when at least one signature verifies with a key of `jwks` and
/// its claims (payload members winning over that signature's protected header) are valid at
/// `now`. Malformed entities are left out with diagnostics; they never refuse the document.
pub fn verify_metadata(
    input: &[u8],
    jwks: &Jwks,
    options: &VerifyOptions,
) -> Result<VerifiedMetadata, VerifyError> {
    let jws = Jws::parse(input)?;
    let (signatures, parsed) = std::thread::scope(|scope| {
        let signatures = scope.spawn(|| jws.verify_signatures(jwks));
        let parsed = decode_and_parse(&jws, options);
        let signatures = signatures
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (signatures, parsed)
    });
    // An unauthenticated payload's problems are never reported before the signature's.
    let signatures = signatures?;
    let (metadata, payload) = parsed?;
    let now = options.now.unwrap_or_else(unix_now);
    let (accepted, claims) =
        accepted_signatures(&signatures, &metadata.claims, &options.policy, now)?
            .into_iter()
            .next()
            .ok_or(ClaimsError::MissingExp)?;
    Ok(VerifiedMetadata {
        index: Index::new(metadata),
        claims,
        signature: SignatureInfo {
            format: jws.format(),
            index: accepted.index(),
            alg: accepted.header().alg,
            kid: accepted.header().kid.clone(),
            key_thumbprint: accepted.key_thumbprint().to_owned(),
        },
        payload,
    })
}

fn decode_and_parse(
    jws: &Jws<'_>,
    options: &VerifyOptions,
) -> Result<(Metadata, Option<Vec<u8>>), VerifyError> {
    let payload = jws.decode_payload()?;
    let metadata = parse_payload(&payload, options.threads)?;
    Ok((metadata, options.keep_payload.then_some(payload)))
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
