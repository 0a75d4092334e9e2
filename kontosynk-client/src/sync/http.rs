//! HTTP plumbing of the sync: request URLs under an opaque base URL, GET of one page with a
//! size cap, and the server's clock from its `Date` header.

use reqwest::Url;
use ss12000::Timestamp;

use super::error::SyncError;
use crate::client::{Sender, error_chain};

/// One fetched response body and when the server says it produced it.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The request URL (for error messages).
    pub url: String,
    /// The body, at most the configured page size cap.
    pub body: Vec<u8>,
    /// The server's `Date` header, when present and readable.
    pub server_date: Option<Timestamp>,
}

/// A failure of [`get_page`], with the HTTP status kept so callers can react to it.
#[derive(Debug)]
pub(crate) struct FetchError {
    pub status: Option<u16>,
    pub error: SyncError,
}

/// `base` joined with one path segment. The base URL is opaque (it may end in `/v2.0` or
/// `/v2.0/`), so the segment is appended rather than resolved against it.
pub(crate) fn endpoint(base: &Url, segment: &str) -> Result<Url, SyncError> {
    let text = format!("{}/{segment}", base.as_str().trim_end_matches('/'));
    Url::parse(&text).map_err(|e| SyncError::Url {
        url: text.clone(),
        message: e.to_string(),
    })
}

/// `url` with query parameters added (form-encoded: `+`, `/` and `=` in page tokens become
/// `%2B`, `%2F`, `%3D`).
pub(crate) fn with_query(url: &Url, pairs: &[(&str, &str)]) -> Url {
    let mut url = url.clone();
    if !pairs.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
    }
    url
}

/// GETs one page, requiring 200 and a body of at most `max_bytes`.
pub(crate) async fn get_page(
    sender: &Sender,
    url: Url,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    let shown = url.to_string();
    let mut response = sender
        .send_builder(
            sender
                .http()
                .get(url)
                .header(http::header::ACCEPT, "application/json"),
        )
        .await
        .map_err(|e| FetchError {
            status: None,
            error: SyncError::Request(e),
        })?;
    let body_error = |e: reqwest::Error| FetchError {
        status: None,
        error: SyncError::Body {
            url: shown.clone(),
            message: error_chain(&e),
        },
    };
    let status = response.status();
    let server_date = response
        .headers()
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    if status != reqwest::StatusCode::OK {
        let body = response.text().await.unwrap_or_default();
        return Err(FetchError {
            status: Some(status.as_u16()),
            error: SyncError::Status {
                method: "GET",
                url: shown.clone(),
                status: status.as_u16(),
                body: excerpt(&body),
            },
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(body_error)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError {
                status: Some(status.as_u16()),
                error: SyncError::BadPage {
                    url: shown.clone(),
                    message: format!(
                        "page larger than {max_bytes} bytes (lower --limit or raise the cap)"
                    ),
                },
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        url: shown,
        body,
        server_date,
    })
}

/// The first 200 characters of an error body, on one line.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

/// Parses an HTTP date (RFC 9110 §5.6.7) with the `httpdate` crate: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850 and asctime forms a recipient
/// must also accept; anything else gives `None` (the caller then uses its own clock).
pub(crate) fn parse_http_date(text: &str) -> Option<Timestamp> {
    let at = httpdate::parse_http_date(text).ok()?;
    let micros = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros();
    Some(Timestamp::from_unix_micros(i64::try_from(micros).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_to_opaque_base_urls() {
        for base in ["https://s.example/v2.0", "https://s.example/v2.0/"] {
            let base = Url::parse(base).unwrap();
            assert_eq!(
                endpoint(&base, "persons").unwrap().as_str(),
                "https://s.example/v2.0/persons"
            );
        }
    }

    #[test]
    fn page_tokens_are_url_encoded() {
        let url = Url::parse("https://s.example/persons").unwrap();
        let url = with_query(&url, &[("limit", "10"), ("pageToken", "a+b/c==")]);
        assert_eq!(url.query(), Some("limit=10&pageToken=a%2Bb%2Fc%3D%3D"));
        let back: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(back[1].1, "a+b/c==");
    }

    #[test]
    fn reads_the_three_http_date_forms() {
        for good in [
            "Sat, 21 Nov 2026 23:23:44 GMT",
            "Saturday, 21-Nov-26 23:23:44 GMT",
            "Sat Nov 21 23:23:44 2026",
        ] {
            assert_eq!(
                parse_http_date(good).unwrap().to_string(),
                "2026-11-21T23:23:44Z",
                "{good}"
            );
        }
        for bad in [
            "",
            "Sat, 21 Nov 2026 23:23:44",
            "Sat, 21 Foo 2026 23:23:44 GMT",
            "Sat, 21 Nov 2026 23:23:44 GMT extra",
        ] {
            assert!(parse_http_date(bad).is_none(), "{bad}");
        }
    }
}
