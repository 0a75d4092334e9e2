//! ss12000-proxy as a real process between real mutual-TLS clients and a real backend.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fedtls::testfed::{FederationOptions, TestFederation};
use fedtls::tls::{PinnedServerVerifier, client_config, load_cert_chain, load_private_key};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// The echo backend: answers with the headers it received and the size of the body.
/// `/slow` waits 3 s; `/ws` switches protocols and echoes bytes.
async fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(echo);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn echo(mut request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if request.uri().path() == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if request.uri().path() == "/ws" {
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Full::default())
            .unwrap());
    }
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    // Every header line as it came, repeated names included.
    let header_list: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let path = request.uri().path_and_query().map(|p| p.to_string());
    // HTTP/2's `:authority` (HTTP/1.1 requests in origin form have none).
    let authority = request.uri().authority().map(|a| a.to_string());
    let version = format!("{:?}", request.version());
    // Count the body as it streams; never hold it.
    let mut body = request.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            received += data.len() as u64;
        }
    }
    let reply = json!({"headers": headers, "header_list": header_list, "received": received, "path": path, "authority": authority, "version": version});
    Ok(Response::new(Full::new(Bytes::from(reply.to_string()))))
}

struct Proxy {
    child: Child,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn start_proxy(fed: &TestFederation, backend: &str, extra_toml: &str, dir: &Path) -> Proxy {
    let server = fed.party("school-server").unwrap();
    start_proxy_with(fed, backend, extra_toml, dir, &server.cert, &server.key)
}

fn start_proxy_with(
    fed: &TestFederation,
    backend: &str,
    extra_toml: &str,
    dir: &Path,
    cert: &Path,
    key: &Path,
) -> Proxy {
    let config = format!(
        r#"listen = "127.0.0.1:0"
backend = "{backend}"
{extra_toml}
[tls]
cert = "{}"
key = "{}"
[federation]
metadata = "{}"
jwks = "{}"
"#,
        cert.display(),
        key.display(),
        fed.metadata_jws.display(),
        fed.jwks.display()
    );
    let path = dir.join(format!("proxy-{}.toml", rand_suffix()));
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ss12000-proxy"));
    command.arg("--config").arg(&path);
    spawn_proxy(command)
}

/// Starts the proxy `command` describes and waits for it to log its address.
fn spawn_proxy(mut command: Command) -> Proxy {
    let mut child = command
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ss12000-proxy");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (admin_tx, admin_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("admin_addr=") {
                let addr = line[at + 11..].split_whitespace().next().unwrap_or("");
                let _ = admin_tx.send(addr.to_owned());
            }
            if line.contains("listening")
                && let Some(at) = line.find("addr=")
            {
                let addr = line[at + 5..].split_whitespace().next().unwrap_or("");
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the proxy logs its address");
    Proxy {
        child,
        addr: addr.parse().unwrap(),
        admin: admin_rx.try_recv().ok().and_then(|a| a.parse().ok()),
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn connector(fed: &TestFederation, client: &str, alpn: &[u8]) -> TlsConnector {
    let party = fed.party(client).unwrap();
    let chain = party.chain.clone().unwrap_or_else(|| party.cert.clone());
    let identity = (
        load_cert_chain(&chain).unwrap(),
        load_private_key(&party.key).unwrap(),
    );
    let verifier = PinnedServerVerifier::new([fed.party("school-server").unwrap().pin]).into_arc();
    TlsConnector::from(Arc::new(
        client_config(verifier, Some(identity), &[alpn]).unwrap(),
    ))
}

type Sender = hyper::client::conn::http1::SendRequest<
    http_body_util::combinators::BoxBody<Bytes, std::io::Error>,
>;

async fn connect(addr: SocketAddr, connector: &TlsConnector) -> Result<Sender, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection.with_upgrades());
    Ok(sender)
}

fn body(bytes: &'static [u8]) -> http_body_util::combinators::BoxBody<Bytes, std::io::Error> {
    Full::new(Bytes::from_static(bytes))
        .map_err(|never| match never {})
        .boxed()
}

async fn send(
    sender: &mut Sender,
    request: Request<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>,
) -> Result<(StatusCode, Value), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn get(path: &str) -> Request<http_body_util::combinators::BoxBody<Bytes, std::io::Error>> {
    Request::get(path)
        .header("host", "proxy.example")
        .body(body(b""))
        .unwrap()
}

fn federation() -> (tempfile::TempDir, TestFederation) {
    let dir = tempfile::tempdir().unwrap();
    let fed =
        fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default()).unwrap();
    (dir, fed)
}

