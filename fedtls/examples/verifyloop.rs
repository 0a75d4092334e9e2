fn main() {
    let doc = std::fs::read("/tmp/agg/aggregate.jws").unwrap();
    let jwks = fedtls::Jwks::from_json(&std::fs::read("/tmp/agg/jwks.json").unwrap()).unwrap();
    let threads: usize = std::env::args().nth(1).map_or(2, |t| t.parse().unwrap());
    let opts = fedtls::VerifyOptions {
        threads,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let mut dropping = std::time::Duration::ZERO;
    for _ in 0..30 {
        let v = fedtls::verify_metadata(&doc, &jwks, &opts).unwrap();
        let d = std::time::Instant::now();
        drop(v);
        dropping += d.elapsed();
    }
    println!(
        "threads={threads}: {:?} per verify (excluding drop), drop {:?}",
        (t.elapsed() - dropping) / 30,
        dropping / 30
    );
}
