//! Webhooks from a school to Skolverket's SS 12000 client: "these entity types changed, fetch
//! them again". Authenticated with a bearer token of access type `ss12000-client`.

use serde_json::json;

use crate::client::error_chain;

/// Why a webhook was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Nothing to notify.
    #[error("a webhook needs at least one entity type (Person, Group, …)")]
    Empty,
    /// The request could not be sent.
    #[error("POST {url}: {message}")]
    Transport {
        /// The target.
        url: String,
        /// The error chain.
        message: String,
    },
    /// The receiver answered with a non-success status (the sender retries later).
    #[error("POST {url}: HTTP {status}")]
    Status {
        /// The target.
        url: String,
        /// The status.
        status: u16,
    },
}

/// The webhook body: `{"modifiedEntities": [...]}` (SS 12000 spelling).
pub fn body(entity_types: &[String]) -> serde_json::Value {
    json!({ "modifiedEntities": entity_types })
}

/// POSTs a webhook naming `entity_types` (`Person`, `Group`, …) to `url` with `bearer`.
pub async fn send(
    http: &reqwest::Client,
    url: &reqwest::Url,
    bearer: &str,
    entity_types: &[String],
) -> Result<(), WebhookError> {
    if entity_types.is_empty() {
        return Err(WebhookError::Empty);
    }
    let response = http
        .post(url.clone())
        .bearer_auth(bearer)
        .json(&body(entity_types))
        .send()
        .await
        .map_err(|e| WebhookError::Transport {
            url: url.to_string(),
            message: error_chain(&e),
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(WebhookError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        })
    }
}
