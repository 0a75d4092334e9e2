//! What a peer's certificate says, for checks and reports outside the handshake: the GNAP
//! server's client authentication and the health probe's report read it the same way.

use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::pin::Pin;

/// A presented end-entity certificate: its pin, subject, validity and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// The RFC 7469 pin of its public key.
    pub pin: Pin,
    /// The subject, as text (`CN=…, O=…`).
    pub subject: String,
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// The subjectAltName DNS names.
    pub dns_names: Vec<String>,
    /// The subjectAltName IP addresses.
    pub ip_addresses: Vec<IpAddr>,
}

/// Why a presented certificate cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateReadError {
    /// Not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    NotDer(String),
    /// Bytes after the certificate.
    #[error("{0} unexpected bytes after the end of the DER certificate")]
    TrailingBytes(usize),
    /// An extension every reader must understand is malformed.
    #[error("malformed certificate: {extension} extension: {message}")]
    Extension {
        /// `basicConstraints` or `subjectAltName`.
        extension: &'static str,
        /// What the parser said.
        message: String,
    },
}

impl PresentedCertificate {
    /// Reads a DER certificate; a malformed basicConstraints or subjectAltName extension
    /// refuses it, as a TLS stack would.
    pub fn read(der: &[u8]) -> Result<Self, CertificateReadError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| CertificateReadError::NotDer(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateReadError::TrailingBytes(rest.len()));
        }
        let tbs = &cert.tbs_certificate;
        let malformed = |extension| {
            move |e: x509_parser::error::X509Error| CertificateReadError::Extension {
                extension,
                message: e.to_string(),
            }
        };
        tbs.basic_constraints()
            .map_err(malformed("basicConstraints"))?;
        let (dns_names, ip_addresses) =
            super::leaf::subject_alt_names(tbs).map_err(malformed("subjectAltName"))?;
        Ok(Self {
            pin: Pin::of_spki(tbs.public_key().raw),
            subject: tbs.subject.to_string(),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            dns_names,
            ip_addresses,
        })
    }
}
