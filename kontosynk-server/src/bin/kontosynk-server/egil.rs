//! `kontosynk-server egil`: the EGIL (SS 12000:2018 over SCIM) server school organizers push
//! to with EgilSCIM or `kontosynk egil push`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kontosynk_framework::cli::{ServeArgs, init_logging};
use kontosynk_framework::{RateLimit, ServerBuilder, shutdown};
use kontosynk_server::base_path::own_base_path;
use kontosynk_server::egil::{
    ApiKeys, DEFAULT_MAX_OBJECTS_PER_TENANT, EgilConfig, EgilServer, TenantLimit,
};
use ss12000::{Database, Store};

/// Serve EGIL (SS 12000:2018 over SCIM, Moa tag egilv1): school organizers push
/// Organisations, SchoolUnitGroups, SchoolUnits, Users, Employments, StudentGroups and
/// Activities; each client's objects are kept apart under its federation entity.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  # School organizers in the federation (clients tagged egilv1), over FedTLS mutual TLS:
  kontosynk-server egil --listen 0.0.0.0:8443 --cert server.pem --key server.key \\
    --metadata https://fed.skolfederation.se/prod/md/kontosynk.jws --jwks moa-jwks.json \\
    --db sqlite:egil.db --client-tag egilv1

  # Also clients without FedTLS, with API keys (NAME=KEY lines) on a second port, and
  # Windermere's rate limit (10 requests/s, burst 50, wait up to 30 s before 429):
  kontosynk-server egil ... --api-key-listen 0.0.0.0:9443 --api-key-file /etc/egil/keys \\
    --tenant-rate-limit 10

  # What a school organizer pushed, as SS 12000:2020 objects:
  kontosynk-server export --db sqlite:egil.db --egil-tenant https://skolan.example -o school.json

Endpoints (under the path of this server's base_uri in the metadata, or --base-path):
  POST /X → 201 (409 when the id exists), PUT /X/{id} → 200 (404 when unknown),
  DELETE /X/{id} → 204 (404), GET /X?startIndex=&count= (SCIM ListResponse), GET /X/{id},
  GET /DanglingReferences (this client's references to objects it has not sent).
Objects are keyed by the client's entity_id and the externalId UUID: a client never sees
another's objects.

Exit codes: 0 clean shutdown, 1 startup failure, 2 usage error.")]
pub struct EgilArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// The store: sqlite:PATH (created when missing) or postgres://USER@HOST/DB.
    #[arg(long, value_name = "DB", env = "KONTOSYNK_DB")]
    db: String,
    /// Serve under this path (default: the path of this server's egilv1 base_uri in the
    /// metadata, found by its certificate's pin, else /).
    #[arg(long, value_name = "PATH", env = "KONTOSYNK_BASE_PATH")]
    base_path: Option<String>,
    /// Items in a GET /X page when the client gives no count.
    #[arg(long, value_name = "N", default_value_t = 1_000,
          env = "KONTOSYNK_EGIL_DEFAULT_COUNT", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    default_count: u32,
    /// The most items in one GET /X page.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          env = "KONTOSYNK_EGIL_MAX_COUNT", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_count: u32,
    /// Also listen here for clients without FedTLS, identified by an API key (TLS with this
    /// server's certificate; a client certificate is optional there and checked as usual).
    #[arg(long, value_name = "ADDR", env = "KONTOSYNK_EGIL_API_KEY_LISTEN")]
    api_key_listen: Option<SocketAddr>,
    /// API-key clients, one NAME=KEY a line (# comments). The tenant of such a client is
    /// `api-key:NAME`. Keep the file readable by this server only.
    #[arg(long, value_name = "FILE", env = "KONTOSYNK_EGIL_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// API-key clients as NAME=KEY,NAME=KEY. Prefer the environment variable: a command
    /// line is visible to every user of the machine.
    #[arg(
        long,
        value_name = "NAME=KEY,…",
        env = "KONTOSYNK_EGIL_API_KEYS",
        hide_env_values = true
    )]
    api_keys: Option<String>,
    /// The header API-key clients send their key in.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "X-API-Key",
        env = "KONTOSYNK_EGIL_API_KEY_HEADER"
    )]
    api_key_header: http::HeaderName,
    /// Per-client rate limit in requests per second: requests over it wait their turn and get
    /// 429 with Retry-After only when the wait would pass --tenant-max-wait (Windermere: 10).
    #[arg(long, value_name = "RPS", env = "KONTOSYNK_EGIL_TENANT_RATE_LIMIT")]
    tenant_rate_limit: Option<f64>,
    /// Requests a client may make at once under --tenant-rate-limit.
    #[arg(long, value_name = "N", default_value_t = 50, env = "KONTOSYNK_EGIL_TENANT_BURST",
          value_parser = clap::value_parser!(u32).range(1..))]
    tenant_burst: u32,
    /// The most objects one client may keep on this server (all resources together); a POST
    /// beyond it is refused with 507 and a message.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_OBJECTS_PER_TENANT,
          env = "KONTOSYNK_EGIL_MAX_OBJECTS_PER_TENANT", value_parser = clap::value_parser!(u64).range(1..))]
    max_objects_per_tenant: u64,
    /// Seconds a request may wait under --tenant-rate-limit before it is refused.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        env = "KONTOSYNK_EGIL_TENANT_MAX_WAIT"
    )]
    tenant_max_wait: u64,
}

