//! The path a server application is mounted under: the path of its `base_uri` in the
//! federation metadata, so it answers where members are told to call it.

use fedtls::snapshot::SnapshotSource;
use kontosynk_framework::cli::Prepared;

/// The path of a URL without a trailing slash (`https://s.example/egil/` → `/egil`; no path →
/// empty).
pub fn path_of(url: &str) -> String {
    url.split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("", |at| &rest[at..]))
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned()
}

/// The path of this server's own `base_uri` in the metadata, found by its certificate's pin
/// (and, when the entity lists several servers, the first with `tag`).
pub fn own_base_path(prepared: &Prepared, tag: Option<&str>) -> Option<String> {
    let pin = prepared.resolver.pin()?;
    let snapshot = prepared.store.current()?;
    let found = snapshot.index().server_by_pin(&pin)?;
    let tagged = tag.and_then(|tag| {
        found
            .entity
            .servers
            .iter()
            .find(|s| s.pins.contains(&pin) && s.has_tag(tag))
    });
    let base_uri = tagged
        .and_then(|s| s.base_uri.as_deref())
        .or(found.endpoint.base_uri.as_deref())?;
    tracing::info!(entity_id = %found.entity.entity_id, base_uri, "serving under the path of this server's base_uri in the metadata");
    Some(path_of(base_uri))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_of_urls() {
        assert_eq!(super::path_of("https://s.example/egil/v1/"), "/egil/v1");
        assert_eq!(super::path_of("https://s.example"), "");
        assert_eq!(super::path_of("not a url"), "");
    }
}
