//! Access policy: which authenticated federation members may use a server.

use fedtls::tls::PeerIdentity;
use fedtls::{OrganizationId, Tag};

/// Rules a client must meet after authentication. Every configured rule must pass; within
/// one rule, any listed value suffices. An empty rule does not restrict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The client endpoint must carry at least one of these tags (e.g. `egilv1`).
    pub client_tags: Vec<Tag>,
    /// The client's entity must have one of these organization ids.
    pub organization_ids: Vec<OrganizationId>,
    /// The client's entity must be one of these.
    pub entity_ids: Vec<String>,
    /// The client's entity must list at least one of these saml-scope domains.
    pub scopes: Vec<String>,
}

/// A failed policy rule, reported to the client in the 403 body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    /// The rule that failed: `client_tags`, `organization_ids`, `entity_ids` or `scopes`.
    pub rule: &'static str,
    /// Human-readable explanation, naming what was required.
    pub message: String,
}

impl Policy {
    /// True when no rule is configured (any authenticated member is allowed).
    pub fn is_open(&self) -> bool {
        self.client_tags.is_empty()
            && self.organization_ids.is_empty()
            && self.entity_ids.is_empty()
            && self.scopes.is_empty()
    }

    /// Checks `peer` against every configured rule.
    pub fn check(&self, peer: &PeerIdentity) -> Result<(), Denial> {
        if !self.client_tags.is_empty() && !peer.tags.iter().any(|t| self.client_tags.contains(t)) {
            return Err(Denial {
                rule: "client_tags",
                message: format!(
                    "the client endpoint must carry one of the tags [{}]; it has [{}]",
                    joined(&self.client_tags),
                    joined(&peer.tags)
                ),
            });
        }
        if !self.organization_ids.is_empty()
            && !peer
                .organization_id
                .as_ref()
                .is_some_and(|id| self.organization_ids.contains(id))
        {
            return Err(Denial {
                rule: "organization_ids",
                message: format!(
                    "organization_id must be one of [{}]; it is {}",
                    joined(&self.organization_ids),
                    peer.organization_id
                        .as_ref()
                        .map_or("absent", OrganizationId::as_str)
                ),
            });
        }
        if !self.entity_ids.is_empty() && !self.entity_ids.contains(&peer.entity_id) {
            return Err(Denial {
                rule: "entity_ids",
                message: format!("entity {} is not allowed on this server", peer.entity_id),
            });
        }
        if !self.scopes.is_empty()
            && !peer
                .scopes
                .iter()
                .any(|s| self.scopes.iter().any(|want| want.eq_ignore_ascii_case(s)))
        {
            return Err(Denial {
                rule: "scopes",
                message: format!(
                    "the entity must be scoped to one of [{}]; it has [{}]",
                    self.scopes.join(", "),
                    peer.scopes.join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// `a, b, c`, for messages.
fn joined<T: AsRef<str>>(items: &[T]) -> String {
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}
