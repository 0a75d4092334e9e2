//! `kontosynk-server whoami`: tells clients how the federation sees them.

use fedtls::tls::PeerIdentity;
use http::{Method, Request, StatusCode};
use kontosynk_framework::cli::{ServeArgs, init_logging};
use kontosynk_framework::response::{self, Body};
use kontosynk_framework::{RequestBody, shutdown};

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
pub struct WhoamiArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Serves `whoami` until SIGTERM or Ctrl-C.
pub async fn run(args: WhoamiArgs) -> Result<(), String> {
    init_logging(args.serve.log_format);
    let prepared = args.serve.prepare().await.map_err(|e| e.to_string())?;
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
                "source": peer.source,
                "source_iss": peer.source_iss,
            }),
        ),
        None => response::json_error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "no authenticated client on this request",
        ),
    }
}