#[tokio::test]
async fn identity_headers_are_set_and_spoofed_ones_never_pass() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}/base"),
        "[headers]\nclient_cert = \"rfc9440\"\napi_key_header = \"x-api-key\"\napi_key = \"s3cret\"",
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "supplier-client", b"http/1.1"))
        .await
        .unwrap();
    let request = Request::get("/persons?limit=2")
        .header("host", "proxy.example")
        .header("x-fedtlsauth-entity-id", "https://school.test.example")
        .header("X-FedTLSAuth-Organization-ID", "SE2021004185")
        .header("x-forwarded-for", "203.0.113.9")
        .header("forwarded", "for=203.0.113.9")
        .header("client-cert", ":AAAA:")
        .header("x-api-key", "guessed")
        .body(body(b""))
        .unwrap();
    let (status, echo) = send(&mut sender, request).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    let h = &echo["headers"];
    assert_eq!(echo["path"], "/base/persons?limit=2");
    assert_eq!(
        h["x-fedtlsauth-entity-id"],
        "https://supplier.test.example/moa"
    );
    assert_eq!(h["x-fedtlsauth-organization-id"], "SE5566000001");
    assert_eq!(h["x-fedtlsauth-organization"], "Leverantör Exempel AB");
    assert_eq!(h["x-fedtlsauth-client-tags"], "egilv1");
    assert_eq!(
        h["x-fedtlsauth-pin"],
        fed.party("supplier-client").unwrap().pin.to_string()
    );
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "proxy.example");
    assert!(
        h["forwarded"]
            .as_str()
            .unwrap()
            .starts_with("for=\"127.0.0.1:"),
        "{}",
        h["forwarded"]
    );
    assert_eq!(h["x-api-key"], "s3cret");
    let cert = h["client-cert"].as_str().unwrap();
    let der = kontosynk_framework::client_cert::parse_client_cert(cert).unwrap();
    assert_eq!(
        fedtls::Pin::of_certificate(&der).unwrap(),
        fed.party("supplier-client").unwrap().pin
    );
    assert_eq!(
        h["host"], "proxy.example",
        "the backend sees the client's Host, as behind bowness"
    );

    // `host = "backend"`: the backend sees its own address.
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}/base"),
        "[headers]\nhost = \"backend\"",
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "supplier-client", b"http/1.1"))
        .await
        .unwrap();
    let request = Request::get("/persons")
        .header("host", "proxy.example")
        .body(body(b""))
        .unwrap();
    let (status, echo) = send(&mut sender, request).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["headers"]["host"], backend.to_string());
    assert_eq!(echo["headers"]["x-forwarded-host"], "proxy.example");
}

#[tokio::test]
async fn non_ascii_organization_in_each_encoding() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let name = "Leverantör Exempel AB";
    for (encoding, expected) in [
        ("none", name.to_owned()),
        ("url", "Leverant%C3%B6r%20Exempel%20AB".to_owned()),
        ("base64", "TGV2ZXJhbnTDtnIgRXhlbXBlbCBBQg==".to_owned()),
    ] {
        let proxy = start_proxy(
            &fed,
            &format!("http://{backend}"),
            &format!("[headers]\norganization_encoding = \"{encoding}\""),
            dir.path(),
        );
        let mut sender = connect(proxy.addr, &connector(&fed, "supplier-client", b"http/1.1"))
            .await
            .unwrap();
        let (_, echo) = send(&mut sender, get("/")).await.unwrap();
        assert_eq!(
            echo["headers"]["x-fedtlsauth-organization"],
            expected.as_str(),
            "{encoding}"
        );
    }
}

