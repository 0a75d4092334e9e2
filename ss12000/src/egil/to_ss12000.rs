//! EGIL (SS 12000:2018) resources as SS 12000:2020 objects, per EGIL-NOTES: Organisation →
//! organisations (`Huvudman`), SchoolUnitGroup → organisations (`Övrigt`, with the group as
//! the parent of its school units), SchoolUnit → organisations (`Skolenhet`), User → persons
//! (with enrolments), Employment → duties, StudentGroup → groups, Activity → activities.
//! Ids are the `externalId` UUIDs in lower case; members 2020 has no place for are left out
//! (the EGIL original stays in the store).

use serde_json::{Map, Value, json};

use super::EgilResource;
use crate::collection::Collection;

/// The user extension key.
const USER_EXTENSION: &str = "urn:scim:schemas:extension:sis:school:1.0:User";

fn key(id: &str) -> String {
    uuid::Uuid::try_parse(id).map_or_else(|_| id.to_owned(), |u| u.hyphenated().to_string())
}

/// `{"id": …}` of an EGIL `{value, $ref}` reference (or a bare id string).
fn reference(value: Option<&Value>) -> Option<Value> {
    let id = match value? {
        Value::String(s) => s.as_str(),
        other => other.get("value")?.as_str()?,
    };
    Some(json!({ "id": key(id) }))
}

fn copy(from: &Value, to: &mut Map<String, Value>, member: &str, as_member: &str) {
    if let Some(v) = from.get(member).filter(|v| !v.is_null()) {
        to.insert(as_member.to_owned(), v.clone());
    }
}

fn email_type(egil: Option<&str>) -> &'static str {
    match egil {
        Some("work") => "Tjänst",
        Some("home") => "Privat",
        _ => "Övrig",
    }
}

