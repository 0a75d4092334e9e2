//! `fedtls federation init`: a complete local test federation.

use std::path::PathBuf;
use std::process::ExitCode;

use fedtls::jwk::Jwks;
use fedtls::testfed::{CertValidity, FederationOptions, TestFedError, TestFederation, init};
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
                              authserver (tag gnapv1), unlisted-client (not in the metadata);
                              each new key file starts with a note that it is test material
  federation.json             a manifest of all of the above with pins and entity ids

Every certificate is valid from --not-before to --not-after, not relative to now, so a
regeneration with --keep-keys gives the same keys, pins, JWKS, serial numbers and validity;
only the signatures and the metadata's iat/exp change.

Examples:
  fedtls federation init /tmp/fed && fedtls verify --jwks /tmp/fed/jwks.json /tmp/fed/metadata.jws
  # Re-issue the certificates and re-sign the metadata (valid ten years) with the same keys:
  fedtls federation init /tmp/fed --force --keep-keys --lifetime 315360000")]
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
    /// Metadata lifetime in seconds (315360000 is ten years).
    #[arg(long, value_name = "SECONDS", default_value_t = 30 * 86_400)]
    lifetime: i64,
    /// Host name for server certificates and base URIs.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Overwrite files in a non-empty directory.
    #[arg(long)]
    force: bool,
    /// Reuse the operator key and the party keys already in DIR, creating only missing ones,
    /// so the JWKS and every pin stay the same. Kept key files are not rewritten.
    #[arg(long)]
    keep_keys: bool,
    /// First day (00:00:00 UTC) the certificates are valid: YYYY-MM-DD, or an RFC 3339 UTC
    /// time such as 2026-01-01T00:00:00Z.
    #[arg(long, value_name = "DATE", default_value = "2026-01-01", value_parser = parse_not_before)]
    not_before: i64,
    /// Last day (until 23:59:59 UTC) the certificates are valid: YYYY-MM-DD, or an RFC 3339
    /// UTC time. Dates up to 2049 keep the UTCTime encoding every X.509 parser reads.
    #[arg(long, value_name = "DATE", default_value = "2049-12-31", value_parser = parse_not_after)]
    not_after: i64,
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

fn parse_not_before(text: &str) -> Result<i64, String> {
    parse_utc(text, false)
}

fn parse_not_after(text: &str) -> Result<i64, String> {
    parse_utc(text, true)
}

/// `YYYY-MM-DD` (its first second, or its last with `end_of_day`) or
/// `YYYY-MM-DDTHH:MM:SSZ`, as Unix seconds.
fn parse_utc(text: &str, end_of_day: bool) -> Result<i64, String> {
    let bad = || format!("{text:?} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    let (date, clock) = match text.split_once(['T', 't']) {
        Some((date, clock)) => {
            let clock = clock
                .strip_suffix(['Z', 'z'])
                .ok_or_else(|| format!("{text:?}: give the time in UTC, ending in Z"))?;
            (date, Some(clock))
        }
        None => (text, None),
    };
    let number = |part: Option<&str>, digits: usize| {
        part.filter(|p| p.len() == digits && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(bad)
    };
    let mut ymd = date.split('-');
    let (year, month, day) = (
        number(ymd.next(), 4)?,
        number(ymd.next(), 2)?,
        number(ymd.next(), 2)?,
    );
    if ymd.next().is_some() {
        return Err(bad());
    }
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let date = time::Date::from_calendar_date(i32::from(year), month, day as u8)
        .map_err(|e| format!("{text:?}: {e}"))?;
    let clock = match clock {
        Some(clock) => {
            let mut hms = clock.split(':');
            let (h, m, s) = (
                number(hms.next(), 2)?,
                number(hms.next(), 2)?,
                number(hms.next(), 2)?,
            );
            if hms.next().is_some() {
                return Err(bad());
            }
            time::Time::from_hms(h as u8, m as u8, s as u8).map_err(|e| format!("{text:?}: {e}"))?
        }
        None if end_of_day => time::Time::from_hms(23, 59, 59).map_err(|e| e.to_string())?,
        None => time::Time::MIDNIGHT,
    };
    Ok(time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp())
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
    if args.not_before >= args.not_after {
        return Err(CliError::usage("--not-before must come before --not-after"));
    }
    let options = FederationOptions {
        iss: args.iss,
        metadata_lifetime_secs: args.lifetime,
        cert_validity: CertValidity::Fixed {
            not_before: args.not_before,
            not_after: args.not_after,
        },
        host: args.host,
        force: args.force,
        keep_keys: args.keep_keys,
        ..FederationOptions::default()
    };
    let federation = init(&args.dir, &options).map_err(|e| match e {
        TestFedError::NotEmpty(_) if args.keep_keys => CliError::failed(format!(
            "{e} (with --keep-keys, --force rewrites all but the keys)"
        )),
        e => CliError::failed(e),
    })?;
    let entities = self_check(&federation)?;
    if args.json {
        let text = serde_json::to_string_pretty(&federation).map_err(CliError::failed)?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("test federation created in {}", federation.dir.display());
    println!("  trust anchor:    {}", federation.jwks.display());
    println!("  signed metadata: {}", federation.metadata_jws.display());
    println!(
        "  keys:            {} reused, {} created",
        federation.reused_keys.len(),
        federation.parties.len() + 1 - federation.reused_keys.len()
    );
    println!(
        "  certificates:    valid {} to {}",
        super::rfc3339(args.not_before),
        super::rfc3339(args.not_after)
    );
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
        "verified: {} signed with the operator key, {entities} entities usable",
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
    let jwks = Jwks::from_file(&federation.jwks).map_err(CliError::failed)?;
    let verified = verify_metadata(
        &read(&federation.metadata_jws)?,
        &jwks,
        &VerifyOptions::default(),
    )
    .map_err(|e| CliError::failed(format!("the new federation does not verify: {e}")))?;
    Ok(verified.index().entities().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_cover_whole_days_in_utc() {
        // The defaults are the library's development window.
        let CertValidity::Fixed {
            not_before,
            not_after,
        } = CertValidity::DEVELOPMENT
        else {
            panic!("the development window is fixed");
        };
        assert_eq!(parse_not_before("2026-01-01"), Ok(not_before));
        assert_eq!(parse_not_after("2049-12-31"), Ok(not_after));
        assert_eq!(parse_not_before("2026-01-01T00:00:00Z"), Ok(1_767_225_600));
        assert_eq!(parse_not_after("2049-12-31T12:00:00Z"), Ok(2_524_564_800));
        for bad in [
            "2026-1-01",
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+01:00",
            "2026-01-01T24:00:00Z",
            "2026-01-01-01",
            "",
        ] {
            assert!(parse_not_before(bad).is_err(), "{bad}");
        }
    }
}
