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

/// The target, refused (400) unless the webhook policy allows it: `https://`, no
/// credentials, not an internal address ([`super::targets`]). Names resolve later, on every
/// delivery.
fn check_target(api: &Ss12000Api, target: &str) -> Result<(), ApiError> {
    api.webhooks()
        .config()
        .targets
        .check_new(target)
        .map(drop)
        .map_err(|refusal| bad(refusal.to_string()))
}

/// Refuses a create beyond the caller's cap of live subscriptions (403, the only refusal the
/// reference OpenAPI declares for `POST /subscriptions`) or rate (429), and drops the caller's
/// lapsed subscriptions so they do not pile up.
async fn check_quota(api: &Ss12000Api, caller: &Caller) -> Result<(), ApiError> {
    let now = Timestamp::now();
    let mut live = 0usize;
    for subscription in api
        .store()
        .subscriptions()
        .await
        .map_err(|e| ApiError::store(&e))?
        .into_iter()
        .filter(|s| s.owner == caller.id)
    {
        if subscription.expires > now {
            live += 1;
        } else {
            api.store()
                .delete_subscription(&subscription.id)
                .await
                .map_err(|e| ApiError::store(&e))?;
        }
    }
    let cap = api.config().max_subscriptions;
    if live >= cap {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "too_many_subscriptions",
            format!(
                "{} already holds {live} live subscriptions, the most one client may hold \
                 ({cap}, the server's --max-subscriptions); delete one with DELETE \
                 /subscriptions/{{id}} or let one lapse",
                caller.id
            ),
        ));
    }
    if let Err(wait) = api
        .inner
        .creates
        .check(&caller.id, std::time::Instant::now())
    {
        let limit = api.config().subscription_creates;
        let secs = wait.as_secs().max(1);
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "subscription_rate",
            format!(
                "{} creates subscriptions faster than {:.0} a minute (at most {} at once; the \
                 server's --subscription-creates-per-minute); retry in {secs} s",
                caller.id,
                limit.per_second * 60.0,
                limit.burst
            ),
        );
        error.retry_after = Some(secs);
        return Err(error);
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
    let expires = requested_expiry(api, Some(&body))?;
    // Held from the count to the write, so concurrent creates cannot overshoot the cap.
    let _creating = api.inner.create_lock.lock().await;
    check_quota(api, caller).await?;
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        target: target.to_owned(),
        resource_types,
        expires,
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
