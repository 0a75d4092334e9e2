//! The Provisioning API stand-in's documented behaviour, seen by a raw HTTPS client: reads,
//! lookups, job shapes, rate-limit headers and error bodies.

use std::sync::Arc;

use kontosynk_client::push::{Bearer, ObjectType, ProvisioningClient, RateLimits};
use kontosynk_client::token::{AccessRequest, PROVISIONING_API};
use kontosynk_testbed::federation::Fed;
use kontosynk_testbed::gnap::{standin_http, start_gnap, start_standin, token_client};
use serde_json::{Value, json};

const P1: &str = "11111111-1111-4111-8111-111111111111";
const P2: &str = "22222222-2222-4222-8222-222222222222";

fn person(id: &str) -> Value {
    json!({"id": id, "givenName": "A", "familyName": "B",
           "eduPersonPrincipalNames": [format!("{id}@x")], "civicNo": {"value": "200901272385"}})
}

#[tokio::test]
async fn reads_lookups_jobs_and_errors_follow_the_openapi() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    // Limits raised so this walk through the API is not rate limited (tested below).
    let standin = start_standin(&gnap, |c| {
        c.job_polls = 0;
        c.bulk_per_sec = 100;
        c.read_per_sec = 100;
    })
    .await;
    let tokens = token_client(&fed, "school-client", gnap.server.addr);
    let token = tokens
        .token(&AccessRequest::new(PROVISIONING_API, [standin.base_url()]))
        .await
        .unwrap();
    let http = standin_http(&standin);
    let base = standin.base_url().to_owned();
    let url = |path: &str| format!("{base}/{path}");
    let send = |request: reqwest::RequestBuilder| {
        let token = token.value().to_owned();
        async move { request.bearer_auth(token).send().await.unwrap() }
    };

    // /alive needs no token.
    let alive = http.get(url("alive")).send().await.unwrap();
    assert_eq!(alive.status(), 200);

    // A bulk create: 202, jobId, Location, rate-limit headers.
    let body = json!({"data": [person(P1), person(P2), {"id": "not-a-uuid"}]});
    let accepted = send(http.post(url("persons/bulk")).json(&body)).await;
    assert_eq!(accepted.status(), 202);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(accepted.headers().contains_key(h), "{h}");
    }
    assert_eq!(accepted.headers()["x-ratelimit-limit"], "100");
    let location = accepted.headers()["location"].to_str().unwrap().to_owned();
    let job = accepted.json::<Value>().await.unwrap()["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(location.ends_with(&format!("/persons/bulk/jobs/{job}")));

    let done = send(http.get(format!("{location}/isCompleted"))).await;
    assert_eq!(done.json::<Value>().await.unwrap(), json!(true));
    let status: Value = send(http.get(&location)).await.json().await.unwrap();
    assert_eq!(status["jobId"], job);
    let responses = status["responses"].as_array().unwrap();
    assert_eq!(responses[0]["response"]["status"], "Success");
    assert_eq!(responses[0]["response"]["statusCode"], 201);
    assert_eq!(responses[2]["response"]["status"], "Error");
    let entry = &responses[2]["response"]["errors"][0];
    for field in [
        "id",
        "statusCode",
        "message",
        "severityLevel",
        "timeOfOccurance",
    ] {
        assert!(
            entry.get(field).is_some(),
            "LogEntry without {field}: {entry}"
        );
    }
    // The job of one type is not found under another.
    let wrong = send(http.get(url(&format!("duties/bulk/jobs/{job}")))).await;
    assert_eq!(wrong.status(), 404);

    // Creating again without updateIfExists: a per-object 409.
    let again = send(
        http.post(url("persons/bulk"))
            .json(&json!({"data": [person(P1)]})),
    )
    .await;
    let job2 = again.json::<Value>().await.unwrap()["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let status: Value = send(http.get(url(&format!("persons/bulk/jobs/{job2}"))))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["responses"][0]["response"]["statusCode"], 409);

    // Reads: list with paging, by id, lookup.
    let page: Value = send(http.get(url("persons?limit=1")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let token_value = page["pageToken"].as_str().unwrap().to_owned();
    let next: Value = send(http.get(url(&format!("persons?limit=1&pageToken={token_value}"))))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"][0]["id"], P2);
    assert!(next["pageToken"].is_null());
    let bad_limit = send(http.get(url("persons?limit=500"))).await;
    assert_eq!(bad_limit.status(), 400);
    assert_eq!(bad_limit.json::<Value>().await.unwrap()[0]["id"], "3085");
    let found: Value = send(
        http.post(url("persons/lookup"))
            .json(&json!({"ids": [P2, P1, "x"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 2);
    assert_eq!(
        send(http.get(url(&format!("persons/{P1}")))).await.status(),
        200
    );
    let missing = send(http.get(url("persons/33333333-3333-4333-8333-333333333333"))).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        send(http.get(url("persons/not-a-uuid"))).await.status(),
        400
    );
    assert_eq!(send(http.delete(url("persons/bulk"))).await.status(), 405);
    assert_eq!(send(http.get(url("organisations"))).await.status(), 404);

    // An empty or malformed bulk body is a 400 LogEntry list.
    let empty = send(http.post(url("persons/bulk")).json(&json!({"data": []}))).await;
    assert_eq!(empty.status(), 400);
    let not_json = send(http.post(url("persons/bulk")).body("{")).await;
    assert_eq!(not_json.status(), 400);

    // No token, or a token signed by someone else: 403 with LogEntry 5002.
    let anonymous = http.get(url("persons")).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);
    assert_eq!(anonymous.json::<Value>().await.unwrap()[0]["id"], "5002");

    // The typed client reads the same objects.
    let api = ProvisioningClient::new(
        http.clone(),
        base.parse().unwrap(),
        Bearer::Static(Arc::from(token.value())),
        RateLimits::default(),
    );
    assert_eq!(
        api.get(ObjectType::Persons, P1).await.unwrap().unwrap()["id"],
        P1
    );
    assert!(
        api.get(ObjectType::Persons, "33333333-3333-4333-8333-333333333333")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn more_reads_than_the_limit_in_one_second_get_429_with_a_reset() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let standin = start_standin(&gnap, |c| c.read_per_sec = 1).await;
    let tokens = token_client(&fed, "school-client", gnap.server.addr);
    let token = tokens
        .token(&AccessRequest::new(PROVISIONING_API, [standin.base_url()]))
        .await
        .unwrap();
    let http = standin_http(&standin);
    let mut reset = None;
    for _ in 0..8 {
        let response = http
            .get(format!("{}/persons", standin.base_url()))
            .bearer_auth(token.value())
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            reset = response.headers()["x-ratelimit-reset"]
                .to_str()
                .ok()
                .and_then(|s| s.parse::<f64>().ok());
            assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
            assert_eq!(response.json::<Value>().await.unwrap()[0]["id"], "5021");
        }
    }
    // One read per one-second window: eight quick reads cannot all pass.
    let limited = standin
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(limited >= 4, "{limited}");
    let reset = reset.unwrap();
    assert!(reset > 0.0 && reset <= 1.0, "{reset}");
}
