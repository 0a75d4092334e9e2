//! The feed against a real HTTP server on loopback: conditional requests, the last good
//! document kept through failures and bad documents, the cache file, the size limit.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use skolfed_sso::fetch::{Feed, FetchConfig, FetchError, RefreshOutcome, Source};
use skolfed_sso::links::{ParsedLinks, parse};

const EXAMPLE: &str = include_str!("data/skolfederation-sso-links-example.json");

#[derive(Default)]
struct Served {
    status: u16,
    body: String,
    requests: usize,
    conditional: usize,
}

async fn serve(state: Arc<Mutex<Served>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let mut served = state.lock().unwrap();
                            served.requests += 1;
                            let etag = format!("\"{}\"", served.body.len());
                            let matches = request
                                .headers()
                                .get("if-none-match")
                                .is_some_and(|v| v.to_str().unwrap() == etag);
                            if request.headers().contains_key("if-none-match") {
                                served.conditional += 1;
                            }
                            let response = if matches && served.status == 200 {
                                Response::builder()
                                    .status(304)
                                    .body(Full::new(Bytes::new()))
                            } else {
                                Response::builder()
                                    .status(StatusCode::from_u16(served.status).unwrap())
                                    .header("etag", etag)
                                    .header("cache-control", "max-age=600")
                                    .body(Full::new(Bytes::from(served.body.clone())))
                            };
                            Ok::<_, Infallible>(response.unwrap())
                        }
                    });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    format!("http://{address}/sso-links.json")
}

fn strict(bytes: &[u8]) -> Result<ParsedLinks, String> {
    let parsed = parse(bytes);
    if parsed.links.organizations.is_empty() {
        return Err(parsed
            .problems
            .first()
            .map_or("no organizations".to_owned(), ToString::to_string));
    }
    Ok(parsed)
}

#[tokio::test]
async fn conditional_requests_last_good_and_cache() {
    let state = Arc::new(Mutex::new(Served {
        status: 200,
        body: EXAMPLE.to_owned(),
        ..Served::default()
    }));
    let url = serve(state.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("links.json");
    let mut config = FetchConfig::new(url.parse().unwrap());
    config.cache_file = Some(cache.clone());
    let feed = Feed::new(config.clone(), strict).unwrap();
    feed.load().await.unwrap();
    assert_eq!(feed.current().unwrap().links.organizations.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&cache).unwrap(),
        EXAMPLE,
        "the cache holds the bytes"
    );
    assert_eq!(
        feed.next_delay().as_secs(),
        600,
        "Cache-Control: max-age is followed"
    );

    // Unchanged: the request is conditional and answered 304.
    assert_eq!(feed.refresh().await.unwrap(), RefreshOutcome::Unchanged);
    assert_eq!(state.lock().unwrap().conditional, 1);

    // The server fails: the last good document stays, the error is recorded.
    state.lock().unwrap().status = 503;
    let err = feed.refresh().await.unwrap_err();
    assert!(
        matches!(err, FetchError::HttpStatus { status: 503, .. }),
        "{err}"
    );
    assert!(feed.current().is_some());
    let status = feed.status();
    assert_eq!(status.consecutive_failures, 1);
    assert!(status.last_error.unwrap().contains("503"));
    assert!(feed.next_delay().as_secs() <= 2, "backoff starts small");

    // A broken document: refused, the last good one stays.
    {
        let mut served = state.lock().unwrap();
        served.status = 200;
        served.body = "{\"not\": \"a list\"}".to_owned();
    }
    let err = feed.refresh().await.unwrap_err();
    assert!(matches!(err, FetchError::Document { .. }), "{err}");
    assert_eq!(feed.current().unwrap().links.organizations.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&cache).unwrap(),
        EXAMPLE,
        "a bad document is not cached"
    );

    // A restart with the server down starts from the cache.
    state.lock().unwrap().status = 500;
    let restarted = Feed::new(config.clone(), strict).unwrap();
    restarted.load().await.unwrap();
    assert_eq!(restarted.current().unwrap().links.organizations.len(), 1);

    // Without a cache and with the server down, loading fails.
    let mut no_cache = config.clone();
    no_cache.cache_file = None;
    let cold = Feed::new(no_cache, strict).unwrap();
    assert!(cold.load().await.is_err());
    assert!(cold.current().is_none());

    // A body over the limit is refused.
    {
        let mut served = state.lock().unwrap();
        served.status = 200;
        served.body = EXAMPLE.repeat(10);
    }
    let mut small = config;
    small.cache_file = None;
    small.max_body = 1000;
    let limited = Feed::new(small, strict).unwrap();
    assert!(matches!(
        limited.refresh().await,
        Err(FetchError::TooLarge { .. })
    ));
}

#[test]
fn sources() {
    assert!(matches!(
        "https://fed.example/links.json".parse(),
        Ok(Source::Url(_))
    ));
    assert!(matches!(
        "http://127.0.0.1:8080/x".parse(),
        Ok(Source::Url(_))
    ));
    assert!(matches!("/etc/links.json".parse(), Ok(Source::File(_))));
    assert!(matches!(
        "http://fed.example/links.json".parse::<Source>(),
        Err(FetchError::InvalidSource { .. })
    ));
}
