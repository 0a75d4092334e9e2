//! An immutable index over verified metadata: constant-time lookups of peers by pin,
//! entity id, tag, organization id and scope.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::metadata::{Endpoint, Entity, Metadata, RejectedEntity};
use crate::names::{OrganizationId, Tag};
use crate::pin::{CertThumbprint, Pin};

/// Which side of a connection an endpoint is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A TLS server (listed under `servers`).
    Server,
    /// A TLS client (listed under `clients`).
    Client,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Client => "client",
        })
    }
}

/// The same pin listed by more than one entity. Lookups answer with the first entity in
/// document order; the rest are reported here so an operator can fix the metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PinAmbiguity {
    /// Whether the pin was listed for servers or for clients.
    pub role: Role,
    /// The pin.
    pub pin: Pin,
    /// Every entity listing it, in document order; lookups answer with the first.
    pub entity_ids: Vec<String>,
}

/// An endpoint found by a lookup, with the entity that lists it.
#[derive(Debug, Clone, Copy)]
pub struct EndpointMatch<'a> {
    /// The entity.
    pub entity: &'a Entity,
    /// The matching server or client.
    pub endpoint: &'a Endpoint,
    /// Whether `endpoint` is one of the entity's servers or clients.
    pub role: Role,
    /// Position of `endpoint` in the entity's `servers` or `clients`.
    pub position: usize,
    /// Which source vouched for the entity: a position in
    /// [`Snapshot::sources`](crate::Snapshot::sources) (always 0 for one document).
    pub source: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EndpointRef {
    entity: u32,
    endpoint: u32,
}

/// Lookup tables over one metadata snapshot. Built once, never changed: a newer document
/// gets a new index.
#[derive(Debug)]
pub struct Index {
    metadata: Metadata,
    by_entity_id: HashMap<Box<str>, u32>,
    /// Further registrations of an entity id (only in a merged index: the same member in
    /// several sources), after the one in `by_entity_id`.
    also_registered: HashMap<Box<str>, Vec<u32>>,
    client_pins: HashMap<Pin, EndpointRef>,
    server_pins: HashMap<Pin, EndpointRef>,
    client_tags: HashMap<Tag, Vec<EndpointRef>>,
    server_tags: HashMap<Tag, Vec<EndpointRef>>,
    by_organization_id: HashMap<OrganizationId, Vec<u32>>,
    by_scope: HashMap<Box<str>, Vec<u32>>,
    /// Built on first use: hashing every issuer certificate is a sixth of the cost of
    /// verifying a large aggregate, and only servers that recognise clients by their issuer
    /// certificate (the SUNET rule) ever look it up.
    by_issuer_thumbprint: std::sync::OnceLock<HashMap<CertThumbprint, Vec<u32>>>,
    ambiguities: Vec<PinAmbiguity>,
    /// For a merged index: the source of each entity (parallel to the entities); empty for
    /// one document (every entity is from source 0).
    entity_source: Vec<u16>,
}

impl Index {
    /// Indexes the usable entities of `metadata` (entity ids are already unique there).
    pub fn new(metadata: Metadata) -> Self {
        Self::build(metadata, Vec::new())
    }

