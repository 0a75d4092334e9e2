//! One behaviour suite run on both back ends (SQLite and PostgreSQL): every test below runs
//! twice, as `sqlite::NAME` and `postgres::NAME`, each on a fresh database.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ss12000::testing::TestDatabase;
use ss12000::{
    Collection, Database, DeletedQuery, ListQuery, Object, Store, StoreError, Subscription,
    Timestamp, Tombstone, WriteBatch,
};

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = ss12000::testing::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = ss12000::testing::postgres().await;
                    super::$name(&db).await;
                }
            )*
        }
    };
}

suite!(
    upsert_is_idempotent_and_updates,
    delete_leaves_tombstone_and_upsert_resurrects,
    failing_batch_writes_nothing,
    database_failure_mid_batch_writes_nothing,
    invalid_writes_are_refused,
    keyset_paging_survives_concurrent_writers,
    created_and_modified_filters,
    lookup_keeps_request_order,
    deleted_pages_and_filters,
    state_and_prefixes,
    subscriptions_crud,
    records_append_and_page,
    records_trimmed_per_key_and_expired,
    newer_schema_is_refused_and_data_survives_reopen,
    corrupt_rows_are_reported,
    json_text_survives_byte_for_byte,
    other_collections_are_kept,
    same_value_is_unchanged_and_edits_get_a_newer_modified,
    egil_objects_are_kept_per_tenant,
    egil_concurrent_creates_of_one_id_make_one_object,
);

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn obj(id: &str, extra: &str) -> Object {
    Object::from_json(&format!(r#"{{"id":"{id}","meta":{{"created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z"}}{extra}}}"#)).unwrap()
}

fn obj_at(id: &str, created: &str, modified: &str) -> Object {
    Object::from_json(&format!(
        r#"{{"id":"{id}","meta":{{"created":"{created}","modified":"{modified}"}}}}"#
    ))
    .unwrap()
}

async fn upsert(
    store: &Store,
    collection: Collection,
    objects: Vec<Object>,
) -> ss12000::ApplySummary {
    let mut batch = WriteBatch::new();
    for object in objects {
        batch.upsert(collection.clone(), object);
    }
    store.apply(batch).await.unwrap()
}

fn page(limit: usize) -> ListQuery {
    ListQuery {
        limit,
        ..ListQuery::default()
    }
}

async fn ids(store: &Store, collection: &Collection) -> Vec<String> {
    store
        .list(collection, &page(10_000))
        .await
        .unwrap()
        .iter()
        .map(|o| o.id().to_owned())
        .collect()
}

/// Runs SQL directly on the database, bypassing the store (to tamper with it).
async fn raw(db: &TestDatabase, sqlite_sql: &str, postgres_sql: &str) {
    match &db.database {
        Database::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch(sqlite_sql).unwrap();
        }
        Database::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            let task = tokio::spawn(connection);
            client.batch_execute(postgres_sql).await.unwrap();
            drop(client);
            let _ = task.await;
        }
    }
}

