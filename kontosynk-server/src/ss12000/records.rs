//! `POST /log` and `POST /statistics`: reports from the client, validated loosely against
//! the reference OpenAPI (`LogEntry`, `StatisticsEntry`) and kept as records.

use http::{Response, StatusCode};

use super::error::ApiError;
use super::{Caller, Ss12000Api};
use kontosynk_framework::response::{Body, json_text};

const SEVERITIES: [&str; 3] = ["Info", "Warning", "Error"];

/// `EndPointsEnum` of the reference OpenAPI: the only `resourceType` values it defines.
const RESOURCE_TYPES: [&str; 5] = ["Activity", "Duty", "Group", "Person", "Organisation"];

type Members = serde_json::Map<String, serde_json::Value>;

/// Checks a `LogEntry` as the reference OpenAPI defines it: a string `message`,
/// `severityLevel` Info, Warning or Error (any case, as clients send it), and when present a
/// string `messageType`, a `resourceType` of `EndPointsEnum`, a UUID `resourceId`, an
/// absolute URL `resourceUrl` and an RFC 3339 `timeOfOccurance`. Other members are kept as
/// sent. The error names the member and what it must be.
pub(super) fn check_log_entry(body: &serde_json::Value) -> Result<(), String> {
    let map = body.as_object().ok_or("a LogEntry must be a JSON object")?;
    if !map.get("message").is_some_and(|m| m.is_string()) {
        return Err("`message` (string) is required".into());
    }
    match map.get("severityLevel").and_then(|s| s.as_str()) {
        Some(level) if SEVERITIES.iter().any(|s| s.eq_ignore_ascii_case(level)) => {}
        Some(level) => {
            return Err(format!(
                "`severityLevel` must be Info, Warning or Error; got {level:?}"
            ));
        }
        None => return Err("`severityLevel` (Info, Warning or Error) is required".into()),
    }
    if map.get("messageType").is_some_and(|m| !m.is_string()) {
        return Err("`messageType` must be a string".into());
    }
    if map.contains_key("resourceType") {
        check_resource_type(map)?;
    }
    if let Some(id) = map.get("resourceId") {
        let text = id.as_str().unwrap_or_default();
        if uuid::Uuid::parse_str(text).is_err() {
            return Err(format!("`resourceId` must be a UUID; got {id}"));
        }
    }
    check_optional_common(map)
}

/// Checks a `StatisticsEntry` as the reference OpenAPI defines it: `resourceType` of
/// `EndPointsEnum`, counts `newCount`, `updatedCount`, `deletedCount` as integers ≥ 0, and
/// when present an absolute URL `resourceUrl` and an RFC 3339 `timeOfOccurance`.
pub(super) fn check_statistics_entry(body: &serde_json::Value) -> Result<(), String> {
    let map = body
        .as_object()
        .ok_or("a StatisticsEntry must be a JSON object")?;
    check_resource_type(map)?;
    for count in ["newCount", "updatedCount", "deletedCount"] {
        match map.get(count) {
            Some(value) if value.is_u64() => {}
            Some(value) => {
                return Err(format!("`{count}` must be an integer ≥ 0; got {value}"));
            }
            None => return Err(format!("`{count}` (integer ≥ 0) is required")),
        }
    }
    check_optional_common(map)
}

fn check_resource_type(map: &Members) -> Result<(), String> {
    match map.get("resourceType").and_then(|t| t.as_str()) {
        Some(kind) if RESOURCE_TYPES.contains(&kind) => Ok(()),
        Some(kind) => Err(format!(
            "`resourceType` must be one of {}; got {kind:?}",
            RESOURCE_TYPES.join(", ")
        )),
        None => Err(format!(
            "`resourceType` (one of {}) is required",
            RESOURCE_TYPES.join(", ")
        )),
    }
}

/// `resourceUrl` (absolute URL) and `timeOfOccurance` (RFC 3339), when present.
fn check_optional_common(map: &Members) -> Result<(), String> {
    if let Some(url) = map.get("resourceUrl")
        && url
            .as_str()
            .is_none_or(|u| http::Uri::try_from(u).map_or(true, |u| u.scheme().is_none()))
    {
        return Err(format!("`resourceUrl` must be an absolute URL; got {url}"));
    }
    if let Some(at) = map.get("timeOfOccurance")
        && at
            .as_str()
            .is_none_or(|t| ss12000::Timestamp::parse(t).is_err())
    {
        return Err(format!(
            "`timeOfOccurance` must be an RFC 3339 date-time; got {at}"
        ));
    }
    Ok(())
}

