//! The subcommands of `skolfed-sso`, one module each, and what they share.

pub mod links;
pub mod lint;
pub mod saml;

use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use skolfed_sso::fetch::{FetchConfig, Source, error_chain, fetch_once};

/// Problems found.
pub const EXIT_PROBLEMS: u8 = 1;
/// The source could not be read or fetched.
pub const EXIT_UNREADABLE: u8 = 3;

/// How sources are fetched.
#[derive(clap::Args, Debug, Clone)]
pub struct FetchArgs {
    /// Extra CA certificates (PEM) trusted for https sources, besides the webpki roots.
    #[arg(long, value_name = "PEM", env = "SKOLFED_SSO_CA")]
    ca: Option<PathBuf>,
    /// Give up a fetch after this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 30,
        env = "SKOLFED_SSO_TIMEOUT"
    )]
    timeout: u64,
}

impl FetchArgs {
    /// Reads `source` (a file or URL), or prints why not.
    pub async fn read(&self, source: &str) -> Result<Vec<u8>, u8> {
        let unreadable = |message: String| {
            eprintln!("error: {message}");
            EXIT_UNREADABLE
        };
        let source: Source = source.parse().map_err(|e| unreadable(error_chain(&e)))?;
        let mut config = FetchConfig::new(source);
        config.fetch_timeout = Duration::from_secs(self.timeout.max(1));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca)
                .map_err(|e| unreadable(format!("cannot read --ca {}: {e}", ca.display())))?;
            config.extra_root_certificates = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    unreadable(format!(
                        "--ca {} is not PEM certificates: {e}",
                        ca.display()
                    ))
                })?;
        }
        fetch_once(config)
            .await
            .map_err(|e| unreadable(error_chain(&e)))
    }
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("error: cannot write JSON: {err}"),
    }
}
