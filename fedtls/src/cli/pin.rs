//! `fedtls pin`: the SPKI pin (or RFC 8705 thumbprint) of certificates.

use std::path::PathBuf;
use std::process::ExitCode;

use fedtls::pin::{CertThumbprint, Pin, first_pem_certificate};

use super::{CliError, CliResult, read_file};

/// Print the RFC 7469 SPKI SHA-256 pin of each certificate, one per line.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
The pin is what metadata lists under pins[].digest: SHA-256 over the certificate's
SubjectPublicKeyInfo, standard base64. It equals
  openssl x509 -in c.pem -pubkey -noout | openssl pkey -pubin -outform der \\
    | openssl dgst -sha256 -binary | openssl enc -base64
A chain file is pinned by its first certificate (the leaf). DER files work too.

Examples:
  fedtls pin client.pem
  curl --cert c.pem --key c.key --pinnedpubkey \"$(fedtls pin --curl server.pem)\" https://...")]
pub struct Args {
    /// Print curl's --pinnedpubkey form, `sha256//PIN`.
    #[arg(long, conflicts_with = "cert_s256")]
    curl: bool,
    /// Print the RFC 8705 `x5t#S256` certificate thumbprint instead (what the SUNET
    /// authorization server compares with the entity's issuers).
    #[arg(long)]
    cert_s256: bool,
    /// Certificate files (PEM or DER); `-` reads standard input.
    #[arg(value_name = "CERT_PEM", required = true)]
    certs: Vec<PathBuf>,
}

/// Runs `fedtls pin`.
pub fn run(args: Args) -> CliResult {
    for path in &args.certs {
        let bytes = if path.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")))?;
            buf
        } else {
            read_file(path)?
        };
        let der = certificate_der(&bytes)
            .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
        let line = if args.cert_s256 {
            CertThumbprint::of_certificate(&der).to_string()
        } else {
            let pin = Pin::of_certificate(&der)
                .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
            if args.curl {
                pin.to_curl()
            } else {
                pin.to_string()
            }
        };
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The first certificate of a PEM file, or the bytes themselves when they look like DER.
fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    first_pem_certificate(bytes)
        .map(|c| c.to_vec())
        .map_err(|e| e.to_string())
}
