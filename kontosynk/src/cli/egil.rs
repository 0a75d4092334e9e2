//! `kontosynk egil push`: a school organizer pushes its SS 12000 data to a service provider's
//! EGIL server (SS 12000:2018 over SCIM, tag egilv1), as EgilSCIM does.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use kontosynk_client::client::{FederationClient, RetryPolicy};
use kontosynk_client::discovery::{Choice, ServerQuery};
use kontosynk_client::egil::{EgilPushConfig, EgilPushReport, EgilPusher};
use ss12000::{Database, Store};

use super::CliError;
use super::federation::RequiredFederation;

/// EGIL (SS 12000:2018 over SCIM): push school data to a service provider's EGIL server.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: EgilCommand,
}

/// The EGIL subcommands.
#[derive(clap::Subcommand, Debug)]
enum EgilCommand {
    Push(PushArgs),
}

/// Push the store's organisations, school units, persons, duties, groups and activities to an
/// EGIL server found in the federation metadata (pinned mutual TLS), sending only what changed
/// since the last successful push to that server.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    kontosynk egil push --metadata https://fed.skolfederation.se/prod/md/kontosynk.jws --jwks moa.jwks \\\n      \
    --cert client.pem --key client.key --db sqlite:school.sqlite \\\n      \
    --server-entity https://egil.leverantor.example\n  \
    kontosynk egil push … --rebuild            # reconcile with what the server lists\n  \
    kontosynk egil push … --accept-changes     # after checking a change the guard stopped\n\n\
    Order: creates and updates Organisations → SchoolUnits → Users (pupils, then staff) →\n\
    Employments → StudentGroups → Activities; deletions afterwards in reverse order. A 409 on\n\
    POST is retried as PUT, a 404 on PUT as POST, a 404 on DELETE counts as deleted. What the\n\
    server accepted is kept in the store per server (sync state egil/<server>/<type>/<id>), so a\n\
    killed run is simply run again. The guard refuses to send anything when more than\n\
    --max-change-share of a type (and at least 10 objects) would be changed or deleted.\n\n\
    Exit codes: 0 everything accepted, 1 something refused, invalid, unreachable or stopped by\n\
    the guard, 2 usage or setup error (flags, files, metadata, no such server).")]
struct PushArgs {
    #[command(flatten)]
    federation: RequiredFederation,
    /// The service provider's entity id in the metadata (its server tagged --tag).
    #[arg(long, value_name = "ID", env = "KONTOSYNK_EGIL_PUSH_SERVER_ENTITY")]
    server_entity: String,
    /// The tag of the EGIL server.
    #[arg(long, value_name = "TAG", default_value = "egilv1", env = "KONTOSYNK_EGIL_PUSH_TAG")]
    tag: String,
    /// The store to push from: sqlite:PATH or a postgres:// URL.
    #[arg(long, value_name = "DB", env = "KONTOSYNK_DB")]
    db: String,
    /// Reconcile against the server's lists: PUT what it has, POST the rest, DELETE what it has
    /// that the store no longer does.
    #[arg(long, env = "KONTOSYNK_EGIL_PUSH_REBUILD")]
    rebuild: bool,
    /// The share (0 to 1) of a type's objects on the server that may be changed or deleted in
    /// one run before the guard stops it.
    #[arg(long, value_name = "SHARE", default_value_t = 0.1, env = "KONTOSYNK_EGIL_PUSH_MAX_CHANGE_SHARE")]
    max_change_share: f64,
    /// Send even when the guard would stop the run.
    #[arg(long, env = "KONTOSYNK_EGIL_PUSH_ACCEPT_CHANGES")]
    accept_changes: bool,
    /// Append one JSON line per request sent to this file.
    #[arg(long, value_name = "FILE", default_value = "egil-push-audit.jsonl", env = "KONTOSYNK_EGIL_PUSH_AUDIT_LOG")]
    audit_log: PathBuf,
    /// Seconds allowed for each request.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..), env = "KONTOSYNK_EGIL_PUSH_TIMEOUT")]
    timeout: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long, env = "KONTOSYNK_EGIL_PUSH_JSON")]
    json: bool,
}

impl Args {
    /// Runs the subcommand.
    pub fn run(self) -> Result<ExitCode, CliError> {
        match self.command {
            EgilCommand::Push(args) => args.run(),
        }
    }
}

impl PushArgs {
    fn run(self) -> Result<ExitCode, CliError> {
        if !(0.0..=1.0).contains(&self.max_change_share) {
            return Err(CliError::failed("--max-change-share must be between 0 and 1"));
        }
        let database: Database = self
            .db
            .parse()
            .map_err(|e| CliError::failed(format!("--db: {e}")))?;
        let identity = self.federation.identity()?;
        super::runtime()?.block_on(async move {
            let metadata = self.federation.metadata_store().await?;
            let query = ServerQuery::entity(&self.server_entity).with_tag(&self.tag);
            let client = FederationClient::builder(std::sync::Arc::new(metadata.clone()), identity)
                .discover(query, Choice::Unique)
                .timeout(Some(Duration::from_secs(self.timeout)))
                .retry(RetryPolicy::default())
                .user_agent(concat!("kontosynk-egil/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| CliError::failed(format!("--server-entity {}: {e}", self.server_entity)))?;
            let store = Store::open(&database)
                .await
                .map_err(|e| CliError::failed(format!("--db: {e}")))?;
            let config = EgilPushConfig {
                server: self.server_entity.clone(),
                rebuild: self.rebuild,
                max_change_share: self.max_change_share,
                accept_changes: self.accept_changes,
                progress: !self.json && std::io::stderr().is_terminal(),
                audit_log: Some(self.audit_log.clone()),
            };
            match EgilPusher::new(store, client, config).run().await {
                Ok(report) => {
                    if self.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).map_err(CliError::failed)?
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
                Err(error) => {
                    eprintln!(
                        "error: {error} (what the server accepted so far is recorded; run again to continue)"
                    );
                    Ok(ExitCode::from(1))
                }
            }
        })
    }
}

fn print_report(report: &EgilPushReport) {
    if report.stopped_by_guard {
        eprintln!("nothing sent: the mass-change guard stopped the run");
        for trip in &report.guard {
            eprintln!("  {trip}");
        }
        eprintln!(
            "check the source data; if the change is intended, run again with --accept-changes"
        );
    }
    println!(
        "{:<17} {:>7} {:>9} {:>7} {:>7} {:>7} {:>6} {:>7}",
        "resource", "live", "unchanged", "created", "updated", "deleted", "failed", "invalid"
    );
    for r in &report.resources {
        println!(
            "{:<17} {:>7} {:>9} {:>7} {:>7} {:>7} {:>6} {:>7}",
            r.resource, r.live, r.unchanged, r.created, r.updated, r.deleted, r.failed, r.invalid
        );
    }
    for failure in &report.failures {
        eprintln!(
            "refused: {} {}/{}: {} {}",
            failure.method, failure.resource, failure.id, failure.status, failure.detail
        );
    }
    for invalid in &report.invalid {
        eprintln!("not sent: {invalid}");
    }
}
