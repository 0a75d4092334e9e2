//! `kontosynk-server ss12000`: the SS 12000 API over a store, for Skolverket's SS 12000 client
//! and federation members.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kontosynk_framework::cli::{ServeArgs, init_logging};
use kontosynk_framework::shutdown;
use kontosynk_server::base_path::{own_base_path, path_of};
use kontosynk_server::bearer::{BearerConfig, BearerVerifier, JwksSource, webpki_client_config};
use kontosynk_server::ss12000::{
    ApiConfig, AuthMode, DEFAULT_MAX_SUBSCRIPTIONS, DEFAULT_SUBSCRIPTION_CREATES_PER_MINUTE,
    PageLimits, Ss12000Api, TargetPolicy, WebhookConfig, Webhooks, subscription_creates_per_minute,
};
use ss12000::{Database, Store};

/// Which credentials the API accepts.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// FedTLS client certificates only (the --client-tag policy applies).
    Mtls,
    /// Bearer JWTs only (TLS without a client certificate), as Skolverket's client calls.
    Bearer,
    /// Either a FedTLS client certificate or a bearer JWT.
    Both,
}

/// Serve the SS 12000 API (organisations, persons, groups, duties, activities,
/// deletedEntities, subscriptions with webhooks, log, statistics) from a store.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  # Federation members tagged egilv1, over FedTLS mutual TLS:
  kontosynk-server ss12000 --listen 0.0.0.0:8443 --cert server.pem --key server.key \\
    --metadata https://fed.skolfederation.se/prod/md/kontosynk.jws --jwks moa-jwks.json \\
    --db sqlite:school.db --client-tag egilv1

  # Also Skolverket's SS 12000 client with its bearer JWT:
  kontosynk-server ss12000 ... --db postgres://kontosynk@db/school \\
    --jwt-jwks https://nutid-auth.sunet.se/.well-known/jwks.json \\
    --jwt-organization-id SE2021004185 --jwt-location https://school.example/ss12000/v2.0

The API is served under the path of --jwt-location (or --base-path). Pages hold --default-limit
items unless the client asks for more (at most --max-limit).

Exit codes: 0 clean shutdown, 1 startup failure, 2 usage error.")]
pub struct Ss12000Args {
    #[command(flatten)]
    serve: ServeArgs,
    /// The store: sqlite:PATH or postgres://USER@HOST/DB.
    #[arg(long, value_name = "DB", env = "KONTOSYNK_DB")]
    db: String,
    /// Which credentials are accepted (default: both when --jwt-jwks is given, else mtls).
    #[arg(long, value_enum, env = "KONTOSYNK_AUTH")]
    auth: Option<Auth>,
    /// The authorization server's JWKS (https URL or file) for bearer JWTs.
    #[arg(long, value_name = "SOURCE", env = "KONTOSYNK_JWT_JWKS")]
    jwt_jwks: Option<String>,
    /// Extra CA certificates (PEM) trusted for an https --jwt-jwks URL, besides the webpki
    /// roots: e.g. the certificate of your own `kontosynk-server gnap`.
    #[arg(long, value_name = "PEM", env = "KONTOSYNK_JWT_JWKS_CA")]
    jwt_jwks_ca: Option<PathBuf>,
    /// The organization_id bearer tokens must carry (Skolverket: SE2021004185).
    #[arg(long, value_name = "ID", env = "KONTOSYNK_JWT_ORGANIZATION_ID")]
    jwt_organization_id: Option<String>,
    /// This API's base URL, as registered with Skolverket; an ss12000-api entry of the token's
    /// requested_access must list it.
    #[arg(long, value_name = "URL", env = "KONTOSYNK_JWT_LOCATION")]
    jwt_location: Option<String>,
    /// Also require this token issuer (iss).
    #[arg(long, value_name = "ISS", env = "KONTOSYNK_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Also require this token audience (aud).
    #[arg(long, value_name = "AUD", env = "KONTOSYNK_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Serve the API under this path (default: the path of --jwt-location, else of this
    /// server's base_uri in the metadata, found by its certificate's pin, else /).
    #[arg(long, value_name = "PATH", env = "KONTOSYNK_BASE_PATH")]
    base_path: Option<String>,
    /// Items per page when the client gives no limit.
    #[arg(long, value_name = "N", default_value_t = PageLimits::default().default, env = "KONTOSYNK_DEFAULT_LIMIT")]
    default_limit: usize,
    /// The most items per page.
    #[arg(long, value_name = "N", default_value_t = PageLimits::default().max, env = "KONTOSYNK_MAX_LIMIT")]
    max_limit: usize,
    /// Longest subscription lifetime in days (clients extend with PATCH).
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 30,
        env = "KONTOSYNK_SUBSCRIPTION_DAYS"
    )]
    subscription_days: u64,
    /// Extra CA certificates (PEM) trusted for webhook targets, besides the webpki roots.
    #[arg(long, value_name = "PEM", env = "KONTOSYNK_WEBHOOK_CA")]
    webhook_ca: Option<PathBuf>,
    /// Attempts per webhook delivery.
    #[arg(long, value_name = "N", default_value_t = WebhookConfig::default().max_attempts, env = "KONTOSYNK_WEBHOOK_ATTEMPTS")]
    webhook_attempts: u32,
    /// Seconds between polls of the store for changes to notify.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        env = "KONTOSYNK_POLL_INTERVAL"
    )]
    poll_interval: u64,
    /// Let webhooks go to loopback, private (RFC 1918, fc00::/7), link-local and other
    /// internal addresses. Off by default: a subscriber could otherwise make this server
    /// probe its own network. Only for tests and private deployments.
    #[arg(long, env = "KONTOSYNK_WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    webhook_allow_private_targets: bool,
    /// The most live subscriptions one client (entity) may hold.
    #[arg(long, value_name = "N", env = "KONTOSYNK_MAX_SUBSCRIPTIONS",
          default_value_t = DEFAULT_MAX_SUBSCRIPTIONS)]
    max_subscriptions: usize,
    /// How many subscriptions one client (entity) may create a minute (also at once).
    #[arg(long, value_name = "N", env = "KONTOSYNK_SUBSCRIPTION_CREATES_PER_MINUTE",
          default_value_t = DEFAULT_SUBSCRIPTION_CREATES_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    subscription_creates_per_minute: u32,
    /// Webhook delivery records kept per subscription (older ones are dropped).
    #[arg(long, value_name = "N", env = "KONTOSYNK_WEBHOOK_RECORDS",
          default_value_t = WebhookConfig::default().max_records)]
    webhook_records: usize,
    /// Days webhook delivery records are kept.
    #[arg(long, value_name = "DAYS", env = "KONTOSYNK_WEBHOOK_RECORD_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=36_500))]
    webhook_record_days: u64,
}

