//! ss12000-proxy against its baselines, measured in one run on this machine, against one
//! backend:
//!
//! - (a) the backend directly (plain HTTP/1.1 keep-alive);
//! - (b) through ss12000-proxy (mutual TLS keep-alive, client `school-client`, server pinned
//!   to `school-server`);
//! - (c) through nginx doing mutual TLS (`ssl_verify_client on` against the federation's
//!   issuer certificates) and `proxy_pass` with upstream keep-alive, once with
//!   `worker_processes auto` (2 workers on 2 cores, the comparison that counts: the proxy's
//!   multi-threaded tokio runtime also uses every core) and once with `worker_processes 1`.
//!
//! Throughput: 32 keep-alive connections, one request in flight each, GETs back to back.
//! Latency: 1 connection, so the percentiles are per-request cost, not queueing. Every
//! target gets a warm-up, then the targets alternate over two rounds so drift hits all alike.
//! Then 1,000 idle mutual-TLS connections (one request each) are held open against the proxy
//! and nginx, and their resident memory read from `/proc/PID/status`.
//!
//! Targets: proxy throughput ≥ 100 % of nginx (`auto`); proxy p50 latency ≤ direct + 0.3 ms;
//! proxy RSS ≤ 100 MB with 1,000 idle connections. They are printed, never asserted.
//!
//! The backend is this bench binary re-executed as a separate process (one tokio runtime
//! thread, a ~200-byte JSON answer), so its CPU does not mix with the load generator's. The
//! load generator (`common/loadgen.rs`, also the `loadgen` example) runs in this process on
//! one runtime thread. Everything shares the machine's cores, so each row also shows the
//! server side's CPU time per request, which does not depend on who else is busy.
//!
//! Run: `cargo bench -p ss12000-proxy --bench proxy` (`QUICK=1` for 2 s runs). Needs nginx
//! on PATH for (c) (`apt-get install nginx-light`); without it (c) is skipped. Exits 1 when
//! ss12000-proxy does not start or does not answer.

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
use loadgen::{Client, Connection, Report, Target, TlsOptions};

/// Set in the environment of the re-executed bench binary that serves as the backend.
const BACKEND_ENV: &str = "SS12000_PROXY_BENCH_BACKEND";

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
    let path = dir.join("proxy.toml");
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

