//! SS 12000:2020 objects (as a store keeps them) as EGIL (SS 12000:2018 over SCIM) resources,
//! shaped as EgilSCIM sends them, for a school organizer pushing to an EGIL server.
//!
//! organisations of type `Huvudman` → Organisations, of type `Skolenhet` → SchoolUnits (other
//! organisation types are not sent), persons → Users, duties → Employments, groups →
//! StudentGroups, activities → Activities. References become `{value, $ref}`; the `id`
//! becomes `externalId`. A required member that cannot be filled makes the object
//! [`Mapped::Invalid`]: it is reported and not sent.

use serde_json::{Map, Value, json};

use super::EgilResource;

const USER_EXTENSION: &str = "urn:scim:schemas:extension:sis:school:1.0:User";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// What becomes of one SS 12000:2020 object.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Send this resource.
    Send(EgilResource, Value),
    /// Not an EGIL resource (an organisation type EGIL has no endpoint for).
    Skip(String),
    /// Cannot be sent: why.
    Invalid(String),
}

fn reference(resource: EgilResource, id: &str) -> Value {
    json!({"value": id, "$ref": format!("{}/{id}", resource.path())})
}

/// The id of an SS 12000:2020 reference `{id, displayName?}` (or a bare id string).
fn ref_id(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::String(s) => Some(s),
        other => other.get("id")?.as_str(),
    }
}

fn copy(from: &Value, to: &mut Map<String, Value>, member: &str, as_member: &str) {
    if let Some(v) = from.get(member).filter(|v| !v.is_null()) {
        to.insert(as_member.to_owned(), v.clone());
    }
}

fn email_type(ss12000: Option<&str>) -> &'static str {
    match ss12000 {
        Some("Privat") => "home",
        Some("Tjänst" | "Skola personal" | "Skola elev" | "Arbete övrigt") => "work",
        _ => "other",
    }
}

/// Maps an object of the SS 12000:2020 `collection` (`organisations`, `persons`, `duties`,
/// `groups`, `activities`); other collections are skipped.
pub fn from_ss12000(collection: &str, object: &Value) -> Mapped {
    let Some(id) = object.get("id").and_then(Value::as_str) else {
        return Mapped::Invalid("no id".to_owned());
    };
    let mut out = Map::new();
    let invalid = |what: &str| Mapped::Invalid(format!("{collection} {id}: {what}"));
    let resource = match collection {
        "organisations" => {
            let kind = object.get("organisationType").and_then(Value::as_str);
            match kind {
                Some("Huvudman") => EgilResource::Organisations,
                Some("Skolenhet") => {
                    let Some(code) = object.get("schoolUnitCode").and_then(Value::as_str) else {
                        return invalid("a Skolenhet needs schoolUnitCode");
                    };
                    out.insert("schoolUnitCode".into(), json!(code));
                    copy(object, &mut out, "municipalityCode", "municipalityCode");
                    copy(object, &mut out, "schoolTypes", "schoolTypes");
                    if let Some(parent) = ref_id(object.get("parentOrganisation")) {
                        out.insert(
                            "organisation".into(),
                            reference(EgilResource::Organisations, parent),
                        );
                    }
                    EgilResource::SchoolUnits
                }
                other => {
                    return Mapped::Skip(format!(
                        "organisationType {} has no EGIL resource",
                        other.unwrap_or("(none)")
                    ));
                }
            }
        }
        "persons" => {
            let given = object.get("givenName").and_then(Value::as_str);
            let family = object.get("familyName").and_then(Value::as_str);
            let (Some(given), Some(family)) = (given, family) else {
                return invalid("givenName and familyName are required");
            };
            let user_name = object
                .get("eduPersonPrincipalNames")
                .and_then(|v| v.get(0))
                .and_then(Value::as_str)
                .or_else(|| {
                    object
                        .get("emails")
                        .and_then(|v| v.get(0))
                        .and_then(|e| e.get("value"))
                        .and_then(Value::as_str)
                });
            let Some(user_name) = user_name else {
                return invalid("userName needs an eduPersonPrincipalName or an email");
            };
            out.insert("userName".into(), json!(user_name));
            out.insert("displayName".into(), json!(format!("{given} {family}")));
            out.insert(
                "name".into(),
                json!({"familyName": family, "givenName": given}),
            );
            if let Some(Value::Array(emails)) = object.get("emails") {
                let emails: Vec<Value> = emails
                    .iter()
                    .filter_map(|e| {
                        let value = e.get("value")?.as_str()?;
                        Some(json!({"value": value,
                            "type": email_type(e.get("type").and_then(Value::as_str))}))
                    })
                    .collect();
                out.insert("emails".into(), Value::Array(emails));
            }
            let mut extension = Map::new();
            if let Some(Value::Array(enrolments)) = object.get("enrolments") {
                let enrolments: Vec<Value> = enrolments
                    .iter()
                    .filter_map(|e| {
                        let at = ref_id(e.get("enroledAt"))?;
                        let mut m = reference(EgilResource::SchoolUnits, at)
                            .as_object()
                            .cloned()
                            .unwrap_or_default();
                        copy(e, &mut m, "schoolYear", "schoolYear");
                        copy(e, &mut m, "schoolType", "schoolType");
                        copy(e, &mut m, "educationCode", "programCode");
                        Some(Value::Object(m))
                    })
                    .collect();
                if !enrolments.is_empty() {
                    extension.insert("enrolments".into(), Value::Array(enrolments));
                }
            }
            if let Some(civic) = object
                .get("civicNo")
                .and_then(|c| c.get("value"))
                .and_then(Value::as_str)
            {
                extension.insert("civicNo".into(), json!(civic));
            }
            copy(object, &mut extension, "securityMarking", "securityMarking");
            out.insert("schemas".into(), json!([CORE_USER, USER_EXTENSION]));
            if !extension.is_empty() {
                out.insert(USER_EXTENSION.into(), Value::Object(extension));
            }
            EgilResource::Users
        }
        "duties" => {
            let (Some(person), Some(at)) =
                (ref_id(object.get("person")), ref_id(object.get("dutyAt")))
            else {
                return invalid("person and dutyAt are required");
            };
            let Some(role) = object.get("dutyRole").and_then(Value::as_str) else {
                return invalid("dutyRole is required");
            };
            out.insert(
                "employedAt".into(),
                reference(EgilResource::SchoolUnits, at),
            );
            out.insert("user".into(), reference(EgilResource::Users, person));
            out.insert("employmentRole".into(), json!(role));
            copy(object, &mut out, "signature", "signature");
            EgilResource::Employments
        }
        "groups" => {
            let Some(owner) = ref_id(object.get("organisation")) else {
                return invalid("organisation (the owner) is required");
            };
            out.insert("owner".into(), reference(EgilResource::SchoolUnits, owner));
            copy(object, &mut out, "groupType", "studentGroupType");
            copy(object, &mut out, "schoolType", "schoolType");
            if let Some(Value::Array(members)) = object.get("groupMemberships") {
                let members: Vec<Value> = members
                    .iter()
                    .filter_map(|m| ref_id(m.get("person")))
                    .map(|p| reference(EgilResource::Users, p))
                    .collect();
                out.insert("studentMemberships".into(), Value::Array(members));
            }
            EgilResource::StudentGroups
        }
        "activities" => {
            let Some(owner) = ref_id(object.get("organisation")) else {
                return invalid("organisation (the owner) is required");
            };
            out.insert("owner".into(), reference(EgilResource::SchoolUnits, owner));
            let groups: Vec<Value> = match object.get("groups") {
                Some(Value::Array(groups)) => groups
                    .iter()
                    .filter_map(|g| ref_id(Some(g)))
                    .map(|g| reference(EgilResource::StudentGroups, g))
                    .collect(),
                _ => Vec::new(),
            };
            out.insert("groups".into(), Value::Array(groups));
            if let Some(Value::Array(teachers)) = object.get("teachers") {
                let teachers: Vec<Value> = teachers
                    .iter()
                    .filter_map(|t| ref_id(t.get("duty")))
                    .map(|d| reference(EgilResource::Employments, d))
                    .collect();
                out.insert("teachers".into(), Value::Array(teachers));
            }
            if let Some(parent) = ref_id(object.get("parentActivity")) {
                out.insert(
                    "parentActivity".into(),
                    reference(EgilResource::Activities, parent),
                );
            }
            EgilResource::Activities
        }
        other => return Mapped::Skip(format!("collection {other} has no EGIL resource")),
    };
    if resource != EgilResource::Users {
        out.insert("schemas".into(), json!([resource.schema()]));
    }
    out.insert("externalId".into(), json!(id));
    if resource != EgilResource::Users && resource != EgilResource::Employments {
        match object.get("displayName").and_then(Value::as_str) {
            Some(name) => {
                out.insert("displayName".into(), json!(name));
            }
            None => return invalid("displayName is required"),
        }
    }
    Mapped::Send(resource, Value::Object(out))
}