async fn store(
    api: &Ss12000Api,
    caller: &Caller,
    kind: &str,
    body: serde_json::Value,
) -> Result<Response<Body>, ApiError> {
    let record = serde_json::json!({"caller": caller.id, "entry": body});
    let seq = api
        .store()
        .append_record(kind, &record)
        .await
        .map_err(|e| ApiError::store(&e))?;
    tracing::info!(kind, seq, caller = %caller.id, "report received");
    Ok(json_text(StatusCode::CREATED, format!("{{\"id\":{seq}}}")))
}

/// `POST /log`.
pub(super) async fn log(
    api: &Ss12000Api,
    caller: &Caller,
    body: serde_json::Value,
) -> Result<Response<Body>, ApiError> {
    check_log_entry(&body).map_err(|m| ApiError::bad_request("invalid_log_entry", m))?;
    store(api, caller, "log", body).await
}

/// `POST /statistics`.
pub(super) async fn statistics(
    api: &Ss12000Api,
    caller: &Caller,
    body: serde_json::Value,
) -> Result<Response<Body>, ApiError> {
    check_statistics_entry(&body)
        .map_err(|m| ApiError::bad_request("invalid_statistics_entry", m))?;
    store(api, caller, "statistics", body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn log_entries_need_message_and_severity() {
        assert!(
            check_log_entry(&json!({"message": "x", "severityLevel": "Warning", "extra": 1}))
                .is_ok()
        );
        assert!(check_log_entry(&json!({"message": "x"})).is_err());
        assert!(check_log_entry(&json!({"message": "x", "severityLevel": "Fatal"})).is_err());
        assert!(check_log_entry(&json!({"severityLevel": "Info"})).is_err());
        assert!(check_log_entry(&json!(["x"])).is_err());
    }

    #[test]
    fn statistics_need_counts() {
        let good =
            json!({"resourceType": "Person", "newCount": 1, "updatedCount": 0, "deletedCount": 2});
        assert!(check_statistics_entry(&good).is_ok());
        let mut bad = good.clone();
        bad["newCount"] = json!("1");
        assert!(check_statistics_entry(&bad).is_err());
        assert!(check_statistics_entry(&json!({"newCount": 1})).is_err());
        for (member, value, says) in [
            (
                "resourceType",
                json!("Bogus"),
                "`resourceType` must be one of",
            ),
            (
                "newCount",
                json!(-5),
                "`newCount` must be an integer ≥ 0; got -5",
            ),
            (
                "resourceUrl",
                json!("not a url"),
                "`resourceUrl` must be an absolute URL",
            ),
            (
                "timeOfOccurance",
                json!("yesterday"),
                "`timeOfOccurance` must be an RFC 3339",
            ),
        ] {
            let mut bad = good.clone();
            bad[member] = value;
            let error = check_statistics_entry(&bad).unwrap_err();
            assert!(error.contains(says), "{member}: {error}");
        }
    }

    #[test]
    fn log_entries_optional_members_follow_the_spec_when_present() {
        let good = json!({"message": "x", "severityLevel": "Error", "messageType": "sync",
            "resourceType": "Person", "resourceId": "b6c49fd4-3f1a-4e52-8a38-2c6f39b8e0a1",
            "resourceUrl": "https://s.example/v2.0/persons", "timeOfOccurance": "2026-12-02T10:00:00Z"});
        assert_eq!(check_log_entry(&good), Ok(()));
        for (member, value) in [
            ("resourceType", json!("Bogus")),
            ("resourceId", json!("p1")),
            ("messageType", json!(7)),
            ("timeOfOccurance", json!(0)),
        ] {
            let mut bad = good.clone();
            bad[member] = value;
            let error = check_log_entry(&bad).unwrap_err();
            assert!(error.contains(&format!("`{member}`")), "{member}: {error}");
        }
    }
}
