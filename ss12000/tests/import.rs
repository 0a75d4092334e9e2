//! Import from JSON files and export back, on a real SQLite store (and one PostgreSQL run).

use std::path::{Path, PathBuf};

use ss12000::import::{ImportError, ImportOptions, export, import_files};
use ss12000::{Collection, Store};

/// The default options, but accepting the short ids (`p1`) these tests use.
fn lenient() -> ImportOptions {
    ImportOptions {
        require_uuid_ids: false,
        ..ImportOptions::default()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn person(id: &str) -> String {
    format!(r#"{{"id":"{id}","givenName":"Anna","familyName":"Ek","x":{{"b":1,"a":2}}}}"#)
}

const SCHOOL: &str = r#"{
  "organisations": [{"id":"o1","displayName":"Skola","schoolUnitCode":"12345678"}],
  "persons": [
    {"id":"p1", "givenName":"Åsa", "familyName":"Öberg", "zz": [1, 2.50]},
    {"id":"p2","givenName":"Bo","familyName":"Ek"}
  ],
  "placements": [{"id":"pl1","child":{"id":"p1"}}]
}"#;

async fn round_trip(store: &Store, dir: &Path) {
    let file = write(dir, "school.json", SCHOOL);
    let mut calls = Vec::new();
    let summary = import_files(store, std::slice::from_ref(&file), &lenient(), |p| {
        calls.push((p.collection.clone(), p.done, p.total))
    })
    .await
    .unwrap();
    assert_eq!(summary.totals[&Collection::Persons].inserted, 2);
    assert_eq!(summary.totals[&Collection::Organisations].inserted, 1);
    assert_eq!(
        summary.totals[&Collection::from_path("placements").unwrap()].inserted,
        1
    );
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1], (Collection::Persons, 2, 2));
    let p1 = store
        .get(&Collection::Persons, "p1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p1.json(),
        r#"{"id":"p1", "givenName":"Åsa", "familyName":"Öberg", "zz": [1, 2.50]}"#,
        "kept as the file has it"
    );

    let mut out = Vec::new();
    let counts = export(store, &[], &mut out).await.unwrap();
    assert_eq!(counts[&Collection::Persons], 2);
    let text = String::from_utf8(out).unwrap();
    assert!(text.find("\"organisations\"").unwrap() < text.find("\"persons\"").unwrap());
    assert!(
        text.contains(r#"{"id":"p1", "givenName":"Åsa", "familyName":"Öberg", "zz": [1, 2.50]}"#)
    );
    let exported: serde_json::Value = serde_json::from_str(&text).unwrap();
    let original: serde_json::Value = serde_json::from_str(SCHOOL).unwrap();
    assert_eq!(exported, original);

    // Importing the export changes nothing.
    let again = write(dir, "export.json", &text);
    let summary = import_files(store, &[again], &lenient(), |_| {})
        .await
        .unwrap();
    for counts in summary.totals.values() {
        assert_eq!((counts.inserted, counts.updated, counts.deleted), (0, 0, 0));
    }
    assert_eq!(summary.totals[&Collection::Persons].unchanged, 2);

    // Only some collections.
    let mut out = Vec::new();
    export(store, &[Collection::Organisations], &mut out)
        .await
        .unwrap();
    let only: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        only.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["organisations"]
    );
}

