//! Forwarding an authenticated request to the backend: identity headers in, spoofable
//! headers out, bodies streamed both ways, upgrades (WebSocket) passed through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fedtls::tls::PeerIdentity;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use kontosynk_framework::response::{Body, BoxError, json_error};
use kontosynk_framework::trusted_headers;
use kontosynk_framework::{ClientCertificate, ConnectionInfo, RequestBody};

use crate::backend::{BackendClients, BackendError};
use crate::config::{ClientCertFormat, Encoding, HeadersConfig, HostHeader};
use crate::h1pool::{Checkin, H1Pool, ReturningBody};
use crate::h2conn::H2Conn;
use crate::per_thread::PerThread;

pub use crate::backend::BackendClient;
pub use crate::upstream::UpstreamBody;

/// Identity headers the proxy sets (bowness' names plus scopes, tags and pin).
pub mod names {
    /// The client's entity id.
    pub const ENTITY_ID: &str = "x-fedtlsauth-entity-id";
    /// The client's organization (legal name).
    pub const ORGANIZATION: &str = "x-fedtlsauth-organization";
    /// The client's organization id (`SE…`).
    pub const ORGANIZATION_ID: &str = "x-fedtlsauth-organization-id";
    /// The entity's saml-scope domains, comma-separated.
    pub const SCOPES: &str = "x-fedtlsauth-scopes";
    /// The client endpoint's tags, comma-separated.
    pub const CLIENT_TAGS: &str = "x-fedtlsauth-client-tags";
    /// The client certificate's SPKI pin.
    pub const PIN: &str = "x-fedtlsauth-pin";
    /// Every header starting with this is the proxy's alone.
    pub const PREFIX: &str = kontosynk_framework::trusted_headers::IDENTITY_PREFIX;
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded as they are.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// The request as an HTTP/2 backend expects it: the host it is for as the URI's authority
/// (sent as `:authority`), and no `Host` header beside it (RFC 9113 §8.3.1; nginx refuses a
/// request with both). A `Host` that is not a plain `host[:port]` leaves the backend's own
/// authority in place; the client's host is in `X-Forwarded-Host` either way.
fn h2_form(mut request: Request<UpstreamBody>) -> Request<UpstreamBody> {
    let Some(host) = request.headers_mut().remove(header::HOST) else {
        return request;
    };
    let authority = http::uri::Authority::try_from(host.as_bytes())
        .ok()
        .filter(|a| !a.as_str().contains('@'));
    if let Some(authority) = authority {
        let mut parts = request.uri().clone().into_parts();
        parts.authority = Some(authority);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// True for a hop-by-hop header.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Forwards requests to one backend.
pub struct Forwarder {
    clients: BackendClients,
    /// The per-thread HTTP/1.1 pool, for a plain-HTTP backend (not h2c).
    pool: Option<H1Pool>,
    /// The per-thread h2c connections, for a plain-HTTP backend spoken to in HTTP/2.
    h2c: Option<H2Conn>,
    /// Scheme and authority of the backend, and its path prefix without a trailing `/`.
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    prefix: String,
    headers: HeadersConfig,
    client_cert_header: HeaderName,
    api_key: Option<(HeaderName, HeaderValue)>,
    backend_timeout: Duration,
    /// Identity headers per client, built once per metadata generation (per thread).
    identities: PerThread<IdentityCache>,
}

/// Encoded identity headers by pin, for one metadata generation.
#[derive(Default)]
struct IdentityCache {
    generation: u64,
    by_pin: std::collections::HashMap<fedtls::Pin, Arc<[(HeaderName, HeaderValue)]>>,
}

impl Forwarder {
    /// A forwarder to `backend` (an `http`/`https` URL with a host) using `clients`.
    pub fn new(
        clients: BackendClients,
        backend: &Uri,
        headers: HeadersConfig,
        backend_timeout: Duration,
    ) -> Result<Self, BackendError> {
        let parts = backend.clone().into_parts();
        let scheme = parts.scheme.ok_or("the backend URL has no scheme")?;
        let authority = parts.authority.ok_or("the backend URL has no host")?;
        let prefix = parts
            .path_and_query
            .map(|p| p.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let client_cert_header = HeaderName::try_from(
            headers
                .client_cert_header
                .clone()
                .unwrap_or_else(|| "client-cert".to_owned()),
        )
        .map_err(|e| format!("headers.client_cert_header: {e}"))?;
        let api_key = match (&headers.api_key_header, &headers.api_key) {
            (Some(name), Some(value)) => Some((
                HeaderName::try_from(name.as_str())
                    .map_err(|e| format!("headers.api_key_header: {e}"))?,
                HeaderValue::try_from(value.as_str())
                    .map_err(|_| "headers.api_key is not a valid header value".to_owned())?,
            )),
            _ => None,
        };
        let plain = scheme == http::uri::Scheme::HTTP;
        let pool = (plain && !clients.h2c()).then(|| H1Pool::new(&authority, backend_timeout));
        let h2c = (plain && clients.h2c()).then(|| H2Conn::new(&authority, backend_timeout));
        Ok(Self {
            clients,
            pool,
            h2c,
            scheme,
            authority,
            prefix,
            headers,
            client_cert_header,
            api_key,
            backend_timeout,
            identities: PerThread::default(),
        })
    }

    /// Forwards one authenticated request and returns the backend's response (streamed).
    pub async fn forward(self: Arc<Self>, mut request: Request<RequestBody>) -> Response<Body> {
        let Some(peer) = request.extensions_mut().remove::<PeerIdentity>() else {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "no authenticated client on this request",
            );
        };
        let info = request.extensions().get::<ConnectionInfo>().copied();
        let certificate = request.extensions_mut().remove::<ClientCertificate>();
        let upgrade = wants_upgrade(request.headers()).then(|| hyper::upgrade::on(&mut request));
        let original_host = request.headers().get(header::HOST).cloned().or_else(|| {
            let authority = request.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });

        let (mut parts, body) = request.into_parts();
        let uri = match self.upstream_uri(&parts.uri) {
            Ok(uri) => uri,
            Err(message) => return json_error(StatusCode::BAD_REQUEST, "bad_request", message),
        };
        let upgrade_protocol = parts.headers.get(header::UPGRADE).cloned();
        sanitize(
            &mut parts.headers,
            self.client_cert_header.as_str(),
            self.api_key.as_ref().map(|(n, _)| n),
        );
        if let (Some(_), Some(protocol)) = (&upgrade, upgrade_protocol) {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, protocol);
        }
        self.add_identity(&mut parts.headers, &peer, certificate.as_ref());
        if let (HostHeader::Client, Some(host)) = (self.headers.host, &original_host) {
            parts.headers.insert(header::HOST, host.clone());
        }
        add_forwarded(
            &mut parts.headers,
            info.map(|i| i.remote_addr),
            original_host,
        );
        if let Some((name, value)) = &self.api_key {
            parts.headers.insert(name.clone(), value.clone());
        }
        parts.uri = uri;
        // The pool picks HTTP/2 by ALPN (or h2c) by itself; this is the default it starts from.
        parts.version = Version::HTTP_11;
        parts.extensions = http::Extensions::new();
        let (body, sent) = UpstreamBody::new(body);
        let upstream = Request::from_parts(parts, body);
        let timeout = self.backend_timeout;
        // The backend's time starts once the request, body included, has been sent: a slow
        // upload is not a slow backend.
        let deadline = async move {
            let _ = sent.await;
            tokio::time::sleep(timeout).await;
        };
        let answered = tokio::select! {
            response = self.send(upstream) => Some(response),
            () = deadline => None,
        };
        let response = match answered {
            None => {
                return json_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "backend_timeout",
                    format!("the backend did not answer within {timeout:?}"),
                );
            }
            Some(Err(err)) => {
                tracing::warn!(error = %fedtls::error_chain(err.as_ref()), "backend request failed");
                return json_error(
                    StatusCode::BAD_GATEWAY,
                    "backend_unavailable",
                    "the backend could not be reached",
                );
            }
            Some(Ok(response)) => response,
        };

        let (response, checkin) = response;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the upgrade; it is never pooled again.
            return switch_protocols(response, upgrade);
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let body = ReturningBody::new(body, checkin);
        Response::from_parts(parts, body.map_err(Into::into).boxed())
    }

    /// Sends `request` to the backend: on this thread's HTTP/1.1 pool for a plain-HTTP
    /// backend, on this thread's h2c connection for a plain-HTTP/2 one, otherwise on this
    /// thread's general client. The [`Checkin`], when given, returns the connection to the
    /// pool once the response body has been read.
    async fn send(
        &self,
        request: Request<UpstreamBody>,
    ) -> Result<(Response<hyper::body::Incoming>, Option<Checkin>), BoxError> {
        if let Some(h2c) = &self.h2c {
            return h2c.send(h2_form(request)).await.map(|r| (r, None));
        }
        match &self.pool {
            Some(pool) => pool
                .send(request)
                .await
                .map(|(response, checkin)| (response, Some(checkin))),
            None => self
                .clients
                .get()
                .request(request)
                .await
                .map(|response| (response, None))
                .map_err(Into::into),
        }
    }

    fn upstream_uri(&self, original: &Uri) -> Result<Uri, String> {
        if let (true, Some(path_and_query)) = (self.prefix.is_empty(), original.path_and_query()) {
            // The common case: the path as it came, without parsing it again.
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(self.authority.clone());
            parts.path_and_query = Some(path_and_query.clone());
            return Uri::from_parts(parts)
                .map_err(|e| format!("cannot forward {path_and_query}: {e}"));
        }
        let path_and_query = original.path_and_query().map_or("/", |p| p.as_str());
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{path_and_query}", self.prefix))
            .build()
            .map_err(|e| format!("cannot forward {path_and_query:?}: {e}"))
    }

    /// The client's identity headers, encoded once per client and metadata generation.
    fn identity_headers(&self, peer: &PeerIdentity) -> Arc<[(HeaderName, HeaderValue)]> {
        self.identities.with(IdentityCache::default, |cache| {
            self.cached_identity(cache, peer)
        })
    }

    fn cached_identity(
        &self,
        cache: &mut IdentityCache,
        peer: &PeerIdentity,
    ) -> Arc<[(HeaderName, HeaderValue)]> {
        if cache.generation != peer.generation {
            cache.by_pin.clear();
            cache.generation = peer.generation;
        }
        if let Some(headers) = cache.by_pin.get(&peer.pin) {
            return Arc::clone(headers);
        }
        let h = &self.headers;
        let mut list = Vec::with_capacity(6);
        let mut add = |name: &'static str, value: Option<HeaderValue>| {
            if let Some(value) = value {
                list.push((HeaderName::from_static(name), value));
            }
        };
        add(
            names::ENTITY_ID,
            encode(&peer.entity_id, h.entity_id_encoding),
        );
        if let Some(organization) = &peer.organization {
            add(
                names::ORGANIZATION,
                encode(organization, h.organization_encoding),
            );
        }
        if let Some(id) = &peer.organization_id {
            add(
                names::ORGANIZATION_ID,
                encode(id.as_str(), h.organization_id_encoding),
            );
        }
        add(
            names::SCOPES,
            encode(&peer.scopes.join(","), Encoding::None),
        );
        add(
            names::CLIENT_TAGS,
            encode(&peer.tags.join(","), Encoding::None),
        );
        add(names::PIN, encode(&peer.pin.to_string(), Encoding::None));
        let list: Arc<[(HeaderName, HeaderValue)]> = list.into();
        cache.by_pin.insert(peer.pin, Arc::clone(&list));
        list
    }

