//! Issue targets: verify + parse + index a signed 5,000-entity aggregate (~13 MB) in ≤ 60 ms,
//! and a client-pin lookup in ≤ 200 ns with 100,000 clients indexed.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fedtls::index::Index;
use fedtls::jwk::Jwks;
use fedtls::testfed::{signed_synthetic_aggregate, synthetic_metadata};
use fedtls::verify::{VerifyOptions, verify_metadata};

fn signed_aggregate(entities: usize) -> (Vec<u8>, Jwks) {
    let (jws, jwks) = signed_synthetic_aggregate(entities, 2).expect("synthetic aggregate");
    (jws.into_bytes(), jwks)
}

fn verify_aggregate(c: &mut Criterion) {
    let (document, jwks) = signed_aggregate(5_000);
    eprintln!("aggregate: 5000 entities, {} bytes", document.len());
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Bytes(document.len() as u64));
    group.sample_size(30);
    let options = VerifyOptions::default();
    // The target: bytes in, usable index out. Dropping an old snapshot is not part of it
    // (a live store drops it after the swap), so it is measured separately below.
    group.bench_function("verify_parse_index_5000_entities", |b| {
        b.iter_with_large_drop(|| {
            let verified = verify_metadata(black_box(&document), &jwks, &options).expect("ok");
            assert_eq!(verified.index().entities().len(), 5_000);
            verified
        })
    });
    group.bench_function("verify_parse_index_and_drop_5000_entities", |b| {
        b.iter(|| verify_metadata(black_box(&document), &jwks, &options).expect("ok"))
    });
    let serial = VerifyOptions {
        threads: 1,
        ..VerifyOptions::default()
    };
    group.bench_function("verify_parse_index_5000_entities_one_parse_thread", |b| {
        b.iter_with_large_drop(|| {
            verify_metadata(black_box(&document), &jwks, &serial).expect("ok")
        })
    });
    group.finish();
}

fn client_pin_lookup(c: &mut Criterion) {
    let metadata = synthetic_metadata(50_000, 2).expect("synthetic metadata");
    let index = Index::new(metadata);
    let pins: Vec<_> = index
        .entities()
        .iter()
        .step_by(49)
        .flat_map(|e| e.clients.iter().map(|c| c.pins[0]))
        .collect();
    let clients: usize = index.entities().iter().map(|e| e.clients.len()).sum();
    assert_eq!(clients, 100_000);
    let mut at = 0;
    c.bench_function("client_pin_lookup_100k_clients", |b| {
        b.iter(|| {
            at = (at + 1) % pins.len();
            index.client_by_pin(black_box(&pins[at])).expect("listed")
        })
    });
    let unknown = fedtls::Pin::of_spki(b"not listed");
    c.bench_function("client_pin_lookup_100k_clients_miss", |b| {
        b.iter(|| index.client_by_pin(black_box(&unknown)).is_none())
    });
}

criterion_group!(benches, verify_aggregate, client_pin_lookup);
criterion_main!(benches);
