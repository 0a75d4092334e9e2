//! Command-line plumbing shared by the `kontosynk-server` subcommands: the serving flags,
//! logging, and turning them into a running server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use fedtls::snapshot::SnapshotSource;
use fedtls::store::{MetadataSource, MetadataSources, Readiness};
use fedtls::tls::{ReloadableCertResolver, load_cert_chain, load_private_key};
use fedtls::{OrganizationId, Tag};

use crate::{Limits, Policy, RateLimit, ServerBuilder, TrustedProxy};
use fedtls::store::federations::{FederationSource, FederationsError};

/// Flags every serving subcommand accepts.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8443.
    #[arg(long, value_name = "ADDR", env = "KONTOSYNK_LISTEN")]
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM, leaf first). Reloaded on SIGHUP.
    #[arg(long, value_name = "SERVER_PEM", env = "KONTOSYNK_CERT")]
    pub cert: PathBuf,
    /// The server's private key (PEM). Reloaded on SIGHUP.
    #[arg(long, value_name = "SERVER_KEY", env = "KONTOSYNK_KEY")]
    pub key: PathBuf,
    /// Federation metadata: an https URL or a file (re-read on every refresh). Repeat it,
    /// each with its own --jwks in the same order, to trust several federations at once
    /// (e.g. Moa production and Moa trial); the first listed wins where two list the same
    /// entity or pin.
    #[arg(
        long,
        value_name = "SOURCE",
        env = "KONTOSYNK_METADATA",
        value_delimiter = ',',
        required_unless_present = "federations",
        conflicts_with = "federations"
    )]
    pub metadata: Vec<MetadataSource>,
    /// The trust anchor (JWKS) of each --metadata, in the same order.
    #[arg(
        long,
        value_name = "JWKS",
        env = "KONTOSYNK_JWKS",
        value_delimiter = ',',
        required_unless_present = "federations",
        conflicts_with = "federations"
    )]
    pub jwks: Vec<PathBuf>,
    /// Keep a verified copy of each source's metadata here and start from it when still
    /// valid (one per --metadata, or none).
    #[arg(
        long,
        value_name = "FILE",
        env = "KONTOSYNK_METADATA_CACHE",
        value_delimiter = ','
    )]
    pub cache: Vec<PathBuf>,
    /// Require this metadata issuer (`iss`) of each source (one per --metadata, or none).
    #[arg(
        long,
        value_name = "URI",
        env = "KONTOSYNK_METADATA_ISS",
        value_delimiter = ','
    )]
    pub iss: Vec<String>,
    /// A name for each source, shown in identities, logs, /readyz and metrics (one per
    /// --metadata, or none: then the URL or path names it).
    #[arg(
        long = "source-name",
        value_name = "NAME",
        env = "KONTOSYNK_SOURCE_NAMES",
        value_delimiter = ','
    )]
    pub source_names: Vec<String>,
    /// The federations to trust from a TOML file: one [[federation]] table per source with
    /// metadata, jwks and optionally name, cache, iss (instead of --metadata/--jwks).
    #[arg(long, value_name = "FILE", env = "KONTOSYNK_FEDERATIONS")]
    pub federations: Option<PathBuf>,
    /// With several sources: ready (and able to start) only while every source is valid.
    /// By default one valid source suffices, and the others' members wait for theirs.
    #[arg(long, env = "KONTOSYNK_REQUIRE_ALL_SOURCES")]
    pub require_all_sources: bool,
    /// Serve /healthz, /readyz, /metrics and /metadata on this plain-HTTP address.
    #[arg(long, value_name = "ADDR", env = "KONTOSYNK_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// Allow only clients whose endpoint carries one of these tags (repeatable, or
    /// comma-separated).
    #[arg(
        long = "client-tag",
        value_name = "TAG",
        env = "KONTOSYNK_CLIENT_TAGS",
        value_delimiter = ','
    )]
    pub client_tags: Vec<Tag>,
    /// Allow only entities with one of these organization ids (repeatable, or
    /// comma-separated).
    #[arg(
        long = "organization-id",
        value_name = "ID",
        env = "KONTOSYNK_ORGANIZATION_IDS",
        value_delimiter = ','
    )]
    pub organization_ids: Vec<OrganizationId>,
    /// Also require client certificates to chain to their entity's issuers.
    #[arg(long, env = "KONTOSYNK_REQUIRE_ISSUER_CHAIN")]
    pub require_issuer_chain: bool,
    /// Per-entity rate limit in requests per second (burst = 2x, at least 1).
    #[arg(long, value_name = "RPS", env = "KONTOSYNK_RATE_LIMIT")]
    pub rate_limit: Option<f64>,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024, env = "KONTOSYNK_MAX_BODY")]
    pub max_body: u64,
    /// Plain HTTP behind a TLS terminator: take the client certificate from the Client-Cert
    /// header, honoured only from these addresses/CIDR ranges (repeatable, or comma-separated).
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "KONTOSYNK_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<TrustedProxy>,
    /// Refuse to start (and, on SIGHUP, keep the current certificate) when the metadata does
    /// not list this server's certificate pin as a server; without it, a warning says so.
    #[arg(long, env = "KONTOSYNK_REQUIRE_LISTED")]
    pub require_listed: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "KONTOSYNK_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Parses the command line; on a usage error (exit 2) or `--help`/`--version` (exit 0)
