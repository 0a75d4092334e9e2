//! The client certificate as a TLS-terminating proxy forwards it in a header (`Client-Cert`).
//!
//! Proxies disagree on the encoding, so every form in use is read: RFC 9440 (`:BASE64:`),
//! PEM (with its line breaks turned into spaces or tabs, as nginx's `$ssl_client_cert`),
//! URL-encoded PEM (nginx's `$ssl_client_escaped_cert`) and bare single-line base64 DER.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use fedtls::pin::{Pin, PinError};
use http::{HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::CertificateDer;

use crate::trusted_headers::{self, CLIENT_CERT, CLIENT_CERT_CHAIN};

/// Standard base64 with padding optional (proxies differ on it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The header name (RFC 9440).
pub const CLIENT_CERT_HEADER: &str = CLIENT_CERT;

/// Why a `Client-Cert` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCertError {
    /// The value is empty.
    #[error("the Client-Cert header is empty")]
    Empty,
    /// None of the known encodings decoded.
    #[error("the Client-Cert header is not a certificate in any known encoding ({0})")]
    Undecodable(&'static str),
    /// The bytes decoded but are not an X.509 certificate.
    #[error("the Client-Cert header does not hold an X.509 certificate: {0}")]
    NotACertificate(String),
}

/// The client-certificate headers of a request (`Client-Cert`, `Client-Cert-Chain`, in any
/// spelling a backend folds into them: see [`crate::trusted_headers`]), taken out of it:
/// what a trusted terminator forwarded, and whatever a client managed to add.
#[derive(Debug, Default)]
pub struct ForwardedCertificate {
    certificate: Vec<(HeaderName, HeaderValue)>,
    chain: Vec<(HeaderName, HeaderValue)>,
}

/// Why the client-certificate headers forwarded by a terminator cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedCertError {
    /// A spelling of `Client-Cert` or `Client-Cert-Chain` with `_`, which a terminator never
    /// sends, so it came from the client.
    #[error(
        "the request has a {name} header: only the terminator's own {expected} counts, and a \
         spelling with '_' (which CGI and WSGI backends read as the same header) can only come \
         from the client; configure the terminator to drop client headers whose names contain \
         '_' (nginx: underscores_in_headers off, its default) or to remove every spelling of {expected}"
    )]
    Underscore {
        /// The header's name as it arrived.
        name: String,
        /// `Client-Cert` or `Client-Cert-Chain`.
        expected: &'static str,
    },
    /// More than one `Client-Cert` value: header lines, or a comma-separated list in one.
    #[error(
        "the request has {count} Client-Cert values where a terminator sends exactly one: a \
         terminator that appends to a client's own Client-Cert instead of replacing it lets the \
         client choose its identity; configure the terminator to set (replace) Client-Cert"
    )]
    SeveralCertificates {
        /// How many values arrived.
        count: usize,
    },
    /// `Client-Cert-Chain` without `Client-Cert` (RFC 9440 §2.3 forbids it).
    #[error(
        "the request has a Client-Cert-Chain but no Client-Cert; a terminator sends the chain \
         only with the client certificate (RFC 9440 §2.3): check the terminator's configuration"
    )]
    ChainWithoutCertificate,
    /// The `Client-Cert` value is not usable.
    #[error("{0}")]
    Certificate(#[from] ClientCertError),
    /// A header value holds bytes that are not visible ASCII.
    #[error("the {0} header is not ASCII")]
    NotAscii(&'static str),
    /// `Client-Cert-Chain` is not a list of certificates as RFC 9440 §2.3 defines it.
    #[error(
        "Client-Cert-Chain is malformed: {0}; it must be a list of DER certificates, each \
         :BASE64: (RFC 9440 §2.3), at most {max} of them",
        max = fedtls::tls::MAX_INTERMEDIATES
    )]
    MalformedChain(String),
    /// `Client-Cert-Chain` does not belong to the `Client-Cert` it came with.
    #[error(
        "Client-Cert-Chain does not match Client-Cert: its first certificate (subject {subject}) \
         is not the issuer named by the client certificate ({issuer}); the terminator must \
         forward the chain the client presented, the issuer of the client certificate first"
    )]
    ChainMismatch {
        /// The chain's first certificate's subject.
        subject: String,
        /// The client certificate's issuer.
        issuer: String,
    },
}

impl ForwardedCertError {
    /// True when the headers are fine but the certificate itself is missing or unreadable
    /// (answered like a missing certificate); false when the request is contradictory or
    /// malformed (answered 400).
    pub fn is_unusable_certificate(&self) -> bool {
        matches!(self, Self::Certificate(_) | Self::NotAscii("Client-Cert"))
    }
}

/// A `Client-Cert` and the `Client-Cert-Chain` that came with it, checked to belong
/// together.
#[derive(Debug, Clone)]
pub struct ForwardedChain {
    /// The client certificate.
    pub certificate: CertificateDer<'static>,
    /// The certificates after it, issuer of the client certificate first (maybe none).
    pub intermediates: Vec<CertificateDer<'static>>,
}

