//! What a resource must hold before it is stored (the required members as Windermere enforces
//! them, a UUID `externalId`, an 8-digit `schoolUnitCode`); every other member is kept as sent.

use serde_json::{Map, Value};
use ss12000::EgilResource;

use super::error::ScimError;

/// The key of the EGIL user extension object.
pub const USER_EXTENSION: &str = "urn:scim:schemas:extension:sis:school:1.0:User";

/// A resource ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The storage key: the `externalId` UUID in lower-case hyphenated form.
    pub key: String,
    /// The JSON text to store: the body as sent, with `id` set to its `externalId`.
    pub text: String,
}

/// The storage key of an id in a path or body: the UUID in lower case, or `None` when the
/// text is not a UUID (no such object can exist).
pub fn key_of(id: &str) -> Option<String> {
    uuid::Uuid::try_parse(id)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// Checks `body` as a `resource`, optionally against the id of the request's path.
pub fn validate(
    resource: EgilResource,
    body: Value,
    path_key: Option<&str>,
) -> Result<Validated, ScimError> {
    let Value::Object(mut map) = body else {
        return Err(ScimError::invalid_syntax(format!(
            "the body must be a JSON object (a {resource} resource)"
        )));
    };
    let external_id = match map.get("externalId") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ScimError::invalid_value(
                "externalId must be a string (a UUID)",
            ));
        }
        None => {
            return Err(ScimError::invalid_value(
                "externalId is missing: every EGIL resource needs its UUID in externalId",
            ));
        }
    };
    let key = key_of(&external_id).ok_or_else(|| {
        ScimError::invalid_value(format!(
            "externalId {external_id:?} is not a UUID (e.g. 119ded6f-864f-4757-9ed4-3f9323927b26)"
        ))
    })?;
    if let Some(path_key) = path_key
        && path_key != key
    {
        return Err(ScimError::invalid_value(format!(
            "the path names {path_key} but externalId is {external_id}: they must be the same"
        )));
    }
    if let Some(schemas) = map.get("schemas")
        && !schemas
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(ScimError::invalid_value(
            "schemas must be an array of URN strings",
        ));
    }
    required(resource, &map)?;
    map.insert("id".to_owned(), Value::String(external_id));
    Ok(Validated {
        key,
        text: Value::Object(map).to_string(),
    })
}

fn string<'a>(map: &'a Map<String, Value>, member: &str) -> Result<&'a str, ScimError> {
    match map.get(member) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err(ScimError::invalid_value(format!(
            "{member} must not be empty"
        ))),
        Some(_) => Err(ScimError::invalid_value(format!(
            "{member} must be a string"
        ))),
        None => Err(ScimError::invalid_value(format!("{member} is required"))),
    }
}

/// A `{value, $ref}` reference whose `value` is present.
fn reference(map: &Map<String, Value>, member: &str) -> Result<(), ScimError> {
    match map.get(member) {
        Some(Value::Object(inner)) => string(inner, "value")
            .map(|_| ())
            .map_err(|e| ScimError::invalid_value(format!("{member}.{}", e.detail))),
        Some(_) => Err(ScimError::invalid_value(format!(
            "{member} must be an object {{\"value\": \"<id>\", \"$ref\": \"…\"}}"
        ))),
        None => Err(ScimError::invalid_value(format!("{member} is required"))),
    }
}

fn required(resource: EgilResource, map: &Map<String, Value>) -> Result<(), ScimError> {
    match resource {
        EgilResource::Organisations | EgilResource::SchoolUnitGroups => {
            string(map, "displayName")?;
        }
        EgilResource::SchoolUnits => {
            string(map, "displayName")?;
            let code = string(map, "schoolUnitCode")?;
            if code.len() != 8 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ScimError::invalid_value(format!(
                    "schoolUnitCode {code:?} must be Skolverket's 8-digit school unit code"
                )));
            }
        }
        EgilResource::Users => {
            string(map, "userName")?;
            string(map, "displayName")?;
            let Some(Value::Object(name)) = map.get("name") else {
                return Err(ScimError::invalid_value(
                    "name is required: {\"familyName\": …, \"givenName\": …}",
                ));
            };
            string(name, "familyName")
                .and_then(|_| string(name, "givenName"))
                .map_err(|e| ScimError::invalid_value(format!("name.{}", e.detail)))?;
            if let Some(extension) = map.get(USER_EXTENSION)
                && !extension.is_object()
            {
                return Err(ScimError::invalid_value(format!(
                    "{USER_EXTENSION} must be an object"
                )));
            }
        }
        EgilResource::Employments => {
            reference(map, "employedAt")?;
            reference(map, "user")?;
            string(map, "employmentRole")?;
        }
        EgilResource::StudentGroups | EgilResource::Activities => {
            string(map, "displayName")?;
            reference(map, "owner")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "119DED6F-864F-4757-9ED4-3F9323927B26";

    #[test]
    fn keeps_unknown_members_and_sets_id() {
        let body =
            json!({"externalId": ID, "displayName": "Exempla", "x-custom": [1, {"a": null}]});
        let v = validate(EgilResource::Organisations, body, None).unwrap();
        assert_eq!(v.key, ID.to_lowercase());
        let stored: Value = serde_json::from_str(&v.text).unwrap();
        assert_eq!(stored["x-custom"], json!([1, {"a": null}]));
        assert_eq!(stored["id"], ID);
    }

    #[test]
    fn refuses_what_the_field_requires() {
        let unit =
            |code: &str| json!({"externalId": ID, "displayName": "S", "schoolUnitCode": code});
        assert!(validate(EgilResource::SchoolUnits, unit("12345678"), None).is_ok());
        for bad in ["1234567", "123456789", "1234567a"] {
            let err = validate(EgilResource::SchoolUnits, unit(bad), None).unwrap_err();
            assert!(err.detail.contains("8-digit"), "{bad}: {}", err.detail);
        }
        let err = validate(EgilResource::Users, json!({"externalId": "nope"}), None).unwrap_err();
        assert!(err.detail.contains("not a UUID"));
        let err = validate(
            EgilResource::Users,
            json!({"externalId": ID, "userName": "u", "displayName": "d", "name": {"givenName": "g"}}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.detail, "name.familyName is required");
        let err = validate(
            EgilResource::Employments,
            json!({"externalId": ID, "employedAt": {"value": "x"}, "user": "u", "employmentRole": "Lärare"}),
            None,
        )
        .unwrap_err();
        assert!(err.detail.starts_with("user must be an object"));
        let err = validate(EgilResource::Organisations, json!([1]), None).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidSyntax"));
    }

    #[test]
    fn path_and_body_must_agree() {
        let body = json!({"externalId": ID, "displayName": "O"});
        assert!(
            validate(
                EgilResource::Organisations,
                body.clone(),
                Some(&ID.to_lowercase())
            )
            .is_ok()
        );
        let other = key_of("00000000-0000-4000-8000-000000000000").unwrap();
        assert!(validate(EgilResource::Organisations, body, Some(&other)).is_err());
    }
}
