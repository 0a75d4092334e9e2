//! Webhook delivery for subscriptions: when objects of a subscribed type change, POST
//! `{"modifiedEntities": ["Person"]}` (also spelt `modifiedEntites`, as the reference OpenAPI
//! does, so either reader finds it) and/or `{"deletedEntities": true}` to the target.
//!
//! Each delivery is retried on errors and non-2xx answers with exponential backoff, and given
//! up after [`WebhookConfig::max_attempts`] or when the subscription lapses or is deleted.
//! Every attempt is logged and kept as a `webhook` record in the store; each subscription keeps
//! at most [`WebhookConfig::max_records`] of them, and records older than
//! [`WebhookConfig::record_retention`] are dropped.
//!
//! Targets are checked before every attempt and after DNS resolution ([`super::targets`]):
//! internal addresses are refused unless [`TargetPolicy::allow_private`].
//!
//! At most one delivery per subscription is in flight: changes that arrive meanwhile are
//! merged and sent as one delivery when it ends, so a burst of changes costs a subscriber one
//! request, not one each.
//!
//! Changes come from [`Webhooks::notify`] (writes made in this process) and from a poll of
//! the store ([`Webhooks::spawn_poller`]) for writes made by other processes (an import):
//! objects whose `meta.modified` is after the previous poll, changed counts, new tombstones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ss12000::{Collection, DeletedQuery, ListQuery, Store, Subscription, Timestamp};

use kontosynk_framework::lock;

use super::targets::{GuardedResolver, TargetPolicy, refusal_in};

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
    /// Which targets may be connected to.
    pub targets: TargetPolicy,
    /// The most delivery records kept per subscription (the oldest are dropped).
    pub max_records: usize,
    /// Delivery records older than this are dropped.
    pub record_retention: Duration,
}

impl Default for WebhookConfig {
    /// 8 attempts, backoff 2 s doubling to at most 10 min, 15 s per attempt, poll every 30 s;
    /// `https://` targets at public addresses only; 100 records per subscription, kept 30
    /// days.
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(15),
            poll_interval: Duration::from_secs(30),
            targets: TargetPolicy::default(),
            max_records: 100,
            record_retention: Duration::from_secs(30 * 86_400),
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
    /// The target is not allowed (an internal address, also after DNS resolution).
    Refused,
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
    /// Subscriptions with a delivery in flight, and the changes that arrived meanwhile.
    in_flight: Mutex<HashMap<String, BTreeSet<Change>>>,
}

/// Marks a subscription's delivery as in flight; forgets it when dropped (also on a panic),
/// so the subscription is never stuck.
struct InFlight {
    webhooks: Webhooks,
    id: String,
}

