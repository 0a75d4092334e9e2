//! Contract test: walks the reference OpenAPI (`specs/ss12000-reference-api.openapi.yml`) and
//! checks this server's answers against it for every endpoint it defines: the status codes the
//! spec declares, and the required fields of each response schema (and of list items).
//!
//! The YAML is read with a small indentation-based scan of the parts needed (paths → method →
//! response code → schema `$ref`; schemas → `required`, `allOf`, `data.items`), not a general
//! YAML parser. Documented deviation: the spec names the list key of `/organisations`
//! `organisations`, while the reference implementation (and this server) answer `data` for every
//! collection.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kontosynk_server::ss12000::AuthMode;
use kontosynk_testbed::ss12000_api::{get_json, start};
use serde_json::{Value, json};
use ss12000::testing::sqlite;
use ss12000::{Collection, Object, Timestamp, WriteBatch};

fn spec_path() -> PathBuf {
    if let Ok(path) = std::env::var("KONTOSYNK_SS12000_OPENAPI") {
        return PathBuf::from(path);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for candidate in [manifest.join("data/ss12000-reference-api.openapi.yml")] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("the reference OpenAPI is not found; set KONTOSYNK_SS12000_OPENAPI")
}

#[derive(Debug, Default)]
struct Operation {
    /// Declared status codes and their schema (when any).
    responses: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Default)]
struct Schema {
    required: Vec<String>,
    all_of: Vec<String>,
    data_items: Option<String>,
}

struct Spec {
    operations: BTreeMap<(String, String), Operation>,
    schemas: BTreeMap<String, Schema>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn schema_ref(line: &str) -> Option<String> {
    let at = line.find("#/components/schemas/")?;
    Some(
        line[at + "#/components/schemas/".len()..]
            .trim_end_matches(['\'', '"'])
            .to_owned(),
    )
}

fn parse_spec(text: &str) -> Spec {
    let mut operations = BTreeMap::new();
    let mut schemas: BTreeMap<String, Schema> = BTreeMap::new();
    let (mut path, mut method, mut code) = (None::<String>, None::<String>, None::<String>);
    let mut in_responses = false;
    let mut section = "";
    let (mut schema, mut in_required, mut in_all_of, mut in_data) =
        (None::<String>, false, false, false);
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let depth = indent(line);
        let trimmed = line.trim();
        if depth == 0 {
            section = if trimmed == "paths:" {
                "paths"
            } else if trimmed == "components:" {
                "components"
            } else {
                ""
            };
            continue;
        }
        if section == "paths" {
            match depth {
                2 if trimmed.ends_with(':') => {
                    path = Some(trimmed.trim_end_matches(':').to_owned());
                    method = None;
                }
                4 if ["get:", "post:", "patch:", "delete:", "put:"].contains(&trimmed) => {
                    method = Some(trimmed.trim_end_matches(':').to_uppercase());
                    in_responses = false;
                    operations.insert(
                        (path.clone().unwrap(), method.clone().unwrap()),
                        Operation::default(),
                    );
                }
                6 => {
                    in_responses = trimmed == "responses:";
                    code = None;
                }
                8 if in_responses && trimmed.ends_with(':') => {
                    let c = trimmed
                        .trim_end_matches(':')
                        .trim_matches(['"', '\''])
                        .to_owned();
                    if let (Some(p), Some(m)) = (&path, &method) {
                        operations
                            .get_mut(&(p.clone(), m.clone()))
                            .unwrap()
                            .responses
                            .insert(c.clone(), None);
                    }
                    code = Some(c);
                }
                d if d > 8 && in_responses => {
                    if let (Some(p), Some(m), Some(c), Some(r)) =
                        (&path, &method, &code, schema_ref(trimmed))
                    {
                        let op = operations.get_mut(&(p.clone(), m.clone())).unwrap();
                        op.responses.entry(c.clone()).or_default().get_or_insert(r);
                    }
                }
                _ => {}
            }
        } else if section == "components" {
            match depth {
                4 if trimmed.ends_with(':') => {
                    let name = trimmed.trim_end_matches(':').to_owned();
                    schemas.insert(name.clone(), Schema::default());
                    schema = Some(name);
                    (in_required, in_all_of, in_data) = (false, false, false);
                }
                6 => {
                    in_required = trimmed == "required:";
                    in_all_of = trimmed == "allOf:";
                    in_data = false;
                }
                8 if in_required => {
                    if let (Some(s), Some(field)) = (&schema, trimmed.strip_prefix("- ")) {
                        schemas
                            .get_mut(s)
                            .unwrap()
                            .required
                            .push(field.trim().to_owned());
                    }
                }
                8 if in_all_of => {
                    if let (Some(s), Some(r)) = (&schema, schema_ref(trimmed)) {
                        schemas.get_mut(s).unwrap().all_of.push(r);
                    }
                }
                8 => in_data = trimmed == "data:",
                d if d > 8 && in_data => {
                    if let (Some(s), Some(r)) = (&schema, schema_ref(trimmed)) {
                        schemas.get_mut(s).unwrap().data_items.get_or_insert(r);
                    }
                }
                _ => {}
            }
        }
    }
    Spec {
        operations,
        schemas,
    }
}

