//! Routing and the read endpoints (`/{collection}`, `/{collection}/{id}`, lookup,
//! `/deletedEntities`).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use ss12000::Collection;

use super::error::ApiError;
use super::query::parse_query;
use super::{Caller, Ss12000Api, paging, records, subscriptions};
use kontosynk_framework::RequestBody;
use kontosynk_framework::response::{Body, json_text};

/// Dispatches a request to its endpoint.
pub(super) async fn route(
    api: &Ss12000Api,
    caller: &Caller,
    request: Request<RequestBody>,
) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path();
    let base = &api.config().base_path;
    let rest = match path.strip_prefix(base.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
        _ => {
            return Err(ApiError::not_found(format!(
                "no endpoint {path}; the API is under {base}/"
            )));
        }
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let method = request.method().clone();
    match (segments.as_slice(), &method) {
        (["deletedEntities"], &Method::GET) => deleted(api, &request).await,
        (["subscriptions"], &Method::POST) => {
            let body = read_json(request).await?;
            subscriptions::create(api, caller, body).await
        }
        (["subscriptions", id], &Method::PATCH) => {
            let id = (*id).to_owned();
            let body = read_json_optional(request).await?;
            subscriptions::extend(api, caller, &id, body).await
        }
        (["subscriptions", id], &Method::DELETE) => subscriptions::delete(api, caller, id).await,
        (["log"], &Method::POST) => {
            let body = read_json(request).await?;
            records::log(api, caller, body).await
        }
        (["statistics"], &Method::POST) => {
            let body = read_json(request).await?;
            records::statistics(api, caller, body).await
        }
        (["deletedEntities"], _) => Err(method_not_allowed(&method, path, "GET")),
        (["subscriptions"] | ["log"] | ["statistics"], _) => {
            Err(method_not_allowed(&method, path, "POST"))
        }
        (["subscriptions", _], _) => Err(method_not_allowed(&method, path, "PATCH, DELETE")),
        (
            [
                "deletedEntities" | "subscriptions" | "log" | "statistics",
                ..,
            ],
            _,
        ) => Err(ApiError::not_found(format!("no endpoint {path}"))),
        ([collection], &Method::GET) => list(api, &collection_of(collection)?, &request).await,
        ([collection, "lookup"], &Method::POST) => {
            let collection = collection_of(collection)?;
            let body = read_json(request).await?;
            lookup(api, &collection, body).await
        }
        ([collection, id], &Method::GET) => get(api, &collection_of(collection)?, id).await,
        // GET reads the object whose id is `lookup`.
        ([_, "lookup"], _) => Err(method_not_allowed(&method, path, "GET, POST")),
        ([_] | [_, _], _) => Err(method_not_allowed(&method, path, "GET")),
        _ => Err(ApiError::not_found(format!("no endpoint {path}"))),
    }
}

/// 405 with the `Allow` header listing what `path` accepts.
fn method_not_allowed(method: &Method, path: &str, allow: &'static str) -> ApiError {
    ApiError {
        allow: Some(allow),
        ..ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not supported on {path}; it accepts {allow}"),
        )
    }
}

fn collection_of(segment: &str) -> Result<Collection, ApiError> {
    Collection::from_path(segment).map_err(|e| ApiError::not_found(e.to_string()))
}

async fn read_body(request: Request<RequestBody>) -> Result<Bytes, ApiError> {
    request
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is too large",
                )
            } else {
                ApiError::bad_request(
                    "body_unreadable",
                    format!("cannot read the request body: {e}"),
                )
            }
        })
}

/// The request body as JSON (required).
pub(super) async fn read_json(
    request: Request<RequestBody>,
) -> Result<serde_json::Value, ApiError> {
    let bytes = read_body(request).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the request body is not JSON: {e}"))
    })
}

/// The request body as JSON, `None` when empty.
async fn read_json_optional(
    request: Request<RequestBody>,
) -> Result<Option<serde_json::Value>, ApiError> {
    let bytes = read_body(request).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the request body is not JSON: {e}"))
    })
}

