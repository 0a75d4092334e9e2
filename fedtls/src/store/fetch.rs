//! Getting the signed bytes: HTTP(S) with conditional requests, size limit and timeout;
//! files with a size limit. Plus the HTTP caching headers that drive the schedule.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::StoreError;
use super::schedule::{HttpFreshness, RefreshBasis};

/// The most memory reserved for a body before its bytes arrive.
const INITIAL_CAPACITY_CAP: usize = 16 * 1024 * 1024;

/// The most redirects followed to the metadata (an operator moving the document, a CDN),
/// each to an `https` URL only.
pub(crate) const MAX_REDIRECTS: usize = 3;

/// `url`, and where redirects led when they led elsewhere: every error names the URL that
/// actually failed, not only the configured one.
fn shown(url: &str, current: &reqwest::Url) -> String {
    if current.as_str() == url {
        url.to_owned()
    } else {
        format!("{url} (redirected to {current})")
    }
}

/// `ETag` and `Last-Modified` of the response that delivered the current document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Validators {
    pub etag: Option<HeaderValue>,
    pub last_modified: Option<HeaderValue>,
}

impl Validators {
    fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            etag: headers.get(header::ETAG).cloned(),
            last_modified: headers.get(header::LAST_MODIFIED).cloned(),
        }
    }

    fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    /// Fills in what a `304` carries; keeps the rest (RFC 9111 §4.3.4).
    fn updated_by(&self, headers: &HeaderMap) -> Self {
        let fresh = Self::from_headers(headers);
        Self {
            etag: fresh.etag.or_else(|| self.etag.clone()),
            last_modified: fresh.last_modified.or_else(|| self.last_modified.clone()),
        }
    }
}

/// What an HTTP fetch produced.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// A `2xx` with its body.
    Body {
        bytes: Vec<u8>,
        validators: Validators,
        freshness: Option<HttpFreshness>,
    },
    /// `304 Not Modified`: the current document is still the one published.
    NotModified {
        validators: Validators,
        freshness: Option<HttpFreshness>,
    },
}

/// One GET of `url`, conditional on `validators`, with the whole exchange (connect,
/// headers and body) bounded by `timeout` and the body by `max_body` bytes.
pub(crate) async fn fetch_url(
    client: &reqwest::Client,
    url: &str,
    validators: Option<&Validators>,
    timeout: Duration,
    max_body: u64,
) -> Result<Fetched, StoreError> {
    let timed_out = || StoreError::Timeout {
        url: url.to_owned(),
        after: timeout,
    };
    match tokio::time::timeout(timeout, fetch_inner(client, url, validators, max_body)).await {
        // reqwest's own timeout (the same duration) may fire first.
        Ok(Err(Failure::TimedOut)) | Err(_) => Err(timed_out()),
        Ok(Err(Failure::Store(e))) => Err(e),
        Ok(Ok(fetched)) => Ok(fetched),
    }
}

