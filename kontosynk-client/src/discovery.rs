//! Discovery: find the servers a member may call in the verified federation metadata, by
//! entity id, tag and organization id, and choose one.
//!
//! The results are owned ([`ServerTarget`]) so they outlive the snapshot they came from; the
//! HTTP client re-reads the server's pins from the *current* metadata at every handshake, so a
//! target never freezes trust.

use std::fmt;

use fedtls::OrganizationId;
use fedtls::index::Index;
use fedtls::metadata::{Endpoint, Entity};
use fedtls::pin::Pin;
use url::Url;

/// One server endpoint from the metadata, with the entity that lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerTarget {
    /// The entity listing the server.
    pub entity_id: String,
    /// The entity's organization (legal name), if given.
    pub organization: Option<String>,
    /// The entity's organization id (`SE…`), if given.
    pub organization_id: Option<OrganizationId>,
    /// The server's `base_uri` (always `https`).
    #[serde(serialize_with = "serialize_url")]
    pub base_uri: Url,
    /// The server's SPKI pins at discovery time.
    pub pins: Vec<Pin>,
    /// The server's tags.
    pub tags: Vec<String>,
    /// The server's description, if given.
    pub description: Option<String>,
    /// Position of the server in the entity's `servers`.
    pub position: usize,
}

fn serialize_url<S: serde::Serializer>(url: &Url, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(url.as_str())
}

impl ServerTarget {
    /// The target for server `position` of `entity`, or why it cannot be called.
    pub fn from_endpoint(
        entity: &Entity,
        endpoint: &Endpoint,
        position: usize,
    ) -> Result<Self, Box<SkippedServer>> {
        let skipped = |reason: String| {
            Box::new(SkippedServer {
                entity_id: entity.entity_id.clone(),
                organization: entity.organization.clone(),
                organization_id: entity.organization_id.clone(),
                base_uri: endpoint.base_uri.clone(),
                position,
                reason,
            })
        };
        let raw = endpoint
            .base_uri
            .as_deref()
            .ok_or_else(|| skipped("the server has no base_uri".to_owned()))?;
        let base_uri = parse_base_uri(raw).map_err(|e| skipped(e.to_string()))?;
        if endpoint.pins.is_empty() {
            return Err(skipped("the server lists no pins".to_owned()));
        }
        Ok(Self {
            entity_id: entity.entity_id.clone(),
            organization: entity.organization.clone(),
            organization_id: entity.organization_id.clone(),
            base_uri,
            pins: endpoint.pins.clone(),
            tags: endpoint.tags.iter().map(|t| t.to_string()).collect(),
            description: endpoint.description.clone(),
            position,
        })
    }

    /// The host name or IP address of `base_uri`.
    pub fn host(&self) -> &str {
        self.base_uri.host_str().unwrap_or_default()
    }

    /// The host as it goes in a `Host` header (IPv6 addresses in brackets).
    pub fn host_for_header(&self) -> String {
        match self.base_uri.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }

    /// The port of `base_uri` (443 when not given).
    pub fn port(&self) -> u16 {
        self.base_uri.port_or_known_default().unwrap_or(443)
    }
}

/// Why a metadata `base_uri` cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUriError {
    /// Not a URL at all.
    #[error("base_uri {raw:?} is not a valid URL: {source}")]
    Invalid {
        /// The value in the metadata.
        raw: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// Not `https`.
    #[error("base_uri {raw:?} is not https (FedTLS servers are called over mutual TLS)")]
    NotHttps {
        /// The value in the metadata.
        raw: String,
    },
    /// No host to connect to.
    #[error("base_uri {raw:?} has no host")]
    NoHost {
        /// The value in the metadata.
        raw: String,
    },
}

/// Parses a metadata `base_uri`: an absolute `https` URL with a host.
pub fn parse_base_uri(raw: &str) -> Result<Url, BaseUriError> {
    let url = Url::parse(raw).map_err(|source| BaseUriError::Invalid {
        raw: raw.to_owned(),
        source,
    })?;
    if url.scheme() != "https" {
        return Err(BaseUriError::NotHttps {
            raw: raw.to_owned(),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BaseUriError::NoHost {
            raw: raw.to_owned(),
        });
    }
    Ok(url)
}

/// A server the metadata lists but that cannot be called (no or bad `base_uri`, no pins).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedServer {
    /// The entity listing the server.
    pub entity_id: String,
    /// The entity's organization, if given.
    pub organization: Option<String>,
    /// The entity's organization id, if given.
    pub organization_id: Option<OrganizationId>,
    /// The server's raw `base_uri`, if any.
    pub base_uri: Option<String>,
    /// Position of the server in the entity's `servers`.
    pub position: usize,
    /// Why it cannot be called.
    pub reason: String,
}

