//! Keeping a document (the SSO-link JSON or the SAML aggregate) fresh for a long-running
//! portal, with the behaviour of the FedTLS metadata store (`fedtls::store`, whose fetch
//! internals are private to it):
//!
//! - **Conditional requests**: `If-None-Match` / `If-Modified-Since` from the last answer;
//!   `304 Not Modified` keeps the current document.
//! - **Schedule**: the next refresh after the HTTP freshness (`Cache-Control: max-age`,
//!   `Expires`) or `default_refresh`, never sooner than `min_refresh`.
//! - **Failures** (network, timeout, HTTP status, a body over `max_body`, a document that does
//!   not parse or verify): the last good document stays in use, the error is recorded in
//!   [`FeedStatus`], and the attempt is retried with exponential backoff and full jitter,
//!   capped at `retry_cap`.
//! - **Fail closed**: a document past its own expiry ([`FeedDocument::expires_at`], the SAML
//!   aggregate's `validUntil`) is never served.
//! - **Cache file**: the exact bytes of every new good document, replaced atomically; on start
//!   a cache that still parses is used at once.
//!
//! Sources are https URLs or files; plain http only to loopback hosts (tests, a local proxy).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use rustls_pki_types::CertificateDer;

/// A document a [`Feed`] keeps: it may say until when it may be used.
pub trait FeedDocument: Send + Sync + 'static {
    /// Unix seconds after which the document must not be used, if it says.
    fn expires_at(&self) -> Option<i64> {
        None
    }
}

/// Where a document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An https URL (or http to a loopback host).
    Url(String),
    /// A local file, read on every refresh.
    File(PathBuf),
}

impl FromStr for Source {
    type Err = FetchError;

    /// `https://…` (or `http://` to 127.0.0.1, `[::1]` or localhost) is a URL, anything else a
    /// file path.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.to_ascii_lowercase();
        if !lower.starts_with("https://") && !lower.starts_with("http://") {
            return Ok(Self::File(PathBuf::from(text)));
        }
        let invalid = |reason: &str| FetchError::InvalidSource {
            given: text.to_owned(),
            reason: reason.to_owned(),
        };
        let url = reqwest::Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() {
            return Err(invalid("the URL has no host"));
        }
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        if url.scheme() == "http" && !loopback {
            return Err(invalid("use https (plain http only to a loopback host)"));
        }
        Ok(Self::Url(url.to_string()))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The largest document fetched by default: the national SAML aggregate is about 10 MB.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024 * 1024;

/// How a [`Feed`] fetches and schedules.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Where the document comes from.
    pub source: Source,
    /// Where the last good document's bytes are kept across restarts.
    pub cache_file: Option<PathBuf>,
    /// The largest body accepted.
    pub max_body: u64,
    /// The longest a whole fetch (connect, headers, body) may take.
    pub fetch_timeout: Duration,
    /// The refresh interval when the server gives no freshness.
    pub default_refresh: Duration,
    /// The shortest refresh interval, whatever the server says.
    pub min_refresh: Duration,
    /// The longest wait between retries after failures.
    pub retry_cap: Duration,
    /// CA certificates trusted besides the webpki roots (a test server, an internal CA).
    pub extra_root_certificates: Vec<CertificateDer<'static>>,
}

impl FetchConfig {
    /// Defaults: no cache file, 64 MiB, 30 s timeout, hourly refresh (at least a minute
    /// apart), retries capped at 15 minutes.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            cache_file: None,
            max_body: DEFAULT_MAX_BODY,
            fetch_timeout: Duration::from_secs(30),
            default_refresh: Duration::from_secs(3600),
            min_refresh: Duration::from_secs(60),
            retry_cap: Duration::from_secs(900),
            extra_root_certificates: Vec::new(),
        }
    }
}

