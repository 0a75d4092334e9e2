//! The typed federation metadata: entities, their endpoints, pins, issuers and tags.
//!
//! Members the model does not know are kept in `extra` maps so that a parse → serialize round
//! trip loses nothing a newer publisher added.

use rustls_pki_types::CertificateDer;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::encoding::pem_encode;
use crate::names::{OrganizationId, Tag};
use crate::pin::{CertThumbprint, Pin};

/// The extension member that ties an entity to the DNS domains (school units) it may speak for.
pub const SAML_SCOPE_EXTENSION: &str = "https://kontosynk.internetstiftelsen.se/saml-scope";

/// A parsed metadata document: the usable entities plus a diagnostic for each one left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// The schema version (`^\d+\.\d+\.\d+$`, today `1.0.0`).
    pub version: String,
    /// Seconds the publisher allows the document to be cached, if it said.
    pub cache_ttl: Option<u64>,
    /// `iat`/`exp`/`nbf`/`iss` found in the payload (RFC 9932 style).
    pub claims: Claims,
    /// Entities that passed validation, in document order.
    pub entities: Vec<Entity>,
    /// Entities that were left out, with the reason.
    pub rejected: Vec<RejectedEntity>,
    /// Document-level remarks that did not refuse the document (for example an invalid `cache_ttl`).
    pub warnings: Vec<String>,
    /// Unknown top-level members, kept verbatim.
    pub extra: Map<String, Value>,
}

/// An entity that was left out of the usable set, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RejectedEntity {
    /// Position in the document's `entities` array.
    pub index: usize,
    /// The entity's `entity_id`, when it had a readable one.
    pub entity_id: Option<String>,
    /// What was wrong, with the member path inside the entity.
    pub reason: String,
}

/// One member organization's registration: who it is, its issuers and its endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The entity's URI, unique within the federation.
    pub entity_id: String,
    /// The member's legal name.
    pub organization: Option<String>,
    /// The member's organization id (Moa: `LLYYMMDDXXXX`, country code + organization number).
    pub organization_id: Option<OrganizationId>,
    /// Root certificates of the entity's endpoint certificates (self-signed leaves list themselves).
    pub issuers: Vec<Issuer>,
    /// Servers the entity runs.
    pub servers: Vec<Endpoint>,
    /// Clients the entity runs.
    pub clients: Vec<Endpoint>,
    /// The DNS domains of the saml-scope extension (empty when absent).
    pub scopes: Vec<String>,
    /// The `extensions` object verbatim (including the saml-scope extension), if present.
    pub extensions: Option<Map<String, Value>>,
    /// Unknown members, kept verbatim.
    pub extra: Map<String, Value>,
}

/// An issuer certificate of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Issuer {
    /// The certificate as DER.
    pub certificate: CertificateDer<'static>,
    /// Unknown members of the issuer object.
    pub extra: Map<String, Value>,
}

impl Issuer {
    /// The RFC 8705 `cert#S256` thumbprint of the issuer certificate (what the SUNET
    /// authorization server compares a client certificate against).
    pub fn thumbprint(&self) -> CertThumbprint {
        CertThumbprint::of_certificate(&self.certificate)
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.certificate)
    }
}

/// A server or a client of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Free-text description.
    pub description: Option<String>,
    /// Where the server is reached (required for servers, absent for clients).
    pub base_uri: Option<String>,
    /// SPKI pins of the endpoint's certificates.
    pub pins: Vec<Pin>,
    /// Discovery and authorization tags.
    pub tags: Vec<Tag>,
    /// Unknown members, kept verbatim.
    pub extra: Map<String, Value>,
}

impl Endpoint {
    /// True when the endpoint carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.as_str() == tag)
    }
}

impl Entity {
    /// True when any of the entity's issuer certificates has this RFC 8705 thumbprint.
    pub fn has_issuer_thumbprint(&self, thumbprint: &CertThumbprint) -> bool {
        self.issuers.iter().any(|i| i.thumbprint() == *thumbprint)
    }
}

impl serde::Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", &self.version)?;
        if let Some(ttl) = self.cache_ttl {
            map.serialize_entry("cache_ttl", &ttl)?;
        }
        if let Some(iat) = self.claims.iat {
            map.serialize_entry("iat", &iat)?;
        }
        if let Some(exp) = self.claims.exp {
            map.serialize_entry("exp", &exp)?;
        }
        if let Some(nbf) = self.claims.nbf {
            map.serialize_entry("nbf", &nbf)?;
        }
        if let Some(iss) = &self.claims.iss {
            map.serialize_entry("iss", iss)?;
        }
        map.serialize_entry("entities", &self.entities)?;
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl serde::Serialize for Entity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("entity_id", &self.entity_id)?;
        if let Some(organization) = &self.organization {
            map.serialize_entry("organization", organization)?;
        }
        if let Some(organization_id) = &self.organization_id {
            map.serialize_entry("organization_id", organization_id)?;
        }
        map.serialize_entry("issuers", &self.issuers)?;
        if !self.servers.is_empty() {
            map.serialize_entry("servers", &self.servers)?;
        }
        if !self.clients.is_empty() {
            map.serialize_entry("clients", &self.clients)?;
        }
        if let Some(extensions) = &self.extensions {
            map.serialize_entry("extensions", extensions)?;
        }
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl serde::Serialize for Issuer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("x509certificate", &self.to_pem())?;
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct PinEntry<'a>(&'a Pin);
        impl serde::Serialize for PinEntry<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("alg", "sha256")?;
                map.serialize_entry("digest", self.0)?;
                map.end()
            }
        }
        let mut map = serializer.serialize_map(None)?;
        if let Some(description) = &self.description {
            map.serialize_entry("description", description)?;
        }
        if let Some(base_uri) = &self.base_uri {
            map.serialize_entry("base_uri", base_uri)?;
        }
        let pins: Vec<PinEntry<'_>> = self.pins.iter().map(PinEntry).collect();
        map.serialize_entry("pins", &pins)?;
        if !self.tags.is_empty() {
            map.serialize_entry("tags", &self.tags)?;
        }
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
