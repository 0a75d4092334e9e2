//! Store benchmarks on SQLite with 100,000 persons (the sample generator's data):
//! a 1,000-object keyset page from the middle (the API server's hot path), a 100-id lookup,
//! re-applying an unchanged 1,000-object batch, and generating the sample itself.
//!
//! Run: `cargo bench -p ss12000 --bench store`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ss12000::sample::{SampleSpec, generate};
use ss12000::{Collection, ListQuery, Store, WriteBatch};

const PERSONS: usize = 100_000;

fn spec() -> SampleSpec {
    SampleSpec {
        school_units: 20,
        persons: PERSONS,
        seed: 1,
    }
}

fn store_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = ss12000::Database::Sqlite(dir.path().join("bench.sqlite"));
    let store = runtime.block_on(Store::open(&db)).unwrap();
    let data = generate(&spec());
    let started = std::time::Instant::now();
    runtime.block_on(async {
        for chunk in data.chunks(1_000) {
            let mut batch = WriteBatch::new();
            for (collection, object) in chunk {
                batch.upsert(collection.clone(), object.clone());
            }
            store.apply(batch).await.unwrap();
        }
    });
    eprintln!(
        "loaded {} objects ({PERSONS} persons) in {:?}",
        data.len(),
        started.elapsed()
    );
    let mut ids: Vec<String> = data
        .iter()
        .filter(|(c, _)| *c == Collection::Persons)
        .map(|(_, o)| o.id().to_owned())
        .collect();
    ids.sort();
    let middle = ids[PERSONS / 2].clone();

    c.bench_function("sqlite list 1000 persons from the middle of 100k", |b| {
        let query = ListQuery {
            after_id: Some(middle.clone()),
            limit: 1_000,
            ..ListQuery::default()
        };
        b.iter(|| {
            let page = runtime
                .block_on(store.list(&Collection::Persons, black_box(&query)))
                .unwrap();
            assert_eq!(page.len(), 1_000);
            page
        })
    });

    c.bench_function("sqlite list 1000 persons modified after a date", |b| {
        let query = ListQuery {
            after_id: Some(middle.clone()),
            limit: 1_000,
            modified_after: Some(ss12000::Timestamp::parse("2025-10-01T00:00:00Z").unwrap()),
            ..ListQuery::default()
        };
        b.iter(|| {
            runtime
                .block_on(store.list(&Collection::Persons, black_box(&query)))
                .unwrap()
        })
    });

    let wanted: Vec<String> = ids.iter().step_by(PERSONS / 100).cloned().collect();
    c.bench_function("sqlite lookup 100 persons", |b| {
        b.iter(|| {
            runtime
                .block_on(store.lookup(&Collection::Persons, black_box(&wanted)))
                .unwrap()
        })
    });

    let unchanged: Vec<_> = data
        .iter()
        .filter(|(c, _)| *c == Collection::Persons)
        .take(1_000)
        .cloned()
        .collect();
    c.bench_function("sqlite apply 1000 unchanged persons", |b| {
        b.iter(|| {
            let mut batch = WriteBatch::new();
            for (collection, object) in &unchanged {
                batch.upsert(collection.clone(), object.clone());
            }
            runtime.block_on(store.apply(batch)).unwrap()
        })
    });
}

fn sample_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("sample");
    group.sample_size(10);
    group.bench_function("generate 100k persons + 2k groups", |b| {
        b.iter(|| generate(black_box(&spec())))
    });
    group.finish();
}

criterion_group!(benches, store_benches, sample_benches);
criterion_main!(benches);