    /// One index over several sources' indexes, in precedence order: an entity id or pin
    /// listed by more than one answers with the first source's entity; every entity stays
    /// listed (with its source, see [`source_of_entity`](Self::source_of_entity)), so a
    /// client registered in two federations is known by either registration's pins.
    /// `version` and claims are the first part's; `cache_ttl` is the shortest.
    pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Index>) -> Index {
        let mut merged = Metadata::default();
        let mut entity_source = Vec::new();
        for (position, part) in parts.into_iter().enumerate() {
            let source = u16::try_from(position).unwrap_or(u16::MAX);
            let metadata = part.metadata();
            if position == 0 {
                merged.version = metadata.version.clone();
                merged.claims = metadata.claims.clone();
            }
            merged.cache_ttl = match (merged.cache_ttl, metadata.cache_ttl) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            for entity in part.entities() {
                entity_source.push(source);
                merged.entities.push(entity.clone());
            }
            merged.rejected.extend(metadata.rejected.iter().cloned());
            merged.warnings.extend(metadata.warnings.iter().cloned());
        }
        Self::build(merged, entity_source)
    }

    fn build(mut metadata: Metadata, entity_source: Vec<u16>) -> Self {
        let entities = std::mem::take(&mut metadata.entities);
        let pins = |pick: fn(&Entity) -> &Vec<Endpoint>| {
            entities
                .iter()
                .flat_map(|e| pick(e).iter().map(|p| p.pins.len()))
                .sum::<usize>()
        };
        let mut index = Index {
            by_entity_id: HashMap::with_capacity(entities.len()),
            also_registered: HashMap::new(),
            client_pins: HashMap::with_capacity(pins(|e| &e.clients)),
            server_pins: HashMap::with_capacity(pins(|e| &e.servers)),
            client_tags: HashMap::new(),
            server_tags: HashMap::new(),
            by_organization_id: HashMap::new(),
            by_scope: HashMap::new(),
            by_issuer_thumbprint: std::sync::OnceLock::new(),
            ambiguities: Vec::new(),
            entity_source,
            metadata,
        };
        for (entity_index, entity) in entities.iter().enumerate() {
            index.add(
                u32::try_from(entity_index).unwrap_or(u32::MAX),
                entity,
                &entities,
            );
        }
        index.metadata.entities = entities;
        index
    }

    fn add(&mut self, entity_index: u32, entity: &Entity, all: &[Entity]) {
        match self.by_entity_id.entry(entity.entity_id.as_str().into()) {
            Entry::Vacant(slot) => {
                slot.insert(entity_index);
            }
            Entry::Occupied(_) => self
                .also_registered
                .entry(entity.entity_id.as_str().into())
                .or_default()
                .push(entity_index),
        }
        if let Some(org) = &entity.organization_id {
            self.by_organization_id
                .entry(org.clone())
                .or_default()
                .push(entity_index);
        }
        for scope in &entity.scopes {
            let list = self
                .by_scope
                .entry(scope.to_ascii_lowercase().into_boxed_str())
                .or_default();
            if list.last() != Some(&entity_index) {
                list.push(entity_index);
            }
        }
        for (role, endpoints) in [
            (Role::Client, &entity.clients),
            (Role::Server, &entity.servers),
        ] {
            for (position, endpoint) in endpoints.iter().enumerate() {
                let at = EndpointRef {
                    entity: entity_index,
                    endpoint: u32::try_from(position).unwrap_or(u32::MAX),
                };
                let (pins, tags) = match role {
                    Role::Client => (&mut self.client_pins, &mut self.client_tags),
                    Role::Server => (&mut self.server_pins, &mut self.server_tags),
                };
                for tag in &endpoint.tags {
                    match tags.get_mut(tag.as_str()) {
                        Some(list) if list.last() == Some(&at) => {}
                        Some(list) => list.push(at),
                        None => {
                            tags.insert(tag.clone(), vec![at]);
                        }
                    }
                }
                for pin in &endpoint.pins {
                    match pins.entry(*pin) {
                        Entry::Vacant(slot) => {
                            slot.insert(at);
                        }
                        // The same entity registered in two merged sources is not ambiguous.
                        Entry::Occupied(slot)
                            if slot.get().entity != entity_index
                                && all[slot.get().entity as usize].entity_id
                                    != entity.entity_id =>
                        {
                            let first = &all[slot.get().entity as usize].entity_id;
                            note_ambiguity(
                                &mut self.ambiguities,
                                role,
                                *pin,
                                first,
                                &entity.entity_id,
                            );
                        }
                        Entry::Occupied(_) => {}
                    }
                }
            }
        }
    }

    /// The metadata this index was built from (usable entities, rejected ones, claims).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The usable entities, in document order.
    pub fn entities(&self) -> &[Entity] {
        &self.metadata.entities
    }

    /// Entities left out of the index, with the reason for each.
    pub fn rejected(&self) -> &[RejectedEntity] {
        &self.metadata.rejected
    }

    /// Pins listed by more than one entity (lookups answer with the first one).
    pub fn ambiguities(&self) -> &[PinAmbiguity] {
        &self.ambiguities
    }

    /// Which source vouched for `entity` (a position in
    /// [`Snapshot::sources`](crate::Snapshot::sources)): 0 for one document, and for an
    /// entity that is not from this index.
    pub fn source_of_entity(&self, entity: &Entity) -> usize {
        // The entity's position, from its address within this index's entity slice (an
        // entity from elsewhere lands outside it or between elements, and answers 0).
        let size = std::mem::size_of::<Entity>();
        let start = self.metadata.entities.as_ptr() as usize;
        let offset = (entity as *const Entity as usize).wrapping_sub(start);
        if size == 0 || !offset.is_multiple_of(size) {
            return 0;
        }
        self.entity_source
            .get(offset / size)
            .map_or(0, |&source| usize::from(source))
    }

    /// Every registration of `entity_id`, in precedence order: one for a single document;
    /// in a merged index, one per source that lists it (see [`Index::merge`]).
    pub fn entities_with_id<'a>(
        &'a self,
        entity_id: &str,
    ) -> impl Iterator<Item = &'a Entity> + 'a {
        let first = self.by_entity_id.get(entity_id).copied();
        let rest = self
            .also_registered
            .get(entity_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        first
            .into_iter()
            .chain(rest.iter().copied())
            .map(|i| &self.metadata.entities[i as usize])
    }

    /// The entity with this `entity_id`.
    pub fn entity(&self, entity_id: &str) -> Option<&Entity> {
        self.by_entity_id
            .get(entity_id)
            .map(|&i| &self.metadata.entities[i as usize])
    }

    /// The client a certificate with this SPKI pin belongs to.
    pub fn client_by_pin(&self, pin: &Pin) -> Option<EndpointMatch<'_>> {
        self.client_pins
            .get(pin)
            .map(|&at| self.resolve(at, Role::Client))
    }

    /// The server a certificate with this SPKI pin belongs to.
    pub fn server_by_pin(&self, pin: &Pin) -> Option<EndpointMatch<'_>> {
        self.server_pins
            .get(pin)
            .map(|&at| self.resolve(at, Role::Server))
    }

    /// The endpoint with this pin in the given role.
    pub fn by_pin(&self, pin: &Pin, role: Role) -> Option<EndpointMatch<'_>> {
        match role {
            Role::Client => self.client_by_pin(pin),
            Role::Server => self.server_by_pin(pin),
        }
    }

    /// Every server carrying `tag`, in document order.
    pub fn servers_with_tag<'a>(
        &'a self,
        tag: &str,
    ) -> impl ExactSizeIterator<Item = EndpointMatch<'a>> + 'a {
        self.tagged(tag, Role::Server)
    }

    /// Every client carrying `tag`, in document order.
    pub fn clients_with_tag<'a>(
        &'a self,
        tag: &str,
    ) -> impl ExactSizeIterator<Item = EndpointMatch<'a>> + 'a {
        self.tagged(tag, Role::Client)
    }

    /// Every endpoint of the given role carrying `tag`, in document order.
    pub fn tagged<'a>(
        &'a self,
        tag: &str,
        role: Role,
    ) -> impl ExactSizeIterator<Item = EndpointMatch<'a>> + 'a {
        let map = match role {
            Role::Server => &self.server_tags,
            Role::Client => &self.client_tags,
        };
        map.get(tag)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(move |&at| self.resolve(at, role))
    }

    /// Every entity with this `organization_id`, in document order.
    pub fn entities_by_organization_id<'a>(
        &'a self,
        organization_id: &OrganizationId,
    ) -> impl ExactSizeIterator<Item = &'a Entity> + 'a {
        self.entity_list(self.by_organization_id.get(organization_id))
    }

    /// Every entity whose saml-scope extension lists `domain` (compared case-insensitively).
    pub fn entities_by_scope<'a>(
        &'a self,
        domain: &str,
    ) -> impl ExactSizeIterator<Item = &'a Entity> + 'a {
        self.entity_list(self.by_scope.get(domain.to_ascii_lowercase().as_str()))
    }

    /// Every entity listing a certificate with this RFC 8705 thumbprint (`cert#S256`) among
    /// its `issuers`, in document order: the SUNET authorization server's way of recognising
    /// a client whose self-signed certificate is listed byte for byte as an issuer.
    pub fn entities_by_issuer_thumbprint<'a>(
        &'a self,
        thumbprint: &CertThumbprint,
    ) -> impl ExactSizeIterator<Item = &'a Entity> + 'a {
        let by_thumbprint = self.by_issuer_thumbprint.get_or_init(|| {
            let mut map: HashMap<CertThumbprint, Vec<u32>> = HashMap::new();
            for (position, entity) in self.metadata.entities.iter().enumerate() {
                let position = u32::try_from(position).unwrap_or(u32::MAX);
                for issuer in &entity.issuers {
                    let list = map.entry(issuer.thumbprint()).or_default();
                    if list.last() != Some(&position) {
                        list.push(position);
                    }
                }
            }
            map
        });
        self.entity_list(by_thumbprint.get(thumbprint))
    }

    fn entity_list<'a>(
        &'a self,
        list: Option<&'a Vec<u32>>,
    ) -> impl ExactSizeIterator<Item = &'a Entity> + 'a {
        list.map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.metadata.entities[i as usize])
    }

    fn resolve(&self, at: EndpointRef, role: Role) -> EndpointMatch<'_> {
        let entity = &self.metadata.entities[at.entity as usize];
        let endpoints = match role {
            Role::Server => &entity.servers,
            Role::Client => &entity.clients,
        };
        EndpointMatch {
            entity,
            endpoint: &endpoints[at.endpoint as usize],
            role,
            position: at.endpoint as usize,
            source: self
                .entity_source
                .get(at.entity as usize)
                .map_or(0, |&source| usize::from(source)),
        }
    }
}