/// clap's message is printed and the exit code returned instead.
pub fn parse_args<P: clap::Parser>() -> Result<P, std::process::ExitCode> {
    P::try_parse().map_err(|err| {
        let _ = err.print();
        if err.use_stderr() {
            std::process::ExitCode::from(2)
        } else {
            std::process::ExitCode::SUCCESS
        }
    })
}

/// The flags of `command` and its subcommands (as `subcommand --flag`) that have no
/// environment variable. Every flag of the project's commands must have one (services are
/// configured through their environment); each binary's tests call this on its command.
pub fn flags_without_env(command: &clap::Command) -> Vec<String> {
    let mut missing = Vec::new();
    walk(command, command.get_name(), &mut missing);
    missing
}

fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for arg in command.get_arguments() {
        let builtin = matches!(arg.get_id().as_str(), "help" | "version");
        if arg.is_positional() || builtin || arg.get_env().is_some() {
            continue;
        }
        let name = arg
            .get_long()
            .map(|l| format!("--{l}"))
            .unwrap_or_else(|| arg.get_id().to_string());
        missing.push(format!("{path} {name}"));
    }
    for sub in command.get_subcommands() {
        walk(sub, &format!("{path} {}", sub.get_name()), missing);
    }
}

/// How logs are written to stderr.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber (`RUST_LOG` overrides the default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Why a server could not be started from its settings; each names the file, source or
/// value to fix.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The trust anchor file could not be read or used.
    #[error(transparent)]
    TrustAnchor(#[from] fedtls::jwk::TrustAnchorError),
    /// The metadata store could not be set up.
    #[error("{0}")]
    Store(#[source] fedtls::store::StoreError),
    /// No valid metadata could be loaded at start.
    #[error("no usable metadata from {from}: {source}")]
    NoMetadata {
        /// The metadata source.
        from: String,
        /// Why.
        #[source]
        source: fedtls::store::StoreError,
    },
    /// The server's certificate or key file could not be read.
    #[error(transparent)]
    TlsFile(#[from] fedtls::tls::TlsFileError),
    /// The certificate and key do not belong together.
    #[error("{} and {} do not form a usable identity: {source}", cert.display(), key.display())]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why rustls refused them.
        #[source]
        source: rustls::Error,
    },
    /// The metadata does not list the server's certificate, or it is not valid now, and
    /// `--require-listed` is set.
    #[error("{}: {problem} (started with --require-listed)", cert.display())]
    OwnCertificate {
        /// The certificate file.
        cert: PathBuf,
        /// What is wrong, and what to do.
        problem: fedtls::tls::OwnCertificateProblem,
    },
    /// The rate limit is not a positive number.
    #[error("the rate limit must be a positive number of requests per second, not {0}")]
    RateLimit(f64),
    /// Binding the listeners failed.
    #[error(transparent)]
    Bind(#[from] crate::ServerError),
    /// One of several metadata sources has no valid metadata (`--check` requires every one).
    #[error("metadata source {name:?} is unavailable: {reason}")]
    SourceUnavailable {
        /// The source's name.
        name: String,
        /// Its last error.
        reason: String,
    },
    /// The metadata sources are not usable as configured.
    #[error(transparent)]
    Federations(#[from] FederationsError),
}

/// A configured, bound server and the pieces the caller may still need.
pub struct Prepared {
    /// The bound server.
    pub server: crate::BoundServer,
    /// The live metadata (every source, merged).
    pub store: MetadataSources,
    /// The server certificate, reloadable.
    pub resolver: Arc<ReloadableCertResolver>,
}

/// Everything needed to start a server, however it was configured (flags or a file).
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Client-facing address.
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// Where the metadata comes from: one source per federation, in precedence order.
    pub federations: Vec<FederationSource>,
    /// Whether one valid source suffices or every source is required.
    pub readiness: Readiness,
    /// Admin listener.
    pub admin: Option<SocketAddr>,
    /// Access policy.
    pub policy: Policy,
    /// Require client certificates to chain to their entity's issuers.
    pub require_issuer_chain: bool,
    /// Per-entity requests per second.
    pub rate_limit: Option<f64>,
    /// Timeouts and sizes.
    pub limits: Limits,
    /// Serve plain HTTP behind these terminators instead of mutual TLS.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// Refuse a server certificate the metadata does not list (at start and on reload).
    pub require_listed: bool,
}

impl ServeArgs {
    /// The settings these flags describe.
    pub fn settings(&self) -> Result<ServeSettings, ServeError> {
        Ok(ServeSettings {
            listen: self.listen,
            cert: self.cert.clone(),
            key: self.key.clone(),
            federations: match &self.federations {
                Some(file) => fedtls::store::federations::read_file(file)?,
                None => fedtls::store::federations::pair_flags(
                    &self.metadata,
                    &self.jwks,
                    &self.cache,
                    &self.iss,
                    &self.source_names,
                )?,
            },
            readiness: if self.require_all_sources {
                Readiness::AllSources
            } else {
                Readiness::AnySource
            },
            admin: self.admin,
            policy: Policy {
                client_tags: self.client_tags.clone(),
                organization_ids: self.organization_ids.clone(),
                ..Policy::default()
            },
            require_issuer_chain: self.require_issuer_chain,
            rate_limit: self.rate_limit,
            limits: Limits {
                max_body: self.max_body,
                ..Limits::default()
            },
            trusted_proxies: self.trusted_proxies.clone(),
            require_listed: self.require_listed,
        })
    }

    /// Loads the trust anchor and metadata, the certificate, and binds the listeners.
    pub async fn prepare(&self) -> Result<Prepared, ServeError> {
        self.settings()?.prepare().await
    }

    /// Like [`prepare`](Self::prepare), letting the subcommand set its own server options
    /// (after the flags' options, before binding).
    pub async fn prepare_with(
        &self,
        customize: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Result<Prepared, ServeError> {
        self.settings()?.prepare_with(customize).await
    }
}

impl ServeSettings {
    /// Loads the trust anchor and metadata, the certificate, and binds the listeners.
    pub async fn prepare(&self) -> Result<Prepared, ServeError> {
        self.prepare_with(|builder| builder).await
    }

    /// Checks the settings without serving (`--check`): the trust anchor, the metadata (fetched
    /// and verified once), the certificate and key (readable, matching), and that the metadata
    /// lists the certificate's pin as a server. Returns what was checked, one line each; the
    /// first problem is the error.
    pub async fn check(&self) -> Result<Vec<String>, ServeError> {
        let store = self.load_metadata().await?;
        let mut report = Vec::new();
        for (federation, member) in self.federations.iter().zip(store.members()) {
            match member.store.current() {
                Some(snapshot) => report.push(format!(
                    "metadata {} ({}): verified with {}, {} entities, valid until {}",
                    member.name,
                    federation.metadata,
                    federation.jwks.display(),
                    snapshot.index().entities().len(),
                    fedtls::claims::Rfc3339(snapshot.expires_at())
                )),
                None => {
                    return Err(ServeError::SourceUnavailable {
                        name: member.name.clone(),
                        reason: member
                            .store
                            .status()
                            .last_error
                            .unwrap_or_else(|| "no verified metadata".into()),
                    });
                }
            }
        }
        let strict = OwnCheck {
            store,
            cert: self.cert.clone(),
            require_listed: true,
        };
        let resolver = self.load_identity(Some(&strict))?;
        report.push(format!(
            "certificate {} and key {}: readable and matching",
            self.cert.display(),
            self.key.display()
        ));
        if let Some(pin) = resolver.pin() {
            report.push(format!(
                "certificate pin {pin}: listed as a server in the metadata"
            ));
        }
        Ok(report)
    }

    /// Reads every source's trust anchor and loads the metadata once (not yet refreshed).
    async fn load_metadata(&self) -> Result<MetadataSources, ServeError> {
        let sources = fedtls::store::federations::build_sources(&self.federations, self.readiness)?;
        let snapshot = sources
            .load()
            .await
            .map_err(|source| ServeError::NoMetadata {
                from: self
                    .federations
                    .iter()
                    .map(|f| f.display_name())
                    .collect::<Vec<_>>()
                    .join(", "),
                source,
            })?;
        for member in sources.members() {
            if let Some(part) = member.store.current() {
                tracing::info!(
                    source = %member.name,
                    origin = part.source(),
                    entities = part.index().entities().len(),
                    expires = %fedtls::claims::Rfc3339(part.expires_at()),
                    "metadata loaded"
                );
            }
        }
        if snapshot.sources().len() > 1 {
            tracing::info!(
                sources = snapshot.sources().len(),
                entities = snapshot.index().entities().len(),
                "metadata sources merged"
            );
        }
        Ok(sources)
    }

    /// Reads the certificate and key (which must match), judged by `own_check` when given.
    fn load_identity(
        &self,
        own_check: Option<&OwnCheck>,
    ) -> Result<ReloadableCertResolver, ServeError> {
        let chain = load_cert_chain(&self.cert)?;
        let key = load_private_key(&self.key)?;
        if let Some(check) = own_check {
            check.judge(&chain)?;
        }
        ReloadableCertResolver::new(chain, key).map_err(|source| ServeError::Identity {
            cert: self.cert.clone(),
            key: self.key.clone(),
            source,
        })
    }

    /// Like [`prepare`](Self::prepare), letting the caller set further server options
    /// (after these settings' options, before binding).
    pub async fn prepare_with(
        &self,
        customize: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Result<Prepared, ServeError> {
        let store = self.load_metadata().await?;
        store.spawn();
        let own_check = OwnCheck {
            store: store.clone(),
            cert: self.cert.clone(),
            require_listed: self.require_listed,
        };
        let resolver =
            Arc::new(self.load_identity(self.trusted_proxies.is_empty().then_some(&own_check))?);
        let mut builder = ServerBuilder::with_store(store.clone())
            .require_issuer_chain(self.require_issuer_chain)
            .policy(self.policy.clone())
            .limits(self.limits.clone());
        builder = if self.trusted_proxies.is_empty() {
            builder.tls(Arc::clone(&resolver))
        } else {
            builder.behind_terminator(self.trusted_proxies.clone())
        };
        if let Some(rps) = self.rate_limit {
            if !(rps.is_finite() && rps > 0.0) {
                return Err(ServeError::RateLimit(rps));
            }
            builder = builder.rate_limit(RateLimit {
                per_second: rps,
                burst: (rps * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
            });
        }
        if let Some(admin) = self.admin {
            builder = builder.admin(admin, None);
        }
        let server = customize(builder).bind(self.listen).await?;
        if let Some(admin) = server.admin_addr() {
            tracing::info!(admin_addr = %admin, "admin endpoints: /healthz /readyz /metrics");
        }
        spawn_reload_on_sighup(
            Arc::clone(&resolver),
            self.cert.clone(),
            self.key.clone(),
            self.trusted_proxies.is_empty().then_some(own_check),
        );
        Ok(Prepared {
            server,
            store,
            resolver,
        })
    }
}

/// The server's own certificate against the metadata (see [`fedtls::tls::OwnCertificate`]):
/// at start and on every reload, a certificate peers would refuse is named with the fix,
/// and refused under `--require-listed`.
struct OwnCheck {
    store: MetadataSources,
    cert: PathBuf,
    require_listed: bool,
}

impl OwnCheck {
    /// Warns about (or, with `require_listed`, refuses) a chain whose leaf the current
    /// metadata does not list as a server, or that is not valid now.
    fn judge(&self, chain: &[rustls_pki_types::CertificateDer<'_>]) -> Result<(), ServeError> {
        let Some(leaf) = chain.first() else {
            return Ok(());
        };
        let own = match fedtls::tls::OwnCertificate::read(leaf, fedtls::index::Role::Server) {
            Ok(own) => own,
            Err(e) => {
                tracing::warn!(cert = %self.cert.display(), error = %e, "cannot read the server certificate to check it against the metadata");
                return Ok(());
            }
        };
        let Some(snapshot) = self.store.current() else {
            return Ok(());
        };
        match own.check(snapshot.index(), fedtls::verify::unix_now()) {
            Ok(()) => {
                tracing::info!(cert = %self.cert.display(), pin = %own.pin(), "the metadata lists this server's certificate");
                Ok(())
            }
            Err(problem) if self.require_listed => Err(ServeError::OwnCertificate {
                cert: self.cert.clone(),
                problem,
            }),
            Err(problem) => {
                tracing::warn!(cert = %self.cert.display(), pin = %own.pin(), "{problem}");
                Ok(())
            }
        }
    }
}

/// Reloads the certificate and key on SIGHUP; a bad pair (or, with `--require-listed`, one
/// the metadata does not list) keeps the current one.
fn spawn_reload_on_sighup(
    resolver: Arc<ReloadableCertResolver>,
    cert: PathBuf,
    key: PathBuf,
    own_check: Option<OwnCheck>,
) {
    crate::shutdown::on_hangup(move || {
        let loaded = load_cert_chain(&cert)
            .map_err(|e| e.to_string())
            .and_then(|chain| Ok((chain, load_private_key(&key).map_err(|e| e.to_string())?)))
            .and_then(|(chain, key)| match &own_check {
                Some(check) => check
                    .judge(&chain)
                    .map(|()| (chain, key))
                    .map_err(|e| e.to_string()),
                None => Ok((chain, key)),
            })
            .and_then(|(chain, key)| resolver.reload(chain, key).map_err(|e| e.to_string()));
        match loaded {
            Ok(()) => tracing::info!(cert = %cert.display(), "server certificate reloaded"),
            Err(err) => {
                tracing::error!(error = %err, "certificate reload failed; keeping the current one")
            }
        }
    });
}
