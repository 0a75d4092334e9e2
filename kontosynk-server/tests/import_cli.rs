//! `kontosynk-server import` / `export` as a user runs them: the real binary on real files and
//! a real SQLite store.

use std::process::{Command, Output};

fn run(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kontosynk-server"))
        .args(args)
        .current_dir(dir)
        .env_remove("KONTOSYNK_DB")
        // These files use short ids (`p1`); the refusal of non-UUID ids has its own test.
        .env("KONTOSYNK_IMPORT_ALLOW_NON_UUID_IDS", "true")
        .output()
        .unwrap()
}

#[test]
fn import_export_round_trip_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let school = r#"{"organisations":[{"id":"o1","displayName":"Skola"}],
        "persons":[{"id":"p1","givenName":"A","familyName":"B","custom":{"z":1,"a":2}}]}"#;
    std::fs::write(dir.path().join("school.json"), school).unwrap();
    std::fs::write(
        dir.path().join("groups.json"),
        r#"[{"id":"g1","displayName":"7A"},{"displayName":"no id"}]"#,
    )
    .unwrap();

    let out = run(
        &["import", "--db", "sqlite:s.db", "--json", "school.json"],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["totals"]["persons"]["new"], 1);
    assert_eq!(summary["totals"]["organisations"]["new"], 1);

    // Again: unchanged.
    let out = run(
        &["import", "--db", "sqlite:s.db", "--json", "school.json"],
        dir.path(),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["totals"]["persons"]["unchanged"], 1);

    // The same objects with other whitespace and member order: nothing updated.
    std::fs::write(
        dir.path().join("respaced.json"),
        r#"{ "persons": [ {"custom": {"a": 2, "z": 1}, "familyName": "B", "givenName": "A", "id": "p1"} ],
             "organisations": [ { "displayName": "Skola", "id": "o1" } ] }"#,
    )
    .unwrap();
    let out = run(
        &["import", "--db", "sqlite:s.db", "--json", "respaced.json"],
        dir.path(),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["totals"]["persons"]["unchanged"], 1, "{summary}");
    assert_eq!(summary["totals"]["persons"]["updated"], 0, "{summary}");

    // An edit that leaves meta.modified where it was gets the import time, and says so.
    std::fs::write(
        dir.path().join("edited.json"),
        r#"{"persons":[{"id":"p1","givenName":"A","familyName":"C","custom":{"z":1,"a":2}}]}"#,
    )
    .unwrap();
    let out = run(
        &["import", "--db", "sqlite:s.db", "--json", "edited.json"],
        dir.path(),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["totals"]["persons"]["updated"], 1, "{summary}");
    assert_eq!(summary["totals"]["persons"]["modified_set"], 1, "{summary}");
    let out = run(
        &[
            "export",
            "--db",
            "sqlite:s.db",
            "--output",
            "edited-out.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("edited-out.json")).unwrap())
            .unwrap();
    let person = &exported["persons"][0];
    assert_eq!(person["familyName"], "C");
    assert!(person["meta"]["modified"].is_string(), "{person}");
    // Back to the first version for the checks below.
    let out = run(
        &["import", "--db", "sqlite:s.db", "school.json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));

    // A bad object: exit 1, one error line naming file, collection and index, nothing written.
    let out = run(
        &["import", "--db", "sqlite:s.db", "groups.json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: groups.json: groups[1]:"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // --keep-going: exit 3, the good group imported.
    let out = run(
        &[
            "import",
            "--db",
            "sqlite:s.db",
            "--keep-going",
            "groups.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("skipped groups.json: groups[1]"), "{text}");

    // Export: the shape import reads, objects as imported.
    let out = run(
        &["export", "--db", "sqlite:s.db", "--output", "all.json"],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = std::fs::read_to_string(dir.path().join("all.json")).unwrap();
    assert!(all.contains(r#""custom":{"z":1,"a":2}"#), "{all}");
    let value: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(value["groups"].as_array().unwrap().len(), 1);

    // The same id twice in one file: exit 1, the file refused as a whole, the store untouched.
    std::fs::write(
        dir.path().join("twice.json"),
        r#"{"groups": [{"id":"g1","displayName":"7B"},{"id":"g2","displayName":"8A"},{"id":"g1","displayName":"9C"}]}"#,
    )
    .unwrap();
    let out = run(&["import", "--db", "sqlite:s.db", "twice.json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: twice.json: groups[2] has the id `g1` of groups[0]"),
        "{err}"
    );
    let out = run(
        &["export", "--db", "sqlite:s.db", "--output", "after.json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("after.json")).unwrap(),
        all,
        "the refused file changed the store"
    );

    // Usage errors exit 2.
    let out = run(&["import", "--db", "mysql://x", "school.json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["import", "--db", "sqlite:s.db"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_non_uuid_id_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("persons.json"),
        r#"[{"id":"123456789","givenName":"A"}]"#,
    )
    .unwrap();
    let import = |allow: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"));
        command
            .args(["import", "--db", "sqlite:s.db", "persons.json"])
            .current_dir(dir.path())
            .env_remove("KONTOSYNK_DB")
            .env_remove("KONTOSYNK_IMPORT_ALLOW_NON_UUID_IDS");
        if let Some(flag) = allow {
            command.arg(flag);
        }
        command.output().unwrap()
    };
    let out = import(None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: persons.json: persons[0]: id `123456789` is not a UUID"),
        "{err}"
    );
    let out = import(Some("--allow-non-uuid-ids"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dangling_references_are_printed_and_the_import_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("groups.json"),
        r#"[{"id":"b6c49fd4-3f1a-4e52-8a38-2c6f39b8e0a1","groupMemberships":[{"person":{"id":"0b0c6d2e-0000-4000-8000-000000000001"}}]}]"#,
    )
    .unwrap();
    let out = run(
        &["import", "--db", "sqlite:s.db", "groups.json"],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("dangling: ") && text.contains("groups[0].groupMemberships[0].person names persons/0b0c6d2e-0000-4000-8000-000000000001"),
        "{text}"
    );
}
