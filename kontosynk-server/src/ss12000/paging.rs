//! Paging: the `limit`/`pageToken`/`meta.*` parameters and opaque page tokens.
//!
//! A page token is base64url (no padding) of a small JSON document carrying what the next
//! page needs: the collection, the filters of the first request and the last id served
//! (keyset paging, so items that exist throughout a listing are neither skipped nor repeated
//! while other items change). Tokens are not secret and need no signature: forging one only
//! selects what the same client could ask for with ordinary parameters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use ss12000::{Collection, DeletedQuery, ListQuery, Timestamp};

use super::error::ApiError;

/// Page sizes: the default when `limit` is absent, and the largest served (a larger `limit`
/// is lowered to it; the client follows `pageToken` as usual).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// Items per page when the request has no `limit`.
    pub default: usize,
    /// The most items one page holds.
    pub max: usize,
}

impl Default for PageLimits {
    /// 100 by default, at most 5,000.
    fn default() -> Self {
        PageLimits {
            default: 100,
            max: 5_000,
        }
    }
}

const TOKEN_VERSION: u8 = 1;
const DELETED: &str = "deletedEntities";

/// The `meta.*` filters, inclusive as the reference OpenAPI describes ("on or after").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mb: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ma: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ListToken {
    v: u8,
    c: String,
    #[serde(default)]
    f: Filters,
    a: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DeletedToken {
    v: u8,
    c: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<i64>,
    #[serde(default)]
    e: Vec<String>,
    k: (i64, String, String),
}

/// A list request, ready for the store, with what is needed to continue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// The store query (limit is the page size).
    pub query: ListQuery,
    filters: Filters,
    collection: String,
}

impl ListRequest {
    /// The token for the page after one ending with `last_id`.
    pub fn next_token(&self, last_id: &str) -> String {
        encode(&ListToken {
            v: TOKEN_VERSION,
            c: self.collection.clone(),
            f: self.filters,
            a: last_id.to_owned(),
        })
    }
}

/// A `deletedEntities` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRequest {
    /// The store query.
    pub query: DeletedQuery,
}

impl DeletedRequest {
    /// The token for the page after one ending with `last`.
    pub fn next_token(&self, last: &ss12000::Tombstone) -> String {
        encode(&DeletedToken {
            v: TOKEN_VERSION,
            c: DELETED.to_owned(),
            after: self.query.after.map(Timestamp::unix_micros),
            e: self
                .query
                .collections
                .iter()
                .map(|c| c.path().to_owned())
                .collect(),
            k: (
                last.deleted_at.unix_micros(),
                last.collection.path().to_owned(),
                last.id.clone(),
            ),
        })
    }
}

fn encode<T: Serialize>(token: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(token).unwrap_or_default())
}

fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_page_token",
            "pageToken is not a token this server issued; start again without it",
        )
    };
    // Tolerate clients that re-encode with padding or the standard alphabet.
    let cleaned: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let bytes = URL_SAFE_NO_PAD.decode(cleaned).map_err(|_| invalid())?;
    let token: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.get("v").and_then(|v| v.as_u64()) != Some(u64::from(TOKEN_VERSION)) {
        return Err(invalid());
    }
    serde_json::from_value(token).map_err(|_| invalid())
}

/// Checks that every parameter appears at most once and, with `pageToken`, that only
/// `limit` accompanies it.
fn check_params(params: &[(String, String)]) -> Result<Option<&str>, ApiError> {
    for (i, (name, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(other, _)| other == name) && name != "entities" {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("the parameter {name} is given more than once"),
            ));
        }
    }
    let token = params
        .iter()
        .find(|(name, _)| name == "pageToken")
        .map(|(_, v)| v.as_str());
    if token.is_some()
        && let Some((other, _)) = params
            .iter()
            .find(|(name, _)| name != "pageToken" && name != "limit")
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("pageToken can only be combined with limit, not with {other}"),
        ));
    }
    Ok(token)
}

fn parse_limit(params: &[(String, String)], limits: PageLimits) -> Result<usize, ApiError> {
    match params.iter().find(|(name, _)| name == "limit") {
        None => Ok(limits.default),
        Some((_, value)) => match value.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(limits.max)),
            _ => Err(ApiError::bad_request(
                "invalid_limit",
                format!(
                    "limit must be an integer from 1 (got {value:?}); at most {} are served per page",
                    limits.max
                ),
            )),
        },
    }
}

