//! `kontosynk health`: check every server of the federation.

use std::process::ExitCode;

use super::CliError;

/// Check the health of every server in the federation metadata (TCP, mutual TLS, pins,
/// certificate expiry, host name, HTTP).
#[derive(clap::Args, Debug)]
pub struct Args {}

impl Args {
    /// Runs the checks.
    pub fn run(self) -> Result<ExitCode, CliError> {
        let _runtime = super::runtime()?;
        Err(CliError::failed("kontosynk health: not implemented yet"))
    }
}