fn api_keys(args: &EgilArgs) -> Result<Option<Arc<ApiKeys>>, String> {
    let configured = args.api_key_file.is_some() || args.api_keys.is_some();
    match (args.api_key_listen, configured) {
        (None, false) => return Ok(None),
        (Some(_), false) => {
            return Err(
                "--api-key-listen needs clients: --api-key-file or KONTOSYNK_EGIL_API_KEYS".into(),
            );
        }
        (None, true) => {
            return Err("API keys are only accepted on --api-key-listen: give its address".into());
        }
        (Some(_), true) => {}
    }
    let mut keys = ApiKeys::new(args.api_key_header.clone());
    if let Some(path) = &args.api_key_file {
        keys.add_file(path).map_err(|e| e.to_string())?;
    }
    if let Some(text) = &args.api_keys {
        keys.add_entries(text, "KONTOSYNK_EGIL_API_KEYS")
            .map_err(|e| e.to_string())?;
    }
    if keys.is_empty() {
        return Err("the API-key configuration lists no client".into());
    }
    Ok(Some(Arc::new(keys)))
}

fn tenant_limit(args: &EgilArgs) -> Result<Option<TenantLimit>, String> {
    let Some(rps) = args.tenant_rate_limit else {
        return Ok(None);
    };
    if !(rps.is_finite() && rps > 0.0) {
        return Err(format!(
            "--tenant-rate-limit must be a positive number of requests per second, not {rps}"
        ));
    }
    Ok(Some(TenantLimit {
        rate: RateLimit {
            per_second: rps,
            burst: args.tenant_burst,
        },
        max_wait: Duration::from_secs(args.tenant_max_wait),
    }))
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(args: EgilArgs) -> Result<(), String> {
    init_logging(args.serve.log_format);
    if args.default_count > args.max_count {
        return Err("--default-count must not exceed --max-count".into());
    }
    let keys = api_keys(&args)?;
    let tenant_limit = tenant_limit(&args)?;
    let database: Database = args
        .db
        .parse()
        .map_err(|e: ss12000::StoreError| e.to_string())?;
    let store = Store::open(&database).await.map_err(|e| e.to_string())?;
    let prepared = args.serve.prepare().await.map_err(|e| e.to_string())?;
    let base_path = match &args.base_path {
        Some(path) => path.clone(),
        None => own_base_path(&prepared, Some("egilv1")).unwrap_or_default(),
    };
    let server = EgilServer::new(
        store,
        EgilConfig {
            base_path,
            default_count: args.default_count as usize,
            max_count: args.max_count as usize,
            api_keys: keys.clone(),
            tenant_limit,
            max_objects_per_tenant: Some(args.max_objects_per_tenant),
            ..EgilConfig::default()
        },
    );
    let api_key_server = match (args.api_key_listen, &keys) {
        (Some(addr), Some(keys)) => {
            let settings = args.serve.settings().map_err(|e| e.to_string())?;
            let bound = ServerBuilder::with_store(prepared.store.clone())
                .tls(Arc::clone(&prepared.resolver))
                .optional_client_certificates(true)
                .policy(settings.policy)
                .limits(settings.limits)
                .bind(addr)
                .await
                .map_err(|e| format!("cannot listen on --api-key-listen {addr}: {e}"))?;
            tracing::info!(addr = %bound.local_addr().map_err(|e| e.to_string())?, clients = keys.len(), header = %keys.header(), "EGIL API-key listener");
            Some(bound)
        }
        _ => None,
    };
    let addr = prepared.server.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, db = %database, base_path = %server.config().base_path, "EGIL server listening");
    let main = prepared.server.serve(server.handler(), shutdown::signal());
    match api_key_server {
        Some(bound) => {
            tokio::join!(main, bound.serve(server.handler(), shutdown::signal()));
        }
        None => main.await,
    }
    Ok(())
}
