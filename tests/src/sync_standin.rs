//! A LOCAL STAND-IN of an SS 12000 server for the sync tests: a small hand-written HTTP/1.1
//! server over loopback that implements the documented listing protocol (keyset paging with
//! opaque base64 `pageToken`s containing `+/=`, `meta.modified.after`, `deletedEntities`) and
//! can misbehave in the ways real servers do (PROTOCOL-NOTES §4): `null` or `""` tokens on
//! the last page, a full last page followed by an empty page, `organisations` instead of
//! `data`, a repeated token, the misspelt `activitites`, errors and hangs on chosen requests.
//! It refuses (400) filters combined with `pageToken`, as the reference API does.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use ss12000::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the last page ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastPage {
    /// No `pageToken` member.
    Omit,
    /// `"pageToken": null`.
    Null,
    /// `"pageToken": ""`.
    Empty,
}

/// Ways to misbehave.
#[derive(Debug, Clone)]
pub struct Quirks {
    pub last_page: LastPage,
    /// A full last page still carries a token, whose page is empty.
    pub empty_page_after_full: bool,
    /// Organisations come as `{"organisations": [...]}`.
    pub organisations_key: bool,
    /// Every page of this collection returns the same token (a paging loop).
    pub repeat_token_in: Option<String>,
    /// Every page of this collection holds `limit` new objects and a new token, forever
    /// (a server that never stops paging).
    pub endless_in: Option<String>,
    /// `deletedEntities` spells activities `activitites`.
    pub misspelt_activities: bool,
    /// Answer 500 to the n-th request (1-based) of a listing page.
    pub fail_request: Option<usize>,
    /// Never answer the n-th request (1-based) of a listing page.
    pub hang_request: Option<usize>,
    /// Answer 400 to the next request carrying a `pageToken` (a server restarted and forgot
    /// its tokens); one-shot.
    pub refuse_next_token: bool,
    /// `deletedEntities` page size cap (ids per page, over all collections).
    pub deleted_page_size: usize,
}

impl Default for Quirks {
    fn default() -> Quirks {
        Quirks {
            last_page: LastPage::Omit,
            empty_page_after_full: false,
            organisations_key: false,
            repeat_token_in: None,
            endless_in: None,
            misspelt_activities: false,
            fail_request: None,
            hang_request: None,
            refuse_next_token: false,
            deleted_page_size: 1000,
        }
    }
}

/// A change the server makes when a given listing request arrives (concurrent writes).
pub type Hook = Box<dyn FnOnce(&mut Data) + Send>;

/// The server's data.
#[derive(Default)]
pub struct Data {
    /// Run before answering the n-th (1-based) listing page request.
    pub hooks: Vec<(usize, Hook)>,
    /// collection path → id → object JSON.
    pub objects: BTreeMap<String, BTreeMap<String, Value>>,
    /// Tombstones: (collection path, id, deleted at).
    pub deleted: Vec<(String, String, Timestamp)>,
    pub quirks: Quirks,
    /// Every request target (path and query), in order.
    pub requests: Vec<String>,
    /// Listing page requests so far.
    pub page_requests: usize,
    /// Bodies POSTed to `/statistics` and `/log`.
    pub posted: Vec<(String, Value)>,
}

impl Data {
    /// Inserts or replaces an object, stamping `meta.modified` (and `meta.created` when new).
    pub fn put(&mut self, collection: &str, id: &str, fields: Value, at: Timestamp) {
        let objects = self.objects.entry(collection.to_owned()).or_default();
        let created = objects
            .get(id)
            .and_then(|o| o["meta"]["created"].as_str().map(str::to_owned))
            .unwrap_or_else(|| at.to_string());
        let mut object = json!({"id": id});
        if let (Value::Object(target), Value::Object(extra)) = (&mut object, fields) {
            target.extend(extra);
        }
        object["meta"] = json!({"created": created, "modified": at.to_string()});
        objects.insert(id.to_owned(), object);
    }

    /// Deletes an object, recording a tombstone.
    pub fn remove(&mut self, collection: &str, id: &str, at: Timestamp) {
        if let Some(objects) = self.objects.get_mut(collection) {
            objects.remove(id);
        }
        self.deleted
            .push((collection.to_owned(), id.to_owned(), at));
    }

    /// The live objects of a collection, by id.
    pub fn live(&self, collection: &str) -> BTreeMap<String, Value> {
        self.objects.get(collection).cloned().unwrap_or_default()
    }
}

