//! Typed views of the five collections Skolverket uses (fields as in SS 12000:2020 and
//! PROTOCOL-NOTES §4). Every struct keeps unknown members in `extra`, so a parse → serialise
//! round trip loses nothing (member order of unknown fields is kept; known fields come first).
//!
//! The store never needs these: it keeps the JSON text ([`crate::Object`]). They are for code
//! that reads or builds objects (sample data, push mapping, tests).

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// Members this crate does not model, kept in order.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// `meta`: when an object was created and last modified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// `meta.created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    /// `meta.modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<Timestamp>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A reference to another object: `{id, displayName?}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// The referenced object's id.
    pub id: String,
    /// Its display name, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ObjectRef {
    /// A reference by id alone.
    pub fn to(id: impl Into<String>) -> ObjectRef {
        ObjectRef {
            id: id.into(),
            ..ObjectRef::default()
        }
    }
}

/// `Organisation`: a huvudman, school unit or other organisational unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organisation {
    /// Object id (UUID).
    pub id: String,
    /// Created / modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Name.
    pub display_name: String,
    /// `Huvudman`, `Skolenhet`, `Skola`, `Förvaltning`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_type: Option<String>,
    /// Skolenhetskod (school unit code), for school units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_unit_code: Option<String>,
    /// Organisationsnummer, for a huvudman.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_number: Option<String>,
    /// Parent organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_organisation: Option<ObjectRef>,
    /// School types of a school unit (`GR`, `GY`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_types: Option<Vec<String>>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A personnummer or samordningsnummer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CivicNo {
    /// The number, `YYYYMMDDNNNN`.
    pub value: String,
    /// Issuing country (`SE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An e-mail address with its type (`Privat`, `Skola`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    /// The address.
    pub value: String,
    /// Its type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A student's enrolment at a school unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    /// The school unit.
    pub enroled_at: ObjectRef,
    /// School year (årskurs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_year: Option<i64>,
    /// School type (`GR`, `GY`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_type: Option<String>,
    /// First day (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Last day (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An identifier of the person in another system.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIdentifier {
    /// The identifier.
    pub value: String,
    /// Where it is unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Whether it is globally unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globally_unique: Option<bool>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Person`: a student, teacher or other member of staff.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Object id (UUID).
    pub id: String,
    /// Created / modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// eduPersonPrincipalNames (`name@school.se`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edu_person_principal_names: Option<Vec<String>>,
    /// Personnummer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub civic_no: Option<CivicNo>,
    /// E-mail addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<Email>>,
    /// Enrolments (students).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolments: Option<Vec<Enrolment>>,
    /// Identifiers in other systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_identifiers: Option<Vec<ExternalIdentifier>>,
    /// `Ingen`, `Sekretessmarkering`, `Skyddad folkbokföring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_marking: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Duty`: a person's employment role at an organisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Duty {
    /// Object id (UUID).
    pub id: String,
    /// Created / modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// The person.
    pub person: ObjectRef,
    /// Where the duty is held.
    pub duty_at: ObjectRef,
    /// `Lärare`, `Rektor`, …
    pub duty_role: String,
    /// Signature (short name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// First day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Last day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A person's membership of a group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMembership {
    /// The member.
    pub person: ObjectRef,
    /// First day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Last day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Group`: a class (`Klass`), teaching group (`Undervisning`), mentor group, …
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id (UUID).
    pub id: String,
    /// Created / modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Name (`7A`).
    pub display_name: String,
    /// `Klass`, `Undervisning`, `Mentor`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_type: Option<String>,
    /// `GR`, `GY`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_type: Option<String>,
    /// The owning school unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<ObjectRef>,
    /// Members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_memberships: Option<Vec<GroupMembership>>,
    /// First day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Last day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A teacher of an activity, by duty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityTeacher {
    /// The teacher's duty.
    pub duty: ObjectRef,
    /// Unknown members (allocation percentages, dates, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Activity`: teaching (a course or subject) given to groups by teachers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// Object id (UUID).
    pub id: String,
    /// Created / modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Name (`Matematik 7A`).
    pub display_name: String,
    /// Code_ActivityType: `Undervisning`, `Elevaktivitet`, `Provaktivitet`, `Läraraktivitet`, `Övrigt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_type: Option<String>,
    /// Groups taking part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<ObjectRef>>,
    /// Teachers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teachers: Option<Vec<ActivityTeacher>>,
    /// The owning school unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<ObjectRef>,
    /// The activity this one is part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_activity: Option<ObjectRef>,
    /// Unknown members (syllabus, dates, …).
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::{Activity, Group, Person};
    use crate::Object;

    #[test]
    fn person_round_trip_keeps_unknown_members() {
        let text = r#"{"id":"p1","meta":{"created":"2026-01-01T00:00:00Z","x":1},"givenName":"Anna","familyName":"Öberg","civicNo":{"value":"201001012389","nationality":"SE","extra":true},"emails":[{"value":"a@b.se","type":"Skola"}],"zUnknown":{"nested":[1,2,{"k":null}]},"aUnknown":"x"}"#;
        let person: Person = Object::from_json(text).unwrap().parse().unwrap();
        assert_eq!(person.family_name, "Öberg");
        assert_eq!(person.civic_no.as_ref().unwrap().value, "201001012389");
        assert_eq!(
            person.extra.keys().collect::<Vec<_>>(),
            ["zUnknown", "aUnknown"]
        );
        let back = serde_json::to_string(&person).unwrap();
        let a: serde_json::Value = serde_json::from_str(text).unwrap();
        let b: serde_json::Value = serde_json::from_str(&back).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn group_and_activity_parse() {
        let group: Group = serde_json::from_str(
            r#"{"id":"g","displayName":"7A","groupType":"Klass","groupMemberships":[{"person":{"id":"p"}}]}"#,
        )
        .unwrap();
        assert_eq!(group.group_memberships.unwrap()[0].person.id, "p");
        let activity: Activity = serde_json::from_str(
            r#"{"id":"a","displayName":"Ma","groups":[{"id":"g"}],"teachers":[{"duty":{"id":"d"},"allocation":50}]}"#,
        )
        .unwrap();
        assert_eq!(
            activity.teachers.as_ref().unwrap()[0].extra["allocation"],
            50
        );
        assert!(serde_json::from_str::<Person>(r#"{"id":"p"}"#).is_err());
    }
}