    fn add_identity(
        &self,
        headers: &mut HeaderMap,
        peer: &PeerIdentity,
        certificate: Option<&ClientCertificate>,
    ) {
        for (name, value) in self.identity_headers(peer).iter() {
            headers.insert(name.clone(), value.clone());
        }
        let h = &self.headers;
        if let Some(certificate) = certificate {
            let der: &[u8] = &certificate.0;
            let value = match h.client_cert {
                ClientCertFormat::None => None,
                ClientCertFormat::Rfc9440 => Some(format!(":{}:", STANDARD.encode(der))),
                ClientCertFormat::Base64Der => Some(STANDARD.encode(der)),
                ClientCertFormat::PemSpaces => Some(
                    pem::encode_config(
                        &pem::Pem::new("CERTIFICATE", der),
                        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
                    )
                    .trim_end()
                    .replace('\n', " "),
                ),
            };
            if let Some(value) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
                headers.insert(self.client_cert_header.clone(), value);
            }
        }
    }
}

/// A header value for possibly non-ASCII text; `None` (the header is left out) only if
/// the text holds control characters, which no encoding-less header may carry.
fn encode(text: &str, encoding: Encoding) -> Option<HeaderValue> {
    match encoding {
        Encoding::None => HeaderValue::from_bytes(text.as_bytes()).ok(),
        Encoding::Url => HeaderValue::try_from(percent_encode(text)).ok(),
        Encoding::Base64 => HeaderValue::try_from(STANDARD.encode(text.as_bytes())).ok(),
    }
}

