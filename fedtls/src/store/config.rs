//! What a store is told: the metadata source and the configuration.

use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

use crate::jwk::Jwks;
use crate::verify::VerifyOptions;

/// Where the signed metadata comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum MetadataSource {
    /// An `http://` or `https://` URL, fetched with conditional requests.
    Url(String),
    /// A file, re-read on every refresh.
    File(PathBuf),
    /// A document in memory (tests, embedding); it never changes.
    Bytes(Vec<u8>),
}

impl FromStr for MetadataSource {
    type Err = Infallible;

    /// `http://…` and `https://…` (any letter case) are URLs; anything else is a file path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        Ok(
            if lower.starts_with("https://") || lower.starts_with("http://") {
                Self::Url(s.to_owned())
            } else {
                Self::File(PathBuf::from(s))
            },
        )
    }
}

impl fmt::Display for MetadataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Bytes(_) => f.write_str("bytes"),
        }
    }
}

impl fmt::Debug for MetadataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(url).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

/// The default largest document accepted (real aggregates are a few tens of MB).
pub const DEFAULT_MAX_BODY: u64 = 100 * 1024 * 1024;

/// How a [`MetadataStore`](super::MetadataStore) fetches, verifies, schedules and caches.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Where the signed metadata comes from.
    pub source: MetadataSource,
    /// The federation's trust anchor.
    pub jwks: Jwks,
    /// Leeway and required issuer. `now` must be `None`: the store verifies against the
    /// clock. `keep_payload` is honoured but not needed (the cache holds the signed bytes).
    pub verify: VerifyOptions,
    /// Where to keep the newest good document across restarts.
    pub cache_file: Option<PathBuf>,
    /// The refresh interval when neither `cache_ttl` nor HTTP says (default 1 h).
    pub default_refresh: Duration,
    /// The shortest interval between refreshes after a good document, so that a
    /// `cache_ttl` of 0 does not spin (default 30 s; at least 1 s).
    pub min_refresh: Duration,
    /// The longest a whole fetch may take, body included (default 30 s).
    pub fetch_timeout: Duration,
    /// The largest document accepted, in bytes (default 100 MiB).
    pub max_body: u64,
    /// The longest wait between retries after failures (default 1 min; at least 100 ms).
    pub retry_cap: Duration,
    /// Extra trusted roots for `https` sources behind a private CA (added to the system's).
    pub extra_root_certificates: Vec<CertificateDer<'static>>,
}

impl StoreConfig {
    /// A configuration with the defaults: refresh hourly unless told otherwise, at most
    /// every 30 s, 30 s fetch timeout, 100 MiB limit, retries capped at 1 min, no cache file.
    pub fn new(source: MetadataSource, jwks: Jwks) -> Self {
        Self {
            source,
            jwks,
            verify: VerifyOptions::default(),
            cache_file: None,
            default_refresh: Duration::from_secs(3600),
            min_refresh: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_BODY,
            retry_cap: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_by_scheme() {
        let parse = |s: &str| s.parse::<MetadataSource>().unwrap();
        assert_eq!(
            parse("https://fed.example/md.jws"),
            MetadataSource::Url("https://fed.example/md.jws".into())
        );
        assert_eq!(
            parse("HTTP://fed.example/md.jws"),
            MetadataSource::Url("HTTP://fed.example/md.jws".into())
        );
        assert_eq!(
            parse("/var/cache/md.jws"),
            MetadataSource::File("/var/cache/md.jws".into())
        );
        assert_eq!(parse("https"), MetadataSource::File("https".into()));
        assert_eq!(parse("ftp://x"), MetadataSource::File("ftp://x".into()));
        assert_eq!(parse("é"), MetadataSource::File("é".into()));
        assert_eq!(
            format!("{:?}", MetadataSource::Bytes(vec![0; 5])),
            "Bytes(5 bytes)"
        );
    }
}
