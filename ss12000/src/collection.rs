//! SS 12000 collection names (`persons`) and entity types (`Person`).

/// A collection of the SS 12000 API: one of the five Skolverket uses, or any other the
/// standard defines (placements, studyPlans, …), kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// `organisations` / `Organisation`.
    Organisations,
    /// `persons` / `Person`.
    Persons,
    /// `groups` / `Group`.
    Groups,
    /// `duties` / `Duty`.
    Duties,
    /// `activities` / `Activity`.
    Activities,
    /// Any other collection: an ASCII name of letters and digits starting with a lower-case letter.
    Other(String),
}

// IMPLEMENTATION NOTE (skeleton): `from_path` validates names (ascii alphanumeric, starts with a
// lower-case letter, at most 64 bytes; reserved path names such as `deletedEntities`,
// `subscriptions`, `log`, `statistics` are not collections). `entity_type` is the singular,
// capitalised name (`Person`, `Duty`, `Activity`; others: capitalise and strip a trailing `s`).
impl Collection {
    /// Skolverket's client's fetch order: organisations, persons, groups, duties, activities.
    pub const SYNC_ORDER: [Collection; 5] = [
        Collection::Organisations,
        Collection::Persons,
        Collection::Groups,
        Collection::Duties,
        Collection::Activities,
    ];

    /// The collection named by a URL path segment (`persons`).
    pub fn from_path(segment: &str) -> Result<Collection, InvalidCollection> {
        todo!("{segment}")
    }

    /// The collection of an entity type name (`Person`, as in `deletedEntities?entities=`
    /// and subscription `resourceTypes`).
    pub fn from_entity_type(name: &str) -> Option<Collection> {
        todo!("{name}")
    }

    /// The URL path segment (`persons`).
    pub fn path(&self) -> &str {
        todo!()
    }

    /// The entity type name (`Person`).
    pub fn entity_type(&self) -> String {
        todo!()
    }
}

impl std::fmt::Display for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

/// A path segment that cannot name a collection.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "`{0}` is not an SS 12000 collection name (letters and digits, starting with a lower-case letter)"
)]
pub struct InvalidCollection(pub String);
