//! `skolfed-sso lint`: check an SSO-link document.

use skolfed_sso::Severity;
use skolfed_sso::links::parse;

use super::{EXIT_PROBLEMS, FetchArgs, print_json};

/// Check an SSO-link document: required fields, https URLs, sso_type consistent with its
/// fields, disabled a boolean. Each problem names its JSON path; an error means the
/// organization or service is left out by portals, a warning that it is kept.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  skolfed-sso lint sso-links.json
  skolfed-sso lint --json https://fed.skolfederation.se/sso-links.json | jq '.problems[]'

Exit codes: 0 no errors (warnings allowed unless --deny-warnings), 1 errors, 3 unreadable.")]
pub struct LintArgs {
    /// The document: a file or an https URL.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Print one JSON object: {\"organizations\", \"services\", \"errors\", \"warnings\", \"problems\": [{\"severity\", \"path\", \"message\"}]}.
    #[arg(long, env = "SKOLFED_SSO_JSON")]
    json: bool,
    /// Exit 1 on warnings too.
    #[arg(long, env = "SKOLFED_SSO_DENY_WARNINGS")]
    deny_warnings: bool,
    #[command(flatten)]
    fetch: FetchArgs,
}

/// Runs the lint; the exit code.
pub async fn run(args: LintArgs) -> u8 {
    let bytes = match args.fetch.read(&args.source).await {
        Ok(bytes) => bytes,
        Err(code) => return code,
    };
    let parsed = parse(&bytes);
    let errors = parsed
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = parsed.problems.len() - errors;
    let organizations = parsed.links.organizations.len();
    let services: usize = parsed
        .links
        .organizations
        .iter()
        .map(|o| o.links.len())
        .sum();
    if args.json {
        print_json(&serde_json::json!({
            "source": args.source,
            "organizations": organizations,
            "services": services,
            "errors": errors,
            "warnings": warnings,
            "problems": parsed.problems,
        }));
    } else {
        for problem in &parsed.problems {
            println!("{problem}");
        }
        println!(
            "{}: {organizations} organizations, {services} usable services; {errors} errors, {warnings} warnings",
            args.source
        );
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        EXIT_PROBLEMS
    } else {
        0
    }
}
