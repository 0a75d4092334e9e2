//! MetadataStore against a real HTTP(S) server on loopback that misbehaves on command, and
//! against files: fetching, scheduling, conditional requests, failures, expiry, rollback,
//! the cache file and change notification.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use fedtls::SnapshotSource;
use fedtls::jwk::{Algorithm, Jwks, SigningKey};
use fedtls::jws::{JwsFormat, SignOptions, sign_metadata};
use fedtls::store::{
    MetadataSource, MetadataStore, RefreshOutcome, StoreConfig, StoreError, StoreStatus,
};
use fedtls::testfed::{FederationOptions, TestFederation, init};
use fedtls::verify::unix_now;
use http::HeaderMap;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Guards every await that could hang if the code under test were broken.
const HANG_GUARD: Duration = Duration::from_secs(20);

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the operation hung")
}

// ---------------------------------------------------------------------------------------
// A test federation and signed variants of its metadata.

struct Fed {
    dir: tempfile::TempDir,
    fed: TestFederation,
    key: SigningKey,
    jwks: Jwks,
    payload: Map<String, Value>,
}

impl Fed {
    fn new() -> Fed {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let fed = init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
        let key = SigningKey::from_jwk_json(&std::fs::read(&fed.signing_key).unwrap()).unwrap();
        let jwks = Jwks::from_json(&std::fs::read(&fed.jwks).unwrap()).unwrap();
        let payload = match serde_json::from_slice(&std::fs::read(&fed.metadata_json).unwrap()) {
            Ok(Value::Object(map)) => map,
            other => panic!("metadata.json is not an object: {other:?}"),
        };
        Fed {
            dir,
            fed,
            key,
            jwks,
            payload,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The metadata signed by the federation's key, issued `iat_offset` seconds from now
    /// and valid for `lifetime` seconds, after `edit` changed the payload.
    fn sign(
        &self,
        iat_offset: i64,
        lifetime: i64,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Vec<u8> {
        self.sign_with(&self.key, iat_offset, lifetime, edit)
    }

    fn sign_with(
        &self,
        key: &SigningKey,
        iat_offset: i64,
        lifetime: i64,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Vec<u8> {
        let mut payload = self.payload.clone();
        edit(&mut payload);
        sign_metadata(
            &payload,
            &[key],
            &SignOptions {
                iss: self.fed.iss.clone(),
                lifetime_secs: lifetime,
                now: unix_now() + iat_offset,
                format: JwsFormat::General,
                default_cache_ttl: 3600,
            },
        )
        .unwrap()
        .into_bytes()
    }

    /// Valid for a day, as published.
    fn good(&self) -> Vec<u8> {
        self.sign(0, 86_400, |_| {})
    }

    fn with_cache_ttl(&self, ttl: u64) -> Vec<u8> {
        self.sign(0, 86_400, |p| {
            p.insert("cache_ttl".into(), ttl.into());
        })
    }

    /// The same federation without its last entity.
    fn fewer_entities(&self) -> Vec<u8> {
        self.sign(0, 86_400, |p| {
            if let Some(Value::Array(entities)) = p.get_mut("entities") {
                entities.pop();
            }
        })
    }

    /// Validly signed, but expired 50 s ago.
    fn expired(&self) -> Vec<u8> {
        self.sign(-100, 50, |_| {})
    }

    /// Signed by another federation's key (with the same kid, so the signature itself is
    /// what fails).
    fn foreign(&self) -> Vec<u8> {
        let other = SigningKey::generate(Algorithm::Es256, self.key.kid()).unwrap();
        self.sign_with(&other, 0, 86_400, |_| {})
    }

    fn config(&self, source: MetadataSource) -> StoreConfig {
        let mut config = StoreConfig::new(source, self.jwks.clone());
        config.fetch_timeout = Duration::from_secs(5);
        config.retry_cap = Duration::from_secs(1);
        config
    }

    fn store(&self, source: MetadataSource) -> MetadataStore {
        MetadataStore::new(self.config(source)).unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// A small HTTP/1.1 server on loopback that does what the test says.

#[derive(Clone)]
enum Mode {
    /// A normal response with Content-Length.
    Normal,
    /// No Content-Length: the body in chunks of `size`, pausing `pause` after the first.
    Chunked { size: usize, pause: Duration },
    /// Raw bytes on the socket instead of HTTP from hyper, then close.
    Raw(Vec<u8>),
}

#[derive(Clone)]
struct Behaviour {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    /// Answer 304 to a matching `If-None-Match`.
    etag: Option<String>,
    /// Sent as `Last-Modified`.
    last_modified: Option<String>,
    /// Extra headers on a 304.
    not_modified_headers: Vec<(&'static str, String)>,
    /// Wait this long before answering.
    delay: Duration,
    mode: Mode,
}

impl Behaviour {
    fn serving(body: Vec<u8>) -> Self {
        Behaviour {
            status: 200,
            body,
            headers: Vec::new(),
            etag: None,
            last_modified: None,
            not_modified_headers: Vec::new(),
            delay: Duration::ZERO,
            mode: Mode::Normal,
        }
    }
}

struct Server {
    addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<HeaderMap>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// A response body fed through a channel (for pauses and missing Content-Length).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

impl Server {
    async fn start(behaviour: Behaviour) -> Server {
        Self::start_on("127.0.0.1:0".parse().unwrap(), behaviour).await
    }

    async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Server {
        Self::start_with_tls(addr, behaviour, None).await
    }

    async fn start_with_tls(
        addr: SocketAddr,
        behaviour: Behaviour,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Server {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (b, r) = (Arc::clone(&behaviour), Arc::clone(&requests));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let (b, r, tls) = (Arc::clone(&b), Arc::clone(&r), tls.clone());
                tokio::spawn(async move {
                    let snapshot = b.lock().unwrap().clone();
                    if let Mode::Raw(raw) = &snapshot.mode {
                        tokio::time::sleep(snapshot.delay).await;
                        let _ = stream.write_all(raw).await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                    let service = service_fn(move |request: hyper::Request<Incoming>| {
                        let (b, r) = (Arc::clone(&b), Arc::clone(&r));
                        async move { Ok::<_, Infallible>(respond(&b, &r, request).await) }
                    });
                    // One request per connection, so that every request sees the
                    // current mode (raw modes bypass hyper).
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.keep_alive(false);
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Server {
            addr,
            behaviour,
            requests,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/md/kontosynk.jws", self.addr)
    }

    fn source(&self) -> MetadataSource {
        self.url().parse().unwrap()
    }

    fn set(&self, edit: impl FnOnce(&mut Behaviour)) {
        edit(&mut self.behaviour.lock().unwrap());
    }

    fn serve(&self, body: Vec<u8>) {
        self.set(|b| *b = Behaviour::serving(body));
    }

    fn requests(&self) -> Vec<HeaderMap> {
        self.requests.lock().unwrap().clone()
    }
}

async fn respond(
    behaviour: &Mutex<Behaviour>,
    requests: &Mutex<Vec<HeaderMap>>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Body> {
    requests.lock().unwrap().push(request.headers().clone());
    let b = behaviour.lock().unwrap().clone();
    tokio::time::sleep(b.delay).await;
    let mut response = hyper::Response::builder();
    let inm = request.headers().get("if-none-match");
    if let (Some(etag), Some(inm)) = (&b.etag, inm)
        && inm.as_bytes() == etag.as_bytes()
    {
        response = response.status(304).header("etag", etag);
        for (name, value) in &b.not_modified_headers {
            response = response.header(*name, value);
        }
        return response.body(Full::new(Bytes::new()).boxed()).unwrap();
    }
    response = response.status(b.status);
    if let Some(etag) = &b.etag {
        response = response.header("etag", etag);
    }
    if let Some(modified) = &b.last_modified {
        response = response.header("last-modified", modified);
    }
    for (name, value) in &b.headers {
        response = response.header(*name, value);
    }
    let body = match b.mode {
        Mode::Chunked { size, pause } => {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let chunks: Vec<Bytes> = b
                .body
                .chunks(size.max(1))
                .map(Bytes::copy_from_slice)
                .collect();
            tokio::spawn(async move {
                for (i, chunk) in chunks.into_iter().enumerate() {
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                    if i == 0 {
                        tokio::time::sleep(pause).await;
                    }
                }
            });
            ChannelBody(rx).boxed()
        }
        _ => Full::new(Bytes::from(b.body)).boxed(),
    };
    response.body(body).unwrap()
}

/// A loopback address nothing listens on (connections are refused).
fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn assert_kept(store: &MetadataStore, generation: u64) {
    let current = store
        .current()
        .expect("the previous snapshot stays current");
    assert_eq!(current.generation(), generation);
    assert_eq!(store.generation(), generation);
}

fn assert_failed(status: &StoreStatus, failures: u32, mentions: &str) {
    assert_eq!(status.consecutive_failures, failures, "{status:#?}");
    let error = status.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains(mentions),
        "{error:?} should mention {mentions:?}"
    );
    assert_eq!(status.refresh_basis, Some("backoff"));
    assert!(
        status.refresh_interval_secs <= Some(1),
        "capped by retry_cap"
    );
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn initial_fetch_publishes_a_snapshot_and_a_full_status() {
    let fed = Fed::new();
    // One malformed entity: left out, the rest usable.
    let doc = fed.sign(0, 86_400, |p| {
        if let Some(Value::Array(entities)) = p.get_mut("entities") {
            entities.push(json!({"organization": "No entity_id AB", "issuers": []}));
        }
    });
    let server = Server::start(Behaviour::serving(doc)).await;
    let store = fed.store(server.source());
    let mut changes = store.subscribe();
    assert!(store.current().is_none());
    let before = store.status();
    assert!(!before.is_ready());
    assert_eq!(before.generation, 0);
    assert!(!before.expired, "no snapshot is not an expired snapshot");

    let snapshot = within(store.load()).await.unwrap();
    assert_eq!(snapshot.generation(), 1);
    assert_eq!(snapshot.source(), server.url());
    assert_eq!(snapshot.index().entities().len(), 3);
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), 1);
    assert_eq!(store.current().unwrap().generation(), 1);
    assert_eq!(store.cell().current().unwrap().generation(), 1);

    let status = store.status();
    assert!(status.is_ready(), "{status:#?}");
    assert_eq!(status.source, server.url());
    assert_eq!(
        status.snapshot_source.as_deref(),
        Some(server.url().as_str())
    );
    assert_eq!(status.generation, 1);
    assert!(status.last_success.is_some() && status.last_attempt.is_some());
    assert_eq!(status.last_error, None);
    assert_eq!(status.consecutive_failures, 0);
    assert!((0..=5).contains(&status.age_secs.unwrap()));
    let iat = status.issued_at.unwrap();
    assert_eq!(status.expires_at, Some(iat + 86_400));
    assert!(status.seconds_to_expiry.unwrap() > 86_000);
    assert!(!status.expired);
    assert_eq!(status.entities, 3);
    assert_eq!(status.rejected_entities, 1);
    assert_eq!(status.refresh_basis, Some("cache_ttl"));
    assert_eq!(status.refresh_interval_secs, Some(3600));
    assert!((3590..=3600).contains(&status.next_refresh_in_secs.unwrap()));

    let json = serde_json::to_value(&status).unwrap();
    for key in [
        "source",
        "generation",
        "last_success",
        "last_attempt",
        "last_error",
        "consecutive_failures",
        "age_secs",
        "expires_at",
        "seconds_to_expiry",
        "expired",
        "entities",
        "rejected_entities",
        "next_refresh_in_secs",
    ] {
        assert!(json.get(key).is_some(), "status JSON lacks {key}: {json}");
    }
    let first = server.requests();
    assert_eq!(first.len(), 1);
    assert!(first[0].get("if-none-match").is_none());
}

#[tokio::test]
async fn cache_ttl_and_http_expiry_drive_the_schedule() {
    let fed = Fed::new();
    let server = Server::start(Behaviour::serving(fed.with_cache_ttl(600))).await;
    let store = fed.store(server.source());
    within(store.load()).await.unwrap();
    let schedule = |store: &MetadataStore| {
        let s = store.status();
        (s.refresh_interval_secs.unwrap(), s.refresh_basis.unwrap())
    };
    assert_eq!(schedule(&store), (600, "cache_ttl"));

    // max-age shorter than cache_ttl wins (same bytes: Unchanged, but rescheduled).
    server.set(|b| b.headers = vec![("cache-control", "public, max-age=120".into())]);
    assert!(matches!(
        within(store.refresh()).await.unwrap(),
        RefreshOutcome::Unchanged
    ));
    assert_eq!(schedule(&store), (120, "max-age"));

    // Expires counts from the server's Date, not from our clock.
    server.set(|b| {
        b.headers = vec![
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT".into()),
            ("expires", "Sun, 06 Nov 1994 08:54:37 GMT".into()),
        ]
    });
    within(store.refresh()).await.unwrap();
    assert_eq!(schedule(&store), (300, "expires"));

    // max-age longer than cache_ttl: cache_ttl wins.
    server.set(|b| b.headers = vec![("cache-control", "max-age=86400".into())]);
    within(store.refresh()).await.unwrap();
    assert_eq!(schedule(&store), (600, "cache_ttl"));

    // cache_ttl 0 does not spin: the floor (min_refresh, 30 s by default).
    server.serve(fed.with_cache_ttl(0));
    assert!(matches!(
        within(store.refresh()).await.unwrap(),
        RefreshOutcome::Updated(_)
    ));
    assert_eq!(schedule(&store), (30, "min_refresh"));

    // A document about to expire is refreshed ahead of its exp (a tenth of 1000 s before).
    server.serve(fed.sign(0, 1000, |_| {}));
    within(store.refresh()).await.unwrap();
    let (interval, basis) = schedule(&store);
    assert_eq!(basis, "exp");
    assert!((895..=900).contains(&interval), "{interval}");
    let status = store.status();
    assert!(status.next_refresh_in_secs.unwrap() <= 900);
}

#[tokio::test]
async fn conditional_requests_get_304_and_keep_the_snapshot() {
    let fed = Fed::new();
    let modified = "Tue, 15 Nov 1994 12:45:26 GMT";
    let mut behaviour = Behaviour::serving(fed.good());
    behaviour.etag = Some("\"v1\"".into());
    behaviour.last_modified = Some(modified.into());
    behaviour.not_modified_headers = vec![("cache-control", "max-age=90".into())];
    let server = Server::start(behaviour).await;
    let store = fed.store(server.source());
    within(store.load()).await.unwrap();

    let outcome = within(store.refresh()).await.unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::NotModified),
        "{outcome:?}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].get("if-none-match").is_none());
    assert!(requests[0].get("if-modified-since").is_none());
    assert_eq!(requests[1]["if-none-match"], "\"v1\"");
    assert_eq!(requests[1]["if-modified-since"], modified);
    assert_kept(&store, 1);
    // The 304's headers reschedule.
    let status = store.status();
    assert_eq!(status.refresh_basis, Some("max-age"));
    assert_eq!(status.refresh_interval_secs, Some(90));
    assert_eq!(status.consecutive_failures, 0);

    // A new version with a new ETag replaces it; the next request asks for that one.
    server.set(|b| {
        b.body = fed.fewer_entities();
        b.etag = Some("\"v2\"".into());
    });
    let outcome = within(store.refresh()).await.unwrap();
    let RefreshOutcome::Updated(snapshot) = outcome else {
        panic!("expected an update, got {outcome:?}");
    };
    assert_eq!(snapshot.generation(), 2);
    assert_eq!(snapshot.index().entities().len(), 2);
    assert!(matches!(
        within(store.refresh()).await.unwrap(),
        RefreshOutcome::NotModified
    ));
    assert_eq!(server.requests()[3]["if-none-match"], "\"v2\"");
}

#[tokio::test]
async fn server_down_is_recorded_and_the_loop_recovers() {
    let fed = Fed::new();
    let addr = unused_addr();
    let url = format!("http://{addr}/md.jws");
    let store = fed.store(url.parse().unwrap());
    let err = within(store.load()).await.unwrap_err();
    assert!(matches!(err, StoreError::Fetch { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(store.current().is_none());
    let status = store.status();
    assert!(!status.is_ready());
    assert_eq!(status.generation, 0);
    assert!(!status.expired);
    assert_failed(&status, 1, "cannot connect");
    assert!(within(store.refresh()).await.is_err());
    assert_eq!(store.status().consecutive_failures, 2);

    // The loop keeps retrying (backoff capped at 1 s here) until the server is up.
    let mut changes = store.subscribe();
    let refresher = store.spawn();
    let _server = Server::start_on(addr, Behaviour::serving(fed.good())).await;
    within(changes.changed()).await.unwrap();
    assert_eq!(*changes.borrow(), 1);
    assert_eq!(store.current().unwrap().source(), url);
    let status = store.status();
    assert!(status.is_ready());
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.last_error, None);
    refresher.abort();
}

#[tokio::test]
async fn http_errors_keep_the_previous_snapshot() {
    let fed = Fed::new();
    let server = Server::start(Behaviour::serving(fed.good())).await;
    let store = fed.store(server.source());
    within(store.load()).await.unwrap();

    server.set(|b| b.status = 500);
    let err = within(store.refresh()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::HttpStatus { status: 500, .. }),
        "{err}"
    );
    assert_kept(&store, 1);
    assert_failed(&store.status(), 1, "HTTP 500");
    server.set(|b| b.status = 404);
    within(store.refresh()).await.unwrap_err();
    assert_failed(&store.status(), 2, "HTTP 404");
    assert!(store.status().is_ready());

    // A 304 to a request that was not conditional is nonsense, not "unchanged".
    let fresh = fed.store(server.source());
    server.set(|b| b.status = 304);
    let err = within(fresh.load()).await.unwrap_err();
    assert!(err.to_string().contains("304"), "{err}");

    server.set(|b| b.status = 200);
    assert!(matches!(
        within(store.refresh()).await.unwrap(),
        RefreshOutcome::Unchanged
    ));
    let status = store.status();
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.last_error, None);
}

#[tokio::test]
async fn slow_servers_time_out_and_the_previous_snapshot_stays() {
    let fed = Fed::new();
    let doc = fed.good();
    let server = Server::start(Behaviour::serving(doc.clone())).await;
    let mut config = fed.config(server.source());
    config.fetch_timeout = Duration::from_millis(500);
    let store = MetadataStore::new(config).unwrap();
    within(store.load()).await.unwrap();

    // Slow to answer at all.
    server.set(|b| b.delay = Duration::from_secs(10));
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout { .. }), "{err}");
    assert_kept(&store, 1);
    assert_failed(&store.status(), 1, "took longer than");

    // Quick headers, then the body stalls: the timeout covers the body too.
    server.set(|b| {
        b.delay = Duration::ZERO;
        b.body = fed.fewer_entities();
        b.mode = Mode::Chunked {
            size: 100,
            pause: Duration::from_secs(10),
        };
    });
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout { .. }), "{err}");
    assert_kept(&store, 1);
    assert_eq!(store.status().consecutive_failures, 2);
}

#[tokio::test]
async fn truncated_and_garbage_bodies_are_refused() {
    let fed = Fed::new();
    let doc = fed.good();
    let server = Server::start(Behaviour::serving(doc.clone())).await;
    let store = fed.store(server.source());
    within(store.load()).await.unwrap();

    let truncated = doc[..doc.len() / 2].to_vec();
    let mut short_body = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        doc.len()
    )
    .into_bytes();
    short_body.extend_from_slice(&doc[..doc.len() / 2]);
    let cases: Vec<(&str, Behaviour, &str)> = vec![
        (
            "truncated document",
            Behaviour::serving(truncated),
            "refused",
        ),
        (
            "garbage",
            Behaviour::serving(b"<html>Service Unavailable</html>".to_vec()),
            "refused",
        ),
        ("empty body", Behaviour::serving(Vec::new()), "refused"),
        (
            "JSON that is not a JWS",
            Behaviour::serving(br#"{"entities": []}"#.to_vec()),
            "refused",
        ),
        (
            "connection closed before Content-Length bytes",
            Behaviour {
                mode: Mode::Raw(short_body),
                ..Behaviour::serving(Vec::new())
            },
            "reading the body failed",
        ),
    ];
    for (failures, (what, behaviour, mentions)) in (1..).zip(cases) {
        server.set(|b| *b = behaviour);
        let err = within(store.refresh()).await.unwrap_err();
        assert!(err.to_string().contains(mentions), "{what}: {err}");
        assert_kept(&store, 1);
        assert_failed(&store.status(), failures, mentions);
    }
    server.serve(doc);
    within(store.refresh()).await.unwrap();
    assert_eq!(store.status().consecutive_failures, 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_buffering_them() {
    let fed = Fed::new();
    let doc = fed.good();
    let server = Server::start(Behaviour::serving(doc.clone())).await;
    let mut config = fed.config(server.source());
    config.max_body = doc.len() as u64 + 100;
    let store = MetadataStore::new(config).unwrap();
    within(store.load()).await.unwrap();

    let big = vec![b'x'; 256 * 1024];
    let mut close_delimited = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    close_delimited.extend_from_slice(&big);
    let mut lying = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n".to_vec();
    lying.extend_from_slice(&big);

    // Announced too large: refused before reading the body.
    server.serve(big.clone());
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("Content-Length 262144"), "{err}");
    assert_kept(&store, 1);

    // No Content-Length (chunked): refused while streaming.
    server.set(|b| {
        b.mode = Mode::Chunked {
            size: 8192,
            pause: Duration::ZERO,
        }
    });
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(!err.to_string().contains("Content-Length"), "{err}");
    assert_kept(&store, 1);

    // Delimited by closing the connection: refused while streaming.
    server.set(|b| b.mode = Mode::Raw(close_delimited));
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert_kept(&store, 1);

    // A Content-Length that lies low: only that many bytes are read, and they are refused.
    server.set(|b| b.mode = Mode::Raw(lying));
    let err = within(store.refresh()).await.unwrap_err();
    assert!(!matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert_kept(&store, 1);
    assert_failed(&store.status(), 4, "");
}

#[tokio::test]
async fn expired_documents_are_refused_and_an_expiring_one_fails_closed() {
    let fed = Fed::new();
    // Current for only two seconds.
    let short = fed.sign(0, 2, |_| {});
    let server = Server::start(Behaviour::serving(short.clone())).await;
    let store = fed.store(server.source());
    within(store.load()).await.unwrap();
    let exp = store.status().expires_at.unwrap();

    // Validly signed but already expired: refused, the current one stays.
    server.serve(fed.expired());
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::Verify { .. }), "{err}");
    assert!(err.to_string().contains("expired at"), "{err}");
    assert!(err.is_bad_content());
    assert_kept(&store, 1);

    // ... until its own exp: then nothing is current (fail closed), loudly.
    within(async {
        while unix_now() <= exp || store.current().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(store.cell().current().is_none());
    assert!(store.cell().newest().is_some());
    let status = store.status();
    assert!(status.expired, "{status:#?}");
    assert!(!status.is_ready());
    assert!(status.seconds_to_expiry.unwrap() <= 0);
    let error = status.last_error.unwrap();
    assert!(
        error.contains("expired at") && error.contains("fail closed"),
        "{error}"
    );

    // The source still serving the expired document is a failure, not "unchanged".
    server.serve(short);
    let err = within(store.refresh()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Expired { .. }) || matches!(err, StoreError::Verify { .. }),
        "{err}"
    );
    assert!(store.status().expired);

    // Recovery: the next good document swaps in.
    server.serve(fed.good());
    let outcome = within(store.refresh()).await.unwrap();
    assert!(matches!(outcome, RefreshOutcome::Updated(_)), "{outcome:?}");
    let status = store.status();
    assert!(status.is_ready() && !status.expired);
    assert_eq!(status.last_error, None);
    assert_eq!(store.current().unwrap().generation(), 2);
}

#[tokio::test]
async fn rollback_to_an_older_document_is_refused() {
    let fed = Fed::new();
    let server = Server::start(Behaviour::serving(fed.good())).await;
    let store = fed.store(server.source());
    within(store.load()).await.unwrap();
    let current_iat = store.status().issued_at.unwrap();

    // Valid signature, valid times, but issued before the current document.
    server.serve(fed.sign(-100, 86_400, |p| {
        if let Some(Value::Array(entities)) = p.get_mut("entities") {
            entities.pop();
        }
    }));
    let err = within(store.refresh()).await.unwrap_err();
    let StoreError::Rollback {
        iat,
        current_iat: was,
        ..
    } = err
    else {
        panic!("expected a rollback error, got {err}");
    };
    assert_eq!(was, current_iat);
    assert!(iat < current_iat);
    assert_kept(&store, 1);
    assert_eq!(store.current().unwrap().index().entities().len(), 3);
    assert_failed(&store.status(), 1, "rollback");
}

#[tokio::test]
async fn wrong_key_is_refused_and_new_content_is_announced() {
    let fed = Fed::new();
    let server = Server::start(Behaviour::serving(fed.good())).await;
    let store = fed.store(server.source());
    let mut changes = store.subscribe();
    within(store.load()).await.unwrap();
    assert_eq!(*changes.borrow_and_update(), 1);

    server.serve(fed.foreign());
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::Verify { .. }), "{err}");
    assert!(
        err.to_string().contains(&server.url()),
        "names the origin: {err}"
    );
    assert_kept(&store, 1);
    assert!(
        !changes.has_changed().unwrap(),
        "a refused document changes nothing"
    );

    server.serve(fed.fewer_entities());
    let outcome = within(store.refresh()).await.unwrap();
    assert!(matches!(outcome, RefreshOutcome::Updated(_)), "{outcome:?}");
    within(changes.changed()).await.unwrap();
    assert_eq!(*changes.borrow(), 2);
    assert_eq!(store.current().unwrap().index().entities().len(), 2);
    assert_eq!(store.status().entities, 2);
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_cache_file_holds_the_signed_bytes_written_atomically() {
    let fed = Fed::new();
    let cache_dir = fed.path("cache");
    std::fs::create_dir(&cache_dir).unwrap();
    let cache = cache_dir.join("metadata.jws");
    let doc = fed.good();
    let server = Server::start(Behaviour::serving(doc.clone())).await;
    let mut config = fed.config(server.source());
    config.cache_file = Some(cache.clone());
    let store = MetadataStore::new(config).unwrap();
    within(store.load()).await.unwrap();

    assert_eq!(
        std::fs::read(&cache).unwrap(),
        doc,
        "the exact signed bytes"
    );
    #[cfg(unix)]
    assert_eq!(mode_of(&cache), 0o600);
    let names: Vec<_> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary files left behind: {names:?}");

    // Refused content never reaches the cache; new content replaces it.
    server.serve(fed.foreign());
    within(store.refresh()).await.unwrap_err();
    assert_eq!(std::fs::read(&cache).unwrap(), doc);
    let newer = fed.fewer_entities();
    server.serve(newer.clone());
    within(store.refresh()).await.unwrap();
    assert_eq!(std::fs::read(&cache).unwrap(), newer);
    #[cfg(unix)]
    assert_eq!(mode_of(&cache), 0o600);
    assert_eq!(std::fs::read_dir(&cache_dir).unwrap().count(), 1);
}

#[tokio::test]
async fn a_valid_cache_is_used_on_start_without_the_server() {
    let fed = Fed::new();
    let cache = fed.path("metadata.cache");
    std::fs::write(&cache, fed.good()).unwrap();
    let addr = unused_addr();
    let mut config = fed.config(format!("http://{addr}/md.jws").parse().unwrap());
    config.cache_file = Some(cache.clone());
    let store = MetadataStore::new(config).unwrap();

    let snapshot = within(store.load()).await.unwrap();
    assert_eq!(snapshot.source(), format!("cache:{}", cache.display()));
    let status = store.status();
    assert!(status.is_ready());
    assert_eq!(
        status.snapshot_source,
        Some(format!("cache:{}", cache.display()))
    );
    assert_eq!(
        status.refresh_basis,
        Some("cache"),
        "the source is asked right away"
    );
    assert_eq!(status.next_refresh_in_secs, Some(0));
    assert_eq!(status.last_attempt, None, "no network yet");

    // The source is down: the cached snapshot stays in use.
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::Fetch { .. }), "{err}");
    assert_kept(&store, 1);

    // The source comes up with the same document: unchanged, no new generation.
    let server = Server::start_on(addr, Behaviour::serving(std::fs::read(&cache).unwrap())).await;
    assert!(matches!(
        within(store.refresh()).await.unwrap(),
        RefreshOutcome::Unchanged
    ));
    assert_kept(&store, 1);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn corrupt_foreign_or_expired_caches_are_ignored() {
    let fed = Fed::new();
    let doc = fed.good();
    let server = Server::start(Behaviour::serving(doc.clone())).await;
    let good = fed.good();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\x01 not metadata".to_vec()),
        ("truncated", good[..good.len() / 3].to_vec()),
        ("another federation's key", fed.foreign()),
        ("expired", fed.expired()),
        ("empty", Vec::new()),
    ];
    for (what, contents) in cases {
        let cache = fed.path("metadata.cache");
        std::fs::write(&cache, &contents).unwrap();
        let mut config = fed.config(server.source());
        config.cache_file = Some(cache.clone());
        let store = MetadataStore::new(config).unwrap();
        let snapshot = within(store.load()).await.unwrap();
        assert_eq!(
            snapshot.source(),
            server.url(),
            "{what} cache must be ignored"
        );
        assert_eq!(
            std::fs::read(&cache).unwrap(),
            doc,
            "{what} cache is replaced"
        );
    }
    // A missing cache file is simply not there yet.
    let mut config = fed.config(server.source());
    config.cache_file = Some(fed.path("absent.cache"));
    let store = MetadataStore::new(config).unwrap();
    assert_eq!(within(store.load()).await.unwrap().source(), server.url());
}

#[tokio::test]
async fn file_sources_are_reread_and_bytes_load_once() {
    let fed = Fed::new();
    let file = fed.path("metadata.jws");
    std::fs::write(&file, fed.good()).unwrap();
    let store = fed.store(MetadataSource::File(file.clone()));
    let mut changes = store.subscribe();
    let snapshot = within(store.load()).await.unwrap();
    assert_eq!(snapshot.source(), file.display().to_string());
    assert!(matches!(
        within(store.refresh()).await.unwrap(),
        RefreshOutcome::Unchanged
    ));
    assert_eq!(*changes.borrow_and_update(), 1);

    std::fs::write(&file, fed.fewer_entities()).unwrap();
    assert!(matches!(
        within(store.refresh()).await.unwrap(),
        RefreshOutcome::Updated(_)
    ));
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), 2);
    assert_eq!(store.status().entities, 2);

    std::fs::write(&file, b"garbage").unwrap();
    assert!(within(store.refresh()).await.unwrap_err().is_bad_content());
    assert_kept(&store, 2);
    std::fs::remove_file(&file).unwrap();
    let err = within(store.refresh()).await.unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert!(err.to_string().contains("metadata.jws"), "{err}");
    assert_kept(&store, 2);

    let bytes = fed.store(MetadataSource::Bytes(fed.good()));
    assert_eq!(within(bytes.load()).await.unwrap().source(), "bytes");
    assert!(matches!(
        within(bytes.refresh()).await.unwrap(),
        RefreshOutcome::Unchanged
    ));
    assert_eq!(bytes.generation(), 1);
}

#[tokio::test]
async fn https_sources_behind_a_private_ca() {
    let fed = Fed::new();
    let (acceptor, root) = private_ca_tls(&fed);
    let server = Server::start_with_tls(
        "127.0.0.1:0".parse().unwrap(),
        Behaviour::serving(fed.good()),
        Some(acceptor),
    )
    .await;
    let url = format!("https://localhost:{}/md.jws", server.addr.port());

    let mut config = fed.config(url.parse().unwrap());
    config.extra_root_certificates = vec![root];
    let store = MetadataStore::new(config).unwrap();
    let snapshot = within(store.load()).await.unwrap();
    assert_eq!(snapshot.source(), url);

    // Without the private CA the server is not trusted.
    let untrusted = fed.store(url.parse().unwrap());
    let err = within(untrusted.load()).await.unwrap_err();
    assert!(matches!(err, StoreError::Fetch { .. }), "{err}");
}

/// A TLS acceptor with the test federation's supplier server certificate (for `localhost`),
/// and the private CA that issued it.
fn private_ca_tls(
    fed: &Fed,
) -> (
    tokio_rustls::TlsAcceptor,
    rustls_pki_types::CertificateDer<'static>,
) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let party = fed.fed.party("supplier-server").unwrap();
    let ca = fed.fed.party("supplier-ca").unwrap();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(party.chain.as_ref().unwrap())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(&party.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        CertificateDer::from_pem_file(&ca.cert).unwrap(),
    )
}

fn redirect_to(location: &str) -> Behaviour {
    Behaviour {
        status: 302,
        headers: vec![("location", location.to_owned())],
        ..Behaviour::serving(Vec::new())
    }
}

#[tokio::test]
async fn redirects_are_followed_to_https_only_a_few_times_and_errors_name_where_they_led() {
    let fed = Fed::new();
    let (acceptor, root) = private_ca_tls(&fed);
    let any = || "127.0.0.1:0".parse().unwrap();
    let moved = Server::start_with_tls(
        any(),
        Behaviour::serving(fed.good()),
        Some(acceptor.clone()),
    )
    .await;
    let moved_url = format!("https://localhost:{}/md.jws", moved.addr.port());
    let front =
        Server::start_with_tls(any(), redirect_to(&moved_url), Some(acceptor.clone())).await;
    let front_url = format!("https://localhost:{}/md.jws", front.addr.port());
    let load = |url: &str| {
        let mut config = fed.config(url.parse().unwrap());
        config.extra_root_certificates = vec![root.clone()];
        let store = MetadataStore::new(config).unwrap();
        async move { within(store.load()).await }
    };

    // A moved document is followed (https → https).
    load(&front_url).await.unwrap();

    // When the target fails, the error names it, not only the configured URL.
    moved.set(|b| b.status = 503);
    let err = load(&front_url).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{front_url} (redirected to {moved_url}) answered HTTP 503"
        )),
        "{err}"
    );
    let gone = format!("https://localhost:{}/md.jws", unused_addr().port());
    front.set(|b| *b = redirect_to(&gone));
    let err = load(&front_url).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("(redirected to {gone})")),
        "{front_url} {gone} {err}"
    );
    assert!(err.contains("cannot connect"), "{err}");

    // Never to plain http.
    let plain = Server::start(Behaviour::serving(fed.good())).await;
    front.set(|b| *b = redirect_to(&plain.url()));
    let err = load(&front_url).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("the redirect to {} was not followed", plain.url())),
        "{err}"
    );
    assert!(plain.requests().is_empty(), "the http target was contacted");
    let http_front = Server::start(redirect_to(&plain.url())).await;
    let err = load(&http_front.url()).await.unwrap_err().to_string();
    assert!(err.contains("https URLs only"), "{err}");

    // At most a few: a loop stops.
    front.set(|b| *b = redirect_to(&front_url));
    let err = load(&front_url).await.unwrap_err().to_string();
    assert!(err.contains("more than 3 redirects"), "{err}");
    assert!(
        front.requests().len() <= 4 + 4 + 1 + 1,
        "{}",
        front.requests().len()
    );
}

