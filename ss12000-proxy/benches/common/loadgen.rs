//! A closed-loop HTTP load generator over hyper 1 and tokio-rustls (aws-lc-rs), shared by the
//! `loadgen` example (a CLI) and the `proxy` bench, which include this file with
//! `#[path = ...] mod loadgen;`.
//!
//! Each worker owns one keep-alive connection (HTTP/1.1, or one HTTP/2 connection with
//! `http2`) and sends GETs back to back on it: one request in flight per worker. Workers
//! connect first; the measured window starts once every worker has tried its first
//! connection, so handshakes do not count against the rate. With
//! [`Reuse::NewConnection`] each request instead opens its own connection (TCP, a full TLS
//! handshake without resumption, the HTTP handshake), sends one GET and closes: the rate is
//! then new connections per second and the latency includes the handshake. Only requests that complete
//! inside the window count. Network errors, timeouts and non-2xx answers are counted as
//! errors, never panics; a worker whose connection broke reconnects and goes on.

#![allow(
    dead_code,
    reason = "shared by the loadgen example and the proxy bench; each uses a part of it"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fedtls::Pin;
use fedtls::tls::{PinnedServerVerifier, load_cert_chain, load_private_key};
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long a TCP connect plus TLS and HTTP handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request still unanswered this long when the window closes counts as an error.
const STUCK_AFTER: Duration = Duration::from_secs(1);

pub use fedtls::error_chain;

/// Where the requests go, parsed from an `http://` or `https://` URL.
#[derive(Clone, Debug)]
pub struct Target {
    /// The full URL (HTTP/2 requests carry it whole).
    pub uri: Uri,
    /// Host to connect to (brackets of an IPv6 literal removed).
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// `Host` header value for HTTP/1.1.
    pub authority: String,
    /// Path and query, the HTTP/1.1 request target.
    pub path_and_query: String,
    /// Whether the URL is `https`.
    pub https: bool,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url}: not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "{url}: only http:// and https:// URLs are supported"
                ));
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url}: no host"))?
            .as_str()
            .to_owned();
        let host = uri
            .host()
            .ok_or_else(|| format!("{url}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Self {
            uri,
            host,
            port,
            authority,
            path_and_query,
            https,
        })
    }
}

/// The TLS side of a load generator client: the client identity, if any, and how the
/// server is checked.
#[derive(Clone, Debug)]
pub struct TlsOptions<'a> {
    /// Client certificate chain (PEM, leaf first) and private key (PEM), for mutual TLS.
    pub identity: Option<(&'a Path, &'a Path)>,
    /// The server's SPKI pin.
    pub server_pin: Pin,
    /// Offer `h2` instead of `http/1.1` in ALPN.
    pub http2: bool,
}