#[tokio::test]
async fn refusals_unknown_client_policy_rate_limit() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "[access]\norganization_ids = [\"SE2120009999\"]\n[limits]\nrate_limit = 0.5",
        dir.path(),
    );
    // Not in the metadata: no TLS session, or the first request fails.
    let refused = match connect(proxy.addr, &connector(&fed, "unlisted-client", b"http/1.1")).await
    {
        Err(_) => true,
        Ok(mut sender) => send(&mut sender, get("/")).await.is_err(),
    };
    assert!(refused, "an unlisted client must not get through");

    let mut supplier = connect(proxy.addr, &connector(&fed, "supplier-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, body) = send(&mut supplier, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["rule"], "organization_ids");

    let mut school = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    // 0.5 requests/s gives a burst of 1.
    assert_eq!(send(&mut school, get("/")).await.unwrap().0, StatusCode::OK);
    let (status, body) = send(&mut school, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
}

#[tokio::test]
async fn backend_down_is_502_and_slow_is_504() {
    let (dir, fed) = federation();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let proxy = start_proxy(&fed, &format!("http://{down}"), "", dir.path());
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, body) = send(&mut sender, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"], "backend_unavailable");

    let backend = backend().await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "[limits]\nbackend_timeout = 0.5",
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, body) = send(&mut sender, get("/slow")).await.unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"], "backend_timeout");
    assert_eq!(
        send(&mut sender, get("/")).await.unwrap().0,
        StatusCode::OK,
        "the connection stays usable"
    );
}

#[tokio::test]
async fn http2_clients_are_served() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(&fed, &format!("http://{backend}"), "", dir.path());
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let tls = connector(&fed, "school-client", b"h2")
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get("https://proxy.example/h2")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let echo: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        echo["headers"]["x-fedtlsauth-entity-id"],
        "https://school.test.example"
    );
    assert_eq!(echo["headers"]["x-forwarded-host"], "proxy.example");
    assert_eq!(
        echo["version"], "HTTP/1.1",
        "a plain-http backend gets HTTP/1.1 by default"
    );

    // With h2c, HTTP/2 on the backend side too.
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "backend_h2c = true",
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, echo) = send(&mut sender, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["version"], "HTTP/2.0");
    // The client's host goes as `:authority`, with no `Host` header beside it: nginx
    // refuses an h2 request with both ("client sent duplicate host header").
    assert_eq!(echo["authority"], "proxy.example", "{echo}");
    assert!(echo["headers"].get("host").is_none(), "{echo}");
    assert_eq!(echo["headers"]["x-forwarded-host"], "proxy.example");
    assert_eq!(
        echo["headers"]["x-fedtlsauth-entity-id"],
        "https://school.test.example"
    );

    // With `host = "backend"`, `:authority` is the backend's own.
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "backend_h2c = true\n[headers]\nhost = \"backend\"",
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, echo) = send(&mut sender, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["authority"], backend.to_string(), "{echo}");
    assert!(echo["headers"].get("host").is_none(), "{echo}");
}

#[tokio::test]
async fn upgrades_pass_through() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(&fed, &format!("http://{backend}"), "", dir.path());
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let request = Request::get("/ws")
        .header("host", "proxy.example")
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(body(b""))
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut io = TokioIo::new(upgraded);
    io.write_all(b"hello through the proxy").await.unwrap();
    let mut buf = [0u8; 23];
    tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello through the proxy");
}

#[tokio::test]
async fn a_1_gb_upload_streams_with_bounded_memory() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "[limits]\nmax_body = 2000000000\nrequest_timeout = 600.0",
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 1024;
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let stream = futures_stream(chunk, CHUNKS);
    let request = Request::post("/upload")
        .header("host", "proxy.example")
        .body(StreamBody::new(stream).boxed())
        .unwrap();
    let (status, echo) = tokio::time::timeout(Duration::from_secs(300), send(&mut sender, request))
        .await
        .expect("the upload finishes")
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["received"], (CHUNK * CHUNKS) as u64);
    let peak = proxy.peak_rss_kib();
    eprintln!("proxy peak RSS during a 1 GiB upload: {peak} KiB");
    assert!(
        peak > 0 && peak < 200 * 1024,
        "proxy peak RSS {peak} KiB for a 1 GiB upload"
    );
}

/// A stream of `count` copies of `chunk`, as body frames.
fn futures_stream(chunk: Bytes, count: usize) -> Repeat {
    Repeat { chunk, left: count }
}

struct Repeat {
    chunk: Bytes,
    left: usize,
}

impl futures_core::Stream for Repeat {
    type Item = Result<Frame<Bytes>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.clone()))))
    }
}

