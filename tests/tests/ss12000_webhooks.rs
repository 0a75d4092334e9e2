//! Webhook delivery of subscriptions to real local HTTP targets: retries with backoff,
//! giving up, lapsed subscriptions, and changes found by polling the store; and the bounds
//! against hostile subscribers: no internal targets (at subscribe time, as literal addresses
//! in any spelling, and after DNS resolution on every attempt), a cap and a rate of
//! subscriptions per client, bounded delivery records, one delivery in flight per
//! subscription.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kontosynk_framework::RateLimit;
use kontosynk_server::bearer::webpki_client_config;
use kontosynk_server::ss12000::webhooks::Outcome;
use kontosynk_server::ss12000::{AuthMode, Change, TargetPolicy, WebhookConfig, Webhooks};
use kontosynk_testbed::ss12000_api::{Harness, fast_webhooks, person, put, start};
use serde_json::{Value, json};
use ss12000::testing::sqlite;
use ss12000::{Collection, Store, Subscription, Timestamp};
use tokio::net::TcpListener;

/// A local webhook target: answers 500 to the first `failures` requests, then 200 (never,
/// when `failures` is `None`); records every body and counts connections. `on_request` runs
/// before answering; with a `gate`, each answer waits for a permit of it.
struct Target {
    url: String,
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
    connections: Arc<AtomicUsize>,
}

async fn target(failures: Option<usize>, on_request: impl Fn() + Send + Sync + 'static) -> Target {
    gated_target(failures, on_request, None).await
}

async fn gated_target(
    failures: Option<usize>,
    on_request: impl Fn() + Send + Sync + 'static,
    gate: Option<Arc<tokio::sync::Semaphore>>,
) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let connections: Arc<AtomicUsize> = Arc::default();
    let seen = Arc::clone(&bodies);
    let accepted = Arc::clone(&connections);
    let on_request = Arc::new(on_request);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            accepted.fetch_add(1, Ordering::SeqCst);
            let seen = Arc::clone(&seen);
            let on_request = Arc::clone(&on_request);
            let gate = gate.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let seen = Arc::clone(&seen);
                    let on_request = Arc::clone(&on_request);
                    let gate = gate.clone();
                    async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let count = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                            seen.len()
                        };
                        on_request();
                        if let Some(gate) = gate {
                            gate.acquire().await.unwrap().forget();
                        }
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
    Target {
        url,
        port,
        bodies,
        connections,
    }
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

