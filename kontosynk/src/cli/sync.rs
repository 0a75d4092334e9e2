//! `kontosynk sync`: mirror a school's SS 12000 API into a local store.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use fedtls::{OrganizationId, Pin};
use fedtls::snapshot::SnapshotSource;
use fedtls::store::MetadataSources;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ss12000::{Collection, Database, Store};

use kontosynk_client::client::{FederationClient, RetryPolicy};
use kontosynk_client::discovery::{Choice, ServerQuery, ServerTarget};
use kontosynk_client::sync::{
    CollectionReport, Mode, Progress, RunBounds, SyncOptions, Syncer, report_to_server,
};

use super::CliError;
use super::federation::RequiredFederation;

/// Sync a school's SS 12000 API (organisations, persons, groups, duties, activities and any
/// extra collections) into a local store over pinned mutual TLS: a full listing the first
/// time, then only what changed (meta.modified.after with a 5-minute overlap) plus
/// deletedEntities. Every page is committed with its resume point, so an interrupted sync
/// continues where it stopped.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    kontosynk sync --metadata https://fed.skolfederation.se/trial/md/kontosynk.jws --jwks moa-trial.jwks \\\n      \
    --cert client.pem --key client.key --server-entity https://school.example/fedtls --db sqlite:client.sqlite\n  \
    kontosynk sync … --server-tag egilv1 --organization-id SE2120001234 --json > summary.json\n  \
    kontosynk sync … --server-entity https://school.example/fedtls --full --collection placements --report\n  \
    kontosynk sync … --url https://school.example/ss12000/v2.0 --pin 'base64…=' --db postgres://kontosynk@db/kontosynk\n\n\
    Exit codes: 0 synced, 1 the sync failed or hit --max-pages, --max-objects or --deadline\n\
    (the store keeps every page committed before; re-run to continue), 2 usage or setup error (flags, files, metadata, no such server).")]
pub struct Args {
    #[command(flatten)]
    federation: RequiredFederation,
    /// The school's entity id in the metadata.
    #[arg(long, value_name = "ID", required_unless_present_any = ["server_tag", "organization_id", "url"], env = "KONTOSYNK_SYNC_SERVER_ENTITY")]
    server_entity: Option<String>,
    /// Only servers with this tag (e.g. egilv1).
    #[arg(long, value_name = "T", env = "KONTOSYNK_SYNC_SERVER_TAG")]
    server_tag: Option<String>,
    /// Only servers of entities with this organization id.
    #[arg(long, value_name = "ID", env = "KONTOSYNK_SYNC_ORGANIZATION_ID")]
    organization_id: Option<OrganizationId>,
    /// The server's base_uri as the metadata lists it (an alternative to the queries above).
    #[arg(long, value_name = "URL", conflicts_with_all = ["server_entity", "server_tag", "organization_id"], env = "KONTOSYNK_SYNC_URL")]
    url: Option<String>,
    /// With --url: require that the metadata lists this SPKI pin (base64 SHA-256) for it.
    #[arg(long, value_name = "PIN", requires = "url", env = "KONTOSYNK_SYNC_PIN")]
    pin: Option<String>,
    /// The store: sqlite:PATH (created when missing) or a postgres:// URL.
    #[arg(
        long,
        value_name = "DATABASE",
        env = "KONTOSYNK_DB",
        default_value = "sqlite:kontosynk-client.sqlite"
    )]
    db: String,
    /// List everything again, ignoring watermarks.
    #[arg(long, env = "KONTOSYNK_SYNC_FULL")]
    full: bool,
    /// Also sync this collection after the standard five (repeatable), e.g. placements.
    #[arg(long = "collection", value_name = "C", env = "KONTOSYNK_SYNC_COLLECTIONS", value_delimiter = ',')]
    collections: Vec<String>,
    /// Objects per page requested.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000), env = "KONTOSYNK_SYNC_LIMIT")]
    limit: u32,
    /// Seconds subtracted from a pass's start to make the next watermark.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(i64).range(0..), env = "KONTOSYNK_SYNC_OVERLAP")]
    overlap: i64,
    /// Do not fetch deletedEntities.
    #[arg(long, env = "KONTOSYNK_SYNC_NO_DELETIONS")]
    no_deletions: bool,
    /// Seconds allowed for each request.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..), env = "KONTOSYNK_SYNC_TIMEOUT")]
    timeout: u64,
    /// Most pages one listing (a collection, or deletedEntities) may take in one run. A server
    /// that keeps handing out new page tokens is stopped there; what was committed is kept.
    #[arg(long, value_name = "N", env = "KONTOSYNK_SYNC_MAX_PAGES",
          default_value_t = RunBounds::default().max_pages,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_pages: u64,
    /// Most objects (or deleted ids) one listing may bring in one run; far above any school.
    #[arg(long, value_name = "N", env = "KONTOSYNK_SYNC_MAX_OBJECTS",
          default_value_t = RunBounds::default().max_objects,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_objects: u64,
    /// Seconds the whole run may take; when they pass the run stops after its last committed
    /// page, and the next run continues from there.
    #[arg(long, value_name = "SECONDS", env = "KONTOSYNK_SYNC_DEADLINE",
          default_value_t = RunBounds::default().deadline.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    deadline: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long, env = "KONTOSYNK_SYNC_JSON")]
    json: bool,
    /// Afterwards, POST the counts to the server's /statistics and a summary to its /log.
    #[arg(long, env = "KONTOSYNK_SYNC_REPORT")]
    report: bool,
}

