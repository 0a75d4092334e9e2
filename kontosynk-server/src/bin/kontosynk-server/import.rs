//! `kontosynk-server import` and `export`: a school loads its SS 12000 data from JSON files
//! into the store the API server serves, and writes it back out.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use ss12000::import::{ImportOptions, ImportSummary, export, import_files};
use ss12000::{Collection, CollectionSummary, Database, Store};

/// Exit code when the import finished but `--keep-going` skipped bad objects.
const EXIT_REJECTED: i32 = 3;

/// Load SS 12000 objects from JSON files into a store (SQLite or PostgreSQL).
///
/// Each file is an object keyed by collection (`{"organisations": [...], "persons": [...]}`,
/// what `export` writes), or `{"data": [...]}` / a bare array named after its collection
/// (`persons.json`). Objects are stored exactly as the file has them; unknown collections and
/// fields are kept. Importing the same file again changes nothing.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  kontosynk-server import --db sqlite:school.db school.json
  kontosynk-server import --db postgres://kontosynk@%2Fvar%2Frun%2Fpostgresql/kontosynk \\
    organisations.json persons.json groups.json duties.json activities.json
  kontosynk-server import --db sqlite:school.db --replace --json nightly-export.json

Every object of a file is checked before anything of it is written: a bad object is reported \
with file, collection and index, and the file is not imported (--keep-going skips bad objects \
instead). Files are imported in order; files before a failing one stay imported.

Exit codes: 0 imported, 1 error (nothing of the failing file written), 2 usage error, \
3 imported but --keep-going skipped objects.")]
pub struct ImportArgs {
    /// The store: sqlite:PATH (created when missing) or a postgres:// URL.
    #[arg(long, env = "KONTOSYNK_DB", value_name = "DB")]
    db: Database,
    /// JSON files to import, in order.
    #[arg(required = true, value_name = "FILE.json")]
    files: Vec<PathBuf>,
    /// Skip bad objects (reported) instead of refusing their file.
    #[arg(long, env = "KONTOSYNK_IMPORT_KEEP_GOING")]
    keep_going: bool,
    /// Each collection in a file is complete: delete stored objects of it that the file lacks.
    #[arg(long, env = "KONTOSYNK_IMPORT_REPLACE")]
    replace: bool,
    /// Accept ids that are not UUIDs (legacy or test data). SS 12000 ids are UUIDs, and
    /// Skolverket's reference ingest refuses others, so by default such objects are refused.
    #[arg(long, env = "KONTOSYNK_IMPORT_ALLOW_NON_UUID_IDS")]
    allow_non_uuid_ids: bool,
    /// Objects per transaction.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000), env = "KONTOSYNK_IMPORT_BATCH_SIZE")]
    batch_size: u32,
    /// Print the summary as JSON on stdout.
    #[arg(long, env = "KONTOSYNK_IMPORT_JSON")]
    json: bool,
}

