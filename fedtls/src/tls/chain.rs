//! The one walk from a certificate to the `issuers` of its entity: what the client verifier
//! requires with [`require_issuer_chain`](super::PinnedClientVerifier::require_issuer_chain),
//! and what `fedtls lint` checks given certificates with, so the two cannot disagree.

use super::leaf::is_ca;
use crate::x509::{X509Error, verify_signed_by};

/// The most signatures between a client's leaf and one of its entity's issuers (leaf signed
/// directly by an issuer = 1) that [`PinnedClientVerifier::require_issuer_chain`] follows.
///
/// [`PinnedClientVerifier::require_issuer_chain`]: super::PinnedClientVerifier::require_issuer_chain
pub const MAX_CHAIN_LINKS: usize = 5;

/// How many of the intermediates a client presents are considered for the issuer chain;
/// the rest are ignored.
pub const MAX_INTERMEDIATES: usize = 8;

/// Why a certificate does not lead to one of its entity's issuers.
#[derive(Debug)]
pub(crate) enum ChainError {
    /// The entity lists no issuer certificate.
    NoIssuers,
    /// No chain of at most [`MAX_CHAIN_LINKS`] links reaches an issuer.
    Unreached {
        /// The usable presented intermediates (CA certificates among the first
        /// [`MAX_INTERMEDIATES`]).
        candidates: usize,
        /// The entity's issuers.
        issuers: usize,
        /// The last failure other than a name mismatch when checking a certificate of the
        /// walk against an issuer (an issuer with the right name but the wrong key, say).
        /// Only the linter reports it.
        #[cfg_attr(not(feature = "tooling"), allow(dead_code))]
        closest: Option<X509Error>,
    },
}

/// Checks that `leaf` is one of `issuers` (byte for byte) or is signed by one, directly or
/// through `intermediates`: each link needs the child's issuer name to equal the parent's
/// subject name and the child's signature to verify with the parent's key. Only CA
/// certificates among the first [`MAX_INTERMEDIATES`] intermediates are used, and at most
/// [`MAX_CHAIN_LINKS`] links are followed. Validity periods are not checked.
///
/// Breadth first, so every intermediate is reached over the fewest links, and each
/// intermediate is used at most once.
pub(crate) fn chains_to_issuers(
    leaf: &[u8],
    intermediates: &[impl AsRef<[u8]>],
    issuers: &[&[u8]],
) -> Result<(), ChainError> {
    if issuers.contains(&leaf) {
        return Ok(());
    }
    if issuers.is_empty() {
        return Err(ChainError::NoIssuers);
    }
    let candidates: Vec<&[u8]> = intermediates
        .iter()
        .take(MAX_INTERMEDIATES)
        .map(AsRef::as_ref)
        .filter(|c| *c != leaf && is_ca(c))
        .collect();
    let mut used = vec![false; candidates.len()];
    let mut closest = None;
    let mut frontier = vec![leaf];
    for _ in 0..MAX_CHAIN_LINKS {
        let mut next = Vec::new();
        for child in &frontier {
            for issuer in issuers {
                match verify_signed_by(child, issuer) {
                    Ok(()) => return Ok(()),
                    Err(X509Error::NameMismatch { .. }) => {}
                    Err(e) => closest = Some(e),
                }
            }
            for (k, candidate) in candidates.iter().enumerate() {
                if !used[k] && verify_signed_by(child, candidate).is_ok() {
                    used[k] = true;
                    next.push(*candidate);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Err(ChainError::Unreached {
        candidates: candidates.len(),
        issuers: issuers.len(),
        closest,
    })
}
