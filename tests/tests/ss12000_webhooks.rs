//! Webhook delivery of subscriptions to real local HTTP targets: retries with backoff,
//! giving up, lapsed subscriptions, and changes found by polling the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kontosynk_server::bearer::webpki_client_config;
use kontosynk_server::ss12000::webhooks::Outcome;
use kontosynk_server::ss12000::{Change, WebhookConfig, Webhooks};
use kontosynk_testbed::ss12000_api::{fast_webhooks, person, put};
use serde_json::{Value, json};
use ss12000::testing::sqlite;
use ss12000::{Collection, Store, Subscription, Timestamp};
use tokio::net::TcpListener;

/// A local webhook target: answers 500 to the first `failures` requests, then 200 (never,
/// when `failures` is `None`); records every body. `on_request` runs before answering.
struct Target {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn target(failures: Option<usize>, on_request: impl Fn() + Send + Sync + 'static) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = Arc::clone(&bodies);
    let on_request = Arc::new(on_request);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            let on_request = Arc::clone(&on_request);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let seen = Arc::clone(&seen);
                    let on_request = Arc::clone(&on_request);
                    async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let count = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                            seen.len()
                        };
                        on_request();
                        let ok = failures.is_some_and(|f| count > f);
                        let status = if ok { 200 } else { 500 };
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Target { url, bodies }
}

fn webhooks(store: &Store, config: WebhookConfig) -> Webhooks {
    Webhooks::new(store.clone(), config, webpki_client_config(None).unwrap()).unwrap()
}

async fn subscribe(store: &Store, target: &str, types: &[&str]) -> Subscription {
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        name: "test".into(),
        target: target.into(),
        resource_types: types.iter().map(|t| (*t).to_owned()).collect(),
        expires: Timestamp::now().add_seconds(3600),
        owner: "https://client.example".into(),
    };
    store.put_subscription(&subscription).await.unwrap();
    subscription
}

async fn results(store: &Store) -> Vec<String> {
    store
        .records("webhook", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, r)| r["result"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_target_failing_twice_gets_the_third_attempt() {
    let db = sqlite();
    let store = db.open().await;
    let target = target(Some(2), || {}).await;
    subscribe(&store, &target.url, &["Person", "Group"]).await;
    let hooks = webhooks(&store, fast_webhooks());
    let tasks = hooks
        .notify(&[
            Change::Modified(Collection::Persons),
            Change::Modified(Collection::Duties),
        ])
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    for task in tasks {
        assert_eq!(task.await.unwrap(), Outcome::Delivered);
    }
    let bodies = target.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3);
    for body in &bodies {
        assert_eq!(
            body,
            &json!({"modifiedEntities": ["Person"], "modifiedEntites": ["Person"]})
        );
    }
    assert_eq!(results(&store).await, ["failed", "failed", "delivered"]);
}

#[tokio::test]
async fn a_target_that_never_succeeds_is_given_up() {
    let db = sqlite();
    let store = db.open().await;
    let failing = target(None, || {}).await;
    // And one where nothing listens at all (connection refused).
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    subscribe(&store, &failing.url, &["Person"]).await;
    subscribe(&store, &closed, &["Person"]).await;
    let hooks = webhooks(&store, fast_webhooks());
    let tasks = hooks
        .notify(&[Change::Deleted(Collection::Persons)])
        .await
        .unwrap();
    assert_eq!(tasks.len(), 2);
    for task in tasks {
        assert_eq!(task.await.unwrap(), Outcome::GaveUp);
    }
    let bodies = failing.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 4, "max_attempts");
    assert_eq!(bodies[0], json!({"deletedEntities": true}));
    let outcomes = results(&store).await;
    assert_eq!(outcomes.iter().filter(|r| *r == "failed").count(), 8);
    assert_eq!(outcomes.iter().filter(|r| *r == "gave_up").count(), 2);
}

#[tokio::test]
async fn lapsed_and_deleted_subscriptions_get_nothing_more() {
    let db = sqlite();
    let store = db.open().await;
    // Expired: never notified.
    let target_a = target(Some(0), || {}).await;
    let mut expired = subscribe(&store, &target_a.url, &["Person"]).await;
    expired.expires = Timestamp::now().add_seconds(-1);
    store.put_subscription(&expired).await.unwrap();
    // Deleted while retrying: the target deletes it on its first (failed) attempt.
    let deleter_store = store.clone();
    let id_slot: Arc<Mutex<Option<String>>> = Arc::default();
    let id_for_target = Arc::clone(&id_slot);
    let target_b = target(None, move || {
        if let Some(id) = id_for_target.lock().unwrap().take() {
            let store = deleter_store.clone();
            tokio::spawn(async move { store.delete_subscription(&id).await.unwrap() });
        }
    })
    .await;
    let doomed = subscribe(&store, &target_b.url, &["Person"]).await;
    *id_slot.lock().unwrap() = Some(doomed.id.clone());
    let config = WebhookConfig {
        initial_backoff: Duration::from_millis(300),
        ..fast_webhooks()
    };
    let hooks = webhooks(&store, config);
    let tasks = hooks
        .notify(&[Change::Modified(Collection::Persons)])
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1, "the expired subscription is skipped");
    for task in tasks {
        assert_eq!(task.await.unwrap(), Outcome::Expired);
    }
    assert!(target_a.bodies.lock().unwrap().is_empty());
    assert_eq!(target_b.bodies.lock().unwrap().len(), 1);
    // A change nobody subscribed to starts nothing.
    assert!(
        hooks
            .notify(&[Change::Modified(Collection::Groups)])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn writes_by_other_processes_are_found_by_polling() {
    let db = sqlite();
    let store = db.open().await;
    put(
        &store,
        Collection::Persons,
        &[person(None, Timestamp::now().add_seconds(-3600), "before")],
    )
    .await;
    let target = target(Some(0), || {}).await;
    subscribe(&store, &target.url, &["Person"]).await;
    let hooks = webhooks(
        &store,
        WebhookConfig {
            poll_interval: Duration::from_millis(50),
            ..fast_webhooks()
        },
    );
    let poller = hooks.spawn_poller();
    // Let the first poll take its baseline, then write through a second handle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(target.bodies.lock().unwrap().is_empty(), "no change yet");
    let other = db.open().await;
    put(
        &other,
        Collection::Persons,
        &[person(None, Timestamp::now(), "after")],
    )
    .await;
    let mut waited = 0;
    while target.bodies.lock().unwrap().is_empty() {
        assert!(waited < 400, "no webhook after a write");
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    poller.abort();
    let first = target.bodies.lock().unwrap()[0].clone();
    assert_eq!(first["modifiedEntities"], json!(["Person"]));
}
