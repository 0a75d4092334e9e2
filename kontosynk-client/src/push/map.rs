//! SS 12000 objects (as the store keeps them) → the Provisioning API's schemas.
//!
//! The API takes a subset of SS 12000 with its own rules (one `eduPersonPrincipalName`, only
//! `Klass` and `Undervisning` groups, only `Undervisning` activities, references as `{id}`,
//! no `meta`). Fields the API does not define are left out; required fields that are missing
//! make the object invalid here, before anything is sent.

use serde_json::{Map, Value};

use super::kind::ObjectType;

/// What became of one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// The JSON to send.
    Send(Value),
    /// Not for Skolverket (a group or activity type the API must not receive).
    Skip(String),
}

/// Why an object cannot be sent: names the object and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object_type} {id}: {reason}")]
pub struct MapError {
    /// The object's type.
    pub object_type: ObjectType,
    /// The object's id (empty when it has none).
    pub id: String,
    /// What is missing or wrong.
    pub reason: String,
}

/// Group types the API accepts.
const GROUP_TYPES: [&str; 2] = ["Klass", "Undervisning"];
/// Activity types the API accepts.
const ACTIVITY_TYPES: [&str; 1] = ["Undervisning"];
/// Email types the API knows.
const EMAIL_TYPES: [&str; 4] = ["Privat", "Skola elev", "Skola personal", "Arbete övrigt"];

/// Maps one SS 12000 object of `object_type`.
pub fn map_object(object_type: ObjectType, source: &Value) -> Result<Mapped, MapError> {
    let mut m = Mapper {
        object_type,
        id: source
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        source,
        out: Map::new(),
    };
    if !source.is_object() {
        return Err(m.error("not a JSON object"));
    }
    if m.id.is_empty() {
        return Err(m.error("no `id`"));
    }
    m.out.insert("id".into(), Value::String(m.id.clone()));
    match object_type {
        ObjectType::Persons => m.person()?,
        ObjectType::Duties => m.duty()?,
        ObjectType::Groups => {
            if let Some(reason) = m.unwanted_type("groupType", &GROUP_TYPES) {
                return Ok(Mapped::Skip(reason));
            }
            m.group()?
        }
        ObjectType::Activities => {
            if let Some(reason) = m.unwanted_type("activityType", &ACTIVITY_TYPES) {
                return Ok(Mapped::Skip(reason));
            }
            m.activity()?
        }
    }
    Ok(Mapped::Send(Value::Object(m.out)))
}

struct Mapper<'a> {
    object_type: ObjectType,
    id: String,
    source: &'a Value,
    out: Map<String, Value>,
}

