//! Query strings: percent-decoding and the parameters of list requests.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::error::ApiError;

/// The decoded `name=value` pairs of a query string, in order (repeats kept).
pub fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (a space in forms) to UTF-8 text (the `percent-encoding`
/// crate). A `%` without two hex digits after it, or bytes that are not UTF-8 once decoded,
/// are a 400 `invalid_query`: a malformed query is refused rather than read literally.
pub fn percent_decode(text: &str) -> Result<String, ApiError> {
    let malformed = text.split('%').skip(1).any(|after| {
        !after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("bad percent-escape in the query string near {text:?}"),
        ));
    }
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8()
        .map(String::from)
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                "the query string is not UTF-8 after decoding",
            )
        })
}

/// Everything but the unreserved characters of RFC 3986 (`A-Z a-z 0-9 - . _ ~`).
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query value (everything but unreserved characters).
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_round_trips() {
        let pairs = parse_query(Some(
            "a=1&meta.modified.after=2026-11-21T10%3A00%3A00%2B01%3A00&b",
        ))
        .unwrap();
        assert_eq!(pairs[1].1, "2026-11-21T10:00:00+01:00");
        assert_eq!(pairs[2], ("b".to_owned(), String::new()));
        assert_eq!(
            percent_decode(&percent_encode("a+b/=c ö")).unwrap(),
            "a+b/=c ö"
        );
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}
