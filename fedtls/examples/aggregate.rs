//! Writes a signed synthetic aggregate and its JWKS, for timing `fedtls verify` as a whole
//! process: `cargo run --release --example aggregate -- 5000 /tmp/agg`.

use fedtls::testfed::signed_synthetic_aggregate;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let entities: usize = args.next().unwrap_or_else(|| "5000".into()).parse()?;
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "aggregate".into()));
    std::fs::create_dir_all(&dir)?;
    let (jws, jwks) = signed_synthetic_aggregate(entities, 2)?;
    std::fs::write(dir.join("aggregate.jws"), &jws)?;
    std::fs::write(dir.join("jwks.json"), jwks.to_json())?;
    println!(
        "{}: {entities} entities, {} bytes",
        dir.join("aggregate.jws").display(),
        jws.len()
    );
    Ok(())
}
