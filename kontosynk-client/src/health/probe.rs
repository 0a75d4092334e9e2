//! One server's check: DNS, TCP, mutual TLS with the member's certificate (recording the
//! presented certificate even when it is refused), host name, then `GET base_uri` over the
//! same connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fedtls::pin::Pin;
use fedtls::tls::{
    PeerRejection, PinnedServerVerifier, PresentedCertificate, ServerCertDecision, SignatureChecked,
};
use fedtls::verify::unix_now;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::ServerCertVerified;
use rustls::{AlertDescription, CertificateError, ClientConfig};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{ClientCert, HealthOptions, HealthState, ServerHealth, Stage, StageResult, rfc3339};
use crate::client::ALPN_H2_HTTP11;
use crate::client::error_chain;
use crate::discovery::ServerTarget;

/// Checks one server. Never fails: every problem is in the result.
pub async fn check_server(
    target: &ServerTarget,
    cert: Arc<ClientCert>,
    options: &HealthOptions,
) -> ServerHealth {
    let started = Instant::now();
    let mut health = ServerHealth::new(target);
    let mut probe = Probe {
        health: &mut health,
        options,
    };
    probe.run(target, cert).await;
    health.healthy = health.error.is_none();
    health.state = HealthState::of(&health);
    health.total_ms = millis(started.elapsed());
    health
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Probe<'a> {
    health: &'a mut ServerHealth,
    options: &'a HealthOptions,
}

