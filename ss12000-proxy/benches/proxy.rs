//! ss12000-proxy against nginx and HAProxy, measured in one run on this machine, in front of
//! one backend:
//!
//! - (a) the backend directly (plain HTTP/1.1, or h2c);
//! - (b) ss12000-proxy (mutual TLS, client `school-client`, server pinned to
//!   `school-server`; identity headers and pin checks on, as a member runs it);
//! - (c) nginx, `worker_processes auto` (2 workers on 2 cores), mutual TLS with
//!   `ssl_verify_client on` against the federation's issuer certificates, `proxy_pass` with
//!   upstream keep-alive and two identity headers;
//! - (d) HAProxy, `nbthread 2`, mutual TLS with `verify required` against the same issuers,
//!   `http-reuse always` and the same two headers.
//!
//! Access logs are off for all three front ends. The backend is nginx with one worker
//! answering a ~200-byte JSON body (`return 200`), HTTP/1.1 on one port and h2c on another;
//! with `BENCH_BACKEND=hyper`, or without nginx, it is this binary re-executed (one tokio
//! thread, both protocols on one port).
//!
//! Phases, each with the subjects alternating over the rounds (default 5) so drift hits all
//! alike, after a warm-up:
//! 1. HTTP/1.1 keep-alive throughput: 32 connections, one request in flight each;
//! 2. latency: 1 connection, so the percentiles are per-request cost, not queueing;
//! 3. new connections: 32 workers, each request on a connection of its own (TCP, a full
//!    TLS 1.3 handshake with the P-256 client certificate, no resumption, one GET, close);
//! 4. HTTP/2: h2 by ALPN from the client; the proxy and HAProxy speak h2 (h2c) to the
//!    backend too, nginx cannot (its upstream is HTTP/1.1);
//! 5. 1,000 idle mutual-TLS connections held open, resident memory from `/proc/PID/status`.
//!
//! Targets (printed, never asserted): the proxy's throughput, new connections per second and
//! h2 throughput ≥ 110 % of the better of nginx and HAProxy (the median of per-round
//! ratios), with p99 latency no worse; p50 latency ≤ direct + 0.3 ms; RSS ≤ 100 MB with
//! 1,000 idle connections. The load generator (`common/loadgen.rs`, also the `loadgen`
//! example) runs in this process on one runtime thread. Everything shares the machine's
//! cores, so each row also shows the server side's CPU time per request, which depends much
//! less on who else is busy.
//!
//! Run: `cargo bench -p ss12000-proxy --bench proxy` (`QUICK=1` for 2 rounds of 2 s,
//! `ROUNDS=N`). Needs nginx and HAProxy on PATH (`apt-get install nginx-light haproxy`);
//! without one, its rows are skipped. Exits 1 when ss12000-proxy does not start or does not
//! answer.

#[path = "common/loadgen.rs"]
mod loadgen;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fedtls::testfed::{FederationOptions, TestFederation};
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use loadgen::{Client, Connection, Report, Reuse, Target, TlsOptions};

/// Set in the environment of the re-executed bench binary that serves as the backend.
const BACKEND_ENV: &str = "SS12000_PROXY_BENCH_BACKEND";

/// `hyper` makes this binary the backend even when nginx is installed.
const BACKEND_KIND_ENV: &str = "BENCH_BACKEND";

/// Overrides the `RUST_LOG` the proxy runs with.
const PROXY_LOG_ENV: &str = "PROXY_RUST_LOG";

/// The proxy's log filter: the startup line (`listening ... addr=`) at info, the access log
/// and everything else at warn, so the load does not turn into log lines.
const PROXY_LOG_DEFAULT: &str = "warn,ss12000_proxy=info,kontosynk_framework=info,kontosynk::access=warn,ss12000_proxy::access=warn";

/// The backend's answer: about 200 bytes of JSON, like a small SS 12000 object.
const BODY: &str = r#"{"id":"3d9c8a3e-5c1a-4b7e-9f4e-2a7d1c0b6e51","givenName":"Astrid","familyName":"Lindqvist","eduPersonPrincipalNames":["astrid.lindqvist@skola.exempla.test.example"],"meta":{"created":"2025-01-01T00:00:00Z"}}"#;

/// Throughput concurrency: keep-alive connections, one request in flight each.
const CONCURRENCY: usize = 32;

/// Idle mutual-TLS connections held open for the memory measurement.
const IDLE_CONNECTIONS: usize = 1_000;

/// The load generator's runtime thread name.
const LOADGEN_THREAD: &str = "loadgen";

/// Overrides the proxy binary (default: the one cargo built).
const PROXY_BIN_ENV: &str = "PROXY_BIN";

fn quick() -> bool {
    std::env::var_os("QUICK").is_some()
}

fn main() {
    if std::env::var_os(BACKEND_ENV).is_some() {
        backend_main();
        return;
    }
    // `cargo bench` passes --bench; `cargo test --benches` does not: run only on --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let code = bench();
    // Every child process guard has been dropped inside `bench`.
    std::process::exit(code);
}

// ---------------------------------------------------------------------------------------------
// The backend process.

/// Serves GET with [`BODY`] on 127.0.0.1, one runtime thread, HTTP/1.1 keep-alive (and h2c).
/// Prints `addr=IP:PORT` on stdout; exits when its stdin closes (the bench went away).
fn backend_main() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("backend")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("backend: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("backend: bind 127.0.0.1:0: {e}");
                std::process::exit(1);
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string());
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "addr={}", addr.unwrap_or_default());
        let _ = stdout.flush();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    *response.status_mut() = StatusCode::OK;
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Child processes.

