//! `fedtls federation init`: a complete local test federation.

use std::path::PathBuf;
use std::process::ExitCode;

use fedtls::jwk::Jwks;
use fedtls::testfed::{FederationOptions, TestFederation, init};
use fedtls::verify::{VerifyOptions, verify_metadata};

use super::{CliError, CliResult};

/// Manage local test federations.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: FederationCommand,
}

#[derive(clap::Subcommand, Debug)]
enum FederationCommand {
    /// Create a complete local test federation in DIR.
    Init(InitArgs),
}

/// Create a signing key, JWKS, member certificates and signed metadata in DIR.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Creates, in DIR:
  jwks.json                   the trust anchor members use (--jwks)
  federation-signing-key.jwk  the operator's private key (mode 0600)
  metadata.json / .jws        the payload and the signed metadata (General JSON, ES256)
  certs/NAME.pem, NAME.key    school-server, school-client (self-signed), supplier-ca,
                              supplier-client, supplier-server (chain to supplier-ca),
                              authserver (tag gnapv1), unlisted-client (not in the metadata)
  federation.json             a manifest of all of the above with pins and entity ids

Example:
  fedtls federation init /tmp/fed && fedtls verify --jwks /tmp/fed/jwks.json /tmp/fed/metadata.jws")]
pub struct InitArgs {
    /// The directory to create (must be empty unless --force).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The federation's issuer URI.
    #[arg(
        long,
        value_name = "URI",
        default_value = "https://fed.test.example/md"
    )]
    iss: String,
    /// Metadata lifetime in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30 * 86_400)]
    lifetime: i64,
    /// Host name for server certificates and base URIs.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Overwrite files in a non-empty directory.
    #[arg(long)]
    force: bool,
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Runs `fedtls federation …`.
pub fn run(args: Args) -> CliResult {
    match args.command {
        FederationCommand::Init(args) => run_init(args),
    }
}

fn run_init(args: InitArgs) -> CliResult {
    if args.lifetime <= 0 {
        return Err(CliError::usage(
            "--lifetime must be a positive number of seconds",
        ));
    }
    let options = FederationOptions {
        iss: args.iss,
        metadata_lifetime_secs: args.lifetime,
        host: args.host,
        force: args.force,
        ..FederationOptions::default()
    };
    let federation = init(&args.dir, &options).map_err(CliError::failed)?;
    let entities = self_check(&federation)?;
    if args.json {
        let text = serde_json::to_string_pretty(&federation).map_err(CliError::failed)?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("test federation created in {}", federation.dir.display());
    println!("  trust anchor:    {}", federation.jwks.display());
    println!("  signed metadata: {}", federation.metadata_jws.display());
    for party in &federation.parties {
        println!(
            "  {:<16} {:<7} {}  {}",
            party.name,
            party.role,
            party.pin,
            party
                .entity_id
                .as_deref()
                .unwrap_or("(not in the metadata)")
        );
    }
    println!(
        "verified: {} signed with the new key, {entities} entities usable",
        federation.metadata_jws.display()
    );
    println!(
        "next: fedtls verify --jwks {} {}",
        federation.jwks.display(),
        federation.metadata_jws.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Verifies the freshly written metadata with the freshly written JWKS, as a member would.
fn self_check(federation: &TestFederation) -> Result<usize, CliError> {
    let read = |path: &std::path::Path| super::read_file(path);
    let jwks = Jwks::from_json(&read(&federation.jwks)?).map_err(CliError::failed)?;
    let verified = verify_metadata(
        &read(&federation.metadata_jws)?,
        &jwks,
        &VerifyOptions::default(),
    )
    .map_err(|e| CliError::failed(format!("the new federation does not verify: {e}")))?;
    Ok(verified.index().entities().len())
}
