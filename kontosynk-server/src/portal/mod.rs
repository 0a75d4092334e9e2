//! The SSO portal (`kontosynk-server portal`): a page for school staff and pupils with the
//! services of Skolfederation's SSO-link metadata, grouped by organization, each a button that
//! leads straight to the service's login for the user's school (IdP). The IdP is chosen from
//! the verified SAML aggregate (search by name) and remembered in a cookie. Swedish by
//! default, English on a switch; no scripts, no tracking.
//!
//! Plain HTTP, meant to run behind the organization's TLS-terminating reverse proxy (the page
//! needs no client certificate; the proxy holds the public certificate). Routes:
//!
//! - `GET /` the page (`?q=` searches IdPs, `?change=1` shows the chooser, `?lang=sv|en`);
//! - `GET /choose?idp=ENTITYID` remembers the IdP (cookie) and redirects to `/`;
//! - `GET /api/links?idp=ENTITYID` every service's login URL for that IdP (JSON);
//! - `GET /api/idps?q=TEXT` the IdPs matching a search (JSON, at most 50);
//! - `GET /healthz` both documents' state (200 when both are usable, else 503).

mod page;
mod text;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use skolfed_sso::fetch::{Feed, FetchConfig, FetchError, error_chain, unix_now};
use skolfed_sso::links::{ParsedLinks, encode_component, parse};
use skolfed_sso::saml::{Aggregate, SigningCertificate, VerifyOptions, verify_aggregate};

use self::page::{MAX_IDPS_SHOWN, PageInput};
use self::text::Lang;

const IDP_COOKIE: &str = "skolfed_idp";
const LANG_COOKIE: &str = "skolfed_lang";
/// The most connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 1024;
/// The longest search text used.
const MAX_QUERY_CHARS: usize = 100;

/// How the portal gets its two documents.
pub struct PortalConfig {
    /// The SSO-link metadata (JSON).
    pub links: FetchConfig,
    /// The signed SAML aggregate.
    pub saml: FetchConfig,
    /// The operator's certificate the aggregate must be signed with.
    pub saml_certificate: SigningCertificate,
    /// Mark cookies `Secure` (the public URL is https, as it must be behind the proxy).
    pub secure_cookies: bool,
}

