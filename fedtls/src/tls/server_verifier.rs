//! The client side: accept a server whose pin is one of those chosen from the metadata.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::leaf::Leaf;
use super::{PeerRejection, signature_algorithms};
use crate::pin::Pin;

/// Client side: accepts a server certificate iff its SPKI pin is one of the pins the caller
/// chose from the metadata (typically the pins of the server endpoint being called).
///
/// An empty pin set refuses every server. The certificate's validity period is enforced by
/// default; the host name is not checked by default, since the metadata pins are the trust.
///
/// It is the certificate half of a verifier ([`ServerCertDecision`]); [`into_arc`](Self::into_arc)
/// adds the handshake signature checks ([`SignatureChecked`]).
#[derive(Debug, Clone)]
pub struct PinnedServerVerifier {
    pins: HashSet<Pin>,
    hostname: bool,
    validity: bool,
}

impl PinnedServerVerifier {
    /// A verifier accepting exactly these pins.
    pub fn new(pins: impl IntoIterator<Item = Pin>) -> Self {
        Self {
            pins: pins.into_iter().collect(),
            hostname: false,
            validity: true,
        }
    }

    /// Also require the server name the client connects to to match a subjectAltName of the
    /// certificate: a DNS name (case-insensitive, a `*` left-most label matching one label)
    /// or an IP address. Off by default.
    pub fn check_hostname(mut self, yes: bool) -> Self {
        self.hostname = yes;
        self
    }

    /// Refuse a server certificate outside its validity period (`notBefore <= now < notAfter`).
    /// On by default.
    pub fn check_validity(mut self, yes: bool) -> Self {
        self.validity = yes;
        self
    }

    /// The pins this verifier accepts.
    pub fn pins(&self) -> impl ExactSizeIterator<Item = &Pin> {
        self.pins.iter()
    }

    /// The verifier as rustls takes it, handshake signatures checked by [`SignatureChecked`].
    pub fn into_arc(self) -> Arc<dyn ServerCertVerifier> {
        SignatureChecked::new(self).into_arc()
    }
}

impl ServerCertDecision for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let leaf = Leaf::parse(end_entity, self.hostname)?;
        if !self.pins.contains(&leaf.pin) {
            return Err(PeerRejection::UnexpectedServerPin {
                pin: leaf.pin,
                subject: leaf.subject,
                selected: self.pins.len(),
            }
            .into_rustls());
        }
        if self.validity {
            leaf.check_validity(now)?;
        }
        if self.hostname && !name_matches(&leaf, server_name) {
            let presented = leaf
                .dns_names
                .iter()
                .cloned()
                .chain(leaf.ip_addresses.iter().map(IpAddr::to_string))
                .collect();
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext {
                    expected: server_name.to_owned(),
                    presented,
                },
            ));
        }
        Ok(ServerCertVerified::assertion())
    }
}

/// Whether to accept a server's certificate: the half of a rustls [`ServerCertVerifier`] that
/// differs between verifiers. [`SignatureChecked`] adds the other half, the handshake
/// signature checks, so every server verifier checks those alike.
pub trait ServerCertDecision: fmt::Debug + Send + Sync {
    /// Accepts or refuses the certificate the server presented, as
    /// [`ServerCertVerifier::verify_server_cert`].
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error>;
}

/// A [`ServerCertDecision`] as a rustls [`ServerCertVerifier`]: the certificate is decided on
/// by the decision, the TLS 1.2 and 1.3 handshake signatures are checked with the signature
/// algorithms of [`provider`](super::provider) (aws-lc-rs).
#[derive(Debug)]
pub struct SignatureChecked<D> {
    decision: D,
    algorithms: WebPkiSupportedAlgorithms,
}

impl<D: ServerCertDecision> SignatureChecked<D> {
    /// `decision` with the handshake signature checks.
    pub fn new(decision: D) -> Self {
        Self {
            decision,
            algorithms: signature_algorithms(),
        }
    }

