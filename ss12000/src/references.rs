//! Where SS 12000 objects refer to other objects (the `ObjectReference` members of the
//! reference OpenAPI), so an import can report references to objects the store does not hold
//! ("dangling"): reported, never refused, since a school's files may arrive in any order.

use serde_json::Value;

use crate::collection::Collection;

/// One reference member: in objects of `from`, at `path` (`[]` steps into an array), an
/// `{"id": …}` naming an object of `to`.
struct Member {
    from: Collection,
    path: &'static [&'static str],
    to: Collection,
}

/// The references of the reference OpenAPI (Person, Group, Duty, Activity) and
/// `parentOrganisation` of the full specification.
fn members() -> [Member; 10] {
    use Collection::{Activities, Duties, Groups, Organisations, Persons};
    [
        Member {
            from: Persons,
            path: &["enrolments", "[]", "enroledAt"],
            to: Organisations,
        },
        Member {
            from: Groups,
            path: &["organisation"],
            to: Organisations,
        },
        Member {
            from: Groups,
            path: &["groupMemberships", "[]", "person"],
            to: Persons,
        },
        Member {
            from: Duties,
            path: &["person"],
            to: Persons,
        },
        Member {
            from: Duties,
            path: &["dutyAt"],
            to: Organisations,
        },
        Member {
            from: Activities,
            path: &["groups", "[]"],
            to: Groups,
        },
        Member {
            from: Activities,
            path: &["teachers", "[]", "duty"],
            to: Duties,
        },
        Member {
            from: Activities,
            path: &["organisation"],
            to: Organisations,
        },
        Member {
            from: Activities,
            path: &["parentActivity"],
            to: Activities,
        },
        Member {
            from: Organisations,
            path: &["parentOrganisation"],
            to: Organisations,
        },
    ]
}

/// A reference found in an object: where (`groupMemberships[2].person`), to which collection,
/// and the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The member path inside the referring object.
    pub member: String,
    /// The collection of the referenced object.
    pub to: Collection,
    /// The referenced id.
    pub id: String,
}

/// The references an object of `collection` makes (members without a string `id` are
/// skipped: they are not references this module can check).
pub fn references_of(collection: &Collection, object: &Value) -> Vec<Reference> {
    let mut found = Vec::new();
    for member in members().iter().filter(|m| &m.from == collection) {
        walk(object, member.path, String::new(), &member.to, &mut found);
    }
    found
}

fn walk(value: &Value, path: &[&str], at: String, to: &Collection, found: &mut Vec<Reference>) {
    match path.split_first() {
        None => {
            if let Some(id) = value.get("id").and_then(Value::as_str) {
                found.push(Reference {
                    member: at,
                    to: to.clone(),
                    id: id.to_owned(),
                });
            }
        }
        Some((&"[]", rest)) => {
            for (index, item) in value.as_array().into_iter().flatten().enumerate() {
                walk(item, rest, format!("{at}[{index}]"), to, found);
            }
        }
        Some((name, rest)) => {
            if let Some(inner) = value.get(*name) {
                let at = if at.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{at}.{name}")
                };
                walk(inner, rest, at, to, found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_with_their_member_paths() {
        let activity = json!({"id": "a1", "groups": [{"id": "g1"}, {"id": "g2"}],
            "teachers": [{"duty": {"id": "d1"}}], "organisation": {"id": "o1"}});
        let found = references_of(&Collection::Activities, &activity);
        let described: Vec<(String, String, String)> = found
            .iter()
            .map(|r| (r.member.clone(), r.to.path().to_owned(), r.id.clone()))
            .collect();
        assert_eq!(
            described,
            [
                ("groups[0]".into(), "groups".into(), "g1".into()),
                ("groups[1]".into(), "groups".into(), "g2".into()),
                ("teachers[0].duty".into(), "duties".into(), "d1".into()),
                ("organisation".into(), "organisations".into(), "o1".into()),
            ]
        );
        assert!(
            references_of(&Collection::Persons, &json!({"id": "p", "enrolments": "x"})).is_empty()
        );
    }
}