impl Spec {
    fn required(&self, name: &str) -> Vec<String> {
        let schema = &self.schemas[name];
        let mut out = schema.required.clone();
        for parent in &schema.all_of {
            out.extend(self.required(parent));
        }
        out
    }

    /// Checks `value` against the required fields of `schema` (and list items, and `meta`).
    fn check(&self, schema: &str, value: &Value, context: &str) {
        let item_schema = self.schemas[schema].data_items.clone().or_else(|| {
            // `Organisations` names its list key `organisations`; the items are `Organisation`.
            schema
                .strip_suffix('s')
                .filter(|s| self.schemas.contains_key(*s))
                .map(str::to_owned)
        });
        let required = self.required(schema);
        let is_list = required == ["organisations"]
            || required == ["data"] && item_schema.is_some() && value["data"].is_array();
        if is_list {
            let items = value["data"]
                .as_array()
                .unwrap_or_else(|| panic!("{context}: no data array: {value}"));
            assert!(
                !items.is_empty(),
                "{context}: the contract check needs items"
            );
            if let Some(token) = value.get("pageToken") {
                assert!(
                    token.is_string() || token.is_null(),
                    "{context}: pageToken {token}"
                );
            }
            for item in items {
                self.check(item_schema.as_deref().unwrap(), item, context);
            }
            return;
        }
        for field in required {
            assert!(
                value.get(&field).is_some(),
                "{context}: {schema} requires {field}: {value}"
            );
        }
        if let Some(meta) = value.get("meta") {
            for field in self.required("Meta") {
                assert!(
                    meta.get(&field).is_some(),
                    "{context}: Meta requires {field}"
                );
            }
        }
    }
}

fn seed() -> Vec<(Collection, Value)> {
    let meta = json!({"created": "2026-01-01T00:00:00Z", "modified": "2026-01-02T00:00:00Z"});
    let org = "11111111-1111-4111-8111-111111111111";
    let person = "22222222-2222-4222-8222-222222222222";
    let group = "33333333-3333-4333-8333-333333333333";
    let duty = "44444444-4444-4444-8444-444444444444";
    let activity = "55555555-5555-4555-8555-555555555555";
    vec![
        (
            Collection::Organisations,
            json!({"id": org, "meta": meta, "displayName": "Skolan", "schoolUnitCode": "12345678", "organisationType": "Skolenhet"}),
        ),
        (
            Collection::Persons,
            json!({"id": person, "meta": meta, "givenName": "Ada", "familyName": "L", "eduPersonPrincipalNames": ["ada@school.example"], "civicNo": {"value": "200001012384"}}),
        ),
        (
            Collection::Groups,
            json!({"id": group, "meta": meta, "displayName": "7A", "groupType": "Klass", "organisation": {"id": org}, "groupMemberships": [{"person": {"id": person}}]}),
        ),
        (
            Collection::Duties,
            json!({"id": duty, "meta": meta, "person": {"id": person}, "dutyAt": {"id": org}, "dutyRole": "Lärare"}),
        ),
        (
            Collection::Activities,
            json!({"id": activity, "meta": meta, "displayName": "Matematik 7A", "groups": [{"id": group}], "organisation": {"id": org}}),
        ),
    ]
}

/// The status a request got must be declared for the endpoint (or covered by `default`).
fn declared(spec: &Spec, path: &str, method: &str, status: u16) {
    let op = spec
        .operations
        .get(&(path.to_owned(), method.to_owned()))
        .unwrap_or_else(|| panic!("the spec has no {method} {path}"));
    let code = status.to_string();
    assert!(
        op.responses.contains_key(&code) || op.responses.contains_key("default"),
        "{method} {path} answered {status}, which the spec does not declare: {:?}",
        op.responses.keys()
    );
}

