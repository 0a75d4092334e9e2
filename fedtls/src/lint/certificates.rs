//! Issuer certificates, and the certificates the user gave checked against the pins and issuers.

use std::collections::HashSet;

use serde_json::Value;

use crate::claims::Rfc3339;
use crate::json::{Path, kind as type_name};
use crate::pin::pem_certificates;
use crate::tls::MAX_CHAIN_LINKS;
use crate::tls::chain::{ChainError, chains_to_issuers};
use crate::x509::{self, CertInfo};

use super::{ISSUER_MEMBERS, IssuerFacts, LintOptions, Linter, PinSite, Severity};

impl Linter<'_> {
    pub(super) fn issuer(&mut self, value: &Value, path: Path, entity: usize) {
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "an issuer must be an object {{\"x509certificate\": PEM}}, found {}",
                    type_name(value)
                ),
            );
            return;
        };
        self.near_misses(map, ISSUER_MEMBERS, &path);
        let path = path.key("x509certificate");
        let pem = match map.get("x509certificate") {
            None => {
                self.error(
                    &path,
                    "x509certificate is required: the issuer certificate in PEM form",
                );
                return;
            }
            Some(Value::String(pem)) => pem,
            Some(other) => {
                self.error(
                    &path,
                    format!(
                        "x509certificate must be a PEM string, found {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        if pem.contains("PRIVATE KEY-----") {
            self.error(
                &path,
                "this contains a PRIVATE KEY: remove it at once, never publish it, and treat the key as compromised",
            );
        }
        let certs = match pem_certificates(pem.as_bytes()) {
            Ok(certs) => certs,
            Err(_) => {
                self.error(
                    &path,
                    "not a PEM certificate: expected \"-----BEGIN CERTIFICATE-----\\n...\\n-----END CERTIFICATE-----\\n\" with \\n line breaks",
                );
                return;
            }
        };
        let [cert] = certs.as_slice() else {
            self.error(
                &path,
                format!(
                    "holds {} certificates: list each issuer as its own {{\"x509certificate\": ...}} entry (usually only the root CA)",
                    certs.len()
                ),
            );
            return;
        };
        let info = match x509::inspect(cert) {
            Ok(info) => info,
            Err(e) => {
                self.error(&path, format!("the certificate cannot be read: {e}"));
                return;
            }
        };
        // A leaf that is neither a CA nor self-signed is an error unless it is one of the
        // entity's client certificates, listed for the SUNET authorization server: decided in
        // `cross_checks`, once the pins are known.
        self.validity(&path, &info, "the issuer certificate");
        if let Err(why) = x509::signature_is_sane(&info) {
            self.error(&path, format!("the issuer certificate is {why}"));
        }
        if let Some(facts) = self.entities.get_mut(entity) {
            facts.issuers.push(cert.to_vec());
        }
        self.issuers.push(IssuerFacts {
            entity,
            path,
            der: cert.to_vec(),
            subject_der: info.subject_der.clone(),
            subject: info.subject.clone(),
            info,
        });
    }

    fn validity(&mut self, path: &Path, info: &CertInfo, what: &str) {
        if let Some((severity, message)) = validity_problem(info, what, self.opts) {
            self.push(path, severity, message);
        }
    }

    /// Checks the certificates the user gave against the pins and issuers of the file.
    pub(super) fn certificate_checks(&mut self) {
        if self.opts.certificates.is_empty() {
            return;
        }
        let root = Path::default();
        let mut infos = Vec::new();
        for (k, der) in self.opts.certificates.iter().enumerate() {
            match x509::inspect(der) {
                Ok(info) => infos.push((k, der.as_ref(), info)),
                Err(e) => self.error(
                    &root,
                    format!("given certificate {} cannot be read: {e}", k + 1),
                ),
            }
        }
        let intermediates: Vec<&[u8]> = infos
            .iter()
            .filter(|(_, _, info)| info.is_ca && !self.pins.iter().any(|s| s.pin == info.pin))
            .map(|(_, der, _)| *der)
            .collect();

        let mut problems: Vec<(Path, Severity, String)> = Vec::new();
        for (k, der, info) in &infos {
            let sites: Vec<&PinSite> = self.pins.iter().filter(|s| s.pin == info.pin).collect();
            let Some(first) = sites.first() else {
                if !info.is_ca {
                    problems.push((
                        root.clone(),
                        Severity::Error,
                        format!(
                            "given certificate {} ({}) matches no pin in the file: add {{\"alg\": \"sha256\", \"digest\": \"{}\"}} to the endpoint that uses it",
                            k + 1,
                            info.subject,
                            info.pin
                        ),
                    ));
                }
                continue;
            };
            let mut checked = HashSet::new();
            for site in &sites {
                if !checked.insert(site.entity) {
                    continue;
                }
                let issuers = self
                    .entities
                    .get(site.entity)
                    .map(|e| e.issuers.as_slice())
                    .unwrap_or_default();
                if let Err(why) = chains_to(der, info, issuers, &intermediates) {
                    problems.push((
                        site.path.clone(),
                        Severity::Error,
                        format!(
                            "the certificate for this pin is not issued by any of the entity's issuers ({why}): list its root CA under issuers, or the certificate itself if it is self-signed"
                        ),
                    ));
                }
            }
            let what = format!("the certificate for this pin (given certificate {})", k + 1);
            if let Some((severity, message)) = validity_problem(info, &what, self.opts) {
                problems.push((first.path.clone(), severity, message));
            }
            if let Err(why) = x509::signature_is_sane(info) {
                problems.push((
                    first.path.clone(),
                    Severity::Error,
                    format!("{what} is {why}"),
                ));
            }
        }

        for site in &self.pins {
            if !infos.iter().any(|(_, _, info)| info.pin == site.pin) {
                problems.push((
                    site.path.clone(),
                    Severity::Warning,
                    "none of the given certificates has this pin: check that the pin is current, or give its certificate too".to_owned(),
                ));
            }
        }
        for (path, severity, message) in problems {
            self.push(&path, severity, message);
        }
    }
}

/// An expired, not yet valid or soon expiring certificate.
fn validity_problem(info: &CertInfo, what: &str, opts: &LintOptions) -> Option<(Severity, String)> {
    let now = opts.now;
    if info.not_after < now {
        Some((
            Severity::Error,
            format!(
                "{what} ({}) expired at {}: replace it",
                info.subject,
                Rfc3339(info.not_after)
            ),
        ))
    } else if info.not_before > now {
        Some((
            Severity::Error,
            format!(
                "{what} ({}) is not valid until {}: check the clock of the machine that made it",
                info.subject,
                Rfc3339(info.not_before)
            ),
        ))
    } else if info.not_after.saturating_sub(now) < opts.expiry_warning_days.saturating_mul(86_400) {
        Some((
            Severity::Warning,
            format!(
                "{what} ({}) expires at {}, in {} days: plan its replacement",
                info.subject,
                Rfc3339(info.not_after),
                info.not_after.saturating_sub(now) / 86_400
            ),
        ))
    } else {
        None
    }
}

/// Whether `leaf` is one of `issuers`, or is signed by one of them, possibly through the given
/// intermediate CA certificates: the walk the server's client verifier makes
/// ([`chains_to_issuers`]), so lint approves exactly the chains a server accepts.
fn chains_to(
    leaf: &[u8],
    leaf_info: &CertInfo,
    issuers: &[Vec<u8>],
    intermediates: &[&[u8]],
) -> Result<(), String> {
    let issuers: Vec<&[u8]> = issuers.iter().map(Vec::as_slice).collect();
    match chains_to_issuers(leaf, intermediates, &issuers) {
        Ok(()) => Ok(()),
        Err(ChainError::NoIssuers) => Err("the entity lists no usable issuer".to_owned()),
        Err(ChainError::Unreached {
            candidates,
            closest,
            ..
        }) => {
            let issued = match closest {
                Some(e) => format!("issued by {}, but {e}", leaf_info.issuer),
                None => format!("it was issued by {}", leaf_info.issuer),
            };
            Err(if candidates == 0 {
                issued
            } else {
                format!(
                    "{issued}, and no chain of at most {MAX_CHAIN_LINKS} links through the {candidates} given CA certificate(s) reaches one"
                )
            })
        }
    }
}
