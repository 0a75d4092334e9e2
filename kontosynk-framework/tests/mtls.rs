//! The server over real mutual-TLS handshakes on loopback, against a test federation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fedtls::snapshot::{SnapshotCell, SnapshotSource};
use fedtls::tls::{
    PeerIdentity, PinnedServerVerifier, client_config, load_cert_chain, load_private_key,
};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kontosynk_framework::response::{self, Body};
use kontosynk_framework::{
    ClientCertificate, Limits, Policy, RateLimit, RequestBody, ServerBuilder, TrustedProxy,
};
use kontosynk_testbed::federation::Fed;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// The one test-federation set-up of the workspace (`tests/src/federation.rs`).
fn federation() -> Fed {
    Fed::new()
}

/// Answers with the authenticated peer, or echoes the body length for POSTs.
async fn whoami(request: Request<RequestBody>) -> http::Response<Body> {
    let peer = request.extensions().get::<PeerIdentity>().cloned();
    let certificate_pin = request
        .extensions()
        .get::<ClientCertificate>()
        .and_then(|c| fedtls::Pin::of_certificate(&c.0).ok());
    let method = request.method().clone();
    let body = request.into_body().collect().await;
    match (method, body) {
        (http::Method::POST, Ok(body)) => response::json(
            StatusCode::OK,
            &serde_json::json!({"received": body.to_bytes().len()}),
        ),
        (http::Method::POST, Err(_)) => response::json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "over the limit",
        ),
        _ => {
            let mut body = serde_json::to_value(&peer).unwrap();
            if let (Some(pin), Some(object)) = (certificate_pin, body.as_object_mut()) {
                object.insert("certificate_pin".into(), pin.to_string().into());
            }
            response::json(StatusCode::OK, &body)
        }
    }
}