/// Which servers to look for. Every filter given must match (an empty query matches every
/// server of the federation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerQuery {
    /// Only servers of this entity.
    pub entity_id: Option<String>,
    /// Only servers carrying this tag (e.g. `egilv1`, `gnapv1`).
    pub tag: Option<String>,
    /// Only servers of entities with this organization id.
    pub organization_id: Option<OrganizationId>,
}

impl fmt::Display for ServerQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(e) = &self.entity_id {
            parts.push(format!("entity_id={e}"));
        }
        if let Some(t) = &self.tag {
            parts.push(format!("tag={t}"));
        }
        if let Some(o) = &self.organization_id {
            parts.push(format!("organization_id={o}"));
        }
        if parts.is_empty() {
            f.write_str("every server")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What a query found: callable servers and listed-but-unusable ones, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Servers that can be called.
    pub servers: Vec<ServerTarget>,
    /// Servers that match the query but cannot be called, with the reason.
    pub skipped: Vec<SkippedServer>,
}

/// How to choose when a query matches several servers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Choice {
    /// Exactly one server must match; several is an error listing them (the safe default:
    /// the caller must say which one it means).
    #[default]
    Unique,
    /// The first in document order.
    First,
}

/// Why no server could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// No callable server matches.
    #[error("no server in the federation metadata matches {query}{}", skipped_note(.skipped))]
    NoMatch {
        /// The query, as text.
        query: String,
        /// Matching servers that could not be used, with reasons.
        skipped: Vec<String>,
    },
    /// Several servers match and [`Choice::Unique`] was asked for.
    #[error(
        "{} servers match {query}: {}; narrow the query (entity id, tag, organization id)",
        .candidates.len(), .candidates.join(", ")
    )]
    Ambiguous {
        /// The query, as text.
        query: String,
        /// `entity_id base_uri` of each candidate.
        candidates: Vec<String>,
    },
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (unusable: {})", skipped.join("; "))
    }
}

impl ServerQuery {
    /// A query for the servers carrying `tag`.
    pub fn tag(tag: impl Into<String>) -> Self {
        Self {
            tag: Some(tag.into()),
            ..Self::default()
        }
    }

    /// A query for the servers of `entity_id`.
    pub fn entity(entity_id: impl Into<String>) -> Self {
        Self {
            entity_id: Some(entity_id.into()),
            ..Self::default()
        }
    }

    /// Also require this tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Also require this organization id.
    pub fn with_organization_id(mut self, organization_id: OrganizationId) -> Self {
        self.organization_id = Some(organization_id);
        self
    }

    /// Every matching server, in document order, using the index's maps (no full scan when
    /// an entity id or organization id is given).
    pub fn find(&self, index: &Index) -> Discovered {
        let entities: Vec<&Entity> = match (&self.entity_id, &self.organization_id) {
            (Some(id), _) => index.entity(id).into_iter().collect(),
            (None, Some(org)) => index.entities_by_organization_id(org).collect(),
            (None, None) => index.entities().iter().collect(),
        };
        let mut found = Discovered::default();
        for entity in entities {
            if let Some(org) = &self.organization_id
                && entity.organization_id.as_ref() != Some(org)
            {
                continue;
            }
            for (position, endpoint) in entity.servers.iter().enumerate() {
                if let Some(tag) = &self.tag
                    && !endpoint.has_tag(tag)
                {
                    continue;
                }
                match ServerTarget::from_endpoint(entity, endpoint, position) {
                    Ok(target) => found.servers.push(target),
                    Err(skipped) => found.skipped.push(*skipped),
                }
            }
        }
        found
    }

