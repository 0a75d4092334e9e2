//! Who an authenticated client is, according to the metadata.

use crate::index::EndpointMatch;
use crate::metadata::Entity;
use crate::names::{OrganizationId, Tag};
use crate::pin::{CertThumbprint, Pin};
use crate::snapshot::Snapshot;

/// Who the peer is, from its certificate's pin and a snapshot of the metadata.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeerIdentity {
    /// The `entity_id` of the entity listing the pin as a client pin.
    pub entity_id: String,
    /// The member's legal name.
    pub organization: Option<String>,
    /// The member's organization id (Moa: `LLYYMMDDXXXX`).
    pub organization_id: Option<OrganizationId>,
    /// The tags of the matched client endpoint.
    pub tags: Vec<Tag>,
    /// The DNS domains of the entity's saml-scope extension.
    pub scopes: Vec<String>,
    /// The pin of the peer's certificate.
    pub pin: Pin,
    /// The generation of the snapshot the identity was resolved against.
    pub generation: u64,
    /// The name of the metadata source that vouched for the entity (with several
    /// federations configured, the first in precedence order that lists the pin).
    pub source: String,
    /// That source's metadata issuer (`iss`), if its document names one.
    pub source_iss: Option<String>,
}

impl PeerIdentity {
    /// The client whose certificate is `leaf_der`, or `None` when its pin is not a client pin
    /// in `snapshot` (or the bytes are not a certificate).
    ///
    /// This does not check whether `snapshot` has expired: take it from
    /// [`SnapshotSource::current`](crate::SnapshotSource::current).
    pub fn resolve(snapshot: &Snapshot, leaf_der: &[u8]) -> Option<PeerIdentity> {
        let pin = Pin::of_certificate(leaf_der).ok()?;
        Self::resolve_pin(snapshot, &pin)
    }

    /// The client with this pin, or `None` when it is not a client pin in `snapshot`.
    pub fn resolve_pin(snapshot: &Snapshot, pin: &Pin) -> Option<PeerIdentity> {
        let found = snapshot.index().client_by_pin(pin)?;
        Some(Self::of_client(snapshot, &found, *pin))
    }

    /// The client `found` by its `pin` in `snapshot`.
    pub(crate) fn of_client(snapshot: &Snapshot, found: &EndpointMatch<'_>, pin: Pin) -> Self {
        let source = snapshot.source_at(found.source);
        PeerIdentity {
            entity_id: found.entity.entity_id.clone(),
            organization: found.entity.organization.clone(),
            organization_id: found.entity.organization_id.clone(),
            tags: found.endpoint.tags.clone(),
            scopes: found.entity.scopes.clone(),
            pin,
            generation: snapshot.generation(),
            source: source.name.clone(),
            source_iss: source.iss.clone(),
        }
    }

    /// The entity listing the certificate `leaf_der` itself among its `issuers` (the SUNET
    /// authorization server's rule), for a certificate whose pin is not a client pin. The
    /// first such entity in document order answers; `tags` is empty (no client endpoint
    /// matched). `None` when no entity lists it or the bytes are not a certificate.
    pub fn resolve_issuer_certificate(
        snapshot: &Snapshot,
        leaf_der: &[u8],
    ) -> Option<PeerIdentity> {
        let pin = Pin::of_certificate(leaf_der).ok()?;
        let thumbprint = CertThumbprint::of_certificate(leaf_der);
        let entity = snapshot
            .index()
            .entities_by_issuer_thumbprint(&thumbprint)
            .next()?;
        Some(Self::of_issuer_entity(snapshot, entity, pin))
    }

    /// The `entity` listing a client's certificate among its `issuers`, in `snapshot`; no
    /// tags (no client endpoint matched).
    pub(crate) fn of_issuer_entity(snapshot: &Snapshot, entity: &Entity, pin: Pin) -> Self {
        let source = snapshot.source_at(snapshot.index().source_of_entity(entity));
        PeerIdentity {
            entity_id: entity.entity_id.clone(),
            organization: entity.organization.clone(),
            organization_id: entity.organization_id.clone(),
            tags: Vec::new(),
            scopes: entity.scopes.clone(),
            pin,
            generation: snapshot.generation(),
            source: source.name.clone(),
            source_iss: source.iss.clone(),
        }
    }
}
