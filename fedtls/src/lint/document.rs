//! The top level (a whole document, a single entity or a bare array), its members, and
//! near-misses of known member names.

use serde_json::{Map, Value};

use crate::json::{Path, kind as type_name};
use crate::pin::truncate_for_message;

use super::schema::{Shape, violations};
use super::{DOCUMENT_MEMBERS, Linter, Severity};

/// What the input is: a whole document, one entity or an array of entities (None: neither).
pub(super) fn shape_of(value: &Value) -> Option<Shape> {
    match value {
        Value::Array(_) => Some(Shape::Entities),
        Value::Object(map)
            if map.contains_key("entities")
                || (!map.contains_key("entity_id")
                    && (map.contains_key("version") || map.contains_key("cache_ttl"))) =>
        {
            Some(Shape::Document)
        }
        Value::Object(_) => Some(Shape::Entity),
        _ => None,
    }
}

impl Linter<'_> {
    /// Every violation of the official schema versions is an error. One at a path where lint
    /// already reports an error is added to that error's message instead of repeating it.
    pub(super) fn schema_checks(&mut self, value: &Value) {
        let Some(shape) = shape_of(value) else {
            return;
        };
        match violations(value, shape) {
            Ok(found) => {
                for violation in found {
                    let described = violation.describe();
                    if let Some(existing) = self
                        .found
                        .iter_mut()
                        .find(|f| f.severity == Severity::Error && f.path == violation.path)
                    {
                        existing.message.push_str(&format!(" [{described}]"));
                    } else {
                        self.error(&violation.path, described);
                    }
                }
            }
            Err(e) => self.error(&Path::default(), e.to_string()),
        }
    }

    pub(super) fn top(&mut self, value: &Value) {
        let root = Path::default();
        match value {
            Value::Array(items) => {
                if items.is_empty() {
                    self.warn(&root, "the array holds no entities");
                }
                for (i, item) in items.iter().enumerate() {
                    self.entity(item, root.index(i));
                }
            }
            Value::Object(map)
                if map.contains_key("entities")
                    || (!map.contains_key("entity_id")
                        && (map.contains_key("version") || map.contains_key("cache_ttl"))) =>
            {
                self.document(map);
            }
            Value::Object(_) => self.entity(value, root),
            other => self.error(
                &root,
                format!(
                    "expected a metadata document {{\"version\": \"1.0.0\", \"entities\": [...]}}, one entity object or an array of entities, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn document(&mut self, map: &Map<String, Value>) {
        let root = Path::default();
        self.near_misses(map, DOCUMENT_MEMBERS, &root);
        let path = root.key("version");
        match map.get("version") {
            None => self.error(&path, "version is required: add \"version\": \"1.0.0\""),
            Some(Value::String(v)) if is_semver(v) => {}
            Some(Value::String(v)) => self.error(
                &path,
                format!(
                    "version {:?} is not MAJOR.MINOR.PATCH: use \"1.0.0\"",
                    truncate_for_message(v)
                ),
            ),
            Some(other) => self.error(
                &path,
                format!(
                    "version must be a string such as \"1.0.0\", found {}",
                    type_name(other)
                ),
            ),
        }
        if let Some(ttl) = map.get("cache_ttl") {
            let path = root.key("cache_ttl");
            match ttl {
                Value::Number(n) if n.as_u64().is_some() => {}
                Value::Number(n) if n.as_i64().is_some() => self.error(
                    &path,
                    "cache_ttl must not be negative: give the number of seconds to cache, e.g. 3600",
                ),
                other => self.error(
                    &path,
                    format!(
                        "cache_ttl must be a whole number of seconds (e.g. 3600), found {}",
                        type_name(other)
                    ),
                ),
            }
        }
        let path = root.key("entities");
        match map.get("entities") {
            None => self.error(&path, "entities is required: an array of entity objects"),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    self.warn(&path, "entities is empty: the document describes nothing");
                }
                for (i, item) in items.iter().enumerate() {
                    self.entity(item, path.index(i));
                }
            }
            Some(other) => self.error(
                &path,
                format!(
                    "entities must be an array of entity objects, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    pub(super) fn near_misses(
        &mut self,
        map: &Map<String, Value>,
        known: &[&'static str],
        path: &Path,
    ) {
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            if let Some(suggestion) = near_miss(key, known)
                && !map.contains_key(suggestion)
            {
                self.warn(
                    &path.key(key),
                    format!(
                        "unknown member {:?} is ignored: did you mean {suggestion:?}?",
                        truncate_for_message(key)
                    ),
                );
            }
        }
    }
}

fn is_semver(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The known member name that `key` most likely misspells, if any.
fn near_miss(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let normalize = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let unknown = normalize(key);
    if unknown.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'static str)> = None;
    for &candidate in known {
        let target = normalize(candidate);
        let singular = target
            .strip_suffix("ies")
            .map(|s| format!("{s}y"))
            .or_else(|| target.strip_suffix('s').map(str::to_owned));
        let distance = if unknown == target || singular.as_deref() == Some(unknown.as_str()) {
            0
        } else if unknown.chars().count() >= 4 && target.starts_with(&unknown) {
            1
        } else {
            let limit = match target.chars().count() {
                0..=4 => 1,
                5..=8 => 2,
                _ => 3,
            };
            let d = edit_distance(&unknown, &target);
            if d > limit {
                continue;
            }
            d
        };
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, name)| name)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[at(i - 1, j)] + 1)
                .min(d[at(i, j - 1)] + 1)
                .min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = v;
        }
    }
    d[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{ENDPOINT_MEMBERS, ENTITY_MEMBERS, ISSUER_MEMBERS};

    #[test]
    fn near_misses() {
        assert_eq!(near_miss("entityid", ENTITY_MEMBERS), Some("entity_id"));
        assert_eq!(
            near_miss("organisation_id", ENTITY_MEMBERS),
            Some("organization_id")
        );
        assert_eq!(
            near_miss("organisation", ENTITY_MEMBERS),
            Some("organization")
        );
        assert_eq!(near_miss("issuer", ENTITY_MEMBERS), Some("issuers"));
        assert_eq!(near_miss("base_url", ENDPOINT_MEMBERS), Some("base_uri"));
        assert_eq!(near_miss("pin", ENDPOINT_MEMBERS), Some("pins"));
        assert_eq!(near_miss("entity", DOCUMENT_MEMBERS), Some("entities"));
        assert_eq!(
            near_miss("x509Certificate", ISSUER_MEMBERS),
            Some("x509certificate")
        );
        assert_eq!(
            near_miss("x509cert", ISSUER_MEMBERS),
            Some("x509certificate")
        );
        assert_eq!(
            near_miss("extension_field_from_the_future", ENTITY_MEMBERS),
            None
        );
        assert_eq!(near_miss("contact", ENTITY_MEMBERS), None);
        assert_eq!(near_miss("url", ENDPOINT_MEMBERS), None);
        assert_eq!(near_miss("", ENDPOINT_MEMBERS), None);
    }

    #[test]
    fn semver() {
        assert!(is_semver("1.0.0"));
        assert!(is_semver("10.20.30"));
        for bad in ["1.0", "1.0.0.0", "v1.0.0", "1.0.x", "1..0", ""] {
            assert!(!is_semver(bad), "{bad:?}");
        }
    }
}