/// A rustls client config (aws-lc-rs, TLS 1.3 and 1.2) for `options`. Session resumption is
/// off, so every connection makes a full handshake, as against a FedTLS server.
pub fn tls_config(options: &TlsOptions<'_>) -> Result<Arc<ClientConfig>, String> {
    let verifier = PinnedServerVerifier::new([options.server_pin]).into_arc();
    let identity = match options.identity {
        Some((cert, key)) => Some((
            load_cert_chain(cert).map_err(|e| e.to_string())?,
            load_private_key(key).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let alpn: &[&[u8]] = if options.http2 {
        &[b"h2"]
    } else {
        &[b"http/1.1"]
    };
    let mut config = fedtls::tls::client_config(verifier, identity, alpn)
        .map_err(|e| format!("client certificate and key refused: {e}"))?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// One open client connection.
pub enum Connection {
    /// An HTTP/1.1 connection (one request at a time).
    Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    /// An HTTP/2 connection.
    Http2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Connection {
    /// Whether the connection can no longer carry requests (the peer closed it, or it failed).
    pub fn is_closed(&self) -> bool {
        match self {
            Self::Http1(sender) => sender.is_closed(),
            Self::Http2(sender) => sender.is_closed(),
        }
    }
}

/// Why a request failed.
#[derive(Debug)]
pub struct RequestError {
    /// What happened, short enough to group errors by.
    pub message: String,
    /// Whether the connection is still usable (a non-2xx answer) or must be replaced.
    pub connection_ok: bool,
}

impl RequestError {
    fn broken(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            connection_ok: false,
        }
    }
}

/// Opens connections to one target and sends GETs on them.
pub struct Client {
    target: Target,
    tls: Option<TlsConnector>,
    http2: bool,
}

impl Client {
    /// A client for `target`. `tls` is required for `https` URLs and refused for `http` ones.
    /// With `http2` and plain `http`, HTTP/2 is spoken with prior knowledge (h2c).
    pub fn new(
        target: Target,
        tls: Option<Arc<ClientConfig>>,
        http2: bool,
    ) -> Result<Self, String> {
        match (target.https, &tls) {
            (true, None) => return Err("an https URL needs a TLS client config".into()),
            (false, Some(_)) => {
                return Err("a TLS client config was given for a plain http URL".into());
            }
            _ => {}
        }
        Ok(Self {
            target,
            tls: tls.map(TlsConnector::from),
            http2,
        })
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether it speaks HTTP/2.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// Connects, with TLS for https, and makes the HTTP handshake, within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self) -> Result<Connection, String> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "connect: no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
        }
    }

    async fn connect_inner(&self) -> Result<Connection, String> {
        let tcp = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| format!("connect: {}", error_chain(&e)))?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return self.handshake(TokioIo::new(tcp)).await;
        };
        let name = ServerName::try_from(self.target.host.clone())
            .map_err(|e| format!("server name {:?}: {e}", self.target.host))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {}", error_chain(&e)))?;
        let alpn = stream.get_ref().1.alpn_protocol();
        if self.http2 && alpn != Some(b"h2".as_slice()) {
            return Err("TLS: the server did not negotiate h2 (ALPN)".into());
        }
        self.handshake(TokioIo::new(stream)).await
    }

    async fn handshake<I>(&self, io: I) -> Result<Connection, String>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        if self.http2 {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("HTTP/2 handshake: {}", error_chain(&e)))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Connection::Http2(sender))
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("HTTP/1.1 handshake: {}", error_chain(&e)))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Connection::Http1(sender))
        }
    }

    /// Sends one GET on `connection` and reads the whole response body. A non-2xx status
    /// is an error that leaves the connection usable.
    pub async fn get(&self, connection: &mut Connection) -> Result<(), RequestError> {
        let response = match connection {
            Connection::Http1(sender) => {
                let request = Request::get(self.target.path_and_query.as_str())
                    .header(header::HOST, self.target.authority.as_str())
                    .body(Empty::new())
                    .map_err(|e| RequestError::broken(format!("request: {e}")))?;
                sender.ready().await.map_err(|e| {
                    RequestError::broken(format!("connection: {}", error_chain(&e)))
                })?;
                sender.send_request(request).await
            }
            Connection::Http2(sender) => {
                let request = Request::get(self.target.uri.clone())
                    .body(Empty::new())
                    .map_err(|e| RequestError::broken(format!("request: {e}")))?;
                sender.ready().await.map_err(|e| {
                    RequestError::broken(format!("connection: {}", error_chain(&e)))
                })?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| RequestError::broken(format!("request: {}", error_chain(&e))))?;
        let status = response.status();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame
                .map_err(|e| RequestError::broken(format!("response body: {}", error_chain(&e))))?;
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(RequestError {
                message: format!("status {status}"),
                connection_ok: true,
            })
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Requests answered with 2xx inside the window.
    pub requests: u64,
    /// Failed requests and connection attempts.
    pub errors: u64,
    /// Times a worker found its connection closed by the server and opened a new one.
    pub reconnects: u64,
    /// The measured window.
    pub window: Duration,
    /// Latencies of the successful requests, nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    /// Error messages and how often each occurred.
    pub error_kinds: BTreeMap<String, u64>,
}

impl Report {
    /// Successful requests per second.
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p` quantile (0.0..=1.0) of the latencies in milliseconds, NaN without requests.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return f64::NAN;
        }
        let at = ((self.latencies_ns.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
        self.latencies_ns[at] as f64 / 1e6
    }

    /// The largest latency in milliseconds, NaN without requests.
    pub fn max_ms(&self) -> f64 {
        self.latencies_ns
            .last()
            .map_or(f64::NAN, |&ns| ns as f64 / 1e6)
    }

    /// Folds several runs into one: counts and windows add up, latencies merge.
    pub fn merge(reports: &[Report]) -> Report {
        let mut all = Report::default();
        for report in reports {
            all.add(report.clone());
        }
        all.latencies_ns.sort_unstable();
        all
    }

    fn add(&mut self, other: Report) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.reconnects += other.reconnects;
        self.window += other.window;
        self.latencies_ns.extend(other.latencies_ns);
        for (message, count) in other.error_kinds {
            *self.error_kinds.entry(message).or_default() += count;
        }
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        *self.error_kinds.entry(message).or_default() += 1;
    }

    /// The most frequent error message, if any.
    pub fn top_error(&self) -> Option<(&str, u64)> {
        self.error_kinds
            .iter()
            .max_by_key(|(_, count)| **count)
            .map(|(message, count)| (message.as_str(), *count))
    }

    /// The report as one JSON object.
    pub fn to_json(&self, target: &Target, concurrency: usize, http2: bool) -> serde_json::Value {
        let ms = |v: f64| {
            if v.is_finite() {
                serde_json::json!((v * 1000.0).round() / 1000.0)
            } else {
                serde_json::Value::Null
            }
        };
        serde_json::json!({
            "url": target.uri.to_string(),
            "protocol": if http2 { "HTTP/2" } else { "HTTP/1.1" },
            "concurrency": concurrency,
            "duration_s": self.window.as_secs_f64(),
            "requests": self.requests,
            "requests_per_s": (self.per_second() * 10.0).round() / 10.0,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "latency_ms": {
                "p50": ms(self.percentile_ms(0.50)),
                "p90": ms(self.percentile_ms(0.90)),
                "p99": ms(self.percentile_ms(0.99)),
                "max": ms(self.max_ms()),
            },
            "error_kinds": self.error_kinds,
        })
    }

    /// The report as a few human-readable lines.
    pub fn human(&self, target: &Target, concurrency: usize, http2: bool) -> String {
        let mut text = format!(
            "{}  {}  {} connection(s)  {:.1} s\n  requests {} ({:.1}/s)  errors {}  reconnects {}\n  latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            target.uri,
            if http2 { "HTTP/2" } else { "HTTP/1.1" },
            concurrency,
            self.window.as_secs_f64(),
            self.requests,
            self.per_second(),
            self.errors,
            self.reconnects,
            self.percentile_ms(0.50),
            self.percentile_ms(0.90),
            self.percentile_ms(0.99),
            self.max_ms(),
        );
        for (message, count) in &self.error_kinds {
            text.push_str(&format!("\n  error x{count}: {message}"));
        }
        text
    }
}

/// Whether workers keep their connection or open one per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// One keep-alive connection per worker, requests back to back on it.
    KeepAlive,
    /// A new connection (and full handshake) for every request, closed after its answer.
    NewConnection,
}

/// Runs `concurrency` workers against the client's target for `duration` and reports.
/// Must be called inside a tokio runtime.
pub async fn run(
    client: Arc<Client>,
    concurrency: usize,
    duration: Duration,
    reuse: Reuse,
) -> Report {
    let concurrency = concurrency.max(1);
    let start = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(worker(
            Arc::clone(&client),
            Arc::clone(&start),
            duration,
            reuse,
        ));
    }
    start.wait().await;
    let mut report = Report {
        window: duration,
        ..Report::default()
    };
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(part) => {
                report.requests += part.requests;
                report.errors += part.errors;
                report.reconnects += part.reconnects;
                report.latencies_ns.extend(part.latencies_ns);
                for (message, count) in part.error_kinds {
                    *report.error_kinds.entry(message).or_default() += count;
                }
            }
            Err(e) => report.error(format!("worker failed: {e}")),
        }
    }
    report.latencies_ns.sort_unstable();
    report
}

/// One worker: connect, wait for the start, then GETs back to back until the window closes.
async fn worker(
    client: Arc<Client>,
    start: Arc<tokio::sync::Barrier>,
    duration: Duration,
    reuse: Reuse,
) -> Report {
    if reuse == Reuse::NewConnection {
        return fresh_worker(client, start, duration).await;
    }
    let mut report = Report::default();
    let mut connection = match client.connect().await {
        Ok(connection) => Some(connection),
        Err(message) => {
            report.error(message);
            None
        }
    };
    start.wait().await;
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if connection.as_ref().is_some_and(Connection::is_closed) {
            connection = None;
            report.reconnects += 1;
        }
        let current = match &mut connection {
            Some(current) => current,
            None => match client.connect().await {
                Ok(fresh) => connection.insert(fresh),
                Err(message) => {
                    if Instant::now() < deadline {
                        report.error(message);
                        // Do not spin against a server that is down.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let outcome = tokio::time::timeout_at(deadline.into(), client.get(current)).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(())) => {
                report.requests += 1;
                report
                    .latencies_ns
                    .push(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX));
            }
            Ok(Err(error)) => {
                if done < deadline {
                    report.error(error.message);
                }
                if !error.connection_ok {
                    connection = None;
                    // A server that breaks every connection must not make this a busy loop.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Err(_) => {
                // Still in flight when the window closed: not counted, unless it was stuck.
                if done - sent >= STUCK_AFTER {
                    report.error(format!(
                        "no response within {:.1} s",
                        (done - sent).as_secs_f64()
                    ));
                }
                break;
            }
        }
    }
    report
}

/// One worker of [`Reuse::NewConnection`]: per request a connection of its own (timed from
/// the TCP connect to the end of the body), closed afterwards.
async fn fresh_worker(
    client: Arc<Client>,
    start: Arc<tokio::sync::Barrier>,
    duration: Duration,
) -> Report {
    let mut report = Report::default();
    start.wait().await;
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let sent = Instant::now();
        let exchange = async {
            let mut connection = client.connect().await.map_err(RequestError::broken)?;
            client.get(&mut connection).await
        };
        let outcome = tokio::time::timeout_at(deadline.into(), exchange).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok(())) => {
                report.requests += 1;
                report
                    .latencies_ns
                    .push(u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX));
            }
            Ok(Err(error)) => {
                if done < deadline {
                    report.error(error.message);
                    // A server that refuses every connection must not make this a busy loop.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Err(_) => {
                if done - sent >= STUCK_AFTER {
                    report.error(format!(
                        "no response within {:.1} s",
                        (done - sent).as_secs_f64()
                    ));
                }
                break;
            }
        }
    }
    report
}