struct Running {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

async fn start(builder: ServerBuilder) -> Running {
    let server = builder.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr().unwrap();
    let admin = server.admin_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(whoami, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        admin,
        stop: Some(stop),
        task,
    }
}

/// An HTTP/1.1 connection over mutual TLS, kept alive across requests.
async fn connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

/// TLS 1.3 reports a refused client certificate only after the handshake; the first request
/// on such a connection fails. Both count as "refused".
async fn refused(addr: SocketAddr, connector: &TlsConnector) -> bool {
    match connect(addr, connector).await {
        Err(_) => true,
        Ok(mut sender) => get(&mut sender, "/").await.is_err(),
    }
}

async fn get(
    sender: &mut SendRequest<Full<Bytes>>,
    path: &str,
) -> Result<(StatusCode, Value), String> {
    send(
        sender,
        Request::get(path)
            .header("host", "localhost")
            .body(Full::default())
            .unwrap(),
    )
    .await
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Value), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn listed_clients_are_identified_and_unlisted_refused() {
    let fed = federation();
    let server =
        start(ServerBuilder::new(fed.fresh_cell()).tls(fed.resolver("school-server"))).await;

    let mut school = connect(
        server.addr,
        &fed.connector(Some("school-client"), "school-server"),
    )
    .await
    .unwrap();
    let (status, body) = get(&mut school, "/").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entity_id"], "https://school.test.example");
    assert_eq!(body["organization_id"], "SE2120009999");
    assert_eq!(body["tags"], serde_json::json!(["egilv1"]));
    assert_eq!(body["scopes"][0], "exempla.test.example");
    assert_eq!(body["pin"], fed.party("school-client").pin.to_string());
    assert_eq!(
        body["certificate_pin"], body["pin"],
        "the handler sees the client certificate"
    );

    // A CA-issued client presenting its chain.
    let mut supplier = connect(
        server.addr,
        &fed.connector(Some("supplier-client"), "school-server"),
    )
    .await
    .unwrap();
    let (status, body) = get(&mut supplier, "/").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entity_id"], "https://supplier.test.example/moa");

    assert!(
        refused(
            server.addr,
            &fed.connector(Some("unlisted-client"), "school-server")
        )
        .await
    );
    assert!(
        refused(server.addr, &fed.connector(None, "school-server")).await,
        "no client certificate"
    );
    server.stop().await;
}

#[tokio::test]
async fn client_refuses_a_server_whose_pin_was_not_selected() {
    let fed = federation();
    let server =
        start(ServerBuilder::new(fed.fresh_cell()).tls(fed.resolver("school-server"))).await;
    let wrong = fed.connector(Some("school-client"), "supplier-server");
    let Err(err) = connect(server.addr, &wrong).await else {
        panic!("the client must refuse a server whose pin was not selected");
    };
    assert!(err.contains("handshake"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn a_pin_removed_by_a_swap_is_refused_on_open_connections_and_new_handshakes() {
    let fed = federation();
    let cell = fed.fresh_cell();
    let server = start(
        ServerBuilder::new(Arc::clone(&cell) as Arc<dyn SnapshotSource>)
            .tls(fed.resolver("school-server")),
    )
    .await;
    let connector = fed.connector(Some("supplier-client"), "school-server");
    let mut open = connect(server.addr, &connector).await.unwrap();
    assert_eq!(get(&mut open, "/").await.unwrap().0, StatusCode::OK);

    // The supplier's client disappears from the metadata.
    let without_supplier = fed.signed(
        |payload| {
            let entities = payload["entities"].as_array_mut().unwrap();
            entities.retain(|e| e["entity_id"] != "https://supplier.test.example/moa");
        },
        3600,
    );
    cell.store(fed.snapshot_of(&without_supplier));

    let (status, body) = get(&mut open, "/").await.unwrap();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "open keep-alive connection re-checked: {body}"
    );
    assert_eq!(body["error"], "client_not_in_metadata");
    assert!(
        refused(server.addr, &connector).await,
        "new handshakes fail"
    );

    // Others are unaffected.
    let mut school = connect(
        server.addr,
        &fed.connector(Some("school-client"), "school-server"),
    )
    .await
    .unwrap();
    assert_eq!(get(&mut school, "/").await.unwrap().0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn the_handshake_identity_serves_until_a_swap_then_is_resolved_again() {
    let fed = federation();
    let cell = fed.fresh_cell();
    let server = start(
        ServerBuilder::new(Arc::clone(&cell) as Arc<dyn SnapshotSource>)
            .tls(fed.resolver("school-server")),
    )
    .await;
    let connector = fed.connector(Some("school-client"), "school-server");
    let mut open = connect(server.addr, &connector).await.unwrap();
    let (status, body) = get(&mut open, "/").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["generation"], cell.generation());
    assert_eq!(body["organization"], "Exempla kommun");

    // The school's legal name changes; its client stays.
    let renamed = fed.signed(
        |payload| {
            for entity in payload["entities"].as_array_mut().unwrap() {
                if entity["entity_id"] == "https://school.test.example" {
                    entity["organization"] = "Exempla kommun (renamed)".into();
                }
            }
        },
        3600,
    );
    cell.store(fed.snapshot_of(&renamed));
    for _ in 0..2 {
        let (status, body) = get(&mut open, "/").await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["generation"], cell.generation());
        assert_eq!(body["organization"], "Exempla kommun (renamed)");
    }
    server.stop().await;
}

#[tokio::test]
async fn expired_metadata_fails_closed_and_recovers() {
    let fed = federation();
    let short = fed.signed(|_| {}, 2);
    let cell = Arc::new(SnapshotCell::with(fed.snapshot_of(&short)));
    let server = start(
        ServerBuilder::new(Arc::clone(&cell) as Arc<dyn SnapshotSource>)
            .tls(fed.resolver("school-server")),
    )
    .await;
    let connector = fed.connector(Some("school-client"), "school-server");
    let mut open = connect(server.addr, &connector).await.unwrap();
    assert_eq!(get(&mut open, "/").await.unwrap().0, StatusCode::OK);

    // Wait until the 2-second document has expired.
    while cell.current().is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = get(&mut open, "/").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "metadata_unavailable");
    assert!(
        refused(server.addr, &connector).await,
        "no handshake without valid metadata"
    );

    cell.store(fed.snapshot_of(&std::fs::read(&fed.fed.metadata_jws).unwrap()));
    let mut again = connect(server.addr, &connector).await.unwrap();
    assert_eq!(get(&mut again, "/").await.unwrap().0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn policy_rate_limit_and_body_limit() {
    let fed = federation();
    let builder = ServerBuilder::new(fed.fresh_cell())
        .tls(fed.resolver("school-server"))
        .policy(Policy {
            organization_ids: vec!["SE2120009999".parse().unwrap()],
            ..Policy::default()
        })
        .rate_limit(RateLimit {
            per_second: 0.5,
            burst: 2,
        })
        .limits(Limits {
            max_body: 1024,
            ..Limits::default()
        });
    let server = start(builder).await;

    let mut supplier = connect(
        server.addr,
        &fed.connector(Some("supplier-client"), "school-server"),
    )
    .await
    .unwrap();
    let (status, body) = get(&mut supplier, "/").await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "policy_denied");
    assert_eq!(body["rule"], "organization_ids");

    let mut school = connect(
        server.addr,
        &fed.connector(Some("school-client"), "school-server"),
    )
    .await
    .unwrap();
    let big = Request::post("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(vec![b'x'; 4096])))
        .unwrap();
    let (status, body) = send(&mut school, big).await.unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(get(&mut school, "/").await.unwrap().0, StatusCode::OK);
    // The burst of 2 is used up (the POST counted); the next is limited.
    school.ready().await.unwrap();
    let request = Request::get("/")
        .header("host", "localhost")
        .body(Full::default())
        .unwrap();
    let response = school.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    server.stop().await;
}

#[tokio::test]
async fn admin_endpoints_report_readiness_and_metrics() {
    let fed = federation();
    let cell = Arc::new(SnapshotCell::new());
    let builder = ServerBuilder::new(Arc::clone(&cell) as Arc<dyn SnapshotSource>)
        .tls(fed.resolver("school-server"))
        .admin(
            "127.0.0.1:0".parse().unwrap(),
            Some(serde_json::json!({"entity_id": "https://me"})),
        );
    let server = start(builder).await;
    let admin = format!("http://{}", server.admin.unwrap());
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{admin}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let not_ready = http.get(format!("{admin}/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503, "no metadata yet");

    cell.store(fed.snapshot_of(&std::fs::read(&fed.fed.metadata_jws).unwrap()));
    assert_eq!(
        http.get(format!("{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut school = connect(
        server.addr,
        &fed.connector(Some("school-client"), "school-server"),
    )
    .await
    .unwrap();
    get(&mut school, "/").await.unwrap();
    assert!(
        refused(
            server.addr,
            &fed.connector(Some("unlisted-client"), "school-server")
        )
        .await
    );

    let metrics = http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("kontosynk_tls_handshakes_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("outcome=\"unknown_client\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kontosynk_http_requests_total{status=\"200\",entity_id=\"https://school.test.example\"} 1"), "{metrics}");
    let own: Value = http
        .get(format!("{admin}/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["entity_id"], "https://me");
    server.stop().await;
}

#[tokio::test]
async fn behind_a_terminator_only_trusted_addresses_may_forward_client_cert() {
    let fed = federation();
    let pem = std::fs::read_to_string(&fed.party("school-client").cert).unwrap();
    let header = pem.replace('\n', " ");

    let trusted: TrustedProxy = "127.0.0.0/8".parse().unwrap();
    let server = start(ServerBuilder::new(fed.fresh_cell()).behind_terminator(vec![trusted])).await;
    let url = format!("http://{}/", server.addr);
    let http = reqwest::Client::new();
    let body: Value = http
        .get(&url)
        .header("client-cert", &header)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["entity_id"], "https://school.test.example");
    assert_eq!(
        body["certificate_pin"],
        fed.party("school-client").pin.to_string()
    );
    let unlisted = std::fs::read_to_string(&fed.party("unlisted-client").cert).unwrap();
    let response = http
        .get(&url)
        .header("client-cert", unlisted.replace('\n', " "))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        401,
        "no header"
    );
    server.stop().await;

    // The same request from an address that is not a trusted terminator is refused, and the
    // spoofed header never reaches the handler.
    let elsewhere: TrustedProxy = "192.0.2.0/24".parse().unwrap();
    let server =
        start(ServerBuilder::new(fed.fresh_cell()).behind_terminator(vec![elsewhere])).await;
    let response = http
        .get(format!("http://{}/", server.addr))
        .header("client-cert", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "untrusted_proxy");
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let fed = federation();
    let server = ServerBuilder::new(fed.fresh_cell())
        .tls(fed.resolver("school-server"))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let slow = |_request: Request<RequestBody>| async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        response::json(StatusCode::OK, &serde_json::json!({"slow": true}))
    };
    let task = tokio::spawn(server.serve(slow, async {
        let _ = stopped.await;
    }));
    let mut client = connect(addr, &fed.connector(Some("school-client"), "school-server"))
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move { get(&mut client, "/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let (status, body) = in_flight.await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["slow"], true);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[test]
fn trusted_proxy_ranges() {
    let net: TrustedProxy = "10.1.0.0/16".parse().unwrap();
    assert!(net.contains("10.1.2.3".parse().unwrap()));
    assert!(!net.contains("10.2.0.1".parse().unwrap()));
    assert!(
        net.contains("::ffff:10.1.9.9".parse().unwrap()),
        "IPv4-mapped IPv6"
    );
    let v6: TrustedProxy = "fd00::/8".parse().unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
    assert!(!v6.contains("10.1.2.3".parse().unwrap()));
    assert!("10.0.0.0/33".parse::<TrustedProxy>().is_err());
    assert!("not-an-ip".parse::<TrustedProxy>().is_err());
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let fed = federation();
    let server =
        start(ServerBuilder::new(fed.fresh_cell()).tls(fed.resolver("school-server"))).await;
    let party = fed.party("school-client");
    let verifier = PinnedServerVerifier::new([fed.party("school-server").pin]).into_arc();
    let identity = (
        load_cert_chain(&party.cert).unwrap(),
        load_private_key(&party.key).unwrap(),
    );
    let config = client_config(verifier, Some(identity), &[b"h2"]).unwrap();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    // Two concurrent streams on one connection.
    let request = || {
        Request::get("https://localhost/")
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    let (a, b) = tokio::join!(
        sender.send_request(request()),
        sender.clone().send_request(request())
    );
    for response in [a.unwrap(), b.unwrap()] {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), http::Version::HTTP_2);
        let body: Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(body["entity_id"], "https://school.test.example");
    }
    server.stop().await;
}

#[tokio::test]
async fn idle_and_silent_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let fed = federation();
    let limits = Limits {
        idle_timeout: Duration::from_millis(300),
        handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(
        ServerBuilder::new(fed.fresh_cell())
            .tls(fed.resolver("school-server"))
            .limits(limits),
    )
    .await;

    // A client that connects and never starts TLS is dropped after the handshake timeout.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed by the server: {read:?}"
    );

    // An authenticated keep-alive connection with no requests is closed after the idle timeout.
    let mut sender = connect(
        server.addr,
        &fed.connector(Some("school-client"), "school-server"),
    )
    .await
    .unwrap();
    assert_eq!(get(&mut sender, "/").await.unwrap().0, StatusCode::OK);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while !sender.is_closed() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection must be closed");
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed() {
    let fed = federation();
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let server = start(
        ServerBuilder::new(fed.fresh_cell())
            .tls(fed.resolver("school-server"))
            .limits(limits),
    )
    .await;
    let connector = fed.connector(Some("school-client"), "school-server");
    let mut first = connect(server.addr, &connector).await.unwrap();
    let mut second = connect(server.addr, &connector).await.unwrap();
    assert_eq!(get(&mut first, "/").await.unwrap().0, StatusCode::OK);
    assert_eq!(get(&mut second, "/").await.unwrap().0, StatusCode::OK);
    assert!(
        refused(server.addr, &connector).await,
        "a third connection is closed at once"
    );
    drop(first);
    // Once a slot frees up, new connections are served again.
    let served = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(mut third) = connect(server.addr, &connector).await
                && get(&mut third, "/").await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(served.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn worker_threads_keep_each_connection_on_one_thread_and_drain_on_shutdown() {
    let fed = federation();
    let server = ServerBuilder::new(fed.fresh_cell())
        .tls(fed.resolver("school-server"))
        .worker_threads(2)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handler = |request: Request<RequestBody>| async move {
        if request.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let peer = request.extensions().get::<PeerIdentity>().cloned();
        response::json(
            StatusCode::OK,
            &serde_json::json!({
                "thread": std::thread::current().name(),
                "entity_id": peer.map(|p| p.entity_id),
            }),
        )
    };
    let task = tokio::spawn(server.serve(handler, async {
        let _ = stopped.await;
    }));
    let connector = fed.connector(Some("school-client"), "school-server");
    let mut clients = Vec::new();
    let mut per_thread = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..4 {
        let mut client = connect(addr, &connector).await.unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let (status, body) = get(&mut client, "/").await.unwrap();
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["entity_id"], "https://school.test.example");
            seen.insert(body["thread"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 1, "one connection, one thread: {seen:?}");
        *per_thread.entry(seen.pop_first().unwrap()).or_default() += 1;
        clients.push(client);
    }
    // Open connections go to the least-loaded thread: two each.
    assert_eq!(
        per_thread.into_iter().collect::<Vec<_>>(),
        [
            ("kontosynk-conn-0".to_owned(), 2),
            ("kontosynk-conn-1".to_owned(), 2)
        ]
    );
    let mut slow_client = clients.pop().unwrap();
    let in_flight = tokio::spawn(async move { get(&mut slow_client, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let (status, _) = in_flight.await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK, "the in-flight request finished");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server stops once drained")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

/// Limits for the connection-timeout tests: a short head timeout and an idle timeout far
/// beyond every wait in them, so that only the head timeout can explain a close.
fn short_head_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(30),
        ..Limits::default()
    }
}

/// A raw mutual-TLS stream to `addr`, for writing request bytes by hand.
async fn raw_tls(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Reads until the server closes the stream (or fails it); panics if it is still open
/// after `within`, far below the idle timeout.
async fn closed_by_server(stream: &mut (impl tokio::io::AsyncRead + Unpin), within: Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server must close the connection (it was still open after {within:?})"
    );
}

/// Issue 13, item 5: a kept-alive connection stays usable for the idle timeout. hyper's
/// header read timeout also ran while waiting for the next request, so it was closed after
/// the (much shorter) header read timeout and the next request on it failed.
#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_read_timeout() {
    let fed = federation();
    let server = start(
        ServerBuilder::new(fed.fresh_cell())
            .tls(fed.resolver("school-server"))
            .limits(short_head_limits())
            .admin("127.0.0.1:0".parse().unwrap(), None),
    )
    .await;
    let mut sender = connect(
        server.addr,
        &fed.connector(Some("school-client"), "school-server"),
    )
    .await
    .unwrap();
    assert_eq!(get(&mut sender, "/").await.unwrap().0, StatusCode::OK);
    // Idle for three header read timeouts, well within the idle timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !sender.is_closed(),
        "closed while idle for less than idle_timeout"
    );
    let post = Request::post("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(b"after a pause")))
        .unwrap();
    let (status, body) = send(&mut sender, post).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["received"], 13);

    // The admin listener keeps its connections the same way.
    let tcp = TcpStream::connect(server.admin.unwrap()).await.unwrap();
    let (mut admin, connection): (SendRequest<Full<Bytes>>, _) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let healthz = || {
        Request::get("/healthz")
            .header("host", "localhost")
            .body(Full::default())
            .unwrap()
    };
    admin.ready().await.unwrap();
    assert_eq!(admin.send_request(healthz()).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    admin.ready().await.unwrap();
    assert_eq!(
        admin.send_request(healthz()).await.unwrap().status(),
        200,
        "the admin connection must survive an idle pause shorter than idle_timeout"
    );
    server.stop().await;
}

/// Issue 13, item 5: an idle kept-alive connection is still closed after the idle timeout.
#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let fed = federation();
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let server = start(
        ServerBuilder::new(fed.fresh_cell())
            .tls(fed.resolver("school-server"))
            .limits(limits),
    )
    .await;
    let mut sender = connect(
        server.addr,
        &fed.connector(Some("school-client"), "school-server"),
    )
    .await
    .unwrap();
    assert_eq!(get(&mut sender, "/").await.unwrap().0, StatusCode::OK);
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        while !sender.is_closed() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection must be closed");
    server.stop().await;
}

/// Issue 13, item 5: slowloris protection stays: a request head that has begun must be
/// complete within the header read timeout, on a new connection and on a kept-alive one
/// after an idle pause; a client that completes the handshake and sends nothing is cut
/// after the header read timeout too (not kept for the idle timeout).
#[tokio::test]
async fn stalled_heads_and_silent_clients_are_cut_after_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fed = federation();
    let server = start(
        ServerBuilder::new(fed.fresh_cell())
            .tls(fed.resolver("school-server"))
            .limits(short_head_limits()),
    )
    .await;
    let connector = fed.connector(Some("school-client"), "school-server");
    let within = Duration::from_secs(15);

    // A partial first head, then nothing.
    let mut stalled = raw_tls(server.addr, &connector).await;
    stalled
        .write_all(b"GET / HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    closed_by_server(&mut stalled, within).await;

    // One full request, an idle pause longer than the header read timeout, then a partial
    // head: the pause is allowed, the stalled head is not.
    let mut kept = raw_tls(server.addr, &connector).await;
    kept.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    while !String::from_utf8_lossy(&response).contains("school.test.example") {
        let mut buf = [0u8; 4096];
        let n = kept.read(&mut buf).await.unwrap();
        assert!(n > 0, "the first request must be answered");
        response.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // (Before issue 13 the server had already closed here; either way it must be closed.)
    let _ = kept.write_all(b"GET / HTTP/1.1\r\nHost: local").await;
    closed_by_server(&mut kept, within).await;

    // The handshake, and then silence.
    let mut silent = raw_tls(server.addr, &connector).await;
    closed_by_server(&mut silent, within).await;
    server.stop().await;
}

/// Issue 13, item 4: behind a trusted terminator, a `Client_Cert` (or `Client_Cert_Chain`)
/// header can only be the client's own (a terminator sets `Client-Cert`), and a CGI or
/// WSGI backend reads it as `Client-Cert`: the request is refused instead of served with
/// whatever the handler or a backend makes of it.
#[tokio::test]
async fn behind_a_terminator_underscore_spellings_of_client_cert_are_refused() {
    let fed = federation();
    let school = std::fs::read_to_string(&fed.party("school-client").cert).unwrap();
    let supplier = std::fs::read_to_string(&fed.party("supplier-client").cert).unwrap();
    let (school, supplier) = (school.replace('\n', " "), supplier.replace('\n', " "));
    let trusted: TrustedProxy = "127.0.0.0/8".parse().unwrap();
    let server = start(ServerBuilder::new(fed.fresh_cell()).behind_terminator(vec![trusted])).await;
    let url = format!("http://{}/", server.addr);
    let http = reqwest::Client::new();
    for (name, extra) in [
        ("Client_Cert", Some(("client-cert", school.as_str()))),
        ("Client_Cert", None),
        ("client_cert_chain", Some(("client-cert", school.as_str()))),
    ] {
        let mut request = http.get(&url).header(name, &supplier);
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{name} with {extra:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "ambiguous_client_certificate");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&name.to_ascii_lowercase())
                && message.contains("underscores_in_headers"),
            "{message}"
        );
    }
    server.stop().await;
}

/// A party's certificate as an RFC 9440 byte sequence (`:BASE64:`).
fn rfc9440(fed: &Fed, party: &str) -> String {
    use base64::Engine as _;
    let pem = std::fs::read(&fed.party(party).cert).unwrap();
    let der = fedtls::pin::first_pem_certificate(&pem).unwrap();
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// Issue 13, item 6: behind a trusted terminator, the first of several `Client-Cert`
/// values won, so a terminator that appends rather than replaces let a client's own header
/// decide the identity; and `Client-Cert-Chain` was never looked at. A request whose
/// certificate headers are ambiguous or whose chain is malformed or belongs to another
/// certificate is refused with 400, naming the header and why.
#[tokio::test]
async fn behind_a_terminator_ambiguous_client_certs_and_bad_chains_are_refused() {
    let fed = federation();
    let supplier = rfc9440(&fed, "supplier-client");
    let school = rfc9440(&fed, "school-client");
    let ca = rfc9440(&fed, "supplier-ca");
    let trusted: TrustedProxy = "127.0.0.0/8".parse().unwrap();
    let server = start(ServerBuilder::new(fed.fresh_cell()).behind_terminator(vec![trusted])).await;
    let url = format!("http://{}/", server.addr);
    let http = reqwest::Client::new();
    let call = |headers: Vec<(&'static str, String)>| {
        let mut request = http.get(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    // The terminator's certificate with its chain, the chain split over two lines (one
    // RFC 9440 list): served, as the supplier.
    let (status, body) = call(vec![
        ("client-cert", supplier.clone()),
        ("client-cert-chain", ca.clone()),
        ("client-cert-chain", ca.clone()),
    ])
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entity_id"], "https://supplier.test.example/moa");

    let refusals = [
        // A client's Client-Cert and the terminator's appended one, in either order.
        (
            vec![
                ("client-cert", school.clone()),
                ("client-cert", supplier.clone()),
            ],
            "ambiguous_client_certificate",
            "2 Client-Cert values",
        ),
        (
            vec![
                ("client-cert", supplier.clone()),
                ("client-cert", school.clone()),
            ],
            "ambiguous_client_certificate",
            "2 Client-Cert values",
        ),
        // Appended into one line.
        (
            vec![("client-cert", format!("{school}, {supplier}"))],
            "ambiguous_client_certificate",
            "2 Client-Cert values",
        ),
        // A chain without the certificate.
        (
            vec![("client-cert-chain", ca.clone())],
            "ambiguous_client_certificate",
            "no Client-Cert",
        ),
        // Malformed chains.
        (
            vec![
                ("client-cert", supplier.clone()),
                ("client-cert-chain", "not-a-byte-sequence".to_owned()),
            ],
            "bad_client_certificate_chain",
            "member 1 is not a byte sequence",
        ),
        (
            vec![
                ("client-cert", supplier.clone()),
                ("client-cert-chain", format!("{ca}, :AAAA:")),
            ],
            "bad_client_certificate_chain",
            "member 2 is not one X.509 certificate",
        ),
        // A chain that belongs to another certificate.
        (
            vec![
                ("client-cert", supplier.clone()),
                ("client-cert-chain", school.clone()),
            ],
            "bad_client_certificate_chain",
            "does not match Client-Cert",
        ),
    ];
    for (headers, code, says) in refusals {
        let shown = format!("{:?}", headers.iter().map(|(n, _)| n).collect::<Vec<_>>());
        let (status, body) = call(headers).await;
        assert_eq!(status, 400, "{shown}: {body}");
        assert_eq!(body["error"], code, "{shown}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{shown}: {message}");
    }
    server.stop().await;
}
