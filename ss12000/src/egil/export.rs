//! One tenant's EGIL objects written as an SS 12000:2020 import file (the shape
//! `ss12000::import` reads and `kontosynk-server import` loads), so a service provider can
//! serve what school organizers pushed through the SS 12000:2020 API, or read it as files.

use std::collections::BTreeMap;
use std::io::Write;

use super::to_ss12000::to_ss12000;
use super::{EGIL_MAX_PAGE, EgilResource};
use crate::import::ExportError;
use crate::store::Store;

/// Writes `tenant`'s objects mapped to SS 12000:2020, keyed by collection, one object a line;
/// returns the count per collection. Objects whose stored text is not JSON (never written by
/// this project) are skipped and counted under `"unreadable"`.
pub async fn export_tenant<W: Write>(
    store: &Store,
    tenant: &str,
    out: &mut W,
) -> Result<BTreeMap<String, u64>, ExportError> {
    let mut collections: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for name in ["organisations", "persons", "duties", "groups", "activities"] {
        collections.insert(name, Vec::new());
    }
    for resource in EgilResource::SEND_ORDER {
        let mut offset = 0u64;
        loop {
            let page = store
                .egil_list(tenant, resource, offset, EGIL_MAX_PAGE)
                .await?;
            if page.bodies.is_empty() {
                break;
            }
            offset += page.bodies.len() as u64;
            for text in page.bodies {
                let mapped = serde_json::from_str(&text)
                    .ok()
                    .and_then(|v| to_ss12000(resource, &v));
                let Some((collection, object)) = mapped else {
                    *counts.entry("unreadable".to_owned()).or_insert(0) += 1;
                    continue;
                };
                let name: &'static str = match collection.path() {
                    "organisations" => "organisations",
                    "persons" => "persons",
                    "duties" => "duties",
                    "groups" => "groups",
                    _ => "activities",
                };
                if let Some(list) = collections.get_mut(name) {
                    list.push(object.to_string());
                }
            }
        }
    }
    out.write_all(b"{")?;
    for (n, name) in ["organisations", "persons", "duties", "groups", "activities"]
        .iter()
        .enumerate()
    {
        let objects = &collections[name];
        write!(out, "{}\n\"{name}\": [", if n == 0 { "" } else { "," })?;
        for (i, object) in objects.iter().enumerate() {
            write!(out, "{}\n{object}", if i == 0 { "" } else { "," })?;
        }
        out.write_all(if objects.is_empty() { b"]" } else { b"\n]" })?;
        counts.insert((*name).to_owned(), objects.len() as u64);
    }
    out.write_all(b"\n}\n")?;
    out.flush()?;
    Ok(counts)
}
