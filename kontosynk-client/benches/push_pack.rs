//! Preparing a push: mapping SS 12000 persons to the Provisioning API's schema and packing
//! them into ≤ 200 KB bulk bodies (the CPU work of a run; the network is rate limited).
//!
//! `cargo bench -p kontosynk-client --bench push_pack`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kontosynk_client::push::ObjectType;
use kontosynk_client::push::map::{Mapped, map_object};
use kontosynk_client::push::pack::{MAX_REQUEST_BYTES, pack};
use serde_json::{Value, json};

fn person(n: usize) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "meta": {"created": "2025-01-01T00:00:00Z", "modified": "2025-01-01T00:00:00Z"},
        "givenName": format!("Förnamn{n}"), "familyName": "Efternamn",
        "eduPersonPrincipalNames": [format!("p{n}@edu.kommun.example")],
        "civicNo": {"value": "200901272385", "nationality": "SE"},
        "emails": [{"value": format!("p{n}@kommun.example"), "type": "Skola elev"}],
        "enrolments": [{"enroledAt": {"id": "5d4ad8a0-52b3-4c4d-9a5b-000000000001"},
                        "schoolType": "GR", "schoolYear": 6}],
        "addresses": [{"streetAddress": "Skolgatan 1", "postalCode": "12345", "locality": "Orten"}],
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("push_prepare");
    for count in [1_000usize, 10_000] {
        let persons: Vec<Value> = (0..count).map(person).collect();
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new("map", count), &persons, |b, persons| {
            b.iter(|| {
                persons
                    .iter()
                    .filter_map(|p| match map_object(ObjectType::Persons, p) {
                        Ok(Mapped::Send(v)) => Some(v.to_string()),
                        _ => None,
                    })
                    .count()
            })
        });
        let items: Vec<String> = persons
            .iter()
            .filter_map(|p| match map_object(ObjectType::Persons, p) {
                Ok(Mapped::Send(v)) => Some(v.to_string()),
                _ => None,
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("pack", count), &items, |b, items| {
            b.iter(|| pack(items, MAX_REQUEST_BYTES).bulks.len())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