/// A child process that is stopped when this guard is dropped, also on panic.
struct Process {
    name: String,
    child: Child,
    /// SIGTERM first (nginx: fast shutdown of master and workers), then SIGKILL.
    terminate_first: bool,
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        if self.terminate_first {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if self.exited().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!("{}: no exit 5 s after SIGTERM, killing", self.name);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Re-executes this binary as the backend and reads its address.
fn start_backend() -> Result<(Process, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .env(BACKEND_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start the backend: {e}"))?;
    let stdout = child.stdout.take();
    let process = Process {
        name: "backend".into(),
        child,
        terminate_first: false,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(stdout) = stdout {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the backend did not print its address within 10 s".to_string())?;
    let addr = line
        .trim()
        .strip_prefix("addr=")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("the backend printed {line:?}, not addr=IP:PORT"))?;
    Ok((process, addr))
}

/// Removes ANSI escape sequences (colored log output).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte(@..~)
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `IP:PORT` after `addr=` in a log line.
fn parse_addr(line: &str) -> Option<SocketAddr> {
    let at = line.find("addr=")?;
    line[at + 5..]
        .split(|c: char| c.is_whitespace() || c == ',' || c == '}')
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// ss12000-proxy as a child process, with its stderr drained.
struct ProxyProcess {
    process: Process,
    addr: SocketAddr,
    /// Log lines after the startup line.
    lines_after_start: Arc<AtomicU64>,
    /// The last lines of its stderr.
    tail: Arc<Mutex<VecDeque<String>>>,
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    if tail.is_empty() {
        "    (nothing on stderr)".into()
    } else {
        tail.iter()
            .map(|l| format!("    | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Writes the proxy's config and starts it; waits for its `listening ... addr=` log line.
fn start_proxy(
    dir: &Path,
    fed: &TestFederation,
    backend: SocketAddr,
    h2c: bool,
) -> Result<ProxyProcess, String> {
    let server = fed
        .party("school-server")
        .ok_or("the test federation has no school-server")?;
    let table = |entries: &[(&str, String)]| {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), toml::Value::String(v.clone())))
            .collect::<toml::Table>()
    };
    let mut config = table(&[
        ("listen", "127.0.0.1:0".to_owned()),
        ("backend", format!("http://{backend}")),
    ]);
    if h2c {
        config.insert("backend_h2c".into(), toml::Value::Boolean(true));
    }
    config.insert(
        "tls".into(),
        toml::Value::Table(table(&[
            ("cert", server.cert.display().to_string()),
            ("key", server.key.display().to_string()),
        ])),
    );
    config.insert(
        "federation".into(),
        toml::Value::Table(table(&[
            ("metadata", fed.metadata_jws.display().to_string()),
            ("jwks", fed.jwks.display().to_string()),
        ])),
    );
    let path = dir.join(if h2c { "proxy-h2.toml" } else { "proxy.toml" });
    std::fs::write(&path, config.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    let log = std::env::var(PROXY_LOG_ENV).unwrap_or_else(|_| PROXY_LOG_DEFAULT.to_owned());
    let exe = std::env::var(PROXY_BIN_ENV)
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ss12000-proxy").to_owned());
    let mut child = Command::new(&exe)
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", &log)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {exe}: {e}"))?;
    let stderr = child.stderr.take();
    let mut process = Process {
        name: "ss12000-proxy".into(),
        child,
        terminate_first: false,
    };
    let lines_after_start = Arc::new(AtomicU64::new(0));
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let lines_after_start = Arc::clone(&lines_after_start);
        let tail = Arc::clone(&tail);
        std::thread::spawn(move || {
            let Some(stderr) = stderr else { return };
            let mut started = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if started {
                    lines_after_start.fetch_add(1, Ordering::Relaxed);
                } else if line.contains("listening")
                    && let Some(addr) = parse_addr(&line)
                {
                    started = true;
                    let _ = tx.send(addr);
                }
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
    }
    let until = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(addr) = rx.recv_timeout(Duration::from_millis(100)) {
            break addr;
        }
        if let Some(status) = process.exited() {
            // Let the reader take the last lines.
            std::thread::sleep(Duration::from_millis(100));
            return Err(format!(
                "{exe} --config {} exited ({status}) without logging a `listening ... addr=IP:PORT` line (the bench needs that line on stderr at info level, target ss12000_proxy or kontosynk_framework). stderr:\n{}",
                path.display(),
                tail_text(&tail)
            ));
        }
        if Instant::now() > until {
            return Err(format!(
                "{exe} --config {} logged no `listening ... addr=IP:PORT` line within 30 s (RUST_LOG={log}; override with {PROXY_LOG_ENV}). stderr:\n{}",
                path.display(),
                tail_text(&tail)
            ));
        }
    };
    Ok(ProxyProcess {
        process,
        addr,
        lines_after_start,
        tail,
    })
}

/// An nginx instance (master + workers) with its own prefix directory.
struct NginxProcess {
    process: Process,
    addr: SocketAddr,
    workers: Vec<u32>,
    prefix: PathBuf,
}

/// nginx on PATH (or in /usr/sbin, which a non-root PATH may lack).
fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// A free loopback port (nginx cannot report a port it picked itself).
fn free_port() -> Result<u16, String> {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))
}

/// The federation's issuer certificates (`entities[].issuers[].x509certificate`), as one PEM
/// bundle: the self-signed client certificates and the supplier CA.
fn issuer_bundle(fed: &TestFederation) -> Result<String, String> {
    let text = std::fs::read(&fed.metadata_json)
        .map_err(|e| format!("{}: {e}", fed.metadata_json.display()))?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("metadata.json: {e}"))?;
    let mut bundle = String::new();
    for entity in metadata["entities"].as_array().into_iter().flatten() {
        for issuer in entity["issuers"].as_array().into_iter().flatten() {
            if let Some(pem) = issuer["x509certificate"].as_str() {
                bundle.push_str(pem.trim());
                bundle.push('\n');
            }
        }
    }
    if bundle.is_empty() {
        return Err("metadata.json lists no issuers".into());
    }
    Ok(bundle)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The nginx configuration of a mutual-TLS reverse proxy in front of `backend` on `port`
/// (`h2`: HTTP/2 by ALPN on the client side; upstream is always HTTP/1.1 keep-alive, the only
/// upstream protocol nginx's proxy module has).
fn nginx_front_end(
    fed: &TestFederation,
    issuers: &Path,
    backend: SocketAddr,
    port: u16,
    h2: bool,
) -> Result<String, String> {
    let server = fed
        .party("school-server")
        .ok_or("the test federation has no school-server")?;
    let http2 = if h2 { " http2" } else { "" };
    Ok(format!(
        r#"    upstream backend {{
        server {backend};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} ssl{http2};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_client_certificate {issuers};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Client-Fingerprint $ssl_client_fingerprint;
            proxy_set_header X-Client-Subject $ssl_client_s_dn;
        }}
    }}
"#,
        cert = server.cert.display(),
        key = server.key.display(),
        issuers = issuers.display(),
    ))
}