impl Probe<'_> {
    fn record(&mut self, stage: Stage, started: Instant, result: Result<String, String>) -> bool {
        let ok = result.is_ok();
        let detail = match result {
            Ok(detail) => detail,
            Err(problem) => {
                if self.health.error.is_none() {
                    self.health.error = Some(format!("{stage}: {problem}"));
                }
                problem
            }
        };
        self.health.stages.push(StageResult {
            stage,
            ok,
            ms: millis(started.elapsed()),
            detail,
        });
        ok
    }

    /// The stages in order; a stage that fails ends the check, except that the host name is
    /// still judged when a refused handshake showed a certificate.
    async fn run(&mut self, target: &ServerTarget, cert: Arc<ClientCert>) {
        let Some((host, tcp)) = self.connect_stage(target).await else {
            return;
        };
        let t = Instant::now();
        let server_name = match ServerName::try_from(host.clone()) {
            Ok(name) => name,
            Err(e) => {
                self.record(
                    Stage::Tls,
                    t,
                    Err(format!("{host:?} is not a valid TLS server name: {e}")),
                );
                return;
            }
        };
        let (tls, presented) = self.tls_stage(target, tcp, &server_name, cert).await;
        if let Some(der) = &presented {
            self.hostname_stage(der, &server_name, &host);
        }
        if let Some(stream) = tls {
            self.http_stage(stream, target).await;
        }
    }

    /// DNS and TCP: the host name and a connected socket, or `None` after recording why not.
    async fn connect_stage(&mut self, target: &ServerTarget) -> Option<(String, TcpStream)> {
        let host = match target.base_uri.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => {
                let t = Instant::now();
                self.record(Stage::Dns, t, Err("base_uri has no host".to_owned()));
                return None;
            }
        };
        let port = target.port();

        let t = Instant::now();
        let addrs = match resolve(&host, port, self.options.dns_timeout).await {
            Ok(addrs) => {
                let shown = addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                self.record(Stage::Dns, t, Ok(format!("{host} → {shown}")));
                addrs
            }
            Err(problem) => {
                self.record(Stage::Dns, t, Err(problem));
                return None;
            }
        };

        let t = Instant::now();
        match connect(&addrs, self.options.connect_timeout).await {
            Ok((tcp, addr)) => {
                self.record(Stage::Tcp, t, Ok(format!("connected to {addr}")));
                Some((host, tcp))
            }
            Err(problem) => {
                self.record(Stage::Tcp, t, Err(problem));
                None
            }
        }
    }

    /// The mutual-TLS handshake: the stream when it succeeded, and the certificate the
    /// server presented either way (described into the result).
    async fn tls_stage(
        &mut self,
        target: &ServerTarget,
        tcp: TcpStream,
        server_name: &ServerName<'static>,
        cert: Arc<ClientCert>,
    ) -> (
        Option<TlsStream<TcpStream>>,
        Option<CertificateDer<'static>>,
    ) {
        let t = Instant::now();
        let recorder = Arc::new(SignatureChecked::new(Recorder::new(
            target.pins.iter().copied(),
        )));
        let tls = self
            .handshake(tcp, server_name.clone(), Arc::clone(&recorder), cert)
            .await;
        let presented = recorder.decision().seen();
        let server_accepted = recorder.decision().accepted();
        if let Some(der) = &presented {
            self.describe_certificate(der, &target.pins);
        }
        let tls = match tls {
            Ok(stream) => {
                let (_, connection) = stream.get_ref();
                self.health.tls_version = connection.protocol_version().map(|v| match v {
                    rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
                    rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
                    other => format!("{other:?}"),
                });
                self.health.alpn = connection
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                let detail = format!(
                    "{} handshake with client certificate, ALPN {}",
                    self.health.tls_version.as_deref().unwrap_or("TLS"),
                    self.health.alpn.as_deref().unwrap_or("none")
                );
                self.record(Stage::Tls, t, Ok(detail));
                Some(stream)
            }
            Err(HandshakeError::Io(error)) => {
                match refusal_alert(&error).filter(|_| server_accepted) {
                    Some(alert) => self.refused_client(Stage::Tls, t, alert),
                    None => {
                        let problem = describe_tls_error(&error, self.health);
                        self.record(Stage::Tls, t, Err(problem));
                    }
                }
                None
            }
            Err(HandshakeError::Other(problem)) => {
                self.record(Stage::Tls, t, Err(problem));
                None
            }
        };
        (tls, presented)
    }

    /// Whether the presented certificate names `host` (a warning only, when so configured).
    fn hostname_stage(
        &mut self,
        der: &CertificateDer<'static>,
        server_name: &ServerName<'static>,
        host: &str,
    ) {
        let t = Instant::now();
        if hostname_matches(der, server_name).is_ok() {
            self.health.hostname_match = Some(true);
            self.record(Stage::Hostname, t, Ok(format!("certificate names {host}")));
            return;
        }
        self.health.hostname_match = Some(false);
        let problem = format!(
            "the certificate does not name {host} (it names: {})",
            if self.health.cert_names.is_empty() {
                "nothing".to_owned()
            } else {
                self.health.cert_names.join(", ")
            }
        );
        if self.options.hostname_warn_only {
            self.health.warnings.push(problem.clone());
            self.health.stages.push(StageResult {
                stage: Stage::Hostname,
                ok: false,
                ms: millis(t.elapsed()),
                detail: format!("warning: {problem}"),
            });
        } else {
            self.record(Stage::Hostname, t, Err(problem));
        }
    }

    /// `GET base_uri` over the same connection; a 5xx answer is a failure.
    async fn http_stage(&mut self, stream: TlsStream<TcpStream>, target: &ServerTarget) {
        let t = Instant::now();
        match http_get(stream, target, self.options.http_timeout).await {
            Ok(status) => {
                self.health.client_accepted = Some(true);
                self.health.http_status = Some(status);
                self.health.latency_ms = Some(millis(t.elapsed()));
                let outcome = if status >= 500 {
                    Err(format!("GET {} answered HTTP {status}", target.base_uri))
                } else {
                    Ok(format!("GET {} answered HTTP {status}", target.base_uri))
                };
                self.record(Stage::Http, t, outcome);
            }
            Err(HttpFailure {
                alert: Some(alert), ..
            }) => self.refused_client(Stage::Http, t, alert),
            Err(HttpFailure { message, .. }) => {
                self.record(Stage::Http, t, Err(message));
            }
        }
    }

    /// The server saw a certificate it accepted (pin, validity) and then refused ours with
    /// `alert`: not a failure of the server, a warning for the checking member.
    fn refused_client(&mut self, stage: Stage, started: Instant, alert: AlertDescription) {
        self.health.client_accepted = Some(false);
        let problem = format!(
            "reachable, pin OK, but the server refused our client certificate ({alert:?} alert): \
             is our pin in the metadata it reads?"
        );
        self.health.warnings.push(problem.clone());
        self.health.stages.push(StageResult {
            stage,
            ok: false,
            ms: millis(started.elapsed()),
            detail: format!("warning: {problem}"),
        });
    }

    async fn handshake(
        &mut self,
        tcp: TcpStream,
        server_name: ServerName<'static>,
        recorder: Arc<SignatureChecked<Recorder>>,
        cert: Arc<ClientCert>,
    ) -> Result<TlsStream<TcpStream>, HandshakeError> {
        let mut config = ClientConfig::builder_with_provider(fedtls::tls::provider())
            .with_protocol_versions(fedtls::tls::PROTOCOL_VERSIONS)
            .map_err(|e| HandshakeError::Other(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(recorder)
            .with_client_cert_resolver(cert);
        config.alpn_protocols = ALPN_H2_HTTP11.iter().map(|p| p.to_vec()).collect();
        let connector = TlsConnector::from(Arc::new(config));
        match tokio::time::timeout(
            self.options.tls_timeout,
            connector.connect(server_name, tcp),
        )
        .await
        {
            Err(_) => Err(HandshakeError::Other(format!(
                "no handshake within {} s",
                self.options.tls_timeout.as_secs_f64()
            ))),
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(HandshakeError::Io(error)),
        }
    }

    fn describe_certificate(&mut self, der: &CertificateDer<'static>, expected: &[Pin]) {
        match PresentedCertificate::read(der) {
            Ok(info) => {
                let now = unix_now();
                self.health.presented_pin = Some(info.pin.to_string());
                self.health.pin_match = Some(expected.contains(&info.pin));
                self.health.cert_subject = Some(info.subject.clone());
                self.health.cert_not_after = Some(rfc3339(info.not_after));
                let days_left = (info.not_after - now).div_euclid(86_400);
                self.health.cert_days_left = Some(days_left);
                self.health.cert_names = info
                    .dns_names
                    .iter()
                    .cloned()
                    .chain(info.ip_addresses.iter().map(ToString::to_string))
                    .collect();
                if info.not_after > now && days_left < self.options.expiry_warning_days {
                    self.health.warnings.push(format!(
                        "the certificate expires in {days_left} day(s), on {}",
                        rfc3339(info.not_after)
                    ));
                }
            }
            Err(e) => {
                self.health.pin_match = Some(false);
                self.health
                    .warnings
                    .push(format!("the presented certificate cannot be parsed: {e}"));
            }
        }
    }
}

/// A failed handshake: an I/O error to describe once the certificate is known, or a
/// ready message.
enum HandshakeError {
    Io(std::io::Error),
    Other(String),
}

/// Resolves `host:port`, IP literals included.
async fn resolve(host: &str, port: u16, limit: Duration) -> Result<Vec<SocketAddr>, String> {
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(format!(
            "no answer for {host} within {} s",
            limit.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("{host} has no addresses"))
            } else {
                Ok(addrs)
            }
        }
    }
}