/// The SS 12000:2020 collection and object of an EGIL resource (`None` when it has no
/// `externalId`).
pub fn to_ss12000(resource: EgilResource, egil: &Value) -> Option<(Collection, Value)> {
    let id = key(egil.get("externalId")?.as_str()?);
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id));
    copy(egil, &mut out, "displayName", "displayName");
    let collection = match resource {
        EgilResource::Organisations => {
            out.insert("organisationType".into(), json!("Huvudman"));
            "organisations"
        }
        EgilResource::SchoolUnitGroups => {
            out.insert("organisationType".into(), json!("Övrigt"));
            "organisations"
        }
        EgilResource::SchoolUnits => {
            out.insert("organisationType".into(), json!("Skolenhet"));
            copy(egil, &mut out, "schoolUnitCode", "schoolUnitCode");
            copy(egil, &mut out, "municipalityCode", "municipalityCode");
            copy(egil, &mut out, "schoolTypes", "schoolTypes");
            let parent = reference(egil.get("schoolUnitGroup"))
                .or_else(|| reference(egil.get("organisation")));
            if let Some(parent) = parent {
                out.insert("parentOrganisation".into(), parent);
            }
            "organisations"
        }
        EgilResource::Users => {
            if let Some(name) = egil.get("name") {
                copy(name, &mut out, "givenName", "givenName");
                copy(name, &mut out, "familyName", "familyName");
            }
            out.remove("displayName");
            if let Some(user_name) = egil.get("userName").and_then(Value::as_str) {
                out.insert("eduPersonPrincipalNames".into(), json!([user_name]));
            }
            if let Some(Value::Array(emails)) = egil.get("emails") {
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
            if let Some(extension) = egil.get(USER_EXTENSION) {
                if let Some(civic) = extension.get("civicNo").and_then(Value::as_str) {
                    out.insert(
                        "civicNo".into(),
                        json!({"value": civic, "nationality": "SE"}),
                    );
                }
                copy(extension, &mut out, "securityMarking", "securityMarking");
                if let Some(Value::Array(enrolments)) = extension.get("enrolments") {
                    let enrolments: Vec<Value> = enrolments
                        .iter()
                        .filter_map(|e| {
                            let mut m = Map::new();
                            m.insert("enroledAt".into(), reference(Some(e))?);
                            copy(e, &mut m, "schoolYear", "schoolYear");
                            copy(e, &mut m, "schoolType", "schoolType");
                            copy(e, &mut m, "programCode", "educationCode");
                            Some(Value::Object(m))
                        })
                        .collect();
                    out.insert("enrolments".into(), Value::Array(enrolments));
                }
            }
            "persons"
        }
        EgilResource::Employments => {
            if let Some(person) = reference(egil.get("user")) {
                out.insert("person".into(), person);
            }
            if let Some(at) = reference(egil.get("employedAt")) {
                out.insert("dutyAt".into(), at);
            }
            copy(egil, &mut out, "employmentRole", "dutyRole");
            copy(egil, &mut out, "signature", "signature");
            "duties"
        }
        EgilResource::StudentGroups => {
            copy(egil, &mut out, "studentGroupType", "groupType");
            copy(egil, &mut out, "schoolType", "schoolType");
            if let Some(owner) = reference(egil.get("owner")) {
                out.insert("organisation".into(), owner);
            }
            if let Some(Value::Array(members)) = egil.get("studentMemberships") {
                let members: Vec<Value> = members
                    .iter()
                    .filter_map(|m| Some(json!({"person": reference(Some(m))?})))
                    .collect();
                out.insert("groupMemberships".into(), Value::Array(members));
            }
            "groups"
        }
        EgilResource::Activities => {
            if let Some(owner) = reference(egil.get("owner")) {
                out.insert("organisation".into(), owner);
            }
            let mut groups: Vec<Value> = match egil.get("groups") {
                Some(Value::Array(groups)) => {
                    groups.iter().filter_map(|g| reference(Some(g))).collect()
                }
                _ => Vec::new(),
            };
            if let Some(group) = reference(egil.get("group")) {
                groups.push(group);
            }
            out.insert("groups".into(), Value::Array(groups));
            if let Some(Value::Array(teachers)) = egil.get("teachers") {
                let teachers: Vec<Value> = teachers
                    .iter()
                    .filter_map(|t| Some(json!({"duty": reference(Some(t))?})))
                    .collect();
                out.insert("teachers".into(), Value::Array(teachers));
            }
            if let Some(parent) = reference(egil.get("parentActivity")) {
                out.insert("parentActivity".into(), parent);
            }
            "activities"
        }
    };
    let collection = Collection::from_path(collection).ok()?;
    Some((collection, Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pupil_becomes_a_person_with_enrolments() {
        let user = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User", USER_EXTENSION],
          "externalId":"119DED6F-864F-4757-9ED4-3F9323927B26","userName":"elev02@skola.exempla.example",
          "displayName":"Bo Berg","name":{"familyName":"Berg","givenName":"Bo"},
          "emails":[{"value":"elev02@skola.exempla.example","type":"work"}],
          USER_EXTENSION:{"enrolments":[{"value":"a303f7b1-9cd3-48ae-a1ff-c64fa2ed49ae",
          "$ref":"SchoolUnits/a303f7b1-9cd3-48ae-a1ff-c64fa2ed49ae","schoolYear":7}],
          "civicNo":"201001012386"}});
        let (collection, person) = to_ss12000(EgilResource::Users, &user).unwrap();
        assert_eq!(collection.path(), "persons");
        assert_eq!(person["id"], "119ded6f-864f-4757-9ed4-3f9323927b26");
        assert_eq!(person["givenName"], "Bo");
        assert_eq!(
            person["eduPersonPrincipalNames"],
            json!(["elev02@skola.exempla.example"])
        );
        assert_eq!(person["emails"][0]["type"], "Tjänst");
        assert_eq!(
            person["enrolments"][0],
            json!({"enroledAt": {"id": "a303f7b1-9cd3-48ae-a1ff-c64fa2ed49ae"}, "schoolYear": 7})
        );
        assert_eq!(person["civicNo"]["value"], "201001012386");
    }

    #[test]
    fn an_activity_names_its_groups_teachers_and_owner() {
        let activity = json!({"externalId":"00000000-0000-4000-8000-000000000001","displayName":"Ma 7A",
            "owner":{"value":"00000000-0000-4000-8000-000000000002"},
            "groups":[{"value":"00000000-0000-4000-8000-000000000003"}],
            "teachers":[{"value":"00000000-0000-4000-8000-000000000004"}]});
        let (collection, object) = to_ss12000(EgilResource::Activities, &activity).unwrap();
        assert_eq!(collection.path(), "activities");
        assert_eq!(
            object["organisation"]["id"],
            "00000000-0000-4000-8000-000000000002"
        );
        assert_eq!(
            object["groups"][0]["id"],
            "00000000-0000-4000-8000-000000000003"
        );
        assert_eq!(
            object["teachers"][0]["duty"]["id"],
            "00000000-0000-4000-8000-000000000004"
        );
    }
}
