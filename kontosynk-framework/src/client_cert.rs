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

    /// The forwarded `Client-Cert` value, if any; refused when a client could have chosen it.
    pub fn certificate(&self) -> Result<Option<&HeaderValue>, ForwardedCertError> {
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
        Ok(self.certificate.first().map(|(_, v)| v))
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