/// Connects to the first address that accepts, within `limit` per address.
async fn connect(addrs: &[SocketAddr], limit: Duration) -> Result<(TcpStream, SocketAddr), String> {
    let mut failures = Vec::new();
    for addr in addrs {
        match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, *addr));
            }
            Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
            Err(_) => failures.push(format!(
                "{addr}: no answer within {} s",
                limit.as_secs_f64()
            )),
        }
    }
    Err(failures.join("; "))
}

/// Words a failed handshake the way an operator needs it.
fn describe_tls_error(error: &std::io::Error, health: &ServerHealth) -> String {
    if let Some(rejection) = PeerRejection::from_io(error) {
        if let PeerRejection::UnexpectedServerPin { pin, .. } = rejection {
            return format!(
                "the server presented pin {pin}, which the metadata does not list for this server (expected {})",
                if health.expected_pins.is_empty() {
                    "none".to_owned()
                } else {
                    health.expected_pins.join(" or ")
                }
            );
        }
        return rejection.to_string();
    }
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        )) => format!(
            "the server certificate expired on {}",
            health
                .cert_not_after
                .as_deref()
                .unwrap_or("an unknown date")
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        )) => "the server certificate is not valid yet".to_owned(),
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "the server refused the handshake ({alert:?} alert): is our client certificate in the metadata it uses?"
        ),
        _ => format!("handshake failed: {}", error_chain(error)),
    }
}