/// A running stand-in server.
pub struct StandIn {
    pub addr: SocketAddr,
    pub data: Arc<Mutex<Data>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Starts a server on 127.0.0.1 with `data`.
    pub async fn start(data: Data) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data = Arc::new(Mutex::new(data));
        let shared = Arc::clone(&data);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = serve(stream, shared).await;
                });
            }
        });
        StandIn { addr, data, task }
    }

    /// The base URL (with a version suffix, as real registrations have).
    pub fn base(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}/ss12000/v2.0", self.addr)).unwrap()
    }

    /// Locks the data.
    pub fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap()
    }
}

async fn serve(mut stream: TcpStream, data: Arc<Mutex<Data>>) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or("").split(' ');
        let method = request_line.next().unwrap_or("").to_owned();
        let target = request_line.next().unwrap_or("").to_owned();
        let length: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await?;
        let (status, reply, hang) = {
            let mut data = data.lock().unwrap();
            handle(&mut data, &method, &target, &body)
        };
        if hang {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        let reply = reply.to_string();
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\ndate: {date}\r\n\r\n{reply}",
            reply.len()
        );
        stream.write_all(response.as_bytes()).await?;
    }
}

/// Page `n` of a listing that never ends: `limit` objects no earlier page had, and a new token.
pub fn endless_page(n: usize, limit: usize) -> Value {
    let data: Vec<Value> = (0..limit)
        .map(|i| json!({"id": format!("junk-{n}-{i}"), "displayName": "junk"}))
        .collect();
    json!({"data": data, "pageToken": token_for(&format!("endless-{n}|"))})
}

fn token_for(last_id: &str) -> String {
    format!("+/{}", STANDARD.encode(format!("after:{last_id}")))
}

fn id_from_token(token: &str) -> Option<String> {
    let bytes = STANDARD.decode(token.strip_prefix("+/")?).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("after:")
        .map(str::to_owned)
}

/// Answers one request: (status, body, hang).
fn handle(data: &mut Data, method: &str, target: &str, body: &[u8]) -> (u16, Value, bool) {
    data.requests.push(target.to_owned());
    let url = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
    let Some(path) = url.path().strip_prefix("/ss12000/v2.0/") else {
        return (404, json!({"error": "not found"}), false);
    };
    let path = path.to_owned();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if method == "POST" && (path == "statistics" || path == "log") {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        data.posted.push((path, value));
        return (201, json!({}), false);
    }
    if method != "GET" {
        return (405, json!({}), false);
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let token = param("pageToken");
    if token.is_some() && query.iter().any(|(n, _)| n != "pageToken" && n != "limit") {
        return (
            400,
            json!({"error": "filters cannot be combined with pageToken"}),
            false,
        );
    }
    if token.is_some() && data.quirks.refuse_next_token {
        data.quirks.refuse_next_token = false;
        return (400, json!({"error": "unknown pageToken"}), false);
    }
    data.page_requests += 1;
    let n = data.page_requests;
    if let Some(position) = data.hooks.iter().position(|(at, _)| *at == n) {
        let (_, hook) = data.hooks.remove(position);
        hook(data);
    }
    if data.quirks.fail_request == Some(n) {
        return (500, json!({"error": "boom"}), false);
    }
    let hang = data.quirks.hang_request == Some(n);
    let limit: usize = param("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    if path == "deletedEntities" {
        return deleted_page(data, &param("after"), &param("entities"), token, hang);
    }
    if data.quirks.endless_in.as_deref() == Some(path.as_str()) {
        return (200, endless_page(n, limit), hang);
    }
    // Filters of the first request are kept in the token's continuation: the stand-in encodes
    // only the last id, and remembers the filter per token in `requests` order is not needed:
    // a token carries the filter after `|`.
    let (after_id, modified_after) = match &token {
        Some(token) => {
            let Some(decoded) = id_from_token(token) else {
                return (400, json!({"error": "bad pageToken"}), false);
            };
            match decoded.split_once('|') {
                Some((id, filter)) => (Some(id.to_owned()), Some(filter.to_owned())),
                None => (Some(decoded), None),
            }
        }
        None => (None, param("meta.modified.after")),
    };
    let after_ts = match modified_after.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match Timestamp::parse(text) {
            Ok(t) => Some(t),
            Err(_) => return (400, json!({"error": "bad meta.modified.after"}), false),
        },
        None => None,
    };
    let objects = data.objects.get(&path).cloned().unwrap_or_default();
    let mut page: Vec<Value> = Vec::new();
    let mut more = false;
    for (id, object) in &objects {
        if after_id.as_ref().is_some_and(|a| id <= a) {
            continue;
        }
        if let Some(after) = after_ts {
            let modified = Timestamp::parse(object["meta"]["modified"].as_str().unwrap()).unwrap();
            if modified < after {
                continue;
            }
        }
        if page.len() == limit {
            more = true;
            break;
        }
        page.push(object.clone());
    }
    let filter = modified_after.clone().unwrap_or_default();
    let next = match page.last() {
        Some(last) if more || (data.quirks.empty_page_after_full && page.len() == limit) => Some(
            token_for(&format!("{}|{filter}", last["id"].as_str().unwrap())),
        ),
        _ => None,
    };
    let next = if data.quirks.repeat_token_in.as_deref() == Some(path.as_str()) {
        Some(token_for("loop|"))
    } else {
        next
    };
    let key = if path == "organisations" && data.quirks.organisations_key {
        "organisations"
    } else {
        "data"
    };
    let mut reply = json!({ key: page });
    match (next, data.quirks.last_page) {
        (Some(token), _) => reply["pageToken"] = json!(token),
        (None, LastPage::Omit) => {}
        (None, LastPage::Null) => reply["pageToken"] = Value::Null,
        (None, LastPage::Empty) => reply["pageToken"] = json!(""),
    }
    (200, reply, hang)
}

