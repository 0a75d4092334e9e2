//! EGIL (the SS 12000:2018 profile carried over SCIM) as a store keeps it: the seven resource
//! types and the tenant that owns each object.
//!
//! Objects received over EGIL live in tables of their own (`egil_objects`, `egil_tenants`),
//! keyed (tenant, resource, id): the same id under two tenants is two objects, and nothing a
//! tenant does can touch another tenant's rows. Bodies are kept as the JSON text the server
//! decided to store; this crate neither validates nor rewrites them.

use std::fmt;

/// One of the seven EGIL resource endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EgilResource {
    /// `/Organisations` (a school organizer, huvudman).
    Organisations,
    /// `/SchoolUnitGroups`.
    SchoolUnitGroups,
    /// `/SchoolUnits` (skolenheter).
    SchoolUnits,
    /// `/Users` (pupils and staff).
    Users,
    /// `/Employments` (a user's role at a school unit).
    Employments,
    /// `/StudentGroups` (classes, teaching groups).
    StudentGroups,
    /// `/Activities` (teaching activities).
    Activities,
}

impl EgilResource {
    /// Every resource in EgilSCIM's send order of creates and updates (parents before
    /// children); deletions go in the reverse order.
    pub const SEND_ORDER: [EgilResource; 7] = [
        EgilResource::Organisations,
        EgilResource::SchoolUnitGroups,
        EgilResource::SchoolUnits,
        EgilResource::Users,
        EgilResource::Employments,
        EgilResource::StudentGroups,
        EgilResource::Activities,
    ];

    /// The endpoint's path segment (`Users`).
    pub fn path(self) -> &'static str {
        match self {
            EgilResource::Organisations => "Organisations",
            EgilResource::SchoolUnitGroups => "SchoolUnitGroups",
            EgilResource::SchoolUnits => "SchoolUnits",
            EgilResource::Users => "Users",
            EgilResource::Employments => "Employments",
            EgilResource::StudentGroups => "StudentGroups",
            EgilResource::Activities => "Activities",
        }
    }

    /// The resource of a path segment (exact spelling, as EgilSCIM sends it).
    pub fn from_path(segment: &str) -> Option<EgilResource> {
        EgilResource::SEND_ORDER
            .into_iter()
            .find(|r| r.path() == segment)
    }

    /// The SCIM schema URN of the resource's own type
    /// (`urn:scim:schemas:extension:sis:school:1.0:SchoolUnit`; Users:
    /// `urn:ietf:params:scim:schemas:core:2.0:User`).
    pub fn schema(self) -> &'static str {
        match self {
            EgilResource::Organisations => "urn:scim:schemas:extension:sis:school:1.0:Organisation",
            EgilResource::SchoolUnitGroups => {
                "urn:scim:schemas:extension:sis:school:1.0:SchoolUnitGroup"
            }
            EgilResource::SchoolUnits => "urn:scim:schemas:extension:sis:school:1.0:SchoolUnit",
            EgilResource::Users => "urn:ietf:params:scim:schemas:core:2.0:User",
            EgilResource::Employments => "urn:scim:schemas:extension:sis:school:1.0:Employment",
            EgilResource::StudentGroups => "urn:scim:schemas:extension:sis:school:1.0:StudentGroup",
            EgilResource::Activities => "urn:scim:schemas:extension:sis:school:1.0:Activity",
        }
    }
}

impl fmt::Display for EgilResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// Who owns EGIL objects: the authenticated client's federation entity (or the configured
/// name of an API-key client), with the organization it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgilTenant {
    /// The tenant key: the entity id, or `apikey:<name>` for an API-key client.
    pub id: String,
    /// The entity's `organization` (legal name), when known.
    pub organization: Option<String>,
    /// The entity's `organization_id` (`SE2021004185`), when known.
    pub organization_id: Option<String>,
}

/// One page of a tenant's objects of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgilPage {
    /// How many objects of the resource the tenant has in all.
    pub total: u64,
    /// The stored JSON texts of this page, ordered by id.
    pub bodies: Vec<String>,
}

/// The most objects one [`crate::Store::egil_list`] page returns.
pub const EGIL_MAX_PAGE: usize = 10_000;

pub use crate::store::egil::EgilCreated;

pub mod export;
pub mod from_ss12000;
pub mod to_ss12000;
