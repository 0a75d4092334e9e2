//! The push engine against the local Provisioning API stand-in, with tokens from the project's
//! GNAP server and a real SQLite store.

use std::sync::Arc;
use std::time::Duration;

use kontosynk_client::push::{
    Bearer, ObjectType, ProvisioningClient, PushConfig, PushEngine, PushError, RateLimits,
};
use kontosynk_client::token::{AccessRequest, PROVISIONING_API};
use kontosynk_testbed::federation::Fed;
use kontosynk_testbed::gnap::{Gnap, standin_http, start_gnap, start_standin, token_client};
use kontosynk_testbed::provisioning_standin::{ProvisioningStandIn, RequestKind};
use serde_json::{Value, json};
use ss12000::{Collection, Database, Object, Store, Timestamp, WriteBatch};

const SCHOOL_UNIT: &str = "5d4ad8a0-52b3-4c4d-9a5b-000000000001";
const PARENT_ACTIVITY: &str = "5d4ad8a0-52b3-4c4d-9a5b-000000000002";

fn uuid(kind: u8, n: usize) -> String {
    format!("00000000-0000-4000-8{kind:03}-{n:012}")
}

fn person(n: usize) -> Value {
    json!({
        "id": uuid(1, n),
        "meta": {"created": "2025-01-01T00:00:00Z", "modified": "2025-01-01T00:00:00Z"},
        "givenName": format!("Elev{n}"),
        "familyName": "Svensson",
        "eduPersonPrincipalNames": [format!("e{n}@edu.school.example")],
        "civicNo": {"value": format!("2009012{n:05}"), "nationality": "SE"},
        "emails": [{"value": format!("e{n}@school.example"), "type": "Skola elev"}],
        "enrolments": [{"enroledAt": {"id": SCHOOL_UNIT}, "schoolType": "GR", "schoolYear": 6}],
    })
}

fn duty(n: usize, person_n: usize) -> Value {
    json!({"id": uuid(2, n), "person": {"id": uuid(1, person_n)},
           "dutyAt": {"id": SCHOOL_UNIT}, "dutyRole": "Lärare"})
}

fn group(n: usize, group_type: &str, members: &[usize]) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|m| json!({"person": {"id": uuid(1, *m)}}))
        .collect();
    json!({"id": uuid(3, n), "displayName": format!("6{n}"), "groupType": group_type,
           "schoolType": "GR", "organisation": {"id": SCHOOL_UNIT}, "groupMemberships": members})
}

fn activity(n: usize, group_n: usize, duty_n: usize) -> Value {
    json!({"id": uuid(4, n), "displayName": "MA åk 6", "activityType": "Undervisning",
           "groups": [{"id": uuid(3, group_n)}], "teachers": [{"duty": {"id": uuid(2, duty_n)}}],
           "organisation": {"id": SCHOOL_UNIT}, "parentActivity": {"id": PARENT_ACTIVITY}})
}

struct Setup {
    _fed: Fed,
    _gnap: Gnap,
    _dir: tempfile::TempDir,
    standin: ProvisioningStandIn,
    store: Store,
    bearer: Bearer,
}

async fn setup() -> Setup {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let standin = start_standin(&gnap, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Database::Sqlite(dir.path().join("school.sqlite")))
        .await
        .unwrap();
    let tokens = Arc::new(token_client(&fed, "school-client", gnap.server.addr));
    let bearer = Bearer::Gnap {
        client: tokens,
        access: AccessRequest::new(PROVISIONING_API, [standin.base_url()]),
    };
    Setup {
        _fed: fed,
        _gnap: gnap,
        _dir: dir,
        standin,
        store,
        bearer,
    }
}

impl Setup {
    async fn load(&self, collection: Collection, objects: &[Value]) {
        let mut batch = WriteBatch::new();
        for o in objects {
            batch.upsert(collection.clone(), Object::from_value(o).unwrap());
        }
        self.store.apply(batch).await.unwrap();
    }