impl ForwardedCertificate {
    /// Removes every spelling of `Client-Cert` and `Client-Cert-Chain` from `headers` and
    /// keeps them here, in order.
    pub fn take(headers: &mut HeaderMap) -> Self {
        let mut taken = Self::default();
        let names: Vec<HeaderName> = headers
            .keys()
            .filter(|n| {
                trusted_headers::same_name(n.as_str(), CLIENT_CERT)
                    || trusted_headers::same_name(n.as_str(), CLIENT_CERT_CHAIN)
            })
            .cloned()
            .collect();
        for name in names {
            let into = if trusted_headers::same_name(name.as_str(), CLIENT_CERT) {
                &mut taken.certificate
            } else {
                &mut taken.chain
            };
            if let http::header::Entry::Occupied(entry) = headers.entry(&name) {
                let (_, values) = entry.remove_entry_mult();
                into.extend(values.map(|v| (name.clone(), v)));
            }
        }
        taken
    }

    /// True when the request had none of these headers.
    pub fn is_empty(&self) -> bool {
        self.certificate.is_empty() && self.chain.is_empty()
    }

    /// The client certificate and chain a trusted terminator forwarded, if any. Refused
    /// when a client could have chosen them or added to them: a spelling with `_`, more than
    /// one `Client-Cert` value (a terminator that appends rather than replaces), a
    /// `Client-Cert-Chain` without `Client-Cert`, a malformed chain, or a chain whose first
    /// certificate is not the issuer the client certificate names. Several
    /// `Client-Cert-Chain` lines are one list (RFC 9440 §2.3); later chain certificates
    /// may come in any order (TLS 1.3 §4.4.2 asks receivers to tolerate that).
    pub fn read(&self) -> Result<Option<ForwardedChain>, ForwardedCertError> {
        for (name, expected) in self
            .certificate
            .iter()
            .map(|(n, _)| (n, "Client-Cert"))
            .chain(self.chain.iter().map(|(n, _)| (n, "Client-Cert-Chain")))
        {
            if name.as_str().contains('_') {
                return Err(ForwardedCertError::Underscore {
                    name: name.as_str().to_owned(),
                    expected,
                });
            }
        }
        let count: usize = self
            .certificate
            .iter()
            .map(|(_, v)| v.as_bytes().split(|b| *b == b',').count())
            .sum();
        if count > 1 {
            return Err(ForwardedCertError::SeveralCertificates { count });
        }
        let Some((_, value)) = self.certificate.first() else {
            return if self.chain.is_empty() {
                Ok(None)
            } else {
                Err(ForwardedCertError::ChainWithoutCertificate)
            };
        };
        let text = value
            .to_str()
            .map_err(|_| ForwardedCertError::NotAscii("Client-Cert"))?;
        let certificate = parse_client_cert(text)?;
        let intermediates = parse_chain(&self.chain)?;
        check_issued_by_first(&certificate, &intermediates)?;
        Ok(Some(ForwardedChain {
            certificate,
            intermediates,
        }))
    }
}

/// The certificates of the `Client-Cert-Chain` lines, in order.
fn parse_chain(
    lines: &[(HeaderName, HeaderValue)],
) -> Result<Vec<CertificateDer<'static>>, ForwardedCertError> {
    let malformed = ForwardedCertError::MalformedChain;
    let mut chain = Vec::new();
    for (_, value) in lines {
        let text = value
            .to_str()
            .map_err(|_| ForwardedCertError::NotAscii("Client-Cert-Chain"))?;
        if text.trim_matches([' ', '\t']).is_empty() {
            // An empty list (RFC 8941 §4.2.1).
            continue;
        }
        for member in text.split(',') {
            let position = chain.len() + 1;
            if position > fedtls::tls::MAX_INTERMEDIATES {
                return Err(malformed(format!(
                    "more than {} certificates",
                    fedtls::tls::MAX_INTERMEDIATES
                )));
            }
            let inner = member
                .trim_matches([' ', '\t'])
                .strip_prefix(':')
                .and_then(|m| m.strip_suffix(':'))
                .ok_or_else(|| {
                    malformed(format!(
                        "member {position} is not a byte sequence (:BASE64:)"
                    ))
                })?;
            let der = BASE64
                .decode(inner)
                .map_err(|_| malformed(format!("member {position} is not base64")))?;
            x509_parser::parse_x509_certificate(&der)
                .ok()
                .filter(|(rest, _)| rest.is_empty())
                .ok_or_else(|| {
                    malformed(format!("member {position} is not one X.509 certificate"))
                })?;
            chain.push(CertificateDer::from(der));
        }
    }
    Ok(chain)
}

/// Checks that the chain's first certificate, if any, is the issuer the client certificate
/// names (subject and issuer names compared as DER, as path building does).
fn check_issued_by_first(
    certificate: &CertificateDer<'_>,
    chain: &[CertificateDer<'_>],
) -> Result<(), ForwardedCertError> {
    let Some(first) = chain.first() else {
        return Ok(());
    };
    let (_, leaf) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| ClientCertError::NotACertificate(e.to_string()))?;
    let (_, first) = x509_parser::parse_x509_certificate(first)
        .map_err(|_| ForwardedCertError::MalformedChain("member 1 is not a certificate".into()))?;
    let issuer = leaf.tbs_certificate.issuer();
    let subject = first.tbs_certificate.subject();
    if issuer.as_raw() == subject.as_raw() {
        Ok(())
    } else {
        Err(ForwardedCertError::ChainMismatch {
            subject: subject.to_string(),
            issuer: issuer.to_string(),
        })
    }
}

