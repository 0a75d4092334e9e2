//! The federation inputs the networked subcommands share: the signed metadata, its trust
//! anchor, the required issuer, and our client certificate and key.
//!
//! One declaration keeps the flag names, environment variables, help and error messages the
//! same in `health`, `sync`, `token` and `push`, and one loader builds the verified
//! [`MetadataSources`] for them (one federation, or several at once) and for `quickstart`.

use std::path::{Path, PathBuf};

use fedtls::SnapshotSource;
use fedtls::store::federations::{self, FederationSource};
use fedtls::store::{MetadataSource, MetadataSources, Readiness};
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
    /// Federation metadata: an https:// URL or a file. Repeat it, each with its own --jwks
    /// in the same order, to find servers in several federations at once (the first listed
    /// wins where two list the same entity or pin).
    #[arg(
        long,
        value_name = "SOURCE",
        env = "KONTOSYNK_METADATA",
        value_delimiter = ',',
        required_unless_present_any = if REQUIRED { &["federations"][..] } else { &[][..] },
        conflicts_with = "federations"
    )]
    metadata: Vec<MetadataSource>,
    /// The trust anchor (JWKS file) of each --metadata, in the same order.
    #[arg(
        long,
        value_name = "JWKS",
        env = "KONTOSYNK_JWKS",
        value_delimiter = ',',
        required_unless_present_any = if REQUIRED { &["federations"][..] } else { &[][..] },
        conflicts_with = "federations"
    )]
    jwks: Vec<PathBuf>,
    /// Require this metadata issuer (`iss`) of each source (one per --metadata, or none).
    #[arg(
        long,
        value_name = "URI",
        env = "KONTOSYNK_METADATA_ISS",
        value_delimiter = ','
    )]
    iss: Vec<String>,
    /// A name for each source in messages and reports (one per --metadata, or none).
    #[arg(
        long = "source-name",
        value_name = "NAME",
        env = "KONTOSYNK_SOURCE_NAMES",
        value_delimiter = ','
    )]
    source_names: Vec<String>,
    /// The federations from a TOML file: one [[federation]] table per source with metadata,
    /// jwks and optionally name, cache, iss (instead of --metadata/--jwks).
    #[arg(long, value_name = "FILE", env = "KONTOSYNK_FEDERATIONS")]
    federations: Option<PathBuf>,
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
    /// Whether `--metadata` or `--federations` (or their variables) was given.
    pub fn has_metadata(&self) -> bool {
        !self.metadata.is_empty() || self.federations.is_some()
    }

    /// The metadata sources as given, for reports and log labels (empty when not given).
    pub fn metadata_label(&self) -> String {
        match &self.federations {
            Some(file) => file.display().to_string(),
            None => self
                .metadata
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
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

    /// Fetches and verifies the metadata (`--metadata`, `--jwks`, `--iss`, or
    /// `--federations`) once: every source at once, merged.
    ///
    /// Fails with one message naming the flag, file or source at fault: a missing flag, an
    /// unreadable or invalid trust anchor, or metadata that does not verify or has expired.
    /// With several sources one valid source suffices; the others are named in a warning.
    pub async fn metadata_store(&self) -> Result<MetadataSources, CliError> {
        let list = match &self.federations {
            Some(file) => federations::read_file(file).map_err(CliError::failed)?,
            None => {
                if self.metadata.is_empty() {
                    return Err(CliError::failed("--metadata is required"));
                }
                if self.jwks.is_empty() {
                    return Err(CliError::failed("--jwks (with --metadata) is required"));
                }
                federations::pair_flags(
                    &self.metadata,
                    &self.jwks,
                    &[],
                    &self.iss,
                    &self.source_names,
                )
                .map_err(CliError::failed)?
            }
        };
        load_sources(&list).await
    }
}

fn required<'a, T: ?Sized>(value: Option<&'a T>, flag: &str) -> Result<&'a T, CliError> {
    value.ok_or_else(|| CliError::failed(format!("{flag} is required")))
}

/// Builds one store per source, loads them once, and merges them; a source that fails is
/// reported on stderr when another one is valid.
pub async fn load_sources(list: &[FederationSource]) -> Result<MetadataSources, CliError> {
    let sources =
        federations::build_sources(list, Readiness::AnySource).map_err(CliError::failed)?;
    let label = |name: &str| {
        if list.len() == 1 {
            format!("metadata {}", list[0].metadata)
        } else {
            format!("metadata source {name}")
        }
    };
    match sources.load().await {
        Ok(_) => {
            for member in sources.members() {
                if member.store.current().is_none() {
                    let reason = member.store.status().last_error.unwrap_or_default();
                    eprintln!(
                        "warning: {}: {reason}; its servers are not used",
                        label(&member.name)
                    );
                }
            }
            Ok(sources)
        }
        Err(fedtls::store::StoreError::Source { name, source, .. }) => {
            Err(CliError::failed(format!("{}: {source}", label(&name))))
        }
        Err(e) => Err(CliError::failed(format!(
            "{}: {e}",
            label(&list[0].display_name())
        ))),
    }
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

    async fn load_metadata(
        source: &str,
        jwks: &Path,
        iss: Option<String>,
    ) -> Result<MetadataSources, CliError> {
        load_sources(&[FederationSource {
            name: None,
            metadata: source.parse().unwrap_or_else(|never| match never {}),
            jwks: jwks.to_owned(),
            cache: None,
            iss,
        }])
        .await
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
