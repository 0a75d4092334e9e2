//! The resume state of one listing (a collection, or `deletedEntities`) of one server, kept in
//! the store under its own key and written in the same batch as each page's data.

use serde::{Deserialize, Serialize};
use ss12000::{Store, Timestamp, WriteBatch};

use super::error::SyncError;

/// Key prefix of every sync-state value.
pub const STATE_PREFIX: &str = "sync/v1/";

/// The state key of one listing of the server at `base` (`persons`, `deletedEntities`).
/// `deletedEntities` is a reserved name, never a collection, so the keys cannot collide.
pub fn state_key(base: &str, listing: &str) -> String {
    format!("{STATE_PREFIX}{}/{listing}", base.trim_end_matches('/'))
}

/// What the store remembers about one listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListingState {
    /// The filter time of the next incremental pass (`meta.modified.after` or `after`): the
    /// start of the last completed pass minus the overlap window. `None`: never completed.
    #[serde(default)]
    pub watermark: Option<Timestamp>,
    /// A pass that started and has not completed.
    #[serde(default)]
    pub pass: Option<Pass>,
}

/// A pass in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pass {
    /// The filter time of this pass; `None` for a full listing.
    #[serde(default)]
    pub after: Option<Timestamp>,
    /// When the pass started (the earlier of the client's clock before the first request and
    /// the server's `Date` on the first response).
    pub started: Timestamp,
    /// The token of the next page to fetch; `None` until the first page is applied.
    #[serde(default)]
    pub page_token: Option<String>,
    /// Pages applied so far.
    #[serde(default)]
    pub pages: u64,
}

impl ListingState {
    /// Reads the state (default when absent).
    pub async fn load(store: &Store, key: &str) -> Result<ListingState, SyncError> {
        match store.state(key).await? {
            None => Ok(ListingState::default()),
            Some(value) => serde_json::from_value(value).map_err(|e| SyncError::State {
                key: key.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    /// Adds the write of this state to a batch.
    pub fn write(&self, key: &str, batch: &mut WriteBatch) {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        batch.set_state(key, Some(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_refuses_foreign_values() {
        let state = ListingState {
            watermark: Some(Timestamp::from_unix_micros(1_000_000)),
            pass: Some(Pass {
                after: None,
                started: Timestamp::from_unix_micros(2_000_000),
                page_token: Some("a+b/=".into()),
                pages: 3,
            }),
        };
        let value = serde_json::to_value(&state).unwrap();
        assert_eq!(
            serde_json::from_value::<ListingState>(value).unwrap(),
            state
        );
        assert!(serde_json::from_value::<ListingState>(serde_json::json!({"cursor": 1})).is_err());
        assert!(
            serde_json::from_value::<ListingState>(serde_json::json!({"watermark": "x"})).is_err()
        );
        assert_eq!(
            state_key("https://s.example/v2.0/", "persons"),
            "sync/v1/https://s.example/v2.0/persons"
        );
    }
}