/// The nginx configuration of a backend answering every GET with [`BODY`]: HTTP/1.1 on
/// `port`, HTTP/2 with prior knowledge (h2c) on `h2c_port`.
fn nginx_backend(port: u16, h2c_port: u16) -> String {
    format!(
        r#"    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{h2c_port} http2;
        location / {{
            default_type application/json;
            return 200 '{BODY}';
        }}
    }}
"#
    )
}

/// Starts nginx with `worker_processes` = `workers` ("auto" or a number) and `servers` (the
/// inside of its `http` block) listening on `port`, with everything under `prefix`.
fn start_nginx(
    nginx: &Path,
    prefix: &Path,
    workers: &str,
    port: u16,
    servers: &str,
) -> Result<NginxProcess, String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    std::fs::create_dir_all(prefix.join("tmp")).map_err(|e| io(prefix, e))?;
    // Temp paths for the modules this nginx has; Debian's defaults are under /var/lib/nginx.
    let version = Command::new(nginx)
        .arg("-V")
        .output()
        .map_err(|e| format!("{} -V: {e}", nginx.display()))?;
    let build = String::from_utf8_lossy(&version.stderr);
    let p = prefix.display();
    let mut temp_paths = String::new();
    for (option, directive) in [
        ("client-body", "client_body_temp_path"),
        ("proxy", "proxy_temp_path"),
        ("fastcgi", "fastcgi_temp_path"),
        ("uwsgi", "uwsgi_temp_path"),
        ("scgi", "scgi_temp_path"),
    ] {
        if build.contains(&format!("--http-{option}-temp-path")) {
            temp_paths.push_str(&format!("    {directive} {p}/tmp/{option};\n"));
        }
    }
    let user = if is_root() { "user root;\n" } else { "" };
    let config = format!(
        r#"{user}worker_processes {workers};
worker_rlimit_nofile 8192;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temp_paths}    keepalive_timeout 75s;
    keepalive_requests 1000000;
{servers}}}
"#
    );
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, config).map_err(|e| io(&conf, e))?;
    let stderr_path = prefix.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| io(&stderr_path, e))?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", nginx.display()))?;
    let process = Process {
        name: format!("nginx ({workers})"),
        child,
        terminate_first: true,
    };
    let logs = || {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "{}{}",
            read(prefix.join("stderr.log")),
            read(prefix.join("error.log"))
        )
    };
    let (process, addr) = wait_for_port(process, port, logs)?;
    // Wait for the workers to be forked, then remember them for CPU and memory readings.
    let expected = workers
        .parse()
        .unwrap_or_else(|_| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let until = Instant::now() + Duration::from_secs(10);
    let mut worker_pids = children_of(process.pid());
    while worker_pids.len() < expected && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        worker_pids = children_of(process.pid());
    }
    Ok(NginxProcess {
        process,
        addr,
        workers: worker_pids,
        prefix: prefix.to_path_buf(),
    })
}