/// Why a fetch, or the document it brought, failed. The last good document stays in use.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The configured source is not usable.
    #[error("invalid source {given:?}: {reason}")]
    InvalidSource {
        /// The source as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The request failed (DNS, connect, TLS, a broken connection).
    #[error("cannot fetch {url}: {source}")]
    Request {
        /// The URL fetched.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a status other than 2xx or 304.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The URL fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The whole fetch took longer than the timeout.
    #[error("fetching {url} took longer than {after:?}")]
    Timeout {
        /// The URL fetched.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The document is larger than `max_body`.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL or file.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The document did not parse or verify.
    #[error("the document from {source_name} is not usable: {reason}")]
    Document {
        /// The source.
        source_name: String,
        /// Why (the parser's or verifier's message with its causes).
        reason: String,
    },
    /// The document verified but is past its own expiry.
    #[error("the document from {0} has expired")]
    Expired(String),
}

/// What the feed has done, for health endpoints and logs.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FeedStatus {
    /// Unix seconds of the last good document's arrival.
    pub updated_at: Option<i64>,
    /// Unix seconds of the last attempt.
    pub attempted_at: Option<i64>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

/// What a successful refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// A new document is current.
    Updated,
    /// `304 Not Modified`, or the same bytes: the current document stays.
    Unchanged,
}

type Parser<T> = dyn Fn(&[u8]) -> Result<T, String> + Send + Sync;

#[derive(Default)]
struct State {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    digest: Option<Vec<u8>>,
    freshness: Option<Duration>,
    status: FeedStatus,
}

/// A document kept fresh from its [`Source`]; readers call [`Feed::current`] and never wait
/// on I/O.
pub struct Feed<T> {
    config: FetchConfig,
    client: Option<reqwest::Client>,
    parse: Box<Parser<T>>,
    current: ArcSwapOption<T>,
    state: Mutex<State>,
}

impl<T: FeedDocument> Feed<T> {
    /// A feed of `config.source`, turning bytes into a document with `parse` (which returns
    /// the reason when the bytes are not usable).
    pub fn new(
        config: FetchConfig,
        parse: impl Fn(&[u8]) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, FetchError> {
        let client = match &config.source {
            Source::File(_) => None,
            Source::Url(_) => {
                let mut builder = reqwest::Client::builder()
                    .user_agent(concat!("skolfed-sso/", env!("CARGO_PKG_VERSION")))
                    .timeout(config.fetch_timeout)
                    .connect_timeout(config.fetch_timeout)
                    .redirect(reqwest::redirect::Policy::limited(3));
                let roots = config
                    .extra_root_certificates
                    .iter()
                    .map(|der| reqwest::Certificate::from_der(der.as_ref()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(FetchError::Client)?;
                if !roots.is_empty() {
                    builder = builder.tls_certs_merge(roots);
                }
                Some(builder.build().map_err(FetchError::Client)?)
            }
        };
        Ok(Self {
            config,
            client,
            parse: Box::new(parse),
            current: ArcSwapOption::empty(),
            state: Mutex::new(State::default()),
        })
    }

    /// The current document, unless there is none or it has expired.
    pub fn current(&self) -> Option<Arc<T>> {
        let current = self.current.load_full()?;
        match current.expires_at() {
            Some(at) if at <= unix_now() => None,
            _ => Some(current),
        }
    }

    /// What the feed has done.
    pub fn status(&self) -> FeedStatus {
        self.lock().status.clone()
    }

    /// The source.
    pub fn source(&self) -> &Source {
        &self.config.source
    }

    /// Loads at start: the cache file first (when it parses and has not expired), then the
    /// source. Fails only when neither gives a document.
    pub async fn load(&self) -> Result<(), FetchError> {
        if let Some(cache) = &self.config.cache_file
            && let Ok(bytes) = read_limited(cache, self.config.max_body)
            && let Ok(document) = (self.parse)(&bytes)
            && document.expires_at().is_none_or(|at| at > unix_now())
        {
            self.current.store(Some(Arc::new(document)));
            self.lock().digest = Some(digest(&bytes));
        }
        match self.refresh().await {
            Ok(_) => Ok(()),
            Err(_) if self.current().is_some() => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Fetches once; on failure the current document stays and the error is recorded.
    pub async fn refresh(&self) -> Result<RefreshOutcome, FetchError> {
        let now = unix_now();
        let result = self.refresh_inner().await;
        let mut state = self.lock();
        state.status.attempted_at = Some(now);
        match &result {
            Ok(outcome) => {
                state.status.last_error = None;
                state.status.consecutive_failures = 0;
                if *outcome == RefreshOutcome::Updated {
                    state.status.updated_at = Some(now);
                }
            }
            Err(err) => {
                state.status.last_error = Some(error_chain(err));
                state.status.consecutive_failures =
                    state.status.consecutive_failures.saturating_add(1);
            }
        }
        result
    }

    async fn refresh_inner(&self) -> Result<RefreshOutcome, FetchError> {
        let source_name = self.config.source.to_string();
        let bytes = match (&self.config.source, &self.client) {
            (Source::Url(url), Some(client)) => match self.fetch(client, url).await? {
                Some(bytes) => bytes,
                None => return Ok(RefreshOutcome::Unchanged),
            },
            (Source::File(path), _) => {
                let path = path.clone();
                let limit = self.config.max_body;
                tokio::task::spawn_blocking(move || read_limited(&path, limit))
                    .await
                    .map_err(|e| FetchError::Io {
                        path: PathBuf::from(&source_name),
                        source: std::io::Error::other(e),
                    })??
            }
            (Source::Url(_), None) => unreachable!("a URL source always has a client"),
        };
        let new_digest = digest(&bytes);
        if self.lock().digest.as_deref() == Some(&new_digest[..]) && self.current().is_some() {
            return Ok(RefreshOutcome::Unchanged);
        }
        let document = (self.parse)(&bytes).map_err(|reason| FetchError::Document {
            source_name: source_name.clone(),
            reason,
        })?;
        if document.expires_at().is_some_and(|at| at <= unix_now()) {
            return Err(FetchError::Expired(source_name));
        }
        self.current.store(Some(Arc::new(document)));
        self.lock().digest = Some(new_digest);
        if let Some(cache) = &self.config.cache_file
            && let Err(err) = write_atomically(cache, &bytes)
        {
            tracing::warn!(cache = %cache.display(), error = %err, "cannot write the cache file");
        }
        Ok(RefreshOutcome::Updated)
    }

    /// GETs the URL conditionally; `None` for `304 Not Modified`.
    async fn fetch(
        &self,
        client: &reqwest::Client,
        url: &str,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let timeout = self.config.fetch_timeout;
        let timed_out = || FetchError::Timeout {
            url: url.to_owned(),
            after: timeout,
        };
        match tokio::time::timeout(timeout, self.fetch_inner(client, url)).await {
            Err(_) => Err(timed_out()),
            Ok(Err(FetchError::Request { source, .. })) if source.is_timeout() => Err(timed_out()),
            Ok(result) => result,
        }
    }

    async fn fetch_inner(
        &self,
        client: &reqwest::Client,
        url: &str,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let mut request = client.get(url);
        {
            let state = self.lock();
            if self.current.load().is_some() {
                if let Some(etag) = &state.etag {
                    request = request.header(header::IF_NONE_MATCH, etag.clone());
                }
                if let Some(modified) = &state.last_modified {
                    request = request.header(header::IF_MODIFIED_SINCE, modified.clone());
                }
            }
        }
        let request_error = |source| FetchError::Request {
            url: url.to_owned(),
            source,
        };
        let mut response = request.send().await.map_err(request_error)?;
        let status = response.status();
        let freshness = http_freshness(response.headers());
        if status == StatusCode::NOT_MODIFIED && self.current.load().is_some() {
            self.lock().freshness = freshness;
            return Ok(None);
        }
        if !status.is_success() {
            return Err(FetchError::HttpStatus {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let limit = self.config.max_body;
        let too_large = || FetchError::TooLarge {
            what: url.to_owned(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let mut state = self.lock();
        state.etag = headers.get(header::ETAG).cloned();
        state.last_modified = headers.get(header::LAST_MODIFIED).cloned();
        state.freshness = freshness;
        Ok(Some(body))
    }

    /// How long to wait before the next refresh, given the last attempt's result.
    pub fn next_delay(&self) -> Duration {
        let state = self.lock();
        if state.status.consecutive_failures > 0 {
            return backoff(state.status.consecutive_failures, self.config.retry_cap);
        }
        state
            .freshness
            .unwrap_or(self.config.default_refresh)
            .max(self.config.min_refresh)
    }

    /// Refreshes in the background until the returned task is aborted (or the feed dropped).
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let feed = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(delay) = feed.upgrade().map(|f| f.next_delay()) else {
                    return;
                };
                tokio::time::sleep(delay).await;
                let Some(strong) = feed.upgrade() else { return };
                if let Err(err) = strong.refresh().await {
                    tracing::warn!(source = %strong.source(), error = %error_chain(&err), "refresh failed; the last good document stays in use");
                }
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Full-jitter exponential backoff: a random wait up to min(cap, 2^failures seconds), at
/// least a second.
fn backoff(failures: u32, cap: Duration) -> Duration {
    let ceiling = Duration::from_secs(1u64 << failures.min(20)).min(cap);
    let mut random = [0u8; 8];
    let random = match aws_lc_rs::rand::fill(&mut random) {
        Ok(()) => u64::from_le_bytes(random),
        Err(_) => u64::MAX,
    };
    let millis = u64::try_from(ceiling.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis((random % millis).max(1000))
}

/// `max-age` (or `Expires` − `Date`) of a response; `no-cache`/`no-store` count as zero.
fn http_freshness(headers: &HeaderMap) -> Option<Duration> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, argument) = directive
                .split_once('=')
                .map_or((directive.trim(), None), |(n, a)| {
                    (n.trim(), Some(a.trim().trim_matches('"')))
                });
            let secs = if name.eq_ignore_ascii_case("max-age") {
                argument.and_then(|a| a.parse().ok()).unwrap_or(0)
            } else if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store")
            {
                0
            } else {
                continue;
            };
            found = Some(found.map_or(secs, |f: u64| f.min(secs)));
        }
    }
    if found.is_none()
        && let Some(expires) = headers.get(header::EXPIRES)
    {
        let date = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
        };
        let expires = expires
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let now = date(header::DATE).unwrap_or_else(SystemTime::now);
        found = Some(
            expires
                .and_then(|e| e.duration_since(now).ok())
                .map_or(0, |d| d.as_secs()),
        );
    }
    found.map(Duration::from_secs)
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, FetchError> {
    use std::io::Read;
    let io = |source| FetchError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(FetchError::TooLarge {
            what: path.display().to_string(),
            limit,
        });
    }
    Ok(bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let mut temp = tempfile_in(dir, path)?;
    temp.1.write_all(bytes)?;
    temp.1.sync_all()?;
    std::fs::rename(&temp.0, path)?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| std::io::Error::other("no randomness"))?;
    let temp = dir.join(format!(".{name}.{:016x}.tmp", u64::from_le_bytes(random)));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    Ok((temp, file))
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// The error and its causes, `: `-joined.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_of(source);
    }
    text
}

fn cause_of<'a>(
    err: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    err.and_then(|e| e.source())
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl FeedDocument for crate::links::ParsedLinks {}

/// Raw bytes, for a one-off fetch (`skolfed-sso lint URL`).
impl FeedDocument for Vec<u8> {}

/// Fetches (or reads) `config.source` once, with the feed's limits; no cache file.
pub async fn fetch_once(mut config: FetchConfig) -> Result<Vec<u8>, FetchError> {
    config.cache_file = None;
    let feed = Feed::new(config, |bytes: &[u8]| Ok(bytes.to_vec()))?;
    feed.refresh().await?;
    feed.current()
        .map(|bytes| bytes.as_ref().clone())
        .ok_or_else(|| FetchError::Expired(feed.source().to_string()))
}
