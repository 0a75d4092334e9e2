//! The stand-in's request handling: routing, limits, jobs and per-object checks.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{Job, RecordedRequest, Shared, State, Window, auth};
use kontosynk_client::push::ObjectType;

/// What a recorded request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /X/bulk` or `PUT /X/bulk`.
    BulkUpsert,
    /// `POST /X/bulk/delete`.
    BulkDelete,
    /// `GET /X/bulk/jobs/{id}`.
    JobStatus,
    /// `GET /X/bulk/jobs/{id}/isCompleted`.
    IsCompleted,
    /// `GET /X`, `GET /X/{id}`, `POST /X/lookup`.
    Read,
    /// `GET /alive`.
    Alive,
    /// Anything else (answered 404 / 405).
    Other,
}

impl RequestKind {
    fn rate_class_is_bulk(self) -> Option<bool> {
        match self {
            RequestKind::BulkUpsert
            | RequestKind::BulkDelete
            | RequestKind::JobStatus
            | RequestKind::IsCompleted => Some(true),
            RequestKind::Read => Some(false),
            RequestKind::Alive | RequestKind::Other => None,
        }
    }
}

enum Route {
    Alive,
    List(ObjectType),
    Lookup(ObjectType),
    ById(ObjectType, String),
    Bulk(ObjectType, bool),
    BulkDelete(ObjectType),
    Job(ObjectType, String),
    IsCompleted(ObjectType, String),
    NotFound,
    MethodNotAllowed,
}

impl Route {
    fn kind(&self) -> RequestKind {
        match self {
            Route::Alive => RequestKind::Alive,
            Route::List(_) | Route::Lookup(_) | Route::ById(..) => RequestKind::Read,
            Route::Bulk(..) => RequestKind::BulkUpsert,
            Route::BulkDelete(_) => RequestKind::BulkDelete,
            Route::Job(..) => RequestKind::JobStatus,
            Route::IsCompleted(..) => RequestKind::IsCompleted,
            Route::NotFound | Route::MethodNotAllowed => RequestKind::Other,
        }
    }

    fn object_type(&self) -> Option<ObjectType> {
        match self {
            Route::List(t)
            | Route::Lookup(t)
            | Route::ById(t, _)
            | Route::Bulk(t, _)
            | Route::BulkDelete(t)
            | Route::Job(t, _)
            | Route::IsCompleted(t, _) => Some(*t),
            _ => None,
        }
    }
}

fn route(method: &Method, path: &str) -> Route {
    let Some(rest) = path.strip_prefix(super::BASE_PATH) else {
        return Route::NotFound;
    };
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    match segments.as_slice() {
        ["alive"] if get => Route::Alive,
        [t, tail @ ..] => {
            let Some(t) = ObjectType::from_path(t) else {
                return Route::NotFound;
            };
            match tail {
                [] if get => Route::List(t),
                ["lookup"] if post => Route::Lookup(t),
                ["bulk"] if post => Route::Bulk(t, false),
                ["bulk"] if method == Method::PUT => Route::Bulk(t, true),
                ["bulk", "delete"] if post => Route::BulkDelete(t),
                ["bulk", "jobs", id] if get => Route::Job(t, (*id).to_owned()),
                ["bulk", "jobs", id, "isCompleted"] if get => {
                    Route::IsCompleted(t, (*id).to_owned())
                }
                [id] if get && *id != "bulk" && *id != "lookup" => Route::ById(t, (*id).to_owned()),
                []
                | ["lookup"]
                | ["bulk"]
                | ["bulk", "delete"]
                | ["bulk", "jobs", _]
                | ["bulk", "jobs", _, "isCompleted"]
                | [_] => Route::MethodNotAllowed,
                _ => Route::NotFound,
            }
        }
        _ => Route::NotFound,
    }
}