/// Waits up to 10 s for `process` to accept connections on loopback `port`; `logs` says why
/// when it exits or never listens.
fn wait_for_port(
    mut process: Process,
    port: u16,
    logs: impl Fn() -> String,
) -> Result<(Process, SocketAddr), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.exited() {
            return Err(format!("{} exited ({status}):\n{}", process.name, logs()));
        }
        if StdTcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok((process, addr));
        }
        if Instant::now() > until {
            return Err(format!(
                "{} did not listen on {addr} within 10 s:\n{}",
                process.name,
                logs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// HAProxy on PATH (or in /usr/sbin).
fn find_haproxy() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file())
}

/// Starts HAProxy with `nbthread 2` as mutual-TLS reverse proxy in front of `backend`
/// (`verify required` against the federation's issuers, upstream keep-alive with
/// `http-reuse always`, no logging). `h2`: h2 by ALPN on the client side and h2 with prior
/// knowledge to the backend (`h2_backend`), HAProxy's end-to-end HTTP/2.
fn start_haproxy(
    haproxy: &Path,
    dir: &Path,
    fed: &TestFederation,
    issuers: &Path,
    backend: SocketAddr,
    h2: bool,
) -> Result<(Process, SocketAddr), String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let server = fed
        .party("school-server")
        .ok_or("the test federation has no school-server")?;
    // HAProxy wants the certificate and its key in one file.
    let crt = dir.join("server.pem");
    let mut combined = std::fs::read_to_string(&server.cert).map_err(|e| io(&server.cert, e))?;
    combined.push_str(&std::fs::read_to_string(&server.key).map_err(|e| io(&server.key, e))?);
    std::fs::write(&crt, combined).map_err(|e| io(&crt, e))?;
    let port = free_port()?;
    let (alpn, proto) = if h2 {
        ("h2", " proto h2")
    } else {
        ("http/1.1", "")
    };
    let config = format!(
        r#"global
    nbthread 2
    maxconn 8192
defaults
    mode http
    timeout connect 5s
    timeout client 75s
    timeout server 75s
    timeout http-keep-alive 75s
    option http-keep-alive
    http-reuse always
frontend mtls
    bind 127.0.0.1:{port} ssl crt {crt} verify required ca-file {issuers} alpn {alpn} no-tls-tickets ssl-min-ver TLSv1.2
    http-request set-header X-Client-Fingerprint %[ssl_c_sha1,hex]
    http-request set-header X-Client-Subject %{{+Q}}[ssl_c_s_dn]
    default_backend app
backend app
    server app {backend}{proto}
"#,
        crt = crt.display(),
        issuers = issuers.display(),
    );
    let conf = dir.join("haproxy.cfg");
    std::fs::write(&conf, config).map_err(|e| io(&conf, e))?;
    let stderr_path = dir.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| io(&stderr_path, e))?;
    let child = Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", haproxy.display()))?;
    let process = Process {
        name: "haproxy".into(),
        child,
        terminate_first: true,
    };
    wait_for_port(process, port, || {
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    })
}

// ---------------------------------------------------------------------------------------------
// /proc readings.

/// The fields of `/proc/PID/stat` after the parenthesised command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            stat_fields(child)
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                .is_some_and(|parent| parent == pid)
        })
        .collect()
}

/// User + system CPU time of the processes (all their threads), in clock ticks (1/100 s).
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| {
            let fields = stat_fields(pid)?;
            // utime is the 14th field of stat, stime the 15th: 12th and 13th after the name.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// Sum of VmRSS over the processes, KiB.
fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Measurements.

/// Which setup a subject is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// (a) The backend, plain HTTP.
    Direct,
    /// (b) ss12000-proxy.
    Proxy,
    /// (c) nginx, `worker_processes auto`.
    Nginx,
    /// (d) HAProxy, `nbthread 2`.
    Haproxy,
}

impl Kind {
    /// Whether this is one of the front ends the proxy is measured against.
    fn is_rival(self) -> bool {
        matches!(self, Kind::Nginx | Kind::Haproxy)
    }
}

/// One thing measured: a URL, a client for it and the server processes behind it.
struct Subject {
    kind: Kind,
    label: String,
    client: Arc<Client>,
    /// Server-side processes whose CPU time is charged to this subject.
    pids: Vec<u32>,
    /// Keep-alive throughput runs (concurrency [`CONCURRENCY`]), one per round.
    loaded: Vec<Run>,
    /// Keep-alive latency runs (concurrency 1), one per round.
    single: Vec<Run>,
    /// New-connection runs (concurrency [`CONCURRENCY`], a full handshake per request).
    fresh: Vec<Run>,
    /// Memory with [`IDLE_CONNECTIONS`] idle connections (TLS subjects).
    idle: Option<IdleMemory>,
}

impl Subject {
    fn new(kind: Kind, label: impl Into<String>, client: Client, pids: Vec<u32>) -> Self {
        Self {
            kind,
            label: label.into(),
            client: Arc::new(client),
            pids,
            loaded: Vec::new(),
            single: Vec::new(),
            fresh: Vec::new(),
            idle: None,
        }
    }

    /// The server processes now (nginx may have replaced a worker).
    fn live_pids(&self) -> Vec<u32> {
        match self.kind {
            Kind::Nginx => {
                let master = self.pids[0];
                let mut pids = vec![master];
                pids.extend(children_of(master));
                pids
            }
            _ => self.pids.clone(),
        }
    }
}