/// Runs the import and prints its summary.
pub async fn run(args: ImportArgs) -> Result<(), String> {
    let store = Store::open(&args.db).await.map_err(|e| e.to_string())?;
    let options = ImportOptions {
        keep_going: args.keep_going,
        batch_size: args.batch_size as usize,
        replace: args.replace,
        require_uuid_ids: !args.allow_non_uuid_ids,
    };
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let summary = import_files(&store, &args.files, &options, |p| {
        if show_progress {
            eprint!(
                "\r{}: {} {}/{}   ",
                p.path.display(),
                p.collection,
                p.done,
                p.total
            );
            if p.done == p.total {
                eprintln!();
            }
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let rejected = summary.rejected().count();
    let mut stdout = std::io::stdout().lock();
    let printed = if args.json {
        writeln!(stdout, "{}", summary_json(&args.db, &summary))
    } else {
        write_table(&mut stdout, &args.db, &summary)
    };
    printed.map_err(|e| format!("cannot write the summary: {e}"))?;
    if rejected > 0 {
        let _ = stdout.flush();
        std::process::exit(EXIT_REJECTED);
    }
    Ok(())
}

fn counts_json(counts: &CollectionSummary) -> serde_json::Value {
    serde_json::json!({
        "new": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "deleted": counts.deleted,
        "modified_set": counts.modified_set,
    })
}

fn collections_json(map: &BTreeMap<Collection, CollectionSummary>) -> serde_json::Value {
    map.iter()
        .map(|(c, counts)| (c.path().to_owned(), counts_json(counts)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn summary_json(db: &Database, summary: &ImportSummary) -> serde_json::Value {
    let files: Vec<serde_json::Value> = summary
        .files
        .iter()
        .map(|file| {
            let rejected: Vec<serde_json::Value> = file
                .rejected
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "collection": r.collection.path(),
                        "index": r.index,
                        "reason": r.reason,
                    })
                })
                .collect();
            serde_json::json!({
                "path": file.path.display().to_string(),
                "collections": collections_json(&file.collections),
                "rejected": rejected,
            })
        })
        .collect();
    serde_json::json!({
        "database": db.to_string(),
        "files": files,
        "totals": collections_json(&summary.totals),
        "rejected": summary.rejected().count(),
        "dangling": summary.dangling.iter().map(|d| serde_json::json!({
            "path": d.path.display().to_string(),
            "collection": d.collection.path(),
            "index": d.index,
            "member": d.member,
            "to": d.to.path(),
            "id": d.id,
            "references": d.references,
        })).collect::<Vec<_>>(),
    })
}

fn write_table(
    out: &mut impl Write,
    db: &Database,
    summary: &ImportSummary,
) -> std::io::Result<()> {
    writeln!(out, "imported {} file(s) into {db}", summary.files.len())?;
    let width = summary
        .totals
        .keys()
        .map(|c| c.path().len())
        .max()
        .unwrap_or(0)
        .max("collection".len());
    writeln!(
        out,
        "{:<width$}  {:>8}  {:>8}  {:>9}  {:>8}",
        "collection", "new", "updated", "unchanged", "deleted"
    )?;
    for (collection, c) in &summary.totals {
        writeln!(
            out,
            "{:<width$}  {:>8}  {:>8}  {:>9}  {:>8}",
            collection.path(),
            c.inserted,
            c.updated,
            c.unchanged,
            c.deleted
        )?;
    }
    for (collection, c) in &summary.totals {
        if c.modified_set > 0 {
            writeln!(
                out,
                "{collection}: {} changed without a newer meta.modified; set to the import time so incremental syncs see them",
                c.modified_set
            )?;
        }
    }
    const SHOWN: usize = 20;
    for d in summary.dangling.iter().take(SHOWN) {
        writeln!(
            out,
            "dangling: {}: {}[{}].{} names {}/{}, which the store does not hold ({} reference{}; imported anyway)",
            d.path.display(),
            d.collection,
            d.index,
            d.member,
            d.to,
            d.id,
            d.references,
            if d.references == 1 { "" } else { "s" }
        )?;
    }
    if summary.dangling.len() > SHOWN {
        writeln!(
            out,
            "dangling: {} more missing objects (--json lists them all)",
            summary.dangling.len() - SHOWN
        )?;
    }
    for r in summary.rejected() {
        writeln!(
            out,
            "skipped {}: {}[{}]: {}",
            r.path.display(),
            r.collection,
            r.index,
            r.reason
        )?;
    }
    Ok(())
}

/// Write a store's live objects as one JSON file (the shape `import` reads), objects exactly
/// as stored.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  kontosynk-server export --db sqlite:school.db > school.json
  kontosynk-server export --db sqlite:school.db --collection persons --output persons.json

Counts per collection go to stderr. Exit codes: 0 written, 1 error, 2 usage error.")]
pub struct ExportArgs {
    /// The store: sqlite:PATH or a postgres:// URL.
    #[arg(long, env = "KONTOSYNK_DB", value_name = "DB")]
    db: Database,
    /// Only this collection (repeatable); default every collection in the store.
    #[arg(long = "collection", value_name = "C", value_parser = parse_collection, env = "KONTOSYNK_EXPORT_COLLECTIONS", value_delimiter = ',')]
    collections: Vec<Collection>,
    /// Write here instead of stdout (replaced only when the export succeeds).
    #[arg(long, short, value_name = "FILE", env = "KONTOSYNK_EXPORT_OUTPUT")]
    output: Option<PathBuf>,
    /// Export what this EGIL client (its entity_id, or api-key:NAME) pushed to
    /// `kontosynk-server egil`, mapped to SS 12000:2020 objects (a file `import` loads).
    #[arg(
        long,
        value_name = "TENANT",
        env = "KONTOSYNK_EXPORT_EGIL_TENANT",
        conflicts_with = "collections"
    )]
    egil_tenant: Option<String>,
    /// List the EGIL clients that have pushed to this store (JSON lines: tenant,
    /// organization, organization_id) and exit.
    #[arg(long, env = "KONTOSYNK_EXPORT_EGIL_TENANTS", conflicts_with_all = ["collections", "egil_tenant"])]
    egil_tenants: bool,
}

fn parse_collection(text: &str) -> Result<Collection, String> {
    Collection::from_path(text).map_err(|e| e.to_string())
}

/// Writes the chosen export to `out`; the count per collection.
async fn write_export(
    store: &Store,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<Vec<(String, u64)>, ss12000::import::ExportError> {
    let mut out = out;
    match &args.egil_tenant {
        Some(tenant) => Ok(
            ss12000::egil::export::export_tenant(store, tenant, &mut out)
                .await?
                .into_iter()
                .collect(),
        ),
        None => Ok(export(store, &args.collections, &mut out)
            .await?
            .into_iter()
            .map(|(c, n)| (c.path().to_owned(), n))
            .collect()),
    }
}

/// Runs the export.
pub async fn run_export(args: ExportArgs) -> Result<(), String> {
    let store = Store::open(&args.db).await.map_err(|e| e.to_string())?;
    if args.egil_tenants {
        let mut out = std::io::stdout().lock();
        for tenant in store.egil_tenants().await.map_err(|e| e.to_string())? {
            let line = serde_json::json!({"tenant": tenant.id, "organization": tenant.organization,
                "organization_id": tenant.organization_id});
            writeln!(out, "{line}").map_err(|e| format!("cannot write: {e}"))?;
        }
        return Ok(());
    }
    let counts = match &args.output {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            write_export(&store, &args, &mut out)
                .await
                .map_err(|e| e.to_string())?
        }
        Some(path) => {
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".partial");
            let tmp = PathBuf::from(tmp);
            let file = std::fs::File::create(&tmp)
                .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let counts = match write_export(&store, &args, &mut out).await {
                Ok(counts) => counts,
                Err(e) => {
                    drop(out);
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.to_string());
                }
            };
            drop(out);
            std::fs::rename(&tmp, path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            counts
        }
    };
    for (collection, n) in counts {
        eprintln!("{collection}: {n}");
    }
    Ok(())
}
