//! `POST /log` and `POST /statistics`: reports from the client, validated loosely against
//! the reference OpenAPI (`LogEntry`, `StatisticsEntry`) and kept as records.

use http::{Response, StatusCode};

use super::error::ApiError;
use super::{Caller, Ss12000Api};
use kontosynk_framework::response::{Body, json_text};

const SEVERITIES: [&str; 3] = ["Info", "Warning", "Error"];

/// Checks a `LogEntry`: an object with a string `message` and `severityLevel` Info, Warning or
/// Error (any case). Other members are kept as sent.
pub(super) fn check_log_entry(body: &serde_json::Value) -> Result<(), String> {
    let map = body.as_object().ok_or("a LogEntry must be a JSON object")?;
    if !map.get("message").is_some_and(|m| m.is_string()) {
        return Err("`message` (string) is required".into());
    }
    match map.get("severityLevel").and_then(|s| s.as_str()) {
        Some(level) if SEVERITIES.iter().any(|s| s.eq_ignore_ascii_case(level)) => Ok(()),
        Some(level) => Err(format!(
            "`severityLevel` must be Info, Warning or Error; got {level:?}"
        )),
        None => Err("`severityLevel` (Info, Warning or Error) is required".into()),
    }
}

/// Checks a `StatisticsEntry`: an object with a string `resourceType` and integer
/// `newCount`, `updatedCount`, `deletedCount`.
pub(super) fn check_statistics_entry(body: &serde_json::Value) -> Result<(), String> {
    let map = body
        .as_object()
        .ok_or("a StatisticsEntry must be a JSON object")?;
    if !map.get("resourceType").is_some_and(|m| m.is_string()) {
        return Err("`resourceType` (string) is required".into());
    }
    for count in ["newCount", "updatedCount", "deletedCount"] {
        if !map.get(count).is_some_and(|c| c.is_i64() || c.is_u64()) {
            return Err(format!("`{count}` (integer) is required"));
        }
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
    }
}
