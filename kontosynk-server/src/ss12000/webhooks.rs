//! Webhook delivery for subscriptions: when objects of a subscribed type change, POST
//! `{"modifiedEntities": ["Person"]}` (also spelt `modifiedEntites`, as the reference OpenAPI
//! does, so either reader finds it) and/or `{"deletedEntities": true}` to the target.
//!
//! Each delivery is retried on errors and non-2xx answers with exponential backoff, and given
//! up after [`WebhookConfig::max_attempts`] or when the subscription lapses or is deleted.
//! Every attempt is logged and kept as a `webhook` record in the store.
//!
//! Changes come from [`Webhooks::notify`] (writes made in this process) and from a poll of
//! the store ([`Webhooks::spawn_poller`]) for writes made by other processes (an import):
//! objects whose `meta.modified` is after the previous poll, changed counts, new tombstones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ss12000::{Collection, DeletedQuery, ListQuery, Store, Subscription, Timestamp};

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Objects of this collection were created or updated.
    Modified(Collection),
    /// Objects of this collection were deleted.
    Deleted(Collection),
}

/// Retry and polling settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Attempts per delivery before giving up (at least 1).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further failure.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// How often the store is polled for changes made by other processes.
    pub poll_interval: Duration,
}

impl Default for WebhookConfig {
    /// 8 attempts, backoff 2 s doubling to at most 10 min, 15 s per attempt, poll every 30 s.
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(15),
            poll_interval: Duration::from_secs(30),
        }
    }
}

/// How a delivery ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered 2xx.
    Delivered,
    /// Every attempt failed.
    GaveUp,
    /// The subscription lapsed or was deleted before delivery.
    Expired,
}

/// Sends webhooks. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: WebhookConfig,
    http: reqwest::Client,
}

/// The webhook HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("webhook HTTP client: {0}")]
pub struct WebhookClientError(#[source] reqwest::Error);

impl Webhooks {
    /// A dispatcher reading subscriptions from `store`, sending over `tls` (an aws-lc-rs
    /// rustls config, e.g. [`crate::bearer::webpki_client_config`]).
    pub fn new(
        store: Store,
        config: WebhookConfig,
        tls: rustls::ClientConfig,
    ) -> Result<Webhooks, WebhookClientError> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WebhookClientError)?;
        Ok(Webhooks {
            inner: Arc::new(Inner {
                store,
                config,
                http,
            }),
        })
    }

    /// Starts deliveries to every live subscription covering one of `changes`; returns the
    /// handles of the delivery tasks (each resolves to its [`Outcome`]).
    pub async fn notify(
        &self,
        changes: &[Change],
    ) -> Result<Vec<tokio::task::JoinHandle<Outcome>>, ss12000::StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let now = Timestamp::now();
        let mut tasks = Vec::new();
        for subscription in self.inner.store.subscriptions().await? {
            if subscription.expires <= now {
                continue;
            }
            let Some(body) = payload(&subscription, changes) else {
                continue;
            };
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                this.deliver(subscription, body).await
            }));
        }
        Ok(tasks)
    }

    async fn record(&self, subscription: &Subscription, attempt: u32, result: &str, detail: &str) {
        let record = serde_json::json!({
            "subscription": subscription.id,
            "target": subscription.target,
            "attempt": attempt,
            "result": result,
            "detail": detail,
        });
        if let Err(err) = self.inner.store.append_record("webhook", &record).await {
            tracing::warn!(error = %err, "cannot record a webhook outcome");
        }
    }

    /// Delivers one body with retries.
    async fn deliver(&self, subscription: Subscription, body: serde_json::Value) -> Outcome {
        let config = &self.inner.config;
        let mut backoff = config.initial_backoff;
        let attempts = config.max_attempts.max(1);
        for attempt in 1..=attempts {
            // Re-read: a deleted or lapsed subscription gets nothing more.
            let current = self.inner.store.subscription(&subscription.id).await;
            let live = matches!(&current, Ok(Some(s)) if s.expires > Timestamp::now() && s.target == subscription.target);
            if !live {
                tracing::info!(id = %subscription.id, "subscription lapsed or deleted; delivery stopped");
                self.record(&subscription, attempt, "expired", "").await;
                return Outcome::Expired;
            }
            let sent = self
                .inner
                .http
                .post(&subscription.target)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(id = %subscription.id, target = %subscription.target, attempt, status = response.status().as_u16(), "webhook delivered");
                    self.record(
                        &subscription,
                        attempt,
                        "delivered",
                        response.status().as_str(),
                    )
                    .await;
                    return Outcome::Delivered;
                }
                Ok(response) => format!("answered {}", response.status()),
                Err(err) => format!("failed: {err}"),
            };
            tracing::warn!(id = %subscription.id, target = %subscription.target, attempt, reason = %failure, "webhook attempt failed");
            self.record(&subscription, attempt, "failed", &failure)
                .await;
            if attempt < attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
        tracing::warn!(id = %subscription.id, target = %subscription.target, attempts, "webhook given up");
        self.record(&subscription, attempts, "gave_up", "").await;
        Outcome::GaveUp
    }

    /// Polls the store for changes every `poll_interval` and notifies subscribers; runs until
    /// the task is dropped or aborted.
    pub fn spawn_poller(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut poller = Poller::default();
            let mut ticker = tokio::time::interval(this.inner.config.poll_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match poller.poll(&this.inner.store).await {
                    Ok(changes) if !changes.is_empty() => {
                        tracing::debug!(?changes, "store changes seen");
                        if let Err(err) = this.notify(&changes).await {
                            tracing::warn!(error = %err, "cannot list subscriptions");
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "change poll failed"),
                }
            }
        })
    }
}

