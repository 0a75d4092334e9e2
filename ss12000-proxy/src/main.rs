//! `ss12000-proxy --config FILE` (or `--bowness-config bowness.yaml`): the FedTLS gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kontosynk_framework::cli::{LogFormat as ServerLogFormat, init_logging, parse_args};
use kontosynk_framework::shutdown;
use ss12000_proxy::config::{Config, LogFormat};

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
From bowness: ss12000-proxy --bowness-config /app/config.yaml (same file, same BWNS_* variables).\n\
See ss12000-proxy.example.toml for every key; SS12000_PROXY_<TABLE>__<KEY> variables override them."
)]
struct Cli {
    /// The TOML configuration file.
    #[arg(
        long,
        value_name = "FILE",
        env = "SS12000_PROXY_CONFIG",
        required_unless_present = "bowness_config",
        conflicts_with = "bowness_config"
    )]
    config: Option<PathBuf>,
    /// A bowness YAML configuration file, read as bowness reads it (BWNS_* variables
    /// included), instead of --config. With --check, prints the equivalent TOML for --config.
    #[arg(long, value_name = "FILE", env = "SS12000_PROXY_BOWNESS_CONFIG")]
    bowness_config: Option<PathBuf>,
    /// Check everything and exit (0 when all is well, 1 naming the first problem): the
    /// configuration, the backend settings, the JWKS, the metadata (fetched and verified),
    /// that the key matches the certificate, and that the metadata lists its pin.
    #[arg(long, env = "SS12000_PROXY_CHECK")]
    check: bool,
}

fn main() -> ExitCode {
    let cli: Cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let (config, path, equivalent_toml) = match load(&cli) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    // Connections are served on their own threads (`threads`); this one accepts them and
    // keeps the metadata fresh.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    if cli.check {
        // With a bowness file, stdout is the equivalent TOML (the results as comments), so
        // `--check --bowness-config bowness.yaml > ss12000-proxy.toml` writes the new file.
        let comment = if let Some(toml) = &equivalent_toml {
            print!("{toml}");
            "# "
        } else {
            ""
        };
        println!("{comment}{}: configuration readable", path.display());
        return match runtime.block_on(ss12000_proxy::check(&config)) {
            Ok(lines) => {
                for line in lines {
                    println!("{comment}{line}");
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(1)
            }
        };
    }
    init_logging(match config.log_format {
        LogFormat::Text => ServerLogFormat::Text,
        LogFormat::Json => ServerLogFormat::Json,
    });
    match runtime.block_on(ss12000_proxy::serve(&config, shutdown::signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// The configuration from `--config` or `--bowness-config`, the file it came from, and for
/// a bowness file the equivalent TOML. A bowness file's warnings go to stderr.
fn load(cli: &Cli) -> Result<(Config, PathBuf, Option<String>), String> {
    if let Some(path) = &cli.bowness_config {
        let migration =
            ss12000_proxy::bowness::load(path, std::env::vars()).map_err(|e| e.to_string())?;
        for warning in &migration.warnings {
            eprintln!("warning: {}: {warning}", path.display());
        }
        return Ok((migration.config, path.clone(), Some(migration.toml)));
    }
    let path = cli
        .config
        .clone()
        .ok_or("--config or --bowness-config is required")?;
    let config = Config::load(&path, std::env::vars()).map_err(|e| e.to_string())?;
    Ok((config, path, None))
}

/// glibc's allocator costs a proxy several percent of its CPU per request (many small,
/// short-lived allocations across threads); mimalloc much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_an_environment_variable() {
        let missing = kontosynk_framework::cli::flags_without_env(&super::Cli::command());
        assert!(missing.is_empty(), "flags without env: {missing:?}");
    }
}
