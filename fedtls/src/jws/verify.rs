//! Signature verification against a trust anchor, and the claims check on top.

use aws_lc_rs::digest;

use super::{Entry, Jws, JwsError, VerifiedDocument, VerifiedSignature, most_useful};
use crate::claims::{Claims, ClaimsError, ClaimsPolicy, ValidClaims};
use crate::jwk::{Jwks, PublicJwk};
use crate::pin::truncate_for_message;

impl<'a> Jws<'a> {
    /// Verifies every signature against the trusted keys.
    ///
    /// The signing input is `protected_b64 || '.' || payload_b64` as received. Key
    /// selection: with a `kid`, only trusted keys with that kid (and fitting the alg); without
    /// one, every trusted key that fits the alg. Returns the signatures that verified, in
    /// document order; if none did, the most telling error (for a one-signature document,
    /// that signature's error). Claims are not checked here: see [`Jws::verify_document`].
    pub fn verify_signatures(&self, jwks: &Jwks) -> Result<Vec<VerifiedSignature>, JwsError> {
        let mut verified = Vec::new();
        let mut errors = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            match self.verify_entry(index, entry, jwks) {
                Ok(signature) => verified.push(signature),
                Err(error) => errors.push(error),
            }
        }
        if verified.is_empty() {
            return Err(most_useful(errors, JwsError::NoSignatures));
        }
        Ok(verified)
    }

    fn verify_entry(
        &self,
        index: usize,
        entry: &Entry<'a>,
        jwks: &Jwks,
    ) -> Result<VerifiedSignature, JwsError> {
        let parsed = entry.parsed.as_ref().map_err(Clone::clone)?;
        let header = &parsed.header;
        let alg = header.alg;
        let candidates: Vec<&PublicJwk> = match &header.kid {
            Some(kid) => {
                let with_kid: Vec<&PublicJwk> = jwks
                    .keys()
                    .iter()
                    .filter(|k| k.kid() == Some(kid.as_str()))
                    .collect();
                if with_kid.is_empty() {
                    return Err(JwsError::UnknownKid {
                        index,
                        kid: truncate_for_message(kid),
                    });
                }
                let fitting: Vec<&PublicJwk> =
                    with_kid.into_iter().filter(|k| k.fits(alg)).collect();
                if fitting.is_empty() {
                    return Err(JwsError::KeyAlgMismatch {
                        index,
                        kid: truncate_for_message(kid),
                        alg,
                    });
                }
                fitting
            }
            None => {
                let fitting: Vec<&PublicJwk> = jwks.keys().iter().filter(|k| k.fits(alg)).collect();
                if fitting.is_empty() {
                    return Err(JwsError::NoKeyForAlgorithm { index, alg });
                }
                fitting
            }
        };

        let signature = parsed.signature.as_slice();
        let key = match alg.digest_algorithm() {
            // Hash the (possibly 17 MB) signing input once, in pieces, for every candidate.
            Some(algorithm) => {
                let mut context = digest::Context::new(algorithm);
                match self.compact_signing_input {
                    Some(input) => context.update(input.as_bytes()),
                    None => {
                        context.update(entry.protected_b64.as_bytes());
                        context.update(b".");
                        context.update(self.payload_b64.as_bytes());
                    }
                }
                let digest = context.finish();
                candidates
                    .into_iter()
                    .find(|k| k.verify_digest(alg, &digest, signature))
            }
            // EdDSA hashes the message itself and needs it contiguous.
            None => {
                let joined;
                let message: &[u8] = match self.compact_signing_input {
                    Some(input) => input.as_bytes(),
                    None => {
                        joined = self.joined_signing_input(&entry.protected_b64);
                        &joined
                    }
                };
                candidates
                    .into_iter()
                    .find(|k| k.verify(alg, message, signature))
            }
        };
        match key {
            Some(key) => Ok(VerifiedSignature {
                index,
                header: header.clone(),
                key_thumbprint: key.thumbprint(),
            }),
            None => Err(JwsError::BadSignature { index }),
        }
    }

    fn joined_signing_input(&self, protected_b64: &str) -> Vec<u8> {
        let mut joined = Vec::with_capacity(protected_b64.len() + 1 + self.payload_b64.len());
        joined.extend_from_slice(protected_b64.as_bytes());
        joined.push(b'.');
        joined.extend_from_slice(self.payload_b64.as_bytes());
        joined
    }

    /// Verifies signatures, then the claims: for each verified signature, the payload's
    /// top-level `iat`/`exp`/`nbf`/`iss` over its protected header's ("the payload wins"),
    /// checked by `policy` at `now` (unix seconds). The document is accepted when at least
    /// one verified signature's claims pass; the payload is decoded once and returned.
    pub fn verify_document(
        &self,
        jwks: &Jwks,
        policy: &ClaimsPolicy,
        now: i64,
    ) -> Result<VerifiedDocument, JwsError> {
        let verified = self.verify_signatures(jwks)?;
        let payload = self.decode_payload()?;
        let payload_claims = Claims::from_payload_json(&payload).map_err(JwsError::Payload)?;
        let accepted = accepted_signatures(&verified, &payload_claims, policy, now)
            .map_err(JwsError::Claims)?;
        let claims = accepted
            .first()
            .map(|(_, claims)| claims.clone())
            .ok_or(JwsError::Claims(ClaimsError::MissingExp))?;
        Ok(VerifiedDocument {
            payload,
            claims,
            signatures: accepted.into_iter().map(|(s, _)| s.clone()).collect(),
            format: self.format,
        })
    }
}

/// Every verified signature whose claims (the payload's members over its protected
/// header's) pass `policy` at `now`, in document order, each with its validated claims.
/// When none passes, the first signature's claims problem.
pub fn accepted_signatures<'s>(
    signatures: &'s [VerifiedSignature],
    payload_claims: &Claims,
    policy: &ClaimsPolicy,
    now: i64,
) -> Result<Vec<(&'s VerifiedSignature, ValidClaims)>, ClaimsError> {
    let mut first_error = None;
    let mut accepted = Vec::new();
    for signature in signatures {
        let claims = Claims::overlay(payload_claims, &signature.header.claims);
        match policy.check(&claims, now) {
            Ok(valid) => accepted.push((signature, valid)),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match (accepted.is_empty(), first_error) {
        (false, _) => Ok(accepted),
        (true, Some(err)) => Err(err),
        // No signature at all: refuse rather than trust.
        (true, None) => Err(ClaimsError::MissingExp),
    }
}
