//! `fedtls keygen`, `fedtls sign` and `fedtls thumbprint`: the federation operator's key
//! and signing tools, and the member's check of a trust anchor.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use fedtls::jwk::{Algorithm, Jwks, PublicJwk, SigningKey};
use fedtls::jws::{JwsFormat, SignOptions, sign_metadata};
use fedtls::lint::{LintOptions, Severity, lint};
use serde_json::{Map, Value};

use super::lint::ProfileArg;
use super::{CliError, CliResult, read_file};

/// Arguments of `fedtls keygen`.
#[derive(Args)]
#[command(
    about = "Generate a metadata signing key: a private JWK and a JWKS to publish",
    long_about = "Generate a key for signing federation metadata.\n\n\
Writes the private key as a JWK (file mode 0600; keep it secret) and a JWKS holding only the \
public key, which members install as their trust anchor. Prints the kid and the key's RFC 7638 \
SHA-256 thumbprint (KID<TAB>THUMBPRINT) so the thumbprint can be confirmed with members through \
a second channel. Existing files are never overwritten unless --force is given.",
    after_help = "Example:\n  fedtls keygen --kid 2026-fed-1 --out-private fed-1.jwk --out-jwks fed.jwks\n  \
fedtls keygen --kid test-ed --alg EdDSA --out-private ed.jwk --out-jwks ed.jwks --force"
)]
pub struct KeygenArgs {
    /// Key id put in the JWK and in every signature's protected header (e.g. a UUID).
    #[arg(long)]
    kid: String,
    /// Signature algorithm: ES256 (recommended; what Moa uses), ES384, RS256, PS256 (RSA 2048) or EdDSA.
    #[arg(long, default_value = "ES256", value_parser = parse_algorithm)]
    alg: Algorithm,
    /// Where to write the private JWK (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    out_private: PathBuf,
    /// Where to write the public JWKS (the trust anchor to distribute).
    #[arg(long, value_name = "FILE")]
    out_jwks: PathBuf,
    /// Overwrite existing output files.
    #[arg(long)]
    force: bool,
}

/// Arguments of `fedtls sign`.
#[derive(Args)]
#[command(
    about = "Sign federation metadata as a JWS (General JSON by default)",
    long_about = "Sign a federation metadata JSON document with one or more private JWKs.\n\n\
The document is linted first as a whole aggregate (`fedtls lint --aggregate`: the official MATF \
schema and the federation-wide rules, with --profile moa also Moa's): on any error nothing is \
signed, the problems are listed on stderr and the exit code is 1. --allow-invalid signs anyway \
and lists on stderr what it let through.\n\n\
Sets iat (now), exp (now + --lifetime) and iss in the payload and in each protected header, adds \
cache_ttl if the document has none, and writes the JWS to stdout. Several --key options produce \
one signature per key in General JSON (key rollover: members trusting either key accept the \
document). Flattened and compact output take exactly one key. Compact output ends without a \
newline (the SUNET authorization server refuses one); JSON output ends with one.",
    after_help = "Examples:\n  fedtls sign --key fed-1.jwk --iss https://fed.example metadata.json > metadata.jws\n  \
fedtls sign --key old.jwk --key new.jwk --iss https://fed.example --lifetime 604800 metadata.json\n  \
cat metadata.json | fedtls sign --key fed-1.jwk --iss https://fed.example --format compact -"
)]
pub struct SignArgs {
    /// Private JWK to sign with; repeat for key rollover (one signature per key).
    #[arg(long = "key", value_name = "PRIVATE_JWK", required = true)]
    keys: Vec<PathBuf>,
    /// The federation's issuer identifier (URI), put in the payload and headers as iss.
    #[arg(long, value_name = "URI")]
    iss: String,
    /// Seconds until the document expires (exp = now + lifetime).
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(i64).range(1..))]
    lifetime: i64,
    /// Output serialization: general, flattened or compact.
    #[arg(long, default_value = "general")]
    format: JwsFormat,
    /// cache_ttl to add when the metadata has none (peers reject documents without it).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    cache_ttl: u64,
    /// The rule set the document is linted with before signing.
    #[arg(long, value_enum, default_value_t = ProfileArg::Matf)]
    profile: ProfileArg,
    /// Sign even if lint finds errors (they are listed on stderr).
    #[arg(long)]
    allow_invalid: bool,
    /// The metadata JSON object to sign; `-` reads stdin.
    #[arg(value_name = "METADATA_JSON")]
    metadata: PathBuf,
}

/// Arguments of `fedtls thumbprint`.
#[derive(Args)]
#[command(
    about = "Print the RFC 7638 thumbprint of each key in a JWKS",
    long_about = "Print KID<TAB>THUMBPRINT (RFC 7638, SHA-256, base64url) for each usable signature \
key of a JWKS (kid '-' when absent), to compare a trust anchor with the value the federation \
publishes through another channel. A single JWK (public or private) is accepted too. Skipped \
keys and warnings go to stderr.",
    after_help = "Example:\n  fedtls thumbprint fed.jwks"
)]
pub struct ThumbprintArgs {
    /// The JWKS (or single JWK) file.
    #[arg(value_name = "JWKS")]
    jwks: PathBuf,
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    text.parse::<Algorithm>().map_err(|e| e.to_string())
}

