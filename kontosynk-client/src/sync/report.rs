//! What a sync did, per collection, as a table for people or JSON for machines, and the
//! optional report to the server (`POST /statistics`, `POST /log`).

use serde::Serialize;
use ss12000::{Collection, CollectionSummary, Timestamp};

use super::error::SyncError;
use super::http::{endpoint, excerpt};
use crate::client::Sender;

/// How a collection was listed in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Everything (first sync, or `--full`).
    Full,
    /// Objects modified after the watermark.
    Incremental,
    /// Continued a pass an earlier run left unfinished.
    Resumed,
}

/// What one run did to one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionReport {
    /// The collection (`persons`).
    #[serde(serialize_with = "collection_path")]
    pub collection: Collection,
    /// How it was listed.
    pub mode: Mode,
    /// Pages fetched and applied.
    pub pages: u64,
    /// Objects that were not in the store (or came back from a tombstone).
    pub new: u64,
    /// Objects whose JSON changed.
    pub updated: u64,
    /// Objects turned into tombstones (from `deletedEntities`).
    pub deleted: u64,
    /// Objects received again with the JSON already stored.
    pub unchanged: u64,
    /// The watermark the next incremental pass will use.
    pub watermark: Option<Timestamp>,
}

impl CollectionReport {
    pub(crate) fn new(collection: Collection, mode: Mode) -> CollectionReport {
        CollectionReport {
            collection,
            mode,
            pages: 0,
            new: 0,
            updated: 0,
            deleted: 0,
            unchanged: 0,
            watermark: None,
        }
    }

    pub(crate) fn add(&mut self, summary: Option<&CollectionSummary>) {
        if let Some(s) = summary {
            self.new += s.inserted;
            self.updated += s.updated;
            self.deleted += s.deleted;
            self.unchanged += s.unchanged;
        }
    }
}

/// What a whole run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// The server's base URL.
    pub server: String,
    /// Per collection, in sync order.
    pub collections: Vec<CollectionReport>,
    /// `deletedEntities` pages fetched (0 when deletions are off).
    pub deletion_pages: u64,
    /// Names in `deletedEntities` that are no collection this client syncs.
    pub ignored_deletions: Vec<String>,
}

impl SyncReport {
    /// The report of one collection.
    pub fn collection(&self, collection: &Collection) -> Option<&CollectionReport> {
        self.collections
            .iter()
            .find(|c| &c.collection == collection)
    }

    /// A plain-text table: one line per collection and a total.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<16} {:<12} {:>9} {:>9} {:>9} {:>9} {:>7}\n",
            "collection", "mode", "new", "updated", "deleted", "unchanged", "pages"
        );
        let mut total = CollectionReport::new(Collection::Other("total".into()), Mode::Full);
        for c in &self.collections {
            out.push_str(&format!(
                "{:<16} {:<12} {:>9} {:>9} {:>9} {:>9} {:>7}\n",
                c.collection.path(),
                format!("{:?}", c.mode).to_lowercase(),
                c.new,
                c.updated,
                c.deleted,
                c.unchanged,
                c.pages
            ));
            total.new += c.new;
            total.updated += c.updated;
            total.deleted += c.deleted;
            total.unchanged += c.unchanged;
            total.pages += c.pages;
        }
        out.push_str(&format!(
            "{:<16} {:<12} {:>9} {:>9} {:>9} {:>9} {:>7}\n",
            "total", "", total.new, total.updated, total.deleted, total.unchanged, total.pages
        ));
        out
    }
}

fn collection_path<S: serde::Serializer>(c: &Collection, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.path())
}

/// The body of one `POST /statistics` (StatisticsEntry of the reference OpenAPI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatisticsEntry {
    /// Entity type (`Person`).
    pub resource_type: String,
    /// Objects created.
    pub new_count: u64,
    /// Objects updated.
    pub updated_count: u64,
    /// Objects deleted.
    pub deleted_count: u64,
    /// The listing URL.
    pub resource_url: String,
    /// When the sync finished (the spec's spelling).
    pub time_of_occurance: Timestamp,
}

/// The body of one `POST /log` (LogEntry of the reference OpenAPI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// The message.
    pub message: String,
    /// This client's identifier for the kind of message.
    pub message_type: String,
    /// `Info`, `Warning` or `Error`.
    pub severity_level: String,
    /// When it happened (the spec's spelling).
    pub time_of_occurance: Timestamp,
}