/// The `detail` of every webhook record.
async fn details(store: &Store) -> Vec<String> {
    store
        .records("webhook", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, r)| r["detail"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `http://` allowed (the local targets are plain HTTP), internal addresses refused: the
/// production policy apart from the scheme.
fn public_only() -> WebhookConfig {
    WebhookConfig {
        targets: TargetPolicy {
            allow_http: true,
            allow_private: false,
        },
        ..fast_webhooks()
    }
}

/// `POST /subscriptions` as `party` with `target`: status and body.
async fn create(h: &Harness, party: &str, target: &str) -> (u16, Value, Option<String>) {
    let response = h
        .client(Some(party))
        .post(h.url("/subscriptions"))
        .json(&json!({"name": "w", "target": target, "resourceTypes": [{"resource": "Person"}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body, retry_after)
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

#[tokio::test]
async fn internal_and_credentialed_targets_are_refused_at_subscribe() {
    let db = sqlite();
    let h = start(db.open().await, |_| AuthMode::MutualTls, |_| {}).await;
    let listening = target(Some(0), || {}).await;
    let port = listening.port;
    let cases = [
        (format!("https://127.0.0.1:{port}/hook"), "loopback"),
        (format!("http://127.0.0.1:{port}/hook"), "loopback"),
        (format!("https://[::1]:{port}/hook"), "loopback"),
        (format!("https://0177.0.0.1:{port}/hook"), "loopback"),
        (format!("https://2130706433:{port}/hook"), "loopback"),
        (format!("https://0x7f.1:{port}/hook"), "loopback"),
        (format!("https://127.1:{port}/hook"), "loopback"),
        (
            format!("https://[::ffff:127.0.0.1]:{port}/hook"),
            "loopback",
        ),
        (format!("https://localhost:{port}/hook"), "loopback"),
        ("https://0.0.0.0/hook".to_owned(), "unspecified"),
        ("https://10.1.2.3/hook".to_owned(), "private"),
        ("https://172.16.0.1/hook".to_owned(), "private"),
        ("https://192.168.1.1/hook".to_owned(), "private"),
        ("https://[fd00::1]/hook".to_owned(), "private"),
        (
            "https://169.254.169.254/latest/meta-data".to_owned(),
            "link-local",
        ),
        ("https://[fe80::1]/hook".to_owned(), "link-local"),
        ("https://100.64.0.1/hook".to_owned(), "CGNAT"),
        ("https://224.0.0.1/hook".to_owned(), "multicast"),
        ("https://255.255.255.255/hook".to_owned(), "broadcast"),
        ("https://192.0.2.1/hook".to_owned(), "documentation"),
        (
            "https://user:secret@hooks.example/hook".to_owned(),
            "user name or password",
        ),
        (
            "https://user@hooks.example/hook".to_owned(),
            "user name or password",
        ),
        ("ftp://hooks.example/hook".to_owned(), "https://"),
    ];
    for (bad, why) in &cases {
        let (status, body, _) = create(&h, "school-client", bad).await;
        assert_eq!(status, 400, "{bad} was accepted: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{bad}: {message}");
        if *why != "user name or password" && *why != "https://" {
            assert!(
                message.contains("--webhook-allow-private-targets"),
                "{bad}: {message}"
            );
        }
    }
    assert!(h.api.store().subscriptions().await.unwrap().is_empty());
    let (status, body, _) = create(&h, "school-client", "https://hooks.example/hook").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(listening.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn internal_targets_are_refused_on_delivery_also_after_resolution() {
    let db = sqlite();
    let store = db.open().await;
    let listening = target(Some(0), || {}).await;
    let port = listening.port;
    // Stored directly: made before the policy, or by a name that now resolves inward
    // (DNS rebinding). `localhost` resolves to loopback through the system resolver.
    for url in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://0x7f.1:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
    ] {
        subscribe(&store, &url, &["Person"]).await;
    }
    let hooks = webhooks(&store, public_only());
    let tasks = hooks
        .notify(&[Change::Modified(Collection::Persons)])
        .await
        .unwrap();
    assert_eq!(tasks.len(), 4);
    for task in tasks {
        assert_eq!(task.await.unwrap(), Outcome::Refused);
    }
    assert_eq!(
        listening.connections.load(Ordering::SeqCst),
        0,
        "no connection reached the internal target"
    );
    assert_eq!(results(&store).await, ["refused"; 4]);
    let details = details(&store).await;
    assert!(
        details
            .iter()
            .any(|d| d.contains("webhook host localhost resolves to")),
        "{details:?}"
    );
    // The opt-in delivers to the same targets.
    let allowed = webhooks(&store, fast_webhooks());
    for task in allowed
        .notify(&[Change::Modified(Collection::Persons)])
        .await
        .unwrap()
    {
        assert_eq!(task.await.unwrap(), Outcome::Delivered);
    }
    assert_eq!(listening.bodies.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn each_client_holds_at_most_the_cap_of_subscriptions() {
    let db = sqlite();
    let h = start(
        db.open().await,
        |_| AuthMode::MutualTls,
        |c| {
            c.max_subscriptions = 3;
            c.subscription_creates = RateLimit {
                per_second: 1000.0,
                burst: 1000,
            };
        },
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body, _) = create(&h, "school-client", "https://hooks.example/a").await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, body, _) = create(&h, "school-client", "https://hooks.example/a").await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("(3, the server's --max-subscriptions)"),
        "{message}"
    );
    assert_eq!(body["code"], "too_many_subscriptions");
    // Another member has its own cap.
    let (status, body, _) = create(&h, "supplier-client", "https://hooks.example/b").await;
    assert_eq!(status, 201, "{body}");
    // Deleting one makes room.
    let response = h
        .client(Some("school-client"))
        .delete(h.url(&format!("/subscriptions/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, body, _) = create(&h, "school-client", "https://hooks.example/a").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(h.api.store().subscriptions().await.unwrap().len(), 4);
}

#[tokio::test]
async fn the_default_cap_is_ten_subscriptions() {
    let db = sqlite();
    let h = start(db.open().await, |_| AuthMode::MutualTls, |_| {}).await;
    for i in 0..10 {
        let (status, body, _) =
            create(&h, "school-client", &format!("https://hooks.example/{i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body, _) = create(&h, "school-client", "https://hooks.example/x").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(h.api.store().subscriptions().await.unwrap().len(), 10);
}

#[tokio::test]
async fn creating_subscriptions_is_rate_limited_per_client() {
    let db = sqlite();
    let h = start(
        db.open().await,
        |_| AuthMode::MutualTls,
        |c| {
            c.subscription_creates = RateLimit {
                per_second: 1.0 / 86_400.0,
                burst: 2,
            };
        },
    )
    .await;
    for _ in 0..2 {
        let (status, body, _) = create(&h, "school-client", "https://hooks.example/a").await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body, retry_after) = create(&h, "school-client", "https://hooks.example/a").await;
    assert_eq!(status, 429, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("--subscription-creates-per-minute"),
        "{message}"
    );
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(retry_after > 0);
    let (status, body, _) = create(&h, "supplier-client", "https://hooks.example/b").await;
    assert_eq!(status, 201, "another client has its own rate: {body}");
    assert_eq!(h.api.store().subscriptions().await.unwrap().len(), 3);
}

#[tokio::test]
async fn delivery_records_are_bounded_per_subscription_and_expire() {
    let db = sqlite();
    let store = db.open().await;
    let failing = target(None, || {}).await;
    let noisy = subscribe(&store, &failing.url, &["Person"]).await;
    let quiet = target(Some(0), || {}).await;
    let other = subscribe(&store, &quiet.url, &["Person"]).await;
    let config = WebhookConfig {
        max_attempts: 6,
        max_records: 3,
        ..fast_webhooks()
    };
    let hooks = webhooks(&store, config.clone());
    for task in hooks
        .notify(&[Change::Modified(Collection::Persons)])
        .await
        .unwrap()
    {
        task.await.unwrap();
    }
    assert_eq!(failing.bodies.lock().unwrap().len(), 6, "6 attempts made");
    let records = store.records("webhook", 0, 100).await.unwrap();
    let of = |id: &str| -> Vec<String> {
        records
            .iter()
            .filter(|(_, _, r)| r["subscription"] == id)
            .map(|(_, _, r)| r["result"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        of(&noisy.id),
        ["failed", "failed", "gave_up"],
        "the newest 3 kept"
    );
    assert_eq!(of(&other.id), ["delivered"]);
    // Records older than the retention are dropped (a retention of zero: all of them).
    let expiring = webhooks(
        &store,
        WebhookConfig {
            record_retention: Duration::ZERO,
            ..config
        },
    );
    store.delete_subscription(&noisy.id).await.unwrap();
    for task in expiring
        .notify(&[Change::Modified(Collection::Persons)])
        .await
        .unwrap()
    {
        task.await.unwrap();
    }
    assert!(store.records("webhook", 0, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_delivery_in_flight_per_subscription_and_changes_are_merged() {
    let db = sqlite();
    let store = db.open().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let slow = gated_target(
        Some(0),
        move || {
            let _ = arrived_tx.send(());
        },
        Some(Arc::clone(&gate)),
    )
    .await;
    subscribe(&store, &slow.url, &["Person", "Group"]).await;
    let hooks = webhooks(&store, fast_webhooks());
    let mut tasks = hooks
        .notify(&[Change::Modified(Collection::Persons)])
        .await
        .unwrap();
    assert_eq!(tasks.len(), 1);
    // The first delivery is held at the target; 30 more changes meanwhile start nothing.
    arrived.recv().await.unwrap();
    for i in 0..30 {
        let change = match i % 3 {
            0 => Change::Modified(Collection::Persons),
            1 => Change::Modified(Collection::Groups),
            _ => Change::Deleted(Collection::Persons),
        };
        let more = hooks.notify(&[change]).await.unwrap();
        assert!(
            more.is_empty(),
            "a second delivery was started at change {i}"
        );
        tasks.extend(more);
    }
    gate.add_permits(100);
    for task in tasks {
        assert_eq!(task.await.unwrap(), Outcome::Delivered);
    }
    let bodies = slow.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies.len(),
        2,
        "the 30 changes went out as one delivery: {bodies:?}"
    );
    assert_eq!(
        bodies[1],
        json!({"modifiedEntities": ["Group", "Person"], "modifiedEntites": ["Group", "Person"],
               "deletedEntities": true})
    );
    // Once nothing is in flight, the next change starts a delivery again.
    let next = hooks
        .notify(&[Change::Modified(Collection::Persons)])
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    for task in next {
        assert_eq!(task.await.unwrap(), Outcome::Delivered);
    }
}
