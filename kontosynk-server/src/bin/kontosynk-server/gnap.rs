//! `kontosynk-server gnap`: a GNAP authorization server issuing bearer JWTs to federation
//! clients (the token exchange of Skolverket's authorization server).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kontosynk_framework::cli::{ServeArgs, init_logging};
use kontosynk_framework::shutdown;
use kontosynk_server::gnap::{
    ClientAuth, DEFAULT_MAX_BODY, GnapConfig, GnapService, KeyRing, TokenKeys,
};

/// Issue bearer access tokens (GNAP, RFC 9635) to federation clients: POST /transaction,
/// GET /.well-known/jwks.json, /.well-known/jwk.json, /.well-known/public.pem,
/// /status/healthy, OPTIONS /transaction (discovery).
#[derive(clap::Args)]
#[command(after_help = "\
Example:
  fedtls keygen --kid gnap-2026 --out-private gnap-signing.jwk --out-jwks gnap.jwks
  kontosynk-server gnap --listen 0.0.0.0:7443 --cert authserver.pem --key authserver.key \\
    --metadata https://fed.skolfederation.se/trial/md/kontosynk.jws --jwks trial-jwks.json \\
    --signing-key gnap-signing.jwk --issuer https://auth.example.org
  curl --cert client.pem --key client.key -k --pinnedpubkey \"$(fedtls pin --curl authserver.pem)\" \\
    -H 'Content-Type: application/json' https://auth.example.org:7443/transaction \\
    -d '{\"access_token\":{\"access\":[{\"type\":\"provisioning-api\"}],\"flags\":[\"bearer\"]},
         \"client\":{\"key\":\"https://your.entity.id\"}}'

Client authentication (--client-auth): \"sunet\" (the default) is the rule of the SUNET
authorization server behind Skolverket's: the client certificate itself must be listed under
its entity's issuers; \"pin\" is FedTLS's: its SPKI pin must be one of the entity's client pins;
\"either\" accepts both.

Key rotation: start with the new key as --signing-key and the old one as --previous-key until
every token it signed has expired (--lifetime); SIGHUP reloads the key files without a restart.
Behind a TLS terminator, pass --trusted-proxy; it must forward the client certificate in
Client-Cert and strip any Client-Cert the client sent.")]
pub struct GnapArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// The private EC P-256 JWK that signs tokens (ES256; its kid goes in every token header).
    #[arg(long, value_name = "PRIVATE_JWK", env = "KONTOSYNK_GNAP_SIGNING_KEY")]
    signing_key: PathBuf,
    /// A key that signed tokens before a rotation: public or private JWK, or a JWKS.
    /// Published in the JWKS so those tokens still verify (repeatable).
    #[arg(
        long = "previous-key",
        value_name = "JWK",
        env = "KONTOSYNK_GNAP_PREVIOUS_KEYS",
        value_delimiter = ','
    )]
    previous_keys: Vec<PathBuf>,
    /// `iss` of issued tokens (this server's URL).
    #[arg(long, value_name = "URI", env = "KONTOSYNK_GNAP_ISSUER")]
    issuer: String,
    /// `aud` of issued tokens.
    #[arg(long, value_name = "AUD", env = "KONTOSYNK_GNAP_AUDIENCE")]
    audience: Option<String>,
    /// Token lifetime in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 36_000,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000), env = "KONTOSYNK_GNAP_LIFETIME")]
    lifetime: u64,
    /// The grant endpoint URL announced by discovery [default: ISSUER/transaction].
    #[arg(long, value_name = "URL", env = "KONTOSYNK_GNAP_ENDPOINT")]
    endpoint: Option<String>,
    /// The largest POST /transaction body read, in bytes (413 beyond it). A grant request is
    /// a few hundred bytes.
    #[arg(long, value_name = "BYTES", env = "KONTOSYNK_GNAP_MAX_TRANSACTION_BODY",
          default_value_t = DEFAULT_MAX_BODY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1024..=10 * 1024 * 1024))]
    max_transaction_body: usize,
    /// How a client certificate is tied to the entity in client.key: sunet (listed under the
    /// entity's issuers, as Skolverket's server requires), pin (a client pin, FedTLS) or
    /// either.
    #[arg(long, value_name = "RULE", env = "KONTOSYNK_GNAP_CLIENT_AUTH", default_value_t = ClientAuth::Sunet)]
    client_auth: ClientAuth,
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(args: GnapArgs) -> Result<(), String> {
    init_logging(args.serve.log_format);
    let keys =
        TokenKeys::load(&args.signing_key, &args.previous_keys).map_err(|e| e.to_string())?;
    let ring = Arc::new(KeyRing::new(keys));
    let mut config = GnapConfig::new(args.issuer.clone());
    config.audience = args.audience.clone();
    config.lifetime = Duration::from_secs(args.lifetime);
    config.max_body = args.max_transaction_body;
    config.client_auth = args.client_auth;
    if let Some(endpoint) = &args.endpoint {
        config.grant_request_endpoint = endpoint.clone();
    }
    let prepared = args
        .serve
        .prepare_with(GnapService::configure)
        .await
        .map_err(|e| e.to_string())?;
    let service = GnapService::new(config, Arc::clone(&ring), Arc::new(prepared.store.clone()));
    spawn_key_reload(ring, args.signing_key, args.previous_keys);
    let addr = prepared.server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, issuer = %args.issuer, client_auth = %args.client_auth, "gnap authorization server listening");
    prepared
        .server
        .serve(service.handler(), shutdown::signal())
        .await;
    Ok(())
}

/// Reloads the token keys on SIGHUP; bad files keep the keys in force.
fn spawn_key_reload(ring: Arc<KeyRing>, signing_key: PathBuf, previous: Vec<PathBuf>) {
    shutdown::on_hangup(move || match TokenKeys::load(&signing_key, &previous) {
        Ok(keys) => {
            tracing::info!(
                kid = keys.signing_key().kid(),
                published = keys.published().len(),
                "token keys reloaded"
            );
            ring.replace(keys);
        }
        Err(err) => {
            tracing::error!(error = %err, "token key reload failed; keeping the keys in force")
        }
    });
}
