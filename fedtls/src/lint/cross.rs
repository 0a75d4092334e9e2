//! Checks that need the whole file: issuer subjects, client pin uniqueness, the Moa organization.

use crate::json::Path;

use super::{Linter, PinSite, Role, Severity};

impl Linter<'_> {
    /// Checks that need the whole file: issuer subjects, client pin uniqueness, Moa organization.
    pub(super) fn cross_checks(&mut self) {
        let mut problems = Vec::new();
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

        if self.moa() {
            let mut reference: Option<(String, Path)> = None;
            for facts in &self.entities {
                let Some((name, path)) = &facts.organization else {
                    continue;
                };
                match &reference {
                    None => reference = Some((name.clone(), path.clone())),
                    Some((first, first_path)) if first != name => problems.push((
                        path.clone(),
                        Severity::Warning,
                        format!(
                            "organization {name:?} differs from {first:?} at {first_path}: all of a member's entities carry the member's legal name (never a contractor's)"
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }

        for (path, severity, message) in problems {
            self.push(&path, severity, message);
        }
    }
}
