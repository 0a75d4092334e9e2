//! Writes a signed synthetic aggregate and its JWKS, for timing `fedtls verify` as a whole
//! process: `cargo run --release --example aggregate -- 5000 /tmp/agg`.

use fedtls::jwk::{Algorithm, Jwks, SigningKey};
use fedtls::jws::{JwsFormat, SignOptions, sign_metadata};
use fedtls::testfed::synthetic_metadata;
use fedtls::verify::unix_now;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let entities: usize = args.next().unwrap_or_else(|| "5000".into()).parse()?;
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "aggregate".into()));
    std::fs::create_dir_all(&dir)?;
    let metadata = synthetic_metadata(entities, 2)?;
    let serde_json::Value::Object(payload) = serde_json::to_value(&metadata)? else {
        return Err("metadata is not an object".into());
    };
    let key = SigningKey::generate(Algorithm::Es256, "aggregate")?;
    let options = SignOptions {
        iss: "https://fed.bench.example".into(),
        lifetime_secs: 86_400,
        now: unix_now(),
        format: JwsFormat::General,
        default_cache_ttl: 3600,
    };
    let jws = sign_metadata(&payload, &[&key], &options)?;
    std::fs::write(dir.join("aggregate.jws"), &jws)?;
    std::fs::write(
        dir.join("jwks.json"),
        Jwks::from_keys(vec![key.public_jwk()]).to_json(),
    )?;
    println!(
        "{}: {entities} entities, {} bytes",
        dir.join("aggregate.jws").display(),
        jws.len()
    );
    Ok(())
}
