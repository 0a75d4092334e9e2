//! `kontosynk-server`: FedTLS mutual-TLS servers.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fedtls::tls::PeerIdentity;
use http::{Method, Request, StatusCode};
use kontosynk_server::cli::{ServeArgs, init_logging, parse_args};
use kontosynk_server::response::{self, Body};
use kontosynk_server::{RequestBody, shutdown};

#[derive(Parser)]
#[command(
    name = "kontosynk-server",
    version,
    about = "Mutual-TLS servers for FedTLS federations (Skolfederation Moa)",
    long_about = "Mutual-TLS servers for FedTLS federations (Skolfederation Moa).\n\n\
Clients are authenticated by their certificate's SPKI pin against the federation's signed \
metadata, which is kept fresh in the background; when it expires, every client is refused \
until valid metadata arrives. SIGTERM or Ctrl-C drains in-flight requests; SIGHUP reloads the \
server certificate.\n\nExit codes: 0 clean shutdown, 1 startup failure, 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Whoami(WhoamiArgs),
}

/// Show clients how the federation sees them: GET / answers with the authenticated
/// client's entity, organization, tags, scopes and pin.
#[derive(clap::Args)]
#[command(after_help = "\
Example:
  kontosynk-server whoami --listen 127.0.0.1:8443 --cert server.pem --key server.key \\
    --metadata https://fed.skolfederation.se/trial/md/kontosynk.jws --jwks trial-jwks.json
  curl --cert client.pem --key client.key \\
    --pinnedpubkey \"$(fedtls pin --curl server.pem)\" -k https://127.0.0.1:8443/

A client whose pin is not in the metadata fails the TLS handshake.")]
struct WhoamiArgs {
    #[command(flatten)]
    serve: ServeArgs,
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
            Command::Whoami(args) => whoami(args).await,
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

async fn whoami(args: WhoamiArgs) -> Result<(), String> {
    init_logging(args.serve.log_format);
    let prepared = args.serve.prepare().await?;
    let addr = prepared.server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "whoami listening");
    prepared
        .server
        .serve(whoami_handler, shutdown::signal())
        .await;
    Ok(())
}

async fn whoami_handler(request: Request<RequestBody>) -> http::Response<Body> {
    if request.uri().path() != "/" {
        return response::json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "GET / tells who you are",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return response::json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use GET",
        );
    }
    match request.extensions().get::<PeerIdentity>() {
        Some(peer) => response::json(
            StatusCode::OK,
            &serde_json::json!({
                "entity_id": peer.entity_id,
                "organization": peer.organization,
                "organization_id": peer.organization_id,
                "tags": peer.tags,
                "scopes": peer.scopes,
                "pin": peer.pin,
            }),
        ),
        None => response::json_error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no authenticated client on this request",
        ),
    }
}