    /// One server, chosen as `choice` says.
    pub fn select(&self, index: &Index, choice: Choice) -> Result<ServerTarget, DiscoveryError> {
        let found = self.find(index);
        let mut servers = found.servers;
        match (servers.len(), choice) {
            (0, _) => Err(DiscoveryError::NoMatch {
                query: self.to_string(),
                skipped: found
                    .skipped
                    .iter()
                    .map(|s| format!("{} server {}: {}", s.entity_id, s.position, s.reason))
                    .collect(),
            }),
            (1, _) | (_, Choice::First) => Ok(servers.swap_remove(0)),
            (_, Choice::Unique) => Err(DiscoveryError::Ambiguous {
                query: self.to_string(),
                candidates: servers
                    .iter()
                    .map(|s| format!("{} {}", s.entity_id, s.base_uri))
                    .collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsupport::{AUTHORITY, Fed, SCHOOL, SUPPLIER};

    fn fed_with_extra_servers() -> Fed {
        let mut fed = Fed::new();
        let pin = fed.fed.party("school-server").unwrap().pin.to_string();
        // A second egilv1 server of the school's organization, and one with an http
        // base_uri (the parser already drops servers without one).
        fed.push_entity(serde_json::json!({
            "entity_id": "https://school2.test.example",
            "organization": "Exempla kommun",
            "organization_id": "SE2120009999",
            "issuers": [],
            "servers": [
                {"base_uri": "https://school2.test.example/api/", "pins": [{"alg": "sha256", "digest": pin}], "tags": ["egilv1"]},
                {"base_uri": "http://school2.test.example/", "pins": [{"alg": "sha256", "digest": pin}], "tags": ["egilv1"]}
            ]
        }));
        fed
    }

    #[test]
    fn finds_by_tag_entity_and_organization() {
        let fed = fed_with_extra_servers();
        let snapshot = fed.snapshot();
        let index = snapshot.index();

        let all = ServerQuery::default().find(index);
        assert_eq!(all.servers.len(), 4);
        assert_eq!(all.skipped.len(), 1);
        assert!(
            all.skipped[0].reason.contains("not https"),
            "{:?}",
            all.skipped
        );
        assert_eq!(all.skipped[0].position, 1);

        let gnap = ServerQuery::tag("gnapv1")
            .select(index, Choice::Unique)
            .unwrap();
        assert_eq!(gnap.entity_id, AUTHORITY);
        assert_eq!(gnap.organization_id.clone().unwrap(), "SE2021004185");
        assert_eq!(gnap.pins, vec![fed.fed.party("authserver").unwrap().pin]);
        assert_eq!(gnap.host(), "localhost");
        assert_eq!(gnap.port(), 7443);

        let supplier = ServerQuery::entity(SUPPLIER)
            .select(index, Choice::Unique)
            .unwrap();
        assert_eq!(
            supplier.base_uri.as_str(),
            "https://localhost:9443/ss12000/"
        );

        let org = ServerQuery::tag("egilv1").with_organization_id("SE2120009999".parse().unwrap());
        let found = org.find(index);
        assert_eq!(found.servers.len(), 2);
        assert_eq!(found.servers[0].entity_id, SCHOOL);
        let error = org.select(index, Choice::Unique).unwrap_err();
        assert!(matches!(error, DiscoveryError::Ambiguous { .. }), "{error}");
        assert!(
            error.to_string().contains("school2.test.example"),
            "{error}"
        );
        assert_eq!(org.select(index, Choice::First).unwrap().entity_id, SCHOOL);

        // Entity and organization must both match.
        let mismatch =
            ServerQuery::entity(SCHOOL).with_organization_id("SE5566000001".parse().unwrap());
        let error = mismatch.select(index, Choice::First).unwrap_err();
        assert!(matches!(error, DiscoveryError::NoMatch { .. }), "{error}");

        let error = ServerQuery::tag("bolv1")
            .select(index, Choice::First)
            .unwrap_err();
        assert!(error.to_string().contains("tag=bolv1"), "{error}");
        let error = ServerQuery::entity("https://nobody.example")
            .select(index, Choice::First)
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("entity_id=https://nobody.example"),
            "{error}"
        );
    }

    #[test]
    fn unusable_servers_are_named_when_nothing_else_matches() {
        let fed = fed_with_extra_servers();
        let snapshot = fed.snapshot();
        let query = ServerQuery::entity("https://school2.test.example").with_tag("egilv1");
        assert_eq!(query.find(snapshot.index()).servers.len(), 1);
        let mut fed = fed;
        fed.payload["entities"]
            .as_array_mut()
            .unwrap()
            .last_mut()
            .unwrap()["servers"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        let snapshot = fed.snapshot();
        let error = query.select(snapshot.index(), Choice::First).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("unusable") && text.contains("not https"),
            "{text}"
        );
    }

    #[test]
    fn base_uri_must_be_absolute_https_with_a_host() {
        assert!(parse_base_uri("https://a.example/x").is_ok());
        assert!(
            parse_base_uri("http://a.example/")
                .unwrap_err()
                .to_string()
                .contains("not https")
        );
        assert!(
            parse_base_uri("/relative")
                .unwrap_err()
                .to_string()
                .contains("not a valid URL")
        );
        assert!(parse_base_uri("https://").is_err());
        assert!(parse_base_uri("mailto:a@b.example").is_err());
    }
}