#[tokio::test]
async fn responses_match_the_reference_openapi() {
    let spec = parse_spec(&std::fs::read_to_string(spec_path()).unwrap());
    assert!(spec.operations.len() >= 14, "{:?}", spec.operations.keys());
    assert_eq!(spec.required("Subscription").len(), 5);

    let db = sqlite();
    let h = start(db.open().await, |_| AuthMode::MutualTls, |_| {}).await;
    let mut batch = WriteBatch::new();
    for (collection, value) in seed() {
        batch.upsert(collection, Object::from_value(&value).unwrap());
    }
    batch.delete(
        Collection::Persons,
        "66666666-6666-4666-8666-666666666666",
        Timestamp::now(),
    );
    h.api.store().apply(batch).await.unwrap();
    let client = h.client(Some("school-client"));

    let mut checked = 0;
    for ((path, method), op) in &spec.operations {
        match (path.as_str(), method.as_str()) {
            (p, "GET") if !p.contains('{') && p != "/deletedEntities" => {
                let (status, body) = get_json(&client, &h.url(&format!("{p}?limit=1"))).await;
                assert_eq!(status, 200, "{p}: {body}");
                let schema = op.responses["200"].clone().unwrap();
                spec.check(&schema, &body, p);
                let (status, body) = get_json(&client, &h.url(&format!("{p}?limit=0"))).await;
                declared(&spec, p, "GET", status);
                spec.check("Error", &body, p);
            }
            (p, "GET") if p.ends_with("/{id}") => {
                let collection =
                    Collection::from_path(p.trim_start_matches('/').trim_end_matches("/{id}"))
                        .unwrap();
                let id = seed()
                    .into_iter()
                    .find(|(c, _)| *c == collection)
                    .unwrap()
                    .1["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let url = h.url(&p.replace("{id}", &id));
                let (status, body) = get_json(&client, &url).await;
                assert_eq!(status, 200, "{p}: {body}");
                spec.check(&op.responses["200"].clone().unwrap(), &body, p);
                let (status, body) = get_json(
                    &client,
                    &h.url(&p.replace("{id}", "77777777-7777-4777-8777-777777777777")),
                )
                .await;
                assert_eq!(status, 404);
                declared(&spec, p, "GET", status);
                spec.check("Error", &body, p);
            }
            ("/deletedEntities", "GET") => {
                let (status, body) =
                    get_json(&client, &h.url("/deletedEntities?entities=Person")).await;
                assert_eq!(status, 200);
                spec.check(&op.responses["200"].clone().unwrap(), &body, path);
                assert_eq!(
                    body["data"]["persons"],
                    json!(["66666666-6666-4666-8666-666666666666"])
                );
                let (status, body) = get_json(
                    &client,
                    &h.url("/deletedEntities?pageToken=x&after=2026-01-01T00:00:00Z"),
                )
                .await;
                assert_eq!(status, 400, "{body}");
                declared(&spec, path, "GET", status);
                spec.check("Error", &body, path);
            }
            ("/subscriptions", "POST") => {
                let response = client
                    .post(h.url(path))
                    .json(&json!({"name": "n", "target": "https://hooks.example/1", "resourceTypes": [{"resource": "Person"}]}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                declared(&spec, path, method, status);
                let body: Value = response.json().await.unwrap();
                spec.check(
                    &op.responses[&status.to_string()].clone().unwrap(),
                    &body,
                    path,
                );
                let id = body["id"].as_str().unwrap();
                let sub_path = "/subscriptions/{subscriptionId}";
                let response = client
                    .patch(h.url(&format!("/subscriptions/{id}")))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                assert_eq!(status, 200);
                declared(&spec, sub_path, "PATCH", status);
                let body: Value = response.json().await.unwrap();
                spec.check("Subscription", &body, sub_path);
                let other = h.client(Some("supplier-client"));
                let response = other
                    .delete(h.url(&format!("/subscriptions/{id}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 403);
                declared(&spec, sub_path, "DELETE", 403);
                let response = client
                    .delete(h.url(&format!("/subscriptions/{id}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 204);
                declared(&spec, sub_path, "DELETE", 204);
                let response = client
                    .patch(h.url(&format!("/subscriptions/{id}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 404);
                declared(&spec, sub_path, "PATCH", 404);
            }
            ("/log" | "/statistics", "POST") => {
                let body = if path == "/log" {
                    json!({"message": "m", "severityLevel": "Info"})
                } else {
                    json!({"resourceType": "Person", "newCount": 1, "updatedCount": 0, "deletedCount": 0})
                };
                let response = client.post(h.url(path)).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 201);
                declared(&spec, path, method, 201);
            }
            ("/subscriptions/{subscriptionId}", _) => continue,
            other => panic!("the spec defines {other:?}, which this test does not cover"),
        }
        checked += 1;
    }
    assert_eq!(checked, 14, "every endpoint of the spec was exercised");
}
