//! The `fedtls` command line: one module per subcommand, each with clap `Args` and a `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod entity;
mod federation;
mod keys;
mod lint;
mod lookup;
mod pin;
mod source;
mod verify;

/// What a subcommand returns: its exit code, or an error to print as one `error:` line.
pub type CliResult = Result<ExitCode, CliError>;

/// A failure to report on stderr as `error: MESSAGE` with the given exit code.
#[derive(Debug)]
pub struct CliError {
    /// The one-line message (without the `error:` prefix).
    pub message: String,
    /// 1 for a refused input or a failed operation, 2 for usage errors.
    pub code: u8,
}

impl CliError {
    /// An operational failure (exit 1).
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            code: 1,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            code: 2,
        }
    }
}

/// Hands a large value to the operating system instead of freeing it piece by piece: the
/// process is about to exit, and freeing a 5,000-entity index costs several milliseconds.
pub fn exit_without_freeing<T>(value: T) {
    std::mem::forget(value);
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))
}

#[derive(Parser)]
#[command(
    name = "fedtls",
    version,
    about = "Verify, inspect and produce FedTLS / MATF (RFC 9932) federation metadata",
    long_about = "Verify, inspect and produce FedTLS / MATF (RFC 9932) federation metadata.\n\n\
Members use it to check the federation's signed metadata, compute pins of their certificates and \
lint their own metadata before upload; operators use it to sign aggregates; developers use it to \
create a complete local test federation.\n\n\
Exit codes: 0 success, 1 refused input or failed check, 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Verify(verify::Args),
    Lookup(lookup::Args),
    Pin(pin::Args),
    Lint(lint::LintArgs),
    Entity(entity::EntityArgs),
    Thumbprint(keys::ThumbprintArgs),
    Keygen(keys::KeygenArgs),
    Sign(keys::SignArgs),
    Federation(federation::Args),
}

/// Parses the command line, runs the subcommand and maps the outcome to an exit code.
pub fn main() -> ExitCode {
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
    let result: CliResult = match cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Lookup(args) => lookup::run(args),
        Command::Pin(args) => pin::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Entity(args) => entity::run(args),
        Command::Thumbprint(args) => keys::thumbprint(args),
        Command::Keygen(args) => keys::keygen(args),
        Command::Sign(args) => keys::sign(args),
        Command::Federation(args) => federation::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", err.message);
            ExitCode::from(err.code)
        }
    }
}

/// The current time in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    fedtls::verify::unix_now()
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-21T20:51:09Z`).
pub fn rfc3339(unix: i64) -> String {
    fedtls::claims::Rfc3339(unix).to_string()
}