/// Everything but the unreserved characters of RFC 3986 (`A-Z a-z 0-9 - . _ ~`).
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers, the headers `Connection` names, and every header a client
/// could use to spoof an identity or an origin: the proxy's own headers in every spelling a
/// backend folds into them (`X_FedTLSAuth_Entity_ID`, `Client_Cert`, `X_API_Key`: see
/// [`trusted_headers`]).
fn sanitize(
    headers: &mut HeaderMap,
    client_cert_header: &str,
    api_key_header: Option<&HeaderName>,
) {
    headers.remove(header::HOST);
    let named = connection_options(headers);
    let unwanted = |name: &HeaderName| {
        let text = name.as_str();
        is_hop_by_hop(name)
            || trusted_headers::is_trusted(text)
            || trusted_headers::same_name(text, client_cert_header)
            || api_key_header.is_some_and(|k| trusted_headers::same_name(text, k.as_str()))
            // httpoxy: CGI backends turn `Proxy` into HTTP_PROXY, read as the proxy for
            // their own outbound requests.
            || trusted_headers::same_name(text, "proxy")
            || named.contains(name)
    };
    remove_where(headers, unwanted);
}

/// Removes hop-by-hop headers and the headers `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_options(headers);
    remove_where(headers, |name| is_hop_by_hop(name) || named.contains(name));
}

