//! The seven resource endpoints with the statuses EgilSCIM depends on (EGIL-NOTES.md):
//! `POST /X` 201 / 409, `PUT /X/{id}` exactly 200 / 404, `PUT /X` by the body's `externalId`,
//! `DELETE /X/{id}` exactly 204 / 404, `GET /X` as a SCIM ListResponse with
//! `startIndex`/`count` paging, `GET /X/{id}`, 415 for a body that is not JSON, 501 for PATCH.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use ss12000::egil::EgilCreated;
use ss12000::{EgilResource, EgilTenant};

use super::EgilServer;
use super::error::{ScimError, scim_response};
use super::references::dangling;
use super::validate::{key_of, validate};
use kontosynk_framework::RequestBody;
use kontosynk_framework::response::{Body, empty};

/// The SCIM list response schema.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The path of the per-tenant report of dangling references.
pub const REPORT_PATH: &str = "DanglingReferences";

/// Dispatches a request of `tenant`.
pub(super) async fn route(
    server: &EgilServer,
    tenant: &EgilTenant,
    request: Request<RequestBody>,
) -> Result<Response<Body>, ScimError> {
    let path = request.uri().path().to_owned();
    let base = &server.config().base_path;
    let rest = match path.strip_prefix(base.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => {
            return Err(ScimError::not_found(format!(
                "no endpoint {path}; the EGIL endpoints are under {base}/"
            )));
        }
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let method = request.method().clone();
    if let [REPORT_PATH] = segments.as_slice() {
        return match method {
            Method::GET => report(server, tenant).await,
            _ => Err(method_not_allowed(&method, &path, "GET")),
        };
    }
    let (resource, id) = match segments.as_slice() {
        [name] => (resource_of(name, &path)?, None),
        [name, id] => (resource_of(name, &path)?, Some((*id).to_owned())),
        _ => return Err(ScimError::not_found(format!("no endpoint {path}"))),
    };
    match (method, id) {
        (Method::GET, None) => list(server, tenant, resource, request.uri().query()).await,
        (Method::GET, Some(id)) => get(server, tenant, resource, &id).await,
        (Method::POST, None) => {
            let body = read_resource(request).await?;
            create(server, tenant, resource, body).await
        }
        (Method::PUT, id) => {
            let body = read_resource(request).await?;
            replace(server, tenant, resource, id.as_deref(), body).await
        }
        (Method::DELETE, Some(id)) => delete(server, tenant, resource, &id).await,
        (Method::PATCH, _) => Err(ScimError::new(
            StatusCode::NOT_IMPLEMENTED,
            "PATCH is not supported: send the whole resource with PUT",
        )),
        (method, None) => Err(method_not_allowed(&method, &path, "GET, POST, PUT")),
        (method, Some(_)) => Err(method_not_allowed(&method, &path, "GET, PUT, DELETE")),
    }
}

fn resource_of(segment: &str, path: &str) -> Result<EgilResource, ScimError> {
    EgilResource::from_path(segment).ok_or_else(|| {
        ScimError::not_found(format!(
            "no endpoint {path}; the EGIL resources are {}",
            EgilResource::SEND_ORDER.map(EgilResource::path).join(", ")
        ))
    })
}

fn method_not_allowed(method: &Method, path: &str, allow: &'static str) -> ScimError {
    ScimError {
        allow: Some(allow),
        ..ScimError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {path}; it accepts {allow}"),
        )
    }
}

/// The body of a POST or PUT: JSON with a JSON media type (415 otherwise).
async fn read_resource(request: Request<RequestBody>) -> Result<serde_json::Value, ScimError> {
    let media = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match media.as_deref() {
        Some("application/scim+json" | "application/json") => {}
        other => {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the body must be sent as application/scim+json (or application/json), not {}",
                    other.unwrap_or("without a Content-Type")
                ),
            ));
        }
    }
    let bytes: Bytes = request
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ScimError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is larger than this server accepts (--max-body)",
                )
            } else {
                ScimError::invalid_syntax(format!("cannot read the request body: {e}"))
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

fn location(server: &EgilServer, resource: EgilResource, id: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{}/{}/{}",
        server.config().base_path,
        resource.path(),
        id
    ))
    .ok()
}

