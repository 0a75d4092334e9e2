//! Loading and verifying a metadata source (file, stdin or URL) with the trust-anchor options
//! that `verify` and `lookup` share. Sources go through the same [`MetadataStore`] servers use,
//! so timeouts, size limits and verification are identical everywhere.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use fedtls::claims::ClaimsPolicy;
use fedtls::jwk::Jwks;
use fedtls::snapshot::Snapshot;
use fedtls::store::{DEFAULT_MAX_BODY, MetadataSource, MetadataStore, StoreConfig};
use fedtls::verify::{VerifyOptions, unix_now, verify_metadata};

use super::{CliError, read_file};

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
    pub fn verify(&self, keep_payload: bool) -> Result<Arc<Snapshot>, CliError> {
        let jwks = Jwks::from_file(&self.jwks).map_err(CliError::failed)?;
        for note in jwks.skipped() {
            eprintln!("warning: trust anchor {}: {note}", self.jwks.display());
        }
        let mut options = VerifyOptions {
            keep_payload,
            ..VerifyOptions::default()
        };
        options.policy = ClaimsPolicy {
            leeway_secs: i64::from(self.leeway),
            required_iss: self.iss.clone(),
        };
        match self.metadata_source()? {
            // URLs go through the store, so fetching behaves exactly as in the servers.
            source @ MetadataSource::Url(_) => {
                let mut config = StoreConfig::new(source, jwks);
                config.verify = options;
                let store = MetadataStore::new(config).map_err(CliError::failed)?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        CliError::failed(format!("cannot start the async runtime: {e}"))
                    })?;
                runtime.block_on(store.load()).map_err(CliError::failed)
            }
            // A one-shot local read needs no refresh machinery (nor its change detection).
            MetadataSource::File(path) => {
                let bytes = read_file(&path)?;
                verified(&bytes, &jwks, &options, path.display().to_string())
            }
            MetadataSource::Bytes(bytes) => {
                verified(&bytes, &jwks, &options, "standard input".into())
            }
        }
    }

    fn metadata_source(&self) -> Result<MetadataSource, CliError> {
        if self.source != "-" {
            return Ok(match self.source.parse::<MetadataSource>() {
                Ok(source) => source,
                Err(never) => match never {},
            });
        }
        let limit = DEFAULT_MAX_BODY;
        let mut buf = Vec::new();
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
        if buf.len() as u64 > limit {
            return Err(CliError::failed(format!(
                "standard input is larger than {} MiB; refusing it",
                limit / 1024 / 1024
            )));
        }
        Ok(MetadataSource::Bytes(buf))
    }
}

fn verified(
    bytes: &[u8],
    jwks: &Jwks,
    options: &VerifyOptions,
    origin: String,
) -> Result<Arc<Snapshot>, CliError> {
    if bytes.len() as u64 > DEFAULT_MAX_BODY {
        return Err(CliError::failed(format!(
            "{origin} is larger than {} MiB; refusing it",
            DEFAULT_MAX_BODY / 1024 / 1024
        )));
    }
    let verified = verify_metadata(bytes, jwks, options)
        .map_err(|e| CliError::failed(format!("metadata from {origin} refused: {e}")))?;
    Ok(Arc::new(Snapshot::new(verified, origin, unix_now())))
}