/// Whether the certificate names `server_name` (DNS name with wildcards, or IP address),
/// using the same matching the pinned verifier applies when host names are checked.
fn hostname_matches(
    der: &CertificateDer<'static>,
    server_name: &ServerName<'static>,
) -> Result<(), ()> {
    let Ok(pin) = Pin::of_certificate(der) else {
        return Err(());
    };
    PinnedServerVerifier::new([pin])
        .check_validity(false)
        .check_hostname(true)
        .verify_server_cert(der, &[], server_name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|_| ())
}

/// `GET base_uri` over the established connection (HTTP/2 when ALPN chose it); the status.
async fn http_get(
    stream: TlsStream<TcpStream>,
    target: &ServerTarget,
    limit: Duration,
) -> Result<u16, HttpFailure> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let seen_alert = Arc::new(Mutex::new(None));
    let io = TokioIo::new(AlertWatch {
        inner: stream,
        alert: Arc::clone(&seen_alert),
    });
    let authority = match target.base_uri.port() {
        Some(port) => format!("{}:{port}", target.host_for_header()),
        None => target.host_for_header(),
    };
    let work = async {
        if h2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| {
                        HttpFailure::of(&e, format!("HTTP/2 setup failed: {}", error_chain(&e)))
                    })?;
            let driver = tokio::spawn(connection);
            let request = http::Request::get(target.base_uri.as_str())
                .header(http::header::USER_AGENT, USER_AGENT)
                .body(Empty::<Bytes>::new())
                .map_err(|e| HttpFailure::plain(format!("cannot build the request: {e}")))?;
            let result = sender.send_request(request).await;
            driver.abort();
            result.map(|r| r.status().as_u16()).map_err(|e| {
                HttpFailure::of(
                    &e,
                    format!("GET {} failed: {}", target.base_uri, error_chain(&e)),
                )
            })
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| {
                    HttpFailure::of(&e, format!("HTTP/1.1 setup failed: {}", error_chain(&e)))
                })?;
            let driver = tokio::spawn(connection);
            let mut path = target.base_uri.path().to_owned();
            if let Some(query) = target.base_uri.query() {
                path.push('?');
                path.push_str(query);
            }
            let request = http::Request::get(path)
                .header(http::header::HOST, authority)
                .header(http::header::USER_AGENT, USER_AGENT)
                .body(Empty::<Bytes>::new())
                .map_err(|e| HttpFailure::plain(format!("cannot build the request: {e}")))?;
            let result = sender.send_request(request).await;
            driver.abort();
            result.map(|r| r.status().as_u16()).map_err(|e| {
                HttpFailure::of(
                    &e,
                    format!("GET {} failed: {}", target.base_uri, error_chain(&e)),
                )
            })
        }
    };
    match tokio::time::timeout(limit, work).await {
        Err(_) => Err(HttpFailure::plain(format!(
            "no response to GET {} within {} s",
            target.base_uri,
            limit.as_secs_f64()
        ))),
        Ok(result) => result.map_err(|mut failure| {
            if failure.alert.is_none() {
                failure.alert = *seen_alert.lock().unwrap_or_else(|p| p.into_inner());
            }
            if failure.alert.is_none() && failure.message.contains("alert") {
                failure.message.push_str(
                    " (the server ended the session after the handshake: it probably refuses our client certificate; is our pin in the metadata it uses?)",
                );
            }
            failure
        }),
    }
}

