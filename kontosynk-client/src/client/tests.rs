//! The client against real kontosynk-server instances over loopback mutual TLS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fedtls::snapshot::SnapshotCell;
use fedtls::tls::PeerIdentity;
use fedtls::verify::unix_now;
use http::{Method, Request, Response, StatusCode};
use kontosynk_framework::RequestBody;
use kontosynk_framework::response::{self, Body};

use super::*;
use crate::testsupport::{Fed, SCHOOL, SUPPLIER};

/// A header map of `(name, value)` pairs, for the tests of the header readers.
pub(super) fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    map
}

/// A handler answering with the caller's entity id and the HTTP version.
async fn whoami(request: Request<RequestBody>) -> Response<Body> {
    let peer = request
        .extensions()
        .get::<PeerIdentity>()
        .map(|p| p.entity_id.to_string());
    response::json(
        StatusCode::OK,
        &serde_json::json!({
            "peer": peer,
            "version": format!("{:?}", request.version()),
            "path": request.uri().path(),
        }),
    )
}

/// A federation whose school server runs on loopback with `handler`; returns the fed, the
/// metadata cell and a client for the supplier.
async fn school_with(
    handler: impl kontosynk_framework::Handler,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> (Fed, Arc<SnapshotCell>, FederationClient) {
    let mut fed = Fed::new();
    let cell = Arc::new(SnapshotCell::new());
    let addr = fed
        .serve_as("school-server", Arc::clone(&cell), handler)
        .await;
    fed.set_base_uri(
        SCHOOL,
        &format!("https://localhost:{}/ss12000/v2.0", addr.port()),
    );
    cell.store(fed.snapshot());
    let builder = FederationClient::builder(cell.clone(), fed.identity("supplier-client"))
        .discover(
            ServerQuery::entity(SCHOOL).with_tag("egilv1"),
            Choice::Unique,
        )
        .retry(RetryPolicy {
            base_delay: Duration::from_millis(5),
            ..RetryPolicy::default()
        });
    let client = configure(builder).build().unwrap();
    (fed, cell, client)
}

#[tokio::test]
async fn mutual_tls_with_pins_from_metadata_over_http2() {
    let (_fed, _cell, client) = school_with(whoami, |b| b).await;
    assert_eq!(client.target().entity_id, SCHOOL);
    let response = client
        .send(client.get("persons?limit=2").unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["peer"], SUPPLIER);
    assert_eq!(body["path"], "/ss12000/v2.0/persons");
}

#[tokio::test]
async fn http1_fallback() {
    let (_fed, _cell, client) = school_with(whoami, |b| b.http1_only(true)).await;
    let response = client.send(client.get("x").unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["version"], "HTTP/1.1");
}

#[tokio::test]
async fn refuses_a_server_whose_pin_the_metadata_does_not_list() {
    let (mut fed, cell, client) = school_with(whoami, |b| b).await;
    // The metadata now lists another key for the school's server.
    let other = fed.fed.party("supplier-server").unwrap().pin;
    fed.set_server_pins(SCHOOL, &[other]);
    cell.store(fed.snapshot());
    let error = client.send(client.get("x").unwrap()).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ClientError::Request { .. }), "{text}");
    assert!(text.contains("not one of the 1 pin(s) selected"), "{text}");
}

#[tokio::test]
async fn refuses_to_connect_with_expired_metadata() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let handler = move |_request: Request<RequestBody>| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            response::json(StatusCode::OK, &serde_json::json!({}))
        }
    };
    let (fed, cell, client) = school_with(handler, |b| b).await;
    client.send(client.get("x").unwrap()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Metadata signed two hours ago, valid for one: expired now.
    cell.store(fed.snapshot_at(unix_now() - 7200, 3600));
    let error = client.send(client.get("x").unwrap()).await.unwrap_err();
    assert!(matches!(error, ClientError::NoMetadata { .. }), "{error}");
    assert!(error.to_string().contains("refusing to connect"), "{error}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "no request may reach the server"
    );

    // And no new client can be built on it.
    let error = FederationClient::builder(cell.clone(), fed.identity("supplier-client"))
        .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
        .build()
        .unwrap_err();
    assert!(matches!(error, ClientError::NoMetadata { .. }), "{error}");
}

#[tokio::test]
async fn retries_429_honouring_retry_after_and_exposes_rate_limits() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let handler = move |_request: Request<RequestBody>| {
        let counter = Arc::clone(&counter);
        async move {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut response = if n == 0 {
                let mut r = response::json(StatusCode::TOO_MANY_REQUESTS, &serde_json::json!({}));
                r.headers_mut().insert("retry-after", "0".parse().unwrap());
                r.headers_mut()
                    .insert("x-ratelimit-remaining", "0".parse().unwrap());
                r.headers_mut()
                    .insert("x-ratelimit-reset", "0.05".parse().unwrap());
                r
            } else {
                let mut r = response::json(StatusCode::OK, &serde_json::json!({"n": n}));
                r.headers_mut()
                    .insert("x-ratelimit-remaining", "9".parse().unwrap());
                r
            };
            response
                .headers_mut()
                .insert("x-ratelimit-limit", "10".parse().unwrap());
            response
        }
    };
    let (_fed, _cell, client) = school_with(handler, |b| b).await;
    let response = client.send(client.get("x").unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let info = client.rate_limit().unwrap();
    assert_eq!(info.limit, Some(10));
    assert_eq!(info.remaining, Some(9));
}