fn note_ambiguity(list: &mut Vec<PinAmbiguity>, role: Role, pin: Pin, first: &str, other: &str) {
    if let Some(existing) = list.iter_mut().find(|a| a.pin == pin && a.role == role) {
        if existing.entity_ids.last().map(String::as_str) != Some(other) {
            existing.entity_ids.push(other.to_owned());
        }
        return;
    }
    list.push(PinAmbiguity {
        role,
        pin,
        entity_ids: vec![first.to_owned(), other.to_owned()],
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::parse_payload;

    fn doc(entities: serde_json::Value) -> Index {
        let doc = serde_json::json!({"version": "1.0.0", "entities": entities});
        Index::new(parse_payload(doc.to_string().as_bytes(), 1).unwrap())
    }

    const PIN_A: &str = "lz6QwPv/28pGG18Xjcf1V3T2EMk30dzgwTUJUg957Fs=";
    const PIN_B: &str = "tP8Ti7ULYVEeg7f+kvk+wW7X1IID5QHZGeunuVSl4NA=";

    #[test]
    fn duplicate_client_pins_answer_the_first_entity_and_are_reported() {
        let index = doc(serde_json::json!([
            {"entity_id": "https://first", "issuers": [], "clients": [{"pins": [{"alg": "sha256", "digest": PIN_A}]}]},
            {"entity_id": "https://second", "issuers": [], "clients": [{"pins": [{"alg": "sha256", "digest": PIN_A}]}]},
            {"entity_id": "https://third", "issuers": [], "clients": [{"pins": [{"alg": "sha256", "digest": PIN_A}]}]},
        ]));
        let pin: Pin = PIN_A.parse().unwrap();
        assert_eq!(
            index.client_by_pin(&pin).unwrap().entity.entity_id,
            "https://first"
        );
        assert_eq!(index.ambiguities().len(), 1);
        assert_eq!(
            index.ambiguities()[0].entity_ids,
            ["https://first", "https://second", "https://third"]
        );
    }

    #[test]
    fn same_pin_within_one_entity_is_not_ambiguous() {
        let index = doc(serde_json::json!([
            {"entity_id": "https://one", "issuers": [], "clients": [
                {"pins": [{"alg": "sha256", "digest": PIN_A}]},
                {"pins": [{"alg": "sha256", "digest": PIN_A}]}
            ], "servers": [
                {"base_uri": "https://a/", "pins": [{"alg": "sha256", "digest": PIN_B}], "tags": ["egilv1"]},
                {"base_uri": "https://b/", "pins": [{"alg": "sha256", "digest": PIN_B}], "tags": ["egilv1", "bolv1"]}
            ]},
        ]));
        assert!(index.ambiguities().is_empty());
        let pin: Pin = PIN_B.parse().unwrap();
        let found = index.server_by_pin(&pin).unwrap();
        assert_eq!(found.position, 0);
        assert_eq!(found.role, Role::Server);
        assert_eq!(index.servers_with_tag("egilv1").len(), 2);
        assert_eq!(index.servers_with_tag("bolv1").next().unwrap().position, 1);
        assert_eq!(index.clients_with_tag("egilv1").len(), 0);
        assert!(
            index.client_by_pin(&pin).is_none(),
            "a server pin is not a client pin"
        );
    }

    #[test]
    fn issuer_thumbprints_find_every_listing_entity_in_order() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let issuer = serde_json::json!({"x509certificate": cert.pem()});
        let index = doc(serde_json::json!([
            {"entity_id": "https://one", "issuers": [issuer.clone(), issuer.clone()]},
            {"entity_id": "https://none", "issuers": []},
            {"entity_id": "https://two", "issuers": [issuer]},
        ]));
        let thumbprint = CertThumbprint::of_certificate(cert.der());
        let found: Vec<_> = index
            .entities_by_issuer_thumbprint(&thumbprint)
            .map(|e| e.entity_id.as_str())
            .collect();
        assert_eq!(found, ["https://one", "https://two"]);
        let other = CertThumbprint::of_certificate(b"not this certificate");
        assert_eq!(index.entities_by_issuer_thumbprint(&other).len(), 0);
    }

    #[test]
    fn merged_sources_answer_in_order_and_report_cross_entity_pins() {
        let first = doc(serde_json::json!([
            {"entity_id": "https://a", "issuers": [], "clients": [{"pins": [{"alg": "sha256", "digest": PIN_A}]}]},
        ]));
        let second = doc(serde_json::json!([
            {"entity_id": "https://b", "issuers": [], "clients": [{"pins": [{"alg": "sha256", "digest": PIN_A}]}]},
            {"entity_id": "https://a", "issuers": [], "clients": [{"pins": [{"alg": "sha256", "digest": PIN_B}]}]},
        ]));
        let merged = Index::merge([&first, &second]);
        let a: Pin = PIN_A.parse().unwrap();
        let b: Pin = PIN_B.parse().unwrap();
        let found = merged.client_by_pin(&a).unwrap();
        assert_eq!(
            (found.entity.entity_id.as_str(), found.source),
            ("https://a", 0)
        );
        let found = merged.client_by_pin(&b).unwrap();
        assert_eq!(
            (found.entity.entity_id.as_str(), found.source),
            ("https://a", 1)
        );
        let registrations: Vec<usize> = merged
            .entities_with_id("https://a")
            .map(|e| merged.source_of_entity(e))
            .collect();
        assert_eq!(registrations, [0, 1]);
        assert_eq!(
            merged.source_of_entity(merged.entity("https://b").unwrap()),
            1
        );
        assert_eq!(
            merged.source_of_entity(&first.entities()[0]),
            0,
            "an entity from another index"
        );
        assert_eq!(merged.ambiguities().len(), 1, "two entities, one pin");
        assert_eq!(
            merged.ambiguities()[0].entity_ids,
            ["https://a", "https://b"]
        );
        assert_eq!(first.entities_with_id("https://a").count(), 1);
    }
}
