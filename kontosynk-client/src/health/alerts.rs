//! Alerts of `--serve`: a JSON POST to the operator's webhook once per change of a server's
//! alert condition (server went down, pin mismatch, certificate expiring within N days, and
//! back to ok), never again while the condition stays. The conditions are the ones the
//! Prometheus rules example (`deploy/prometheus/kontosynk-health.rules.yml`) expresses.

use std::time::Duration;

use tracing::warn;

use super::history::StateChange;
use super::{HealthState, ServerHealth, rfc3339};

/// The alert condition of a result: `pin_mismatch`, `server_down`, `certificate_expiring`
/// (within `expiry_days`) or `ok`. A server refusing our client certificate is `ok` here: it
/// is fine as the federation sees it.
pub fn alert_of(health: &ServerHealth, expiry_days: i64) -> &'static str {
    if health.pin_match == Some(false) {
        "pin_mismatch"
    } else if health.state == HealthState::Unhealthy {
        "server_down"
    } else if health.cert_days_left.is_some_and(|d| d < expiry_days) {
        "certificate_expiring"
    } else {
        "ok"
    }
}

/// The webhook: where to POST and the client that does it.
#[derive(Debug, Clone)]
pub struct Webhook {
    url: url::Url,
    client: reqwest::Client,
}

/// The webhook client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("alert webhook client: {0}")]
pub struct WebhookError(#[source] reqwest::Error);

impl Webhook {
    /// A webhook posting to `url`, each POST allowed 10 s.
    pub fn new(url: url::Url) -> Result<Self, WebhookError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(WebhookError)?;
        Ok(Self { url, client })
    }

    /// Posts one JSON object per change (see [`payload`]); a failure is logged, not retried
    /// (the next change alerts again, and `/metrics` always has the state).
    pub async fn send(&self, changes: &[StateChange]) {
        for change in changes {
            let result = self
                .client
                .post(self.url.clone())
                .json(&payload(change))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            if let Err(error) = result {
                warn!(url = %self.url, error = %fedtls::error_chain(&error), "the alert webhook failed");
            }
        }
    }
}

/// The webhook's JSON: `{"alert": "server_down", "previous": "ok", "resolved": false,
/// "entity_id", "base_uri", "organization", "organization_id", "state", "error",
/// "cert_days_left", "cert_not_after", "at"}`.
pub fn payload(change: &StateChange) -> serde_json::Value {
    let h = &change.health;
    serde_json::json!({
        "alert": change.alert,
        "previous": change.previous,
        "resolved": change.alert == "ok",
        "entity_id": h.entity_id,
        "base_uri": h.base_uri,
        "organization": h.organization,
        "organization_id": h.organization_id,
        "state": h.state,
        "error": h.error,
        "warnings": h.warnings,
        "cert_days_left": h.cert_days_left,
        "cert_not_after": h.cert_not_after,
        "at": rfc3339(fedtls::verify::unix_now()),
    })
}