#[test]
fn curl_with_pinnedpubkey_gets_through() {
    let (dir, fed) = federation();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let backend = runtime.block_on(backend());
    let proxy = start_proxy(&fed, &format!("http://{backend}"), "", dir.path());
    let client = fed.party("school-client").unwrap();
    let out = Command::new(fedtls::testfed::require_program("curl", "curl"))
        .args(["--silent", "--show-error", "--max-time", "20", "--insecure"])
        .arg("--cert")
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key)
        .arg("--pinnedpubkey")
        .arg(fed.party("school-server").unwrap().pin.to_curl())
        .arg(format!("https://{}/curl", proxy.addr))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        echo["headers"]["x-fedtlsauth-entity-id"],
        "https://school.test.example"
    );
    let wrong_pin = Command::new(fedtls::testfed::require_program("curl", "curl"))
        .args(["--silent", "--max-time", "20", "--insecure"])
        .arg("--cert")
        .arg(&client.cert)
        .arg("--key")
        .arg(&client.key)
        .arg("--pinnedpubkey")
        .arg(fed.party("supplier-server").unwrap().pin.to_curl())
        .arg(format!("https://{}/curl", proxy.addr))
        .output()
        .unwrap();
    assert!(
        !wrong_pin.status.success(),
        "curl must refuse a server whose pin does not match"
    );
}

#[test]
fn config_errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nbackend = \"ftp://x\"\n[tls]\ncert=\"a\"\nkey=\"b\"\n[federation]\nmetadata=\"m\"\njwks=\"j\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ss12000-proxy"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("backend"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ss12000-proxy"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `ss12000-proxy --check` with `cert`/`key` (and the federation's metadata and JWKS).
fn check(fed: &TestFederation, dir: &Path, cert: &Path, key: &Path) -> std::process::Output {
    let path = dir.join(format!("check-{}.toml", rand_suffix()));
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nbackend = \"http://127.0.0.1:9\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n[federation]\nmetadata = \"{}\"\njwks = \"{}\"\n",
            cert.display(),
            key.display(),
            fed.metadata_jws.display(),
            fed.jwks.display()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_ss12000-proxy"))
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .env_remove("SS12000_PROXY_CHECK")
        .output()
        .unwrap()
}

#[test]
fn check_opens_everything_and_names_an_unlisted_certificate_or_a_wrong_key() {
    let (dir, fed) = federation();
    let server = fed.party("school-server").unwrap();
    let out = check(&fed, dir.path(), &server.cert, &server.key);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("readable and matching"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "certificate pin {}: listed as a server",
            server.pin
        )),
        "{stdout}"
    );

    // A certificate the metadata does not list.
    let unlisted = fed.party("unlisted-client").unwrap();
    let out = check(&fed, dir.path(), &unlisted.cert, &unlisted.key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&unlisted.pin.to_string()), "{stderr}");
    assert!(stderr.contains("is not listed as a server"), "{stderr}");

    // A key that is not the certificate's.
    let out = check(&fed, dir.path(), &server.cert, &unlisted.key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(&server.key.display().to_string())
            || stderr.contains(&unlisted.key.display().to_string()),
        "{stderr}"
    );
}

/// Body frames fed from a channel, so a test can upload slowly.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl futures_core::Stream for ChannelBody {
    type Item = Result<Frame<Bytes>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[tokio::test]
async fn a_slow_upload_is_not_a_slow_backend() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "[limits]\nbackend_timeout = 0.5",
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        // Four chunks over ~1.2 s: longer than backend_timeout in total.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if tx.send(Bytes::from_static(b"slow chunk")).await.is_err() {
                return;
            }
        }
    });
    let request = Request::post("/upload")
        .header("host", "proxy.example")
        .body(StreamBody::new(ChannelBody(rx)).boxed())
        .unwrap();
    let (status, echo) = send(&mut sender, request).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["received"], 40);
}

