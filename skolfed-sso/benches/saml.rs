//! Verifying and indexing a national-size SAML aggregate: 1,000 entities (800 IdPs, 200 SPs)
//! of about 10 kB each, ~10 MB, signed by `xmlsec1` in the set-up. Target: ≤ 300 ms for
//! verify + index (parse, exclusive c14n of the whole root, SHA-256, RSA-SHA256, IdP/SP list).
//!
//! Run: `cargo bench -p skolfed-sso --bench saml` (`QUICK=1` for fewer rounds).

use std::time::Instant;

use skolfed_sso::fetch::unix_now;
use skolfed_sso::saml::{VerifyOptions, verify_aggregate};
use skolfed_sso::testing::{AggregateBuilder, TestSigner, numbered_idps};

fn main() {
    let rounds = if std::env::var_os("QUICK").is_some() {
        5
    } else {
        20
    };
    let signer = TestSigner::generate("bench signer");
    let mut builder = AggregateBuilder::new(numbered_idps(800));
    builder.sps = (0..200)
        .map(|i| format!("https://sp{i:03}.example.com/shibboleth"))
        .collect();
    builder.padding_per_entity = 9_000;
    let signed = signer
        .sign_with_xmlsec1(&builder.build())
        .expect("xmlsec1 signs (apt-get install xmlsec1)");
    let certificate = signer.certificate();
    println!(
        "aggregate: {} entities, {:.1} MB",
        800 + 200,
        signed.len() as f64 / 1e6
    );
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let aggregate = verify_aggregate(&signed, &certificate, VerifyOptions { now: unix_now() })
            .expect("verifies");
        times.push(start.elapsed());
        assert_eq!(aggregate.idps.len(), 800);
        assert_eq!(aggregate.sps.len(), 200);
    }
    times.sort();
    println!(
        "verify + index: min {:.1} ms, median {:.1} ms, max {:.1} ms ({rounds} rounds; target ≤ 300 ms)",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
}
