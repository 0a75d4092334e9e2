//! The federation inputs the networked subcommands share: the signed metadata, its trust
//! anchor, the required issuer, and our client certificate and key.
//!
//! One declaration keeps the flag names, environment variables, help and error messages the
//! same in `health`, `sync`, `token` and `push`, and one loader builds the verified
//! [`MetadataStore`] for them and for `quickstart`.

use std::path::{Path, PathBuf};

use fedtls::claims::ClaimsPolicy;
use fedtls::jwk::Jwks;
use fedtls::store::{MetadataSource, MetadataStore, StoreConfig};
use kontosynk_client::client::Identity;

use super::CliError;

/// `--metadata`, `--jwks`, `--iss`, `--cert` and `--key`, flattened into a subcommand.
///
/// `REQUIRED` says whether clap demands the metadata, trust anchor, certificate and key:
/// `health` and `sync` cannot run without them ([`RequiredFederation`]); `token` and `push`
/// can replace discovery with `--as-url`/`--as-pin` (or a token file), so they take them
/// when needed ([`OptionalFederation`]) and ask with a clear error.
#[derive(clap::Args, Debug, Clone)]
pub struct FederationArgs<const REQUIRED: bool> {
    /// Federation metadata: an https:// URL or a file.
    #[arg(long, value_name = "SOURCE", env = "KONTOSYNK_METADATA", required = REQUIRED)]
    metadata: Option<String>,
    /// The federation's trust anchor (JWKS file) that signs the metadata.
    #[arg(long, value_name = "JWKS", env = "KONTOSYNK_JWKS", required = REQUIRED)]
    jwks: Option<PathBuf>,
    /// Require this metadata issuer (`iss`).
    #[arg(long, value_name = "URI", env = "KONTOSYNK_METADATA_ISS")]
    iss: Option<String>,
    /// Your client certificate chain (PEM, leaf first), presented in every handshake.
    #[arg(long, value_name = "CLIENT_PEM", env = "KONTOSYNK_CLIENT_CERT", required = REQUIRED)]
    cert: Option<PathBuf>,
    /// Your client private key (PEM).
    #[arg(long, value_name = "CLIENT_KEY", env = "KONTOSYNK_CLIENT_KEY", required = REQUIRED)]
    key: Option<PathBuf>,
}

/// The federation flags of a subcommand that always needs them (`health`, `sync`).
pub type RequiredFederation = FederationArgs<true>;

/// The federation flags of a subcommand that can do without some (`token`, `push`).
pub type OptionalFederation = FederationArgs<false>;

impl<const REQUIRED: bool> FederationArgs<REQUIRED> {
    /// Whether `--metadata` (or `KONTOSYNK_METADATA`) was given.
    pub fn has_metadata(&self) -> bool {
        self.metadata.is_some()
    }

    /// The metadata source as given, for reports and log labels (empty when not given).
    pub fn metadata_label(&self) -> &str {
        self.metadata.as_deref().unwrap_or_default()
    }

    /// The client certificate file (`--cert`), or an error saying it is required.
    pub fn cert(&self) -> Result<&Path, CliError> {
        required(self.cert.as_deref(), "--cert")
    }

    /// The client key file (`--key`), or an error saying it is required.
    pub fn key(&self) -> Result<&Path, CliError> {
        required(self.key.as_deref(), "--key")
    }

    /// Loads our client certificate chain and key (`--cert`, `--key`).
    pub fn identity(&self) -> Result<Identity, CliError> {
        Identity::from_pem_files(self.cert()?, self.key()?).map_err(CliError::failed)
    }

    /// Fetches and verifies the metadata (`--metadata`, `--jwks`, `--iss`) once.
    ///
    /// Fails with one message naming the file or source at fault: a missing flag, an
    /// unreadable or invalid trust anchor, or metadata that does not verify or has expired.
    pub async fn metadata_store(&self) -> Result<MetadataStore, CliError> {
        let source = required(self.metadata.as_deref(), "--metadata")?;
        let jwks = required(self.jwks.as_deref(), "--jwks (with --metadata)")?;
        load_metadata(source, jwks, self.iss.clone()).await
    }
}