/// The webhook body for `subscription`, or `None` when no change concerns it.
fn payload(subscription: &Subscription, changes: &[Change]) -> Option<serde_json::Value> {
    let wanted = |c: &Collection| subscription.resource_types.contains(&c.entity_type());
    let modified: BTreeSet<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Modified(c) if wanted(c) => Some(c.entity_type()),
            _ => None,
        })
        .collect();
    let deleted = changes
        .iter()
        .any(|c| matches!(c, Change::Deleted(c) if wanted(c)));
    if modified.is_empty() && !deleted {
        return None;
    }
    let mut body = serde_json::Map::new();
    if !modified.is_empty() {
        let list: Vec<String> = modified.into_iter().collect();
        body.insert("modifiedEntities".into(), list.clone().into());
        body.insert("modifiedEntites".into(), list.into());
    }
    if deleted {
        body.insert("deletedEntities".into(), true.into());
    }
    Some(serde_json::Value::Object(body))
}

/// What the store looked like at the previous poll.
#[derive(Default)]
struct Poller {
    since: Option<Timestamp>,
    counts: BTreeMap<Collection, u64>,
}

impl Poller {
    async fn poll(&mut self, store: &Store) -> Result<Vec<Change>, ss12000::StoreError> {
        let now = Timestamp::now();
        let mut changes = Vec::new();
        let first = self.since.is_none();
        // Overlap polls by a second so a write committed during the last poll is not missed.
        let since = self.since.unwrap_or(now).add_seconds(-1);
        for collection in store.collections().await? {
            let count = store.count(&collection).await?;
            let previous = self.counts.insert(collection.clone(), count);
            if first {
                continue;
            }
            let query = ListQuery {
                modified_after: Some(since),
                limit: 1,
                ..ListQuery::default()
            };
            let touched = !store.list(&collection, &query).await?.is_empty();
            if touched || previous.is_some_and(|p| p != count) || previous.is_none() {
                changes.push(Change::Modified(collection.clone()));
            }
            let deleted = DeletedQuery {
                collections: vec![collection.clone()],
                after: Some(since),
                after_key: None,
                limit: 1,
            };
            if !store.deleted(&deleted).await?.is_empty() {
                changes.push(Change::Deleted(collection));
            }
        }
        self.since = Some(now);
        Ok(changes)
    }
}