struct Reply {
    status: StatusCode,
    body: Value,
    location: Option<String>,
    job_id: Option<String>,
    ids: Vec<String>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body,
            location: None,
            job_id: None,
            ids: Vec::new(),
        }
    }

    fn error(status: StatusCode, id: &str, message: &str) -> Reply {
        Reply::json(
            status,
            json!([log_entry(id, status.as_u16(), message, None)]),
        )
    }
}

fn log_entry(id: &str, status: u16, message: &str, resource: Option<(ObjectType, &str)>) -> Value {
    let mut entry = json!({
        "id": id,
        "statusCode": status,
        "message": message,
        "severityLevel": if status < 400 { "Warning" } else { "Error" },
        "timeOfOccurance": now_rfc3339(),
    });
    if let Some((t, rid)) = resource {
        entry["resourceType"] = json!(t.resource_type());
        entry["resourceId"] = json!(rid);
    }
    entry
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Handles one request.
pub(super) async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let route = route(&parts.method, parts.uri.path());
    let kind = route.kind();
    let object_type = route.object_type();
    let query = parts.uri.query().unwrap_or_default().to_owned();

    let mut body_bytes = 0;
    let (reply, rate) = 'reply: {
        if matches!(route, Route::Alive) {
            break 'reply (Reply::json(StatusCode::OK, json!({"status": "UP"})), None);
        }
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(reason) = auth::check(authorization, &shared.config.jwks, &shared.base_url) {
            tracing::info!(reason, "stand-in: bearer token refused");
            break 'reply (
                Reply::error(StatusCode::FORBIDDEN, "5002", "Ogiltigt JWT bearer token."),
                None,
            );
        }
        let rate = match kind.rate_class_is_bulk() {
            Some(bulk) => {
                let limited = rate_limit(shared, bulk);
                if let Err(reset) = limited.1 {
                    break 'reply (
                        Reply::error(
                            StatusCode::TOO_MANY_REQUESTS,
                            "5021",
                            "Den högsta tillåtna antal förfrågningar har uppnåtts för den specifika URL:en.",
                        ),
                        Some((limited.0, 0, reset)),
                    );
                }
                Some((limited.0, limited.2, limited.3))
            }
            None => None,
        };
        let max = shared.config.max_request_bytes;
        let too_large = || {
            Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "5020",
                "Provisionerade uppgifter överstiger tillåten datamängd.",
            )
        };
        if parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > max)
        {
            break 'reply (too_large(), rate);
        }
        let bytes = match Limited::new(body, max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => break 'reply (too_large(), rate),
        };
        body_bytes = bytes.len();
        (answer(shared, route, &query, &bytes), rate)
    };

    {
        let mut state = shared.lock();
        let seq = state.requests.len() as u64;
        state.requests.push(RecordedRequest {
            seq,
            kind,
            object_type,
            job_id: reply.job_id.clone(),
            status: reply.status.as_u16(),
            body_bytes,
            ids: reply.ids.clone(),
        });
    }
    let mut response = Response::new(Full::new(Bytes::from(reply.body.to_string())));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    if let Some((limit, remaining, reset)) = rate {
        for (name, value) in [
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", format!("{reset:.3}")),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
    }
    response
}

/// Counts a request in its one-second window: (limit, Ok or Err(reset secs), remaining,
/// reset secs).
fn rate_limit(shared: &Shared, bulk: bool) -> (u32, Result<(), f64>, u32, f64) {
    let elapsed = shared.started.elapsed();
    let second = elapsed.as_secs();
    let reset = 1.0 - f64::from(elapsed.subsec_millis()) / 1000.0;
    let limit = if bulk {
        shared.config.bulk_per_sec
    } else {
        shared.config.read_per_sec
    };
    let mut state = shared.lock();
    if state.failures.rate_limit_next > 0 {
        state.failures.rate_limit_next -= 1;
        return (limit, Err(reset), 0, reset);
    }
    let window: &mut Window = if bulk {
        &mut state.bulk_window
    } else {
        &mut state.read_window
    };
    if window.second != second {
        *window = Window { second, count: 0 };
    }
    if window.count >= limit {
        return (limit, Err(reset), 0, reset);
    }
    window.count += 1;
    (limit, Ok(()), limit - window.count, reset)
}

