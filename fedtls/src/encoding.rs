//! Base64 flavours used by JOSE, RFC 7469 pins and PEM, in one place so every module of this
//! crate decodes alike (crate-private plumbing: other crates use `base64` directly).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// base64url without padding, as JOSE requires; tolerates trailing `=` that some producers add.
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard alphabet, padding optional.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes as base64url without padding (JOSE).
pub(crate) fn b64url_encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url (JOSE); padding is tolerated, any other deviation is an error.
pub(crate) fn b64url_decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, base64::DecodeError> {
    URL_LENIENT.decode(text)
}

/// Encodes as standard base64 with padding (RFC 7469 pins, PEM bodies).
pub(crate) fn b64_encode(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64, padding optional.
pub(crate) fn b64_decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD_LENIENT.decode(text)
}

/// Wraps DER bytes as a PEM block with 64-column lines and a trailing newline.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = b64_encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        // `body` is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes the first PEM block labelled `label` (e.g. `CERTIFICATE`) from `text`.
///
/// Metadata embeds thousands of public certificates; this decoder is several times faster
/// than a constant-time one, which buys nothing for public data. Use `rustls-pki-types` for
/// private keys. Lines may end in `\n` or `\r\n`; spaces and tabs around lines are ignored.
pub(crate) fn pem_decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let body = &text[start..];
    let body = &body[..body.find(&end)?];
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let mut lines = body
        .split('\n')
        .map(|line| line.trim_matches([' ', '\t', '\r']))
        .filter(|line| !line.is_empty())
        .peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        if !last && line.len() % 4 != 0 {
            // Irregular line lengths: decode the body as one piece instead.
            let compact: String = body.split_ascii_whitespace().collect();
            return STANDARD_LENIENT.decode(compact).ok();
        }
        STANDARD_LENIENT.decode_vec(line, &mut out).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decode_accepts_optional_padding_only() {
        assert_eq!(b64url_decode("AQ").unwrap(), vec![1]);
        assert_eq!(b64url_decode("AQ==").unwrap(), vec![1]);
        assert!(
            b64url_decode("A+8").is_err(),
            "standard alphabet is not base64url"
        );
    }

    #[test]
    fn pem_decode_round_trips_and_tolerates_layout() {
        let der: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        let pem = pem_encode("CERTIFICATE", &der);
        assert_eq!(pem_decode(&pem, "CERTIFICATE").unwrap(), der);
        assert_eq!(
            pem_decode(&pem.replace('\n', "\r\n"), "CERTIFICATE").unwrap(),
            der
        );
        let ragged = pem.replacen('\n', "", 2).replace(
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\n",
        );
        assert_eq!(pem_decode(&ragged, "CERTIFICATE").unwrap(), der);
        let one_line = format!(
            "-----BEGIN CERTIFICATE-----{}-----END CERTIFICATE-----",
            b64_encode(&der)
        );
        assert_eq!(pem_decode(&one_line, "CERTIFICATE").unwrap(), der);
        assert!(pem_decode(&pem, "PRIVATE KEY").is_none());
        assert!(
            pem_decode(
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----",
                "CERTIFICATE"
            )
            .is_none()
        );
        assert!(pem_decode("-----BEGIN CERTIFICATE-----\nAAAA", "CERTIFICATE").is_none());
    }

    #[test]
    fn pem_lines_are_64_columns() {
        let pem = pem_encode("CERTIFICATE", &[7u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
    }
}
