//! A push run against one EGIL server.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde::Serialize;
use ss12000::{EgilResource, Store, StoreError, Timestamp, WriteBatch};

use super::audit::{AuditEntry, AuditLog};
use super::plan::{GuardTrip, Item, Known, Op, Plan, known_from_state, state_prefix};
use crate::client::{ClientError, FederationClient};

/// Acknowledged objects recorded in the store per transaction.
const STATE_BATCH: usize = 500;

/// The most failures listed in a report (all are counted).
const MAX_LISTED_FAILURES: usize = 100;

/// Items per page when `--rebuild` lists the server.
const LIST_COUNT: usize = 1_000;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct EgilPushConfig {
    /// The server's entity id: the key of this server's state in the store.
    pub server: String,
    /// Reconcile against the server's `GET` lists instead of the stored state.
    pub rebuild: bool,
    /// The share of a type's objects that may change or be deleted in one run.
    pub max_change_share: f64,
    /// Send even when the guard trips.
    pub accept_changes: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// The audit log file (JSON lines, appended).
    pub audit_log: Option<PathBuf>,
}

/// What a run did with one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ResourceSummary {
    /// The resource.
    pub resource: &'static str,
    /// Objects of it in the store.
    pub live: u64,
    /// Not sent: the server has this content.
    pub unchanged: u64,
    /// Accepted as new (201).
    pub created: u64,
    /// Accepted as an update (200).
    pub updated: u64,
    /// Deleted (204), or already gone (404).
    pub deleted: u64,
    /// Refused or unanswered; sent again next run.
    pub failed: u64,
    /// Cannot be mapped to EGIL; never sent.
    pub invalid: u64,
}

/// One refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The resource.
    pub resource: &'static str,
    /// The object's id.
    pub id: String,
    /// What was sent.
    pub method: String,
    /// The status (0: no answer).
    pub status: u16,
    /// The server's `detail` or the error.
    pub detail: String,
}

/// What a whole run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EgilPushReport {
    /// The server's entity id.
    pub server: String,
    /// Whether it reconciled against the server's lists.
    pub rebuild: bool,
    /// Per resource, in send order.
    pub resources: Vec<ResourceSummary>,
    /// The types over the mass-change guard (nothing was sent when this is non-empty and the
    /// changes were not accepted).
    pub guard: Vec<GuardTrip>,
    /// Whether the guard stopped the run.
    pub stopped_by_guard: bool,
    /// The first refused requests.
    pub failures: Vec<Failure>,
    /// Objects that cannot be mapped (the first of them).
    pub invalid: Vec<String>,
}

impl EgilPushReport {
    /// Whether anything failed, was invalid, or the guard stopped the run (exit code 1).
    pub fn has_failures(&self) -> bool {
        self.stopped_by_guard || self.resources.iter().any(|r| r.failed + r.invalid > 0)
    }

    /// Requests that were sent and accepted.
    pub fn sent(&self) -> u64 {
        self.resources
            .iter()
            .map(|r| r.created + r.updated + r.deleted)
            .sum()
    }
}

