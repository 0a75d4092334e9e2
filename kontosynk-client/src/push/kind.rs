//! The four object types of the Provisioning API and the order they must be pushed in.

use ss12000::Collection;

/// An object type of the Provisioning API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    /// `persons`.
    Persons,
    /// `duties` (refer to persons).
    Duties,
    /// `groups` (refer to persons).
    Groups,
    /// `activities` (refer to groups and duties).
    Activities,
}

impl ObjectType {
    /// Push order: an object is sent only after everything it refers to.
    pub const ORDER: [ObjectType; 4] = [
        ObjectType::Persons,
        ObjectType::Duties,
        ObjectType::Groups,
        ObjectType::Activities,
    ];

    /// The URL path segment (`persons`).
    pub fn path(self) -> &'static str {
        match self {
            ObjectType::Persons => "persons",
            ObjectType::Duties => "duties",
            ObjectType::Groups => "groups",
            ObjectType::Activities => "activities",
        }
    }

    /// The type named by a path segment.
    pub fn from_path(segment: &str) -> Option<ObjectType> {
        ObjectType::ORDER.into_iter().find(|t| t.path() == segment)
    }

    /// The LogEntry `resourceType` (`Person`).
    pub fn resource_type(self) -> &'static str {
        match self {
            ObjectType::Persons => "Person",
            ObjectType::Duties => "Duty",
            ObjectType::Groups => "Group",
            ObjectType::Activities => "Activity",
        }
    }

    /// The store collection the objects come from.
    pub fn collection(self) -> Collection {
        match self {
            ObjectType::Persons => Collection::Persons,
            ObjectType::Duties => Collection::Duties,
            ObjectType::Groups => Collection::Groups,
            ObjectType::Activities => Collection::Activities,
        }
    }

    /// The sync-state key of one object's push result: `push/<type>/<id>`.
    pub fn state_key(self, id: &str) -> String {
        format!("{}{id}", self.state_prefix())
    }

    /// The prefix of this type's sync-state keys.
    pub fn state_prefix(self) -> String {
        format!("push/{}/", self.path())
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_keys_are_prefixed() {
        for t in ObjectType::ORDER {
            assert_eq!(ObjectType::from_path(t.path()), Some(t));
        }
        assert_eq!(ObjectType::from_path("organisations"), None);
        assert_eq!(ObjectType::Duties.state_key("x"), "push/duties/x");
    }
}