impl Args {
    fn options(&self) -> Result<SyncOptions, CliError> {
        let mut extra = Vec::new();
        for name in &self.collections {
            extra.push(
                Collection::from_path(name)
                    .map_err(|e| CliError::failed(format!("--collection: {e}")))?,
            );
        }
        Ok(SyncOptions {
            limit: self.limit,
            overlap_seconds: self.overlap,
            full: self.full,
            deletions: !self.no_deletions,
            bounds: RunBounds {
                max_pages: self.max_pages,
                max_objects: self.max_objects,
                deadline: Duration::from_secs(self.deadline),
            },
            ..SyncOptions::default()
        }
        .with_extra_collections(extra))
    }

    /// The server: by query, or by `--url` (and `--pin`) among the metadata's servers.
    fn target(&self, metadata: &MetadataSources) -> Result<ServerTarget, CliError> {
        let snapshot = metadata
            .current()
            .ok_or_else(|| CliError::failed("no valid federation metadata"))?;
        let index = snapshot.index();
        let Some(url) = &self.url else {
            let query = ServerQuery {
                entity_id: self.server_entity.clone(),
                tag: self.server_tag.clone(),
                organization_id: self.organization_id.clone(),
            };
            return query
                .select(index, Choice::Unique)
                .map_err(CliError::failed);
        };
        let wanted =
            reqwest::Url::parse(url).map_err(|e| CliError::failed(format!("--url {url}: {e}")))?;
        let pin = match &self.pin {
            Some(text) => Some(
                text.parse::<Pin>()
                    .map_err(|e| CliError::failed(format!("--pin {text}: {e}")))?,
            ),
            None => None,
        };
        let found = ServerQuery::default().find(index);
        let mut matches = found
            .servers
            .into_iter()
            .filter(|s| s.base_uri == wanted)
            .filter(|s| pin.is_none_or(|p| s.pins.contains(&p)));
        let target = matches.next().ok_or_else(|| {
            CliError::failed(format!(
                "no server in the federation metadata has base_uri {wanted}{}: the client only \
                 calls servers (and pins) the metadata lists",
                if pin.is_some() { " and that pin" } else { "" }
            ))
        })?;
        if matches.next().is_some() {
            return Err(CliError::failed(format!(
                "several entities list base_uri {wanted}; use --server-entity"
            )));
        }
        Ok(target)
    }

    /// Runs the sync.
    pub fn run(self) -> Result<ExitCode, CliError> {
        let options = self.options()?;
        let database: Database = self
            .db
            .parse()
            .map_err(|e| CliError::failed(format!("--db: {e}")))?;
        let identity = self.federation.identity()?;
        let runtime = super::runtime()?;
        runtime.block_on(async move {
            let metadata = self.federation.metadata_store().await?;
            let target = self.target(&metadata)?;
            let client = FederationClient::builder(std::sync::Arc::new(metadata.clone()), identity)
                .server(target)
                .timeout(Some(Duration::from_secs(self.timeout)))
                .retry(RetryPolicy::default())
                .build()
                .map_err(CliError::failed)?;
            let store = Store::open(&database)
                .await
                .map_err(|e| CliError::failed(format!("--db: {e}")))?;
            let syncer = Syncer::for_client(&client, store).options(options);
            let bars = Bars::new(std::io::stderr().is_terminal() && !self.json);
            let outcome = syncer.run(&bars).await;
            bars.clear();
            if self.report
                && let Err(e) =
                    report_to_server(client.sender(), client.base_uri(), outcome.as_ref()).await
            {
                tracing::warn!(error = %e, "could not report to the server");
                eprintln!("warning: reporting to the server failed: {e}");
            }
            match outcome {
                Ok(report) => {
                    if self.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report)
                                .map_err(|e| CliError::failed(e.to_string()))?
                        );
                    } else {
                        print!("{}", report.table());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    Ok(ExitCode::from(1))
                }
            }
        })
    }
}

/// Progress bars on stderr, one per collection, only on a terminal.
struct Bars {
    multi: Option<MultiProgress>,
    current: Mutex<Option<(Collection, ProgressBar)>>,
}

impl Bars {
    fn new(enabled: bool) -> Bars {
        Bars {
            multi: enabled.then(MultiProgress::new),
            current: Mutex::new(None),
        }
    }

    fn clear(&self) {
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

impl Progress for Bars {
    fn started(&self, collection: &Collection, mode: Mode) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix:<14} {pos:>9} objects {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(collection.path().to_owned());
        bar.set_message(format!("{mode:?}").to_lowercase());
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((collection.clone(), bar));
    }

    fn page(&self, collection: &Collection, items: usize) {
        if let Some((c, bar)) = &*self.current.lock().unwrap_or_else(|p| p.into_inner())
            && c == collection
        {
            bar.inc(items as u64);
        }
    }

    fn finished(&self, report: &CollectionReport) {
        if let Some((_, bar)) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            bar.finish_with_message(format!(
                "{} new, {} updated, {} unchanged",
                report.new, report.updated, report.unchanged
            ));
        }
    }
}