/// CPU time (user + system, clock ticks) of this process's threads named `name`.
fn thread_cpu_ticks(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let rest = stat.get(stat.rfind(')')? + 2..)?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// One load generator run and the CPU time spent around it.
#[derive(Clone)]
struct Run {
    report: Report,
    /// CPU ticks of the server-side processes.
    server_ticks: u64,
    /// CPU ticks of the load generator's runtime thread.
    loadgen_ticks: u64,
}

/// Runs the load generator and reads the server processes' and its own CPU time around it.
fn measure(
    runtime: &tokio::runtime::Runtime,
    subject: &Subject,
    concurrency: usize,
    length: Duration,
    reuse: Reuse,
) -> Run {
    let pids = subject.live_pids();
    let server_before = cpu_ticks(&pids);
    let loadgen_before = thread_cpu_ticks(LOADGEN_THREAD);
    let report = runtime.block_on(loadgen::run(
        Arc::clone(&subject.client),
        concurrency,
        length,
        reuse,
    ));
    Run {
        report,
        server_ticks: cpu_ticks(&pids).saturating_sub(server_before),
        loadgen_ticks: thread_cpu_ticks(LOADGEN_THREAD).saturating_sub(loadgen_before),
    }
}

/// One GET, to check a subject answers before measuring it.
fn probe(runtime: &tokio::runtime::Runtime, client: &Client) -> Result<(), String> {
    runtime.block_on(async {
        let mut connection = client.connect().await?;
        client.get(&mut connection).await.map_err(|e| e.message)
    })
}

/// Several runs folded into one.
struct Summary {
    report: Report,
    /// Server-side CPU microseconds per request.
    server_us: f64,
    /// Load generator CPU microseconds per request.
    loadgen_us: f64,
}

fn summary(runs: &[Run]) -> Summary {
    let reports: Vec<Report> = runs.iter().map(|r| r.report.clone()).collect();
    let report = Report::merge(&reports);
    // Linux reports CPU time in USER_HZ ticks, 100 per second.
    let per_request = |ticks: u64| ticks as f64 * 10_000.0 / report.requests.max(1) as f64;
    Summary {
        server_us: per_request(runs.iter().map(|r| r.server_ticks).sum()),
        loadgen_us: per_request(runs.iter().map(|r| r.loadgen_ticks).sum()),
        report,
    }
}

/// Memory with many idle connections open.
struct IdleMemory {
    before_kib: u64,
    after_kib: u64,
    opened: usize,
    still_open: usize,
    errors: Vec<String>,
}

/// Opens `count` connections with one request each (32 at a time), holds them, reads the
/// server processes' RSS before (after one connection) and after.
fn idle_memory(
    runtime: &tokio::runtime::Runtime,
    client: &Arc<Client>,
    pids: &[u32],
    count: usize,
) -> IdleMemory {
    runtime.block_on(async {
        let open = |client: Arc<Client>| async move {
            let mut connection = client.connect().await?;
            client.get(&mut connection).await.map_err(|e| e.message)?;
            Ok::<Connection, String>(connection)
        };
        let mut held = Vec::with_capacity(count);
        let mut errors = Vec::new();
        // One connection first, so lazily allocated process-wide state is not counted.
        match open(Arc::clone(client)).await {
            Ok(c) => held.push(c),
            Err(e) => errors.push(e),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before_kib = rss_kib(pids);
        let mut left = count.saturating_sub(1);
        while left > 0 {
            let batch = left.min(32);
            left -= batch;
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..batch {
                tasks.spawn(open(Arc::clone(client)));
            }
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Ok(c)) => held.push(c),
                    Ok(Err(e)) => errors.push(e),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after_kib = rss_kib(pids);
        let still_open = held.iter().filter(|c| !c.is_closed()).count();
        IdleMemory {
            before_kib,
            after_kib,
            opened: held.len(),
            still_open,
            errors,
        }
    })
}

fn federation() -> Result<(tempfile::TempDir, TestFederation), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let fed = fedtls::testfed::init(&dir.path().join("fed"), &FederationOptions::default())
        .map_err(|e| format!("test federation: {e}"))?;
    Ok((dir, fed))
}

/// A mutual-TLS load generator client for `addr` with `party`'s identity, pinning
/// `school-server`; `http2` offers only h2 in ALPN.
fn mtls_client(
    fed: &TestFederation,
    addr: SocketAddr,
    party: &str,
    http2: bool,
) -> Result<Client, String> {
    let client = fed
        .party(party)
        .ok_or_else(|| format!("the test federation has no {party}"))?;
    let server = fed
        .party("school-server")
        .ok_or("the test federation has no school-server")?;
    let tls = loadgen::tls_config(&TlsOptions {
        identity: Some((&client.cert, &client.key)),
        server_pin: server.pin,
        http2,
    })?;
    Client::new(
        Target::parse(&format!("https://{addr}/v2/persons/1"))?,
        Some(tls),
        http2,
    )
}

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn ms(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "-".into()
    }
}

/// The 1-minute load average, as `/proc/loadavg` gives it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The median of `values` (NaN when empty).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// The backend every front end forwards to.
struct Backend {
    /// Its process (nginx: the master), stopped when this is dropped.
    _process: Process,
    /// Every process whose CPU is the backend's.
    pids: Vec<u32>,
    /// HTTP/1.1.
    h1: SocketAddr,
    /// HTTP/2 with prior knowledge (h2c).
    h2c: SocketAddr,
    label: String,
}

/// nginx answering [`BODY`] with one worker, unless `BENCH_BACKEND=hyper` or nginx is
/// missing: then this binary re-executed (one tokio thread, HTTP/1.1 and h2c on one port).
fn start_any_backend(dir: &Path) -> Result<Backend, String> {
    let want_hyper = std::env::var(BACKEND_KIND_ENV).is_ok_and(|v| v == "hyper");
    if !want_hyper && let Some(nginx) = find_nginx() {
        let (port, h2c_port) = (free_port()?, free_port()?);
        let backend = start_nginx(
            &nginx,
            &dir.join("nginx-backend"),
            "1",
            port,
            &nginx_backend(port, h2c_port),
        )?;
        let mut pids = vec![backend.process.pid()];
        pids.extend(&backend.workers);
        return Ok(Backend {
            _process: backend.process,
            pids,
            h1: backend.addr,
            h2c: SocketAddr::from(([127, 0, 0, 1], h2c_port)),
            label: "nginx, 1 worker, `return 200`".into(),
        });
    }
    let (process, addr) = start_backend()?;
    Ok(Backend {
        pids: vec![process.pid()],
        _process: process,
        h1: addr,
        h2c: addr,
        label: "hyper, 1 runtime thread (this binary)".into(),
    })
}

