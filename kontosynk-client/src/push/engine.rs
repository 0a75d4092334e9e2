//! A push run: the store's persons, duties, groups and activities sent to the Provisioning
//! API in that order, each type's jobs finished before the next type starts.
//!
//! For every object the run keeps a [`PushState`] in the store's sync state under
//! `push/<type>/<id>`: a hash of the JSON sent, the job it went in, and the API's verdict with
//! its errors and warnings. A later run sends only objects whose JSON changed or whose last
//! attempt did not succeed; a run that was killed finds its submitted jobs under `Pending` and
//! collects their results instead of sending again. Objects tombstoned in the store that were
//! pushed before are deleted (`bulk/delete`) after all upserts, activities first.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ss12000::{DeletedQuery, ListQuery, Store, StoreError, WriteBatch};

use super::api::{ApiError, BulkOp, JobStatus, LogEntry, ProvisioningClient};
use super::kind::ObjectType;
use super::map::{Mapped, map_object};
use super::pack::{MAX_REQUEST_BYTES, pack};

/// Objects read from the store per page.
const PAGE: usize = 1_000;

/// How a push run behaves.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Largest request body (default 200 KB).
    pub max_request_bytes: usize,
    /// Pause between job polls (the rate limit also applies).
    pub poll_interval: Duration,
    /// Longest wait for one job to complete.
    pub job_timeout: Duration,
    /// Send deletions for tombstoned objects.
    pub deletions: bool,
    /// Which types to push (always in [`ObjectType::ORDER`]).
    pub types: Vec<ObjectType>,
    /// Show progress bars on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            max_request_bytes: MAX_REQUEST_BYTES,
            poll_interval: Duration::from_secs(1),
            job_timeout: Duration::from_secs(30 * 60),
            deletions: true,
            types: ObjectType::ORDER.to_vec(),
            progress: false,
        }
    }
}

/// What the API (or this client) said about one object, kept in the store's sync state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushState {
    /// Hash (SHA-256, base64url) of the JSON sent; `""` for a deletion.
    pub hash: String,
    /// `Pending`, `Success`, `Warning`, `Error`, `TemporaryError`, `Invalid` (not sendable),
    /// `TooLarge` (over the request limit alone) or `DeleteError`.
    pub status: String,
    /// The job that carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LogEntry>,
    /// Warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<LogEntry>,
    /// When this state was written (Unix seconds).
    pub at: u64,
}

