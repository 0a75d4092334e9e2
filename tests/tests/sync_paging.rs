//! The sync engine against a local stand-in SS 12000 server (see `sync_support`): full and
//! incremental sync, every paging convention of PROTOCOL-NOTES §4, deletions, and resuming
//! after a failure or an abort mid-listing. SQLite, and PostgreSQL for the main scenario.

use std::time::Duration;

use kontosynk_client::sync::{
    Bound, Mode, NoProgress, RunBounds, SyncError, SyncOptions, SyncReport, Syncer, state_key,
};
use kontosynk_testbed::sync_standin::{Data, LastPage, Quirks, StandIn, persons, sender};
use serde_json::{Value, json};
use ss12000::{Collection, DeletedQuery, Store, Timestamp};

fn options(limit: u32) -> SyncOptions {
    SyncOptions {
        limit,
        ..SyncOptions::default()
    }
}

async fn sync(
    server: &StandIn,
    store: &Store,
    options: SyncOptions,
) -> Result<SyncReport, SyncError> {
    Syncer::new(sender(), server.base(), store.clone())
        .options(options)
        .run(&NoProgress)
        .await
}

/// The store's live objects of a collection equal the server's, JSON text included.
async fn assert_mirrors(server: &StandIn, store: &Store, collection: Collection) {
    let expected = server.data().live(collection.path());
    assert_eq!(
        store.count(&collection).await.unwrap(),
        expected.len() as u64,
        "{collection}"
    );
    for (id, object) in expected {
        let stored = store
            .get(&collection, &id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{collection}/{id} missing"));
        assert_eq!(stored.json(), object.to_string(), "{collection}/{id}");
    }
}

fn counts(report: &SyncReport, collection: Collection) -> (Mode, u64, u64, u64, u64) {
    let c = report.collection(&collection).unwrap();
    (c.mode, c.new, c.updated, c.deleted, c.unchanged)
}

fn seeded() -> Data {
    let mut data = Data::default();
    let at = Timestamp::now();
    persons(&mut data, 25, at);
    data.put(
        "organisations",
        "o1",
        json!({"displayName": "Skolan", "schoolUnitCode": "12345678"}),
        at,
    );
    for g in 0..3 {
        data.put(
            "groups",
            &format!("g{g}"),
            json!({"displayName": format!("7{g}"), "groupMemberships": [{"person": {"id": "p00001"}}]}),
            at,
        );
    }
    data.put("activities", "a1", json!({"displayName": "Matte"}), at);
    data
}

async fn full_then_incremental(store: Store) {
    let server = StandIn::start(seeded()).await;

    let first = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(
        counts(&first, Collection::Persons),
        (Mode::Full, 25, 0, 0, 0)
    );
    assert_eq!(first.collection(&Collection::Persons).unwrap().pages, 3);
    assert_eq!(
        counts(&first, Collection::Organisations),
        (Mode::Full, 1, 0, 0, 0)
    );
    assert_eq!(counts(&first, Collection::Groups), (Mode::Full, 3, 0, 0, 0));
    assert_eq!(counts(&first, Collection::Duties), (Mode::Full, 0, 0, 0, 0));
    for c in Collection::SYNC_ORDER {
        assert_mirrors(&server, &store, c).await;
    }
    let order: Vec<String> = server
        .data()
        .requests
        .iter()
        .filter(|r| !r.contains("pageToken"))
        .map(|r| {
            r.split('?')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        order,
        [
            "organisations",
            "persons",
            "groups",
            "duties",
            "activities",
            "deletedEntities"
        ]
    );
    assert!(
        server
            .data()
            .requests
            .iter()
            .all(|r| !r.contains("meta.modified.after")),
        "a first sync lists everything"
    );

    // Changes on the server: one update, one new person.
    {
        let mut data = server.data();
        let later = Timestamp::now();
        data.put("persons", "p00003", json!({"givenName": "Changed"}), later);
        data.put("persons", "p99999", json!({"givenName": "New"}), later);
        data.requests.clear();
    }
    let second = sync(&server, &store, options(10)).await.unwrap();
    // Everything was modified within the overlap window, so it is listed again (unchanged).
    assert_eq!(
        counts(&second, Collection::Persons),
        (Mode::Incremental, 1, 1, 0, 24)
    );
    assert_eq!(
        counts(&second, Collection::Groups),
        (Mode::Incremental, 0, 0, 0, 3)
    );
    assert_mirrors(&server, &store, Collection::Persons).await;
    let requests = server.data().requests.clone();
    let first_persons = requests.iter().find(|r| r.contains("/persons?")).unwrap();
    assert!(
        first_persons.contains("meta.modified.after="),
        "{first_persons}"
    );
    let watermark = first
        .collection(&Collection::Persons)
        .unwrap()
        .watermark
        .unwrap();
    assert!(
        first_persons.contains(&watermark.to_string().replace(':', "%3A")),
        "{first_persons} should carry {watermark}"
    );
    // The watermark is the pass start minus the default 5-minute overlap.
    let now = Timestamp::now();
    assert!(watermark < now.add_seconds(-299) && watermark > now.add_seconds(-400));

    // --full lists everything again, without a filter, and finds nothing new.
    server.data().requests.clear();
    let full = sync(
        &server,
        &store,
        SyncOptions {
            full: true,
            ..options(10)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        counts(&full, Collection::Persons),
        (Mode::Full, 0, 0, 0, 26)
    );
    assert!(
        server
            .data()
            .requests
            .iter()
            .all(|r| !r.contains("meta.modified.after")),
        "--full sends no filter"
    );
}

#[tokio::test]
async fn full_then_incremental_sqlite() {
    let db = ss12000::testing::sqlite();
    full_then_incremental(db.open().await).await;
}

#[tokio::test]
async fn full_then_incremental_postgres() {
    let db = ss12000::testing::postgres().await;
    full_then_incremental(db.open().await).await;
}

#[tokio::test]
async fn every_last_page_convention_ends_the_listing() {
    for (last_page, empty_after_full, n) in [
        (LastPage::Omit, false, 20),
        (LastPage::Null, false, 20),
        (LastPage::Empty, false, 20),
        (LastPage::Omit, true, 20),
        (LastPage::Null, true, 23),
        (LastPage::Omit, false, 0),
    ] {
        let mut data = Data {
            quirks: Quirks {
                last_page,
                empty_page_after_full: empty_after_full,
                ..Quirks::default()
            },
            ..Data::default()
        };
        persons(&mut data, n, Timestamp::now());
        let server = StandIn::start(data).await;
        let db = ss12000::testing::sqlite();
        let store = db.open().await;
        let report = sync(&server, &store, options(10)).await.unwrap();
        let label = format!("{last_page:?} empty_after_full={empty_after_full} n={n}");
        let persons = report.collection(&Collection::Persons).unwrap();
        assert_eq!(persons.new, n as u64, "{label}");
        let expected_pages = if n == 0 {
            1
        } else if empty_after_full && n % 10 == 0 {
            n as u64 / 10 + 1
        } else {
            (n as u64).div_ceil(10)
        };
        assert_eq!(persons.pages, expected_pages, "{label}");
        assert_mirrors(&server, &store, Collection::Persons).await;
    }
}

#[tokio::test]
async fn page_tokens_are_url_encoded_and_sent_without_filters() {
    let mut data = Data::default();
    persons(&mut data, 30, Timestamp::now());
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    sync(&server, &store, options(7)).await.unwrap();
    // Second run: incremental, so the first request carries a filter and later ones must not.
    sync(&server, &store, options(7)).await.unwrap();
    let requests = server.data().requests.clone();
    let with_token: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("pageToken="))
        .collect();
    assert!(with_token.len() >= 8, "{requests:?}");
    for r in with_token {
        let query = r.split_once('?').unwrap().1;
        let names: Vec<&str> = query
            .split('&')
            .map(|p| p.split('=').next().unwrap())
            .collect();
        assert_eq!(names, ["limit", "pageToken"], "{r}");
        assert!(
            r.contains("pageToken=%2B%2F"),
            "`+/` must be percent-encoded: {r}"
        );
        assert!(!r.contains('+'), "{r}");
    }
}

#[tokio::test]
async fn organisations_under_their_own_key_are_read() {
    let mut data = seeded();
    data.quirks.organisations_key = true;
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let report = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(
        report.collection(&Collection::Organisations).unwrap().new,
        1
    );
    assert_mirrors(&server, &store, Collection::Organisations).await;
}

#[tokio::test]
async fn a_repeated_token_stops_the_sync_and_keeps_what_was_applied() {
    let mut data = Data::default();
    persons(&mut data, 30, Timestamp::now());
    data.quirks.repeat_token_in = Some("persons".into());
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let error = sync(&server, &store, options(10)).await.unwrap_err();
    assert!(matches!(error, SyncError::TokenLoop { .. }), "{error}");
    assert!(error.to_string().contains("repeated page token"), "{error}");
    // The pages before the loop was seen are stored with their state.
    let stored = store.count(&Collection::Persons).await.unwrap();
    assert!(stored == 10 || stored == 20, "{stored}");
}

fn bounded(limit: u32, bounds: RunBounds) -> SyncOptions {
    SyncOptions {
        bounds,
        ..options(limit)
    }
}

/// The saved state of one listing: (watermark, page token of the pass in progress).
async fn listing_state(server: &StandIn, store: &Store, listing: &str) -> (Value, Value) {
    let key = state_key(server.base().as_str(), listing);
    let state = store.state(&key).await.unwrap().unwrap_or(Value::Null);
    (
        state["watermark"].clone(),
        state["pass"]["page_token"].clone(),
    )
}

/// Asserts a bounded stop: the error names the server, the listing and the bound, the
/// committed pages stay, and the listing has no watermark (it never completed) but keeps its
/// resume token.
async fn assert_stopped(
    error: SyncError,
    server: &StandIn,
    store: &Store,
    collection: Collection,
    expected: Bound,
    committed: u64,
) {
    let text = error.to_string();
    let SyncError::Bounded { bound, objects, .. } = error else {
        panic!("not a bounded stop: {text}");
    };
    assert_eq!(bound, expected, "{text}");
    assert_eq!(objects, committed, "{text}");
    let base = server.base().as_str().trim_end_matches('/').to_owned();
    assert!(text.contains(&base), "{text}");
    assert!(text.contains(&format!("`{collection}` listing")), "{text}");
    assert_eq!(store.count(&collection).await.unwrap(), committed, "{text}");
    let (watermark, token) = listing_state(server, store, collection.path()).await;
    assert_eq!(watermark, Value::Null, "the watermark advanced: {text}");
    assert!(token.is_string(), "no resume token: {text}");
}

#[tokio::test]
async fn a_server_that_never_stops_paging_is_stopped_at_max_objects() {
    let mut data = seeded();
    data.quirks.endless_in = Some("groups".into());
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let bounds = RunBounds {
        max_objects: 95,
        ..RunBounds::default()
    };
    let error = sync(&server, &store, bounded(10, bounds))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("--max-objects"), "{error}");
    assert_stopped(
        error,
        &server,
        &store,
        Collection::Groups,
        Bound::Objects(95),
        90,
    )
    .await;
    // The listings before it completed and are kept; a real listing of exactly the bound
    // (25 persons) is not stopped.
    assert_mirrors(&server, &store, Collection::Persons).await;
    let (watermark, _) = listing_state(&server, &store, "persons").await;
    assert!(watermark.is_string(), "{watermark}");
    let bounds = RunBounds {
        max_objects: 25,
        ..RunBounds::default()
    };
    let mut data = seeded();
    data.quirks.last_page = LastPage::Null;
    let honest = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let fresh = db.open().await;
    sync(&honest, &fresh, bounded(10, bounds)).await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_stops_paging_is_stopped_at_max_pages() {
    let mut data = Data::default();
    data.quirks.endless_in = Some("organisations".into());
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let bounds = RunBounds {
        max_pages: 7,
        ..RunBounds::default()
    };
    let error = sync(&server, &store, bounded(3, bounds)).await.unwrap_err();
    assert!(error.to_string().contains("--max-pages"), "{error}");
    assert_stopped(
        error,
        &server,
        &store,
        Collection::Organisations,
        Bound::Pages(7),
        21,
    )
    .await;
    // Nothing after the stopped listing was requested.
    assert!(
        server
            .data()
            .requests
            .iter()
            .all(|r| r.starts_with("/ss12000/v2.0/organisations")),
        "{:?}",
        server.data().requests
    );
}

#[tokio::test]
async fn a_run_past_its_deadline_stops_after_its_last_committed_page() {
    let mut data = Data::default();
    data.quirks.endless_in = Some("organisations".into());
    // The third page never comes: only the deadline ends the wait.
    data.quirks.hang_request = Some(3);
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let bounds = RunBounds {
        deadline: Duration::from_secs(1),
        ..RunBounds::default()
    };
    let error = sync(&server, &store, bounded(4, bounds)).await.unwrap_err();
    assert!(error.to_string().contains("--deadline"), "{error}");
    assert_stopped(
        error,
        &server,
        &store,
        Collection::Organisations,
        Bound::Deadline(Duration::from_secs(1)),
        8,
    )
    .await;
}

#[tokio::test]
async fn a_bad_object_fails_the_page_naming_its_position() {
    let mut data = Data::default();
    persons(&mut data, 5, Timestamp::now());
    data.objects
        .get_mut("persons")
        .unwrap()
        .insert("p00003".into(), json!({"givenName": "no id"}));
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let error = sync(&server, &store, options(10)).await.unwrap_err();
    match &error {
        SyncError::BadObject { index, url, .. } => {
            assert_eq!(*index, 3);
            assert!(url.contains("/persons?"), "{url}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        store.count(&Collection::Persons).await.unwrap(),
        0,
        "the page is all or nothing"
    );
}

#[tokio::test]
async fn deletions_become_tombstones() {
    let mut data = seeded();
    data.quirks.misspelt_activities = true;
    data.quirks.deleted_page_size = 1;
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    sync(&server, &store, options(10)).await.unwrap();
    {
        let mut data = server.data();
        let at = Timestamp::now();
        data.remove("persons", "p00002", at);
        data.remove("persons", "p00007", at);
        data.remove("activities", "a1", at);
        data.remove("placements", "x1", at); // a collection this client does not sync
    }
    let report = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(report.collection(&Collection::Persons).unwrap().deleted, 2);
    assert_eq!(
        report.collection(&Collection::Activities).unwrap().deleted,
        1
    );
    assert!(
        report.deletion_pages >= 3,
        "one id per page: {}",
        report.deletion_pages
    );
    for c in Collection::SYNC_ORDER {
        assert_mirrors(&server, &store, c).await;
    }
    let tombstones = store
        .deleted(&DeletedQuery {
            limit: 100,
            ..DeletedQuery::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<&str> = tombstones.iter().map(|t| t.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a1", "p00002", "p00007"]);
    let request = server
        .data()
        .requests
        .iter()
        .find(|r| r.contains("deletedEntities?"))
        .unwrap()
        .clone();
    assert!(
        request.contains("entities=Organisation%2CPerson%2CGroup%2CDuty%2CActivity"),
        "{request}"
    );
    assert!(request.contains("after="), "{request}");

    // Deletions already applied are reported again by the overlap window: no double count.
    let again = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(again.collection(&Collection::Persons).unwrap().deleted, 0);
}

#[tokio::test]
async fn a_failed_page_resumes_from_its_token() {
    let mut data = Data::default();
    persons(&mut data, 45, Timestamp::now());
    // Request 1: organisations; 2..: persons pages of 10. Fail the 4th persons page.
    data.quirks.fail_request = Some(5);
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let error = sync(&server, &store, options(10)).await.unwrap_err();
    assert!(
        matches!(error, SyncError::Status { status: 500, .. }),
        "{error}"
    );
    assert_eq!(store.count(&Collection::Persons).await.unwrap(), 30);

    server.data().requests.clear();
    let report = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(
        counts(&report, Collection::Persons),
        (Mode::Resumed, 15, 0, 0, 0)
    );
    let first = server
        .data()
        .requests
        .iter()
        .find(|r| r.contains("/persons?"))
        .unwrap()
        .clone();
    assert!(
        first.contains("pageToken="),
        "resumed with the saved token: {first}"
    );
    assert_mirrors(&server, &store, Collection::Persons).await;
}

#[tokio::test]
async fn a_refused_saved_token_restarts_the_pass_without_loss() {
    let mut data = Data::default();
    persons(&mut data, 45, Timestamp::now());
    data.quirks.fail_request = Some(4);
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    sync(&server, &store, options(10)).await.unwrap_err();
    assert_eq!(store.count(&Collection::Persons).await.unwrap(), 20);
    server.data().quirks.refuse_next_token = true;
    let report = sync(&server, &store, options(10)).await.unwrap();
    let persons = report.collection(&Collection::Persons).unwrap();
    assert_eq!(
        (persons.new, persons.unchanged),
        (25, 20),
        "restarted from the first page"
    );
    assert_mirrors(&server, &store, Collection::Persons).await;
}

#[tokio::test]
async fn an_aborted_sync_resumes_and_loses_nothing() {
    let mut data = Data::default();
    persons(&mut data, 95, Timestamp::now());
    // Request 1: organisations; then persons pages. The 6th request never gets an answer.
    data.quirks.hang_request = Some(6);
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let syncer = Syncer::new(sender(), server.base(), store.clone()).options(options(10));
    let task = tokio::spawn(async move { syncer.run(&NoProgress).await });
    while server.data().page_requests < 6 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Wait until the page fetched before the hanging one is written, then kill the task.
    for _ in 0..3000 {
        if store.count(&Collection::Persons).await.unwrap() == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let stored = store.count(&Collection::Persons).await.unwrap();
    assert_eq!(stored, 40, "four whole pages before the hanging fifth");
    let state = store
        .states_with_prefix(kontosynk_client::sync::STATE_PREFIX)
        .await
        .unwrap();
    assert!(
        state.iter().any(
            |(key, value)| key.ends_with("/persons") && value["pass"]["page_token"].is_string()
        ),
        "{state:?}"
    );

    server.data().quirks.hang_request = None;
    let report = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(
        counts(&report, Collection::Persons),
        (Mode::Resumed, 55, 0, 0, 0)
    );
    assert_mirrors(&server, &store, Collection::Persons).await;
    // And the next run is an ordinary incremental one.
    let next = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(
        next.collection(&Collection::Persons).unwrap().mode,
        Mode::Incremental
    );
}

#[tokio::test]
async fn extra_collections_are_synced_after_the_standard_five() {
    let mut data = seeded();
    data.put("placements", "pl1", json!({"x": 1}), Timestamp::now());
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let placements = Collection::from_path("placements").unwrap();
    let options = options(10).with_extra_collections([placements.clone(), Collection::Persons]);
    assert_eq!(options.collections.len(), 6);
    let report = sync(&server, &store, options).await.unwrap();
    assert_eq!(report.collections.last().unwrap().collection, placements);
    assert_eq!(report.collection(&placements).unwrap().new, 1);
    assert_mirrors(&server, &store, placements).await;
}

#[tokio::test]
async fn statistics_and_log_are_posted() {
    let server = StandIn::start(seeded()).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let report = sync(&server, &store, options(10)).await.unwrap();
    kontosynk_client::sync::report_to_server(&sender(), &server.base(), Ok(&report))
        .await
        .unwrap();
    let posted = server.data().posted.clone();
    let statistics: Vec<&Value> = posted
        .iter()
        .filter(|(p, _)| p == "statistics")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(statistics.len(), 5);
    let persons = statistics
        .iter()
        .find(|v| v["resourceType"] == "Person")
        .unwrap();
    assert_eq!(persons["newCount"], 25);
    assert_eq!(persons["updatedCount"], 0);
    assert_eq!(persons["deletedCount"], 0);
    assert!(
        persons["resourceUrl"]
            .as_str()
            .unwrap()
            .ends_with("/ss12000/v2.0/persons")
    );
    Timestamp::parse(persons["timeOfOccurance"].as_str().unwrap()).unwrap();
    let log: Vec<&Value> = posted
        .iter()
        .filter(|(p, _)| p == "log")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["severityLevel"], "Info");
    assert!(
        log[0]["message"]
            .as_str()
            .unwrap()
            .contains("persons full: 25 new"),
        "{}",
        log[0]
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_and_writes_nothing_but_state() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let base = reqwest::Url::parse("http://127.0.0.1:9/v2.0").unwrap();
    let error = Syncer::new(sender(), base, store.clone())
        .run(&NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(error, SyncError::Request(_)), "{error}");
    assert!(error.to_string().contains("127.0.0.1:9"), "{error}");
    assert_eq!(store.count(&Collection::Organisations).await.unwrap(), 0);
}

#[tokio::test]
async fn writes_during_a_sync_are_caught_by_the_same_or_the_next_run() {
    let mut data = Data::default();
    persons(&mut data, 30, Timestamp::now());
    // Request 1: organisations; 2: persons page 1 (p00000..p00009); 3: page 2. When page 2 is
    // asked for, the school deletes and changes persons behind and ahead of the cursor.
    data.hooks.push((
        3,
        Box::new(|data: &mut Data| {
            let now = Timestamp::now();
            data.remove("persons", "p00001", now);
            data.put("persons", "p00002", json!({"givenName": "Behind"}), now);
            data.put("persons", "p00025", json!({"givenName": "Ahead"}), now);
        }),
    ));
    let server = StandIn::start(data).await;
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let first = sync(&server, &store, options(10)).await.unwrap();
    let persons = first.collection(&Collection::Persons).unwrap();
    assert_eq!((persons.new, persons.deleted), (30, 1), "{persons:?}");
    assert!(
        store
            .get(&Collection::Persons, "p00001")
            .await
            .unwrap()
            .is_none()
    );
    let ahead = store
        .get(&Collection::Persons, "p00025")
        .await
        .unwrap()
        .unwrap();
    assert!(ahead.json().contains("Ahead"), "listed after the change");
    let behind = store
        .get(&Collection::Persons, "p00002")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !behind.json().contains("Behind"),
        "the cursor had passed it"
    );

    let second = sync(&server, &store, options(10)).await.unwrap();
    assert_eq!(
        second.collection(&Collection::Persons).unwrap().mode,
        Mode::Incremental
    );
    let behind = store
        .get(&Collection::Persons, "p00002")
        .await
        .unwrap()
        .unwrap();
    assert!(behind.json().contains("Behind"), "the next run catches it");
    assert_mirrors(&server, &store, Collection::Persons).await;
}