/// Rounds, run length and warm-up: `QUICK=1` for a short look, `ROUNDS=N` to override.
fn plan() -> (usize, Duration, Duration) {
    let (rounds, length, warmup) = if quick() {
        (2, Duration::from_secs(2), Duration::from_millis(500))
    } else {
        (5, Duration::from_secs(5), Duration::from_secs(1))
    };
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(rounds);
    (rounds, length, warmup)
}

/// The whole bench. Returns the exit code; child processes are stopped before it returns.
fn bench() -> i32 {
    let (rounds, length, warmup) = plan();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "ss12000-proxy bench: {cores} cores (1-min load average before: {}; anything else running skews the numbers); load generator: 1 runtime thread in the bench process",
        load_average()
    );

    let (dir, fed) = match federation() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bench: {e}");
            return 1;
        }
    };
    let issuers = dir.path().join("issuers.pem");
    if let Err(e) = issuer_bundle(&fed)
        .and_then(|pem| std::fs::write(&issuers, pem).map_err(|e| format!("issuers.pem: {e}")))
    {
        eprintln!("bench: {e}");
        return 1;
    }
    let backend = match start_any_backend(dir.path()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench: backend: {e}");
            return 1;
        }
    };
    println!("backend: {}", backend.label);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(LOADGEN_THREAD)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: tokio runtime: {e}");
            return 1;
        }
    };

    let mut problems = Vec::new();
    let mut proxy_failed = false;
    // Everything started is kept here and stopped at the end.
    let mut proxies = Vec::new();
    let mut others: Vec<Process> = Vec::new();
    let mut nginx_prefixes = Vec::new();
    // HTTP/1.1 subjects and HTTP/2 subjects.
    let mut h1 = Vec::new();
    let mut h2 = Vec::new();

    for http2 in [false, true] {
        let (list, backend_addr, suffix) = if http2 {
            (&mut h2, backend.h2c, ", h2")
        } else {
            (&mut h1, backend.h1, "")
        };
        let plain = Target::parse(&format!("http://{backend_addr}/v2/persons/1"))
            .and_then(|t| Client::new(t, None, http2));
        match plain {
            Ok(client) => list.push(Subject::new(
                Kind::Direct,
                format!(
                    "(a) backend direct{}",
                    if http2 { ", h2c" } else { ", HTTP" }
                ),
                client,
                backend.pids.clone(),
            )),
            Err(e) => problems.push(format!("(a) backend direct: {e}")),
        }
        match start_proxy(dir.path(), &fed, backend_addr, http2) {
            Ok(proxy) => {
                match mtls_client(&fed, proxy.addr, "school-client", http2) {
                    Ok(client) => list.push(Subject::new(
                        Kind::Proxy,
                        format!("(b) ss12000-proxy{suffix}"),
                        client,
                        vec![proxy.process.pid()],
                    )),
                    Err(e) => {
                        problems.push(format!("(b) ss12000-proxy: load generator: {e}"));
                        proxy_failed = true;
                    }
                }
                proxies.push(proxy);
            }
            Err(e) => {
                problems.push(format!("(b) ss12000-proxy{suffix} did not start: {e}"));
                proxy_failed = true;
            }
        }
        match find_nginx() {
            None => problems.push(
                "(c) skipped: nginx is not installed; install it with `apt-get install nginx-light`"
                    .into(),
            ),
            Some(nginx) => {
                let prefix = dir.path().join(format!("nginx-front{}", u8::from(http2)));
                let started = free_port().and_then(|port| {
                    let servers = nginx_front_end(&fed, &issuers, backend.h1, port, http2)?;
                    start_nginx(&nginx, &prefix, "auto", port, &servers)
                });
                match started.and_then(|n| {
                    mtls_client(&fed, n.addr, "school-client", http2).map(|c| (n, c))
                }) {
                    Ok((n, client)) => {
                        let mut pids = vec![n.process.pid()];
                        pids.extend(&n.workers);
                        let label = format!("(c) nginx, {} workers{suffix}", n.workers.len());
                        list.push(Subject::new(Kind::Nginx, label, client, pids));
                        nginx_prefixes.push((n.addr, n.prefix.clone()));
                        others.push(n.process);
                    }
                    Err(e) => problems.push(format!("(c) nginx{suffix}: {e}")),
                }
            }
        }
        match find_haproxy() {
            None => problems.push(
                "(d) skipped: HAProxy is not installed; install it with `apt-get install haproxy`"
                    .into(),
            ),
            Some(haproxy) => {
                let haproxy_dir = dir.path().join(format!("haproxy{}", u8::from(http2)));
                let target = if http2 { backend.h2c } else { backend.h1 };
                match start_haproxy(&haproxy, &haproxy_dir, &fed, &issuers, target, http2).and_then(
                    |(p, addr)| mtls_client(&fed, addr, "school-client", http2).map(|c| (p, c)),
                ) {
                    Ok((process, client)) => {
                        let label = format!("(d) haproxy, 2 threads{suffix}");
                        list.push(Subject::new(
                            Kind::Haproxy,
                            label,
                            client,
                            vec![process.pid()],
                        ));
                        others.push(process);
                    }
                    Err(e) => problems.push(format!("(d) haproxy{suffix}: {e}")),
                }
            }
        }
    }

    // Every subject must answer one request before it is measured, and the TLS ones must
    // refuse a client the federation does not list (else the comparison is meaningless).
    for list in [&mut h1, &mut h2] {
        list.retain(|subject| match check(&runtime, &fed, &subject.client) {
            Ok(()) => true,
            Err(e) => {
                problems.push(format!("{}: not measured: {e}", subject.label));
                if subject.kind == Kind::Proxy {
                    proxy_failed = true;
                }
                false
            }
        });
    }

    println!(
        "each phase: {:.0} s runs, the subjects alternating over {rounds} rounds after {:.1} s warm-up each; throughput and new connections: {CONCURRENCY} workers, one request in flight each",
        length.as_secs_f64(),
        warmup.as_secs_f64()
    );
    let keep_alive = Reuse::KeepAlive;
    for subject in h1.iter().chain(&h2) {
        measure(&runtime, subject, CONCURRENCY, warmup, keep_alive);
    }
    for _ in 0..rounds {
        for subject in h1.iter_mut().chain(h2.iter_mut()) {
            let run = measure(&runtime, subject, CONCURRENCY, length, keep_alive);
            subject.loaded.push(run);
        }
    }
    for _ in 0..rounds {
        for subject in &mut h1 {
            let run = measure(&runtime, subject, 1, length, keep_alive);
            subject.single.push(run);
        }
    }
    for _ in 0..rounds {
        for subject in h1.iter_mut().filter(|s| s.kind != Kind::Direct) {
            let run = measure(&runtime, subject, CONCURRENCY, length, Reuse::NewConnection);
            subject.fresh.push(run);
        }
    }
    for subject in h1.iter_mut().filter(|s| s.kind != Kind::Direct) {
        let pids = subject.live_pids();
        subject.idle = Some(idle_memory(
            &runtime,
            &subject.client,
            &pids,
            IDLE_CONNECTIONS,
        ));
    }

    print_report(&h1, &h2);

    for proxy in &proxies {
        let lines = proxy.lines_after_start.load(Ordering::Relaxed);
        if lines > 100 {
            println!(
                "note: the proxy logged {lines} lines during the run (access log on?); set {PROXY_LOG_ENV} to quieten it. Last lines:\n{}",
                tail_text(&proxy.tail)
            );
        }
    }
    for (addr, prefix) in &nginx_prefixes {
        let log = std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("[error]") || l.contains("[crit]") || l.contains("[alert]"))
            .take(3)
            .collect();
        if !errors.is_empty() {
            println!("nginx ({addr}) error.log: {}", errors.join(" | "));
        }
    }
    for proxy in &mut proxies {
        if let Some(status) = proxy.process.exited() {
            problems.push(format!(
                "(b) ss12000-proxy exited during the run ({status}). stderr:\n{}",
                tail_text(&proxy.tail)
            ));
            proxy_failed = true;
        }
    }
    for problem in &problems {
        println!("{problem}");
    }
    drop(others);
    drop(proxies);
    drop(backend);
    drop(dir);
    if proxy_failed {
        eprintln!("bench: FAILED: ss12000-proxy could not be measured (see above)");
        1
    } else {
        0
    }
}

