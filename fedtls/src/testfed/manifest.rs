//! The manifest (`federation.json`): writing it, and reading a federation back from it.

use std::path::Path;

use serde_json::{Value, json};

use super::{Party, TestFederation};

pub(super) fn from_manifest(dir: &Path, v: &Value) -> Option<TestFederation> {
    let file = |key: &str| v.get(key)?.as_str().map(|f| dir.join(f));
    let parties = v
        .get("parties")?
        .as_array()?
        .iter()
        .map(|p| {
            let s = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
            Some(Party {
                name: s("name")?,
                entity_id: s("entity_id"),
                role: s("role")?,
                cert: dir.join(s("cert")?),
                key: dir.join(s("key")?),
                chain: s("chain").map(|c| dir.join(c)),
                pin: s("pin")?.parse().ok()?,
                base_uri: s("base_uri"),
                tags: p
                    .get("tags")?
                    .as_array()?
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(TestFederation {
        dir: dir.to_path_buf(),
        iss: v.get("iss")?.as_str()?.to_owned(),
        jwks: file("jwks")?,
        signing_key: file("signing_key")?,
        metadata_json: file("metadata_json")?,
        metadata_jws: file("metadata_jws")?,
        parties,
        reused_keys: Vec::new(),
    })
}

/// The manifest, with paths relative to the federation directory.
pub(super) fn manifest(federation: &TestFederation) -> String {
    let rel = |p: &Path| {
        p.strip_prefix(&federation.dir)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let parties: Vec<Value> = federation
        .parties
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "entity_id": p.entity_id,
                "role": p.role,
                "cert": rel(&p.cert),
                "key": rel(&p.key),
                "chain": p.chain.as_deref().map(rel),
                "pin": p.pin,
                "base_uri": p.base_uri,
                "tags": p.tags,
            })
        })
        .collect();
    let value = json!({
        "iss": federation.iss,
        "jwks": rel(&federation.jwks),
        "signing_key": rel(&federation.signing_key),
        "metadata_json": rel(&federation.metadata_json),
        "metadata_jws": rel(&federation.metadata_jws),
        "parties": parties,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