/// The header names listed in `Connection` (usually none).
fn connection_options(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::try_from(token.trim()).ok())
        .collect()
}

/// Removes every header whose name matches; one pass over the names, and a list of them
/// only when there is something to remove (most requests carry none).
fn remove_where(headers: &mut HeaderMap, unwanted: impl Fn(&HeaderName) -> bool) {
    if headers.keys().any(&unwanted) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| unwanted(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
}

/// `Forwarded` (RFC 7239) and the `X-Forwarded-*` trio, describing the real client.
fn add_forwarded(headers: &mut HeaderMap, client: Option<SocketAddr>, host: Option<HeaderValue>) {
    use std::fmt::Write as _;
    let mut forwarded = String::with_capacity(96);
    if let Some(addr) = client {
        let ip = addr.ip().to_string();
        let _ = match addr {
            SocketAddr::V4(_) => write!(forwarded, "for=\"{ip}:{}\";", addr.port()),
            SocketAddr::V6(_) => write!(forwarded, "for=\"[{ip}]:{}\";", addr.port()),
        };
        if let Ok(value) = HeaderValue::try_from(ip) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), value);
        }
    }
    forwarded.push_str("proto=https");
    // A host that cannot be a quoted-string is left out rather than escaped.
    if let Some(host) = host.filter(|h| {
        h.as_bytes()
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b'"')
    }) {
        if let Ok(text) = host.to_str() {
            forwarded.push_str(";host=\"");
            forwarded.push_str(text);
            forwarded.push('"');
        }
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    if let Ok(value) = HeaderValue::try_from(forwarded) {
        headers.insert(header::FORWARDED, value);
    }
}