/// One GET must succeed; for https, a client the federation does not list must fail.
fn check(
    runtime: &tokio::runtime::Runtime,
    fed: &TestFederation,
    client: &Client,
) -> Result<(), String> {
    probe(runtime, client)?;
    let target = client.target();
    if !target.https {
        return Ok(());
    }
    let host = target
        .host
        .parse()
        .map_err(|e| format!("{}: {e}", target.host))?;
    let unlisted = mtls_client(
        fed,
        SocketAddr::new(host, target.port),
        "unlisted-client",
        client.http2(),
    )?;
    match probe(runtime, &unlisted) {
        Ok(()) => Err("it answered a client the federation does not list (unlisted-client)".into()),
        Err(_) => Ok(()),
    }
}

/// One table row per subject for the runs `runs` picks, with its per-round rates.
fn print_table(title: &str, subjects: &[Subject], runs: impl Fn(&Subject) -> &[Run], unit: &str) {
    println!();
    println!("{title}");
    println!(
        "  {:<34} {:>10} {:>8} {:>8} {:>7} {:>7} {:>6}   per round",
        "", unit, "p50 ms", "p99 ms", "srv us", "gen us", "errors"
    );
    for subject in subjects {
        let runs = runs(subject);
        if runs.is_empty() {
            continue;
        }
        let folded = summary(runs);
        let r = &folded.report;
        let rounds: Vec<String> = runs
            .iter()
            .map(|run| format!("{:.0}", run.report.per_second()))
            .collect();
        println!(
            "  {:<34} {:>10.0} {:>8} {:>8} {:>7.1} {:>7.1} {:>6}   {}",
            subject.label,
            r.per_second(),
            ms(r.percentile_ms(0.50)),
            ms(r.percentile_ms(0.99)),
            folded.server_us,
            folded.loadgen_us,
            r.errors,
            rounds.join(" / "),
        );
        if let Some((message, n)) = r.top_error() {
            println!("      most frequent error (x{n}): {message}");
        }
        if r.reconnects > 0 {
            println!(
                "      {} connections closed by the server and reopened",
                r.reconnects
            );
        }
    }
}

/// The proxy against the better of its rivals in each round: the median of per-round
/// throughput ratios, the per-round ratios, and the ratio by server CPU per request.
struct Versus {
    median: f64,
    rounds: Vec<f64>,
    by_cpu: f64,
    p99_ratio: f64,
}