    /// A small school: 4 persons, 1 duty, a class and a mentor group, 1 activity.
    async fn load_school(&self) {
        self.load(
            Collection::Persons,
            &(1..=4).map(person).collect::<Vec<_>>(),
        )
        .await;
        self.load(Collection::Duties, &[duty(1, 1)]).await;
        self.load(
            Collection::Groups,
            &[group(1, "Klass", &[2, 3, 4]), group(2, "Mentor", &[2])],
        )
        .await;
        self.load(Collection::Activities, &[activity(1, 1, 1)])
            .await;
    }

    fn engine_with(&self, limits: RateLimits, config: PushConfig) -> PushEngine {
        let api = ProvisioningClient::new(
            standin_http(&self.standin),
            self.standin.base_url().parse().unwrap(),
            self.bearer.clone(),
            limits,
        );
        PushEngine::new(self.store.clone(), api, config)
    }

    fn engine(&self) -> PushEngine {
        self.engine_with(RateLimits::default(), fast())
    }

    async fn state(&self, t: ObjectType, id: &str) -> Option<Value> {
        self.store.state(&t.state_key(id)).await.unwrap()
    }

    fn submissions(&self, kind: RequestKind) -> Vec<(ObjectType, Vec<String>)> {
        self.standin
            .requests()
            .into_iter()
            .filter(|r| r.kind == kind && r.status == 202)
            .map(|r| (r.object_type.unwrap(), r.ids))
            .collect()
    }
}

fn fast() -> PushConfig {
    PushConfig {
        poll_interval: Duration::from_millis(10),
        ..PushConfig::default()
    }
}

#[tokio::test]
async fn types_are_pushed_in_order_each_after_the_previous_jobs_finished() {
    let s = setup().await;
    s.load_school().await;
    let report = s.engine().run().await.unwrap();

    let persons = report.get(ObjectType::Persons).unwrap();
    assert_eq!((persons.live, persons.sent, persons.succeeded), (4, 4, 4));
    let groups = report.get(ObjectType::Groups).unwrap();
    assert_eq!((groups.sent, groups.succeeded, groups.skipped), (1, 1, 1));
    assert_eq!(report.get(ObjectType::Activities).unwrap().succeeded, 1);
    assert!(!report.has_failures(), "{report:?}");

    // Order of submissions, and each type's job completed (status fetched) before the next
    // type's first submission.
    let requests = s.standin.requests();
    let submits: Vec<_> = requests
        .iter()
        .filter(|r| r.kind == RequestKind::BulkUpsert)
        .collect();
    let order: Vec<ObjectType> = submits.iter().map(|r| r.object_type.unwrap()).collect();
    assert_eq!(order, ObjectType::ORDER.to_vec());
    for pair in submits.windows(2) {
        let job = pair[0].job_id.as_deref().unwrap();
        let done = requests
            .iter()
            .find(|r| r.kind == RequestKind::JobStatus && r.job_id.as_deref() == Some(job))
            .expect("the job's status was fetched");
        assert!(
            done.seq < pair[1].seq,
            "{:?} before {:?} finished",
            pair[1],
            pair[0]
        );
        // isCompleted said false at least once (the stand-in's jobs take one poll).
        assert!(requests.iter().any(|r| r.kind == RequestKind::IsCompleted
            && r.job_id.as_deref() == Some(job)
            && r.seq < done.seq));
    }
    // The mentor group never reached Skolverket; the rest did, as the API's schema.
    assert_eq!(s.standin.objects(ObjectType::Groups).len(), 1);
    let stored = &s.standin.objects(ObjectType::Persons)[&uuid(1, 1)];
    assert!(stored.get("meta").is_none());
    assert_eq!(
        stored["enrolments"][0]["enroledAt"],
        json!({"id": SCHOOL_UNIT})
    );

    let state = s.state(ObjectType::Duties, &uuid(2, 1)).await.unwrap();
    assert_eq!(state["status"], "Success");
    assert!(state["jobId"].is_string());

    // Nothing changed: a second run sends nothing.
    let before = s.submissions(RequestKind::BulkUpsert).len();
    let again = s.engine().run().await.unwrap();
    assert_eq!(s.submissions(RequestKind::BulkUpsert).len(), before);
    assert_eq!(again.get(ObjectType::Persons).unwrap().unchanged, 4);
    assert_eq!(again.get(ObjectType::Persons).unwrap().sent, 0);

    // One changed person: only it is sent.
    let mut changed = person(3);
    changed["familyName"] = json!("Andersson");
    s.load(Collection::Persons, &[changed]).await;
    let third = s.engine().run().await.unwrap();
    assert_eq!(third.get(ObjectType::Persons).unwrap().sent, 1);
    let last = s.submissions(RequestKind::BulkUpsert).pop().unwrap();
    assert_eq!(last, (ObjectType::Persons, vec![uuid(1, 3)]));
    assert_eq!(
        s.standin.objects(ObjectType::Persons)[&uuid(1, 3)]["familyName"],
        "Andersson"
    );
}

