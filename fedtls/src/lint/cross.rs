//! Checks that need the whole file: duplicate entity_ids (in `entity.rs`), issuer subjects,
//! client pin uniqueness, organization names and ids, and server host names.
//!
//! Two views: a member's own file (all of it is one member: every entity carries the same
//! `organization`) and a whole aggregate (`LintOptions::aggregate`, or automatic with two or
//! more `organization_id`s), where members differ by design and only the federation-wide rules
//! apply.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use rustls_pki_types::CertificateDer;

use crate::json::Path;
use crate::x509::{self, CertInfo};

use super::{Linter, PinSite, Role, Severity};

impl Linter<'_> {
    /// Whether this run lints a whole aggregate: asked for, or two or more organization_ids.
    pub(super) fn aggregate(&self) -> bool {
        self.opts.aggregate
            || self
                .entities
                .iter()
                .filter_map(|e| e.organization_id.as_ref().map(|(id, _)| id.as_str()))
                .collect::<BTreeSet<_>>()
                .len()
                >= 2
    }

    /// Endpoints with more than one pin (old and new certificate side by side).
    pub(super) fn rotating(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(Path, usize)> = Vec::new();
        for site in &self.pins {
            match counts.iter_mut().find(|(p, _)| *p == site.endpoint) {
                Some((_, n)) => *n += 1,
                None => counts.push((site.endpoint.clone(), 1)),
            }
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(p, n)| (p.to_string(), n))
            .collect()
    }

    /// Checks that need the whole file: issuer subjects, client pin uniqueness, organizations,
    /// host names.
    pub(super) fn cross_checks(&mut self) {
        let mut problems = Vec::new();
        self.issuer_subjects(&mut problems);
        self.client_pins(&mut problems);
        self.organization_names(&mut problems);
        self.member_names(&mut problems);
        self.self_signed_leaves_match_pins(&mut problems);
        self.leaf_issuers(&mut problems);
        self.sunet_client_rule(&mut problems);
        self.host_names(&mut problems);

        for (path, severity, message) in problems {
            self.push(&path, severity, message);
        }
    }

    /// Every issuer certificate has a subject no other issuer uses (the Moa rule since
    /// October 2024), except a renewed self-signed certificate beside the one it replaces.
    fn issuer_subjects(&self, problems: &mut Vec<(Path, Severity, String)>) {
        for (j, later) in self.issuers.iter().enumerate() {
            for earlier in self.issuers.iter().take(j) {
                if earlier.der == later.der {
                    if earlier.entity == later.entity {
                        problems.push((
                            later.path.clone(),
                            Severity::Warning,
                            format!(
                                "this certificate is already listed at {}: remove the duplicate",
                                earlier.path
                            ),
                        ));
                    }
                    break;
                }
                if earlier.subject_der == later.subject_der
                    && earlier.entity == later.entity
                    && self.one_endpoint_pins_both(&earlier.info, &later.info)
                {
                    // A renewed self-signed certificate beside the one it replaces, both pinned
                    // by the same endpoint: one endpoint, two generations, not two issuers.
                    problems.push((
                    later.path.clone(),
                    Severity::Warning,
                    format!(
                        "the issuer at {} has the same subject ({}): fine while a renewed certificate is published beside the old one; remove the old one once every peer uses the new (one cache_ttl after publication)",
                        earlier.path, later.subject
                    ),
                ));
                    break;
                }
                if earlier.subject_der == later.subject_der {
                    problems.push((
                    later.path.clone(),
                    Severity::Error,
                    format!(
                        "another issuer certificate at {} has the same subject ({}): every issuer needs a distinct X.509 subject; reissue one with a unique name",
                        earlier.path, later.subject
                    ),
                ));
                    break;
                }
            }
        }
    }

    /// A client pin identifies one entity: the same pin in two entities is an error, twice
    /// in one endpoint or entity a warning.
    fn client_pins(&self, problems: &mut Vec<(Path, Severity, String)>) {
        let clients: Vec<&PinSite> = self
            .pins
            .iter()
            .filter(|s| s.role == Role::Client)
            .collect();
        for (j, later) in clients.iter().enumerate() {
            let earlier: Vec<&&PinSite> = clients
                .iter()
                .take(j)
                .filter(|s| s.pin == later.pin)
                .collect();
            if let Some(other) = earlier.iter().find(|s| s.entity != later.entity) {
                let owner = self
                    .entities
                    .get(other.entity)
                    .and_then(|e| e.entity_id.clone())
                    .map(|id| format!(" of entity {id:?}"))
                    .unwrap_or_default();
                problems.push((
                later.path.clone(),
                Severity::Error,
                format!(
                    "this client pin is already used by the client at {}{owner}: a client pin identifies one entity, give each entity its own key and certificate",
                    other.endpoint
                ),
            ));
            } else if let Some(same) = earlier.iter().find(|s| s.endpoint == later.endpoint) {
                problems.push((
                    later.path.clone(),
                    Severity::Warning,
                    format!(
                        "the same pin is already listed at {}: remove the duplicate",
                        same.path
                    ),
                ));
            } else if let Some(sibling) = earlier.first() {
                problems.push((
                later.path.clone(),
                Severity::Warning,
                format!(
                    "the client at {} uses the same pin: allowed within one entity, but peers cannot tell these clients apart",
                    sibling.endpoint
                ),
            ));
            }
        }
    }

    /// One organization_id, one legal name: in a member's file and in an aggregate alike.
    fn organization_names(&self, problems: &mut Vec<(Path, Severity, String)>) {
        let mut names: HashMap<&str, (&str, &Path)> = HashMap::new();
        for facts in &self.entities {
            let (Some((id, _)), Some((name, path))) = (&facts.organization_id, &facts.organization)
            else {
                continue;
            };
            match names.get(id.as_str()) {
                None => {
                    names.insert(id, (name, path));
                }
                Some((first, first_path)) if first != name => problems.push((
                    path.clone(),
                    Severity::Error,
                    format!(
                        "organization {name:?} differs from {first:?} at {first_path}, and both entities have organization_id {id:?}: one organization_id always goes with the same legal name; correct whichever is wrong"
                    ),
                )),
                Some(_) => {}
            }
        }
    }

    /// In a member's own file (not an aggregate) under the Moa profile, every entity carries
    /// the member's legal name.
    fn member_names(&self, problems: &mut Vec<(Path, Severity, String)>) {
        let aggregate = self.aggregate();
        if self.moa() && !aggregate {
            let mut reference: Option<(String, Path)> = None;
            for facts in &self.entities {
                let Some((name, path)) = &facts.organization else {
                    continue;
                };
                match &reference {
                    None => reference = Some((name.clone(), path.clone())),
                    Some((first, first_path))
                        if first != name && !problems.iter().any(|(p, _, _)| p == path) =>
                    {
                        problems.push((
                            path.clone(),
                            Severity::Warning,
                            format!(
                                "organization {name:?} differs from {first:?} at {first_path}: all of a member's entities carry the member's legal name (never a contractor's)"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// Issuers that are neither a CA nor self-signed: an error (list the root CA instead),
    /// except the certificate of one of the entity's own clients, which the SUNET authorization
    /// server (Skolverket's) needs to find under issuers, beside its CA.
    fn leaf_issuers(&self, problems: &mut Vec<(Path, Severity, String)>) {
        for issuer in &self.issuers {
            if issuer.info.is_ca || issuer.info.self_signed {
                continue;
            }
            let a_client = self.pins.iter().any(|s| {
                s.entity == issuer.entity && s.role == Role::Client && s.pin == issuer.info.pin
            });
            if a_client {
                continue;
            }
            problems.push((
                issuer.path.clone(),
                Severity::Error,
                format!(
                    "{} is neither a CA certificate (basicConstraints cA) nor self-signed, nor one of the entity's client certificates: list the root CA that issued the entity's certificates, or the certificate itself if it is self-signed",
                    issuer.subject
                ),
            ));
        }
    }

    /// Moa: a client the SUNET authorization server (Skolverket's) would refuse. It accepts a
    /// client only when the client certificate itself is one of its entity's `issuers` (equal
    /// `cert#S256`, SHA-256 over the whole certificate), whatever the client pins say; a
    /// CA-issued leaf whose entity lists only the CA is refused. Checked for clients tagged
    /// `gnapv1` (the ones that fetch tokens); from the file alone: no issuer certificate of the
    /// entity has any of the client's pins.
    fn sunet_client_rule(&self, problems: &mut Vec<(Path, Severity, String)>) {
        if !self.moa() {
            return;
        }
        let mut clients: Vec<(&Path, usize, Vec<&crate::Pin>)> = Vec::new();
        let gnap =
            |s: &&super::PinSite| s.role == Role::Client && self.gnap_clients.contains(&s.endpoint);
        for site in self.pins.iter().filter(gnap) {
            match clients.iter_mut().find(|(p, _, _)| **p == site.endpoint) {
                Some((_, _, pins)) => pins.push(&site.pin),
                None => clients.push((&site.endpoint, site.entity, vec![&site.pin])),
            }
        }
        for (endpoint, entity, pins) in clients {
            let Some(facts) = self.entities.get(entity) else {
                continue;
            };
            if facts.pins_incomplete {
                continue;
            }
            let listed = self
                .issuers
                .iter()
                .any(|i| i.entity == entity && pins.contains(&&i.info.pin));
            if listed {
                continue;
            }
            let entity_id = facts.entity_id.as_deref().unwrap_or("this entity");
            let pins = pins
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            problems.push((
                endpoint.clone(),
                Severity::Warning,
                format!(
                    "{entity_id}: the SUNET authorization server (Skolverket's token service) will refuse this gnapv1 client: it accepts a client only when the client certificate itself is listed under the entity's issuers, and no issuer of {entity_id} is the certificate with pin {pins}; add the client certificate (PEM) to issuers, beside its CA"
                ),
            ));
        }
    }

    /// Whether both certificates are self-signed and one endpoint lists both their pins (so
    /// both are its own certificates, whatever basicConstraints says: `openssl req -x509`
    /// marks its certificates cA by default).
    fn one_endpoint_pins_both(&self, a: &CertInfo, b: &CertInfo) -> bool {
        a.self_signed
            && b.self_signed
            && self.pins.iter().any(|x| {
                x.pin == a.pin
                    && self
                        .pins
                        .iter()
                        .any(|y| y.pin == b.pin && y.endpoint == x.endpoint)
            })
    }

    /// A self-signed end-entity certificate listed as an issuer (no CA, or named like one of
    /// the entity's servers) is an endpoint's own certificate: some pin should be its pin.
    fn self_signed_leaves_match_pins(&self, problems: &mut Vec<(Path, Severity, String)>) {
        for issuer in &self.issuers {
            // A self-signed CA (openssl req -x509 makes one by default) is taken for an
            // endpoint's certificate only when it names one of the entity's server hosts.
            let names_a_server = self.servers.iter().any(|s| {
                s.entity == issuer.entity
                    && !matches!(names_host(&issuer.info, &s.host), HostMatch::No)
            });
            if (issuer.info.is_ca && !names_a_server)
                || !issuer.info.self_signed
                || self
                    .entities
                    .get(issuer.entity)
                    .is_some_and(|e| e.pins_incomplete)
            {
                continue;
            }
            if !self.pins.iter().any(|s| s.pin == issuer.info.pin) {
                problems.push((
                    issuer.path.clone(),
                    Severity::Warning,
                    format!(
                        "this self-signed certificate ({}) is {}, so it is an endpoint's own certificate, but no pin in the file is its pin {}: add the pin to the endpoint that uses it, or remove the certificate if it is no longer used",
                        issuer.subject,
                        if names_a_server {
                            "named like one of the entity's servers"
                        } else {
                            "no CA"
                        },
                        issuer.info.pin
                    ),
                ));
            }
        }
    }

    /// Each server certificate that can be found (a self-signed one listed under issuers, or
    /// one given with `--cert`) whose pin the server lists must name the server's base_uri host.
    fn host_names(&self, problems: &mut Vec<(Path, Severity, String)>) {
        let given: Vec<CertInfo> = self
            .opts
            .certificates
            .iter()
            .filter_map(|der: &CertificateDer<'_>| x509::inspect(der).ok())
            .collect();
        for server in &self.servers {
            let pins: Vec<&PinSite> = self
                .pins
                .iter()
                .filter(|s| s.endpoint == server.endpoint)
                .collect();
            let mut seen = Vec::new();
            let candidates = self
                .issuers
                .iter()
                .filter(|i| i.entity == server.entity)
                .map(|i| &i.info)
                .chain(given.iter());
            for info in candidates {
                if info.is_ca || seen.contains(&info.thumbprint) {
                    continue;
                }
                let Some(site) = pins.iter().find(|s| s.pin == info.pin) else {
                    continue;
                };
                seen.push(info.thumbprint);
                match names_host(info, &server.host) {
                    HostMatch::Yes => {}
                    HostMatch::OnlyCommonName => problems.push((
                        site.path.clone(),
                        Severity::Warning,
                        format!(
                            "the certificate with this pin ({}) names {:?} only in its subject CN: add a subjectAltName dNSName, clients that check names read only that",
                            info.subject, server.host
                        ),
                    )),
                    HostMatch::No => problems.push((
                        site.path.clone(),
                        Severity::Error,
                        format!(
                            "the certificate with this pin ({}; names: {}) does not name the base_uri host {:?}: use a certificate whose subjectAltName has {:?}, or correct base_uri",
                            info.subject,
                            cert_names(info),
                            server.host,
                            server.host
                        ),
                    )),
                }
            }
        }
    }
}

enum HostMatch {
    Yes,
    OnlyCommonName,
    No,
}

/// RFC 6125 / RFC 9525 matching: subjectAltName dNSName (a wildcard only as the whole leftmost
/// label) or iPAddress; the subject CN only when the certificate has no subjectAltName.
fn names_host(info: &CertInfo, host: &str) -> HostMatch {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return if info.ip_addresses.contains(&ip) {
            HostMatch::Yes
        } else {
            HostMatch::No
        };
    }
    if info.dns_names.iter().any(|name| dns_matches(name, &host)) {
        return HostMatch::Yes;
    }
    if info.dns_names.is_empty()
        && info.ip_addresses.is_empty()
        && common_name(&info.subject).is_some_and(|cn| dns_matches(cn, &host))
    {
        return HostMatch::OnlyCommonName;
    }
    HostMatch::No
}

fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

fn common_name(subject: &str) -> Option<&str> {
    subject
        .split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .map(str::trim)
}

fn cert_names(info: &CertInfo) -> String {
    let mut names: Vec<String> = info.dns_names.clone();
    names.extend(info.ip_addresses.iter().map(ToString::to_string));
    if names.is_empty() {
        "no subjectAltName".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_matches("*.example.org", "api.example.org"));
        assert!(dns_matches("API.Example.org.", "api.example.org"));
        assert!(!dns_matches("*.example.org", "example.org"));
        assert!(!dns_matches("*.example.org", "a.b.example.org"));
        assert!(!dns_matches("example.org", "api.example.org"));
    }

    #[test]
    fn common_names() {
        assert_eq!(common_name("CN=a.example, O=A"), Some("a.example"));
        assert_eq!(common_name("O=A, CN=b.example"), Some("b.example"));
        assert_eq!(common_name("O=A"), None);
    }
}
