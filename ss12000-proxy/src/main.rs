//! `ss12000-proxy --config FILE`: the FedTLS gateway.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kontosynk_server::cli::{
    LogFormat as ServerLogFormat, ServeSettings, init_logging, parse_args,
};
use kontosynk_server::{Limits, Policy, shutdown};
use ss12000_proxy::config::{Config, LogFormat};
use ss12000_proxy::forward::Forwarder;

#[derive(Parser)]
#[command(
    name = "ss12000-proxy",
    version,
    about = "A FedTLS gateway: pinned mutual TLS in front of an existing API",
    long_about = "A FedTLS gateway: pinned mutual TLS in front of an existing API.\n\n\
Federation members connect with their client certificate; the proxy checks its pin against the \
signed federation metadata (kept fresh in the background, refused once expired) and forwards \
the request to the backend with the caller's identity in X-FedTLSAuth-* headers, which clients \
can never set themselves. A drop-in replacement for the bowness reverse proxy.\n\n\
SIGTERM/Ctrl-C drains in-flight requests; SIGHUP reloads the certificate.\n\
Exit codes: 0 clean shutdown, 1 configuration or startup error, 2 usage error.",
    after_help = "Example: ss12000-proxy --config /etc/ss12000-proxy/ss12000-proxy.toml\n\
See ss12000-proxy.example.toml for every key; SS12000_PROXY_<TABLE>__<KEY> variables override them."
)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, value_name = "FILE", env = "SS12000_PROXY_CONFIG")]
    config: PathBuf,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli: Cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let config = match Config::load(&cli.config, std::env::vars()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    if cli.check {
        println!("{}: configuration OK", cli.config.display());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

async fn run(config: Config) -> Result<(), String> {
    init_logging(match config.log_format {
        LogFormat::Text => ServerLogFormat::Text,
        LogFormat::Json => ServerLogFormat::Json,
    });
    let limits = &config.limits;
    let backend_timeout = seconds(limits.backend_timeout);
    let client =
        ss12000_proxy::backend::client(&config.backend_tls, config.backend_h2c, backend_timeout)?;
    let forwarder = Arc::new(Forwarder::new(
        client,
        &config.backend,
        config.headers.clone(),
        backend_timeout,
    )?);
    let settings = ServeSettings {
        listen: config.listen,
        cert: config.tls.cert.clone(),
        key: config.tls.key.clone(),
        metadata: config.federation.metadata.clone(),
        jwks: config.federation.jwks.clone(),
        cache: config.federation.cache.clone(),
        iss: config.federation.iss.clone(),
        admin: config.admin,
        policy: Policy {
            client_tags: config.access.client_tags.clone(),
            organization_ids: config.access.organization_ids.clone(),
            entity_ids: config.access.entity_ids.clone(),
            scopes: config.access.scopes.clone(),
        },
        require_issuer_chain: config.access.require_issuer_chain,
        rate_limit: limits.rate_limit,
        limits: Limits {
            handshake_timeout: seconds(limits.handshake_timeout),
            header_read_timeout: seconds(limits.header_timeout),
            idle_timeout: seconds(limits.idle_timeout),
            request_timeout: seconds(limits.request_timeout),
            max_body: limits.max_body,
            max_connections: limits.max_connections,
            ..Limits::default()
        },
        trusted_proxies: config
            .trusted_proxies
            .iter()
            .map(|p| p.parse())
            .collect::<Result<_, _>>()?,
    };
    let prepared = settings.prepare().await?;
    let addr = prepared.server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, backend = %config.backend, "ss12000-proxy listening");
    prepared
        .server
        .serve(
            move |request| Arc::clone(&forwarder).forward(request),
            shutdown::signal(),
        )
        .await;
    Ok(())
}
