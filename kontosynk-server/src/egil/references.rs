//! The references between EGIL resources, and the report of those that point at nothing.
//! Windermere does not check them; neither does this server refuse them (a school organizer's
//! push may send a child before its parent, or a parent may be out of scope), but a service
//! provider wants to know.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use ss12000::{EGIL_MAX_PAGE, EgilResource, Store, StoreError};

use super::validate::{USER_EXTENSION, key_of};

/// One reference found in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Where in the resource (`employedAt.value`, `enrolments[2].value`).
    pub member: String,
    /// The resource type it points at.
    pub target: EgilResource,
    /// The id as written.
    pub id: String,
}

fn push(out: &mut Vec<Reference>, member: String, target: EgilResource, value: Option<&Value>) {
    if let Some(Value::String(id)) = value {
        out.push(Reference {
            member,
            target,
            id: id.clone(),
        });
    }
}

fn single(out: &mut Vec<Reference>, body: &Value, member: &str, target: EgilResource) {
    match body.get(member) {
        Some(Value::String(_)) => push(out, member.to_owned(), target, body.get(member)),
        Some(other) => push(out, format!("{member}.value"), target, other.get("value")),
        None => {}
    }
}

fn many(out: &mut Vec<Reference>, body: &Value, member: &str, label: &str, target: EgilResource) {
    if let Some(Value::Array(items)) = body.get(member) {
        for (i, item) in items.iter().enumerate() {
            let value = if item.is_string() {
                Some(item)
            } else {
                item.get("value")
            };
            push(out, format!("{label}[{i}].value"), target, value);
        }
    }
}

/// The references `body` (a `resource`) makes to other resources.
pub fn references(resource: EgilResource, body: &Value) -> Vec<Reference> {
    use EgilResource as R;
    let mut out = Vec::new();
    match resource {
        R::Organisations | R::SchoolUnitGroups => {}
        R::SchoolUnits => {
            single(&mut out, body, "organisation", R::Organisations);
            single(&mut out, body, "schoolUnitGroup", R::SchoolUnitGroups);
        }
        R::Users => {
            if let Some(extension) = body.get(USER_EXTENSION) {
                many(
                    &mut out,
                    extension,
                    "enrolments",
                    "enrolments",
                    R::SchoolUnits,
                );
                many(
                    &mut out,
                    extension,
                    "userRelations",
                    "userRelations",
                    R::Users,
                );
            }
        }
        R::Employments => {
            single(&mut out, body, "employedAt", R::SchoolUnits);
            single(&mut out, body, "user", R::Users);
        }
        R::StudentGroups => {
            single(&mut out, body, "owner", R::SchoolUnits);
            many(
                &mut out,
                body,
                "studentMemberships",
                "studentMemberships",
                R::Users,
            );
        }
        R::Activities => {
            single(&mut out, body, "owner", R::SchoolUnits);
            single(&mut out, body, "group", R::StudentGroups);
            many(&mut out, body, "groups", "groups", R::StudentGroups);
            many(&mut out, body, "teachers", "teachers", R::Employments);
            single(&mut out, body, "parentActivity", R::Activities);
        }
    }
    out
}

/// A reference to an object the tenant does not have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dangling {
    /// The resource type of the referring object.
    pub resource: &'static str,
    /// The referring object's id.
    pub id: String,
    /// Where in it.
    pub member: String,
    /// The resource type referred to.
    pub target: &'static str,
    /// The missing id.
    pub missing: String,
}

/// The dangling references of one tenant: the first `max` of them, and how many there are.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DanglingReport {
    /// How many references point at nothing.
    pub total: u64,
    /// How many per referring resource type.
    pub by_resource: BTreeMap<&'static str, u64>,
    /// The first ones, in send order and id order.
    pub references: Vec<Dangling>,
}

/// Reads all of `tenant`'s objects and reports references to ids it does not have.
pub async fn dangling(
    store: &Store,
    tenant: &str,
    max: usize,
) -> Result<DanglingReport, StoreError> {
    let mut known: BTreeMap<EgilResource, HashSet<String>> = BTreeMap::new();
    for resource in EgilResource::SEND_ORDER {
        known.insert(
            resource,
            store
                .egil_ids(tenant, resource)
                .await?
                .into_iter()
                .collect(),
        );
    }
    let mut report = DanglingReport::default();
    for resource in EgilResource::SEND_ORDER {
        let mut offset = 0u64;
        loop {
            let page = store
                .egil_list(tenant, resource, offset, EGIL_MAX_PAGE)
                .await?;
            if page.bodies.is_empty() {
                break;
            }
            offset += page.bodies.len() as u64;
            for text in &page.bodies {
                let Ok(body) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                let id = body.get("id").and_then(Value::as_str).unwrap_or_default();
                for reference in references(resource, &body) {
                    let present = key_of(&reference.id)
                        .is_some_and(|key| known[&reference.target].contains(&key));
                    if present {
                        continue;
                    }
                    report.total += 1;
                    *report.by_resource.entry(resource.path()).or_default() += 1;
                    if report.references.len() < max {
                        report.references.push(Dangling {
                            resource: resource.path(),
                            id: id.to_owned(),
                            member: reference.member,
                            target: reference.target.path(),
                            missing: reference.id,
                        });
                    }
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_every_kind_of_reference() {
        let user = json!({USER_EXTENSION: {"enrolments": [{"value": "a"}, {"value": "b"}],
                          "userRelations": [{"value": "c", "relationType": "Vårdnadshavare"}]}});
        let found = references(EgilResource::Users, &user);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].member, "enrolments[1].value");
        assert_eq!(found[2].target, EgilResource::Users);
        let activity = json!({"owner": {"value": "s"}, "group": {"value": "g0"},
            "groups": [{"value": "g1"}], "teachers": [{"value": "e"}], "parentActivity": "p"});
        let found = references(EgilResource::Activities, &activity);
        let members: Vec<&str> = found.iter().map(|r| r.member.as_str()).collect();
        assert_eq!(
            members,
            [
                "owner.value",
                "group.value",
                "groups[0].value",
                "teachers[0].value",
                "parentActivity"
            ]
        );
    }
}