fn pinned_connector(fed: &TestFederation, server_pin: fedtls::Pin) -> TlsConnector {
    let party = fed.party("school-client").unwrap();
    let identity = (
        load_cert_chain(&party.cert).unwrap(),
        load_private_key(&party.key).unwrap(),
    );
    let verifier = PinnedServerVerifier::new([server_pin]).into_arc();
    TlsConnector::from(Arc::new(
        client_config(verifier, Some(identity), &[b"http/1.1"]).unwrap(),
    ))
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_admin_reports_health() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let cert = dir.path().join("live.pem");
    let key = dir.path().join("live.key");
    let (old, new) = (
        fed.party("school-server").unwrap(),
        fed.party("supplier-server").unwrap(),
    );
    std::fs::copy(&old.cert, &cert).unwrap();
    std::fs::copy(&old.key, &key).unwrap();
    let proxy = start_proxy_with(
        &fed,
        &format!("http://{backend}"),
        "admin = \"127.0.0.1:0\"",
        dir.path(),
        &cert,
        &key,
    );

    let admin = format!(
        "http://{}",
        proxy.admin.expect("the admin address is logged")
    );
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut sender = connect(proxy.addr, &pinned_connector(&fed, old.pin))
        .await
        .unwrap();
    assert_eq!(send(&mut sender, get("/")).await.unwrap().0, StatusCode::OK);
    let metrics = http
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("entity_id=\"https://school.test.example\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kontosynk_metadata_valid 1"), "{metrics}");

    // Renewal: new files, SIGHUP, and new handshakes present the new certificate.
    std::fs::copy(&new.cert, &cert).unwrap();
    std::fs::copy(&new.key, &key).unwrap();
    let status = Command::new("sh")
        .args(["-c", &format!("kill -HUP {}", proxy.child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let reloaded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(mut sender) = connect(proxy.addr, &pinned_connector(&fed, new.pin)).await
                && send(&mut sender, get("/")).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        reloaded.is_ok(),
        "the new certificate is served after SIGHUP"
    );
    assert!(
        connect(proxy.addr, &pinned_connector(&fed, old.pin))
            .await
            .is_err(),
        "the old one is gone"
    );
    // The connection opened before the reload keeps working.
    assert_eq!(send(&mut sender, get("/")).await.unwrap().0, StatusCode::OK);
}

/// A bare HTTP/1.1 backend that answers `per_connection` requests on each connection and
/// then closes it without warning (as a backend's keep-alive timeout does). Each answer
/// names the connection (counted from 1) and the request line's target and `Host`.
async fn closing_backend(per_connection: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut connections = 0;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            connections += 1;
            let connection = connections;
            tokio::spawn(async move {
                let mut pending = Vec::new();
                for _ in 0..per_connection {
                    let head = loop {
                        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                            pending.drain(..end + 4);
                            break head;
                        }
                        let mut buf = [0u8; 4096];
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                    };
                    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    let host = head
                        .lines()
                        .find_map(|l| l.strip_prefix("host: "))
                        .unwrap_or_default()
                        .to_owned();
                    let body = json!({"connection": connection, "target": target, "host": host})
                        .to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn backend_connections_are_reused_and_closed_ones_replaced() {
    let (dir, fed) = federation();
    let backend = closing_backend(3).await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "threads = 1",
        dir.path(),
    );
    let mut client = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let mut used = Vec::new();
    for i in 0..7 {
        let (status, body) = send(&mut client, get(&format!("/item/{i}?x=1")))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "request {i}: {body}");
        // Origin-form target, as an origin server expects, and the client's Host.
        assert_eq!(body["target"], format!("/item/{i}?x=1"));
        assert_eq!(body["host"], "proxy.example");
        used.push(body["connection"].as_u64().unwrap());
        // Time for the proxy to see the backend's close before the next request.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Three requests per backend connection: reused until the backend closed it, then
    // replaced without an error reaching the client.
    assert_eq!(used, [1, 1, 1, 2, 2, 2, 3]);
}

/// Issue 13, item 5, through the real binary: a kept-alive client connection stays usable
/// for `idle_timeout` (it was closed after `header_timeout`, failing the next request), and
/// a request head that stalls, or a handshake followed by silence, is still cut after
/// `header_timeout`.
#[tokio::test]
async fn keep_alive_lasts_the_idle_timeout_and_stalled_heads_are_cut() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        "[limits]\nheader_timeout = 1.0\nidle_timeout = 30.0",
        dir.path(),
    );
    let connector = connector(&fed, "supplier-client", b"http/1.1");
    let mut sender = connect(proxy.addr, &connector).await.unwrap();
    assert_eq!(
        send(&mut sender, get("/a")).await.unwrap().0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, echo) = send(&mut sender, get("/b"))
        .await
        .expect("the kept-alive connection serves a request after an idle pause");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echo["path"], "/b");

    let within = Duration::from_secs(15);
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut stalled = connector
        .connect(name.clone(), TcpStream::connect(proxy.addr).await.unwrap())
        .await
        .unwrap();
    stalled
        .write_all(b"GET / HTTP/1.1\r\nHost: prox")
        .await
        .unwrap();
    let mut silent = connector
        .connect(name, TcpStream::connect(proxy.addr).await.unwrap())
        .await
        .unwrap();
    for (what, stream) in [("a stalled head", &mut stalled), ("silence", &mut silent)] {
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(within, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{what} must be cut after header_timeout");
    }
}

/// The spellings of the proxy's own headers with `_` for `-`, each with a value only the
/// client chose, and a harmless underscore header that must still pass.
const UNDERSCORE_SPOOFS: [(&str, &str); 8] = [
    ("X_FedTLSAuth_Entity_ID", "https://evil-entity.example"),
    ("X_FedTLSAuth_Organization_ID", "evil-SE0000000000"),
    ("x_fedtlsauth_pin", "evil-pin"),
    ("Client_Cert", ":ZXZpbA==:"),
    ("Client_Cert_Chain", ":ZXZpbA==:"),
    ("X_API_Key", "evil-key"),
    ("X_Forwarded_For", "evil-203.0.113.9"),
    ("x_real_ip", "evil-203.0.113.9"),
];

fn spoofed_get(path: &str) -> Request<http_body_util::combinators::BoxBody<Bytes, std::io::Error>> {
    let mut request = Request::get(path)
        .header("host", "proxy.example")
        .header("X_Request_ID", "kept-1");
    for (name, value) in UNDERSCORE_SPOOFS {
        request = request.header(name, value);
    }
    request.body(body(b"")).unwrap()
}

const SPOOF_HEADERS: &str =
    "[headers]\nclient_cert = \"rfc9440\"\napi_key_header = \"x-api-key\"\napi_key = \"s3cret\"";

/// Issue 13, item 4: the underscore spellings of the proxy's own headers
/// (`X_FedTLSAuth_Entity_ID`, `Client_Cert`, `X_API_Key`, …) passed through to the backend,
/// where CGI/WSGI folding made them a second entity id, an attacker-chosen `Client-Cert`
/// and API key. The real proxy in front of a backend that records every header line.
#[tokio::test]
async fn underscore_spellings_of_trusted_headers_never_reach_the_backend() {
    let (dir, fed) = federation();
    let backend = backend().await;
    let proxy = start_proxy(
        &fed,
        &format!("http://{backend}"),
        SPOOF_HEADERS,
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "supplier-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, echo) = send(&mut sender, spoofed_get("/")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    let lines: Vec<(String, String)> = serde_json::from_value(echo["header_list"].clone()).unwrap();
    let folded = |name: &str| name.to_ascii_lowercase().replace('_', "-");
    for (name, value) in &lines {
        assert!(!value.contains("evil"), "the backend got {name}: {value}");
    }
    for (spoof, _) in UNDERSCORE_SPOOFS {
        assert!(
            lines
                .iter()
                .all(|(name, _)| !name.eq_ignore_ascii_case(spoof)),
            "{spoof} reached the backend"
        );
        let same: Vec<_> = lines
            .iter()
            .filter(|(n, _)| folded(n) == folded(spoof))
            .collect();
        assert!(same.len() <= 1, "{spoof}: the backend got {same:?}");
    }
    let one = |name: &str| {
        lines
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        one("x-fedtlsauth-entity-id"),
        Some("https://supplier.test.example/moa")
    );
    assert_eq!(one("x-api-key"), Some("s3cret"));
    assert_eq!(
        one("x_request_id"),
        Some("kept-1"),
        "other underscore headers pass"
    );
}

/// The WSGI app: answers with the `HTTP_*` variables of its environ (wsgiref folds `_` and
/// `-` together and joins repeated headers with commas), then the port on stdout.
const WSGI_BACKEND: &str = r#"
import json, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

def app(environ, start_response):
    body = json.dumps({k: v for k, v in environ.items() if k.startswith("HTTP_")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]

server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// Kills the WSGI backend when the test ends.
struct Wsgi(Child);

impl Drop for Wsgi {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same attack against Python's wsgiref, the backend the issue names.
#[tokio::test]
async fn underscore_spellings_never_reach_a_wsgi_backend() {
    let (dir, fed) = federation();
    let mut child = Command::new(fedtls::testfed::require_program("python3", "python3"))
        .arg("-c")
        .arg(WSGI_BACKEND)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the wsgiref backend");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _wsgi = Wsgi(child);
    let port: u16 = line.trim().parse().expect("wsgiref prints its port");
    let proxy = start_proxy(
        &fed,
        &format!("http://127.0.0.1:{port}"),
        SPOOF_HEADERS,
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "supplier-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, environ) = send(&mut sender, spoofed_get("/")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{environ}");
    for (name, value) in environ.as_object().unwrap() {
        assert!(
            !value.as_str().unwrap().contains("evil"),
            "the backend got {name}={value}"
        );
    }
    assert_eq!(
        environ["HTTP_X_FEDTLSAUTH_ENTITY_ID"],
        "https://supplier.test.example/moa"
    );
    assert_eq!(environ["HTTP_X_API_KEY"], "s3cret");
    assert_eq!(environ["HTTP_X_REQUEST_ID"], "kept-1");
    let cert = environ["HTTP_CLIENT_CERT"].as_str().unwrap();
    let der = kontosynk_framework::client_cert::parse_client_cert(cert).unwrap();
    assert_eq!(
        fedtls::Pin::of_certificate(&der).unwrap(),
        fed.party("supplier-client").unwrap().pin
    );
    assert!(environ.get("HTTP_CLIENT_CERT_CHAIN").is_none());
}

/// A bowness.yaml as a member running bowness in front of its API would have it (the keys
/// and shapes of bowness's documentation), for the test federation and `backend`.
fn bowness_yaml(
    fed: &TestFederation,
    dir: &Path,
    backend: &str,
    extra: &str,
) -> std::path::PathBuf {
    let server = fed.party("school-server").unwrap();
    let yaml = format!(
        "MetadataURL: {}\nJWKSPath: {}\nCachePath: {}\nCert: {}\nKey: {}\n\
         TargetURL: {backend}\nListenAddress: 127.0.0.1:0\n\
         ReadHeaderTimeout: 5\nReadTimeout: 20\nWriteTimeout: 40\nIdleTimeout: 60\n\
         BackendTimeout: 30\nDefaultCacheTTL: 3600\nNetworkRetry: 60\n\
         APIKeyHeader: X-API-Key\nAPIKeyValue: yourverysecretkey\n\
         EncodeOrganization: base64\n{extra}",
        fed.metadata_jws.display(),
        fed.jwks.display(),
        dir.join("metadata-cache.jws").display(),
        server.cert.display(),
        server.key.display(),
    );
    let path = dir.join(format!("bowness-{}.yaml", rand_suffix()));
    std::fs::write(&path, yaml).unwrap();
    path
}

fn bowness_command(yaml: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ss12000-proxy"));
    command
        .arg("--bowness-config")
        .arg(yaml)
        .env_remove("SS12000_PROXY_CHECK");
    command
}

#[tokio::test]
async fn a_bowness_config_file_serves_as_is_with_bwns_overrides() {
    let (dir, fed) = federation();
    let backend = backend().await;
    // The file names a backend that is not there; BWNS_TARGETURL replaces it, as in bowness.
    let yaml = bowness_yaml(
        &fed,
        dir.path(),
        "http://127.0.0.1:9/nothing",
        "EnableLimiting: true\nLimitRequestsPerSecond: 0.1\nLimitBurst: 3\n",
    );
    let mut command = bowness_command(&yaml);
    command
        .env("BWNS_TARGETURL", format!("http://{backend}/base"))
        .env("BWNS_ENCODEENTITYID", "url");
    let proxy = spawn_proxy(command);
    let mut sender = connect(proxy.addr, &connector(&fed, "supplier-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, echo) = send(&mut sender, get("/persons")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    assert_eq!(echo["path"], "/base/persons", "{echo}");
    let h = &echo["headers"];
    assert_eq!(h["x-api-key"], "yourverysecretkey", "{echo}");
    assert_eq!(
        h["x-fedtlsauth-organization"], "TGV2ZXJhbnTDtnIgRXhlbXBlbCBBQg==",
        "{echo}"
    );
    let entity = h["x-fedtlsauth-entity-id"].as_str().unwrap();
    assert!(entity.starts_with("https%3A%2F%2F"), "{echo}");
    // LimitBurst 3 at 0.1 requests/s: two more, then 429.
    for _ in 0..2 {
        assert_eq!(send(&mut sender, get("/")).await.unwrap().0, StatusCode::OK);
    }
    let (status, _) = send(&mut sender, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn bowness_keys_that_cannot_be_honoured_are_named_and_exit_1() {
    let (dir, fed) = federation();
    for (extra, env, named) in [
        ("ReadTimout: 5\n", None, "ReadTimout: not a bowness key"),
        (
            "ShutdownTimeout: 0\n",
            None,
            "ShutdownTimeout: 0 means no timeout",
        ),
        (
            "",
            Some(("BWNS_IDLETIMEOUT", "1.5")),
            "BWNS_IDLETIMEOUT: must be a whole number",
        ),
        (
            "MaxMetadataSize: 200\n",
            None,
            "MaxMetadataSize: ss12000-proxy accepts",
        ),
    ] {
        let yaml = bowness_yaml(&fed, dir.path(), "http://127.0.0.1:9", extra);
        let mut command = bowness_command(&yaml);
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
    // A warning for what is harmless to ignore; --config and --bowness-config exclude each other.
    let yaml = bowness_yaml(
        &fed,
        dir.path(),
        "http://127.0.0.1:9",
        "BadContentRetry: 600\n",
    );
    let out = bowness_command(&yaml).arg("--check").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: ") && stderr.contains("BadContentRetry: ignored"),
        "{stderr}"
    );
    let out = bowness_command(&yaml)
        .arg("--config")
        .arg(&yaml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_with_a_bowness_config_prints_the_equivalent_toml() {
    let (dir, fed) = federation();
    let yaml = bowness_yaml(
        &fed,
        dir.path(),
        "https://api.example:8443/v2",
        "EnableLimiting: yes\nLimitRequestsPerSecond: 10\nLimitBurst: 20\nShutdownTimeout: 15\n",
    );
    let out = bowness_command(&yaml)
        .arg("--check")
        .env("BWNS_WRITETIMEOUT", "90")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The checks ran (as comments, so all of stdout is the new file).
    assert!(
        stdout.contains("# ") && stdout.contains("listed as a server"),
        "{stdout}"
    );
    let printed = ss12000_proxy::config::Config::parse(&stdout, []).unwrap();
    let mapped =
        ss12000_proxy::bowness::load(&yaml, [("BWNS_WRITETIMEOUT".to_owned(), "90".to_owned())])
            .unwrap()
            .config;
    assert_eq!(format!("{printed:?}"), format!("{mapped:?}"));
    assert_eq!(printed.limits.request_timeout, 90.0);
    assert_eq!(printed.limits.rate_burst, Some(20));
    assert_eq!(printed.limits.shutdown_timeout, 15.0);
    assert_eq!(printed.backend.to_string(), "https://api.example:8443/v2");
}

/// The echo backend behind TLS with `school-server`'s certificate, offering h2 and
/// HTTP/1.1 by ALPN (as nginx with `listen … ssl http2` does).
async fn tls_backend(fed: &TestFederation) -> SocketAddr {
    let party = fed.party("school-server").unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(fedtls::tls::provider())
        .with_protocol_versions(fedtls::tls::PROTOCOL_VERSIONS)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            load_cert_chain(&party.cert).unwrap(),
            load_private_key(&party.key).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(echo);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_https_backend_is_pinned_and_spoken_to_in_http_1_1() {
    let (dir, fed) = federation();
    let backend = tls_backend(&fed).await;
    let pin = fed.party("school-server").unwrap().pin;
    let proxy = start_proxy(
        &fed,
        &format!("https://localhost:{}", backend.port()),
        &format!("[backend_tls]\npin = \"{pin}\""),
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, echo) = send(&mut sender, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{echo}");
    // HTTP/1.1 although the backend offers h2: the client's Host travels as Host, which an
    // h2 request could not carry beside :authority.
    assert_eq!(echo["version"], "HTTP/1.1", "{echo}");
    assert_eq!(echo["headers"]["host"], "proxy.example", "{echo}");
    assert_eq!(
        echo["headers"]["x-fedtlsauth-entity-id"],
        "https://school.test.example"
    );

    // Another pin: the backend's certificate is refused, the client gets 502.
    let other = fed.party("school-client").unwrap().pin;
    let proxy = start_proxy(
        &fed,
        &format!("https://localhost:{}", backend.port()),
        &format!("[backend_tls]\npin = \"{other}\""),
        dir.path(),
    );
    let mut sender = connect(proxy.addr, &connector(&fed, "school-client", b"http/1.1"))
        .await
        .unwrap();
    let (status, body) = send(&mut sender, get("/")).await.unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"], "backend_unavailable");
}
