//! The server side: accept a client certificate iff its pin is a client pin in the current
//! metadata.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::chain::{self, ChainError, MAX_CHAIN_LINKS};
use super::leaf::Leaf;
use super::{PeerIdentity, PeerRejection, signature_algorithms};
use crate::index::EndpointMatch;
use crate::metadata::{Entity, Issuer};
use crate::pin::{CertThumbprint, Pin};
use crate::snapshot::{Snapshot, SnapshotSource};

/// A client certificate [`PinnedClientVerifier::verify_client`] accepted: who the client is
/// according to the snapshot that decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClient {
    /// Who the client is; `identity.pin` is its certificate's pin and `identity.generation`
    /// the snapshot's.
    pub identity: PeerIdentity,
    /// When that snapshot's metadata expires (its `exp`, Unix seconds).
    pub metadata_expires_at: i64,
}

/// Why a certificate was accepted: its pin is a client pin, or (when allowed) the
/// certificate itself is listed among an entity's issuers.
enum Accepted<'a> {
    Client(EndpointMatch<'a>),
    IssuerCertificate(&'a Entity),
}

/// Server side: accepts a client certificate iff its SPKI pin is a client pin in the
/// **current** snapshot of the metadata.
///
/// Every handshake asks the [`SnapshotSource`] again, so a pin removed from the metadata is
/// refused from the next handshake on, and when there is no valid metadata (none loaded, or
/// the newest has expired) every client is refused. Client authentication is mandatory unless
/// [`mandatory(false)`](Self::mandatory) is set.
///
/// By default the certificate's validity period is enforced and its issuer is not checked
/// (the pin is the trust, as FedTLS specifies); see [`require_issuer_chain`](Self::require_issuer_chain).
#[derive(Debug)]
pub struct PinnedClientVerifier {
    source: Arc<dyn SnapshotSource>,
    issuer_chain: bool,
    validity: bool,
    issuer_certificates: bool,
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientVerifier {
    /// A verifier reading the metadata from `source`; validity period enforced, no
    /// issuer-chain check.
    pub fn new(source: Arc<dyn SnapshotSource>) -> Self {
        Self {
            source,
            issuer_chain: false,
            validity: true,
            issuer_certificates: false,
            mandatory: true,
            algorithms: signature_algorithms(),
        }
    }

    /// Also require the client certificate to come from one of the `issuers` of the entity
    /// its pin belongs to: the leaf itself is listed as an issuer (byte for byte), or it is
    /// signed by an issuer directly or through intermediates the client presented.
    ///
    /// Each link needs the child's issuer name to equal the parent's subject name and the
    /// child's signature to verify with the parent's key; presented intermediates must be CA
    /// certificates. At most [`MAX_CHAIN_LINKS`] links and
    /// [`MAX_INTERMEDIATES`](super::MAX_INTERMEDIATES) presented intermediates are considered.
    /// Validity periods of issuers and intermediates are not checked. `fedtls lint` checks
    /// given certificates with the same walk.
    pub fn require_issuer_chain(mut self, yes: bool) -> Self {
        self.issuer_chain = yes;
        self
    }

    /// Refuse a client certificate outside its validity period (`notBefore <= now < notAfter`).
    /// On by default.
    pub fn check_validity(mut self, yes: bool) -> Self {
        self.validity = yes;
        self
    }

    /// Also accept a certificate whose pin is not a client pin when the certificate itself,
    /// byte for byte (same RFC 8705 `cert#S256` thumbprint), is listed among the `issuers` of
    /// an entity: the SUNET authorization server's client rule, so metadata written for it
    /// works here too. Off by default; the issuer-chain check is then trivially met.
    pub fn accept_issuer_certificates(mut self, yes: bool) -> Self {
        self.issuer_certificates = yes;
        self
    }

    /// Whether a client must present a certificate (on by default). When off, client
    /// authentication is still offered and a presented certificate is checked exactly as
    /// before, but a client may also complete the handshake without one; the server must then
    /// authenticate it some other way (for example a bearer token).
    pub fn mandatory(mut self, yes: bool) -> Self {
        self.mandatory = yes;
        self
    }

    /// The verifier as rustls takes it.
    pub fn into_arc(self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(self)
    }
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.decide(end_entity, intermediates, now, |_, _, _| {
            ClientCertVerified::assertion()
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl PinnedClientVerifier {
    /// Decides on a client certificate exactly as in a handshake
    /// ([`ClientCertVerifier::verify_client_cert`]) and, when it is accepted, says who the
    /// client is according to the snapshot that decided: one parse of the certificate and
    /// one lookup of its pin serve both, so a server need not repeat them for the
    /// connection.
    pub fn verify_client(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedClient, rustls::Error> {
        self.decide(end_entity, intermediates, now, |snapshot, pin, accepted| {
            VerifiedClient {
                identity: match accepted {
                    Accepted::Client(found) => PeerIdentity::of_client(snapshot, &found, pin),
                    Accepted::IssuerCertificate(entity) => {
                        PeerIdentity::of_issuer_entity(snapshot, entity, pin)
                    }
                },
                metadata_expires_at: snapshot.expires_at(),
            }
        })
    }

    /// The one decision behind [`verify_client`](Self::verify_client) and
    /// `verify_client_cert`; `accept` turns an accepted certificate into the answer.
    fn decide<T>(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        accept: impl FnOnce(&Snapshot, Pin, Accepted<'_>) -> T,
    ) -> Result<T, rustls::Error> {
        let Some(snapshot) = self.source.current() else {
            return Err(PeerRejection::NoMetadata.into_rustls());
        };
        let leaf = Leaf::parse(end_entity, false)?;
        let Some(found) = snapshot.index().client_by_pin(&leaf.pin) else {
            if self.issuer_certificates {
                let thumbprint = CertThumbprint::of_certificate(end_entity);
                if let Some(entity) = snapshot
                    .index()
                    .entities_by_issuer_thumbprint(&thumbprint)
                    .next()
                {
                    if self.validity {
                        leaf.check_validity(now)?;
                    }
                    return Ok(accept(
                        &snapshot,
                        leaf.pin,
                        Accepted::IssuerCertificate(entity),
                    ));
                }
            }
            return Err(PeerRejection::UnknownClientPin {
                pin: leaf.pin,
                subject: leaf.subject,
                generation: snapshot.generation(),
            }
            .into_rustls());
        };
        if self.validity {
            leaf.check_validity(now)?;
        }
        if self.issuer_chain
            && let Err(detail) = chains_to_issuers(end_entity, intermediates, &found.entity.issuers)
        {
            return Err(PeerRejection::NotIssuedByEntity {
                entity_id: found.entity.entity_id.clone(),
                pin: leaf.pin,
                subject: leaf.subject,
                detail,
            }
            .into_rustls());
        }
        Ok(accept(&snapshot, leaf.pin, Accepted::Client(found)))
    }
}

/// Checks that `leaf` is one of `issuers` or leads to one through `intermediates` (the one
/// walk, [`chain::chains_to_issuers`]); otherwise says what was tried.
pub(crate) fn chains_to_issuers(
    leaf: &[u8],
    intermediates: &[CertificateDer<'_>],
    issuers: &[Issuer],
) -> Result<(), String> {
    let issuers: Vec<&[u8]> = issuers.iter().map(|i| i.certificate.as_ref()).collect();
    chain::chains_to_issuers(leaf, intermediates, &issuers).map_err(|e| match e {
        ChainError::NoIssuers => "the entity lists no issuer certificates".to_owned(),
        ChainError::Unreached {
            candidates,
            issuers,
            ..
        } => format!(
            "neither the certificate nor any of the {candidates} presented CA certificate(s) is listed or signed by one of the entity's {issuers} issuer(s) within {MAX_CHAIN_LINKS} links"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::{Algorithm, Jwks, SigningKey};
    use crate::jws::{SignOptions, sign_metadata};
    use crate::snapshot::{Snapshot, SnapshotCell};
    use crate::verify::{VerifyOptions, unix_now, verify_metadata};
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer as RcgenIssuer, KeyPair,
    };
    use rustls::CertificateError;
    use serde_json::json;
    use std::time::Duration;

    struct Made {
        der: CertificateDer<'static>,
        pem: String,
        key: KeyPair,
        params: CertificateParams,
    }

    fn make(cn: &str, ca: bool, signer: Option<&Made>) -> Made {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = match signer {
            Some(signer) => {
                let issuer = RcgenIssuer::from_params(&signer.params, &signer.key);
                params.signed_by(&key, &issuer).unwrap()
            }
            None => params.self_signed(&key).unwrap(),
        };
        Made {
            der: cert.der().clone(),
            pem: cert.pem(),
            key,
            params,
        }
    }

    fn issuer(made: &Made) -> Issuer {
        Issuer {
            certificate: made.der.clone(),
            extra: Default::default(),
        }
    }

    /// The entities signed to expire at `exp` and verified (as of ten minutes before `exp`).
    fn snapshot(entities: serde_json::Value, exp: i64) -> Snapshot {
        let key = SigningKey::generate(Algorithm::Es256, "k").unwrap();
        let doc = json!({"version": "1.0.0", "entities": entities});
        let options = SignOptions {
            iss: "https://fed.example".into(),
            lifetime_secs: 600,
            now: exp - 600,
            ..SignOptions::default()
        };
        let signed = sign_metadata(doc.as_object().unwrap(), &[&key], &options).unwrap();
        let options = VerifyOptions {
            now: Some(exp - 600),
            ..VerifyOptions::default()
        };
        let jwks = Jwks::from_keys(vec![key.public_jwk()]);
        let verified = verify_metadata(signed.as_bytes(), &jwks, &options).unwrap();
        let rejected = verified.index().rejected();
        assert!(rejected.is_empty(), "{rejected:?}");
        Snapshot::new(verified, "unit test", 0)
    }

    fn entity(id: &str, client: &Made, issuers: &[&Made]) -> serde_json::Value {
        let pin = crate::Pin::of_certificate(&client.der).unwrap();
        json!({
            "entity_id": id,
            "issuers": issuers.iter().map(|i| json!({"x509certificate": i.pem})).collect::<Vec<_>>(),
            "clients": [{"pins": [{"alg": "sha256", "digest": pin.to_string()}], "tags": ["egilv1"]}],
        })
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn rejection(err: rustls::Error) -> PeerRejection {
        PeerRejection::from_rustls(&err)
            .cloned()
            .unwrap_or_else(|| panic!("not a PeerRejection: {err:?}"))
    }

    #[test]
    fn chain_through_presented_intermediates() {
        let root = make("root", true, None);
        let mid = make("mid", true, Some(&root));
        let leaf = make("leaf", false, Some(&mid));
        let issuers = [issuer(&root)];
        assert!(chains_to_issuers(&leaf.der, &[], &issuers).is_err());
        chains_to_issuers(&leaf.der, std::slice::from_ref(&mid.der), &issuers).unwrap();
        chains_to_issuers(&leaf.der, &[mid.der.clone(), root.der.clone()], &issuers).unwrap();
        // Order of presentation does not matter.
        chains_to_issuers(&leaf.der, &[root.der.clone(), mid.der.clone()], &issuers).unwrap();
        // Listing the intermediate itself is enough.
        chains_to_issuers(&leaf.der, &[], &[issuer(&mid)]).unwrap();
        // A listed leaf needs nothing else.
        chains_to_issuers(&leaf.der, &[], &[issuer(&leaf)]).unwrap();
        // Another root with the same name does not verify the signature.
        let impostor = make("root", true, None);
        let err = chains_to_issuers(
            &leaf.der,
            std::slice::from_ref(&mid.der),
            &[issuer(&impostor)],
        );
        assert!(err.unwrap_err().contains("1 presented CA"));
        assert!(
            chains_to_issuers(&leaf.der, &[], &[])
                .unwrap_err()
                .contains("no issuer")
        );
    }

    #[test]
    fn non_ca_intermediates_and_long_chains_are_refused() {
        let root = make("root", true, None);
        let not_ca = make("notca", false, Some(&root));
        let leaf = make("leaf", false, Some(&not_ca));
        assert!(
            chains_to_issuers(
                &leaf.der,
                std::slice::from_ref(&not_ca.der),
                &[issuer(&root)]
            )
            .is_err()
        );

        let mut chain = vec![make("c0", true, None)];
        for i in 1..=MAX_CHAIN_LINKS {
            let next = make(&format!("c{i}"), true, chain.last());
            chain.push(next);
        }
        let leaf = make("deep", false, chain.last());
        let presented: Vec<_> = chain.iter().rev().map(|c| c.der.clone()).collect();
        // leaf -> c5 -> c4 -> c3 -> c2 -> c1 -> c0: six links.
        assert!(chains_to_issuers(&leaf.der, &presented, &[issuer(&chain[0])]).is_err());
        // leaf -> c5 -> c4 -> c3 -> c2 -> c1: five links.
        chains_to_issuers(&leaf.der, &presented, &[issuer(&chain[1])]).unwrap();
    }

    #[test]
    fn only_the_first_presented_intermediates_count() {
        let root = make("root", true, None);
        let mid = make("mid", true, Some(&root));
        let leaf = make("leaf", false, Some(&mid));
        let mut presented: Vec<_> = (0..crate::tls::MAX_INTERMEDIATES)
            .map(|i| make(&format!("other{i}"), true, None).der)
            .collect();
        presented.push(mid.der.clone());
        assert!(chains_to_issuers(&leaf.der, &presented, &[issuer(&root)]).is_err());
        presented.rotate_right(1);
        chains_to_issuers(&leaf.der, &presented, &[issuer(&root)]).unwrap();
    }

    #[test]
    fn verifies_against_the_current_snapshot() {
        let listed = make("listed", false, None);
        let other = make("other", false, None);
        let cell = Arc::new(SnapshotCell::new());
        let verifier = PinnedClientVerifier::new(cell.clone()).require_issuer_chain(true);
        assert!(verifier.offer_client_auth() && verifier.client_auth_mandatory());
        assert!(verifier.root_hint_subjects().is_empty());
        assert!(!verifier.supported_verify_schemes().is_empty());

        // No metadata: fail closed.
        let err = verifier.verify_client_cert(&listed.der, &[], now());
        assert_eq!(rejection(err.unwrap_err()), PeerRejection::NoMetadata);

        cell.store(snapshot(
            json!([entity("https://e", &listed, &[&listed])]),
            unix_now() + 3600,
        ));
        verifier
            .verify_client_cert(&listed.der, &[], now())
            .unwrap();
        match rejection(
            verifier
                .verify_client_cert(&other.der, &[], now())
                .unwrap_err(),
        ) {
            PeerRejection::UnknownClientPin {
                pin, generation, ..
            } => {
                assert_eq!(pin, crate::Pin::of_certificate(&other.der).unwrap());
                assert_eq!(generation, 1);
            }
            other => panic!("{other:?}"),
        }

        // Right pin, wrong issuer.
        cell.store(snapshot(
            json!([entity("https://e", &listed, &[&other])]),
            unix_now() + 3600,
        ));
        let err = rejection(
            verifier
                .verify_client_cert(&listed.der, &[], now())
                .unwrap_err(),
        );
        assert!(
            matches!(&err, PeerRejection::NotIssuedByEntity { entity_id, .. } if entity_id == "https://e"),
            "{err:?}"
        );
        assert!(err.to_string().contains("https://e"));
        let relaxed = PinnedClientVerifier::new(cell.clone());
        relaxed.verify_client_cert(&listed.der, &[], now()).unwrap();

        // Expired metadata: fail closed again.
        cell.store(snapshot(
            json!([entity("https://e", &listed, &[&listed])]),
            unix_now() - 1,
        ));
        let err = relaxed.verify_client_cert(&listed.der, &[], now());
        assert_eq!(rejection(err.unwrap_err()), PeerRejection::NoMetadata);
    }

    #[test]
    fn verify_client_names_whom_it_accepted_from_the_same_decision() {
        let listed = make("listed", false, None);
        let issuer_only = make("issuer-only", false, None);
        let stranger = make("stranger", false, None);
        let exp = unix_now() + 3600;
        let cell = Arc::new(SnapshotCell::with(snapshot(
            json!([
                entity("https://e", &listed, &[&listed]),
                {"entity_id": "https://sunet-style", "issuers": [{"x509certificate": issuer_only.pem}]},
            ]),
            exp,
        )));
        let current = cell.current().unwrap();
        let verifier = PinnedClientVerifier::new(cell.clone()).accept_issuer_certificates(true);
        let client = verifier.verify_client(&listed.der, &[], now()).unwrap();
        assert_eq!(
            Some(client.identity),
            PeerIdentity::resolve(&current, &listed.der)
        );
        assert_eq!(client.metadata_expires_at, exp);
        let client = verifier
            .verify_client(&issuer_only.der, &[], now())
            .unwrap();
        assert_eq!(
            Some(client.identity),
            PeerIdentity::resolve_issuer_certificate(&current, &issuer_only.der)
        );
        // Refusals are those of the handshake.
        assert_eq!(
            rejection(
                verifier
                    .verify_client(&stranger.der, &[], now())
                    .unwrap_err()
            ),
            rejection(
                verifier
                    .verify_client_cert(&stranger.der, &[], now())
                    .unwrap_err()
            )
        );
    }

    #[test]
    fn validity_is_checked_at_the_handshake_time() {
        let listed = make("listed", false, None);
        let cell = Arc::new(SnapshotCell::with(snapshot(
            json!([entity("https://e", &listed, &[&listed])]),
            unix_now() + 3600,
        )));
        let verifier = PinnedClientVerifier::new(cell.clone());
        // rcgen's default validity ends in 4096.
        let late = UnixTime::since_unix_epoch(Duration::from_secs(70_000_000_000));
        assert!(matches!(
            verifier.verify_client_cert(&listed.der, &[], late),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        let early = UnixTime::since_unix_epoch(Duration::from_secs(1));
        assert!(matches!(
            verifier.verify_client_cert(&listed.der, &[], early),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext { .. }
            ))
        ));
        let lax = PinnedClientVerifier::new(cell).check_validity(false);
        lax.verify_client_cert(&listed.der, &[], late).unwrap();
        assert!(matches!(
            lax.verify_client_cert(&CertificateDer::from(&b"junk"[..]), &[], now()),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding
            ))
        ));
    }

    #[test]
    fn issuer_certificates_are_accepted_only_when_asked() {
        let listed = make("listed", false, None);
        let issuer_only = make("issuer-only", false, None);
        let stranger = make("stranger", false, None);
        let cell = Arc::new(SnapshotCell::with(snapshot(
            json!([
                entity("https://e", &listed, &[&listed]),
                {"entity_id": "https://sunet-style", "issuers": [{"x509certificate": issuer_only.pem}]},
            ]),
            unix_now() + 3600,
        )));
        let strict = PinnedClientVerifier::new(cell.clone());
        assert!(matches!(
            rejection(
                strict
                    .verify_client_cert(&issuer_only.der, &[], now())
                    .unwrap_err()
            ),
            PeerRejection::UnknownClientPin { .. }
        ));
        let sunet = PinnedClientVerifier::new(cell.clone())
            .accept_issuer_certificates(true)
            .require_issuer_chain(true);
        sunet
            .verify_client_cert(&issuer_only.der, &[], now())
            .unwrap();
        sunet.verify_client_cert(&listed.der, &[], now()).unwrap();
        assert!(matches!(
            rejection(
                sunet
                    .verify_client_cert(&stranger.der, &[], now())
                    .unwrap_err()
            ),
            PeerRejection::UnknownClientPin { .. }
        ));
        // Validity still applies to issuer-matched certificates unless switched off.
        let late = UnixTime::since_unix_epoch(Duration::from_secs(70_000_000_000));
        assert!(matches!(
            sunet.verify_client_cert(&issuer_only.der, &[], late),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        let lax = PinnedClientVerifier::new(cell)
            .accept_issuer_certificates(true)
            .check_validity(false);
        lax.verify_client_cert(&issuer_only.der, &[], late).unwrap();
    }
}