async fn bearer(args: &Ss12000Args) -> Result<Option<Arc<BearerVerifier>>, String> {
    let Some(jwks) = &args.jwt_jwks else {
        if args.jwt_organization_id.is_some() || args.jwt_location.is_some() {
            return Err("--jwt-organization-id and --jwt-location need --jwt-jwks".into());
        }
        return Ok(None);
    };
    let organization_id = args
        .jwt_organization_id
        .clone()
        .ok_or("--jwt-jwks needs --jwt-organization-id (Skolverket: SE2021004185)")?;
    let location = args
        .jwt_location
        .clone()
        .ok_or("--jwt-jwks needs --jwt-location (this API's base URL)")?;
    let source: JwksSource = match jwks.parse() {
        Ok(source) => source,
        Err(never) => match never {},
    };
    let mut config = BearerConfig::new(source, organization_id, location);
    config.issuer = args.jwt_issuer.clone();
    config.audience = args.jwt_audience.clone();
    config.jwks_ca = args.jwt_jwks_ca.clone();
    let verifier = BearerVerifier::new(config).map_err(|e| e.to_string())?;
    verifier.load().await.map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(verifier)))
}

/// Serves the API until SIGTERM or Ctrl-C.
pub async fn run(args: Ss12000Args) -> Result<(), String> {
    init_logging(args.serve.log_format);
    if args.default_limit == 0 || args.max_limit == 0 || args.default_limit > args.max_limit {
        return Err("--default-limit and --max-limit must be positive, default ≤ max".into());
    }
    if args.max_limit > 9_999 {
        return Err("--max-limit is at most 9999 (the store serves 10,000 rows per query)".into());
    }
    let verifier = bearer(&args).await?;
    let auth = match (args.auth, verifier) {
        (None | Some(Auth::Mtls), None) => AuthMode::MutualTls,
        (Some(Auth::Mtls), Some(_)) => {
            return Err("--auth mtls does not use --jwt-jwks; choose --auth both or bearer".into());
        }
        (Some(Auth::Bearer | Auth::Both), None) => {
            return Err(
                "--auth bearer/both needs --jwt-jwks, --jwt-organization-id and --jwt-location"
                    .into(),
            );
        }
        (Some(Auth::Bearer), Some(v)) => AuthMode::Bearer(v),
        (None | Some(Auth::Both), Some(v)) => AuthMode::Either(v),
    };
    let database: Database = args
        .db
        .parse()
        .map_err(|e: ss12000::StoreError| e.to_string())?;
    let store = Store::open(&database).await.map_err(|e| e.to_string())?;
    let tls = webpki_client_config(args.webhook_ca.as_deref()).map_err(|e| e.to_string())?;
    let webhooks = Webhooks::new(
        store.clone(),
        WebhookConfig {
            max_attempts: args.webhook_attempts.max(1),
            poll_interval: Duration::from_secs(args.poll_interval.max(1)),
            targets: TargetPolicy {
                allow_http: false,
                allow_private: args.webhook_allow_private_targets,
            },
            max_records: args.webhook_records,
            record_retention: Duration::from_secs(args.webhook_record_days * 86_400),
            ..WebhookConfig::default()
        },
        tls,
    )
    .map_err(|e| e.to_string())?;
    let mut config = ApiConfig::new(auth.clone());
    config.pages = PageLimits {
        default: args.default_limit,
        max: args.max_limit,
    };
    config.subscription_lifetime = Duration::from_secs(args.subscription_days.max(1) * 86_400);
    config.max_subscriptions = args.max_subscriptions;
    config.subscription_creates =
        subscription_creates_per_minute(args.subscription_creates_per_minute);
    if args.webhook_allow_private_targets {
        tracing::warn!(
            "--webhook-allow-private-targets: webhooks may reach loopback and private addresses"
        );
    }
    let optional = auth.needs_optional_client_certificates();
    let prepared = args
        .serve
        .prepare_with(|builder| builder.optional_client_certificates(optional))
        .await
        .map_err(|e| e.to_string())?;
    config.base_path = match (&args.base_path, &args.jwt_location) {
        (Some(path), _) => path.clone(),
        (None, Some(location)) => path_of(location),
        (None, None) => own_base_path(&prepared, None).unwrap_or_default(),
    };
    let api = Ss12000Api::new(store, config, webhooks.clone());
    let poller = webhooks.spawn_poller();
    let addr = prepared.server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, db = %database, base_path = %api.config().base_path, auth = ?args.auth, "SS 12000 API listening");
    prepared
        .server
        .serve(api.handler(), shutdown::signal())
        .await;
    poller.abort();
    Ok(())
}