#[tokio::test]
async fn requests_stay_under_200_kb_and_an_oversized_object_is_reported_not_sent() {
    let s = setup().await;
    let mut persons: Vec<Value> = (1..=12)
        .map(|n| {
            let mut p = person(n);
            p["givenName"] = json!(format!("{n}{}", "x".repeat(40_000)));
            p
        })
        .collect();
    let mut huge = person(13);
    huge["givenName"] = json!("y".repeat(250_000));
    persons.push(huge);
    s.load(Collection::Persons, &persons).await;

    let report = s.engine().run().await.unwrap();
    let summary = report.get(ObjectType::Persons).unwrap();
    assert_eq!(
        (summary.sent, summary.succeeded, summary.too_large),
        (12, 12, 1)
    );
    assert!(summary.jobs >= 3, "{summary:?}");
    assert!(report.has_failures());

    let submits: Vec<_> = s
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.kind == RequestKind::BulkUpsert)
        .collect();
    assert_eq!(submits.len() as u64, summary.jobs);
    for r in &submits {
        assert!(r.body_bytes <= 200_000, "{} bytes", r.body_bytes);
        assert!(r.status == 202);
        assert!(!r.ids.contains(&uuid(1, 13)));
    }
    let state = s.state(ObjectType::Persons, &uuid(1, 13)).await.unwrap();
    assert_eq!(state["status"], "TooLarge");
    assert!(
        state["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("200000")
    );
    // Still too large next run: still not sent, still reported.
    let again = s.engine().run().await.unwrap();
    assert_eq!(again.get(ObjectType::Persons).unwrap().too_large, 1);
    assert_eq!(again.get(ObjectType::Persons).unwrap().sent, 0);
}

#[tokio::test]
async fn the_stand_in_refuses_a_body_over_the_limit_with_413() {
    let s = setup().await;
    s.load(
        Collection::Persons,
        &(1..=3).map(person).collect::<Vec<_>>(),
    )
    .await;
    // A client configured with a larger limit than the API's: the API says 413.
    let config = PushConfig {
        max_request_bytes: 10_000_000,
        ..fast()
    };
    let mut big = person(4);
    big["givenName"] = json!("z".repeat(210_000));
    s.load(Collection::Persons, &[big]).await;
    let error = s
        .engine_with(RateLimits::default(), config)
        .run()
        .await
        .unwrap_err();
    match error {
        PushError::Api(kontosynk_client::push::ApiError::Status {
            status, entries, ..
        }) => {
            assert_eq!(status, 413);
            assert_eq!(entries[0].id.as_deref(), Some("5020"));
        }
        other => panic!("expected 413, got {other}"),
    }
}