/// Decodes a `Client-Cert` header value into the certificate's DER.
pub fn parse_client_cert(value: &str) -> Result<CertificateDer<'static>, ClientCertError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ClientCertError::Empty);
    }
    let der = if let Some(inner) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
        BASE64
            .decode(inner)
            .map_err(|_| ClientCertError::Undecodable("RFC 9440 byte sequence"))?
    } else if value.starts_with("-----BEGIN%20") {
        let decoded = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| ClientCertError::Undecodable("URL-encoded PEM"))?;
        decode_pem_like(&decoded)?
    } else if value.starts_with("-----BEGIN") {
        decode_pem_like(value)?
    } else {
        let compact: String = value.split_ascii_whitespace().collect();
        BASE64
            .decode(&compact)
            .map_err(|_| ClientCertError::Undecodable("base64 DER"))?
    };
    // Pinning the certificate checks its X.509 framing.
    Pin::of_certificate(&der).map_err(|e| {
        ClientCertError::NotACertificate(match e {
            PinError::BadCertificate(framing) => framing.to_string(),
            other => other.to_string(),
        })
    })?;
    Ok(CertificateDer::from(der))
}

/// PEM whose line breaks may have become spaces or tabs.
fn decode_pem_like(text: &str) -> Result<Vec<u8>, ClientCertError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = text.find(BEGIN).ok_or(ClientCertError::Undecodable(
        "PEM without a CERTIFICATE block",
    ))? + BEGIN.len();
    let len = text[start..]
        .find(END)
        .ok_or(ClientCertError::Undecodable("PEM without an END line"))?;
    let body: String = text[start..start + len].split_ascii_whitespace().collect();
    BASE64
        .decode(body)
        .map_err(|_| ClientCertError::Undecodable("PEM body is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn b64_encode(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn pem_encode(label: &str, der: &[u8]) -> String {
        pem::encode_config(
            &pem::Pem::new(label, der),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    fn cert() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/interop/certs/interop-sis-client.pem"
        );
        let pem = std::fs::read(path).unwrap();
        fedtls::pin::first_pem_certificate(&pem).unwrap().to_vec()
    }

    #[test]
    fn reads_every_encoding_proxies_use() {
        let der = cert();
        let pem = pem_encode("CERTIFICATE", &der);
        let escaped: String = pem
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let forms = [
            format!(":{}:", b64_encode(&der)),
            pem.replace('\n', " "),
            pem.replace('\n', "\t"),
            escaped,
            b64_encode(&der),
        ];
        for form in &forms {
            assert_eq!(
                parse_client_cert(form).unwrap().as_ref(),
                der.as_slice(),
                "{form}"
            );
        }
    }

    #[test]
    fn forwarded_headers_with_bytes_that_are_not_ascii_are_refused_not_trusted() {
        let mut headers = HeaderMap::new();
        let der = cert();
        let good = HeaderValue::try_from(format!(":{}:", b64_encode(&der))).unwrap();
        let binary = HeaderValue::from_bytes(b":\xff\xfe:").unwrap();
        headers.insert("client-cert", good.clone());
        headers.insert("client-cert-chain", binary.clone());
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let taken = ForwardedCertificate::take(&mut headers);
        assert_eq!(headers.len(), 1, "only the certificate headers are taken");
        let err = taken.read().unwrap_err();
        assert_eq!(err, ForwardedCertError::NotAscii("Client-Cert-Chain"));
        assert!(!err.is_unusable_certificate());

        headers.insert("client-cert", binary);
        let err = ForwardedCertificate::take(&mut headers).read().unwrap_err();
        assert!(err.is_unusable_certificate(), "{err}");

        headers.insert("client-cert", good);
        let read = ForwardedCertificate::take(&mut headers)
            .read()
            .unwrap()
            .unwrap();
        assert_eq!(read.certificate.as_ref(), der.as_slice());
        assert!(read.intermediates.is_empty());
        assert!(
            ForwardedCertificate::take(&mut headers)
                .read()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn refuses_garbage_with_a_reason() {
        assert_eq!(parse_client_cert("  "), Err(ClientCertError::Empty));
        assert!(matches!(
            parse_client_cert(":!!:"),
            Err(ClientCertError::Undecodable(_))
        ));
        assert!(matches!(
            parse_client_cert("-----BEGIN CERTIFICATE----- AAAA"),
            Err(ClientCertError::Undecodable(_))
        ));
        assert!(matches!(
            parse_client_cert("AAAA"),
            Err(ClientCertError::NotACertificate(_))
        ));
        assert!(matches!(
            parse_client_cert("%ZZ-----BEGIN%20"),
            Err(ClientCertError::Undecodable(_))
        ));
    }
}