/// Log lines written by `tracing` on one test's thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes into this thread's capture, if the test asked for one (else discards).
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|slot| {
            if let Some(captured) = &*slot.borrow() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One global subscriber for the whole test binary, installed before any test runs store
/// code ([`Fed::new`] calls this). A per-test scoped subscriber would race with callsite
/// registration on other test threads and could miss events.
fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_writer(|| ThreadWriter)
            .with_ansi(false)
            .try_init();
    });
}

/// Captures what the store logs on this thread (the tests' runtimes are single-threaded,
/// so the refresh loop logs here too).
fn capture_logs() -> Captured {
    init_logging();
    let captured = Captured::default();
    CAPTURE.with(|slot| *slot.borrow_mut() = Some(captured.clone()));
    captured
}

#[tokio::test]
async fn the_loop_logs_the_expiry_once_when_it_happens() {
    let captured = capture_logs();
    let fed = Fed::new();
    let server = Server::start(Behaviour::serving(fed.sign(0, 2, |_| {}))).await;
    let store = fed.store(server.source());
    within(store.load()).await.unwrap();
    assert!(
        captured.text().contains("metadata updated"),
        "{}",
        captured.text()
    );
    let refresher = store.spawn();
    // Nothing asks for the status meanwhile: the loop itself notices the expiry.
    within(async {
        while !captured.text().contains("EXPIRED") {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(store.current().is_none());
    assert!(store.status().expired);
    assert!(store.status().expired);
    let logs = captured.text();
    assert_eq!(logs.matches("EXPIRED").count(), 1, "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("ERROR") && l.contains("EXPIRED")),
        "{logs}"
    );
    refresher.abort();
}
