//! `kontosynk-server portal`: the SSO portal of Skolfederation's SSO links.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kontosynk_framework::cli::{LogFormat, init_logging};
use kontosynk_framework::shutdown;
use kontosynk_server::portal::{Portal, PortalConfig};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use skolfed_sso::fetch::{FetchConfig, Source, error_chain};
use skolfed_sso::saml::SigningCertificate;

/// Serve the SSO portal: the services of Skolfederation's SSO-link metadata as buttons,
/// grouped by organization, each leading to the service's login for the school (IdP) the
/// user chose from the verified SAML metadata. Swedish by default, English on a switch.
///
/// Plain HTTP: run it behind your TLS-terminating reverse proxy (the page needs no client
/// certificate). Both documents are fetched at start (cache files first), refreshed in the
/// background with conditional requests, and the last good copy is kept through failures;
/// an expired SAML aggregate is never used.
#[derive(clap::Args)]
#[command(after_help = "\
Example:
  kontosynk-server portal --listen 127.0.0.1:8080 \\
    --sso-links https://fed.skolfederation.se/sso-links/sso-links.json \\
    --saml-metadata https://fed.skolfederation.se/prod/md/skolfederation-3_1.xml \\
    --saml-cert skolfederation-md-signer.pem --cache-dir /var/cache/kontosynk-portal

  Routes: / (the page), /choose?idp=ENTITYID, /api/links?idp=ENTITYID (JSON for other
  portals), /api/idps?q=TEXT, /healthz.

Exit codes: 0 clean shutdown, 1 startup failure (a document that cannot be loaded), 2 usage error.")]
pub struct PortalArgs {
    /// Address to listen on (plain HTTP, for the reverse proxy).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "KONTOSYNK_PORTAL_LISTEN"
    )]
    listen: SocketAddr,
    /// The SSO-link metadata: an https URL or a file.
    #[arg(long, value_name = "SOURCE", env = "KONTOSYNK_SSO_LINKS")]
    sso_links: String,
    /// The federation's signed SAML metadata aggregate: an https URL or a file.
    #[arg(long, value_name = "SOURCE", env = "KONTOSYNK_SAML_METADATA")]
    saml_metadata: String,
    /// The federation operator's metadata-signing certificate (PEM).
    #[arg(long, value_name = "PEM", env = "KONTOSYNK_SAML_CERT")]
    saml_cert: PathBuf,
    /// Keep the last good copy of both documents here (used at start when a fetch fails).
    #[arg(long, value_name = "DIR", env = "KONTOSYNK_PORTAL_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for the https sources, besides the webpki roots.
    #[arg(long, value_name = "PEM", env = "KONTOSYNK_PORTAL_FETCH_CA")]
    fetch_ca: Option<PathBuf>,
    /// Refresh interval in seconds when the server gives no Cache-Control/Expires.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 3600,
        env = "KONTOSYNK_PORTAL_REFRESH"
    )]
    refresh: u64,
    /// Send cookies without the Secure flag: only when users reach the portal over plain http
    /// (a local test). Behind an https proxy leave it off.
    #[arg(long, env = "KONTOSYNK_PORTAL_INSECURE_COOKIES")]
    insecure_cookies: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", env = "KONTOSYNK_LOG_FORMAT")]
    log_format: LogFormat,
}

/// Serves the portal until SIGTERM or Ctrl-C.
pub async fn run(args: PortalArgs) -> Result<(), String> {
    init_logging(args.log_format);
    let roots = match &args.fetch_ca {
        None => Vec::new(),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read --fetch-ca {}: {e}", path.display()))?;
            CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    format!("--fetch-ca {} is not PEM certificates: {e}", path.display())
                })?
        }
    };
    let feed_config = |source: &str, flag: &str, cache: &str| -> Result<FetchConfig, String> {
        let source: Source = source
            .parse()
            .map_err(|e| format!("--{flag}: {}", error_chain(&e)))?;
        let mut config = FetchConfig::new(source);
        config.cache_file = args.cache_dir.as_ref().map(|dir| dir.join(cache));
        config.default_refresh = Duration::from_secs(args.refresh.max(60));
        config.extra_root_certificates = roots.clone();
        Ok(config)
    };
    let pem = std::fs::read(&args.saml_cert)
        .map_err(|e| format!("cannot read --saml-cert {}: {e}", args.saml_cert.display()))?;
    let saml_certificate = SigningCertificate::from_pem(&pem).map_err(|e| {
        format!(
            "--saml-cert {}: {}",
            args.saml_cert.display(),
            error_chain(&e)
        )
    })?;
    let portal = Portal::new(PortalConfig {
        links: feed_config(&args.sso_links, "sso-links", "sso-links.json")?,
        saml: feed_config(&args.saml_metadata, "saml-metadata", "saml-metadata.xml")?,
        saml_certificate,
        secure_cookies: !args.insecure_cookies,
    })
    .map_err(|e| error_chain(&e))?;
    portal.load().await.map_err(|e| error_chain(&e))?;
    let _refreshers = portal.spawn_refresh();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "portal listening (plain HTTP, for a TLS-terminating proxy)");
    Arc::new(portal).serve(listener, shutdown::signal()).await;
    Ok(())
}