fn answer(shared: &Shared, route: Route, query: &str, body: &[u8]) -> Reply {
    let mut state = shared.lock();
    match route {
        Route::Alive => Reply::json(StatusCode::OK, json!({"status": "UP"})),
        Route::NotFound => Reply::error(StatusCode::NOT_FOUND, "4000", "Resursen finns inte."),
        Route::MethodNotAllowed => Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "4050",
            "Metoden stöds inte för resursen.",
        ),
        Route::List(t) => list(&state, t, query),
        Route::ById(t, id) => {
            if uuid::Uuid::parse_str(&id).is_err() {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "2011",
                    "Ogiltigt format på ´path´ parameter <id>.",
                );
            }
            match state.objects.get(&t).and_then(|o| o.get(&id)) {
                Some(v) => Reply::json(StatusCode::OK, v.clone()),
                None => Reply::error(StatusCode::NOT_FOUND, "4001", "Posten hittades inte."),
            }
        }
        Route::Lookup(t) => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "2010",
                    "Ogiltigt format på request body.",
                );
            };
            let ids: Vec<&str> = request
                .get("ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let found: Vec<Value> = ids
                .iter()
                .filter_map(|id| state.objects.get(&t)?.get(*id).cloned())
                .collect();
            Reply::json(StatusCode::OK, Value::Array(found))
        }
        Route::Bulk(t, is_put) => {
            let update_if_exists = is_put || query.split('&').any(|p| p == "updateIfExists=true");
            let items = match parse_bulk(body) {
                Ok(items) => items,
                Err(reply) => return *reply,
            };
            let items: Vec<(String, Option<Value>)> = items
                .into_iter()
                .map(|v| {
                    let id = v
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    (id, Some(v))
                })
                .collect();
            submit(
                &mut state,
                &shared.base_url,
                t,
                false,
                update_if_exists,
                items,
            )
        }
        Route::BulkDelete(t) => {
            let items = match parse_bulk(body) {
                Ok(items) => items,
                Err(reply) => return *reply,
            };
            let items: Vec<(String, Option<Value>)> = items
                .into_iter()
                .map(|v| (v.as_str().unwrap_or_default().to_owned(), None))
                .collect();
            submit(&mut state, &shared.base_url, t, true, false, items)
        }
        Route::Job(t, id) | Route::IsCompleted(t, id)
            if state.jobs.get(&id).is_none_or(|j| j.object_type != t) =>
        {
            let mut reply =
                Reply::error(StatusCode::NOT_FOUND, "4001", "Bulk-jobbet hittades inte.");
            reply.job_id = Some(id);
            reply
        }
        Route::IsCompleted(_, id) => {
            let done = poll(&mut state, &id);
            let mut reply = Reply::json(StatusCode::OK, json!(done));
            reply.job_id = Some(id);
            reply
        }
        Route::Job(_, id) => {
            poll(&mut state, &id);
            let mut reply = Reply::json(StatusCode::OK, job_status(&state, &id));
            reply.job_id = Some(id);
            reply
        }
    }
}

