//! `kontosynk token`: a GNAP bearer token from Skolverket's authorization server (or any
//! server speaking its protocol), for scripts.

use std::process::ExitCode;
use std::sync::Arc;

use fedtls::pin::Pin;
use fedtls::snapshot::SnapshotSource;
use kontosynk_client::token::{AccessRequest, TokenClient, transaction_url};
use kontosynk_client::Identity;
use serde_json::json;

use super::CliError;
use super::federation::OptionalFederation;

/// The federation and the authorization server: shared by `token` and `push`.
#[derive(clap::Args, Debug, Clone)]
pub struct AuthArgs {
    #[command(flatten)]
    pub federation: OptionalFederation,
    /// Our entity_id (`client.key`); default: the entity listing our certificate's pin.
    #[arg(long, value_name = "URI", env = "KONTOSYNK_ENTITY_ID")]
    pub entity_id: Option<String>,
    /// The authorization server, when not found by tag `gnapv1` in the metadata
    /// (e.g. https://nutid-auth.sunet.se/transaction); needs --as-pin.
    #[arg(long, value_name = "URL", requires = "as_pin", env = "KONTOSYNK_AS_URL")]
    pub as_url: Option<String>,
    /// The authorization server's SPKI pin (sha256//BASE64 or BASE64).
    #[arg(long, value_name = "PIN", requires = "as_url", env = "KONTOSYNK_AS_PIN")]
    pub as_pin: Option<String>,
}

impl AuthArgs {
    /// Whether the metadata must be loaded: when given, and whenever it is the only way to
    /// find the authorization server (no `--as-url`) or our entity id (no `--entity-id`).
    fn needs_metadata(&self) -> bool {
        self.federation.has_metadata() || self.as_url.is_none() || self.entity_id.is_none()
    }

    /// A token client for the authorization server.
    pub async fn token_client(&self) -> Result<TokenClient, CliError> {
        let identity = self.federation.identity()?;
        let metadata: Option<Arc<dyn SnapshotSource>> = if self.needs_metadata() {
            Some(Arc::new(self.federation.metadata_store().await?))
        } else {
            None
        };
        let entity_id = match (&self.entity_id, &metadata) {
            (Some(id), _) => id.clone(),
            (None, Some(source)) => own_entity_id(source.as_ref(), &identity)?,
            (None, None) => return Err(CliError::failed("--entity-id or --metadata is required")),
        };
        let (http, url) = match (&self.as_url, &self.as_pin, metadata) {
            (Some(url), Some(pin), _) => {
                let pin: Pin = pin
                    .parse()
                    .map_err(|e| CliError::failed(format!("--as-pin: {e}")))?;
                let chain = identity.chain().to_vec();
                let key = fedtls::tls::load_private_key(self.federation.key()?)
                    .map_err(CliError::failed)?;
                let verifier = fedtls::tls::PinnedServerVerifier::new([pin]).into_arc();
                let config = fedtls::tls::client_config(
                    verifier,
                    Some((chain, key)),
                    &[b"h2", b"http/1.1"],
                )
                .map_err(|e| CliError::failed(format!("TLS: {e}")))?;
                let http = reqwest::Client::builder()
                    .tls_backend_preconfigured(config)
                    .timeout(std::time::Duration::from_secs(30))
                    .build()
                    .map_err(|e| CliError::failed(format!("HTTP client: {e}")))?;
                (http, transaction_url(url).map_err(CliError::failed)?)
            }
            (_, _, Some(source)) => {
                return TokenClient::discover(source, identity, entity_id).map_err(CliError::failed);
            }
            _ => return Err(CliError::failed("--metadata or --as-url with --as-pin is required")),
        };
        Ok(TokenClient::new(http, url, entity_id))
    }
}

/// The entity whose client pins include our certificate's.
fn own_entity_id(source: &dyn SnapshotSource, identity: &Identity) -> Result<String, CliError> {
    let pin = identity
        .pin()
        .map_err(|e| CliError::failed(format!("--cert: {e}")))?;
    let snapshot = source
        .current()
        .ok_or_else(|| CliError::failed("no valid metadata"))?;
    snapshot
        .index()
        .client_by_pin(&pin)
        .map(|m| m.entity.entity_id.clone())
        .ok_or_else(|| {
            CliError::failed(format!(
                "our certificate (pin {pin}) is not a client in the metadata; pass --entity-id"
            ))
        })
}

/// Get a GNAP bearer token (Skolverket token exchange) and print it.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    kontosynk token --metadata https://fed.skolfederation.se/trial/md/kontosynk.jws \\\n      \
    --jwks moa-trial.jwks --cert client.pem --key client.key \\\n      \
    --access-type provisioning-api --location https://api.skolverket.se/provtjanst/provisioning/v1\n  \
    kontosynk token --cert client.pem --key client.key --entity-id https://school.example \\\n      \
    --as-url https://nutid-auth-test.sunet.se/transaction --as-pin sha256//BASE64= \\\n      \
    --access-type ss12000-client --location https://skolverket.example/webhook --json\n\n\
    Prints the token on stdout (or JSON with its expiry). Exit codes: 0 token printed,\n\
    1 the server refused (request_denied, invalid_request), 2 other errors.")]
pub struct Args {
    #[command(flatten)]
    auth: AuthArgs,
    /// The access type (provisioning-api, ss12000-client, ss12000-api).
    #[arg(long, value_name = "TYPE", env = "KONTOSYNK_TOKEN_ACCESS_TYPE")]
    access_type: String,
    /// A location (API base URL) the token is for; repeat for several.
    #[arg(long, value_name = "URL", required = true, env = "KONTOSYNK_TOKEN_LOCATION", value_delimiter = ',')]
    location: Vec<String>,
    /// Print JSON: {"access_token", "expires_at", "expires_in", "access_type", "locations"}.
    #[arg(long, env = "KONTOSYNK_TOKEN_JSON")]
    json: bool,
}

impl Args {
    /// Gets and prints the token.
    pub fn run(self) -> Result<ExitCode, CliError> {
        super::runtime()?.block_on(async {
            let client = self.auth.token_client().await?;
            let access = AccessRequest::new(&self.access_type, &self.location);
            let token = match client.token(&access).await {
                Ok(token) => token,
                Err(
                    e @ (kontosynk_client::token::TokenError::RequestDenied { .. }
                    | kontosynk_client::token::TokenError::InvalidRequest { .. }),
                ) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(CliError::failed(e)),
            };
            if self.json {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let out = json!({
                    "access_token": token.value(),
                    "expires_at": token.expires_at_unix(),
                    "expires_in": token.expires_at_unix().saturating_sub(now),
                    "access_type": access.access_type(),
                    "locations": access.locations(),
                });
                println!("{out}");
            } else {
                println!("{}", token.value());
            }
            Ok(ExitCode::SUCCESS)
        })
    }
}