/// Runs `fedtls keygen`.
pub fn keygen(args: KeygenArgs) -> CliResult {
    if args.kid.trim().is_empty() {
        return Err(CliError::usage("--kid must not be empty"));
    }
    if args.out_private == args.out_jwks {
        return Err(CliError::usage(
            "--out-private and --out-jwks must be different files",
        ));
    }
    if !args.force {
        for path in [&args.out_private, &args.out_jwks] {
            if path.exists() {
                return Err(CliError::failed(format!(
                    "{} already exists (use --force to overwrite)",
                    path.display()
                )));
            }
        }
    }
    let key = SigningKey::generate(args.alg, &args.kid)
        .map_err(|e| CliError::failed(format!("cannot generate a key: {e}")))?;
    let mut private = key.to_private_jwk_json();
    private.push('\n');
    write_file(&args.out_private, private.as_bytes(), true, args.force)?;
    let public = key.public_jwk();
    let mut jwks = Jwks::from_keys(vec![public.clone()]).to_json();
    jwks.push('\n');
    write_file(&args.out_jwks, jwks.as_bytes(), false, args.force)?;
    println!("{}\t{}", key.kid(), public.thumbprint());
    Ok(ExitCode::SUCCESS)
}

/// Creates (or with `force`, replaces) a file; private files get mode 0600 on unix.
fn write_file(path: &Path, contents: &[u8], private: bool, force: bool) -> Result<(), CliError> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::failed(format!(
                "{} already exists (use --force to overwrite)",
                path.display()
            ))
        } else {
            CliError::failed(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    // An existing file replaced with --force keeps its old mode: tighten it.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CliError::failed(format!("cannot restrict {}: {e}", path.display())))?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
}

/// Runs `fedtls sign`.
pub fn sign(args: SignArgs) -> CliResult {
    if args.iss.trim().is_empty() {
        return Err(CliError::usage("--iss must not be empty"));
    }
    if args.format != JwsFormat::General && args.keys.len() != 1 {
        return Err(CliError::usage(format!(
            "--format {} takes exactly one --key ({} given); use general for several keys",
            args.format,
            args.keys.len()
        )));
    }
    let mut keys = Vec::with_capacity(args.keys.len());
    for path in &args.keys {
        let bytes = read_file(path)?;
        let key = SigningKey::from_jwk_json(&bytes)
            .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
        if keys.iter().any(|k: &SigningKey| k.kid() == key.kid()) {
            return Err(CliError::failed(format!(
                "{}: kid {:?} is used by another --key",
                path.display(),
                key.kid()
            )));
        }
        keys.push(key);
    }

    let (name, bytes) = if args.metadata.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buffer)
            .map_err(|e| CliError::failed(format!("cannot read stdin: {e}")))?;
        ("stdin".to_owned(), buffer)
    } else {
        (
            args.metadata.display().to_string(),
            read_file(&args.metadata)?,
        )
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| CliError::failed("the system clock is before 1970"))?;

    // Strict in what is published: lint the whole aggregate before signing it.
    let mut lint_options = LintOptions::new(args.profile.into(), now);
    lint_options.aggregate = true;
    let report = lint(&bytes, &lint_options);
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    if report.has_errors() {
        let errors = report.errors();
        let plural = if errors == 1 { "" } else { "s" };
        if !args.allow_invalid {
            return Err(CliError::failed(format!(
                "{name}: lint found {errors} error{plural} ({} profile, listed above): nothing signed; fix them, or sign anyway with --allow-invalid",
                lint_options.profile
            )));
        }
        eprintln!(
            "warning: {name}: signed with --allow-invalid despite {errors} lint error{plural} ({} profile): {}",
            lint_options.profile,
            report
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .map(|p| p.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let payload: Map<String, Value> = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(CliError::failed(format!(
                "{name}: metadata must be a JSON object"
            )));
        }
        Err(e) => return Err(CliError::failed(format!("{name}: not JSON: {e}"))),
    };

    let options = SignOptions {
        iss: args.iss,
        lifetime_secs: args.lifetime,
        now,
        format: args.format,
        default_cache_ttl: args.cache_ttl,
    };
    let key_refs: Vec<&SigningKey> = keys.iter().collect();
    let jws = sign_metadata(&payload, &key_refs, &options).map_err(CliError::failed)?;
    // The SUNET authorization server refuses a compact JWS followed by a newline.
    let end: &[u8] = if args.format == JwsFormat::Compact {
        b""
    } else {
        b"\n"
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(jws.trim_end().as_bytes())
        .and_then(|()| stdout.write_all(end))
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::failed(format!("cannot write the JWS: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `fedtls thumbprint`.
pub fn thumbprint(args: ThumbprintArgs) -> CliResult {
    let bytes = read_file(&args.jwks)?;
    let name = args.jwks.display();
    let is_single_jwk = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .is_some_and(|v| v.get("kty").is_some() && v.get("keys").is_none());
    let keys: Vec<PublicJwk> = if is_single_jwk {
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| CliError::failed(format!("{name}: {e}")))?;
        vec![
            PublicJwk::from_json_value(&value)
                .map_err(|e| CliError::failed(format!("{name}: {e}")))?,
        ]
    } else {
        let jwks = Jwks::from_json(&bytes).map_err(|e| CliError::failed(format!("{name}: {e}")))?;
        for note in jwks.skipped() {
            eprintln!("note: {name}: {note}");
        }
        jwks.keys().to_vec()
    };
    let mut out = String::new();
    for key in &keys {
        // A kid is untrusted text: keep one key per line, TAB-separated.
        match key.kid() {
            None => out.push('-'),
            Some(kid) if kid.chars().any(char::is_control) => {
                out.push_str(&kid.escape_debug().to_string());
            }
            Some(kid) => out.push_str(kid),
        }
        out.push('\t');
        out.push_str(&key.thumbprint());
        out.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::failed(format!("cannot write to stdout: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
