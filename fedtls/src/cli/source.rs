//! Reading a metadata source (file, stdin or URL) and the trust-anchor options that
//! `verify` and `lookup` share.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use fedtls::claims::ClaimsPolicy;
use fedtls::jwk::Jwks;
use fedtls::verify::{VerifiedMetadata, VerifyOptions, verify_metadata};

use super::{CliError, read_file};

/// The largest metadata document accepted (real aggregates are a few tens of MB).
const MAX_DOCUMENT_BYTES: u64 = 100 * 1024 * 1024;
/// How long a download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Options shared by every subcommand that verifies metadata.
#[derive(clap::Args, Debug)]
pub struct TrustArgs {
    /// The federation's trust anchor: a JWKS file with the operator's signing keys.
    #[arg(long, value_name = "JWKS")]
    pub jwks: PathBuf,
    /// Require this issuer (`iss`) exactly.
    #[arg(long, value_name = "URI")]
    pub iss: Option<String>,
    /// Clock-skew allowance in seconds for `iat` and `nbf` (`exp` gets none).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub leeway: u32,
    /// The metadata: a file path, `-` for standard input, or an https:// URL.
    #[arg(value_name = "SOURCE")]
    pub source: String,
}

impl TrustArgs {
    /// Loads the trust anchor and the source, then verifies and indexes the document.
    pub fn verify(&self, keep_payload: bool) -> Result<VerifiedMetadata, CliError> {
        let jwks_bytes = read_file(&self.jwks)?;
        let jwks = Jwks::from_json(&jwks_bytes)
            .map_err(|e| CliError::failed(format!("trust anchor {}: {e}", self.jwks.display())))?;
        for note in jwks.skipped() {
            eprintln!("warning: trust anchor {}: {note}", self.jwks.display());
        }
        let document = load_source(&self.source)?;
        let options = VerifyOptions {
            policy: ClaimsPolicy {
                leeway_secs: i64::from(self.leeway),
                required_iss: self.iss.clone(),
            },
            keep_payload,
            ..VerifyOptions::default()
        };
        verify_metadata(&document, &jwks, &options)
            .map_err(|e| CliError::failed(format!("metadata refused: {e}")))
    }
}

/// Reads a document from a file, standard input (`-`) or an http(s) URL.
pub fn load_source(source: &str) -> Result<Vec<u8>, CliError> {
    if source == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
        return check_size(buf, "standard input");
    }
    if source.starts_with("https://") || source.starts_with("http://") {
        return fetch(source);
    }
    check_size(read_file(std::path::Path::new(source))?, source)
}

fn check_size(buf: Vec<u8>, what: &str) -> Result<Vec<u8>, CliError> {
    if buf.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(CliError::failed(format!(
            "{what} is larger than {} MiB; refusing it",
            MAX_DOCUMENT_BYTES / 1024 / 1024
        )));
    }
    Ok(buf)
}

fn fetch(url: &str) -> Result<Vec<u8>, CliError> {
    let client = reqwest::blocking::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("fedtls/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CliError::failed(format!("cannot set up the HTTPS client: {e}")))?;
    let response = client
        .get(url)
        .send()
        .map_err(|e| CliError::failed(format!("cannot fetch {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(CliError::failed(format!(
            "cannot fetch {url}: HTTP {status}"
        )));
    }
    let mut buf = Vec::new();
    response
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::failed(format!("cannot read the body of {url}: {e}")))?;
    check_size(buf, url)
}
