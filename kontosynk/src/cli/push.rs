//! `kontosynk push`: send the store's persons, duties, groups and activities to Skolverket's
//! Provisioning API, or send a webhook to Skolverket's SS 12000 client.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kontosynk_client::push::{
    Bearer, ObjectType, ProvisioningClient, PushConfig, PushEngine, PushReport, RateLimits,
    webhook,
};
use kontosynk_client::token::{AccessRequest, PROVISIONING_API, SS12000_CLIENT};
use ss12000::{Database, Store};

use super::CliError;
use super::token::AuthArgs;

/// Skolverket's production Provisioning API.
const DEFAULT_API: &str = "https://api.skolverket.se/provtjanst/provisioning/v1";

/// Push school data to Skolverket's Provisioning API (persons → duties → groups →
/// activities), sending only what changed since the last run; or send a webhook.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    kontosynk push --db sqlite:school.sqlite --metadata https://fed.skolfederation.se/prod/md/kontosynk.jws \\\n      \
    --jwks moa.jwks --cert client.pem --key client.key\n  \
    kontosynk push --db sqlite:school.sqlite --token-file token.jwt --types persons,duties --json\n  \
    kontosynk push --webhook https://skolverket.example/ss12000/webhook --entities Person,Group \\\n      \
    --metadata md.jws --jwks fed.jwks --cert client.pem --key client.key\n\n\
    Per-object results are kept in the store (sync state push/<type>/<id>): a re-run sends\n\
    only changed or failed objects, and a killed run collects its submitted jobs first.\n\
    Exit codes: 0 everything accepted, 1 some objects refused, invalid or too large,\n\
    2 operational error (no token, API unreachable, store error).")]
pub struct Args {
    #[command(flatten)]
    auth: AuthArgs,
    /// The store to push from (sqlite:PATH or postgres://…).
    #[arg(long, env = "KONTOSYNK_DB", value_name = "DB", required_unless_present = "webhook")]
    db: Option<String>,
    /// The Provisioning API's base URL.
    #[arg(long, env = "KONTOSYNK_PUSH_API", default_value = DEFAULT_API, value_name = "URL")]
    api_url: String,
    /// A bearer token file (from `kontosynk token`) instead of asking the authorization server.
    #[arg(long, value_name = "FILE", env = "KONTOSYNK_PUSH_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// An extra trusted root certificate (PEM) for the API (test environments, stand-ins).
    #[arg(long, value_name = "FILE", env = "KONTOSYNK_PUSH_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Only these types (comma-separated: persons,duties,groups,activities).
    #[arg(long, value_delimiter = ',', value_name = "TYPES", env = "KONTOSYNK_PUSH_TYPES")]
    types: Vec<String>,
    /// Do not send deletions for objects deleted in the store.
    #[arg(long, env = "KONTOSYNK_PUSH_NO_DELETIONS")]
    no_deletions: bool,
    /// Largest request body in bytes (the API allows 200 KB).
    #[arg(long, default_value_t = kontosynk_client::push::pack::MAX_REQUEST_BYTES, value_name = "BYTES", env = "KONTOSYNK_PUSH_MAX_REQUEST_BYTES")]
    max_request_bytes: usize,
    /// Seconds between job polls.
    #[arg(long, default_value_t = 1.0, value_name = "SECS", env = "KONTOSYNK_PUSH_POLL_INTERVAL")]
    poll_interval: f64,
    /// Print the report as JSON.
    #[arg(long, env = "KONTOSYNK_PUSH_JSON")]
    json: bool,
    /// Instead of pushing, POST {"modifiedEntities": [...]} to this URL (Skolverket's SS 12000
    /// client) with an `ss12000-client` token for it.
    #[arg(long, value_name = "URL", env = "KONTOSYNK_PUSH_WEBHOOK")]
    webhook: Option<String>,
    /// Entity types for --webhook (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Organisation,Person,Group,Duty,Activity",
        value_name = "TYPES"
    , env = "KONTOSYNK_PUSH_ENTITIES")]
    entities: Vec<String>,
}

