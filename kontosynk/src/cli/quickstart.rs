//! `kontosynk quickstart`: a whole federation on this machine, end to end, in one command.
//! The scenario itself lives in `kontosynk-testbed` (`tests/`), beside the end-to-end tests
//! that run the same servers, so the client library never builds a server.

use std::path::PathBuf;
use std::process::ExitCode;

use kontosynk_testbed::quickstart::Quickstart;

use super::CliError;

/// Run a whole federation on this machine: servers, sync, token exchange and health check.
///
/// Creates a test federation (three members with certificates and signed metadata), seeds a
/// school's SS 12000 API with a realistic sample in SQLite, starts the SS 12000 API, a GNAP
/// authorization server behind ss12000-proxy and a supplier's server on loopback, syncs the
/// school's data over mutual TLS into DIR/client.sqlite, exchanges a token, writes a health
/// report to DIR/health.html, then stops every server.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    kontosynk quickstart\n  \
    kontosynk quickstart --dir /tmp/moa-demo --persons 2000\n\n\
    Afterwards: open DIR/health.html; query DIR/client.sqlite with sqlite3; run the servers\n\
    yourself with the certificates in DIR/federation (see DIR/federation/federation.json).\n\
    Exit codes: 0 every step worked, 1 a step failed, 2 usage or setup error.")]
pub struct Args {
    /// Where everything goes. Replaced when a previous quickstart made it; refused when it
    /// holds anything else.
    #[arg(long, value_name = "DIR", default_value = "kontosynk-quickstart",
          env = "KONTOSYNK_QUICKSTART_DIR")]
    dir: PathBuf,
    /// How many persons the sample school has (students and teachers).
    #[arg(long, value_name = "N", default_value_t = 500, env = "KONTOSYNK_QUICKSTART_PERSONS",
          value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    persons: u32,
    /// Print a JSON summary on stdout instead of the text walkthrough.
    #[arg(long, env = "KONTOSYNK_QUICKSTART_JSON")]
    json: bool,
}

impl Args {
    /// Runs the quickstart.
    pub fn run(self) -> Result<ExitCode, CliError> {
        Quickstart {
            dir: self.dir,
            persons: self.persons,
            json: self.json,
        }
        .run()
        .map_err(CliError::failed)
    }
}
