//! Query strings: percent-decoding and the parameters of list requests.

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

/// Decodes `%XX` escapes and `+` (a space in forms) to UTF-8 text.
pub fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_query",
                            format!("bad percent-escape in the query string near {text:?}"),
                        )
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            "the query string is not UTF-8 after decoding",
        )
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