/// The TLS stream for hyper, noting any alert the server sends on the way: HTTP/2 shares a
/// connection error among its streams as a message-only `io::Error` (or reports only
/// "connection closed" when the driver ended first), so the alert is read here, where rustls
/// reports it, not from hyper's error.
struct AlertWatch {
    inner: TlsStream<TcpStream>,
    alert: Arc<Mutex<Option<AlertDescription>>>,
}

impl tokio::io::AsyncRead for AlertWatch {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Err(error)) = &polled
            && let Some(alert) = refusal_alert(error)
        {
            *this.alert.lock().unwrap_or_else(|p| p.into_inner()) = Some(alert);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for AlertWatch {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Why `GET base_uri` failed: the message, and the TLS alert when the server refused our
/// client certificate after the handshake (TLS 1.3 servers judge it after we finished).
struct HttpFailure {
    message: String,
    alert: Option<AlertDescription>,
}

impl HttpFailure {
    fn plain(message: String) -> Self {
        Self {
            message,
            alert: None,
        }
    }

    fn of(error: &(dyn std::error::Error + 'static), message: String) -> Self {
        Self {
            message,
            alert: refusal_alert(error),
        }
    }
}

/// The alert, when `error` (or an error in its source chain) is a TLS alert a server sends to
/// refuse a client certificate.
fn refusal_alert(error: &(dyn std::error::Error + 'static)) -> Option<AlertDescription> {
    let mut current = Some(error);
    while let Some(e) = current {
        let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(alert)) = rustls_error {
            return is_client_refusal(*alert).then_some(*alert);
        }
        current = e.source();
    }
    // HTTP/2 shares one connection error among its streams as a fresh `io::Error` carrying
    // only rustls' message ("received fatal alert: CertificateUnknown"), so read it back.
    let text = error_chain(error);
    let (_, rest) = text.split_once("received fatal alert: ")?;
    let name: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    REFUSAL_ALERTS
        .iter()
        .copied()
        .find(|alert| format!("{alert:?}") == name)
}

/// Alerts a server sends when it does not accept the client's certificate (or the lack of
/// one): RFC 8446 §4.4.2.4 and §6.2, and what TLS 1.2 servers send in practice.
fn is_client_refusal(alert: AlertDescription) -> bool {
    REFUSAL_ALERTS.contains(&alert)
}

/// See [`is_client_refusal`].
const REFUSAL_ALERTS: [AlertDescription; 9] = [
    AlertDescription::CertificateRequired,
    AlertDescription::BadCertificate,
    AlertDescription::UnsupportedCertificate,
    AlertDescription::CertificateRevoked,
    AlertDescription::CertificateExpired,
    AlertDescription::CertificateUnknown,
    AlertDescription::UnknownCA,
    AlertDescription::AccessDenied,
    AlertDescription::HandshakeFailure,
];

const USER_AGENT: &str = concat!("kontosynk-health/", env!("CARGO_PKG_VERSION"));

/// Records the presented certificate, then decides as the pinned verifier does (pin and
/// validity; the host name is reported separately).
#[derive(Debug)]
struct Recorder {
    verifier: PinnedServerVerifier,
    seen: Mutex<Option<CertificateDer<'static>>>,
    accepted: std::sync::atomic::AtomicBool,
}

impl Recorder {
    fn new(pins: impl IntoIterator<Item = Pin>) -> Self {
        Self {
            verifier: PinnedServerVerifier::new(pins),
            seen: Mutex::new(None),
            accepted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the presented certificate passed (pin and validity).
    fn accepted(&self) -> bool {
        self.accepted.load(std::sync::atomic::Ordering::Acquire)
    }

    fn seen(&self) -> Option<CertificateDer<'static>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ServerCertDecision for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(end_entity.clone().into_owned());
        let verdict = self.verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        self.accepted
            .store(verdict.is_ok(), std::sync::atomic::Ordering::Release);
        verdict
    }
}
