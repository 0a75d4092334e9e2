//! What the verifiers read from a presented certificate, parsed once per handshake.

use std::net::IpAddr;
use std::time::Duration;

use rustls::CertificateError;
use rustls_pki_types::UnixTime;
use x509_parser::certificate::{TbsCertificate, X509Certificate};
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::pin::Pin;

/// The parts of an end-entity certificate the verifiers decide on.
pub(crate) struct Leaf {
    pub pin: Pin,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

/// Parses a DER certificate; anything unreadable is `BadEncoding`.
fn parse(der: &[u8]) -> Result<X509Certificate<'_>, rustls::Error> {
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let (rest, cert) = X509Certificate::from_der(der).map_err(|_| bad())?;
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(cert)
}

/// The DNS names and IP addresses of a certificate's subjectAltName extension (empty without
/// one); a malformed extension is an error.
pub(super) fn subject_alt_names(
    tbs: &TbsCertificate<'_>,
) -> Result<(Vec<String>, Vec<IpAddr>), X509Error> {
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let san = tbs.subject_alternative_name()?;
    for name in san.iter().flat_map(|san| &san.value.general_names) {
        match name {
            GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    ip_addresses.push(IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    ip_addresses.push(IpAddr::from(v6));
                }
            }
            _ => {}
        }
    }
    Ok((dns_names, ip_addresses))
}

impl Leaf {
    /// Reads a DER certificate. Subject alternative names are read only with `names`.
    pub fn parse(der: &[u8], names: bool) -> Result<Self, rustls::Error> {
        let cert = parse(der)?;
        let tbs = &cert.tbs_certificate;
        let mut leaf = Leaf {
            pin: Pin::of_spki(tbs.public_key().raw),
            subject: tbs.subject.to_string(),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
        };
        if names {
            (leaf.dns_names, leaf.ip_addresses) = subject_alt_names(tbs)
                .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        }
        Ok(leaf)
    }

    /// `notBefore <= now < notAfter`, with rustls' own errors (and alerts) otherwise.
    pub fn check_validity(&self, now: UnixTime) -> Result<(), rustls::Error> {
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if secs < self.not_before {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext {
                    time: now,
                    not_before: unix_time(self.not_before),
                },
            ));
        }
        if secs >= self.not_after {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext {
                    time: now,
                    not_after: unix_time(self.not_after),
                },
            ));
        }
        Ok(())
    }
}

/// True when the DER certificate says `basicConstraints cA: TRUE`.
pub(crate) fn is_ca(der: &[u8]) -> bool {
    parse(der).is_ok_and(|cert| {
        cert.tbs_certificate
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
    })
}

fn unix_time(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn cert(not_before: i64, not_after: i64) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("::1".parse().unwrap()));
        params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    #[test]
    fn validity_bounds_are_half_open() {
        let der = cert(1_000_000, 2_000_000);
        let leaf = Leaf::parse(&der, false).unwrap();
        assert_eq!(leaf.pin, Pin::of_certificate(&der).unwrap());
        assert!(leaf.dns_names.is_empty(), "names only on request");
        assert!(matches!(
            leaf.check_validity(at(999_999)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext { .. }
            ))
        ));
        leaf.check_validity(at(1_000_000)).unwrap();
        leaf.check_validity(at(1_999_999)).unwrap();
        assert!(matches!(
            leaf.check_validity(at(2_000_000)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
    }

    #[test]
    fn reads_names_and_refuses_garbage() {
        let der = cert(0, 4_000_000_000);
        let leaf = Leaf::parse(&der, true).unwrap();
        assert_eq!(leaf.dns_names, ["a.example"]);
        assert_eq!(leaf.ip_addresses, ["::1".parse::<IpAddr>().unwrap()]);
        assert!(!is_ca(&der));
        let mut trailing = der.clone();
        trailing.push(0);
        for bad in [&b"garbage"[..], &der[..der.len() - 1], &trailing[..]] {
            assert!(matches!(
                Leaf::parse(bad, true),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::BadEncoding
                ))
            ));
        }
    }
}