/// Whether a mapped User is a pupil (has enrolments): EgilSCIM sends students before staff.
pub fn is_student(user: &Value) -> bool {
    user.get(USER_EXTENSION)
        .and_then(|e| e.get("enrolments"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egil::to_ss12000::to_ss12000;

    #[test]
    fn objects_map_both_ways_and_keep_their_references() {
        let person = json!({"id": "119ded6f-864f-4757-9ed4-3f9323927b26", "givenName": "Bo",
            "familyName": "Berg", "eduPersonPrincipalNames": ["bo@skola.example"],
            "emails": [{"value": "bo@skola.example", "type": "Tjänst"}],
            "civicNo": {"value": "201001012386", "nationality": "SE"},
            "enrolments": [{"enroledAt": {"id": "a303f7b1-9cd3-48ae-a1ff-c64fa2ed49ae"}, "schoolYear": 7}]});
        let Mapped::Send(resource, user) = from_ss12000("persons", &person) else {
            panic!("not sent")
        };
        assert_eq!(resource, EgilResource::Users);
        assert_eq!(user["externalId"], person["id"]);
        assert_eq!(user["userName"], "bo@skola.example");
        assert_eq!(
            user[USER_EXTENSION]["enrolments"][0]["$ref"],
            "SchoolUnits/a303f7b1-9cd3-48ae-a1ff-c64fa2ed49ae"
        );
        assert!(is_student(&user));
        let (_, back) = to_ss12000(resource, &user).unwrap();
        for member in [
            "id",
            "givenName",
            "familyName",
            "eduPersonPrincipalNames",
            "civicNo",
            "enrolments",
        ] {
            assert_eq!(back[member], person[member], "{member}");
        }
        let unit = json!({"id": "a303f7b1-9cd3-48ae-a1ff-c64fa2ed49ae", "displayName": "S",
            "organisationType": "Skolenhet"});
        assert!(
            matches!(from_ss12000("organisations", &unit), Mapped::Invalid(m) if m.contains("schoolUnitCode"))
        );
        let other = json!({"id": "x", "displayName": "F", "organisationType": "Förvaltning"});
        assert!(matches!(
            from_ss12000("organisations", &other),
            Mapped::Skip(_)
        ));
    }
}
