//! `POST /subscriptions`, `PATCH|DELETE /subscriptions/{id}`.

use http::{Response, StatusCode};
use ss12000::{Collection, Subscription, Timestamp};

use super::error::ApiError;
use super::{Caller, Ss12000Api};
use kontosynk_framework::response::{Body, empty, json_text};

/// The subscription as the reference OpenAPI shows it (`Subscription`).
pub(super) fn to_json(subscription: &Subscription) -> serde_json::Value {
    serde_json::json!({
        "id": subscription.id,
        "name": subscription.name,
        "target": subscription.target,
        "resourceTypes": subscription
            .resource_types
            .iter()
            .map(|r| serde_json::json!({"resource": r}))
            .collect::<Vec<_>>(),
        "expires": subscription.expires,
    })
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_subscription", message)
}

/// The latest expiry the server grants from now.
fn max_expiry(api: &Ss12000Api) -> Timestamp {
    let secs = i64::try_from(api.config().subscription_lifetime.as_secs()).unwrap_or(i64::MAX);
    Timestamp::now().add_seconds(secs)
}

/// The expiry asked for in `body.expires` (optional), capped at the server's maximum.
fn requested_expiry(
    api: &Ss12000Api,
    body: Option<&serde_json::Value>,
) -> Result<Timestamp, ApiError> {
    let max = max_expiry(api);
    match body.and_then(|b| b.get("expires")) {
        None | Some(serde_json::Value::Null) => Ok(max),
        Some(serde_json::Value::String(text)) => {
            let asked = Timestamp::parse(text).map_err(|_| {
                bad(format!(
                    "expires must be an RFC 3339 date-time; got {text:?}"
                ))
            })?;
            if asked <= Timestamp::now() {
                return Err(bad("expires must be in the future"));
            }
            Ok(asked.min(max))
        }
        Some(other) => Err(bad(format!("expires must be a string; got {other}"))),
    }
}

fn check_target(api: &Ss12000Api, target: &str) -> Result<(), ApiError> {
    let lower = target.to_ascii_lowercase();
    let allowed = lower.starts_with("https://")
        || (api.config().allow_http_targets && lower.starts_with("http://"));
    if !allowed
        || target.len() > 2048
        || target.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(format!(
            "target must be an https:// URL without spaces (at most 2048 bytes); got {target:?}"
        )));
    }
    let host = target
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if host.is_empty() {
        return Err(bad(format!("target {target:?} has no host")));
    }
    Ok(())
}

/// `POST /subscriptions` → 201 with the server-chosen `id` and `expires`.
pub(super) async fn create(
    api: &Ss12000Api,
    caller: &Caller,
    body: serde_json::Value,
) -> Result<Response<Body>, ApiError> {
    let name = body
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| bad("`name` (string) is required"))?;
    let target = body
        .get("target")
        .and_then(|n| n.as_str())
        .ok_or_else(|| bad("`target` (webhook URL) is required"))?;
    check_target(api, target)?;
    let types = body
        .get("resourceTypes")
        .and_then(|t| t.as_array())
        .ok_or_else(|| bad("`resourceTypes` (array of {\"resource\": \"Person\"}) is required"))?;
    let mut resource_types = Vec::new();
    for (i, item) in types.iter().enumerate() {
        let name = item
            .get("resource")
            .and_then(|r| r.as_str())
            .or_else(|| item.as_str())
            .ok_or_else(|| bad(format!("resourceTypes[{i}] needs a `resource`")))?;
        let not_type = || {
            bad(format!(
                "resourceTypes[{i}]: {name:?} is not an entity type of this API"
            ))
        };
        let collection = Collection::from_entity_type(name).ok_or_else(not_type)?;
        if !api.is_known(&collection).await? {
            return Err(not_type());
        }
        let entity = collection.entity_type();
        if !resource_types.contains(&entity) {
            resource_types.push(entity);
        }
    }
    if resource_types.is_empty() {
        return Err(bad("resourceTypes must name at least one entity type"));
    }
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        target: target.to_owned(),
        resource_types,
        expires: requested_expiry(api, Some(&body))?,
        owner: caller.id.clone(),
    };
    api.store()
        .put_subscription(&subscription)
        .await
        .map_err(|e| ApiError::store(&e))?;
    tracing::info!(id = %subscription.id, owner = %caller.id, target = %subscription.target, "subscription created");
    Ok(json_text(
        StatusCode::CREATED,
        to_json(&subscription).to_string(),
    ))
}

/// The subscription `id`, if `caller` owns it (404 when missing or lapsed, 403 otherwise).
async fn owned(api: &Ss12000Api, caller: &Caller, id: &str) -> Result<Subscription, ApiError> {
    let subscription = api
        .store()
        .subscription(id)
        .await
        .map_err(|e| ApiError::store(&e))?
        .filter(|s| s.expires > Timestamp::now())
        .ok_or_else(|| ApiError::not_found(format!("no subscription {id}")))?;
    if subscription.owner != caller.id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_owner",
            format!("subscription {id} belongs to another client"),
        ));
    }
    Ok(subscription)
}

/// `PATCH /subscriptions/{id}`: extends `expires` (to the body's `expires`, capped, or the
/// maximum).
pub(super) async fn extend(
    api: &Ss12000Api,
    caller: &Caller,
    id: &str,
    body: Option<serde_json::Value>,
) -> Result<Response<Body>, ApiError> {
    let mut subscription = owned(api, caller, id).await?;
    subscription.expires = requested_expiry(api, body.as_ref())?;
    api.store()
        .put_subscription(&subscription)
        .await
        .map_err(|e| ApiError::store(&e))?;
    tracing::info!(%id, expires = %subscription.expires, "subscription extended");
    Ok(json_text(
        StatusCode::OK,
        to_json(&subscription).to_string(),
    ))
}

/// `DELETE /subscriptions/{id}` → 204.
pub(super) async fn delete(
    api: &Ss12000Api,
    caller: &Caller,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    owned(api, caller, id).await?;
    api.store()
        .delete_subscription(id)
        .await
        .map_err(|e| ApiError::store(&e))?;
    tracing::info!(%id, "subscription deleted");
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