#[tokio::test]
async fn post_is_not_retried_on_429_unless_allowed_and_gives_up_after_max_retries() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let handler = move |_request: Request<RequestBody>| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut r = response::json(StatusCode::TOO_MANY_REQUESTS, &serde_json::json!({}));
            r.headers_mut().insert("retry-after", "0".parse().unwrap());
            r
        }
    };
    let (_fed, _cell, client) = school_with(handler, |b| b).await;
    let post = client.request(Method::POST, "bulk").unwrap().body("{}");
    let response = client.send(post).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A GET is retried max_retries (3) times, then the last 429 is returned.
    let response = client.send(client.get("x").unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(hits.load(Ordering::SeqCst), 1 + 4);
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port with nobody listening: bind, note the port, close.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut fed = Fed::new();
    fed.set_base_uri(SCHOOL, &format!("https://127.0.0.1:{port}/"));
    let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
    let client = FederationClient::builder(cell, fed.identity("supplier-client"))
        .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
        .retry(RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let error = client.send(client.get("x").unwrap()).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, ClientError::Request { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}

#[test]
fn urls_are_resolved_under_base_uri() {
    let fed = Fed::new();
    let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
    let client = FederationClient::builder(cell, fed.identity("supplier-client"))
        .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
        .build()
        .unwrap();
    // testfed's school base is https://localhost:8443/ss12000/v2.0/
    assert_eq!(
        client.url("/persons?limit=5").unwrap().as_str(),
        "https://localhost:8443/ss12000/v2.0/persons?limit=5"
    );
    assert_eq!(
        client.url("https://localhost:8443/other").unwrap().as_str(),
        "https://localhost:8443/other"
    );
    let error = client.url("https://evil.example/").unwrap_err();
    assert!(error.to_string().contains("origin"), "{error}");
}

#[test]
fn builder_needs_a_server_and_a_matching_key() {
    let fed = Fed::new();
    let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
    let error = FederationClient::builder(cell.clone(), fed.identity("supplier-client"))
        .build()
        .unwrap_err();
    assert!(matches!(error, ClientError::NoServer), "{error}");

    // The supplier's certificate with the school's key.
    let (cert, _) = fed.files("supplier-client");
    let (_, key) = fed.files("school-client");
    let identity = Identity::from_pem_files(cert, key).unwrap();
    let error = FederationClient::builder(cell, identity)
        .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
        .build()
        .unwrap_err();
    assert!(matches!(error, ClientError::Tls(_)), "{error}");

    let missing = fed.dir.path().join("missing.pem");
    let error = Identity::from_pem_files(&missing, &missing).unwrap_err();
    assert!(error.to_string().contains("missing.pem"), "{error}");
}

#[tokio::test]
async fn falls_back_to_http1_when_the_server_offers_only_http1() {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;

    let mut fed = Fed::new();
    let (cert, key) = fed.files("school-server");
    let chain = fedtls::tls::load_cert_chain(cert).unwrap();
    let key = fedtls::tls::load_private_key(key).unwrap();
    let cell = Arc::new(SnapshotCell::new());
    // A server speaking only HTTP/1.1 (ALPN http/1.1), requiring a pinned client.
    let config = fedtls::tls::server_config(
        Arc::new(fedtls::tls::PinnedClientVerifier::new(cell.clone())),
        chain,
        key,
        &[b"http/1.1"],
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    |request: Request<hyper::body::Incoming>| async move {
                        let body = format!("{:?}", request.version());
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            body,
                        ))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    fed.set_base_uri(SCHOOL, &format!("https://127.0.0.1:{port}/"));
    cell.store(fed.snapshot());
    let client = FederationClient::builder(cell.clone(), fed.identity("supplier-client"))
        .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
        .build()
        .unwrap();
    let response = client.send(client.get("x").unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(response.text().await.unwrap(), "HTTP/1.1");
}

#[tokio::test]
async fn a_request_that_cannot_be_built_is_an_error_not_a_panic() {
    let fed = Fed::new();
    let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
    let client = FederationClient::builder(cell, fed.identity("supplier-client"))
        .discover(ServerQuery::entity(SCHOOL), Choice::Unique)
        .build()
        .unwrap();
    let bad = client.get("x").unwrap().header("x-bad", "line\nbreak");
    let error = client.send(bad).await.unwrap_err();
    assert!(matches!(error, ClientError::BuildRequest { .. }), "{error}");
}