/// Why a run stopped. What the server acknowledged before is recorded in the store.
#[derive(Debug, thiserror::Error)]
pub enum EgilPushError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The server could not be reached, or a request could not be sent.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The audit log could not be written.
    #[error("audit log: {0}")]
    Audit(#[from] std::io::Error),
    /// `--rebuild` could not read a list from the server.
    #[error("listing {resource} on the server: {detail}")]
    List {
        /// The resource.
        resource: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// Pushes a store to one EGIL server.
pub struct EgilPusher {
    store: Store,
    client: FederationClient,
    config: EgilPushConfig,
}

/// The outcome of one object's requests.
enum Outcome {
    Created,
    Updated,
    Deleted,
    Failed(Failure),
}

struct Run<'a> {
    pusher: &'a EgilPusher,
    audit: AuditLog,
    acks: WriteBatch,
    bar: ProgressBar,
}

impl EgilPusher {
    /// A pusher reading `store` and sending with `client` (built for the EGIL server).
    pub fn new(store: Store, client: FederationClient, config: EgilPushConfig) -> EgilPusher {
        EgilPusher {
            store,
            client,
            config,
        }
    }

    /// Plans, checks the guard, and sends.
    pub async fn run(&self) -> Result<EgilPushReport, EgilPushError> {
        let known = if self.config.rebuild {
            self.list_server().await?
        } else {
            known_from_state(&self.store, &self.config.server).await?
        };
        let plan = Plan::build(&self.store, &known).await?;
        let mut report = EgilPushReport {
            server: self.config.server.clone(),
            rebuild: self.config.rebuild,
            guard: plan.guard(self.config.max_change_share, self.config.rebuild),
            ..EgilPushReport::default()
        };
        let mut summaries: BTreeMap<EgilResource, ResourceSummary> = BTreeMap::new();
        for resource in EgilResource::SEND_ORDER {
            let p = plan.resources.get(&resource).cloned().unwrap_or_default();
            summaries.insert(
                resource,
                ResourceSummary {
                    resource: resource.path(),
                    live: p.live,
                    unchanged: p.unchanged,
                    invalid: p.invalid.len() as u64,
                    ..ResourceSummary::default()
                },
            );
            for why in p.invalid.iter().take(MAX_LISTED_FAILURES) {
                if report.invalid.len() < MAX_LISTED_FAILURES {
                    report.invalid.push(why.clone());
                }
            }
        }
        if !report.guard.is_empty() && !self.config.accept_changes {
            report.stopped_by_guard = true;
            report.resources = summaries.into_values().collect();
            return Ok(report);
        }
        if self.config.rebuild {
            self.reset_state(&known).await?;
        }
        let total: usize = plan
            .resources
            .values()
            .map(|p| p.send.len() + p.delete.len())
            .sum();
        let mut run = Run {
            pusher: self,
            audit: AuditLog::open(self.config.audit_log.as_deref())?,
            acks: WriteBatch::new(),
            bar: self.progress_bar(total),
        };
        for resource in EgilResource::SEND_ORDER {
            let Some(p) = plan.resources.get(&resource) else {
                continue;
            };
            let summary = summaries.entry(resource).or_default();
            for item in &p.send {
                let outcome = run.upsert(resource, item).await?;
                run.count(
                    resource,
                    &item.id,
                    Some(&item.hash),
                    outcome,
                    summary,
                    &mut report,
                )
                .await?;
            }
            run.commit().await?;
        }
        for resource in EgilResource::SEND_ORDER.into_iter().rev() {
            let Some(p) = plan.resources.get(&resource) else {
                continue;
            };
            let summary = summaries.entry(resource).or_default();
            for id in &p.delete {
                let outcome = run.delete(resource, id).await?;
                run.count(resource, id, None, outcome, summary, &mut report)
                    .await?;
            }
            run.commit().await?;
        }
        run.bar.finish_and_clear();
        run.audit.flush()?;
        report.resources = summaries.into_values().collect();
        tracing::info!(server = %self.config.server, sent = report.sent(), "EGIL push finished");
        Ok(report)
    }

    /// `--rebuild`: what the server holds, from its lists (content unknown).
    async fn list_server(&self) -> Result<Known, EgilPushError> {
        let mut known = Known::new();
        let mut alphabetical = EgilResource::SEND_ORDER;
        alphabetical.sort_by_key(|r| r.path());
        for resource in alphabetical {
            let mut ids = std::collections::HashMap::new();
            let mut start = 1usize;
            loop {
                let path = format!("{}?startIndex={start}&count={LIST_COUNT}", resource.path());
                let builder = self
                    .client
                    .get(&path)?
                    .header("accept", "application/scim+json");
                let response = self.client.send(builder).await?;
                let status = response.status();
                let error = |detail: String| EgilPushError::List {
                    resource: resource.path(),
                    detail,
                };
                if !status.is_success() {
                    return Err(error(format!("status {status}")));
                }
                let body: serde_json::Value = response
                    .json()
                    .await
                    .map_err(|e| error(format!("not a SCIM ListResponse: {e}")))?;
                let resources = body["Resources"].as_array().cloned().unwrap_or_default();
                for r in &resources {
                    if let Some(id) = r["id"].as_str().or(r["externalId"].as_str()) {
                        ids.insert(id.to_owned(), String::new());
                    }
                }
                let total = body["totalResults"].as_u64().unwrap_or(0) as usize;
                start += resources.len();
                if resources.is_empty() || start > total {
                    break;
                }
            }
            known.insert(resource, ids);
        }
        Ok(known)
    }

    /// Replaces this server's state with what its lists hold (content unknown), in one
    /// transaction, before a rebuild sends anything.
    async fn reset_state(&self, known: &Known) -> Result<(), EgilPushError> {
        let mut batch = WriteBatch::new();
        for resource in EgilResource::SEND_ORDER {
            let prefix = state_prefix(&self.config.server, resource);
            for (key, _) in self.store.states_with_prefix(&prefix).await? {
                batch.set_state(&key, None);
            }
            for id in known.get(&resource).into_iter().flat_map(|k| k.keys()) {
                batch.set_state(&format!("{prefix}{id}"), Some(serde_json::Value::from("")));
            }
        }
        self.store.apply(batch).await?;
        Ok(())
    }

    fn progress_bar(&self, len: usize) -> ProgressBar {
        if !self.config.progress || len == 0 {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}

impl Run<'_> {
    /// One request; the status, and the `detail` of an error body.
    async fn request(
        &mut self,
        method: Method,
        resource: EgilResource,
        id: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, String), EgilPushError> {
        let path = match id {
            Some(id) => format!("{}/{id}", resource.path()),
            None => resource.path().to_owned(),
        };
        let client = &self.pusher.client;
        let mut builder = client
            .request(method.clone(), &path)?
            .header("accept", "application/scim+json");
        if let Some(body) = body {
            builder = builder
                .header("content-type", "application/scim+json")
                .body(body.to_owned());
        }
        let response = client.send(builder).await?;
        let status = response.status().as_u16();
        let detail = if response.status().is_client_error() || response.status().is_server_error() {
            let text = response.text().await.unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(300).collect())
        } else {
            String::new()
        };
        Ok((status, detail))
    }

    fn audit(
        &mut self,
        method: &str,
        resource: EgilResource,
        id: &str,
        status: u16,
        outcome: &str,
    ) -> Result<(), EgilPushError> {
        self.audit.write(&AuditEntry {
            at: Timestamp::now().to_string(),
            server: &self.pusher.config.server,
            method,
            resource: resource.path(),
            id,
            status,
            outcome,
        })?;
        Ok(())
    }

    fn failure(
        resource: EgilResource,
        id: &str,
        method: &str,
        status: u16,
        detail: String,
    ) -> Outcome {
        Outcome::Failed(Failure {
            resource: resource.path(),
            id: id.to_owned(),
            method: method.to_owned(),
            status,
            detail,
        })
    }

    /// POST or PUT, with EgilSCIM's recoveries: 409 on POST → PUT, 404 on PUT → POST.
    async fn upsert(
        &mut self,
        resource: EgilResource,
        item: &Item,
    ) -> Result<Outcome, EgilPushError> {
        let mut op = item.op;
        for attempt in 0..2 {
            let (method, id) = match op {
                Op::Create => (Method::POST, None),
                Op::Update => (Method::PUT, Some(item.id.as_str())),
            };
            let (status, detail) = self
                .request(method.clone(), resource, id, Some(&item.json))
                .await?;
            match (op, status) {
                (Op::Create, 200 | 201) => {
                    self.audit(method.as_str(), resource, &item.id, status, "created")?;
                    return Ok(Outcome::Created);
                }
                (Op::Update, 200) => {
                    self.audit(method.as_str(), resource, &item.id, status, "updated")?;
                    return Ok(Outcome::Updated);
                }
                (Op::Create, 409) if attempt == 0 => {
                    self.audit(method.as_str(), resource, &item.id, status, "exists")?;
                    op = Op::Update;
                }
                (Op::Update, 404) if attempt == 0 => {
                    self.audit(method.as_str(), resource, &item.id, status, "unknown")?;
                    op = Op::Create;
                }
                _ => {
                    self.audit(method.as_str(), resource, &item.id, status, "failed")?;
                    return Ok(Self::failure(
                        resource,
                        &item.id,
                        method.as_str(),
                        status,
                        detail,
                    ));
                }
            }
        }
        Ok(Self::failure(
            resource,
            &item.id,
            "PUT",
            0,
            "the server answered 409 and 404 in turn".into(),
        ))
    }

    /// DELETE; 404 means already gone.
    async fn delete(&mut self, resource: EgilResource, id: &str) -> Result<Outcome, EgilPushError> {
        let (status, detail) = self
            .request(Method::DELETE, resource, Some(id), None)
            .await?;
        match status {
            200 | 204 => {
                self.audit("DELETE", resource, id, status, "deleted")?;
                Ok(Outcome::Deleted)
            }
            404 => {
                self.audit("DELETE", resource, id, status, "already-gone")?;
                Ok(Outcome::Deleted)
            }
            _ => {
                self.audit("DELETE", resource, id, status, "failed")?;
                Ok(Self::failure(resource, id, "DELETE", status, detail))
            }
        }
    }

    /// Counts an outcome and records an acknowledged object's state.
    async fn count(
        &mut self,
        resource: EgilResource,
        id: &str,
        hash: Option<&str>,
        outcome: Outcome,
        summary: &mut ResourceSummary,
        report: &mut EgilPushReport,
    ) -> Result<(), EgilPushError> {
        self.bar.set_prefix(resource.path());
        self.bar.inc(1);
        let key = format!("{}{id}", state_prefix(&self.pusher.config.server, resource));
        match outcome {
            Outcome::Created | Outcome::Updated => {
                if matches!(outcome, Outcome::Created) {
                    summary.created += 1;
                } else {
                    summary.updated += 1;
                }
                self.acks.set_state(
                    &key,
                    Some(serde_json::Value::from(hash.unwrap_or_default())),
                );
            }
            Outcome::Deleted => {
                summary.deleted += 1;
                self.acks.set_state(&key, None);
            }
            Outcome::Failed(failure) => {
                summary.failed += 1;
                tracing::warn!(
                    resource = failure.resource,
                    id = failure.id,
                    status = failure.status,
                    detail = failure.detail,
                    "EGIL request refused"
                );
                if report.failures.len() < MAX_LISTED_FAILURES {
                    report.failures.push(failure);
                }
            }
        }
        if self.acks.len() >= STATE_BATCH {
            self.commit().await?;
        }
        Ok(())
    }

    /// Records the acknowledged objects (and flushes the audit log).
    async fn commit(&mut self) -> Result<(), EgilPushError> {
        self.audit.flush()?;
        let batch = std::mem::take(&mut self.acks);
        if !batch.is_empty() {
            self.pusher.store.apply(batch).await?;
        }
        Ok(())
    }
}
