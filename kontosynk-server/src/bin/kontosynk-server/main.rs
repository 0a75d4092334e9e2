//! `kontosynk-server`: FedTLS mutual-TLS servers.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kontosynk_framework::cli::parse_args;

mod egil;
mod gnap;
mod import;
mod portal;
mod ss12000;
mod whoami;

#[derive(Parser)]
#[command(
    name = "kontosynk-server",
    version,
    about = "Mutual-TLS servers for FedTLS federations (Skolfederation Moa)",
    long_about = "Mutual-TLS servers for FedTLS federations (Skolfederation Moa).\n\n\
Clients are authenticated by their certificate's SPKI pin against the federation's signed \
metadata, which is kept fresh in the background; when it expires, every client is refused \
until valid metadata arrives. SIGTERM or Ctrl-C drains in-flight requests; SIGHUP reloads the \
server certificate. `portal` is the exception: a plain-HTTP page for people (behind a TLS proxy) \
with Skolfederation's SSO links.\n\nExit codes: 0 clean shutdown, 1 startup failure, 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once; boxing would only add noise
enum Command {
    Whoami(whoami::WhoamiArgs),
    Gnap(gnap::GnapArgs),
    Ss12000(ss12000::Ss12000Args),
    Egil(egil::EgilArgs),
    Import(import::ImportArgs),
    Export(import::ExportArgs),
    Portal(portal::PortalArgs),
}

fn main() -> ExitCode {
    let cli: Cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Whoami(args) => whoami::run(args).await,
            Command::Gnap(args) => gnap::run(args).await,
            Command::Ss12000(args) => ss12000::run(args).await,
            Command::Egil(args) => egil::run(args).await,
            Command::Import(args) => import::run(args).await,
            Command::Export(args) => import::run_export(args).await,
            Command::Portal(args) => portal::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
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
