//! The SS 12000 API over real mutual TLS on loopback, on SQLite and PostgreSQL stores.

use std::collections::HashSet;

use kontosynk_server::ss12000::AuthMode;
use kontosynk_testbed::ss12000_api::{Harness, get_json, person, put, start};
use serde_json::{Value, json};
use ss12000::testing::{TestDatabase, postgres, sqlite};
use ss12000::{Collection, Timestamp, WriteBatch};

async fn mtls(db: &TestDatabase) -> Harness {
    start(db.open().await, |_| AuthMode::MutualTls, |_| {}).await
}

/// Lists /persons page by page while, between and during pages, other persons are inserted,
/// updated and deleted: every person that existed throughout is listed exactly once.
async fn paging_under_writes(db: TestDatabase) {
    let h = mtls(&db).await;
    let store = h.api.store().clone();
    let t0 = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let originals: Vec<_> = (0..500)
        .map(|i| person(None, t0, &format!("p{i}")))
        .collect();
    put(&store, Collection::Persons, &originals).await;
    let stable: HashSet<String> = originals.iter().map(|p| p.id().to_owned()).collect();

    // A writer running concurrently: new persons, updates of originals, deletions of its own.
    let writer_store = store.clone();
    let updates = originals.clone();
    let writer = tokio::spawn(async move {
        let mut mine = Vec::new();
        for round in 0..200 {
            let mut batch = WriteBatch::new();
            let fresh = person(None, Timestamp::now(), &format!("new{round}"));
            mine.push(fresh.id().to_owned());
            batch.upsert(Collection::Persons, fresh);
            let original = &updates[round % updates.len()];
            batch.upsert(
                Collection::Persons,
                person(
                    Some(original.id()),
                    Timestamp::now(),
                    &format!("updated{round}"),
                ),
            );
            if round % 3 == 0 && mine.len() > 1 {
                let gone = mine.remove(0);
                batch.delete(Collection::Persons, &gone, Timestamp::now());
            }
            writer_store.apply(batch).await.unwrap();
            tokio::task::yield_now().await;
        }
    });

    let client = h.client(Some("school-client"));
    let mut seen = Vec::new();
    let mut url = h.url("/persons?limit=37");
    let mut pages = 0;
    loop {
        let (status, body) = get_json(&client, &url).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for item in body["data"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        // Writes between pages too, deterministically: a new person sorting anywhere.
        put(
            &store,
            Collection::Persons,
            &[person(None, Timestamp::now(), "between")],
        )
        .await;
        match body.get("pageToken").and_then(Value::as_str) {
            Some(token) => {
                url = h.url(&format!(
                    "/persons?limit=37&pageToken={}",
                    kontosynk_server::ss12000::query::percent_encode(token)
                ))
            }
            None => break,
        }
        assert!(pages < 1000, "paging does not end");
    }
    writer.await.unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an id was listed twice");
    for id in &stable {
        assert!(
            unique.contains(id),
            "{id} existed throughout but was skipped"
        );
    }
    assert!(pages >= 500 / 37, "{pages} pages");
    // Ids come in byte order (keyset paging).
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_under_concurrent_writes_sqlite() {
    paging_under_writes(sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_under_concurrent_writes_postgres() {
    paging_under_writes(postgres().await).await;
}

/// Filters (inclusive bounds), single objects, lookup, unknown fields kept.
async fn reads(db: TestDatabase) {
    let h = mtls(&db).await;
    let store = h.api.store().clone();
    let early = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let late = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
    let a = person(None, early, "early");
    let b = person(None, late, "late");
    put(&store, Collection::Persons, &[a.clone(), b.clone()]).await;
    let client = h.client(Some("supplier-client"));

    let (status, body) = get_json(&client, &h.url("/persons")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(
        body.get("pageToken").is_none(),
        "last page has no token: {body}"
    );

    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, body) = get_json(
        &client,
        &h.url("/persons?meta.modified.after=2026-06-01T00:00:00Z"),
    )
    .await;
    assert_eq!(ids(&body), vec![b.id().to_owned()], "after is inclusive");
    let (_, body) = get_json(
        &client,
        &h.url("/persons?meta.created.before=2026-06-01T01:59:59%2B02:00"),
    )
    .await;
    assert_eq!(ids(&body), vec![a.id().to_owned()]);
    let (_, body) = get_json(
        &client,
        &h.url("/persons?meta.created.before=2026-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(ids(&body), vec![a.id().to_owned()], "before is inclusive");

    let (status, body) = get_json(&client, &h.url(&format!("/persons/{}", a.id()))).await;
    assert_eq!(status, 200);
    assert_eq!(body["extension"]["kept"], true, "unknown fields survive");
    assert_eq!(body["givenName"], "early");
    let (status, body) = get_json(
        &client,
        &h.url("/persons/00000000-0000-4000-8000-000000000000"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, _) = get_json(&client, &h.url("/groups/whatever")).await;
    assert_eq!(status, 404);

    let response = client
        .post(h.url("/persons/lookup"))
        .json(&json!({"ids": [b.id(), "missing", a.id()]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(ids(&body), vec![b.id().to_owned(), a.id().to_owned()]);
    for bad in [
        json!({"ids": "x"}),
        json!({"civicNos": ["1"]}),
        json!([1]),
        json!({"ids": [1]}),
    ] {
        let response = client
            .post(h.url("/persons/lookup"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    let response = client
        .post(h.url("/persons/lookup"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn reads_sqlite() {
    reads(sqlite()).await;
}

#[tokio::test]
async fn reads_postgres() {
    reads(postgres().await).await;
}

#[tokio::test]
async fn bad_paging_requests_are_400_with_json() {
    let db = sqlite();
    let h = mtls(&db).await;
    let t = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let people: Vec<_> = (0..5).map(|i| person(None, t, &format!("p{i}"))).collect();
    put(h.api.store(), Collection::Persons, &people).await;
    put(h.api.store(), Collection::Groups, &[person(None, t, "g")]).await;
    let client = h.client(Some("school-client"));
    let (status, body) = get_json(
        &client,
        &h.url("/persons?limit=2&meta.modified.after=2025-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(status, 200);
    let token = body["pageToken"].as_str().unwrap().to_owned();
    let enc = kontosynk_server::ss12000::query::percent_encode(&token);

    // The token continues with its own filters.
    let (status, body) = get_json(
        &client,
        &h.url(&format!("/persons?pageToken={enc}&limit=10")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 3);

    for (path, code) in [
        (
            format!("/persons?pageToken={enc}&meta.modified.after=2025-01-01T00:00:00Z"),
            "invalid_query",
        ),
        (format!("/groups?pageToken={enc}"), "invalid_page_token"),
        (
            format!("/deletedEntities?pageToken={enc}"),
            "invalid_page_token",
        ),
        (
            "/persons?pageToken=garbage!!".to_owned(),
            "invalid_page_token",
        ),
        (
            "/persons?pageToken=eyJ2Ijo5fQ".to_owned(),
            "invalid_page_token",
        ),
        ("/persons?limit=0".to_owned(), "invalid_limit"),
        ("/persons?limit=ten".to_owned(), "invalid_limit"),
        ("/persons?limit=1&limit=2".to_owned(), "invalid_query"),
        (
            "/persons?meta.created.after=yesterday".to_owned(),
            "invalid_timestamp",
        ),
        (
            "/persons?meta.created.after=%zz".to_owned(),
            "invalid_query",
        ),
        (
            "/deletedEntities?entities=Cat".to_owned(),
            "invalid_entities",
        ),
    ] {
        let (status, body) = get_json(&client, &h.url(&path)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], code, "{path}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A limit above the maximum is lowered, not refused.
    let (status, body) = get_json(&client, &h.url("/persons?limit=999999")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 5);
    let (status, _) = get_json(&client, &h.url("/nope/a/b")).await;
    assert_eq!(status, 404);
    // 405 always says what the path accepts (RFC 9110 §15.5.6).
    for (method, path, allow) in [
        (http::Method::DELETE, "/persons", "GET"),
        (http::Method::PUT, "/persons/p1", "GET"),
        (http::Method::PUT, "/persons/lookup", "GET, POST"),
        (http::Method::GET, "/subscriptions", "POST"),
        (http::Method::GET, "/subscriptions/s1", "PATCH, DELETE"),
        (http::Method::POST, "/deletedEntities", "GET"),
        (http::Method::GET, "/log", "POST"),
        (http::Method::DELETE, "/statistics", "POST"),
    ] {
        let response = client
            .request(method.clone(), h.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response
                .headers()
                .get(http::header::ALLOW)
                .map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn deleted_entities_page_by_deletion_time() {
    let db = sqlite();
    let h = mtls(&db).await;
    let store = h.api.store().clone();
    let t = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..5 {
        batch.delete(Collection::Persons, &format!("p-{i}"), t.add_seconds(i));
    }
    batch.delete(Collection::Groups, "g-1", t.add_seconds(10));
    batch.delete(Collection::Duties, "d-1", t.add_seconds(10));
    store.apply(batch).await.unwrap();
    let client = h.client(Some("school-client"));

    let mut persons = Vec::new();
    let mut groups = Vec::new();
    let mut url =
        h.url("/deletedEntities?entities=Person,Group&limit=2&after=2026-01-01T00:00:01Z");
    loop {
        let (status, body) = get_json(&client, &url).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"].get("duties").is_none(), "{body}");
        for id in body["data"]["persons"].as_array().unwrap() {
            persons.push(id.as_str().unwrap().to_owned());
        }
        for id in body["data"]["groups"].as_array().unwrap() {
            groups.push(id.as_str().unwrap().to_owned());
        }
        match body["pageToken"].as_str() {
            Some(token) => url = h.url(&format!("/deletedEntities?limit=2&pageToken={token}")),
            None => break,
        }
    }
    assert_eq!(
        persons,
        ["p-1", "p-2", "p-3", "p-4"],
        "after is inclusive, order by time"
    );
    assert_eq!(groups, ["g-1"]);
    let (_, body) = get_json(
        &client,
        &h.url("/deletedEntities?entities=Duty&entities=Group"),
    )
    .await;
    assert_eq!(body["data"]["duties"], json!(["d-1"]));
    assert_eq!(body["data"]["groups"], json!(["g-1"]));
}

#[tokio::test]
async fn subscriptions_belong_to_their_creator() {
    let db = sqlite();
    let h = mtls(&db).await;
    let school = h.client(Some("school-client"));
    let supplier = h.client(Some("supplier-client"));
    let response = school
        .post(h.url("/subscriptions"))
        .json(&json!({"name": "w", "target": "https://hooks.example/x", "resourceTypes": [{"resource": "Person"}, {"resource": "Group"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let expires = Timestamp::parse(created["expires"].as_str().unwrap()).unwrap();
    assert!(expires > Timestamp::now().add_seconds(29 * 86_400));
    assert!(expires <= Timestamp::now().add_seconds(30 * 86_400 + 5));
    assert_eq!(
        created["resourceTypes"],
        json!([{"resource": "Person"}, {"resource": "Group"}])
    );

    let response = supplier
        .patch(h.url(&format!("/subscriptions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = supplier
        .delete(h.url(&format!("/subscriptions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let soon = Timestamp::now().add_seconds(3600).to_string();
    let response = school
        .patch(h.url(&format!("/subscriptions/{id}")))
        .json(&json!({"expires": soon}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["expires"], soon);
    let response = school
        .delete(h.url(&format!("/subscriptions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = school
        .delete(h.url(&format!("/subscriptions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(h.api.store().subscription(&id).await.unwrap().is_none());

    for bad in [
        json!({"name": "w", "target": "ftp://x", "resourceTypes": [{"resource": "Person"}]}),
        json!({"name": "w", "target": "https://x", "resourceTypes": [{"resource": "Cat"}]}),
        json!({"name": "w", "target": "https://x", "resourceTypes": []}),
        json!({"target": "https://x", "resourceTypes": [{"resource": "Person"}]}),
        json!({"name": "w", "target": "https://x", "resourceTypes": [{"resource": "Person"}], "expires": "2001-01-01T00:00:00Z"}),
    ] {
        let response = school
            .post(h.url("/subscriptions"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn log_and_statistics_are_kept() {
    let db = sqlite();
    let h = mtls(&db).await;
    let client = h.client(Some("school-client"));
    let entry = json!({"message": "courseCode MAT101 unknown", "severityLevel": "Warning", "resourceType": "Activity"});
    let response = client
        .post(h.url("/log"))
        .json(&entry)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let stats =
        json!({"resourceType": "Person", "newCount": 3, "updatedCount": 1, "deletedCount": 0});
    let response = client
        .post(h.url("/statistics"))
        .json(&stats)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(h.url("/statistics"))
        .json(&json!({"resourceType": "Person"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = client
        .post(h.url("/log"))
        .json(&json!({"message": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // What the spec does not allow is refused with the member named, never stored.
    for (path, body, member) in [
        (
            "/statistics",
            json!({"resourceType": "Bogus", "newCount": 1, "updatedCount": 0, "deletedCount": 0}),
            "resourceType",
        ),
        (
            "/statistics",
            json!({"resourceType": "Person", "newCount": -5, "updatedCount": 0, "deletedCount": 0}),
            "newCount",
        ),
        (
            "/log",
            json!({"message": "x", "severityLevel": "Info", "resourceId": "not-a-uuid"}),
            "resourceId",
        ),
    ] {
        let response = client.post(h.url(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{member}`")),
            "{answer}"
        );
    }

    let logs = h.api.store().records("log", 0, 10).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].2["entry"], entry);
    let school = h.fed.party("school-client").entity_id.clone().unwrap();
    assert_eq!(logs[0].2["caller"], school);
    let statistics = h.api.store().records("statistics", 0, 10).await.unwrap();
    assert_eq!(statistics.len(), 1);
    assert_eq!(statistics[0].2["entry"], stats);
}

#[tokio::test]
async fn mutual_tls_mode_refuses_clients_without_a_listed_certificate() {
    let db = sqlite();
    let h = mtls(&db).await;
    for party in [None, Some("unlisted-client")] {
        let result = h.client(party).get(h.url("/persons")).send().await;
        assert!(result.is_err(), "{party:?} got through: {result:?}");
    }
    let (status, _) = get_json(&h.client(Some("school-client")), &h.url("/persons")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_api_is_served_under_its_base_path() {
    let db = sqlite();
    let h = start(
        db.open().await,
        |_| AuthMode::MutualTls,
        |c| c.base_path = "/ss12000/v2.0/".into(),
    )
    .await;
    let client = h.client(Some("school-client"));
    let (status, body) = get_json(&client, &h.url("/ss12000/v2.0/persons")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = get_json(&client, &h.url("/persons")).await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&client, &h.url("/ss12000/v2.0x/persons")).await;
    assert_eq!(status, 404);
}
