//! Parsing one response page: a list page (`{"data": [...], "pageToken": ...}`) into
//! [`Object`]s that keep the exact JSON text of each item, and a `deletedEntities` page into
//! ids per collection.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use ss12000::{Collection, Object};

use super::error::SyncError;

/// One page of a collection listing.
#[derive(Debug)]
pub(crate) struct ListPage {
    /// The page's objects, in the server's order.
    pub objects: Vec<Object>,
    /// The token of the next page; `None` when this is the last page.
    pub next: Option<String>,
}

/// One page of `deletedEntities`.
#[derive(Debug)]
pub(crate) struct DeletedPage {
    /// Deleted ids per collection.
    pub ids: BTreeMap<Collection, Vec<String>>,
    /// Member names of `data` that name no collection (reported, otherwise ignored).
    pub unknown: Vec<String>,
    /// The token of the next page; `None` when this is the last page.
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct RawListPage<'a> {
    /// Outer `None`: member missing; `Some(None)`: `"data": null` (Go servers send that for
    /// an empty slice).
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<Option<Vec<&'a RawValue>>>,
    #[serde(rename = "pageToken", default)]
    page_token: Option<&'a RawValue>,
    /// The reference OpenAPI names the organisations array `organisations`, not `data`.
    #[serde(borrow, default)]
    organisations: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct RawDeletedPage<'a> {
    #[serde(default)]
    data: Option<BTreeMap<String, Option<Vec<String>>>>,
    #[serde(rename = "pageToken", borrow, default)]
    page_token: Option<&'a RawValue>,
}

/// Parses a list page. Items keep their JSON text verbatim (unknown fields, member order).
pub(crate) fn parse_list(url: &str, body: &[u8]) -> Result<ListPage, SyncError> {
    let bad = |message: String| SyncError::BadPage {
        url: url.to_owned(),
        message,
    };
    let text = std::str::from_utf8(body).map_err(|e| bad(format!("body is not UTF-8: {e}")))?;
    let raw: RawListPage<'_> = serde_json::from_str(text)
        .map_err(|e| bad(format!("not a page object ({{\"data\": [...]}}): {e}")))?;
    let items = match (raw.data, raw.organisations) {
        (Some(items), _) => items.unwrap_or_default(),
        (None, Some(items)) => items,
        (None, None) => return Err(bad("the page has no `data` array".to_owned())),
    };
    let mut objects = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let object = Object::from_json(item.get()).map_err(|e| SyncError::BadObject {
            url: url.to_owned(),
            index,
            message: e.to_string(),
        })?;
        objects.push(object);
    }
    Ok(ListPage {
        objects,
        next: next_token(url, raw.page_token)?,
    })
}

/// Parses a `deletedEntities` page. Accepts the reference OpenAPI's misspelt `activitites`.
pub(crate) fn parse_deleted(url: &str, body: &[u8]) -> Result<DeletedPage, SyncError> {
    let bad = |message: String| SyncError::BadPage {
        url: url.to_owned(),
        message,
    };
    let raw: RawDeletedPage<'_> = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "not a deletedEntities page ({{\"data\": {{\"persons\": [ids]}}}}): {e}"
        ))
    })?;
    let mut ids: BTreeMap<Collection, Vec<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (name, list) in raw.data.unwrap_or_default() {
        let collection = if name == "activitites" {
            Ok(Collection::Activities)
        } else {
            Collection::from_path(&name)
        };
        match collection {
            Ok(collection) => ids
                .entry(collection)
                .or_default()
                .extend(list.unwrap_or_default()),
            Err(_) => unknown.push(name),
        }
    }
    for (collection, list) in &ids {
        if let Some(bad_id) = list
            .iter()
            .find(|id| id.is_empty() || id.len() > 256 || id.chars().any(char::is_control))
        {
            return Err(bad(format!(
                "`data.{collection}` holds an invalid id {bad_id:?}"
            )));
        }
    }
    Ok(DeletedPage {
        ids,
        unknown,
        next: next_token(url, raw.page_token)?,
    })
}

/// Deserialises a member that is present (even as `null`) into `Some`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `pageToken`: a non-empty string continues; missing, `null` or `""` ends the listing.
fn next_token(url: &str, raw: Option<&RawValue>) -> Result<Option<String>, SyncError> {
    let Some(raw) = raw else { return Ok(None) };
    let value: Option<String> =
        serde_json::from_str(raw.get()).map_err(|_| SyncError::BadPage {
            url: url.to_owned(),
            message: format!("`pageToken` is neither a string nor null: {}", raw.get()),
        })?;
    Ok(value.filter(|token| !token.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_conventions() {
        for (body, expected) in [
            (r#"{"data":[]}"#, None),
            (r#"{"data":[],"pageToken":null}"#, None),
            (r#"{"data":null,"pageToken":null}"#, None),
            (r#"{"organisations":[]}"#, None),
            (r#"{"data":[],"pageToken":""}"#, None),
            (r#"{"data":[],"pageToken":"a+b/="}"#, Some("a+b/=")),
        ] {
            let page = parse_list("u", body.as_bytes()).unwrap();
            assert_eq!(page.next.as_deref(), expected, "{body}");
        }
        assert!(parse_list("u", br#"{"data":[],"pageToken":7}"#).is_err());
    }

    #[test]
    fn refuses_what_is_not_a_page() {
        for body in [
            &b"[]"[..],
            b"{}",
            b"not json",
            br#"{"data":{}}"#,
            b"\xff\xfe",
        ] {
            let error = parse_list("https://s/persons", body).unwrap_err();
            assert!(
                error.to_string().starts_with("GET https://s/persons: "),
                "{error}"
            );
        }
    }

    #[test]
    fn deleted_pages_accept_the_misspelt_activities() {
        let page = parse_deleted(
            "u",
            br#"{"data":{"persons":["a","b"],"activitites":["c"],"groups":null,"9bad":["x"]},"pageToken":null}"#,
        )
        .unwrap();
        assert_eq!(page.ids[&Collection::Persons], ["a", "b"]);
        assert_eq!(page.ids[&Collection::Activities], ["c"]);
        assert!(page.ids[&Collection::Groups].is_empty());
        assert_eq!(page.unknown, ["9bad"]);
        assert!(page.next.is_none());
        assert!(parse_deleted("u", br#"{"data":{"persons":[""]}}"#).is_err());
        assert!(parse_deleted("u", br#"{"data":{"persons":[1]}}"#).is_err());
    }
}