fn list(state: &State, t: ObjectType, query: &str) -> Reply {
    let mut limit = 50usize;
    let mut after: Option<String> = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => limit = n,
                _ => {
                    return Reply::error(
                        StatusCode::BAD_REQUEST,
                        "3085",
                        "Värdet för <limit> måste vara ett tal mellan 1 och 100 (inklusive).",
                    );
                }
            },
            "pageToken" => {
                let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(value)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match decoded {
                    Some(id) => after = Some(id),
                    None => {
                        return Reply::error(
                            StatusCode::BAD_REQUEST,
                            "2012",
                            "Ogiltigt pageToken.",
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let empty = BTreeMap::new();
    let objects = state.objects.get(&t).unwrap_or(&empty);
    let page: Vec<(&String, &Value)> = objects
        .range::<String, _>((
            after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            std::ops::Bound::Unbounded,
        ))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    let data: Vec<Value> = page.iter().take(limit).map(|(_, v)| (*v).clone()).collect();
    let token = if more {
        page.get(limit - 1)
            .map(|(id, _)| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes()))
    } else {
        None
    };
    Reply::json(StatusCode::OK, json!({"data": data, "pageToken": token}))
}

fn parse_bulk(body: &[u8]) -> Result<Vec<Value>, Box<Reply>> {
    let invalid = || {
        Box::new(Reply::error(
            StatusCode::BAD_REQUEST,
            "2000",
            "Ogiltigt format på request body: förväntade {\"data\": [...]}.",
        ))
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    match value.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => Ok(items.clone()),
        _ => Err(invalid()),
    }
}

fn submit(
    state: &mut State,
    base_url: &str,
    t: ObjectType,
    delete: bool,
    update_if_exists: bool,
    items: Vec<(String, Option<Value>)>,
) -> Reply {
    let job_id = uuid::Uuid::new_v4().to_string();
    let ids = items.iter().map(|(id, _)| id.clone()).collect();
    state.jobs.insert(
        job_id.clone(),
        Job {
            object_type: t,
            delete,
            update_if_exists,
            items,
            polls_left: state.job_polls,
            results: None,
        },
    );
    let mut reply = Reply::json(
        StatusCode::ACCEPTED,
        json!({
            "jobId": job_id,
            "message": "Anropet har tagits emot. Återkoppling görs asynkront. Kontrollera status av asynkrona processen genom att följa URL-adressen i ’Location’-header.",
        }),
    );
    reply.location = Some(format!("{base_url}/{t}/bulk/jobs/{job_id}"));
    reply.job_id = Some(job_id);
    reply.ids = ids;
    reply
}

/// Counts a poll; completes the job (applying its objects) when its polls are used up.
fn poll(state: &mut State, job_id: &str) -> bool {
    let Some(job) = state.jobs.get_mut(job_id) else {
        return false;
    };
    if job.results.is_some() {
        return true;
    }
    if job.polls_left > 0 {
        job.polls_left -= 1;
        return false;
    }
    let (t, delete, update, items) = (
        job.object_type,
        job.delete,
        job.update_if_exists,
        std::mem::take(&mut job.items),
    );
    let results: Vec<Value> = items
        .into_iter()
        .map(|(id, object)| process(state, t, delete, update, &id, object))
        .collect();
    if let Some(job) = state.jobs.get_mut(job_id) {
        job.results = Some(results);
    }
    true
}

fn job_status(state: &State, job_id: &str) -> Value {
    let Some(job) = state.jobs.get(job_id) else {
        return Value::Null;
    };
    let responses: Vec<Value> = match &job.results {
        Some(results) => results.clone(),
        None => job
            .items
            .iter()
            .map(|(id, _)| json!({"id": id, "response": {"status": "Pending"}, "meta": meta()}))
            .collect(),
    };
    json!({"jobId": job_id, "responses": responses})
}

fn meta() -> Value {
    let now = now_rfc3339();
    json!({"created": now, "modified": now})
}

/// One object's result, applying it to the stored objects when it succeeds.
fn process(
    state: &mut State,
    t: ObjectType,
    delete: bool,
    update_if_exists: bool,
    id: &str,
    object: Option<Value>,
) -> Value {
    let result = |status: &str, code: u16, errors: Vec<Value>, warnings: Vec<Value>| {
        json!({"id": id, "response": {"status": status, "statusCode": code,
               "errors": errors, "warnings": warnings}, "meta": meta()})
    };
    let error = |code: u16, number: &str, message: &str| {
        result(
            "Error",
            code,
            vec![log_entry(number, code, message, Some((t, id)))],
            Vec::new(),
        )
    };
    if uuid::Uuid::parse_str(id).is_err() {
        return error(
            400,
            "2011",
            "Ogiltigt format på id. Format ska vara UUID enligt RFC4122.",
        );
    }
    if let Some(message) = state.failures.objects.get(id) {
        return error(400, "3000", &message.clone());
    }
    let exists = state.objects.get(&t).is_some_and(|o| o.contains_key(id));
    if delete {
        if !exists {
            return error(404, "4001", "Posten hittades inte.");
        }
        if let Some(objects) = state.objects.get_mut(&t) {
            objects.remove(id);
        }
        return result("Success", 200, Vec::new(), Vec::new());
    }
    let Some(object) = object else {
        return error(400, "2000", "Objektet saknas.");
    };
    if exists && !update_if_exists {
        return error(409, "4090", "Posten finns redan (updateIfExists=false).");
    }
    if let Some(field) = missing_required(t, &object) {
        return error(
            400,
            "3001",
            &format!("Obligatoriskt attribut saknas: {field}."),
        );
    }
    let missing = |state: &State, kind: ObjectType, id: Option<&str>| {
        id.is_none_or(|id| !state.objects.get(&kind).is_some_and(|o| o.contains_key(id)))
    };
    let mut warnings = Vec::new();
    match t {
        ObjectType::Duties => {
            let person = object.pointer("/person/id").and_then(Value::as_str);
            if missing(state, ObjectType::Persons, person) {
                return error(400, "3010", "Personen som tjänstgöringen avser finns inte.");
            }
        }
        ObjectType::Groups => {
            for m in object
                .get("groupMemberships")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let person = m.pointer("/person/id").and_then(Value::as_str);
                if missing(state, ObjectType::Persons, person) {
                    warnings.push(log_entry(
                        "3011",
                        400,
                        &format!("Gruppmedlem {} finns inte.", person.unwrap_or("?")),
                        Some((t, id)),
                    ));
                }
            }
        }
        ObjectType::Activities => {
            for g in object
                .get("groups")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if missing(
                    state,
                    ObjectType::Groups,
                    g.get("id").and_then(Value::as_str),
                ) {
                    return error(400, "3012", "En grupp i aktiviteten finns inte.");
                }
            }
            for teacher in object
                .get("teachers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let duty = teacher.pointer("/duty/id").and_then(Value::as_str);
                if missing(state, ObjectType::Duties, duty) {
                    return error(400, "3013", "En lärares tjänstgöring finns inte.");
                }
            }
        }
        ObjectType::Persons => {}
    }
    state
        .objects
        .entry(t)
        .or_default()
        .insert(id.to_owned(), object);
    let code = if exists { 200 } else { 201 };
    if warnings.is_empty() {
        result("Success", code, Vec::new(), warnings)
    } else {
        result("Warning", code, Vec::new(), warnings)
    }
}

/// The first required field (per the API's schemas) the object lacks.
fn missing_required(t: ObjectType, object: &Value) -> Option<&'static str> {
    let required: &[&'static str] = match t {
        ObjectType::Persons => &[
            "/civicNo/value",
            "/givenName",
            "/familyName",
            "/eduPersonPrincipalNames/0",
        ],
        ObjectType::Duties => &["/person/id", "/dutyAt/id", "/dutyRole"],
        ObjectType::Groups => &[
            "/displayName",
            "/groupType",
            "/schoolType",
            "/organisation/id",
        ],
        ObjectType::Activities => &[
            "/displayName",
            "/activityType",
            "/groups/0/id",
            "/organisation/id",
            "/parentActivity/id",
        ],
    };
    required
        .iter()
        .find(|p| object.pointer(p).is_none_or(Value::is_null))
        .copied()
}