#[tokio::test]
async fn rate_limit_answers_are_waited_out() {
    let s = setup().await;
    s.load_school().await;
    // A burst of 429s (other clients used the quota), then a client pacing itself too fast
    // for the API: every 429 carries x-ratelimit-reset and the run still completes.
    s.standin.rate_limit_next(3);
    let too_fast = RateLimits {
        bulk_per_sec: 100.0,
        read_per_sec: 100.0,
    };
    let engine = s.engine_with(too_fast, fast());
    let report = engine.run().await.unwrap();
    assert!(!report.has_failures(), "{report:?}");
    assert_eq!(report.get(ObjectType::Activities).unwrap().succeeded, 1);
    let limited = s
        .standin
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert!(limited >= 3, "{limited}");
    assert_eq!(engine.api().retries() as usize, limited);
    assert_eq!(s.standin.objects(ObjectType::Persons).len(), 4);
}

#[tokio::test]
async fn per_object_errors_are_stored_and_retried_next_run() {
    let s = setup().await;
    s.load(
        Collection::Persons,
        &(1..=3).map(person).collect::<Vec<_>>(),
    )
    .await;
    s.standin
        .fail_object(&uuid(1, 2), "Bristfälligt värde på Federationsanvändarnamn");
    let report = s.engine().run().await.unwrap();
    let summary = report.get(ObjectType::Persons).unwrap();
    assert_eq!((summary.succeeded, summary.failed), (2, 1));
    assert!(report.has_failures());
    let state = s.state(ObjectType::Persons, &uuid(1, 2)).await.unwrap();
    assert_eq!(state["status"], "Error");
    assert_eq!(
        state["errors"][0]["message"],
        "Bristfälligt värde på Federationsanvändarnamn"
    );
    assert_eq!(state["errors"][0]["severityLevel"], "Error");

    s.standin.clear_object_failure(&uuid(1, 2));
    let again = s.engine().run().await.unwrap();
    assert_eq!(again.get(ObjectType::Persons).unwrap().sent, 1);
    assert_eq!(again.get(ObjectType::Persons).unwrap().succeeded, 1);
    assert_eq!(
        s.submissions(RequestKind::BulkUpsert).pop().unwrap().1,
        vec![uuid(1, 2)]
    );
    let state = s.state(ObjectType::Persons, &uuid(1, 2)).await.unwrap();
    assert_eq!(state["status"], "Success");
}

#[tokio::test]
async fn invalid_objects_are_recorded_and_never_sent() {
    let s = setup().await;
    let mut bad = person(2);
    bad.as_object_mut().unwrap().remove("civicNo");
    s.load(Collection::Persons, &[person(1), bad]).await;
    let mut orphan_activity = activity(1, 1, 1);
    orphan_activity
        .as_object_mut()
        .unwrap()
        .remove("parentActivity");
    s.load(Collection::Activities, &[orphan_activity]).await;
    let report = s.engine().run().await.unwrap();
    assert_eq!(report.get(ObjectType::Persons).unwrap().invalid, 1);
    assert_eq!(report.get(ObjectType::Activities).unwrap().invalid, 1);
    let state = s.state(ObjectType::Persons, &uuid(1, 2)).await.unwrap();
    assert_eq!(state["status"], "Invalid");
    assert!(
        state["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("civicNo")
    );
    for (_, ids) in s.submissions(RequestKind::BulkUpsert) {
        assert!(!ids.contains(&uuid(1, 2)));
    }
}

#[tokio::test]
async fn a_killed_run_resumes_its_submitted_job_instead_of_sending_again() {
    let s = setup().await;
    s.load_school().await;
    s.standin.set_job_polls(u32::MAX);
    let engine = Arc::new(s.engine());
    let running = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move { engine.run().await })
    };
    // Kill the run once the persons' job was submitted and is being polled.
    for _ in 0..500 {
        if s.standin
            .requests()
            .iter()
            .any(|r| r.kind == RequestKind::IsCompleted)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.abort();
    let _ = running.await;
    assert_eq!(s.submissions(RequestKind::BulkUpsert).len(), 1);
    let pending = s.state(ObjectType::Persons, &uuid(1, 1)).await.unwrap();
    assert_eq!(pending["status"], "Pending");

    s.standin.set_job_polls(1);
    s.standin.finish_jobs();
    let report = s.engine().run().await.unwrap();
    let persons = report.get(ObjectType::Persons).unwrap();
    assert_eq!(
        (persons.resumed, persons.sent, persons.unchanged),
        (4, 0, 4)
    );
    let persons_submits = s
        .submissions(RequestKind::BulkUpsert)
        .iter()
        .filter(|(t, _)| *t == ObjectType::Persons)
        .count();
    assert_eq!(persons_submits, 1, "the persons were not sent twice");
    assert!(!report.has_failures(), "{report:?}");
    assert_eq!(s.standin.objects(ObjectType::Activities).len(), 1);
}

