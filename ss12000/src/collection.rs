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

/// Path segments of the SS 12000 API that are endpoints, not collections.
const RESERVED: [&str; 6] = [
    "deletedEntities",
    "subscriptions",
    "log",
    "statistics",
    "lookup",
    "bulk",
];

/// The longest collection name accepted (bytes).
const MAX_NAME: usize = 64;

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
        let known = match segment {
            "organisations" => Some(Collection::Organisations),
            "persons" => Some(Collection::Persons),
            "groups" => Some(Collection::Groups),
            "duties" => Some(Collection::Duties),
            "activities" => Some(Collection::Activities),
            _ => None,
        };
        if let Some(known) = known {
            return Ok(known);
        }
        if valid_name(segment) && !RESERVED.contains(&segment) {
            Ok(Collection::Other(segment.to_owned()))
        } else {
            Err(InvalidCollection(segment.to_owned()))
        }
    }

    /// Whether this value names a collection `from_path` would accept (an
    /// [`Collection::Other`] built by hand may not).
    pub fn is_valid(&self) -> bool {
        match self {
            Collection::Other(name) => Collection::from_path(name).is_ok_and(|c| &c == self),
            _ => true,
        }
    }

    /// The collection of an entity type name (`Person`, as in `deletedEntities?entities=`
    /// and subscription `resourceTypes`).
    pub fn from_entity_type(name: &str) -> Option<Collection> {
        match name {
            "Organisation" => return Some(Collection::Organisations),
            "Person" => return Some(Collection::Persons),
            "Group" => return Some(Collection::Groups),
            "Duty" => return Some(Collection::Duties),
            "Activity" => return Some(Collection::Activities),
            _ => {}
        }
        let mut chars = name.chars();
        let first = chars.next()?;
        if !first.is_ascii_uppercase() {
            return None;
        }
        let path = format!("{}{}s", first.to_ascii_lowercase(), chars.as_str());
        Collection::from_path(&path).ok()
    }

    /// The URL path segment (`persons`).
    pub fn path(&self) -> &str {
        match self {
            Collection::Organisations => "organisations",
            Collection::Persons => "persons",
            Collection::Groups => "groups",
            Collection::Duties => "duties",
            Collection::Activities => "activities",
            Collection::Other(name) => name,
        }
    }

    /// The entity type name (`Person`).
    pub fn entity_type(&self) -> String {
        let path = self.path();
        let singular = match self {
            Collection::Duties => return "Duty".to_owned(),
            Collection::Activities => return "Activity".to_owned(),
            _ => path.strip_suffix('s').unwrap_or(path),
        };
        let mut chars = singular.chars();
        match chars.next() {
            Some(first) => format!("{}{}", first.to_ascii_uppercase(), chars.as_str()),
            None => String::new(),
        }
    }
}

impl std::fmt::Display for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A path segment that cannot name a collection.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "`{0}` is not an SS 12000 collection name (letters and digits, starting with a lower-case letter)"
)]
pub struct InvalidCollection(pub String);

#[cfg(test)]
mod tests {
    use super::Collection;

    #[test]
    fn names_round_trip() {
        for c in Collection::SYNC_ORDER {
            assert_eq!(Collection::from_path(c.path()).unwrap(), c);
            assert_eq!(Collection::from_entity_type(&c.entity_type()).unwrap(), c);
        }
        assert_eq!(Collection::Duties.entity_type(), "Duty");
        assert_eq!(Collection::Activities.entity_type(), "Activity");
        let placements = Collection::from_path("placements").unwrap();
        assert_eq!(placements, Collection::Other("placements".into()));
        assert_eq!(placements.entity_type(), "Placement");
        assert_eq!(Collection::from_entity_type("Placement"), Some(placements));
        assert_eq!(
            Collection::from_path("studyPlans").unwrap().to_string(),
            "studyPlans"
        );
    }

    #[test]
    fn refuses_bad_and_reserved_names() {
        for bad in [
            "",
            "Persons",
            "1abc",
            "per sons",
            "persons/x",
            "p\u{e4}rsons",
            "deletedEntities",
            "subscriptions",
            "log",
            "statistics",
            &"a".repeat(65),
        ] {
            assert!(Collection::from_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Collection::from_entity_type("person"), None);
        assert_eq!(Collection::from_entity_type(""), None);
        assert!(!Collection::Other("bad name".into()).is_valid());
        assert!(!Collection::Other("persons".into()).is_valid());
        assert!(Collection::Other("placements".into()).is_valid());
    }
}