async fn create(
    server: &EgilServer,
    tenant: &EgilTenant,
    resource: EgilResource,
    body: serde_json::Value,
) -> Result<Response<Body>, ScimError> {
    let valid = validate(resource, body, None)?;
    let created = server
        .store()
        .egil_create(
            tenant,
            resource,
            &valid.key,
            &valid.text,
            server.config().max_objects_per_tenant,
        )
        .await
        .map_err(|e| ScimError::store(&e))?;
    match created {
        EgilCreated::Created => {}
        EgilCreated::Exists => {
            return Err(ScimError {
                scim_type: Some("uniqueness"),
                ..ScimError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "{resource}/{} exists: update it with PUT /{resource}/{}",
                        valid.key, valid.key
                    ),
                )
            });
        }
        EgilCreated::TenantFull => {
            tracing::warn!(tenant = %tenant.id, "EGIL tenant is at its object limit");
            return Err(ScimError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "this client already has the most objects this server keeps per client ({}); delete objects it no longer needs, or ask the operator to raise --max-objects-per-tenant",
                    server.config().max_objects_per_tenant.unwrap_or_default()
                ),
            ));
        }
    }
    let mut response = scim_response(StatusCode::CREATED, valid.text);
    if let Some(location) = location(server, resource, &valid.key) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn replace(
    server: &EgilServer,
    tenant: &EgilTenant,
    resource: EgilResource,
    path_id: Option<&str>,
    body: serde_json::Value,
) -> Result<Response<Body>, ScimError> {
    let path_key = match path_id {
        Some(id) => Some(key_of(id).ok_or_else(|| missing(resource, id))?),
        None => None,
    };
    let valid = validate(resource, body, path_key.as_deref())?;
    let replaced = server
        .store()
        .egil_replace(tenant, resource, &valid.key, &valid.text)
        .await
        .map_err(|e| ScimError::store(&e))?;
    if !replaced {
        return Err(ScimError::not_found(format!(
            "no {resource}/{}: create it with POST /{resource}",
            valid.key
        )));
    }
    Ok(scim_response(StatusCode::OK, valid.text))
}

fn missing(resource: EgilResource, id: &str) -> ScimError {
    ScimError::not_found(format!("no {resource}/{id}"))
}

async fn delete(
    server: &EgilServer,
    tenant: &EgilTenant,
    resource: EgilResource,
    id: &str,
) -> Result<Response<Body>, ScimError> {
    let key = key_of(id).ok_or_else(|| missing(resource, id))?;
    let deleted = server
        .store()
        .egil_delete(&tenant.id, resource, &key)
        .await
        .map_err(|e| ScimError::store(&e))?;
    if !deleted {
        return Err(missing(resource, id));
    }
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

async fn get(
    server: &EgilServer,
    tenant: &EgilTenant,
    resource: EgilResource,
    id: &str,
) -> Result<Response<Body>, ScimError> {
    let key = key_of(id).ok_or_else(|| missing(resource, id))?;
    match server
        .store()
        .egil_get(&tenant.id, resource, &key)
        .await
        .map_err(|e| ScimError::store(&e))?
    {
        Some(text) => Ok(scim_response(StatusCode::OK, text)),
        None => Err(missing(resource, id)),
    }
}

/// `startIndex` (1-based, default 1) and `count` (default and cap from the configuration).
fn paging(query: Option<&str>, default: usize, max: usize) -> Result<(u64, usize), ScimError> {
    let mut start = 1u64;
    let mut count = default;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = |what: &str| {
            value.parse::<u64>().map_err(|_| {
                ScimError::invalid_value(format!("{what} must be a whole number, not {value:?}"))
            })
        };
        match name {
            "startIndex" => start = number("startIndex")?.max(1),
            "count" => {
                count = usize::try_from(number("count")?)
                    .unwrap_or(usize::MAX)
                    .min(max)
            }
            "filter" | "sortBy" | "sortOrder" | "attributes" | "excludedAttributes" => {
                return Err(ScimError {
                    scim_type: Some("invalidFilter"),
                    ..ScimError::new(
                        StatusCode::BAD_REQUEST,
                        format!("{name} is not supported; list with startIndex and count"),
                    )
                });
            }
            _ => {}
        }
    }
    Ok((start, count))
}

async fn list(
    server: &EgilServer,
    tenant: &EgilTenant,
    resource: EgilResource,
    query: Option<&str>,
) -> Result<Response<Body>, ScimError> {
    let config = server.config();
    let (start, count) = paging(query, config.default_count, config.max_count)?;
    let page = server
        .store()
        .egil_list(&tenant.id, resource, start - 1, count)
        .await
        .map_err(|e| ScimError::store(&e))?;
    let mut text =
        String::with_capacity(page.bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 160);
    text.push_str("{\"schemas\":[\"");
    text.push_str(LIST_SCHEMA);
    text.push_str(&format!(
        "\"],\"totalResults\":{},\"startIndex\":{start},\"itemsPerPage\":{},\"Resources\":[",
        page.total,
        page.bodies.len()
    ));
    for (i, body) in page.bodies.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(body);
    }
    text.push_str("]}");
    Ok(scim_response(StatusCode::OK, text))
}

async fn report(server: &EgilServer, tenant: &EgilTenant) -> Result<Response<Body>, ScimError> {
    let report = dangling(server.store(), &tenant.id, server.config().max_report)
        .await
        .map_err(|e| ScimError::store(&e))?;
    let body = serde_json::json!({
        "tenant": tenant.id,
        "totalResults": report.total,
        "byResource": report.by_resource,
        "references": report.references,
    });
    Ok(scim_response(StatusCode::OK, body.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paging_defaults_caps_and_refuses() {
        assert_eq!(super::paging(None, 100, 1000).unwrap(), (1, 100));
        assert_eq!(
            super::paging(Some("startIndex=0&count=5000"), 100, 1000).unwrap(),
            (1, 1000)
        );
        assert_eq!(
            super::paging(Some("startIndex=201&count=0"), 100, 1000).unwrap(),
            (201, 0)
        );
        assert!(super::paging(Some("count=-1"), 100, 1000).is_err());
        assert!(super::paging(Some("filter=userName%20eq%20%22x%22"), 100, 1000).is_err());
    }
}
