//! `fedtls lint`: check a member's metadata before upload.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use fedtls::lint::{LintOptions, Profile, lint};
use fedtls::pin::pem_certificates;

use super::{CliError, CliResult, read_file};

/// Rule sets for `--profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// The MATF (RFC 9932) metadata schema only.
    Matf,
    /// MATF plus Skolfederation's Moa profile (strengthened tags, organization, organization_id, saml-scope).
    Moa,
}

impl From<ProfileArg> for Profile {
    fn from(arg: ProfileArg) -> Self {
        match arg {
            ProfileArg::Matf => Profile::Matf,
            ProfileArg::Moa => Profile::Moa,
        }
    }
}

/// Check a member's metadata file before upload.
#[derive(Debug, Args)]
#[command(
    long_about = "Check a member's metadata before upload: the MATF schema, pins, issuer certificates \
(CA or self-signed, validity, algorithms, unique subjects), unique client pins and, with the Moa \
profile, strengthened tags, organization, organization_id and the saml-scope extension.\n\n\
Accepts a whole document {\"version\", \"entities\": [...]}, a single entity object or an array of \
entities. Each problem is printed as `error|warning: JSON-PATH: MESSAGE`, followed by a summary and \
the SHA-1 and SHA-256 of the file exactly as read.\n\n\
Before publishing, the federation operator confirms the file's SHA-1 checksum with the technical \
contact by phone: keep the printed SHA-1 at hand, and upload exactly the file you linted.\n\n\
With --cert, each certificate must match a pin in the file and be issued by that entity's issuers \
(or be listed as an issuer itself); pins matching none of the given certificates are warned about. \
A chain file may be given: CA certificates that match no pin are used as intermediates.\n\n\
Every violation of the official MATF JSON Schema (both embedded versions: Moa production 712c5bf \
and HEAD c4134bc) is an error, under every profile.\n\n\
Operators lint a whole aggregate with --aggregate (automatic when the file holds two or more \
organization_ids): duplicate entity_ids, client pins shared between entities, issuer subjects \
used twice, one organization_id with two names, and server certificates that do not name their \
base_uri host, without \"organization differs\" warnings between members.\n\n\
Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 usage error.",
    after_help = "Example:\n  fedtls lint --profile moa --cert client.pem --cert server-chain.pem metadata.json"
)]
pub struct LintArgs {
    /// Rule set to apply.
    #[arg(long, value_enum, default_value_t = ProfileArg::Moa)]
    pub profile: ProfileArg,
    /// A PEM certificate (or chain, leaf first) that an endpoint in the file will use; repeatable.
    #[arg(long = "cert", value_name = "PEM")]
    pub certs: Vec<PathBuf>,
    /// Print one JSON object {problems, errors, warnings, sha1, sha256} instead of text.
    #[arg(long)]
    pub json: bool,
    /// Warn about certificates expiring within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub expiry_warning_days: i64,
    /// Lint a whole federation aggregate (operators): federation-wide rules only, no
    /// "organization differs" between members. On by itself when the file holds two or more
    /// organization_ids.
    #[arg(long)]
    pub aggregate: bool,
    /// Check certificate validity at this Unix time instead of now (for tests and what-if checks).
    #[arg(long, value_name = "UNIX_SECONDS", hide = true)]
    pub now: Option<i64>,
    /// The metadata file (`-` for standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `fedtls lint`.
pub fn run(args: LintArgs) -> CliResult {
    let input = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
        buf
    } else {
        read_file(&args.file)?
    };

    let mut certificates = Vec::new();
    for path in &args.certs {
        let pem = read_file(path)?;
        let certs = pem_certificates(&pem)
            .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
        certificates.extend(certs);
    }

    let now = match args.now {
        Some(now) => now,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| CliError::failed(format!("the system clock is before 1970: {e}")))
            .and_then(|d| {
                i64::try_from(d.as_secs())
                    .map_err(|_| CliError::failed("the system clock is out of range"))
            })?,
    };
    let opts = LintOptions {
        profile: args.profile.into(),
        now,
        certificates,
        expiry_warning_days: args.expiry_warning_days,
        aggregate: args.aggregate,
    };
    let report = lint(&input, &opts);
    let notes = rotation_notes(&report, now);

    if args.json {
        let out = serde_json::json!({
            "problems": report.problems,
            "errors": report.errors(),
            "warnings": report.warnings(),
            "sha1": report.sha1_hex,
            "sha256": report.sha256_hex,
            "aggregate": report.aggregate,
            "notes": notes,
        });
        let text = serde_json::to_string_pretty(&out)
            .map_err(|e| CliError::failed(format!("cannot encode the report: {e}")))?;
        println!("{text}");
    } else {
        for problem in &report.problems {
            println!("{problem}");
        }
        for note in &notes {
            println!("note: {note}");
        }
        let (errors, warnings) = (report.errors(), report.warnings());
        if errors == 0 && warnings == 0 {
            println!(
                "{}: no problems ({} profile{})",
                args.file.display(),
                opts.profile,
                if report.aggregate { ", aggregate" } else { "" }
            );
        } else {
            println!(
                "{}: {errors} error{}, {warnings} warning{} ({} profile{})",
                args.file.display(),
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
                opts.profile,
                if report.aggregate { ", aggregate" } else { "" }
            );
        }
        println!("SHA-1: {}", report.sha1_hex);
        println!("SHA-256: {}", report.sha256_hex);
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// For each endpoint that lists several pins (a certificate being renewed): when peers see the
/// new pin, so the member knows when it may switch.
fn rotation_notes(report: &fedtls::lint::LintReport, now: i64) -> Vec<String> {
    report
        .rotating
        .iter()
        .map(|(path, pins)| {
            format!(
                "{path} lists {pins} pins (a certificate being renewed?): {}",
                super::entity::when_peers_see_it(report.cache_ttl, now)
            )
        })
        .collect()
}