fn parse_time(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse(value).map_err(|_| {
        ApiError::bad_request(
            "invalid_timestamp",
            format!("{name} must be an RFC 3339 date-time such as 2026-11-21T10:00:00+01:00; got {value:?}"),
        )
    })
}

/// Parses the parameters of `GET /{collection}`.
pub fn list_request(
    collection: &Collection,
    params: &[(String, String)],
    limits: PageLimits,
) -> Result<ListRequest, ApiError> {
    let token = check_params(params)?;
    let limit = parse_limit(params, limits)?;
    let (filters, after_id) = match token {
        Some(text) => {
            let token: ListToken = decode(text)?;
            if token.c != collection.path() {
                return Err(ApiError::bad_request(
                    "invalid_page_token",
                    format!(
                        "this pageToken belongs to /{}, not /{}",
                        token.c,
                        collection.path()
                    ),
                ));
            }
            (token.f, Some(token.a))
        }
        None => {
            let mut filters = Filters::default();
            for (name, value) in params {
                let slot = match name.as_str() {
                    "meta.created.before" => &mut filters.cb,
                    "meta.created.after" => &mut filters.ca,
                    "meta.modified.before" => &mut filters.mb,
                    "meta.modified.after" => &mut filters.ma,
                    _ => continue,
                };
                *slot = Some(parse_time(name, value)?.unix_micros());
            }
            (filters, None)
        }
    };
    // The OpenAPI's bounds are inclusive ("on or after"); the store's are strict, and
    // timestamps are whole microseconds, so widen each bound by one microsecond.
    let before = |t: Option<i64>| t.map(|t| Timestamp::from_unix_micros(t.saturating_add(1)));
    let after = |t: Option<i64>| t.map(|t| Timestamp::from_unix_micros(t.saturating_sub(1)));
    Ok(ListRequest {
        query: ListQuery {
            after_id,
            limit,
            created_before: before(filters.cb),
            created_after: after(filters.ca),
            modified_before: before(filters.mb),
            modified_after: after(filters.ma),
        },
        filters,
        collection: collection.path().to_owned(),
    })
}

/// Parses the parameters of `GET /deletedEntities` (`after`, `entities` as a comma list
/// or repeated, `limit`, `pageToken`).
pub fn deleted_request(
    params: &[(String, String)],
    limits: PageLimits,
) -> Result<DeletedRequest, ApiError> {
    let token = check_params(params)?;
    let limit = parse_limit(params, limits)?;
    let query = match token {
        Some(text) => {
            let token: DeletedToken = decode(text)?;
            if token.c != DELETED {
                return Err(ApiError::bad_request(
                    "invalid_page_token",
                    format!(
                        "this pageToken belongs to /{}, not /deletedEntities",
                        token.c
                    ),
                ));
            }
            let invalid = || {
                ApiError::bad_request(
                    "invalid_page_token",
                    "pageToken is not a token this server issued; start again without it",
                )
            };
            let collections = token
                .e
                .iter()
                .map(|path| Collection::from_path(path).map_err(|_| invalid()))
                .collect::<Result<Vec<_>, _>>()?;
            let key_collection = Collection::from_path(&token.k.1).map_err(|_| invalid())?;
            DeletedQuery {
                collections,
                after: token.after.map(Timestamp::from_unix_micros),
                after_key: Some((
                    Timestamp::from_unix_micros(token.k.0),
                    key_collection,
                    token.k.2,
                )),
                limit,
            }
        }
        None => {
            let mut collections = Vec::new();
            let mut after = None;
            for (name, value) in params {
                match name.as_str() {
                    "after" => {
                        // Inclusive ("on or after"), the store's bound is strict.
                        after = Some(parse_time(name, value)?.add_micros(-1));
                    }
                    "entities" => {
                        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                            let collection = Collection::from_entity_type(item)
                                .or_else(|| Collection::from_path(item).ok())
                                .ok_or_else(|| {
                                    ApiError::bad_request(
                                        "invalid_entities",
                                        format!("{item:?} is not an entity type (Person, Group, Duty, Activity, Organisation)"),
                                    )
                                })?;
                            if !collections.contains(&collection) {
                                collections.push(collection);
                            }
                        }
                    }
                    _ => {}
                }
            }
            DeletedQuery {
                collections,
                after,
                after_key: None,
                limit,
            }
        }
    };
    Ok(DeletedRequest { query })
}