impl PushState {
    fn new(hash: &str, status: &str) -> PushState {
        PushState {
            hash: hash.to_owned(),
            status: status.to_owned(),
            job_id: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Whether the API accepted this exact JSON (nothing to send again).
    pub fn accepted(&self) -> bool {
        matches!(self.status.as_str(), "Success" | "Warning")
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What a run did with one type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeSummary {
    /// The type.
    pub object_type: Option<ObjectType>,
    /// Live objects in the store.
    pub live: u64,
    /// Already accepted with the same JSON: not sent.
    pub unchanged: u64,
    /// Sent in this run.
    pub sent: u64,
    /// Accepted (`Success`).
    pub succeeded: u64,
    /// Accepted with warnings.
    pub warnings: u64,
    /// Refused by the API (`Error`, `TemporaryError`); retried next run.
    pub failed: u64,
    /// Not sendable (a required field missing): never sent.
    pub invalid: u64,
    /// Larger than the request limit on its own: never sent.
    pub too_large: u64,
    /// Not for Skolverket (group or activity types it must not receive).
    pub skipped: u64,
    /// Results collected from jobs a previous run submitted.
    pub resumed: u64,
    /// Deletions the API confirmed.
    pub deleted: u64,
    /// Deletions the API refused; retried next run.
    pub delete_failed: u64,
    /// Bulk jobs submitted.
    pub jobs: u64,
}

/// What a whole run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// Per type, in push order.
    pub types: Vec<TypeSummary>,
}

impl PushReport {
    /// The summary of one type.
    pub fn get(&self, t: ObjectType) -> Option<&TypeSummary> {
        self.types.iter().find(|s| s.object_type == Some(t))
    }

    /// Whether any object was refused, invalid or too large (the run's exit status).
    pub fn has_failures(&self) -> bool {
        self.types
            .iter()
            .any(|s| s.failed + s.invalid + s.too_large + s.delete_failed > 0)
    }
}

/// Why a run stopped. Results stored before the error stay stored.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// A job did not complete in time.
    #[error("{object_type} job {job_id} did not complete within {timeout:?}")]
    JobTimeout {
        /// The type.
        object_type: ObjectType,
        /// The job.
        job_id: String,
        /// The configured limit.
        timeout: Duration,
    },
    /// A job the API accepted cannot be found any more.
    #[error("{object_type} job {job_id} completed but its status is not found (404)")]
    JobVanished {
        /// The type.
        object_type: ObjectType,
        /// The job.
        job_id: String,
    },
}

/// Pushes a store to the Provisioning API.
pub struct PushEngine {
    store: Store,
    api: ProvisioningClient,
    config: PushConfig,
}

impl std::fmt::Debug for PushEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEngine")
            .field("api", &self.api)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Candidate {
    id: String,
    json: String,
    hash: String,
}

impl PushEngine {
    /// An engine reading `store` and sending with `api`.
    pub fn new(store: Store, api: ProvisioningClient, config: PushConfig) -> PushEngine {
        PushEngine { store, api, config }
    }

    /// The API client (for its counters).
    pub fn api(&self) -> &ProvisioningClient {
        &self.api
    }

    /// Runs the push: upserts in [`ObjectType::ORDER`], then deletions in reverse order.
    pub async fn run(&self) -> Result<PushReport, PushError> {
        let types: Vec<ObjectType> = ObjectType::ORDER
            .into_iter()
            .filter(|t| self.config.types.contains(t))
            .collect();
        let mut summaries: BTreeMap<ObjectType, TypeSummary> = BTreeMap::new();
        for &t in &types {
            let summary = summaries.entry(t).or_insert_with(|| TypeSummary {
                object_type: Some(t),
                ..TypeSummary::default()
            });
            self.upsert_type(t, summary).await?;
        }
        if self.config.deletions {
            for &t in types.iter().rev() {
                if let Some(summary) = summaries.get_mut(&t) {
                    self.delete_type(t, summary).await?;
                }
            }
        }
        Ok(PushReport {
            types: summaries.into_values().collect(),
        })
    }

    async fn states(&self, t: ObjectType) -> Result<HashMap<String, PushState>, PushError> {
        let prefix = t.state_prefix();
        let mut states = HashMap::new();
        for (key, value) in self.store.states_with_prefix(&prefix).await? {
            let id = key[prefix.len()..].to_owned();
            match serde_json::from_value::<PushState>(value) {
                Ok(state) => {
                    states.insert(id, state);
                }
                Err(e) => {
                    // Unreadable state is treated as absent: the object is sent again.
                    tracing::warn!(key, error = %e, "ignoring unreadable push state");
                }
            }
        }
        Ok(states)
    }

    async fn upsert_type(&self, t: ObjectType, summary: &mut TypeSummary) -> Result<(), PushError> {
        let mut states = self.states(t).await?;
        summary.resumed += self.resume_pending(t, &states).await?;
        if summary.resumed > 0 {
            states = self.states(t).await?;
        }

        let mut candidates = Vec::new();
        let mut local = WriteBatch::new();
        let mut query = ListQuery {
            limit: PAGE,
            ..ListQuery::default()
        };
        loop {
            let page = self.store.list(&t.collection(), &query).await?;
            let Some(last) = page.last() else { break };
            query.after_id = Some(last.id().to_owned());
            let full = page.len() >= PAGE;
            for object in page {
                summary.live += 1;
                let id = object.id().to_owned();
                let source: Value = match serde_json::from_str(object.json()) {
                    Ok(v) => v,
                    Err(e) => {
                        summary.invalid += 1;
                        record_local(&mut local, t, &id, "", "Invalid", &states, e.to_string());
                        continue;
                    }
                };
                match map_object(t, &source) {
                    Err(e) => {
                        summary.invalid += 1;
                        let hash = hash(object.json());
                        record_local(&mut local, t, &id, &hash, "Invalid", &states, e.to_string());
                    }
                    Ok(Mapped::Skip(reason)) => {
                        summary.skipped += 1;
                        tracing::debug!(%t, id, reason, "not for Skolverket");
                    }
                    Ok(Mapped::Send(value)) => {
                        let json = value.to_string();
                        let hash = hash(&json);
                        match states.get(&id) {
                            Some(s) if s.hash == hash && s.accepted() => summary.unchanged += 1,
                            Some(s) if s.hash == hash && s.status == "TooLarge" => {
                                summary.too_large += 1
                            }
                            _ => candidates.push(Candidate { id, json, hash }),
                        }
                    }
                }
            }
            if !full {
                break;
            }
        }

        let items: Vec<String> = candidates.iter().map(|c| c.json.clone()).collect();
        let packed = pack(&items, self.config.max_request_bytes);
        for &i in &packed.too_large {
            let c = &candidates[i];
            summary.too_large += 1;
            record_local(
                &mut local,
                t,
                &c.id,
                &c.hash,
                "TooLarge",
                &states,
                format!(
                    "{} bytes alone exceed the {}-byte request limit",
                    c.json.len(),
                    self.config.max_request_bytes
                ),
            );
        }
        if !local.is_empty() {
            self.store.apply(local).await?;
        }

        let bar = self.progress_bar(t, candidates.len() - packed.too_large.len());
        for bulk in packed.bulks {
            let job = self.api.submit(t, BulkOp::Upsert, bulk.body).await?;
            summary.jobs += 1;
            summary.sent += bulk.items.len() as u64;
            let mut pending = WriteBatch::new();
            for &i in &bulk.items {
                let mut s = PushState::new(&candidates[i].hash, "Pending");
                s.job_id = Some(job.clone());
                pending.set_state(&t.state_key(&candidates[i].id), Some(s.to_value()));
            }
            self.store.apply(pending).await?;
            let status = self.wait_for_job(t, &job).await?;
            let sent: Vec<(&str, &str)> = bulk
                .items
                .iter()
                .map(|&i| (candidates[i].id.as_str(), candidates[i].hash.as_str()))
                .collect();
            self.record_results(t, &job, &sent, &status, summary)
                .await?;
            bar.inc(bulk.items.len() as u64);
        }
        bar.finish_and_clear();
        tracing::info!(%t, ?summary, "pushed");
        Ok(())
    }

    /// Collects results of jobs a previous (killed) run submitted; returns how many objects
    /// got a result. Jobs the API no longer knows are left for re-sending.
    async fn resume_pending(
        &self,
        t: ObjectType,
        states: &HashMap<String, PushState>,
    ) -> Result<u64, PushError> {
        let mut jobs: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (id, s) in states {
            if s.status == "Pending"
                && let Some(job) = &s.job_id
            {
                jobs.entry(job.as_str())
                    .or_default()
                    .push((id.as_str(), s.hash.as_str()));
            }
        }
        let mut resumed = 0;
        for (job, sent) in jobs {
            tracing::info!(%t, job, objects = sent.len(), "collecting a job from an earlier run");
            let status = match self.wait_for_job(t, job).await {
                Ok(status) => status,
                Err(PushError::JobVanished { .. }) => continue,
                Err(PushError::Api(ApiError::Status { status: 404, .. })) => continue,
                Err(e) => return Err(e),
            };
            let mut scratch = TypeSummary::default();
            self.record_results(t, job, &sent, &status, &mut scratch)
                .await?;
            resumed += sent.len() as u64;
        }
        Ok(resumed)
    }

    async fn wait_for_job(&self, t: ObjectType, job: &str) -> Result<JobStatus, PushError> {
        let started = tokio::time::Instant::now();
        let mut use_is_completed = true;
        loop {
            if use_is_completed {
                match self.api.is_completed(t, job).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    // An API without `isCompleted` (before 1.3.2): poll the status instead.
                    Err(ApiError::Status { status: 404, .. }) => use_is_completed = false,
                    Err(e) => return Err(e.into()),
                }
            }
            if !use_is_completed {
                match self.api.job_status(t, job).await? {
                    Some(status) if !status.any_pending() => return Ok(status),
                    Some(_) => {}
                    None => {
                        return Err(PushError::JobVanished {
                            object_type: t,
                            job_id: job.to_owned(),
                        });
                    }
                }
            }
            if started.elapsed() > self.config.job_timeout {
                return Err(PushError::JobTimeout {
                    object_type: t,
                    job_id: job.to_owned(),
                    timeout: self.config.job_timeout,
                });
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
        self.api
            .job_status(t, job)
            .await?
            .ok_or_else(|| PushError::JobVanished {
                object_type: t,
                job_id: job.to_owned(),
            })
    }

    /// Stores the job's verdict for each object sent in it (one transaction).
    async fn record_results(
        &self,
        t: ObjectType,
        job: &str,
        sent: &[(&str, &str)],
        status: &JobStatus,
        summary: &mut TypeSummary,
    ) -> Result<(), PushError> {
        let by_id = status.by_id();
        let mut batch = WriteBatch::new();
        for &(id, hash) in sent {
            let mut state = PushState::new(hash, "Error");
            state.job_id = Some(job.to_owned());
            match by_id.get(id) {
                Some(r) => {
                    state.status = r.status.clone();
                    state.errors = r.errors.clone();
                    state.warnings = r.warnings.clone();
                }
                None => state.errors.push(LogEntry::local(
                    "the job reported no result for this object",
                )),
            }
            match state.status.as_str() {
                "Success" => summary.succeeded += 1,
                "Warning" => summary.warnings += 1,
                _ => {
                    summary.failed += 1;
                    tracing::warn!(%t, id, status = state.status, errors = ?state.errors, "refused by the Provisioning API");
                }
            }
            batch.set_state(&t.state_key(id), Some(state.to_value()));
        }
        self.store.apply(batch).await?;
        Ok(())
    }

    async fn delete_type(&self, t: ObjectType, summary: &mut TypeSummary) -> Result<(), PushError> {
        let states = self.states(t).await?;
        if states.is_empty() {
            return Ok(());
        }
        let mut to_delete = Vec::new();
        let mut local = WriteBatch::new();
        let mut query = DeletedQuery {
            collections: vec![t.collection()],
            limit: PAGE,
            ..DeletedQuery::default()
        };
        loop {
            let page = self.store.deleted(&query).await?;
            let Some(last) = page.last() else { break };
            query.after_key = Some((last.deleted_at, last.collection.clone(), last.id.clone()));
            let full = page.len() >= PAGE;
            for tomb in page {
                let Some(state) = states.get(&tomb.id) else {
                    continue;
                };
                // A live object with the same id came back: nothing to delete.
                if self.store.get(&t.collection(), &tomb.id).await?.is_some() {
                    continue;
                }
                match state.status.as_str() {
                    // Never reached the API: forget it locally.
                    "Invalid" | "TooLarge" => {
                        local.set_state(&t.state_key(&tomb.id), None);
                    }
                    _ => to_delete.push(tomb.id),
                }
            }
            if !full {
                break;
            }
        }
        if !local.is_empty() {
            self.store.apply(local).await?;
        }
        let items: Vec<String> = to_delete
            .iter()
            .map(|id| Value::String(id.clone()).to_string())
            .collect();
        let packed = pack(&items, self.config.max_request_bytes);
        for bulk in packed.bulks {
            let job = self.api.submit(t, BulkOp::Delete, bulk.body).await?;
            summary.jobs += 1;
            let status = self.wait_for_job(t, &job).await?;
            let by_id = status.by_id();
            let mut batch = WriteBatch::new();
            for &i in &bulk.items {
                let id = &to_delete[i];
                match by_id.get(id.as_str()) {
                    Some(r) if r.status == "Success" || r.status_code == Some(404) => {
                        summary.deleted += 1;
                        batch.set_state(&t.state_key(id), None);
                    }
                    other => {
                        summary.delete_failed += 1;
                        let mut state = PushState::new("", "DeleteError");
                        state.job_id = Some(job.clone());
                        match other {
                            Some(r) => state.errors = r.errors.clone(),
                            None => state.errors.push(LogEntry::local(
                                "the job reported no result for this object",
                            )),
                        }
                        batch.set_state(&t.state_key(id), Some(state.to_value()));
                    }
                }
            }
            self.store.apply(batch).await?;
        }
        Ok(())
    }

    fn progress_bar(&self, t: ObjectType, len: usize) -> ProgressBar {
        if !self.config.progress || len == 0 {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(t.path());
        bar
    }
}

/// Records a local verdict (never sent), unless the same verdict for the same JSON is stored.
fn record_local(
    batch: &mut WriteBatch,
    t: ObjectType,
    id: &str,
    hash: &str,
    status: &str,
    states: &HashMap<String, PushState>,
    message: String,
) {
    tracing::warn!(%t, id, status, message, "not sent");
    if states
        .get(id)
        .is_some_and(|s| s.hash == hash && s.status == status)
    {
        return;
    }
    let mut state = PushState::new(hash, status);
    state.errors.push(LogEntry::local(message));
    batch.set_state(&t.state_key(id), Some(state.to_value()));
}

/// SHA-256 of `json`, base64url without padding: what a push remembers of the JSON it sent
/// (also used by the EGIL push).
pub(crate) fn hash(json: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, json.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}