#[tokio::test]
async fn sqlite_round_trip() {
    let db = ss12000::testing::sqlite();
    let dir = tempfile::tempdir().unwrap();
    round_trip(&db.open().await, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_round_trip() {
    let db = ss12000::testing::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    round_trip(&db.open().await, dir.path()).await;
}

#[tokio::test]
async fn data_and_bare_array_take_the_collection_from_the_file_name() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "persons.json",
        &format!(r#"{{"data":[{}],"pageToken":null}}"#, person("a")),
    );
    let b = write(
        dir.path(),
        "persons.page-2.json",
        &format!("[{}, {}]", person("b"), person("a")),
    );
    let g = write(
        dir.path(),
        "groups.json",
        r#"[{"id":"g","displayName":"7A"}]"#,
    );
    let summary = import_files(&store, &[a, b, g], &lenient(), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.files.len(), 3);
    assert_eq!(summary.totals[&Collection::Persons].inserted, 2);
    assert_eq!(summary.totals[&Collection::Persons].unchanged, 1);
    assert_eq!(summary.totals[&Collection::Groups].inserted, 1);
    assert_eq!(store.count(&Collection::Persons).await.unwrap(), 2);
}

#[tokio::test]
async fn a_bad_object_stops_its_file_before_any_write() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{{"persons":[{}, {}, {{"id":"c","meta":{{"created":"igår"}}}}, {}]}}"#,
        person("a"),
        person("b"),
        person("d")
    );
    let file = write(dir.path(), "bad.json", &text);
    let options = ImportOptions {
        batch_size: 1,
        ..lenient()
    };
    let err = import_files(&store, std::slice::from_ref(&file), &options, |_| {})
        .await
        .unwrap_err();
    match &err {
        ImportError::BadObject {
            path,
            collection,
            index,
            reason,
        } => {
            assert_eq!(path, &file);
            assert_eq!(collection, &Collection::Persons);
            assert_eq!(*index, 2);
            assert!(reason.contains("meta.created"), "{reason}");
        }
        other => panic!("expected BadObject, got {other}"),
    }
    assert!(err.to_string().contains("bad.json: persons[2]"), "{err}");
    assert_eq!(
        store.count(&Collection::Persons).await.unwrap(),
        0,
        "nothing half-applied"
    );

    // --keep-going: the rest goes in, the bad one is reported.
    let options = ImportOptions {
        keep_going: true,
        batch_size: 1,
        ..lenient()
    };
    let summary = import_files(&store, &[file], &options, |_| {})
        .await
        .unwrap();
    assert_eq!(summary.totals[&Collection::Persons].inserted, 3);
    let rejected: Vec<_> = summary.rejected().collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].index, 2);
    assert!(
        store
            .get(&Collection::Persons, "d")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn replace_deletes_what_the_file_no_longer_has() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        "persons.json",
        &format!("[{},{},{}]", person("a"), person("b"), person("c")),
    );
    import_files(&store, &[first], &lenient(), |_| {})
        .await
        .unwrap();
    let second = write(dir.path(), "persons.2.json", &format!("[{}]", person("b")));
    let options = ImportOptions {
        replace: true,
        ..lenient()
    };
    let summary = import_files(&store, &[second], &options, |_| {})
        .await
        .unwrap();
    let counts = summary.totals[&Collection::Persons];
    assert_eq!((counts.unchanged, counts.deleted), (1, 2));
    assert_eq!(store.count(&Collection::Persons).await.unwrap(), 1);
    // Without --replace nothing is deleted.
    let third = write(dir.path(), "persons.3.json", &format!("[{}]", person("z")));
    let summary = import_files(&store, &[third], &lenient(), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.totals[&Collection::Persons].deleted, 0);
    assert_eq!(store.count(&Collection::Persons).await.unwrap(), 2);
}

