//! Typed views of the five collections Skolverket uses (fields as in SS 12000:2020 and
//! PROTOCOL-NOTES §4). Every struct keeps unknown members in `extra`, so a parse → serialise
//! round trip loses nothing.

// IMPLEMENTATION NOTE (skeleton): Meta, ObjectRef {id, displayName?}, Organisation, Person
// (givenName, familyName, eduPersonPrincipalNames, civicNo {value, nationality}, emails [{value, type}],
// enrolments, externalIdentifiers, securityMarking, …), Duty (person, dutyAt, dutyRole, …),
// Group (displayName, groupType, schoolType, organisation, groupMemberships [{person, …}], …),
// Activity (displayName, activityType, groups, teachers [{duty}], organisation, parentActivity, …).
// camelCase serde names, Option for everything not required by the reference OpenAPI,
// `#[serde(flatten)] extra: serde_json::Map<String, serde_json::Value>` on every struct.