impl Mapper<'_> {
    fn error(&self, reason: impl Into<String>) -> MapError {
        MapError {
            object_type: self.object_type,
            id: self.id.clone(),
            reason: reason.into(),
        }
    }

    fn unwanted_type(&self, field: &str, allowed: &[&str]) -> Option<String> {
        match self.source.get(field).and_then(Value::as_str) {
            Some(t) if !allowed.contains(&t) => Some(format!(
                "`{field}` is `{t}`; Skolverket takes only {}",
                allowed.join(", ")
            )),
            _ => None,
        }
    }

    /// A non-empty string field copied as is.
    fn string(&mut self, field: &str, required: bool) -> Result<(), MapError> {
        match self.source.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {
                self.out.insert(field.into(), Value::String(s.clone()));
                Ok(())
            }
            None | Some(Value::Null) if !required => Ok(()),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                Err(self.error(format!("`{field}` is required")))
            }
            Some(_) => Err(self.error(format!("`{field}` is not a string"))),
        }
    }

    /// A reference `{id, …}` reduced to `{id}`.
    fn reference(&mut self, field: &str, required: bool) -> Result<(), MapError> {
        match self.source.get(field) {
            None | Some(Value::Null) if !required => Ok(()),
            Some(v) => {
                let r =
                    reference(v).ok_or_else(|| self.error(format!("`{field}.id` is missing")))?;
                self.out.insert(field.into(), r);
                Ok(())
            }
            None => Err(self.error(format!("`{field}` is required"))),
        }
    }

    fn array<'s>(&'s self, field: &str) -> Result<&'s [Value], MapError> {
        match self.source.get(field) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.error(format!("`{field}` is not an array"))),
        }
    }

    fn person(&mut self) -> Result<(), MapError> {
        self.string("givenName", true)?;
        self.string("middleName", false)?;
        self.string("familyName", true)?;
        let eppn = self
            .array("eduPersonPrincipalNames")?
            .iter()
            .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
            .ok_or_else(|| self.error("`eduPersonPrincipalNames` needs one value"))?
            .to_owned();
        self.out.insert(
            "eduPersonPrincipalNames".into(),
            Value::Array(vec![Value::String(eppn)]),
        );
        let civic = self
            .source
            .get("civicNo")
            .and_then(|c| c.get("value"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.error("`civicNo.value` is required"))?;
        let mut civic_no = Map::new();
        civic_no.insert("value".into(), Value::String(civic.to_owned()));
        if let Some(n) = self
            .source
            .pointer("/civicNo/nationality")
            .and_then(Value::as_str)
        {
            civic_no.insert("nationality".into(), Value::String(n.to_owned()));
        }
        self.out.insert("civicNo".into(), Value::Object(civic_no));
        self.string("securityMarking", false)?;
        let external: Vec<Value> = self
            .array("externalIdentifiers")?
            .iter()
            .filter(|e| e.get("value").is_some_and(Value::is_string))
            .take(1)
            .map(|e| pick(e, &["value", "context", "globallyUnique"]))
            .collect();
        if !external.is_empty() {
            self.out
                .insert("externalIdentifiers".into(), Value::Array(external));
        }
        let emails: Vec<Value> = self
            .array("emails")?
            .iter()
            .filter(|e| e.get("value").is_some_and(Value::is_string))
            .filter(|e| {
                e.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| EMAIL_TYPES.contains(&t))
            })
            .map(|e| pick(e, &["value", "type"]))
            .collect();
        if !emails.is_empty() {
            self.out.insert("emails".into(), Value::Array(emails));
        }
        let mut enrolments = Vec::new();
        for (i, e) in self.array("enrolments")?.iter().enumerate() {
            let enroled_at = e
                .get("enroledAt")
                .and_then(reference)
                .ok_or_else(|| self.error(format!("`enrolments[{i}].enroledAt.id` is missing")))?;
            let mut out = Map::new();
            out.insert("enroledAt".into(), enroled_at);
            for field in ["schoolYear", "schoolType", "cancelled", "educationCode"] {
                if let Some(v) = e.get(field).filter(|v| !v.is_null()) {
                    out.insert(field.into(), v.clone());
                }
            }
            if !out.contains_key("schoolType") {
                return Err(self.error(format!("`enrolments[{i}].schoolType` is required")));
            }
            enrolments.push(Value::Object(out));
        }
        if !enrolments.is_empty() {
            self.out
                .insert("enrolments".into(), Value::Array(enrolments));
        }
        Ok(())
    }

    fn duty(&mut self) -> Result<(), MapError> {
        self.reference("person", true)?;
        self.reference("dutyAt", true)?;
        self.string("dutyRole", true)
    }

    fn group(&mut self) -> Result<(), MapError> {
        self.string("displayName", true)?;
        self.string("groupType", true)?;
        self.string("schoolType", true)?;
        self.reference("organisation", true)?;
        let mut members = Vec::new();
        for (i, m) in self.array("groupMemberships")?.iter().enumerate() {
            let person = m.get("person").and_then(reference).ok_or_else(|| {
                self.error(format!("`groupMemberships[{i}].person.id` is missing"))
            })?;
            let mut out = Map::new();
            out.insert("person".into(), person);
            members.push(Value::Object(out));
        }
        if !members.is_empty() {
            self.out
                .insert("groupMemberships".into(), Value::Array(members));
        }
        Ok(())
    }

    fn activity(&mut self) -> Result<(), MapError> {
        self.string("displayName", true)?;
        self.string("activityType", true)?;
        let mut groups = Vec::new();
        for (i, g) in self.array("groups")?.iter().enumerate() {
            groups.push(
                reference(g).ok_or_else(|| self.error(format!("`groups[{i}].id` is missing")))?,
            );
        }
        if groups.is_empty() {
            return Err(self.error("`groups` needs at least one group"));
        }
        self.out.insert("groups".into(), Value::Array(groups));
        let mut teachers = Vec::new();
        for (i, t) in self.array("teachers")?.iter().enumerate() {
            let duty = t
                .get("duty")
                .and_then(reference)
                .ok_or_else(|| self.error(format!("`teachers[{i}].duty.id` is missing")))?;
            let mut out = Map::new();
            out.insert("duty".into(), duty);
            teachers.push(Value::Object(out));
        }
        if !teachers.is_empty() {
            self.out.insert("teachers".into(), Value::Array(teachers));
        }
        self.reference("organisation", true)?;
        self.reference("parentActivity", true)
    }
}