#[tokio::test]
async fn files_of_the_wrong_shape_are_refused() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "export.json",
            "[{\"id\":\"a\"}]",
            "cannot tell the collection",
        ),
        ("persons.json", "{\"persons\": [\n{\"id\":\"a\"},\n", "line"),
        (
            "x.json",
            "{\"bad name\": []}",
            "not an SS 12000 collection name",
        ),
        ("x.json", "{\"persons\": {\"id\":\"a\"}}", "not an array"),
        ("x.json", "{\"persons\": [], \"persons\": []}", "twice"),
        (
            "persons.json",
            "{\"data\": [], \"persons\": []}",
            "unexpected member",
        ),
        ("persons.json", "", "empty"),
        ("persons.json", "42", "expected an object"),
    ];
    for (name, text, expect) in cases {
        let file = write(dir.path(), name, text);
        let err = import_files(&store, &[file], &lenient(), |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(err, ImportError::Shape { .. }),
            "{name} {text:?}: {err}"
        );
        assert!(err.to_string().contains(expect), "{text:?}: {err}");
    }
    let missing = dir.path().join("missing.json");
    let err = import_files(&store, &[missing], &lenient(), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }), "{err}");
    assert!(store.collections().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_repeated_id_in_one_file_refuses_the_file_and_keep_going_skips_every_copy() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    // Two different persons under one id: whichever "wins" would be a silent guess.
    let file = write(
        dir.path(),
        "twice.json",
        &format!(
            r#"{{"persons": [{}, {}, {{"id":"p1","givenName":"Other"}}, {}]}}"#,
            person("p1"),
            person("p2"),
            person("p3")
        ),
    );
    let err = import_files(&store, std::slice::from_ref(&file), &lenient(), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ImportError::DuplicateId { collection, id, first: 0, index: 2, .. }
            if *collection == Collection::Persons && id == "p1"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("twice.json: persons[2] has the id `p1` of persons[0]"),
        "{text}"
    );
    assert_eq!(store.count(&Collection::Persons).await.unwrap(), 0);

    // The same id in two collections is not a repeat.
    let other = write(
        dir.path(),
        "mixed.json",
        r#"{"persons": [{"id":"x"}], "groups": [{"id":"x"}]}"#,
    );
    import_files(&store, &[other], &lenient(), |_| {})
        .await
        .unwrap();

    // --keep-going: neither copy goes in, both are reported, the rest does; and `replace`
    // does not delete from a collection the file holds ambiguously.
    let options = ImportOptions {
        keep_going: true,
        replace: true,
        ..lenient()
    };
    let summary = import_files(&store, &[file], &options, |_| {})
        .await
        .unwrap();
    let rejected: Vec<usize> = summary.rejected().map(|r| r.index).collect();
    assert_eq!(rejected, vec![0, 2]);
    assert!(
        store
            .get(&Collection::Persons, "p1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get(&Collection::Persons, "p2")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get(&Collection::Persons, "x")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_refused_by_default() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    // Skolverket's reference sample person has the id "123456789", which its ingest refuses.
    let file = write(
        dir.path(),
        "persons.json",
        r#"[{"id":"b6c49fd4-3f1a-4e52-8a38-2c6f39b8e0a1","givenName":"A"},{"id":"123456789","givenName":"B"}]"#,
    );
    let err = import_files(
        &store,
        std::slice::from_ref(&file),
        &ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("persons[1]: id `123456789` is not a UUID"),
        "{text}"
    );
    assert!(text.contains("--allow-non-uuid-ids"), "{text}");
    assert_eq!(store.count(&Collection::Persons).await.unwrap(), 0);
    let summary = import_files(&store, &[file], &lenient(), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.totals[&Collection::Persons].inserted, 2);
}

#[tokio::test]
async fn references_to_objects_the_store_lacks_are_reported_not_refused() {
    let db = ss12000::testing::sqlite();
    let store = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    let groups = write(
        dir.path(),
        "groups.json",
        r#"[{"id":"g1","organisation":{"id":"o1"},
             "groupMemberships":[{"person":{"id":"p1"}},{"person":{"id":"gone"}}]},
            {"id":"g2","groupMemberships":[{"person":{"id":"gone"}}]}]"#,
    );
    // The referenced persons and organisation come in a later file: not dangling.
    let rest = write(
        dir.path(),
        "rest.json",
        r#"{"persons":[{"id":"p1"}],"organisations":[{"id":"o1"}]}"#,
    );
    let summary = import_files(&store, &[groups, rest], &lenient(), |_| {})
        .await
        .unwrap();
    assert_eq!(summary.totals[&Collection::Groups].inserted, 2);
    assert_eq!(summary.dangling.len(), 1, "{:?}", summary.dangling);
    let dangling = &summary.dangling[0];
    assert_eq!(dangling.collection, Collection::Groups);
    assert_eq!(dangling.index, 0);
    assert_eq!(dangling.member, "groupMemberships[1].person");
    assert_eq!(dangling.to, Collection::Persons);
    assert_eq!(dangling.id, "gone");
    assert_eq!(dangling.references, 2);
    assert!(dangling.path.ends_with("groups.json"));
}