/// Microsecond arithmetic the store's [`Timestamp`] lacks.
trait AddMicros {
    fn add_micros(self, micros: i64) -> Timestamp;
}

impl AddMicros for Timestamp {
    fn add_micros(self, micros: i64) -> Timestamp {
        Timestamp::from_unix_micros(self.unix_micros().saturating_add(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn tokens_carry_collection_filters_and_position() {
        let first = list_request(
            &Collection::Persons,
            &params(&[
                ("meta.modified.after", "2026-01-01T00:00:00Z"),
                ("limit", "10"),
            ]),
            PageLimits::default(),
        )
        .unwrap();
        let token = first.next_token("abc");
        let next = list_request(
            &Collection::Persons,
            &params(&[("pageToken", &token)]),
            PageLimits::default(),
        )
        .unwrap();
        assert_eq!(next.query.after_id.as_deref(), Some("abc"));
        assert_eq!(next.query.modified_after, first.query.modified_after);
        assert_eq!(
            next.query.limit, 100,
            "limit is not carried; default applies"
        );
        // Standard-alphabet, padded re-encodings are tolerated.
        let padded = format!("{token}==");
        assert!(
            list_request(
                &Collection::Persons,
                &params(&[("pageToken", &padded)]),
                PageLimits::default()
            )
            .is_ok()
        );
        let err = list_request(
            &Collection::Groups,
            &params(&[("pageToken", &token)]),
            PageLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.code, "invalid_page_token");
    }

    #[test]
    fn inclusive_bounds_become_strict_store_bounds() {
        let request = list_request(
            &Collection::Persons,
            &params(&[
                ("meta.created.after", "2026-01-01T00:00:00Z"),
                ("meta.created.before", "2026-01-02T00:00:00Z"),
            ]),
            PageLimits::default(),
        )
        .unwrap();
        let after = Timestamp::parse("2026-01-01T00:00:00Z")
            .unwrap()
            .unix_micros();
        let before = Timestamp::parse("2026-01-02T00:00:00Z")
            .unwrap()
            .unix_micros();
        assert_eq!(
            request.query.created_after.unwrap().unix_micros(),
            after - 1
        );
        assert_eq!(
            request.query.created_before.unwrap().unix_micros(),
            before + 1
        );
    }

    #[test]
    fn limits_are_checked_and_capped() {
        let limits = PageLimits {
            default: 7,
            max: 50,
        };
        let limit = |v: &str| {
            list_request(&Collection::Persons, &params(&[("limit", v)]), limits)
                .map(|r| r.query.limit)
        };
        assert_eq!(limit("1").unwrap(), 1);
        assert_eq!(limit("51").unwrap(), 50);
        assert!(limit("0").is_err());
        assert!(limit("-1").is_err());
        assert!(limit("").is_err());
        assert_eq!(
            list_request(&Collection::Persons, &[], limits)
                .unwrap()
                .query
                .limit,
            7
        );
    }

    #[test]
    fn deleted_tokens_resume_after_the_last_tombstone() {
        let first = deleted_request(
            &params(&[
                ("entities", "Person,Group"),
                ("after", "2026-01-01T00:00:00Z"),
            ]),
            PageLimits::default(),
        )
        .unwrap();
        assert_eq!(
            first.query.collections,
            vec![Collection::Persons, Collection::Groups]
        );
        let last = ss12000::Tombstone {
            collection: Collection::Groups,
            id: "g".into(),
            deleted_at: Timestamp::parse("2026-02-01T00:00:00Z").unwrap(),
        };
        let token = first.next_token(&last);
        let next = deleted_request(
            &params(&[("pageToken", &token), ("limit", "3")]),
            PageLimits::default(),
        )
        .unwrap();
        assert_eq!(next.query.collections, first.query.collections);
        assert_eq!(next.query.after, first.query.after);
        assert_eq!(
            next.query.after_key,
            Some((last.deleted_at, Collection::Groups, "g".into()))
        );
        assert_eq!(next.query.limit, 3);
        assert!(
            deleted_request(
                &params(&[("pageToken", &token), ("after", "2026-01-01T00:00:00Z")]),
                PageLimits::default()
            )
            .is_err()
        );
    }
}