fn versus(subjects: &[Subject], runs: impl Fn(&Subject) -> &[Run]) -> Option<Versus> {
    let proxy = subjects.iter().find(|s| s.kind == Kind::Proxy)?;
    let rivals: Vec<&Subject> = subjects.iter().filter(|s| s.kind.is_rival()).collect();
    if rivals.is_empty() || runs(proxy).is_empty() {
        return None;
    }
    let mut ratios = Vec::new();
    let mut p99s = Vec::new();
    for (round, mine) in runs(proxy).iter().enumerate() {
        let theirs: Vec<&Run> = rivals.iter().filter_map(|r| runs(r).get(round)).collect();
        let best = theirs
            .iter()
            .map(|r| r.report.per_second())
            .fold(0.0, f64::max);
        let best_p99 = theirs
            .iter()
            .map(|r| r.report.percentile_ms(0.99))
            .fold(f64::INFINITY, f64::min);
        ratios.push(100.0 * mine.report.per_second() / best);
        p99s.push(mine.report.percentile_ms(0.99) / best_p99);
    }
    let proxy_us = summary(runs(proxy)).server_us;
    let best_us = rivals
        .iter()
        .map(|r| summary(runs(r)).server_us)
        .fold(f64::INFINITY, f64::min);
    Some(Versus {
        median: median(ratios.clone()),
        rounds: ratios,
        by_cpu: 100.0 * best_us / proxy_us,
        p99_ratio: median(p99s),
    })
}

/// The tables, idle memory and the targets.
fn print_report(h1: &[Subject], h2: &[Subject]) {
    print_table(
        &format!("HTTP/1.1 keep-alive, {CONCURRENCY} connections:"),
        h1,
        |s| &s.loaded,
        "req/s",
    );
    print_table(
        "HTTP/1.1 keep-alive, 1 connection (per-request latency):",
        h1,
        |s| &s.single,
        "req/s",
    );
    print_table(
        &format!(
            "new mutual-TLS connections, {CONCURRENCY} workers (TCP + full TLS 1.3 handshake, P-256 client certificate, no resumption, one GET):"
        ),
        h1,
        |s| &s.fresh,
        "conn/s",
    );
    print_table(
        &format!("HTTP/2 keep-alive, {CONCURRENCY} connections:"),
        h2,
        |s| &s.loaded,
        "req/s",
    );
    println!(
        "srv us: server-side CPU per request (or per connection): the backend for (a), the front end alone for (b)-(d); gen us: the load generator's"
    );
    println!("{IDLE_CONNECTIONS} idle mTLS connections (one request each):");
    for subject in h1 {
        let Some(memory) = &subject.idle else {
            continue;
        };
        println!(
            "  {:<32} RSS {:.1} MB -> {:.1} MB ({:.1} KiB per connection; {} opened, {} still open{}){}",
            subject.label,
            mb(memory.before_kib),
            mb(memory.after_kib),
            memory.after_kib.saturating_sub(memory.before_kib) as f64
                / memory.opened.saturating_sub(1).max(1) as f64,
            memory.opened,
            memory.still_open,
            match memory.errors.first() {
                Some(first) => format!("; {} failed, first: {first}", memory.errors.len()),
                None => String::new(),
            },
            if subject.kind == Kind::Nginx {
                " [sum over master and workers]"
            } else {
                ""
            }
        );
    }

    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    let list = |values: &[f64]| {
        values
            .iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!();
    println!("targets (the proxy against the better of nginx and HAProxy in each round):");
    for (what, subjects, runs) in [
        (
            "HTTP/1.1 keep-alive throughput",
            h1,
            (|s: &Subject| s.loaded.as_slice()) as fn(&Subject) -> &[Run],
        ),
        ("new mTLS connections per second", h1, |s| &s.fresh),
        ("HTTP/2 throughput", h2, |s| &s.loaded),
    ] {
        let Some(v) = versus(subjects, runs) else {
            println!("  {what}: not measured");
            continue;
        };
        println!(
            "  {what}: {:.1} % (target >= 110 %: {}) [rounds {}]; by server CPU per request: {:.1} %; p99 latency {:.2}x theirs (target <= 1: {})",
            v.median,
            verdict(v.median >= 110.0),
            list(&v.rounds),
            v.by_cpu,
            v.p99_ratio,
            verdict(v.p99_ratio <= 1.0),
        );
    }
    let find = |kind: Kind| h1.iter().find(|s| s.kind == kind);
    if let (Some(proxy), Some(direct)) = (find(Kind::Proxy), find(Kind::Direct)) {
        let added = median(
            proxy
                .single
                .iter()
                .zip(&direct.single)
                .map(|(p, d)| p.report.percentile_ms(0.5) - d.report.percentile_ms(0.5))
                .collect(),
        );
        println!(
            "  proxy added p50 latency vs direct, 1 connection: {added:.3} ms (target <= 0.3 ms: {})",
            verdict(added <= 0.3),
        );
    }
    if let Some(memory) = find(Kind::Proxy).and_then(|p| p.idle.as_ref()) {
        let all_open = memory.still_open == IDLE_CONNECTIONS;
        println!(
            "  proxy RSS with {IDLE_CONNECTIONS} idle connections: {:.1} MB (target <= 100 MB: {}{})",
            mb(memory.after_kib),
            verdict(all_open && mb(memory.after_kib) <= 100.0),
            if all_open {
                String::new()
            } else {
                format!(
                    "; only {} of {IDLE_CONNECTIONS} connections were still open",
                    memory.still_open
                )
            }
        );
    }
}