fn deleted_page(
    data: &Data,
    after: &Option<String>,
    entities: &Option<String>,
    token: Option<String>,
    hang: bool,
) -> (u16, Value, bool) {
    let (after, entities, skip) = match &token {
        Some(token) => {
            let Some(decoded) = id_from_token(token) else {
                return (400, json!({"error": "bad pageToken"}), false);
            };
            let mut parts = decoded.splitn(3, '|');
            let skip: usize = parts.next().unwrap_or("0").parse().unwrap_or(0);
            let after = parts.next().unwrap_or("").to_owned();
            let entities = parts.next().unwrap_or("").to_owned();
            (after, entities, skip)
        }
        None => (
            after.clone().unwrap_or_default(),
            entities.clone().unwrap_or_default(),
            0,
        ),
    };
    let after_ts = if after.is_empty() {
        None
    } else {
        match Timestamp::parse(&after) {
            Ok(t) => Some(t),
            Err(_) => return (400, json!({"error": "bad after"}), false),
        }
    };
    let wanted: Vec<&str> = entities.split(',').filter(|e| !e.is_empty()).collect();
    let matching: Vec<&(String, String, Timestamp)> = data
        .deleted
        .iter()
        .filter(|(collection, _, at)| {
            after_ts.is_none_or(|a| *at >= a)
                && (wanted.is_empty() || wanted.contains(&entity_type(collection).as_str()))
        })
        .collect();
    let size = data.quirks.deleted_page_size;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (collection, id, _) in matching.iter().skip(skip).take(size) {
        let name = if collection == "activities" && data.quirks.misspelt_activities {
            "activitites".to_owned()
        } else {
            collection.clone()
        };
        out.entry(name).or_default().push(id.clone());
    }
    let mut reply = json!({ "data": out });
    if matching.len() > skip + size {
        reply["pageToken"] = json!(token_for(&format!("{}|{after}|{entities}", skip + size)));
    } else {
        reply["pageToken"] = Value::Null;
    }
    (200, reply, hang)
}

fn entity_type(collection: &str) -> String {
    let singular = match collection {
        "persons" => "person",
        "duties" => "duty",
        "activities" => "activity",
        other => other.strip_suffix('s').unwrap_or(other),
    };
    let mut chars = singular.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// A plain-HTTP sender without retries (so a 500 fails the sync at once).
pub fn sender() -> kontosynk_client::Sender {
    kontosynk_client::Sender::new(reqwest::Client::new())
        .with_retry(kontosynk_client::RetryPolicy::never())
}

/// `n` persons with ids `p00000…`, each with an unknown field, modified at `at`.
pub fn persons(data: &mut Data, n: usize, at: Timestamp) {
    for i in 0..n {
        data.put(
            "persons",
            &format!("p{i:05}"),
            json!({"givenName": format!("Given{i}"), "familyName": "Test", "x-unknown": {"kept": i}}),
            at,
        );
    }
}