/// Why the portal cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The SSO-link metadata could not be loaded.
    #[error("SSO-link metadata: {0}")]
    Links(#[source] FetchError),
    /// The SAML aggregate could not be loaded or verified.
    #[error("SAML metadata: {0}")]
    Saml(#[source] FetchError),
}

/// The portal: its two feeds and its request handler.
pub struct Portal {
    links: Arc<Feed<ParsedLinks>>,
    saml: Arc<Feed<Aggregate>>,
    secure_cookies: bool,
}

impl Portal {
    /// Sets up the feeds (nothing is fetched yet).
    pub fn new(config: PortalConfig) -> Result<Self, PortalError> {
        let links = Feed::new(config.links, |bytes: &[u8]| {
            let parsed = parse(bytes);
            if parsed.links.organizations.is_empty() && parsed.has_errors() {
                return Err(parsed
                    .problems
                    .first()
                    .map_or_else(String::new, ToString::to_string));
            }
            Ok(parsed)
        })
        .map_err(PortalError::Links)?;
        let certificate = config.saml_certificate;
        let saml = Feed::new(config.saml, move |bytes: &[u8]| {
            verify_aggregate(bytes, &certificate, VerifyOptions { now: unix_now() })
                .map_err(|e| error_chain(&e))
        })
        .map_err(PortalError::Saml)?;
        Ok(Self {
            links: Arc::new(links),
            saml: Arc::new(saml),
            secure_cookies: config.secure_cookies,
        })
    }

    /// Loads both documents (cache files first); fails when either has none usable.
    pub async fn load(&self) -> Result<(), PortalError> {
        let (links, saml) = tokio::join!(self.links.load(), self.saml.load());
        links.map_err(PortalError::Links)?;
        saml.map_err(PortalError::Saml)?;
        if let Some(links) = self.links.current()
            && !links.problems.is_empty()
        {
            tracing::warn!(
                problems = links.problems.len(),
                "the SSO-link metadata has problems; run `skolfed-sso lint` on it"
            );
        }
        Ok(())
    }

    /// Keeps both documents fresh in the background.
    pub fn spawn_refresh(&self) -> [tokio::task::JoinHandle<()>; 2] {
        [self.links.spawn(), self.saml.spawn()]
    }

    /// Answers one request.
    pub fn handle<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        }
        let query = Query::parse(request.uri().query().unwrap_or(""));
        let cookies = Cookies::parse(request);
        match request.uri().path() {
            "/" => self.page(&query, &cookies),
            "/choose" => self.choose(&query),
            "/api/links" => self.api_links(&query),
            "/api/idps" => self.api_idps(&query),
            "/portal.css" => {
                let mut response = respond(StatusCode::OK, "text/css; charset=utf-8", page::CSS);
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=3600"),
                );
                response
            }
            "/healthz" => self.health(),
            _ => plain(StatusCode::NOT_FOUND, "not found: the portal is at /\n"),
        }
    }

    fn page(&self, query: &Query, cookies: &Cookies) -> Response<Full<Bytes>> {
        let lang_param = Lang::from_code(query.get("lang"));
        let lang = lang_param
            .or_else(|| Lang::from_code(cookies.get(LANG_COOKIE)))
            .unwrap_or(Lang::Sv);
        let aggregate = self.saml.current();
        let links = self.links.current();
        let chosen = cookies
            .get(IDP_COOKIE)
            .and_then(|id| percent_encoding::percent_decode_str(id).decode_utf8().ok())
            .and_then(|id| aggregate.as_deref().and_then(|a| a.idp(&id)));
        let search: String = query
            .get("q")
            .unwrap_or("")
            .chars()
            .take(MAX_QUERY_CHARS)
            .collect();
        let html = page::render(&PageInput {
            lang,
            links: links.as_deref().map(|l| &l.links),
            aggregate: aggregate.as_deref(),
            chosen,
            choosing: query.get("change").is_some() || !search.is_empty(),
            query: &search,
        });
        let mut response = respond(StatusCode::OK, "text/html; charset=utf-8", html);
        if let Some(lang) = lang_param {
            self.set_cookie(&mut response, LANG_COOKIE, lang.code());
        }
        response
    }

    fn choose(&self, query: &Query) -> Response<Full<Bytes>> {
        let known = query.get("idp").and_then(|id| {
            self.saml
                .current()
                .and_then(|a| a.idp(id).map(|idp| idp.entity_id.clone()))
        });
        let Some(entity_id) = known else {
            return redirect("/?change=1");
        };
        let mut response = redirect("/");
        self.set_cookie(&mut response, IDP_COOKIE, &encode_component(&entity_id));
        response
    }

    fn api_links(&self, query: &Query) -> Response<Full<Bytes>> {
        let Some(idp) = query.get("idp") else {
            return json_error(
                StatusCode::BAD_REQUEST,
                "missing_idp",
                "give the IdP's entityID: /api/links?idp=ENTITYID",
            );
        };
        let Some(aggregate) = self.saml.current() else {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_saml_metadata",
                "the federation's verified SAML metadata is not available right now",
            );
        };
        if aggregate.idp(idp).is_none() {
            return json_error(
                StatusCode::NOT_FOUND,
                "unknown_idp",
                "no IdP with this entityID in the federation's verified metadata (see /api/idps)",
            );
        }
        let Some(links) = self.links.current() else {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_sso_links",
                "the SSO-link metadata is not available right now",
            );
        };
        json(StatusCode::OK, &links.links.for_idp(idp))
    }

    fn api_idps(&self, query: &Query) -> Response<Full<Bytes>> {
        let Some(aggregate) = self.saml.current() else {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_saml_metadata",
                "the federation's verified SAML metadata is not available right now",
            );
        };
        let search: String = query
            .get("q")
            .unwrap_or("")
            .chars()
            .take(MAX_QUERY_CHARS)
            .collect();
        let idps: Vec<_> = aggregate
            .idps
            .iter()
            .filter(|idp| search.trim().is_empty() || idp.matches(&search))
            .take(MAX_IDPS_SHOWN)
            .collect();
        json(StatusCode::OK, &serde_json::json!({ "idps": idps }))
    }

    fn health(&self) -> Response<Full<Bytes>> {
        let ok = self.links.current().is_some() && self.saml.current().is_some();
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(
            status,
            &serde_json::json!({
                "ok": ok,
                "sso_links": { "usable": self.links.current().is_some(), "status": self.links.status() },
                "saml": { "usable": self.saml.current().is_some(), "status": self.saml.status() },
            }),
        )
    }

    fn set_cookie(&self, response: &mut Response<Full<Bytes>>, name: &str, value: &str) {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let cookie =
            format!("{name}={value}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then drains connections.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                () = &mut shutdown => break,
            };
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let portal = self.clone();
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let response = portal.handle(&request);
                    async move { Ok::<_, Infallible>(response) }
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    }
}

/// Query parameters (first value of each name wins).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Self {
        Self(
            url::form_urlencoded::parse(query.as_bytes())
                .take(32)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The request's cookies.
struct Cookies(Vec<(String, String)>);

impl Cookies {
    fn parse<B>(request: &Request<B>) -> Self {
        let mut cookies = Vec::new();
        for value in request.headers().get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';').take(64) {
                if let Some((name, value)) = pair.trim().split_once('=') {
                    cookies.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Self(cookies)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", text)
}

fn redirect(location: &'static str) -> Response<Full<Bytes>> {
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    response
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = respond(status, "application/json", body);
    // Other portals may read the JSON from their own pages.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn json_error(status: StatusCode, error: &str, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        &serde_json::json!({ "error": error, "message": message }),
    )
}
