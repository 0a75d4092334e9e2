//! `loadgen`: the project's closed-loop HTTP load generator, for ss12000-proxy and its peers.
//!
//! Each of `--concurrency` workers owns one keep-alive connection (HTTP/1.1, or one HTTP/2
//! connection with `--http2`) and sends GETs back to back on it; with `--new-connections`
//! every request opens (and closes) its own connection, a full handshake each. Prints requests/s, latency
//! percentiles and errors; `--json` prints one JSON object instead.
//!
//! ```text
//! cargo run --release -p ss12000-proxy --example loadgen -- \
//!     --url https://127.0.0.1:8443/ --cert client.pem --key client.key --pin BASE64 \
//!     --concurrency 32 --duration 10
//! ```

#[path = "../benches/common/loadgen.rs"]
mod loadgen;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fedtls::Pin;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Closed-loop HTTP/1.1 or HTTP/2 keep-alive load generator (mutual TLS, pinned servers)"
)]
struct Args {
    /// URL to GET (`http://` or `https://`).
    #[arg(long)]
    url: String,
    /// Client certificate (PEM, leaf first) for mutual TLS; needs --key.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// The server's SPKI pin (base64 SHA-256, or curl's sha256//BASE64); required for https
    /// (`fedtls pin server.pem` prints it).
    #[arg(long)]
    pin: Option<Pin>,
    /// Workers, each with one connection and one request in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to measure, after every worker has connected.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unmeasured load before the measurement.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Runtime threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// One HTTP/2 connection per worker (ALPN h2 over TLS; prior knowledge over http).
    #[arg(long)]
    http2: bool,
    /// A new connection for every request (TCP, full TLS handshake without resumption,
    /// one GET, close): measures new connections per second instead of keep-alive requests.
    #[arg(long)]
    new_connections: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("loadgen: {message}");
            ExitCode::from(2)
        }
    }
}

fn seconds(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("--{what} {value}: not a duration"))
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let target = loadgen::Target::parse(&args.url)?;
    let duration = seconds(args.duration, "duration")?;
    let warmup = seconds(args.warmup, "warmup")?;
    let tls = if target.https {
        let Some(pin) = args.pin else {
            return Err(
                "an https URL needs --pin with the server's SPKI pin (fedtls pin server.pem)"
                    .into(),
            );
        };
        let identity = match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => None,
        };
        Some(loadgen::tls_config(&loadgen::TlsOptions {
            identity,
            server_pin: pin,
            http2: args.http2,
        })?)
    } else {
        if args.pin.is_some() || args.cert.is_some() {
            return Err("--pin, --cert and --key need an https:// URL".into());
        }
        None
    };
    let client = Arc::new(loadgen::Client::new(target, tls, args.http2)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .thread_name("loadgen")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let reuse = if args.new_connections {
        loadgen::Reuse::NewConnection
    } else {
        loadgen::Reuse::KeepAlive
    };
    let report = runtime.block_on(async {
        if !warmup.is_zero() {
            loadgen::run(Arc::clone(&client), args.concurrency, warmup, reuse).await;
        }
        loadgen::run(Arc::clone(&client), args.concurrency, duration, reuse).await
    });
    if args.json {
        println!(
            "{}",
            report.to_json(client.target(), args.concurrency, args.http2)
        );
    } else {
        println!(
            "{}",
            report.human(client.target(), args.concurrency, args.http2)
        );
    }
    Ok(if report.requests == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