/// Starts nginx with `worker_processes` = `workers` ("auto" or a number) as mutual-TLS
/// reverse proxy in front of `backend`, with everything under `prefix`.
fn start_nginx(
    nginx: &Path,
    prefix: &Path,
    fed: &TestFederation,
    backend: SocketAddr,
    workers: &str,
) -> Result<NginxProcess, String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    std::fs::create_dir_all(prefix.join("tmp")).map_err(|e| io(prefix, e))?;
    let issuers = prefix.join("issuers.pem");
    std::fs::write(&issuers, issuer_bundle(fed)?).map_err(|e| io(&issuers, e))?;
    let server = fed
        .party("school-server")
        .ok_or("the test federation has no school-server")?;
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
    let port = free_port()?;
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
    upstream backend {{
        server {backend};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
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
}}
"#,
        cert = server.cert.display(),
        key = server.key.display(),
        issuers = issuers.display(),
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
    let mut process = Process {
        name: format!("nginx ({workers})"),
        child,
        terminate_first: true,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let logs = || {
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "{}{}",
            read(prefix.join("stderr.log")),
            read(prefix.join("error.log"))
        )
    };
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.exited() {
            return Err(format!("nginx exited ({status}):\n{}", logs()));
        }
        if StdTcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() > until {
            return Err(format!(
                "nginx did not listen on {addr} within 10 s:\n{}",
                logs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Wait for the workers to be forked, then remember them for CPU and memory readings.
    let expected = workers
        .parse()
        .unwrap_or_else(|_| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
    NginxAuto,
    /// (c) nginx, `worker_processes 1`.
    NginxOne,
}

/// One thing measured: a URL, a client for it and the server processes behind it.
struct Subject {
    kind: Kind,
    label: String,
    client: Arc<Client>,
    /// Server-side processes whose CPU time is charged to this subject.
    pids: Vec<u32>,
    /// Throughput runs (concurrency [`CONCURRENCY`]), one per round.
    loaded: Vec<Run>,
    /// Latency runs (concurrency 1), one per round.
    single: Vec<Run>,
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
            idle: None,
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
) -> Run {
    let server_before = cpu_ticks(&subject.pids);
    let loadgen_before = thread_cpu_ticks(LOADGEN_THREAD);
    let report = runtime.block_on(loadgen::run(
        Arc::clone(&subject.client),
        concurrency,
        length,
    ));
    Run {
        report,
        server_ticks: cpu_ticks(&subject.pids).saturating_sub(server_before),
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
/// `school-server`.
fn mtls_client(fed: &TestFederation, addr: SocketAddr, party: &str) -> Result<Client, String> {
    let client = fed
        .party(party)
        .ok_or_else(|| format!("the test federation has no {party}"))?;
    let server = fed
        .party("school-server")
        .ok_or("the test federation has no school-server")?;
    let tls = loadgen::tls_config(&TlsOptions {
        identity: Some((&client.cert, &client.key)),
        server_pin: server.pin,
        http2: false,
    })?;
    Client::new(
        Target::parse(&format!("https://{addr}/v2/persons/1"))?,
        Some(tls),
        false,
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

/// The whole bench. Returns the exit code; child processes are stopped before it returns.
fn bench() -> i32 {
    let (length, warmup, rounds) = if quick() {
        (Duration::from_secs(2), Duration::from_millis(500), 2)
    } else {
        (Duration::from_secs(5), Duration::from_secs(1), 3)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "ss12000-proxy bench: {cores} cores (1-min load average before: {}; anything else running skews the numbers); load generator: 1 runtime thread in the bench process; backend: 1 runtime thread in its own process",
        load_average()
    );

    let (dir, fed) = match federation() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bench: {e}");
            return 1;
        }
    };
    let (backend, backend_addr) = match start_backend() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench: {e}");
            return 1;
        }
    };
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

    let mut subjects = Vec::new();
    let mut problems = Vec::new();
    let mut proxy_failed = false;

    match Target::parse(&format!("http://{backend_addr}/v2/persons/1"))
        .and_then(|t| Client::new(t, None, false))
    {
        Ok(client) => subjects.push(Subject::new(
            Kind::Direct,
            "(a) backend direct, HTTP",
            client,
            vec![backend.pid()],
        )),
        Err(e) => problems.push(format!("(a) backend direct: {e}")),
    }

    let proxy = match start_proxy(dir.path(), &fed, backend_addr) {
        Ok(proxy) => {
            match mtls_client(&fed, proxy.addr, "school-client") {
                Ok(client) => subjects.push(Subject::new(
                    Kind::Proxy,
                    "(b) ss12000-proxy, mTLS",
                    client,
                    vec![proxy.process.pid()],
                )),
                Err(e) => {
                    problems.push(format!("(b) ss12000-proxy: load generator: {e}"));
                    proxy_failed = true;
                }
            }
            Some(proxy)
        }
        Err(e) => {
            problems.push(format!("(b) ss12000-proxy did not start: {e}"));
            proxy_failed = true;
            None
        }
    };

    let mut nginxes = Vec::new();
    match find_nginx() {
        None => problems.push(
            "(c) skipped: nginx is not installed; install it with `apt-get install nginx-light` (or `nginx`)"
                .into(),
        ),
        Some(nginx) => {
            for (kind, workers) in [(Kind::NginxAuto, "auto"), (Kind::NginxOne, "1")] {
                let prefix = dir.path().join(format!("nginx-{workers}"));
                match start_nginx(&nginx, &prefix, &fed, backend_addr, workers)
                    .and_then(|n| mtls_client(&fed, n.addr, "school-client").map(|c| (n, c)))
                {
                    Ok((n, client)) => {
                        let label = match kind {
                            Kind::NginxAuto => {
                                format!("(c) nginx mTLS, auto = {} workers", n.workers.len())
                            }
                            _ => "(c) nginx mTLS, 1 worker".to_owned(),
                        };
                        let mut pids = vec![n.process.pid()];
                        pids.extend(&n.workers);
                        subjects.push(Subject::new(kind, label, client, pids));
                        nginxes.push(n);
                    }
                    Err(e) => problems.push(format!("(c) nginx worker_processes {workers}: {e}")),
                }
            }
        }
    }

    // Every subject must answer one request before it is measured, and the TLS ones must
    // refuse a client the federation does not list (else the comparison is meaningless).
    subjects.retain(|subject| match check(&runtime, &fed, &subject.client) {
        Ok(()) => true,
        Err(e) => {
            problems.push(format!("{}: not measured: {e}", subject.label));
            if subject.kind == Kind::Proxy {
                proxy_failed = true;
            }
            false
        }
    });

    println!(
        "throughput: {CONCURRENCY} keep-alive connections (one request in flight each); latency: 1 connection; HTTP/1.1 GET; {:.0} s runs, targets alternating over {rounds} rounds, after {:.1} s warm-up each",
        length.as_secs_f64(),
        warmup.as_secs_f64()
    );
    for subject in &subjects {
        measure(&runtime, subject, CONCURRENCY, warmup);
    }
    for _ in 0..rounds {
        for subject in &mut subjects {
            let run = measure(&runtime, subject, CONCURRENCY, length);
            subject.loaded.push(run);
        }
    }
    for _ in 0..rounds {
        for subject in &mut subjects {
            let run = measure(&runtime, subject, 1, length);
            subject.single.push(run);
        }
    }
    for subject in &mut subjects {
        let pids = match subject.kind {
            Kind::Direct => continue,
            Kind::Proxy => subject.pids.clone(),
            Kind::NginxAuto | Kind::NginxOne => {
                // Workers may have been replaced; read the live set.
                let master = subject.pids[0];
                let mut pids = vec![master];
                pids.extend(children_of(master));
                pids
            }
        };
        subject.idle = Some(idle_memory(
            &runtime,
            &subject.client,
            &pids,
            IDLE_CONNECTIONS,
        ));
    }

    print_report(&subjects);

    if let Some(proxy) = &proxy {
        let lines = proxy.lines_after_start.load(Ordering::Relaxed);
        if lines > 100 {
            println!(
                "note: the proxy logged {lines} lines during the run (access log on?); set {PROXY_LOG_ENV} to quieten it. Last lines:\n{}",
                tail_text(&proxy.tail)
            );
        }
    }
    for nginx in &nginxes {
        let log = std::fs::read_to_string(nginx.prefix.join("error.log")).unwrap_or_default();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("[error]") || l.contains("[crit]") || l.contains("[alert]"))
            .take(3)
            .collect();
        if !errors.is_empty() {
            println!("nginx ({}) error.log: {}", nginx.addr, errors.join(" | "));
        }
    }
    let mut proxy = proxy;
    if let Some(p) = proxy.as_mut()
        && let Some(status) = p.process.exited()
    {
        problems.push(format!(
            "(b) ss12000-proxy exited during the run ({status}). stderr:\n{}",
            tail_text(&p.tail)
        ));
        proxy_failed = true;
    }
    for problem in &problems {
        println!("{problem}");
    }
    drop(nginxes);
    drop(proxy);
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
    let unlisted = mtls_client(fed, SocketAddr::new(host, target.port), "unlisted-client")?;
    match probe(runtime, &unlisted) {
        Ok(()) => Err("it answered a client the federation does not list (unlisted-client)".into()),
        Err(_) => Ok(()),
    }
}

/// The table, the per-round figures, idle memory and the targets.
fn print_report(subjects: &[Subject]) {
    println!();
    println!(
        "{:<34} {:>10} {:>7} {:>7} {:>6} {:>6} {:>6} | {:>9} {:>7} {:>7} {:>6}",
        "",
        format!("c={CONCURRENCY} req/s"),
        "p50 ms",
        "p99 ms",
        "srv us",
        "gen us",
        "errors",
        "c=1 req/s",
        "p50 ms",
        "p99 ms",
        "srv us",
    );
    for subject in subjects {
        let loaded = summary(&subject.loaded);
        let single = summary(&subject.single);
        let (l, s) = (&loaded.report, &single.report);
        println!(
            "{:<34} {:>10.0} {:>7} {:>7} {:>6.1} {:>6.1} {:>6} | {:>9.0} {:>7} {:>7} {:>6.1}",
            subject.label,
            l.per_second(),
            ms(l.percentile_ms(0.50)),
            ms(l.percentile_ms(0.99)),
            loaded.server_us,
            loaded.loadgen_us,
            l.errors + s.errors,
            s.per_second(),
            ms(s.percentile_ms(0.50)),
            ms(s.percentile_ms(0.99)),
            single.server_us,
        );
        for report in [l, s] {
            if let Some((message, n)) = report.top_error() {
                println!("    most frequent error (x{n}): {message}");
            }
            if report.reconnects > 0 {
                println!(
                    "    {} connections closed by the server and reopened",
                    report.reconnects
                );
            }
        }
    }
    println!(
        "srv us: server-side CPU time per request (the backend for (a), the proxy for (b), nginx master+workers for (c); the backend's CPU is not in (b) and (c)); gen us: the load generator's"
    );
    println!("per round:");
    for subject in subjects {
        let rates: Vec<String> = subject
            .loaded
            .iter()
            .map(|r| format!("{:.0}", r.report.per_second()))
            .collect();
        let p50s: Vec<String> = subject
            .single
            .iter()
            .map(|r| ms(r.report.percentile_ms(0.5)))
            .collect();
        println!(
            "  {:<32} c={CONCURRENCY} req/s {}; c=1 p50 ms {}",
            subject.label,
            rates.join(" / "),
            p50s.join(" / ")
        );
    }
    println!("{IDLE_CONNECTIONS} idle mTLS connections (one request each):");
    for subject in subjects {
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
            if subject.kind == Kind::Proxy {
                ""
            } else {
                " [sum over master and workers]"
            }
        );
    }

    // Targets, from paired rounds so that drift between rounds cancels out.
    let find = |kind: Kind| subjects.iter().find(|s| s.kind == kind);
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    let Some(proxy) = find(Kind::Proxy) else {
        return;
    };
    println!();
    for (kind, name) in [
        (Kind::NginxAuto, "nginx worker_processes auto"),
        (Kind::NginxOne, "nginx worker_processes 1"),
    ] {
        let Some(nginx) = find(kind) else { continue };
        let ratios: Vec<f64> = proxy
            .loaded
            .iter()
            .zip(&nginx.loaded)
            .map(|(p, n)| 100.0 * p.report.per_second() / n.report.per_second())
            .collect();
        let ratio = median(ratios.clone());
        let capacity = 100.0 * summary(&nginx.loaded).server_us / summary(&proxy.loaded).server_us;
        let marker = if kind == Kind::NginxAuto {
            format!(" (target >= 100 %: {})", verdict(ratio >= 100.0))
        } else {
            String::new()
        };
        println!(
            "proxy throughput vs {name}: {ratio:.1} %{marker} [median of rounds {}]; by server CPU per request: {capacity:.1} %",
            ratios
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    if let Some(direct) = find(Kind::Direct) {
        let added = |proxy: &[Run], direct: &[Run]| {
            median(
                proxy
                    .iter()
                    .zip(direct)
                    .map(|(p, d)| p.report.percentile_ms(0.5) - d.report.percentile_ms(0.5))
                    .collect(),
            )
        };
        let single = added(&proxy.single, &direct.single);
        println!(
            "proxy added p50 latency vs direct, 1 connection: {single:.3} ms (target <= 0.3 ms: {}); at {CONCURRENCY} connections (mostly queueing): {:.3} ms",
            verdict(single <= 0.3),
            added(&proxy.loaded, &direct.loaded)
        );
    }
    if let Some(memory) = &proxy.idle {
        let all_open = memory.still_open == IDLE_CONNECTIONS;
        println!(
            "proxy RSS with {IDLE_CONNECTIONS} idle connections: {:.1} MB (target <= 100 MB: {}{})",
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
