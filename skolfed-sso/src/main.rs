//! `skolfed-sso`: tools for operators and members of Skolfederation's SSO-link pilot.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "skolfed-sso",
    version,
    about = "Skolfederation's SSO links: lint the pilot's SSO-link metadata, print the links for an IdP, verify the signed SAML aggregate",
    long_about = "Skolfederation's SSO links.\n\n\
The pilot publishes SSO-link metadata: a JSON list of service-provider organizations and, per \
service, how to start a login for a user's identity provider (IdP). `lint` checks such a \
document, `links` prints every service's login URL for one IdP, and `saml verify` checks the \
federation's signed SAML metadata aggregate against the operator's certificate and lists its \
IdPs and SPs.\n\n\
Every SOURCE is an https URL or a file.\n\n\
Exit codes: 0 fine, 1 problems found (lint errors, a refused aggregate, an unknown IdP), \
2 usage error, 3 the source could not be read or fetched."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Lint(cli::lint::LintArgs),
    Links(cli::links::LinksArgs),
    #[command(subcommand)]
    Saml(cli::saml::SamlCommand),
}

fn main() -> ExitCode {
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
    let code = runtime.block_on(async {
        match cli.command {
            Command::Lint(args) => cli::lint::run(args).await,
            Command::Links(args) => cli::links::run(args).await,
            Command::Saml(command) => cli::saml::run(command).await,
        }
    });
    ExitCode::from(code)
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
