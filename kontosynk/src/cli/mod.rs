//! Command-line plumbing of `kontosynk`: the subcommand list, logging, errors and exit codes.
//!
//! To add a subcommand, write `src/cli/NAME.rs` with
//! `#[derive(clap::Args)] pub struct Args { … }` (its doc comment is the subcommand's help)
//! and `impl Args { pub fn run(self) -> Result<std::process::ExitCode, CliError> }`, then add
//! one line `Variant => NAME,` to the `subcommands!` list below.
//!
//! Exit codes: 0 success, 1 the command ran and found a problem (e.g. an unhealthy server),
//! 2 usage or operational error (bad flags, unreadable files, no metadata).

use std::process::ExitCode;

use clap::Parser;

pub mod federation;

/// Declares the subcommand modules, the `Command` enum and its dispatch from one list.
macro_rules! subcommands {
    ($($variant:ident => $module:ident,)*) => {
        $(pub mod $module;)*

        /// The subcommands.
        #[derive(clap::Subcommand, Debug)]
        pub enum Command {
            $($variant($module::Args),)*
        }

        impl Command {
            fn run(self) -> Result<ExitCode, CliError> {
                match self {
                    $(Command::$variant(args) => args.run(),)*
                }
            }
        }
    };
}

subcommands! {
    Health => health,
    Token => token,
    Push => push,
    Egil => egil,
    Sync => sync,
    Quickstart => quickstart,
}

/// Mutual-TLS client for FedTLS federations (Skolfederation Moa).
#[derive(Parser, Debug)]
#[command(name = "kontosynk", version, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    kontosynk health --metadata https://fed.skolfederation.se/trial/md/kontosynk.jws \\\n      \
    --jwks moa-trial.jwks --cert client.pem --key client.key --tag egilv1\n\n\
    Exit codes: 0 success, 1 a check failed, 2 usage or operational error.\n\
    Logging: RUST_LOG=debug (text on stderr); KONTOSYNK_LOG_FORMAT=json for JSON lines.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A failure to report as one `error:` line.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// An operational error (exit 2).
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            code: 2,
        }
    }
}

/// Parses the command line, runs the subcommand and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    fedtls::output::exit_quietly_on_closed_stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    match cli.command.run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error.message);
            ExitCode::from(error.code)
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`, with the metadata store's
/// refusals at `error` only: a command that cannot use the metadata says so in its own
/// `error:` line); JSON lines when `KONTOSYNK_LOG_FORMAT=json`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,fedtls::store=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = std::env::var("KONTOSYNK_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A multi-threaded tokio runtime for a subcommand.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_an_environment_variable() {
        let missing = kontosynk_framework::cli::flags_without_env(&super::Cli::command());
        assert!(missing.is_empty(), "flags without env: {missing:?}");
    }
}