/// A fetch failure, with reqwest's timeouts told apart so they are reported as such.
enum Failure {
    TimedOut,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

async fn fetch_inner(
    client: &reqwest::Client,
    url: &str,
    validators: Option<&Validators>,
    max_body: u64,
) -> Result<Fetched, Failure> {
    let (mut response, current) = send_following_redirects(client, url, validators).await?;
    let status = response.status();
    let now = crate::verify::unix_now();
    let url = &shown(url, &current);
    if status == StatusCode::NOT_MODIFIED {
        let headers = response.headers();
        return match validators {
            Some(previous) if !previous.is_empty() => Ok(Fetched::NotModified {
                validators: previous.updated_by(headers),
                freshness: http_freshness(headers, now),
            }),
            _ => Err(StoreError::Fetch {
                url: url.to_owned(),
                reason: "304 Not Modified to an unconditional request".to_owned(),
            }
            .into()),
        };
    }
    if !status.is_success() {
        return Err(StoreError::HttpStatus {
            url: url.to_owned(),
            status: status.as_u16(),
        }
        .into());
    }
    if let Some(length) = response.content_length()
        && length > max_body
    {
        return Err(StoreError::TooLarge {
            what: format!("{url} (Content-Length {length})"),
            limit: max_body,
        }
        .into());
    }
    let validators = Validators::from_headers(response.headers());
    let freshness = http_freshness(response.headers(), now);
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    // Trust an announced length for the first allocation only up to a point: the body
    // still has to arrive before more memory is committed to it.
    let initial = response
        .content_length()
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(64 * 1024)
        .min(limit)
        .min(INITIAL_CAPACITY_CAP);
    let mut bytes = Vec::with_capacity(initial);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fetch_error(url, "reading the body failed", &e))?
    {
        if chunk.len() > limit.saturating_sub(bytes.len()) {
            return Err(StoreError::TooLarge {
                what: url.to_owned(),
                limit: max_body,
            }
            .into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body {
        bytes,
        validators,
        freshness,
    })
}

/// GETs `url` (conditional on `validators`), following at most [`MAX_REDIRECTS`] redirects,
/// each to an `https` URL. Redirects are followed here rather than by reqwest so that every
/// error can name the URL that failed (reqwest reports errors after a redirect against the
/// first URL). Returns the final response and its URL.
async fn send_following_redirects(
    client: &reqwest::Client,
    url: &str,
    validators: Option<&Validators>,
) -> Result<(reqwest::Response, reqwest::Url), Failure> {
    let mut current = reqwest::Url::parse(url).map_err(|e| StoreError::Fetch {
        url: url.to_owned(),
        reason: format!("not a URL: {e}"),
    })?;
    let mut redirects = 0;
    loop {
        let mut request = client.get(current.clone());
        if let Some(v) = validators.filter(|v| !v.is_empty()) {
            if let Some(etag) = &v.etag {
                request = request.header(header::IF_NONE_MATCH, etag.clone());
            }
            if let Some(modified) = &v.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, modified.clone());
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| fetch_error(&shown(url, &current), "request failed", &e))?;
        let status = response.status();
        let location = response.headers().get(header::LOCATION);
        let (true, Some(location)) = (
            status.is_redirection() && status != StatusCode::NOT_MODIFIED,
            location,
        ) else {
            return Ok((response, current));
        };
        let refused = |reason: String| StoreError::Fetch {
            url: shown(url, &current),
            reason,
        };
        let target = location
            .to_str()
            .ok()
            .and_then(|text| current.join(text).ok())
            .ok_or_else(|| {
                refused(format!(
                    "HTTP {status} with an unreadable Location: {location:?}"
                ))
            })?;
        if target.scheme() != "https" {
            return Err(refused(format!(
                "the redirect to {target} was not followed: metadata redirects are followed to \
                 https URLs only; configure the document's final URL"
            ))
            .into());
        }
        redirects += 1;
        if redirects > MAX_REDIRECTS {
            return Err(refused(format!(
                "more than {MAX_REDIRECTS} redirects (the last to {target}); configure the \
                 document's final URL"
            ))
            .into());
        }
        current = target;
    }
}

/// A fetch error with the whole chain of causes (reqwest's top level alone says little).
fn fetch_error(url: &str, what: &str, error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::TimedOut;
    }
    let mut reason = if error.is_connect() {
        format!("{what}: cannot connect")
    } else {
        what.to_owned()
    };
    reason.push_str(": ");
    reason.push_str(&crate::error_chain(error));
    Failure::Store(StoreError::Fetch {
        url: url.to_owned(),
        reason,
    })
}