fn required<'a, T: ?Sized>(value: Option<&'a T>, flag: &str) -> Result<&'a T, CliError> {
    value.ok_or_else(|| CliError::failed(format!("{flag} is required")))
}

/// Builds a metadata store for `source` (an https:// URL or a file) trusting the JWKS in
/// `jwks`, requiring issuer `iss` when given, and loads it once.
pub async fn load_metadata(
    source: &str,
    jwks: &Path,
    iss: Option<String>,
) -> Result<MetadataStore, CliError> {
    let anchor = Jwks::from_file(jwks).map_err(CliError::failed)?;
    let source: MetadataSource = source.parse().unwrap_or_else(|never| match never {});
    let mut config = StoreConfig::new(source.clone(), anchor);
    config.verify.policy = ClaimsPolicy {
        required_iss: iss,
        ..ClaimsPolicy::default()
    };
    let store = MetadataStore::new(config)
        .map_err(|e| CliError::failed(format!("metadata {source}: {e}")))?;
    store
        .load()
        .await
        .map_err(|e| CliError::failed(format!("metadata {source}: {e}")))?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Required {
        #[command(flatten)]
        federation: RequiredFederation,
    }

    #[derive(Parser, Debug)]
    struct Optional {
        #[command(flatten)]
        federation: OptionalFederation,
    }

    const ALL: [&str; 9] = [
        "test",
        "--metadata",
        "md.jws",
        "--jwks",
        "fed.jwks",
        "--cert",
        "c.pem",
        "--key",
        "c.key",
    ];

    #[test]
    fn required_flags_are_enforced_by_clap() {
        for missing in ["--metadata", "--jwks", "--cert", "--key"] {
            let at = ALL.iter().position(|a| *a == missing).unwrap();
            let args: Vec<&str> = ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at && *i != at + 1)
                .map(|(_, a)| *a)
                .collect();
            let error = Required::try_parse_from(&args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{missing}: {error}"
            );
            assert!(error.to_string().contains(missing), "{error}");
            // The same flags are optional where another route exists.
            Optional::try_parse_from(&args).unwrap();
        }
        let parsed = Required::try_parse_from(ALL).unwrap();
        assert!(parsed.federation.has_metadata());
        assert_eq!(parsed.federation.metadata_label(), "md.jws");
        assert_eq!(parsed.federation.cert().unwrap(), Path::new("c.pem"));
        assert_eq!(parsed.federation.key().unwrap(), Path::new("c.key"));
    }

    #[tokio::test]
    async fn missing_optional_flags_are_named_in_the_error() {
        let none = Optional::try_parse_from(["test"]).unwrap().federation;
        assert!(!none.has_metadata());
        assert_eq!(none.metadata_label(), "");
        assert_eq!(none.identity().unwrap_err().message, "--cert is required");
        assert_eq!(
            none.metadata_store().await.unwrap_err().message,
            "--metadata is required"
        );
        let no_jwks = Optional::try_parse_from(["test", "--metadata", "md.jws"])
            .unwrap()
            .federation;
        assert_eq!(
            no_jwks.metadata_store().await.unwrap_err().message,
            "--jwks (with --metadata) is required"
        );
        let no_key = Optional::try_parse_from(["test", "--cert", "c.pem"])
            .unwrap()
            .federation;
        assert_eq!(no_key.key().unwrap_err().message, "--key is required");
    }

    #[tokio::test]
    async fn a_bad_trust_anchor_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.jwks");
        let error = load_metadata("md.jws", &missing, None).await.unwrap_err();
        assert!(
            error.message.starts_with(&format!(
                "trust anchor {}: cannot read: ",
                missing.display()
            )),
            "{}",
            error.message
        );
        let garbage = dir.path().join("garbage.jwks");
        std::fs::write(&garbage, "not json").unwrap();
        let error = load_metadata("md.jws", &garbage, None).await.unwrap_err();
        assert!(
            error
                .message
                .starts_with(&format!("trust anchor {}: ", garbage.display())),
            "{}",
            error.message
        );
        assert!(!error.message.contains("cannot read"), "{}", error.message);
    }
}
