//! `skolfed-sso saml`: the federation's signed SAML metadata aggregate.

use std::path::PathBuf;

use skolfed_sso::fetch::{error_chain, unix_now};
use skolfed_sso::saml::{SigningCertificate, VerifyOptions, verify_aggregate};

use super::{EXIT_PROBLEMS, EXIT_UNREADABLE, FetchArgs, print_json};

/// The signed SAML metadata aggregate.
#[derive(clap::Subcommand, Debug)]
pub enum SamlCommand {
    Verify(VerifyArgs),
}

/// Verify the aggregate's XML-DSig signature (exclusive c14n, RSA-SHA256, SHA-256, enveloped
/// over the root) against the operator's certificate and its validUntil, then list the IdPs
/// and SPs of the verified root. Anything else (other algorithms, a signature elsewhere, a
/// DOCTYPE, expired metadata) is refused.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  skolfed-sso saml verify --cert skolfederation-md-signer.pem skolfederation-3_1.xml
  skolfed-sso saml verify --json --cert md-signer.pem https://fed.skolfederation.se/prod/md/skolfederation-3_1.xml

Exit codes: 0 verified, 1 refused, 3 unreadable (source or certificate).")]
pub struct VerifyArgs {
    /// The operator's metadata-signing certificate (PEM), as published by the federation.
    #[arg(long, value_name = "PEM", env = "SKOLFED_SSO_SAML_CERT")]
    cert: PathBuf,
    /// The aggregate: a file or an https URL.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Print JSON: {\"valid_until\", \"idps\": [{\"entity_id\", \"display_name\": {\"sv\", \"en\"}, \"logos\", \"organization\", \"scopes\"}], \"sps\": […]}.
    #[arg(long, env = "SKOLFED_SSO_JSON")]
    json: bool,
    #[command(flatten)]
    fetch: FetchArgs,
}

/// Runs the subcommand; the exit code.
pub async fn run(command: SamlCommand) -> u8 {
    let SamlCommand::Verify(args) = command;
    let certificate = match std::fs::read(&args.cert)
        .map_err(|e| format!("cannot read --cert {}: {e}", args.cert.display()))
        .and_then(|pem| SigningCertificate::from_pem(&pem).map_err(|e| error_chain(&e)))
    {
        Ok(certificate) => certificate,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_UNREADABLE;
        }
    };
    let bytes = match args.fetch.read(&args.source).await {
        Ok(bytes) => bytes,
        Err(code) => return code,
    };
    let aggregate = match verify_aggregate(&bytes, &certificate, VerifyOptions { now: unix_now() })
    {
        Ok(aggregate) => aggregate,
        Err(err) => {
            if args.json {
                print_json(&serde_json::json!({ "verified": false, "error": error_chain(&err) }));
            }
            eprintln!("error: {} refused: {}", args.source, error_chain(&err));
            return EXIT_PROBLEMS;
        }
    };
    if args.json {
        print_json(&aggregate);
        return 0;
    }
    let until = time::OffsetDateTime::from_unix_timestamp(aggregate.valid_until)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    println!(
        "verified: {} IdPs, {} SPs, valid until {until}",
        aggregate.idps.len(),
        aggregate.sps.len()
    );
    for idp in &aggregate.idps {
        let en = idp.display_name.en.as_deref().unwrap_or("-");
        println!(
            "idp  {}  {} / {en}  scopes: {}",
            idp.entity_id,
            idp.name("sv"),
            idp.scopes.join(" ")
        );
    }
    for sp in &aggregate.sps {
        let name = sp.display_name.get("sv").unwrap_or("-");
        println!("sp   {}  {name}", sp.entity_id);
    }
    0
}