/// Reads a whole file, refusing one larger than `max_body` bytes (blocking).
pub(crate) fn read_file(path: &Path, max_body: u64) -> Result<Vec<u8>, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();
    if length > max_body {
        return Err(StoreError::TooLarge {
            what: path.display().to_string(),
            limit: max_body,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.take(max_body.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_body {
        return Err(StoreError::TooLarge {
            what: path.display().to_string(),
            limit: max_body,
        });
    }
    Ok(bytes)
}

/// How long HTTP says the response stays fresh (RFC 9111 §4.2): `Cache-Control: max-age`
/// (`no-cache` and `no-store` meaning zero), else `Expires` relative to `Date` (or to `now`
/// without one), minus `Age`. `None` when the response says nothing about freshness.
pub(crate) fn http_freshness(headers: &HeaderMap, now: i64) -> Option<HttpFreshness> {
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (lifetime, basis) = if let Some(max_age) = cache_control_max_age(headers) {
        (max_age, RefreshBasis::MaxAge)
    } else if let Some(expires) = headers.get(header::EXPIRES) {
        // An invalid date (the classic "0") means "already expired".
        let expires = expires.to_str().ok().and_then(parse_http_date);
        let date = headers
            .get(header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
            .unwrap_or(now);
        let lifetime = expires.map_or(0, |e| u64::try_from(e.saturating_sub(date)).unwrap_or(0));
        (lifetime, RefreshBasis::Expires)
    } else {
        return None;
    };
    Some(HttpFreshness {
        secs: lifetime.saturating_sub(age),
        basis,
    })
}

/// `max-age` from every `Cache-Control` header; `no-cache`/`no-store` count as zero, an
/// unparseable `max-age` as zero (stale), several values as the smallest.
fn cache_control_max_age(headers: &HeaderMap) -> Option<u64> {
    let mut found: Option<u64> = None;
    let mut keep = |secs: u64| found = Some(found.map_or(secs, |f| f.min(secs)));
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("max-age") {
                keep(argument.and_then(|a| a.parse().ok()).unwrap_or(0));
            } else if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store")
            {
                keep(0);
            }
        }
    }
    found
}

/// Parses an HTTP date (RFC 9110 §5.6.7) in any of its three formats to Unix seconds:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`, `Sun Nov  6 08:49:37 1994`
/// (the `httpdate` crate, which also requires the weekday to match the date).
pub(crate) fn parse_http_date(text: &str) -> Option<i64> {
    let at = httpdate::parse_http_date(text).ok()?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn http_dates_in_all_three_formats() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        for bad in [
            "",
            "0",
            "-1",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 Nov 99999999999 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn freshness_from_cache_control_expires_and_age() {
        let now = 784_111_777;
        assert_eq!(http_freshness(&headers(&[]), now), None);
        assert_eq!(
            http_freshness(&headers(&[("cache-control", "public, max-age=300")]), now),
            Some(HttpFreshness {
                secs: 300,
                basis: RefreshBasis::MaxAge
            })
        );
        assert_eq!(
            http_freshness(
                &headers(&[("cache-control", "max-age=\"300\""), ("age", "100")]),
                now
            )
            .map(|f| f.secs),
            Some(200)
        );
        assert_eq!(
            http_freshness(&headers(&[("cache-control", "no-cache")]), now).map(|f| f.secs),
            Some(0)
        );
        assert_eq!(
            http_freshness(&headers(&[("cache-control", "max-age=soon")]), now).map(|f| f.secs),
            Some(0)
        );
        // max-age wins over Expires.
        assert_eq!(
            http_freshness(
                &headers(&[
                    ("cache-control", "max-age=60"),
                    ("expires", "Sun, 06 Nov 1994 09:49:37 GMT"),
                ]),
                now
            ),
            Some(HttpFreshness {
                secs: 60,
                basis: RefreshBasis::MaxAge
            })
        );
        // Expires relative to Date, not to our clock.
        assert_eq!(
            http_freshness(
                &headers(&[
                    ("date", "Sun, 06 Nov 1994 08:00:00 GMT"),
                    ("expires", "Sun, 06 Nov 1994 08:10:00 GMT"),
                ]),
                now + 86_400
            ),
            Some(HttpFreshness {
                secs: 600,
                basis: RefreshBasis::Expires
            })
        );
        // Without Date: relative to now. Invalid or past: zero.
        assert_eq!(
            http_freshness(
                &headers(&[("expires", "Sun, 06 Nov 1994 08:59:37 GMT")]),
                now
            )
            .map(|f| f.secs),
            Some(600)
        );
        assert_eq!(
            http_freshness(&headers(&[("expires", "0")]), now).map(|f| f.secs),
            Some(0)
        );
        assert_eq!(
            http_freshness(
                &headers(&[("expires", "Sun, 06 Nov 1994 07:00:00 GMT")]),
                now
            )
            .map(|f| f.secs),
            Some(0)
        );
    }
}