#[tokio::test]
async fn tombstoned_objects_are_deleted_once() {
    let s = setup().await;
    s.load_school().await;
    s.engine().run().await.unwrap();
    assert_eq!(s.standin.objects(ObjectType::Persons).len(), 4);

    let mut batch = WriteBatch::new();
    batch.delete(Collection::Activities, &uuid(4, 1), Timestamp::now());
    batch.delete(Collection::Persons, &uuid(1, 4), Timestamp::now());
    // Never pushed: no deletion is sent for it.
    batch.delete(Collection::Persons, &uuid(1, 99), Timestamp::now());
    s.store.apply(batch).await.unwrap();

    let report = s.engine().run().await.unwrap();
    assert_eq!(report.get(ObjectType::Persons).unwrap().deleted, 1);
    assert_eq!(report.get(ObjectType::Activities).unwrap().deleted, 1);
    let deletes = s.submissions(RequestKind::BulkDelete);
    assert_eq!(
        deletes,
        vec![
            (ObjectType::Activities, vec![uuid(4, 1)]),
            (ObjectType::Persons, vec![uuid(1, 4)]),
        ]
    );
    assert!(
        !s.standin
            .objects(ObjectType::Persons)
            .contains_key(&uuid(1, 4))
    );
    assert!(s.state(ObjectType::Persons, &uuid(1, 4)).await.is_none());

    s.engine().run().await.unwrap();
    assert_eq!(s.submissions(RequestKind::BulkDelete).len(), 2);
}

#[tokio::test]
async fn a_bad_token_is_refused_with_403() {
    let s = setup().await;
    s.load(Collection::Persons, &[person(1)]).await;
    let api = ProvisioningClient::new(
        standin_http(&s.standin),
        s.standin.base_url().parse().unwrap(),
        Bearer::Static(Arc::from("not.a.jwt")),
        RateLimits::default(),
    );
    let error = PushEngine::new(s.store.clone(), api, fast())
        .run()
        .await
        .unwrap_err();
    match &error {
        PushError::Api(kontosynk_client::push::ApiError::Status {
            status, entries, ..
        }) => {
            assert_eq!(*status, 403);
            assert_eq!(entries[0].id.as_deref(), Some("5002"));
        }
        other => panic!("expected 403, got {other}"),
    }
    assert!(!error.to_string().contains("not.a.jwt"));
    assert!(s.standin.objects(ObjectType::Persons).is_empty());
}

#[tokio::test]
async fn a_token_for_another_api_is_refused() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let standin = start_standin(&gnap, |_| {}).await;
    let tokens = Arc::new(token_client(&fed, "school-client", gnap.server.addr));
    let api = ProvisioningClient::new(
        standin_http(&standin),
        standin.base_url().parse().unwrap(),
        Bearer::Gnap {
            client: Arc::clone(&tokens),
            access: AccessRequest::new(PROVISIONING_API, ["https://elsewhere.example/v1"]),
        },
        RateLimits::default(),
    );
    let error = api
        .job_status(ObjectType::Persons, &uuid(9, 1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("403"), "{error}");
    // The 403 made the client drop its token and try once more with a fresh one.
    assert_eq!(tokens.requests_sent(), 2);
    assert!(api.alive().await.unwrap());
}