async fn list(
    api: &Ss12000Api,
    collection: &Collection,
    request: &Request<RequestBody>,
) -> Result<Response<Body>, ApiError> {
    let params = parse_query(request.uri().query())?;
    let list = paging::list_request(collection, &params, api.config().pages)?;
    let page_size = list.query.limit;
    let mut query = list.query.clone();
    // One more than the page tells whether another page follows.
    query.limit = page_size + 1;
    let mut objects = api
        .store()
        .list(collection, &query)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let more = objects.len() > page_size;
    objects.truncate(page_size);
    let mut text =
        String::with_capacity(objects.iter().map(|o| o.json().len() + 1).sum::<usize>() + 64);
    text.push_str("{\"data\":[");
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(object.json());
    }
    text.push(']');
    if more && let Some(last) = objects.last() {
        text.push_str(",\"pageToken\":");
        text.push_str(&serde_json::Value::String(list.next_token(last.id())).to_string());
    }
    text.push('}');
    Ok(json_text(StatusCode::OK, text))
}

async fn get(
    api: &Ss12000Api,
    collection: &Collection,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let id = super::query::percent_decode(id)?;
    match api
        .store()
        .get(collection, &id)
        .await
        .map_err(|e| ApiError::store(&e))?
    {
        Some(object) => Ok(json_text(StatusCode::OK, object.json().to_owned())),
        None => Err(ApiError::not_found(format!(
            "no {} with id {id}",
            collection.entity_type()
        ))),
    }
}

async fn lookup(
    api: &Ss12000Api,
    collection: &Collection,
    body: serde_json::Value,
) -> Result<Response<Body>, ApiError> {
    let bad = |message: String| ApiError::bad_request("invalid_lookup", message);
    let ids = match &body {
        serde_json::Value::Object(map) => {
            if let Some(other) = map.keys().find(|k| k.as_str() != "ids") {
                return Err(bad(format!(
                    "lookup by {other} is not supported; send {{\"ids\": [\"<uuid>\", ...]}}"
                )));
            }
            map.get("ids")
        }
        _ => None,
    }
    .and_then(|ids| ids.as_array())
    .ok_or_else(|| bad("the body must be {\"ids\": [\"<uuid>\", ...]}".into()))?;
    if ids.len() > api.config().max_lookup_ids {
        return Err(bad(format!(
            "at most {} ids per lookup; got {}",
            api.config().max_lookup_ids,
            ids.len()
        )));
    }
    let ids = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            id.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("ids[{i}] is not a string")))
        })
        .collect::<Result<Vec<String>, ApiError>>()?;
    let objects = api
        .store()
        .lookup(collection, &ids)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let mut text = String::from("{\"data\":[");
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(object.json());
    }
    text.push_str("]}");
    Ok(json_text(StatusCode::OK, text))
}

async fn deleted(
    api: &Ss12000Api,
    request: &Request<RequestBody>,
) -> Result<Response<Body>, ApiError> {
    let params = parse_query(request.uri().query())?;
    let deleted = paging::deleted_request(&params, api.config().pages)?;
    for collection in &deleted.query.collections {
        if !api.is_known(collection).await? {
            return Err(ApiError::bad_request(
                "invalid_entities",
                format!(
                    "{} is not an entity type of this API (Person, Group, Duty, Activity, Organisation)",
                    collection.entity_type()
                ),
            ));
        }
    }
    let page_size = deleted.query.limit;
    let mut query = deleted.query.clone();
    query.limit = page_size + 1;
    let mut tombstones = api
        .store()
        .deleted(&query)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let more = tombstones.len() > page_size;
    tombstones.truncate(page_size);
    let mut data = serde_json::Map::new();
    for collection in &deleted.query.collections {
        data.insert(
            collection.path().to_owned(),
            serde_json::Value::Array(Vec::new()),
        );
    }
    for tombstone in &tombstones {
        if let serde_json::Value::Array(ids) = data
            .entry(tombstone.collection.path().to_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
        {
            ids.push(serde_json::Value::String(tombstone.id.clone()));
        }
    }
    let mut body = serde_json::json!({"data": data});
    if more && let Some(last) = tombstones.last() {
        body["pageToken"] = serde_json::Value::String(deleted.next_token(last));
    }
    Ok(json_text(StatusCode::OK, body.to_string()))
}