impl InFlight {
    /// The changes that arrived since the last call; when none, the subscription is no
    /// longer in flight (checked and cleared under one lock, so no change is lost).
    fn take_pending_or_finish(&self) -> BTreeSet<Change> {
        let mut in_flight = lock(&self.webhooks.inner.in_flight);
        let pending = in_flight
            .get_mut(&self.id)
            .map(std::mem::take)
            .unwrap_or_default();
        if pending.is_empty() {
            in_flight.remove(&self.id);
        }
        pending
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.webhooks.inner.in_flight).remove(&self.id);
    }
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
        // No proxy (it would resolve the target instead of the guarded resolver) and no
        // redirects (a public target could send the client inward).
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: config.targets.allow_private,
            }))
            .build()
            .map_err(WebhookClientError)?;
        Ok(Webhooks {
            inner: Arc::new(Inner {
                store,
                config,
                http,
                in_flight: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &WebhookConfig {
        &self.inner.config
    }

    /// Starts deliveries to every live subscription covering one of `changes`; returns the
    /// handles of the delivery tasks started (each resolves to the [`Outcome`] of its last
    /// delivery). A subscription with a delivery in flight starts none: the changes are
    /// delivered, merged with any others, when the one in flight ends.
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
            {
                let mut in_flight = lock(&self.inner.in_flight);
                if let Some(pending) = in_flight.get_mut(&subscription.id) {
                    pending.extend(changes.iter().cloned());
                    continue;
                }
                in_flight.insert(subscription.id.clone(), BTreeSet::new());
            }
            let guard = InFlight {
                webhooks: self.clone(),
                id: subscription.id.clone(),
            };
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                this.deliver_coalesced(guard, subscription, body).await
            }));
        }
        Ok(tasks)
    }

    /// Delivers `body`, then the changes that arrived meanwhile (merged), until none is left.
    async fn deliver_coalesced(
        &self,
        guard: InFlight,
        subscription: Subscription,
        mut body: serde_json::Value,
    ) -> Outcome {
        loop {
            let outcome = self.deliver(&subscription, body).await;
            self.prune(&subscription).await;
            let pending: Vec<Change> = guard.take_pending_or_finish().into_iter().collect();
            match payload(&subscription, &pending) {
                Some(next) if outcome != Outcome::Expired && outcome != Outcome::Refused => {
                    body = next;
                }
                _ => return outcome,
            }
        }
    }

    /// Drops the subscription's records beyond [`WebhookConfig::max_records`] and every
    /// record older than [`WebhookConfig::record_retention`].
    async fn prune(&self, subscription: &Subscription) {
        let config = &self.inner.config;
        let store = &self.inner.store;
        if let Err(err) = store
            .trim_records(
                "webhook",
                "subscription",
                &subscription.id,
                config.max_records,
            )
            .await
        {
            tracing::warn!(error = %err, id = %subscription.id, "cannot trim webhook records");
        }
        let secs = i64::try_from(config.record_retention.as_secs()).unwrap_or(i64::MAX);
        let before = Timestamp::now().add_seconds(-secs);
        if let Err(err) = store.expire_records("webhook", before).await {
            tracing::warn!(error = %err, "cannot expire webhook records");
        }
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
    async fn deliver(&self, subscription: &Subscription, body: serde_json::Value) -> Outcome {
        let config = &self.inner.config;
        let mut backoff = config.initial_backoff;
        let attempts = config.max_attempts.max(1);
        let body = body.to_string();
        for attempt in 1..=attempts {
            // Re-read: a deleted or lapsed subscription gets nothing more.
            let current = self.inner.store.subscription(&subscription.id).await;
            let live = matches!(&current, Ok(Some(s)) if s.expires > Timestamp::now() && s.target == subscription.target);
            if !live {
                tracing::info!(id = %subscription.id, "subscription lapsed or deleted; delivery stopped");
                self.record(subscription, attempt, "expired", "").await;
                return Outcome::Expired;
            }
            // Checked on every attempt: the policy may have changed since it was stored.
            let url = match config.targets.check(&subscription.target) {
                Ok(url) => url,
                Err(refusal) => return self.refuse(subscription, attempt, &refusal).await,
            };
            let sent = self
                .inner
                .http
                .post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(id = %subscription.id, target = %subscription.target, attempt, status = response.status().as_u16(), "webhook delivered");
                    self.record(
                        subscription,
                        attempt,
                        "delivered",
                        response.status().as_str(),
                    )
                    .await;
                    return Outcome::Delivered;
                }
                Ok(response) => format!("answered {}", response.status()),
                Err(err) => {
                    if let Some(refusal) = refusal_in(&err) {
                        return self.refuse(subscription, attempt, refusal).await;
                    }
                    format!("failed: {err}")
                }
            };
            tracing::warn!(id = %subscription.id, target = %subscription.target, attempt, reason = %failure, "webhook attempt failed");
            self.record(subscription, attempt, "failed", &failure).await;
            if attempt < attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
        tracing::warn!(id = %subscription.id, target = %subscription.target, attempts, "webhook given up");
        self.record(subscription, attempts, "gave_up", "").await;
        Outcome::GaveUp
    }

    /// Records and logs a refused target; no further attempt is made.
    async fn refuse(
        &self,
        subscription: &Subscription,
        attempt: u32,
        refusal: &super::targets::TargetError,
    ) -> Outcome {
        tracing::warn!(id = %subscription.id, owner = %subscription.owner, reason = %refusal, "webhook target refused");
        self.record(subscription, attempt, "refused", &refusal.to_string())
            .await;
        Outcome::Refused
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