impl Args {
    /// Runs the push (or the webhook).
    pub fn run(self) -> Result<ExitCode, CliError> {
        super::runtime()?.block_on(async {
            if let Some(url) = &self.webhook {
                return self.send_webhook(url).await;
            }
            self.push().await
        })
    }

    async fn bearer(&self, access_type: &str, location: &str) -> Result<Bearer, CliError> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(CliError::failed(format!("{}: empty token file", path.display())));
            }
            return Ok(Bearer::Static(Arc::from(token)));
        }
        let client = self.auth.token_client().await?;
        Ok(Bearer::Gnap {
            client: Arc::new(client),
            access: AccessRequest::new(access_type, [location.trim_end_matches('/')]),
        })
    }

    fn http(&self) -> Result<reqwest::Client, CliError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10));
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
            builder = builder.tls_certs_merge(certs);
        }
        builder
            .build()
            .map_err(|e| CliError::failed(format!("HTTP client: {e}")))
    }

    async fn send_webhook(&self, url: &str) -> Result<ExitCode, CliError> {
        let target: reqwest::Url = url
            .parse()
            .map_err(|e| CliError::failed(format!("--webhook {url}: {e}")))?;
        let bearer = match self.bearer(SS12000_CLIENT, url).await? {
            Bearer::Static(token) => token.to_string(),
            Bearer::Gnap { client, access } => client
                .token(&access)
                .await
                .map_err(CliError::failed)?
                .value()
                .to_owned(),
        };
        webhook::send(&self.http()?, &target, &bearer, &self.entities)
            .await
            .map_err(CliError::failed)?;
        if self.json {
            println!("{}", serde_json::json!({"webhook": url, "modifiedEntities": self.entities}));
        } else {
            println!("webhook sent to {url}: {}", self.entities.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    }

    async fn push(&self) -> Result<ExitCode, CliError> {
        let types = if self.types.is_empty() {
            ObjectType::ORDER.to_vec()
        } else {
            self.types
                .iter()
                .map(|t| {
                    ObjectType::from_path(t.trim()).ok_or_else(|| {
                        CliError::failed(format!(
                            "--types: `{t}` is not one of persons, duties, groups, activities"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if !(self.poll_interval.is_finite() && self.poll_interval >= 0.0) {
            return Err(CliError::failed("--poll-interval must be a number of seconds ≥ 0"));
        }
        let db = self.db.as_deref().unwrap_or_default();
        let database: Database = db.parse().map_err(CliError::failed)?;
        let store = Store::open(&database).await.map_err(CliError::failed)?;
        let base: reqwest::Url = self
            .api_url
            .parse()
            .map_err(|e| CliError::failed(format!("--api-url {}: {e}", self.api_url)))?;
        let bearer = self.bearer(PROVISIONING_API, &self.api_url).await?;
        let api = ProvisioningClient::new(self.http()?, base, bearer, RateLimits::default());
        let config = PushConfig {
            max_request_bytes: self.max_request_bytes,
            poll_interval: Duration::from_secs_f64(self.poll_interval),
            deletions: !self.no_deletions,
            types,
            progress: !self.json && std::io::stderr().is_terminal(),
            ..PushConfig::default()
        };
        let report = PushEngine::new(store, api, config)
            .run()
            .await
            .map_err(CliError::failed)?;
        if self.json {
            println!(
                "{}",
                serde_json::to_string(&report).map_err(CliError::failed)?
            );
        } else {
            print_report(&report);
        }
        Ok(if report.has_failures() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn print_report(report: &PushReport) {
    println!(
        "{:<11} {:>6} {:>9} {:>6} {:>9} {:>8} {:>7} {:>8} {:>9} {:>8} {:>8}",
        "type", "live", "unchanged", "sent", "succeeded", "warnings", "failed", "invalid",
        "too-large", "skipped", "deleted"
    );
    for s in &report.types {
        println!(
            "{:<11} {:>6} {:>9} {:>6} {:>9} {:>8} {:>7} {:>8} {:>9} {:>8} {:>8}",
            s.object_type.map_or("?", ObjectType::path),
            s.live,
            s.unchanged,
            s.sent,
            s.succeeded,
            s.warnings,
            s.failed + s.delete_failed,
            s.invalid,
            s.too_large,
            s.skipped,
            s.deleted
        );
    }
}