    /// The certificate decision.
    pub fn decision(&self) -> &D {
        &self.decision
    }

    /// The verifier as rustls takes it.
    pub fn into_arc(self) -> Arc<dyn ServerCertVerifier>
    where
        D: 'static,
    {
        Arc::new(self)
    }
}

impl<D: ServerCertDecision> ServerCertVerifier for SignatureChecked<D> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.decision
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
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

fn name_matches(leaf: &Leaf, server_name: &ServerName<'_>) -> bool {
    match server_name {
        ServerName::DnsName(name) => leaf
            .dns_names
            .iter()
            .any(|pattern| dns_name_matches(pattern, name.as_ref())),
        ServerName::IpAddress(ip) => leaf.ip_addresses.contains(&IpAddr::from(*ip)),
        _ => false,
    }
}

/// RFC 6125 matching: case-insensitive, trailing dots ignored, and a left-most label of
/// exactly `*` matching one non-empty label when at least two labels follow it.
fn dns_name_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    let name = name.strip_suffix('.').unwrap_or(name);
    if pattern.is_empty() || name.is_empty() {
        return false;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        if !suffix.contains('.') || suffix.contains('*') {
            return false;
        }
        return match name.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
            None => false,
        };
    }
    !pattern.contains('*') && pattern.eq_ignore_ascii_case(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    fn cert(names: &[&str], ips: &[&str]) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        for ip in ips {
            params
                .subject_alt_names
                .push(SanType::IpAddress(ip.parse().unwrap()));
        }
        params.self_signed(&key).unwrap().der().clone()
    }

    fn name(text: &str) -> ServerName<'static> {
        ServerName::try_from(text.to_owned()).unwrap()
    }

    #[test]
    fn dns_matching() {
        assert!(dns_name_matches("api.example.se", "API.Example.se."));
        assert!(dns_name_matches("*.example.se", "api.example.se"));
        assert!(!dns_name_matches("*.example.se", "example.se"));
        assert!(!dns_name_matches("*.example.se", "a.b.example.se"));
        assert!(!dns_name_matches("*.se", "example.se"));
        assert!(!dns_name_matches("a*.example.se", "ab.example.se"));
        assert!(!dns_name_matches("", ""));
        assert!(!dns_name_matches("example.se", "other.se"));
    }

    #[test]
    fn pins_validity_and_names() {
        let der = cert(&["api.example.se"], &["127.0.0.1"]);
        let pin = Pin::of_certificate(&der).unwrap();
        let now = UnixTime::now();
        let verify = |v: &PinnedServerVerifier, host: &str| {
            v.verify_server_cert(&der, &[], &name(host), &[], now)
        };

        let none = PinnedServerVerifier::new([]);
        let err = verify(&none, "api.example.se").unwrap_err();
        assert!(matches!(
            PeerRejection::from_rustls(&err),
            Some(PeerRejection::UnexpectedServerPin { selected: 0, .. })
        ));

        let pinned = PinnedServerVerifier::new([pin]);
        assert_eq!(pinned.pins().len(), 1);
        verify(&pinned, "wrong.example").unwrap();

        let strict = pinned.clone().check_hostname(true);
        verify(&strict, "api.example.se").unwrap();
        verify(&strict, "127.0.0.1").unwrap();
        for wrong in ["wrong.example", "127.0.0.2", "::1"] {
            assert!(matches!(
                verify(&strict, wrong),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext { .. }
                ))
            ));
        }

        let late = UnixTime::since_unix_epoch(std::time::Duration::from_secs(70_000_000_000));
        assert!(matches!(
            pinned.verify_server_cert(&der, &[], &name("x.example"), &[], late),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        pinned
            .clone()
            .check_validity(false)
            .verify_server_cert(&der, &[], &name("x.example"), &[], late)
            .unwrap();
    }
}