/// The statistics entries of a report, one per collection the reference API names in its
/// `resourceType` enum (organisations, persons, groups, duties, activities); extra collections
/// have no value there, and a server that follows the spec refuses them.
pub fn statistics(report: &SyncReport, at: Timestamp) -> Vec<StatisticsEntry> {
    let base = report.server.trim_end_matches('/');
    report
        .collections
        .iter()
        // The reference API's `resourceType` (EndPointsEnum) names only these five; a server
        // that follows it refuses any other.
        .filter(|c| Collection::SYNC_ORDER.contains(&c.collection))
        .map(|c| StatisticsEntry {
            resource_type: c.collection.entity_type(),
            new_count: c.new,
            updated_count: c.updated,
            deleted_count: c.deleted,
            resource_url: format!("{base}/{}", c.collection.path()),
            time_of_occurance: at,
        })
        .collect()
}

/// The log entry summarising a run: `Info` on success, `Error` with the message on failure.
pub fn log_entry(outcome: Result<&SyncReport, &SyncError>, at: Timestamp) -> LogEntry {
    let (severity, message) = match outcome {
        Ok(report) => {
            let parts: Vec<String> = report
                .collections
                .iter()
                .map(|c| {
                    format!(
                        "{} {}: {} new, {} updated, {} deleted, {} unchanged",
                        c.collection.path(),
                        format!("{:?}", c.mode).to_lowercase(),
                        c.new,
                        c.updated,
                        c.deleted,
                        c.unchanged
                    )
                })
                .collect();
            ("Info", format!("sync completed: {}", parts.join("; ")))
        }
        Err(error) => ("Error", format!("sync failed: {error}")),
    };
    LogEntry {
        message,
        message_type: "kontosynk-sync".to_owned(),
        severity_level: severity.to_owned(),
        time_of_occurance: at,
    }
}

/// Posts the statistics of a successful run (one entry per collection) and one log entry to
/// the server. Stops at the first refused request.
pub async fn report_to_server(
    sender: &Sender,
    base: &reqwest::Url,
    outcome: Result<&SyncReport, &SyncError>,
) -> Result<(), SyncError> {
    let at = Timestamp::now();
    if let Ok(report) = outcome {
        let url = endpoint(base, "statistics")?;
        for entry in statistics(report, at) {
            post(sender, &url, &entry).await?;
        }
    }
    let url = endpoint(base, "log")?;
    post(sender, &url, &log_entry(outcome, at)).await
}

async fn post<T: Serialize>(
    sender: &Sender,
    url: &reqwest::Url,
    body: &T,
) -> Result<(), SyncError> {
    let response = sender
        .send_builder(sender.http().post(url.clone()).json(body))
        .await?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(SyncError::Status {
        method: "POST",
        url: url.to_string(),
        status: status.as_u16(),
        body: excerpt(&text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SyncReport {
        let mut persons = CollectionReport::new(Collection::Persons, Mode::Incremental);
        persons.add(Some(&CollectionSummary {
            inserted: 2,
            updated: 3,
            unchanged: 4,
            deleted: 1,
            modified_set: 0,
        }));
        persons.pages = 2;
        let groups = CollectionReport::new(Collection::Groups, Mode::Resumed);
        SyncReport {
            server: "https://s.example/v2.0/".into(),
            collections: vec![persons, groups],
            deletion_pages: 1,
            ignored_deletions: Vec::new(),
        }
    }

    #[test]
    fn table_has_one_line_per_collection_and_a_total() {
        let table = sample().table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let persons: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(persons, ["persons", "incremental", "2", "3", "1", "4", "2"]);
        assert!(lines[2].contains("resumed"), "{table}");
        let total: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(total, ["total", "2", "3", "1", "4", "2"]);
    }

    #[test]
    fn json_names_collections_by_path() {
        let value = serde_json::to_value(sample()).unwrap();
        assert_eq!(value["collections"][0]["collection"], "persons");
        assert_eq!(value["collections"][0]["mode"], "incremental");
        assert_eq!(value["collections"][0]["deleted"], 1);
    }

    #[test]
    fn statistics_and_log_follow_the_reference_shapes() {
        let at = Timestamp::from_unix_micros(0);
        let entries = statistics(&sample(), at);
        let value = serde_json::to_value(&entries[0]).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"resourceType": "Person", "newCount": 2, "updatedCount": 3,
                "deletedCount": 1, "resourceUrl": "https://s.example/v2.0/persons",
                "timeOfOccurance": "1970-01-01T00:00:00Z"})
        );
        let ok = log_entry(Ok(&sample()), at);
        assert_eq!(ok.severity_level, "Info");
        assert!(
            ok.message
                .contains("persons incremental: 2 new, 3 updated, 1 deleted, 4 unchanged")
        );
        let error = SyncError::EmptyPages {
            url: "https://s/persons".into(),
            count: 16,
        };
        let failed = log_entry(Err(&error), at);
        assert_eq!(failed.severity_level, "Error");
        assert!(
            failed
                .message
                .starts_with("sync failed: GET https://s/persons")
        );
    }
}
