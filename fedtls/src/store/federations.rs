//! Which federations' metadata a server or client trusts: one or several sources, each with
//! its own trust anchor, cache file and required issuer, from flags or a `[[federation]]`
//! list in TOML, loaded into one [`MetadataSources`].

use std::path::{Path, PathBuf};

use crate::jwk::Jwks;

use super::{
    MetadataSource, MetadataSources, MetadataStore, NamedStore, Readiness, StoreConfig, StoreError,
};

/// One metadata source: where the signed metadata is, who signs it, and how to keep it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSource {
    /// Shown in identities, logs, `/readyz` and metrics (default: the metadata URL or path).
    #[serde(default)]
    pub name: Option<String>,
    /// An https URL or a file.
    #[serde(deserialize_with = "source_from_str")]
    pub metadata: MetadataSource,
    /// The federation's trust anchor (JWKS).
    pub jwks: PathBuf,
    /// Keep a verified copy here and start from it when still valid.
    #[serde(default)]
    pub cache: Option<PathBuf>,
    /// Require this metadata issuer (`iss`).
    #[serde(default)]
    pub iss: Option<String>,
}

fn source_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<MetadataSource, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    Ok(text.parse().unwrap_or_else(|never| match never {}))
}

impl FederationSource {
    /// The name this source is shown under.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.metadata.to_string())
    }
}

/// Why the federation settings cannot be used; each names the flag, file or source to fix.
#[derive(Debug, thiserror::Error)]
pub enum FederationsError {
    /// The flags do not pair up.
    #[error("{0}")]
    Flags(String),
    /// The `[[federation]]` file could not be read or parsed.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A source's trust anchor could not be read.
    #[error("{}{source}", name.as_ref().map(|n| format!("metadata source {n:?}: ")).unwrap_or_default())]
    TrustAnchor {
        /// The source, when there are several (one source needs no name in the message).
        name: Option<String>,
        /// Why.
        #[source]
        source: crate::jwk::TrustAnchorError,
    },
    /// A source's store could not be set up, or the sources are not usable together.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Pairs repeated `--metadata`, `--jwks`, `--cache`, `--iss` and `--source-name` flags by
/// position: every source needs its `--jwks`; `--cache`, `--iss` and `--source-name` are
/// given for none of the sources or for each (one `--iss` with several sources is refused,
/// as it would be a guess which federation it belongs to).
pub fn pair_flags(
    metadata: &[MetadataSource],
    jwks: &[PathBuf],
    cache: &[PathBuf],
    iss: &[String],
    names: &[String],
) -> Result<Vec<FederationSource>, FederationsError> {
    let n = metadata.len();
    if n == 0 {
        return Err(FederationsError::Flags(
            "no metadata source: give --metadata SOURCE --jwks JWKS (repeat the pair for several federations) or --federations FILE".into(),
        ));
    }
    if jwks.len() != n {
        return Err(FederationsError::Flags(format!(
            "{n} --metadata but {} --jwks: give one --jwks per --metadata, in the same order",
            jwks.len()
        )));
    }
    for (flag, count) in [
        ("--cache", cache.len()),
        ("--iss", iss.len()),
        ("--source-name", names.len()),
    ] {
        if count != 0 && count != n {
            return Err(FederationsError::Flags(format!(
                "{n} --metadata but {count} {flag}: give {flag} for every source (in the same order) or for none"
            )));
        }
    }
    Ok((0..n)
        .map(|i| FederationSource {
            name: names.get(i).cloned(),
            metadata: metadata[i].clone(),
            jwks: jwks[i].clone(),
            cache: cache.get(i).cloned(),
            iss: iss.get(i).cloned(),
        })
        .collect())
}

/// The `[[federation]]` list of a TOML file (other keys in the file are not allowed).
pub fn read_file(path: &Path) -> Result<Vec<FederationSource>, FederationsError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        federation: Vec<FederationSource>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| FederationsError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let file: File = toml::from_str(&text).map_err(|e| FederationsError::File {
        path: path.to_owned(),
        reason: format!("{e}\nexpected one [[federation]] table per source with metadata, jwks and optionally name, cache, iss"),
    })?;
    if file.federation.is_empty() {
        return Err(FederationsError::File {
            path: path.to_owned(),
            reason: "no [[federation]] table".into(),
        });
    }
    Ok(file.federation)
}

/// Builds one store per source (trust anchors read now, nothing fetched yet).
pub fn build_sources(
    federations: &[FederationSource],
    readiness: Readiness,
) -> Result<MetadataSources, FederationsError> {
    let mut members = Vec::with_capacity(federations.len());
    for federation in federations {
        let name = federation.display_name();
        let jwks =
            Jwks::from_file(&federation.jwks).map_err(|source| FederationsError::TrustAnchor {
                name: (federations.len() > 1).then(|| name.clone()),
                source,
            })?;
        for note in jwks.skipped() {
            tracing::warn!(source = %name, jwks = %federation.jwks.display(), "{note}");
        }
        let mut config = StoreConfig::new(federation.metadata.clone(), jwks);
        config.cache_file = federation.cache.clone();
        config.verify.policy.required_iss = federation.iss.clone();
        let store = MetadataStore::new(config)?;
        members.push(NamedStore { name, store });
    }
    Ok(MetadataSources::new(members, readiness)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_pair_by_position_and_mismatches_say_which_flag() {
        let md = |s: &str| s.parse::<MetadataSource>().unwrap();
        let two = [md("https://prod/md.jws"), md("https://trial/md.jws")];
        let jwks = [PathBuf::from("prod.jwks"), PathBuf::from("trial.jwks")];
        let paired = pair_flags(&two, &jwks, &[], &[], &[]).unwrap();
        assert_eq!(paired.len(), 2);
        assert_eq!(paired[1].jwks, PathBuf::from("trial.jwks"));
        assert_eq!(paired[1].display_name(), "https://trial/md.jws");
        let err = pair_flags(&two, &jwks[..1], &[], &[], &[]).unwrap_err();
        assert!(
            err.to_string().contains("2 --metadata but 1 --jwks"),
            "{err}"
        );
        let err = pair_flags(&two, &jwks, &[], &["https://prod".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("1 --iss"), "{err}");
        let err = pair_flags(&[], &[], &[], &[], &[]).unwrap_err();
        assert!(err.to_string().contains("--federations FILE"), "{err}");
        let named = pair_flags(&two, &jwks, &[], &[], &["prod".into(), "trial".into()]).unwrap();
        assert_eq!(named[0].display_name(), "prod");
    }

    #[test]
    fn the_file_lists_federations_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("federations.toml");
        std::fs::write(
            &path,
            "[[federation]]\nname = \"moa-prod\"\nmetadata = \"https://fed/prod.jws\"\njwks = \"prod.jwks\"\n\
             cache = \"/var/cache/prod.jws\"\n\n[[federation]]\nmetadata = \"trial.jws\"\njwks = \"trial.jwks\"\niss = \"https://trial\"\n",
        )
        .unwrap();
        let list = read_file(&path).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].display_name(), "moa-prod");
        assert_eq!(list[1].metadata, MetadataSource::File("trial.jws".into()));
        assert_eq!(list[1].iss.as_deref(), Some("https://trial"));
        std::fs::write(
            &path,
            "[[federation]]\nmetadata = \"x\"\njwks = \"y\"\nurl = \"z\"\n",
        )
        .unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("url") && err.contains("federations.toml"),
            "{err}"
        );
        std::fs::write(&path, "federation = []\n").unwrap();
        assert!(
            read_file(&path)
                .unwrap_err()
                .to_string()
                .contains("no [[federation]]")
        );
    }
}