async fn upsert_is_idempotent_and_updates(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    let summary = upsert(&store, p.clone(), vec![obj("a", ""), obj("b", "")]).await;
    assert_eq!(summary.collections[&p].inserted, 2);
    let summary = upsert(&store, p.clone(), vec![obj("a", ""), obj("b", r#","x":1"#)]).await;
    let counts = summary.collections[&p];
    assert_eq!(
        (
            counts.inserted,
            counts.updated,
            counts.unchanged,
            counts.deleted
        ),
        (0, 1, 1, 0)
    );
    assert_eq!(
        store.get(&p, "b").await.unwrap().unwrap().json(),
        obj("b", r#","x":1"#).json()
    );
    assert_eq!(store.count(&p).await.unwrap(), 2);
    assert_eq!(store.count(&Collection::Groups).await.unwrap(), 0);
    assert!(
        store.get(&Collection::Groups, "a").await.unwrap().is_none(),
        "collections are separate"
    );
    // The same object twice in one batch: inserted, then unchanged.
    let summary = upsert(&store, p.clone(), vec![obj("c", ""), obj("c", "")]).await;
    assert_eq!(summary.collections[&p].inserted, 1);
    assert_eq!(summary.collections[&p].unchanged, 1);
    assert_eq!(
        store.apply(WriteBatch::new()).await.unwrap(),
        Default::default()
    );
}

async fn delete_leaves_tombstone_and_upsert_resurrects(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    upsert(&store, p.clone(), vec![obj("a", ""), obj("b", "")]).await;
    let mut batch = WriteBatch::new();
    batch.delete(p.clone(), "a", t("2026-02-01T00:00:00Z"));
    let summary = store.apply(batch).await.unwrap();
    assert_eq!(summary.collections[&p].deleted, 1);
    assert!(store.get(&p, "a").await.unwrap().is_none());
    assert_eq!(ids(&store, &p).await, ["b"]);
    let all = DeletedQuery {
        limit: 100,
        ..DeletedQuery::default()
    };
    let tomb = Tombstone {
        collection: p.clone(),
        id: "a".into(),
        deleted_at: t("2026-02-01T00:00:00Z"),
    };
    assert_eq!(
        store.deleted(&all).await.unwrap(),
        std::slice::from_ref(&tomb)
    );

    // Deleting again changes nothing and keeps the first deletion time.
    let mut batch = WriteBatch::new();
    batch.delete(p.clone(), "a", t("2026-03-01T00:00:00Z"));
    assert_eq!(store.apply(batch).await.unwrap().collections[&p].deleted, 0);
    assert_eq!(store.deleted(&all).await.unwrap(), [tomb]);

    // A never-seen id still gets a tombstone (a client mirrors the server's deletions).
    let mut batch = WriteBatch::new();
    batch.delete(Collection::Groups, "never", t("2026-02-02T00:00:00Z"));
    assert_eq!(
        store.apply(batch).await.unwrap().collections[&Collection::Groups].deleted,
        0
    );
    assert_eq!(store.deleted(&all).await.unwrap().len(), 2);

    // Resurrection: inserted again, tombstone gone.
    let summary = upsert(&store, p.clone(), vec![obj("a", "")]).await;
    assert_eq!(summary.collections[&p].inserted, 1);
    assert!(store.get(&p, "a").await.unwrap().is_some());
    let left = store.deleted(&all).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "never");

    // Within one batch, writes apply in order: delete then upsert is a resurrection,
    // upsert then delete leaves a tombstone.
    let mut batch = WriteBatch::new();
    batch
        .delete(p.clone(), "a", t("2026-04-01T00:00:00Z"))
        .upsert(p.clone(), obj("a", ""))
        .upsert(p.clone(), obj("n", ""))
        .delete(p.clone(), "n", t("2026-04-02T00:00:00Z"));
    let counts = store.apply(batch).await.unwrap().collections[&p];
    assert_eq!((counts.inserted, counts.deleted), (2, 2));
    assert!(store.get(&p, "a").await.unwrap().is_some());
    assert!(store.get(&p, "n").await.unwrap().is_none());
    let ids: Vec<String> = store
        .deleted(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["never", "n"]);
}

async fn snapshot(
    store: &Store,
) -> (
    Vec<String>,
    Vec<Tombstone>,
    Vec<(String, serde_json::Value)>,
    Vec<Collection>,
) {
    (
        ids(store, &Collection::Persons).await,
        store
            .deleted(&DeletedQuery {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap(),
        store.states_with_prefix("").await.unwrap(),
        store.collections().await.unwrap(),
    )
}

async fn failing_batch_writes_nothing(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    let mut batch = WriteBatch::new();
    batch
        .upsert(p.clone(), obj("a", ""))
        .upsert(p.clone(), obj("b", ""));
    batch.set_state("watermark/persons", Some(serde_json::json!("one")));
    store.apply(batch).await.unwrap();
    let before = snapshot(&store).await;

    let mut batch = WriteBatch::new();
    batch
        .upsert(p.clone(), obj("a", r#","changed":true"#))
        .upsert(p.clone(), obj("c", ""))
        .delete(p.clone(), "b", Timestamp::now())
        .upsert(Collection::Groups, obj("g", ""))
        .set_state("watermark/persons", Some(serde_json::json!("two")))
        .set_state("", Some(serde_json::json!("bad key")))
        .upsert(p.clone(), obj("d", ""));
    assert_eq!(batch.len(), 7);
    let err = store.apply(batch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidInput(ref m) if m.contains("write 5")),
        "{err}"
    );
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(
        store.get(&p, "a").await.unwrap().unwrap().json(),
        obj("a", "").json()
    );
    assert_eq!(store.count(&Collection::Groups).await.unwrap(), 0);
}

async fn database_failure_mid_batch_writes_nothing(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    upsert(&store, p.clone(), vec![obj("a", "")]).await;
    raw(
        db,
        "CREATE TRIGGER boom BEFORE INSERT ON objects WHEN NEW.id = 'boom'
         BEGIN SELECT RAISE(ABORT, 'boom refused'); END;",
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER boom BEFORE INSERT ON objects FOR EACH ROW EXECUTE FUNCTION boom();",
    )
    .await;
    let before = snapshot(&store).await;
    let mut batch = WriteBatch::new();
    batch
        .upsert(p.clone(), obj("a", r#","v":2"#))
        .delete(p.clone(), "zz", Timestamp::now())
        .set_state("k", Some(serde_json::json!(1)))
        .upsert(p.clone(), obj("b", ""))
        .upsert(p.clone(), obj("boom", ""))
        .upsert(p.clone(), obj("c", ""));
    let err = store.apply(batch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Query { ref message, .. } if message.contains("boom refused")),
        "{err}"
    );
    assert_eq!(snapshot(&store).await, before);
    assert_eq!(
        store.get(&p, "a").await.unwrap().unwrap().json(),
        obj("a", "").json()
    );
    // The store still works afterwards.
    assert_eq!(
        upsert(&store, p.clone(), vec![obj("b", "")])
            .await
            .collections[&p]
            .inserted,
        1
    );
}

async fn invalid_writes_are_refused(db: &TestDatabase) {
    let store = db.open().await;
    let cases: Vec<WriteBatch> = vec![
        {
            let mut b = WriteBatch::new();
            b.upsert(Collection::Other("bad name".into()), obj("a", ""));
            b
        },
        {
            let mut b = WriteBatch::new();
            b.upsert(Collection::Other("persons".into()), obj("a", ""));
            b
        },
        {
            let mut b = WriteBatch::new();
            b.delete(Collection::Persons, "", Timestamp::now());
            b
        },
        {
            let mut b = WriteBatch::new();
            b.set_state("a\nb", None);
            b
        },
    ];
    for batch in cases {
        let err = store.apply(batch).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    }
    assert!(store.collections().await.unwrap().is_empty());
    let bad_sub = Subscription {
        id: String::new(),
        name: "n".into(),
        target: "https://x".into(),
        resource_types: vec![],
        expires: Timestamp::now(),
        owner: "o".into(),
    };
    assert!(matches!(
        store.put_subscription(&bad_sub).await,
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        store.append_record("", &serde_json::json!({})).await,
        Err(StoreError::InvalidInput(_))
    ));
}

async fn keyset_paging_survives_concurrent_writers(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    let n = 1_500;
    let initial: Vec<Object> = (0..n).map(|i| obj(&format!("id-{i:05}"), "")).collect();
    upsert(&store, p.clone(), initial).await;
    // Stable: i % 3 == 0 (never touched by the writer) and i % 3 == 2 (updated, stays live).
    let stable: BTreeSet<String> = (0..n)
        .filter(|i| i % 3 != 1)
        .map(|i| format!("id-{i:05}"))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, p, stop) = (store.clone(), p.clone(), stop.clone());
        tokio::spawn(async move {
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut batch = WriteBatch::new();
                for k in 0..20 {
                    let i = (round as usize * 20 + k) % n;
                    match i % 3 {
                        1 => batch.delete(p.clone(), &format!("id-{i:05}"), Timestamp::now()),
                        2 => batch.upsert(
                            p.clone(),
                            obj(&format!("id-{i:05}"), &format!(r#","round":{round}"#)),
                        ),
                        _ => batch.upsert(p.clone(), obj(&format!("new-{round}-{k}"), "")),
                    };
                    batch.upsert(p.clone(), obj(&format!("id-{i:05}-{round}"), ""));
                }
                store.apply(batch).await.unwrap();
                round += 1;
                tokio::task::yield_now().await;
            }
            round
        })
    };
    let mut seen = Vec::new();
    let mut query = page(50);
    loop {
        let objects = store.list(&p, &query).await.unwrap();
        let Some(last) = objects.last() else { break };
        query.after_id = Some(last.id().to_owned());
        seen.extend(objects.iter().map(|o| o.id().to_owned()));
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.await.unwrap();
    assert!(rounds > 0, "the writer ran");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ids strictly increasing, none repeated");
    let seen: BTreeSet<String> = seen.into_iter().collect();
    let missing: Vec<_> = stable.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "stable objects missing from the listing: {missing:?}"
    );
}

async fn created_and_modified_filters(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    upsert(
        &store,
        p.clone(),
        vec![
            obj_at("a", "2026-01-01T00:00:00Z", "2026-01-10T00:00:00Z"),
            obj_at("b", "2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z"),
            obj_at("c", "2026-01-03T00:00:00.000001Z", "2026-01-03T00:00:00Z"),
            Object::from_json(r#"{"id":"d"}"#).unwrap(),
        ],
    )
    .await;
    let run = |q: ListQuery| {
        let store = store.clone();
        let p = p.clone();
        async move {
            store
                .list(&p, &q)
                .await
                .unwrap()
                .iter()
                .map(|o| o.id().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(run(page(10)).await, ["a", "b", "c", "d"]);
    assert_eq!(
        run(ListQuery {
            created_after: Some(t("2026-01-02T00:00:00Z")),
            ..page(10)
        })
        .await,
        ["c"]
    );
    assert_eq!(
        run(ListQuery {
            created_before: Some(t("2026-01-02T00:00:00Z")),
            ..page(10)
        })
        .await,
        ["a"]
    );
    assert_eq!(
        run(ListQuery {
            created_after: Some(t("2026-01-03T00:00:00Z")),
            ..page(10)
        })
        .await,
        ["c"],
        "microseconds count"
    );
    assert_eq!(
        run(ListQuery {
            modified_after: Some(t("2026-01-04T00:00:00Z")),
            ..page(10)
        })
        .await,
        ["a", "b"]
    );
    assert_eq!(
        run(ListQuery {
            modified_before: Some(t("2026-01-05T00:00:00Z")),
            ..page(10)
        })
        .await,
        ["c"]
    );
    assert_eq!(
        run(ListQuery {
            modified_after: Some(t("2026-01-04T00:00:00Z")),
            created_after: Some(t("2026-01-01T00:00:00Z")),
            ..page(10)
        })
        .await,
        ["b"]
    );
    assert_eq!(
        run(ListQuery {
            modified_after: Some(t("2026-01-01T00:00:00Z")),
            after_id: Some("a".into()),
            ..page(1)
        })
        .await,
        ["b"]
    );
    assert!(run(page(0)).await.is_empty());
}

async fn lookup_keeps_request_order(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    upsert(
        &store,
        p.clone(),
        vec![obj("a", ""), obj("b", ""), obj("c", "")],
    )
    .await;
    let mut batch = WriteBatch::new();
    batch.delete(p.clone(), "b", Timestamp::now());
    store.apply(batch).await.unwrap();
    let asked: Vec<String> = ["c", "a", "missing", "b", "a"].map(String::from).to_vec();
    let found: Vec<String> = store
        .lookup(&p, &asked)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id().to_owned())
        .collect();
    assert_eq!(found, ["c", "a"]);
    assert!(
        store
            .lookup(&Collection::Groups, &asked)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.lookup(&p, &[]).await.unwrap().is_empty());
    // More ids than one statement takes.
    let many: Vec<Object> = (0..1_200).map(|i| obj(&format!("m{i:04}"), "")).collect();
    upsert(&store, p.clone(), many).await;
    let asked: Vec<String> = (0..1_200).rev().map(|i| format!("m{i:04}")).collect();
    let found: Vec<String> = store
        .lookup(&p, &asked)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id().to_owned())
        .collect();
    assert_eq!(found, asked);
}

async fn deleted_pages_and_filters(db: &TestDatabase) {
    let store = db.open().await;
    let mut batch = WriteBatch::new();
    batch
        .delete(Collection::Persons, "p2", t("2026-01-02T00:00:00Z"))
        .delete(Collection::Groups, "g1", t("2026-01-01T00:00:00Z"))
        .delete(Collection::Persons, "p1", t("2026-01-02T00:00:00Z"))
        .delete(Collection::Groups, "g2", t("2026-01-02T00:00:00Z"))
        .delete(Collection::Duties, "d1", t("2026-01-03T00:00:00Z"));
    store.apply(batch).await.unwrap();
    let key = |t: &Tombstone| (t.deleted_at, t.collection.clone(), t.id.clone());
    // Page through two at a time.
    let mut all = Vec::new();
    let mut query = DeletedQuery {
        limit: 2,
        ..Default::default()
    };
    loop {
        let page = store.deleted(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 2);
        query.after_key = Some(key(last));
        all.extend(page.iter().map(|t| t.id.clone()));
    }
    assert_eq!(
        all,
        ["g1", "g2", "p1", "p2", "d1"],
        "by time, then collection name, then id"
    );
    let only = |collections: Vec<Collection>, after: Option<Timestamp>| DeletedQuery {
        collections,
        after,
        limit: 100,
        ..Default::default()
    };
    let ids = |v: Vec<Tombstone>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .deleted(&only(vec![Collection::Persons], None))
            .await
            .unwrap()),
        ["p1", "p2"]
    );
    assert_eq!(
        ids(store
            .deleted(&only(vec![Collection::Persons, Collection::Duties], None))
            .await
            .unwrap()),
        ["p1", "p2", "d1"]
    );
    assert_eq!(
        ids(store
            .deleted(&only(vec![], Some(t("2026-01-02T00:00:00Z"))))
            .await
            .unwrap()),
        ["d1"]
    );
    assert_eq!(
        ids(store
            .deleted(&only(
                vec![Collection::Groups],
                Some(t("2026-01-01T00:00:00Z"))
            ))
            .await
            .unwrap()),
        ["g2"]
    );
    assert!(
        store
            .deleted(&only(vec![Collection::Activities], None))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .deleted(&DeletedQuery::default())
            .await
            .unwrap()
            .is_empty(),
        "limit 0"
    );
}

async fn state_and_prefixes(db: &TestDatabase) {
    let store = db.open().await;
    let mut batch = WriteBatch::new();
    batch
        .set_state(
            "sync/b/persons",
            Some(serde_json::json!({"watermark": "2026-01-01T00:00:00Z"})),
        )
        .set_state("sync/a/persons", Some(serde_json::json!(1)))
        .set_state("sync/a0", Some(serde_json::json!("x")))
        .set_state("sync/a/groups", Some(serde_json::json!([1, 2])))
        .set_state("push/persons", Some(serde_json::json!(null)))
        .upsert(Collection::Persons, obj("a", ""));
    store.apply(batch).await.unwrap();
    assert_eq!(
        store.state("sync/a/persons").await.unwrap(),
        Some(serde_json::json!(1))
    );
    assert_eq!(
        store.state("push/persons").await.unwrap(),
        Some(serde_json::Value::Null)
    );
    assert_eq!(store.state("sync/a").await.unwrap(), None);
    let keys =
        |v: Vec<(String, serde_json::Value)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(store.states_with_prefix("sync/a/").await.unwrap()),
        ["sync/a/groups", "sync/a/persons"]
    );
    assert_eq!(
        keys(store.states_with_prefix("sync/").await.unwrap()),
        [
            "sync/a/groups",
            "sync/a/persons",
            "sync/a0",
            "sync/b/persons"
        ]
    );
    assert_eq!(store.states_with_prefix("").await.unwrap().len(), 5);
    assert!(store.states_with_prefix("zzz").await.unwrap().is_empty());
    let mut batch = WriteBatch::new();
    batch
        .set_state("sync/a/persons", Some(serde_json::json!(2)))
        .set_state("sync/a0", None);
    store.apply(batch).await.unwrap();
    assert_eq!(
        store.state("sync/a/persons").await.unwrap(),
        Some(serde_json::json!(2))
    );
    assert_eq!(store.state("sync/a0").await.unwrap(), None);
}

async fn subscriptions_crud(db: &TestDatabase) {
    let store = db.open().await;
    let sub = |id: &str, name: &str| Subscription {
        id: id.into(),
        name: name.into(),
        target: "https://client.example/hook".into(),
        resource_types: vec!["Person".into(), "Group".into()],
        expires: t("2026-12-01T00:00:00.5Z"),
        owner: "https://client.example".into(),
    };
    assert!(store.subscriptions().await.unwrap().is_empty());
    store.put_subscription(&sub("s2", "two")).await.unwrap();
    store.put_subscription(&sub("s1", "one")).await.unwrap();
    assert_eq!(
        store.subscription("s1").await.unwrap(),
        Some(sub("s1", "one"))
    );
    store.put_subscription(&sub("s1", "renamed")).await.unwrap();
    assert_eq!(
        store.subscriptions().await.unwrap(),
        [sub("s1", "renamed"), sub("s2", "two")]
    );
    assert!(store.delete_subscription("s1").await.unwrap());
    assert!(!store.delete_subscription("s1").await.unwrap());
    assert_eq!(store.subscription("s1").await.unwrap(), None);
    assert_eq!(store.subscriptions().await.unwrap().len(), 1);
}

async fn records_append_and_page(db: &TestDatabase) {
    let store = db.open().await;
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(
            store
                .append_record("log", &serde_json::json!({"n": i}))
                .await
                .unwrap(),
        );
        store
            .append_record("statistics", &serde_json::json!([i]))
            .await
            .unwrap();
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let logs = store.records("log", 0, 100).await.unwrap();
    assert_eq!(logs.iter().map(|r| r.0).collect::<Vec<_>>(), seqs);
    assert_eq!(logs[2].2, serde_json::json!({"n": 2}));
    let after = store.records("log", seqs[2], 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, seqs[3]);
    assert!(store.records("log", seqs[4], 10).await.unwrap().is_empty());
    assert!(store.records("other", 0, 10).await.unwrap().is_empty());
    assert!(store.records("log", 0, 0).await.unwrap().is_empty());
    let now = Timestamp::now();
    assert!(logs[0].1 <= now && logs[0].1 > now.add_seconds(-600));
}

async fn records_trimmed_per_key_and_expired(db: &TestDatabase) {
    let store = db.open().await;
    for i in 0..6 {
        for key in ["a", "b"] {
            store
                .append_record("webhook", &serde_json::json!({"subscription": key, "n": i}))
                .await
                .unwrap();
        }
    }
    store
        .append_record("log", &serde_json::json!({"subscription": "a"}))
        .await
        .unwrap();
    assert_eq!(
        store
            .trim_records("webhook", "subscription", "a", 2)
            .await
            .unwrap(),
        4
    );
    let kept: Vec<(String, i64)> = store
        .records("webhook", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, r)| {
            (
                r["subscription"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    let of_a: Vec<i64> = kept.iter().filter(|k| k.0 == "a").map(|k| k.1).collect();
    assert_eq!(of_a, [4, 5], "the newest two of a are kept");
    assert_eq!(kept.iter().filter(|k| k.0 == "b").count(), 6, "b untouched");
    assert_eq!(
        store.records("log", 0, 10).await.unwrap().len(),
        1,
        "other kinds untouched"
    );
    assert!(
        store
            .trim_records("webhook", "x' OR 1=1 --", "a", 0)
            .await
            .is_err()
    );
    assert_eq!(
        store
            .expire_records("webhook", Timestamp::now().add_seconds(-3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .expire_records("webhook", Timestamp::now().add_seconds(1))
            .await
            .unwrap(),
        8
    );
    assert!(store.records("webhook", 0, 10).await.unwrap().is_empty());
    assert_eq!(store.records("log", 0, 10).await.unwrap().len(), 1);
}

async fn newer_schema_is_refused_and_data_survives_reopen(db: &TestDatabase) {
    let store = db.open().await;
    upsert(&store, Collection::Persons, vec![obj("a", "")]).await;
    drop(store);
    let store = db.open().await;
    assert_eq!(ids(&store, &Collection::Persons).await, ["a"]);
    drop(store);
    raw(
        db,
        "UPDATE kontosynk_schema SET version = 99",
        "UPDATE kontosynk_schema SET version = 99",
    )
    .await;
    match Store::open(&db.database).await {
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: 1,
            ..
        }) => {}
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

async fn corrupt_rows_are_reported(db: &TestDatabase) {
    let store = db.open().await;
    upsert(
        &store,
        Collection::Persons,
        vec![obj("a", ""), obj("b", "")],
    )
    .await;
    raw(
        db,
        "UPDATE objects SET body = '{not json' WHERE id = 'a'; UPDATE objects SET body = '{\"id\":\"other\"}' WHERE id = 'b'",
        "UPDATE objects SET body = '{not json' WHERE id = 'a'; UPDATE objects SET body = '{\"id\":\"other\"}' WHERE id = 'b'",
    )
    .await;
    let err = store.get(&Collection::Persons, "a").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { ref operation, .. } if operation.contains("persons/a")),
        "{err}"
    );
    let err = store.get(&Collection::Persons, "b").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { ref message, .. } if message.contains("other")),
        "{err}"
    );
    assert!(matches!(
        store.list(&Collection::Persons, &page(10)).await,
        Err(StoreError::Corrupt { .. })
    ));
    raw(
        db,
        "INSERT INTO sync_state (key, value) VALUES ('k', 'nope')",
        "INSERT INTO sync_state (key, value) VALUES ('k', 'nope')",
    )
    .await;
    assert!(matches!(
        store.state("k").await,
        Err(StoreError::Corrupt { .. })
    ));
}

async fn json_text_survives_byte_for_byte(db: &TestDatabase) {
    let store = db.open().await;
    let text = "{ \"zeta\" : [1, 2.50, -0, 1e3, 12345678901234567890123],\n  \"id\": \"ö-\\u00e9-\\ud83d\\ude00\",\n\t\"meta\": {\"modified\": \"2026-01-01T01:00:00+01:00\", \"created\": \"2026-01-01T00:00:00.000Z\"},\n  \"unknown\": {\"b\": null, \"a\": \"\\\"quoted\\\" 😀 \\n\"}, \"alpha\": true }";
    let object = Object::from_json(text).unwrap();
    assert_eq!(object.id(), "ö-é-😀");
    upsert(&store, Collection::Persons, vec![object.clone()]).await;
    let back = store
        .get(&Collection::Persons, "ö-é-😀")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.json(), text);
    assert_eq!(back, object);
    let listed = store.list(&Collection::Persons, &page(1)).await.unwrap();
    assert_eq!(listed[0].json(), text);
    // The same object again is unchanged; the same members re-spaced is an update.
    let again = upsert(&store, Collection::Persons, vec![object]).await;
    assert_eq!(again.collections[&Collection::Persons].unchanged, 1);
}

async fn other_collections_are_kept(db: &TestDatabase) {
    let store = db.open().await;
    let placements = Collection::from_path("placements").unwrap();
    upsert(
        &store,
        placements.clone(),
        vec![obj("x", r#","child":{"id":"p"}"#)],
    )
    .await;
    upsert(&store, Collection::Persons, vec![obj("x", "")]).await;
    let mut batch = WriteBatch::new();
    batch.delete(
        Collection::from_path("studyPlans").unwrap(),
        "s",
        Timestamp::now(),
    );
    store.apply(batch).await.unwrap();
    assert_eq!(
        store.collections().await.unwrap(),
        [
            Collection::Persons,
            placements.clone(),
            Collection::from_path("studyPlans").unwrap()
        ]
    );
    assert_eq!(
        store.get(&placements, "x").await.unwrap().unwrap().json(),
        obj("x", r#","child":{"id":"p"}"#).json()
    );
    assert_eq!(store.count(&placements).await.unwrap(), 1);
}

#[tokio::test]
async fn unusable_databases_are_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not an SQLite database, just some text long enough",
    )
    .unwrap();
    let err = Store::open(&Database::Sqlite(garbage)).await.err().unwrap();
    assert!(
        matches!(err, StoreError::Open { ref database, .. } if database.contains("garbage.db")),
        "{err}"
    );

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE objects (x INTEGER)")
        .unwrap();
    let err = Store::open(&Database::Sqlite(foreign)).await.err().unwrap();
    assert!(err.to_string().contains("not a kontosynk store"), "{err}");

    let missing_dir = Database::Sqlite(dir.path().join("no/such/dir/s.db"));
    assert!(matches!(
        Store::open(&missing_dir).await,
        Err(StoreError::Open { .. })
    ));

    let unreachable: Database = "postgres://u:secret@127.0.0.1:1/x?connect_timeout=2"
        .parse()
        .unwrap();
    let err = Store::open(&unreachable).await.err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

async fn same_value_is_unchanged_and_edits_get_a_newer_modified(db: &TestDatabase) {
    let store = db.open().await;
    let p = Collection::Persons;
    let stored = r#"{"id":"a","givenName":"Åsa","meta":{"created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z"}}"#;
    upsert(&store, p.clone(), vec![Object::from_json(stored).unwrap()]).await;
    // The same value with other whitespace and member order: unchanged, the text stays.
    let respaced = "{ \"givenName\" : \"Åsa\",\n  \"meta\": {\"modified\":\"2026-01-01T00:00:00Z\", \"created\":\"2026-01-01T00:00:00Z\"}, \"id\":\"a\" }";
    let summary = upsert(
        &store,
        p.clone(),
        vec![Object::from_json(respaced).unwrap()],
    )
    .await;
    assert_eq!(summary.collections[&p].unchanged, 1);
    assert_eq!(store.get(&p, "a").await.unwrap().unwrap().json(), stored);

    // An edit that keeps meta.modified: with the touching upsert it gets the write time.
    let at = t("2026-12-02T10:00:00Z");
    let edited = r#"{"id":"a","givenName":"Åsa-Lena","meta":{"created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z"}}"#;
    let mut batch = WriteBatch::new();
    batch.upsert_touching_modified(p.clone(), Object::from_json(edited).unwrap(), at);
    let summary = store.apply(batch).await.unwrap();
    assert_eq!(summary.collections[&p].updated, 1);
    assert_eq!(summary.collections[&p].modified_set, 1);
    let now = store.get(&p, "a").await.unwrap().unwrap();
    assert_eq!(now.modified(), Some(at));
    assert!(now.json().contains("Åsa-Lena"), "{}", now.json());
    let changed_since: Vec<String> = store
        .list(
            &p,
            &ListQuery {
                modified_after: Some(t("2026-06-01T00:00:00Z")),
                ..page(10)
            },
        )
        .await
        .unwrap()
        .iter()
        .map(|o| o.id().to_owned())
        .collect();
    assert_eq!(changed_since, ["a"], "an incremental reader sees the edit");

    // An edit that moves meta.modified itself keeps its own.
    let later = r#"{"id":"a","givenName":"Lena","meta":{"created":"2026-01-01T00:00:00Z","modified":"2026-12-03T00:00:00Z"}}"#;
    let mut batch = WriteBatch::new();
    batch.upsert_touching_modified(p.clone(), Object::from_json(later).unwrap(), at);
    let summary = store.apply(batch).await.unwrap();
    assert_eq!(summary.collections[&p].modified_set, 0);
    assert_eq!(store.get(&p, "a").await.unwrap().unwrap().json(), later);
}

fn tenant(id: &str) -> ss12000::EgilTenant {
    ss12000::EgilTenant {
        id: id.to_owned(),
        organization: Some(format!("Org {id}")),
        organization_id: None,
    }
}

async fn egil_objects_are_kept_per_tenant(db: &TestDatabase) {
    use ss12000::EgilResource::{Organisations, Users};
    use ss12000::egil::EgilCreated::{Created, Exists, TenantFull};
    let store = db.open().await;
    let (a, b) = (tenant("https://a.example"), tenant("https://b.example"));
    let create = async |t: &ss12000::EgilTenant, r, id: &str, body: &str| {
        store.egil_create(t, r, id, body, None).await.unwrap()
    };
    assert_eq!(create(&a, Users, "u1", r#"{"n":"a1"}"#).await, Created);
    assert_eq!(create(&a, Users, "u1", r#"{"n":"again"}"#).await, Exists);
    assert_eq!(create(&b, Users, "u1", r#"{"n":"b1"}"#).await, Created);
    assert_eq!(
        create(&a, Organisations, "u1", r#"{"n":"org"}"#).await,
        Created
    );
    assert_eq!(
        store.egil_get(&a.id, Users, "u1").await.unwrap().as_deref(),
        Some(r#"{"n":"a1"}"#)
    );
    assert_eq!(
        store.egil_get(&b.id, Users, "u1").await.unwrap().as_deref(),
        Some(r#"{"n":"b1"}"#)
    );
    assert!(
        store
            .egil_replace(&a, Users, "u1", r#"{"n":"a2"}"#)
            .await
            .unwrap()
    );
    assert!(
        !store
            .egil_replace(&a, Users, "u2", r#"{"n":"x"}"#)
            .await
            .unwrap()
    );
    assert_eq!(
        store.egil_get(&b.id, Users, "u1").await.unwrap().as_deref(),
        Some(r#"{"n":"b1"}"#)
    );
    for n in 2..=5 {
        store
            .egil_create(&a, Users, &format!("u{n}"), "{}", None)
            .await
            .unwrap();
    }
    let page = store.egil_list(&a.id, Users, 1, 2).await.unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.bodies, ["{}", "{}"]);
    assert_eq!(
        store.egil_ids(&a.id, Users).await.unwrap(),
        ["u1", "u2", "u3", "u4", "u5"]
    );
    assert!(store.egil_delete(&a.id, Users, "u1").await.unwrap());
    assert!(!store.egil_delete(&a.id, Users, "u1").await.unwrap());
    assert!(store.egil_get(&b.id, Users, "u1").await.unwrap().is_some());
    let tenants = store.egil_tenants().await.unwrap();
    assert_eq!(tenants, [a.clone(), b.clone()]);
    assert!(matches!(
        store.egil_create(&tenant(""), Users, "x", "{}", None).await,
        Err(StoreError::InvalidInput(_))
    ));
    // The tables survive reopening, and an SS 12000 listing never shows EGIL objects.
    drop(store);
    let store = db.open().await;
    assert_eq!(store.egil_list(&a.id, Users, 0, 10).await.unwrap().total, 4);
    assert!(store.collections().await.unwrap().is_empty());
    // The per-tenant cap counts objects of every resource, and deletions free room.
    assert_eq!(store.egil_count(&a.id).await.unwrap(), 5);
    let capped = |id: &'static str| store.egil_create(&a, Users, id, "{}", Some(6));
    assert_eq!(capped("u6").await.unwrap(), Created);
    assert_eq!(capped("u7").await.unwrap(), TenantFull);
    assert!(store.egil_get(&a.id, Users, "u7").await.unwrap().is_none());
    assert_eq!(store.egil_count(&a.id).await.unwrap(), 6);
    assert_eq!(
        store
            .egil_create(&b, Users, "u7", "{}", Some(6))
            .await
            .unwrap(),
        Created
    );
    assert!(store.egil_delete(&a.id, Users, "u2").await.unwrap());
    assert_eq!(capped("u7").await.unwrap(), Created);
}

async fn egil_concurrent_creates_of_one_id_make_one_object(db: &TestDatabase) {
    let store = db.open().await;
    let t = tenant("https://a.example");
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (store, t) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            store
                .egil_create(
                    &t,
                    ss12000::EgilResource::Users,
                    "same",
                    &format!("{{\"n\":{n}}}"),
                    None,
                )
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.unwrap() == ss12000::egil::EgilCreated::Created);
    }
    assert_eq!(
        created, 1,
        "exactly one create wins; the others are told it exists"
    );
    let page = store
        .egil_list(&t.id, ss12000::EgilResource::Users, 0, 10)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(
        store.egil_count(&t.id).await.unwrap(),
        1,
        "the count stays exact"
    );
    // Eight different ids at once against a cap of 5: exactly 5 are stored.
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (store, t) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            store
                .egil_create(
                    &t,
                    ss12000::EgilResource::Activities,
                    &format!("a{n}"),
                    "{}",
                    Some(5),
                )
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.unwrap() == ss12000::egil::EgilCreated::Created);
    }
    assert_eq!(created, 4);
    assert_eq!(store.egil_count(&t.id).await.unwrap(), 5);
}