/// Completes a `101 Switching Protocols`: both sides upgrade and bytes are copied between
/// them until either closes.
fn switch_protocols(
    mut response: Response<hyper::body::Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<Body> {
    let Some(client_upgrade) = client_upgrade else {
        return json_error(
            StatusCode::BAD_GATEWAY,
            "unexpected_upgrade",
            "the backend switched protocols without being asked to",
        );
    };
    let backend_upgrade = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        match tokio::try_join!(client_upgrade, backend_upgrade) {
            Ok((client, backend)) => {
                let mut client = TokioIo::new(client);
                let mut backend = TokioIo::new(backend);
                if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                    tracing::debug!(error = %err, "upgraded connection ended");
                }
            }
            Err(err) => tracing::warn!(error = %err, "upgrade failed"),
        }
    });
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, kontosynk_framework::response::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_follow_the_metadata_generation() {
        let clients =
            crate::backend::clients(&Default::default(), false, Duration::from_secs(1)).unwrap();
        let forwarder = Forwarder::new(
            clients,
            &"http://127.0.0.1:1".parse().unwrap(),
            HeadersConfig::default(),
            Duration::from_secs(1),
        )
        .unwrap();
        let mut peer = PeerIdentity {
            entity_id: "https://a.example".into(),
            organization: Some("Old name AB".into()),
            organization_id: Some("SE5566000001".parse().unwrap()),
            tags: vec!["egilv1".parse().unwrap()],
            scopes: vec![],
            pin: fedtls::Pin::of_spki(b"key"),
            generation: 1,
            source: "test".into(),
            source_iss: None,
        };
        let organization = |headers: &[(HeaderName, HeaderValue)]| {
            headers
                .iter()
                .find(|(n, _)| n == names::ORGANIZATION)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            organization(&forwarder.identity_headers(&peer)).unwrap(),
            "Old name AB"
        );
        // The same pin in newer metadata with a new name: never the cached old one.
        peer.organization = Some("New name AB".into());
        peer.generation = 2;
        assert_eq!(
            organization(&forwarder.identity_headers(&peer)).unwrap(),
            "New name AB"
        );
    }

    #[test]
    fn encodings_of_a_non_ascii_name() {
        let name = "Ängelholms kommun";
        assert_eq!(
            encode(name, Encoding::None).unwrap().as_bytes(),
            name.as_bytes()
        );
        assert_eq!(
            encode(name, Encoding::Url).unwrap(),
            "%C3%84ngelholms%20kommun"
        );
        assert_eq!(
            encode(name, Encoding::Base64).unwrap(),
            "w4RuZ2VsaG9sbXMga29tbXVu"
        );
        assert!(encode("line\nbreak", Encoding::None).is_none());
    }

    #[test]
    fn sanitize_removes_spoofable_and_hop_by_hop_headers() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-fedtlsauth-entity-id", "https://evil"),
            ("X-FedTLSAuth-Anything", "x"),
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("client-cert", ":AAAA:"),
            ("x-api-key", "stolen"),
            ("X_FedTLSAuth_Entity_ID", "https://evil"),
            ("Client_Cert", ":AAAA:"),
            ("client_cert_chain", ":AAAA:"),
            ("X_API_Key", "stolen"),
            ("x_forwarded_for", "1.2.3.4"),
            ("x_request_id", "kept"),
            ("Proxy", "http://evil.example:3128"),
            ("connection", "keep-alive, x-custom"),
            ("x-custom", "hop"),
            ("accept", "application/json"),
        ] {
            headers.append(
                HeaderName::try_from(name).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        let api = HeaderName::from_static("x-api-key");
        sanitize(&mut headers, "client-cert", Some(&api));
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x_request_id"]);
    }
}
