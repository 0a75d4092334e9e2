//! `fedtls verify`: check signed metadata and report what is usable.

use std::path::PathBuf;
use std::process::ExitCode;

use fedtls::verify::VerifiedMetadata;
use fedtls::verify::unix_now;

use super::source::TrustArgs;
use super::{CliError, CliResult, rfc3339};

/// Verify signed federation metadata against the federation's JWKS.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  fedtls verify --jwks moa-jwks.json https://fed.skolfederation.se/prod/md/kontosynk.jws
  fedtls verify --jwks jwks.json --json --output payload.json metadata.jws

Exit 0 when the document is accepted (also when some entities were left out; they are listed),
1 when it is refused (one `error:` line on stderr says why), 2 for usage errors.")]
pub struct Args {
    #[command(flatten)]
    trust: TrustArgs,
    /// Print one JSON object (iss, iat, exp, kid, entities, rejected, ...) instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the verified payload (the metadata JSON) to this file.
    #[arg(long, value_name = "PAYLOAD_FILE")]
    output: Option<PathBuf>,
}

/// Runs `fedtls verify`.
pub fn run(args: Args) -> CliResult {
    let verified = args.trust.verify(args.output.is_some())?;
    if let (Some(path), Some(payload)) = (&args.output, verified.payload()) {
        std::fs::write(path, payload)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
    }
    let document = verified
        .document()
        .ok_or_else(|| CliError::failed("internal error: the source gave a merged snapshot"))?;
    if args.json {
        println!("{}", summary_json(document));
    } else {
        print_summary(document);
    }
    super::exit_without_freeing(verified);
    Ok(ExitCode::SUCCESS)
}

fn summary_json(verified: &VerifiedMetadata) -> serde_json::Value {
    let md = verified.index().metadata();
    serde_json::json!({
        "iss": verified.claims().iss(),
        "iat": verified.claims().iat(),
        "exp": verified.claims().exp(),
        "nbf": verified.claims().nbf(),
        "expires_in": verified.claims().exp() - unix_now(),
        "kid": verified.signature().kid,
        "alg": verified.signature().alg.to_string(),
        "key_thumbprint": verified.signature().key_thumbprint,
        "format": verified.signature().format.to_string(),
        "version": md.version,
        "cache_ttl": md.cache_ttl,
        "entities": verified.index().entities().len(),
        "rejected": verified.index().rejected(),
        "ambiguous_pins": verified.index().ambiguities(),
        "warnings": document_warnings(verified),
    })
}

/// Warnings about the document as a whole: the parser's, plus members that are optional in
/// the schema but that peers rely on (verify accepts the document all the same).
fn document_warnings(verified: &VerifiedMetadata) -> Vec<String> {
    let md = verified.index().metadata();
    let mut warnings = md.warnings.clone();
    if md.cache_ttl.is_none() {
        warnings.push(
            "the document has no cache_ttl: the SUNET authorization server drops such a document, and peers cannot tell how long to cache it; the operator should publish one (fedtls sign adds it)"
                .to_owned(),
        );
    }
    if verified.claims().iss().is_none() {
        warnings.push(
            "the document names no issuer (iss, in the payload or the protected header): peers cannot check who published it, and --iss cannot be enforced; the operator should sign with an iss"
                .to_owned(),
        );
    }
    warnings
}

fn print_summary(verified: &VerifiedMetadata) {
    let claims = verified.claims();
    let sig = verified.signature();
    let left = claims.exp() - unix_now();
    println!(
        "OK: metadata{} verified with key {} ({}, {} JSON; key thumbprint {})",
        claims
            .iss()
            .map(|i| format!(" from {i}"))
            .unwrap_or_default(),
        sig.kid.as_deref().unwrap_or("(no kid)"),
        sig.alg,
        sig.format,
        sig.key_thumbprint,
    );
    if let Some(iat) = claims.iat() {
        println!("issued:  {}", rfc3339(iat));
    }
    println!(
        "expires: {} (in {})",
        rfc3339(claims.exp()),
        human_duration(left)
    );
    println!(
        "entities: {} usable, {} left out",
        verified.index().entities().len(),
        verified.index().rejected().len()
    );
    for rejected in verified.index().rejected() {
        println!(
            "warning: entities[{}] ({}) left out: {}",
            rejected.index,
            rejected.entity_id.as_deref().unwrap_or("no entity_id"),
            rejected.reason
        );
    }
    for ambiguity in verified.index().ambiguities() {
        println!(
            "warning: {} pin {} is listed by {} entities ({}); lookups answer {}",
            ambiguity.role,
            ambiguity.pin,
            ambiguity.entity_ids.len(),
            ambiguity.entity_ids.join(", "),
            ambiguity.entity_ids[0]
        );
    }
    for warning in document_warnings(verified) {
        eprintln!("warning: {warning}");
    }
}

fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}