/// `{id}` of a reference object (or of a bare id string, which some sources send).
fn reference(v: &Value) -> Option<Value> {
    let id = match v {
        Value::String(s) => s.as_str(),
        other => other.get("id")?.as_str()?,
    };
    if id.is_empty() {
        return None;
    }
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.to_owned()));
    Some(Value::Object(out))
}

fn pick(v: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        if let Some(x) = v.get(*f).filter(|x| !x.is_null()) {
            out.insert((*f).into(), x.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn send(t: ObjectType, v: Value) -> Value {
        match map_object(t, &v).unwrap() {
            Mapped::Send(v) => v,
            Mapped::Skip(r) => panic!("skipped: {r}"),
        }
    }

    #[test]
    fn person_keeps_only_the_api_fields() {
        let p = json!({
            "id": "p1", "meta": {"created": "2024-01-01T00:00:00Z"},
            "givenName": "Anna", "familyName": "Svensson",
            "eduPersonPrincipalNames": ["a@x", "b@x"],
            "civicNo": {"value": "200901272385", "nationality": "SE"},
            "emails": [{"value": "a@x", "type": "Skola elev"}, {"value": "b@y", "type": "Okänd"}],
            "enrolments": [{"enroledAt": {"id": "su1", "displayName": "S"}, "schoolType": "GR",
                            "schoolYear": 6, "startDate": "2024-08-01"}],
            "addresses": [{"streetAddress": "x"}],
        });
        let out = send(ObjectType::Persons, p);
        assert_eq!(
            out,
            json!({
                "id": "p1", "givenName": "Anna", "familyName": "Svensson",
                "eduPersonPrincipalNames": ["a@x"],
                "civicNo": {"value": "200901272385", "nationality": "SE"},
                "emails": [{"value": "a@x", "type": "Skola elev"}],
                "enrolments": [{"enroledAt": {"id": "su1"}, "schoolYear": 6, "schoolType": "GR"}],
            })
        );
    }

    #[test]
    fn missing_required_fields_name_the_field() {
        let e =
            map_object(ObjectType::Persons, &json!({"id": "p1", "givenName": "A"})).unwrap_err();
        assert_eq!(e.id, "p1");
        assert!(e.reason.contains("familyName"), "{e}");
        let e = map_object(
            ObjectType::Activities,
            &json!({"id": "a", "displayName": "x", "activityType": "Undervisning",
                    "groups": [{"id": "g"}], "organisation": {"id": "o"}}),
        )
        .unwrap_err();
        assert!(e.reason.contains("parentActivity"), "{e}");
        let e = map_object(ObjectType::Duties, &json!({"displayName": "x"})).unwrap_err();
        assert!(e.reason.contains("id"), "{e}");
        assert!(map_object(ObjectType::Duties, &json!([1])).is_err());
    }

    #[test]
    fn unwanted_group_and_activity_types_are_skipped() {
        let g = json!({"id": "g", "groupType": "Mentor"});
        assert!(matches!(
            map_object(ObjectType::Groups, &g),
            Ok(Mapped::Skip(_))
        ));
        let a = json!({"id": "a", "activityType": "Elevaktivitet"});
        assert!(matches!(
            map_object(ObjectType::Activities, &a),
            Ok(Mapped::Skip(_))
        ));
    }

    #[test]
    fn references_reduce_to_ids() {
        let d = json!({"id": "d", "person": {"id": "p", "displayName": "P"},
                       "dutyAt": {"id": "su"}, "dutyRole": "Lärare", "signature": "AB"});
        assert_eq!(
            send(ObjectType::Duties, d),
            json!({"id": "d", "person": {"id": "p"}, "dutyAt": {"id": "su"}, "dutyRole": "Lärare"})
        );
    }
}
