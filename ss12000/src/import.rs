//! Loading objects from JSON files into a [`crate::Store`] (a school loads its data) and
//! writing them back out.
//!
//! A file is either
//! - an object keyed by collection name, `{"organisations": [...], "persons": [...]}` (what
//!   [`export`] writes), or
//! - `{"data": [...]}` (an SS 12000 list response) or a bare array `[...]`, the collection
//!   taken from the file name (`persons.json`, `persons.page-2.json`).
//!
//! Every object of a file is checked before anything is written, so a bad object, or an id
//! that appears twice in one collection of the file (which copy should win would be a guess),
//! leaves the store untouched (unless [`ImportOptions::keep_going`] skips it, and every copy
//! of a repeated id); the good objects are then
//! applied in transactions of [`ImportOptions::batch_size`]. Objects are kept as the exact text
//! the file holds, and compared by JSON value: the same objects with other whitespace or
//! member order are "unchanged". An object whose content changed while its `meta.modified`
//! did not move gets the import time as `meta.modified` (counted as `modified_set`), so a
//! supplier's incremental sync picks the change up instead of silently missing it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use crate::collection::Collection;
use crate::object::Object;
use crate::store::{
    ApplySummary, CollectionSummary, ListQuery, MAX_PAGE, Store, StoreError, WriteBatch,
};
use crate::timestamp::Timestamp;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Skip bad objects (reporting them) instead of refusing the whole file.
    pub keep_going: bool,
    /// Objects per transaction (at least 1).
    pub batch_size: usize,
    /// Treat each collection in a file as complete: live objects of that collection missing
    /// from the file are deleted (tombstoned). Never done for a collection with rejected objects.
    pub replace: bool,
    /// Refuse objects whose `id` is not a UUID (default on): SS 12000 ids are UUIDs and
    /// Skolverket's reference ingest refuses others, so a store fed with them would publish
    /// what peers reject.
    pub require_uuid_ids: bool,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            keep_going: false,
            batch_size: 1_000,
            replace: false,
            require_uuid_ids: true,
        }
    }
}

/// Progress of an import, reported after every transaction.
#[derive(Debug, Clone)]
pub struct ImportProgress<'a> {
    /// The file being imported.
    pub path: &'a Path,
    /// The collection being written.
    pub collection: &'a Collection,
    /// Objects of this collection in this file written so far.
    pub done: usize,
    /// Objects of this collection in this file.
    pub total: usize,
}

/// An object an import skipped ([`ImportOptions::keep_going`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// The collection it was listed under.
    pub collection: Collection,
    /// Its position in that collection's array (from 0).
    pub index: usize,
    /// Why it was refused.
    pub reason: String,
}

/// What an import did to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Counts per collection.
    pub collections: BTreeMap<Collection, CollectionSummary>,
    /// Objects skipped.
    pub rejected: Vec<Rejected>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Per file, in the order given.
    pub files: Vec<FileReport>,
    /// Counts per collection over all files.
    pub totals: BTreeMap<Collection, CollectionSummary>,
    /// References from imported objects to objects the store does not hold after the whole
    /// import (one entry per missing object, at its first referring place): reported, not
    /// refused.
    pub dangling: Vec<Dangling>,
}

/// A reference to an object the store does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dangling {
    /// The file of the first object referring to it.
    pub path: PathBuf,
    /// That object's collection.
    pub collection: Collection,
    /// Its position in that collection's array (from 0).
    pub index: usize,
    /// The member holding the reference (`groupMemberships[3].person`).
    pub member: String,
    /// The collection of the missing object.
    pub to: Collection,
    /// The missing object's id.
    pub id: String,
    /// How many references in the import name it.
    pub references: usize,
}

impl ImportSummary {
    /// Every skipped object of every file.
    pub fn rejected(&self) -> impl Iterator<Item = &Rejected> {
        self.files.iter().flat_map(|f| f.rejected.iter())
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON of an accepted shape.
    #[error("{}: {message}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column when known.
        message: String,
    },
    /// An object is bad; nothing of the file was written.
    #[error(
        "{}: {collection}[{index}]: {reason} (nothing of this file was imported; --keep-going skips bad objects)",
        path.display()
    )]
    BadObject {
        /// The file.
        path: PathBuf,
        /// The collection it was listed under.
        collection: Collection,
        /// Its position in that collection's array (from 0).
        index: usize,
        /// Why it was refused.
        reason: String,
    },
    /// Two objects of one collection in one file have the same id: which of them should win
    /// is a guess, so the file is refused; nothing of it was written.
    #[error(
        "{}: {collection}[{index}] has the id `{id}` of {collection}[{first}]; an id may appear \
         once per collection in a file, so nothing of this file was imported (merge or remove \
         the copies; --keep-going skips every copy)",
        path.display()
    )]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The collection.
        collection: Collection,
        /// The repeated id.
        id: String,
        /// Position of its first copy in the collection's array (from 0).
        first: usize,
        /// Position of the later copy.
        index: usize,
    },
    /// The store failed; batches of this file written before the failure stay written.
    #[error("{}: {source}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// The store's error.
        source: StoreError,
    },
}

/// One collection's objects in a file, as unparsed JSON slices of the file's text.
struct Section<'a> {
    collection: Collection,
    objects: Vec<&'a RawValue>,
}

/// Top-level members of a JSON object, in file order, values unparsed.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

fn json_error(e: &serde_json::Error) -> String {
    if e.line() > 0 {
        format!("{} (line {}, column {})", e, e.line(), e.column())
    } else {
        e.to_string()
    }
}

/// The collection a file name implies: the name up to its first dot (`persons.json`,
/// `placements.2.json`). SS 12000 collection names are plural, so only names ending in `s`
/// count: `export.json` or `data.json` name no collection.
pub fn collection_from_file_name(path: &Path) -> Option<Collection> {
    let name = path.file_name()?.to_str()?;
    let stem = name.split('.').next()?;
    if !stem.ends_with('s') {
        return None;
    }
    Collection::from_path(stem).ok()
}

/// Splits a file's text into sections (shapes as in the module documentation).
fn sections<'a>(path: &Path, text: &'a str) -> Result<Vec<Section<'a>>, ImportError> {
    let shape = |message: String| ImportError::Shape {
        path: path.to_owned(),
        message,
    };
    let array = |raw: &'a str, what: &str| -> Result<Vec<&'a RawValue>, ImportError> {
        serde_json::from_str::<Vec<&'a RawValue>>(raw).map_err(|e| {
            shape(format!(
                "{what} is not an array of objects: {}",
                json_error(&e)
            ))
        })
    };
    let from_name = || {
        collection_from_file_name(path).ok_or_else(|| {
            shape(
                "cannot tell the collection: name the file after it (persons.json) or write \
                 {\"persons\": [...]}"
                    .to_owned(),
            )
        })
    };
    let trimmed = text.trim_start_matches('\u{feff}');
    match trimmed.trim_start().as_bytes().first() {
        Some(b'[') => Ok(vec![Section {
            collection: from_name()?,
            objects: array(trimmed, "the file")?,
        }]),
        Some(b'{') => {
            let Members(members) = serde_json::from_str(trimmed)
                .map_err(|e| shape(format!("not valid JSON: {}", json_error(&e))))?;
            if let Some((_, data)) = members.iter().find(|(k, _)| k == "data") {
                if let Some((other, _)) = members
                    .iter()
                    .find(|(k, _)| k != "data" && k != "pageToken")
                {
                    return Err(shape(format!(
                        "a {{\"data\": [...]}} file has an unexpected member `{other}`"
                    )));
                }
                return Ok(vec![Section {
                    collection: from_name()?,
                    objects: array(data.get(), "`data`")?,
                }]);
            }
            let mut seen = HashSet::new();
            let mut out = Vec::with_capacity(members.len());
            for (name, raw) in &members {
                let collection = Collection::from_path(name).map_err(|e| shape(e.to_string()))?;
                if !seen.insert(collection.clone()) {
                    return Err(shape(format!("collection `{name}` appears twice")));
                }
                out.push(Section {
                    collection,
                    objects: array(raw.get(), &format!("`{name}`"))?,
                });
            }
            Ok(out)
        }
        Some(_) => Err(shape(
            "not valid JSON: expected an object keyed by collection, {\"data\": [...]} or an array"
                .to_owned(),
        )),
        None => Err(shape("the file is empty".to_owned())),
    }
}

/// Imports files in order (see the module documentation), calling `progress` after every
/// transaction. Stops at the first file that fails; files before it stay imported.
pub async fn import_files(
    store: &Store,
    paths: &[PathBuf],
    options: &ImportOptions,
    mut progress: impl FnMut(&ImportProgress<'_>),
) -> Result<ImportSummary, ImportError> {
    let mut summary = ImportSummary::default();
    let mut references = References::default();
    for path in paths {
        let report = import_file(store, path, options, &mut references, &mut progress).await?;
        for (collection, counts) in &report.collections {
            let total = summary.totals.entry(collection.clone()).or_default();
            total.inserted += counts.inserted;
            total.updated += counts.updated;
            total.unchanged += counts.unchanged;
            total.deleted += counts.deleted;
            total.modified_set += counts.modified_set;
        }
        summary.files.push(report);
    }
    summary.dangling = references
        .dangling(store)
        .await
        .map_err(|source| ImportError::Store {
            path: paths.last().cloned().unwrap_or_default(),
            source,
        })?;
    Ok(summary)
}

/// Every distinct object the imported objects refer to, with its first referring place.
#[derive(Default)]
struct References {
    seen: BTreeMap<(Collection, String), Dangling>,
}

impl References {
    fn add(&mut self, path: &Path, collection: &Collection, index: usize, object: &Object) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(object.json()) else {
            return;
        };
        for reference in crate::references::references_of(collection, &value) {
            self.seen
                .entry((reference.to.clone(), reference.id.clone()))
                .and_modify(|d| d.references += 1)
                .or_insert_with(|| Dangling {
                    path: path.to_owned(),
                    collection: collection.clone(),
                    index,
                    member: reference.member,
                    to: reference.to,
                    id: reference.id,
                    references: 1,
                });
        }
    }

    /// The referenced objects the store does not hold.
    async fn dangling(self, store: &Store) -> Result<Vec<Dangling>, StoreError> {
        let mut by_collection: BTreeMap<Collection, Vec<String>> = BTreeMap::new();
        for (collection, id) in self.seen.keys() {
            by_collection
                .entry(collection.clone())
                .or_default()
                .push(id.clone());
        }
        let mut held = HashSet::new();
        for (collection, ids) in &by_collection {
            for chunk in ids.chunks(MAX_PAGE) {
                for object in store.lookup(collection, chunk).await? {
                    held.insert((collection.clone(), object.id().to_owned()));
                }
            }
        }
        Ok(self
            .seen
            .into_iter()
            .filter(|(key, _)| !held.contains(key))
            .map(|(_, dangling)| dangling)
            .collect())
    }
}

async fn import_file(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
    references: &mut References,
    progress: &mut impl FnMut(&ImportProgress<'_>),
) -> Result<FileReport, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let sections = sections(path, &text)?;
    let mut report = FileReport {
        path: path.to_owned(),
        ..FileReport::default()
    };
    // First pass: check every object, so a bad one (or a repeated id) stops the file before
    // any write.
    let bad = check_objects(path, &sections, options, &mut report.rejected)?;
    let imported_at = Timestamp::now();
    let store_error = |source| ImportError::Store {
        path: path.to_owned(),
        source,
    };
    let batch_size = options.batch_size.max(1);
    for (section, bad_here) in sections.iter().zip(&bad) {
        let mut applied = ApplySummary::default();
        applied
            .collections
            .entry(section.collection.clone())
            .or_default();
        let total = section.objects.len();
        let mut done = 0;
        let mut ids = HashSet::new();
        for (chunk_index, chunk) in section.objects.chunks(batch_size).enumerate() {
            let mut batch = WriteBatch::new();
            for (offset, raw) in chunk.iter().enumerate() {
                if bad_here.contains(&(chunk_index * batch_size + offset)) {
                    continue;
                }
                // Checked in the first pass; a failure here cannot happen, but is not a panic.
                let object = Object::from_json(raw.get()).map_err(|e| ImportError::BadObject {
                    path: path.to_owned(),
                    collection: section.collection.clone(),
                    index: chunk_index * batch_size + offset,
                    reason: e.to_string(),
                })?;
                if options.replace {
                    ids.insert(object.id().to_owned());
                }
                references.add(
                    path,
                    &section.collection,
                    chunk_index * batch_size + offset,
                    &object,
                );
                // A changed object whose file did not move `meta.modified` gets the import
                // time, so suppliers that sync incrementally see the change.
                batch.upsert_touching_modified(section.collection.clone(), object, imported_at);
            }
            applied.merge(&store.apply(batch).await.map_err(store_error)?);
            done += chunk.len();
            progress(&ImportProgress {
                path,
                collection: &section.collection,
                done,
                total,
            });
        }
        if options.replace && bad_here.is_empty() {
            let deleted = delete_missing(store, &section.collection, &ids, batch_size)
                .await
                .map_err(store_error)?;
            applied.merge(&deleted);
        }
        let counts = report
            .collections
            .entry(section.collection.clone())
            .or_default();
        let add = applied.collections[&section.collection];
        counts.inserted += add.inserted;
        counts.updated += add.updated;
        counts.unchanged += add.unchanged;
        counts.deleted += add.deleted;
        counts.modified_set += add.modified_set;
    }
    tracing::info!(file = %path.display(), rejected = report.rejected.len(), "imported");
    Ok(report)
}

/// Checks every object of a file's sections: a bad object or an id repeated within a
/// collection is an error, or (with `keep_going`) rejected and listed. Returns, per section,
/// the positions to skip.
fn check_objects(
    path: &Path,
    sections: &[Section<'_>],
    options: &ImportOptions,
    rejected: &mut Vec<Rejected>,
) -> Result<Vec<HashSet<usize>>, ImportError> {
    let mut bad: Vec<HashSet<usize>> = vec![HashSet::new(); sections.len()];
    // (collection, id) → (section, index) of its first copy.
    let mut seen: HashMap<(Collection, String), (usize, usize)> = HashMap::new();
    let mut reject = |bad: &mut Vec<HashSet<usize>>, at: (usize, usize), reason: String| {
        if bad[at.0].insert(at.1) {
            rejected.push(Rejected {
                path: path.to_owned(),
                collection: sections[at.0].collection.clone(),
                index: at.1,
                reason,
            });
        }
    };
    for (number, section) in sections.iter().enumerate() {
        for (index, raw) in section.objects.iter().enumerate() {
            let parsed = Object::from_json(raw.get()).map_err(|e| e.to_string()).and_then(|o| {
                match options.require_uuid_ids && uuid::Uuid::parse_str(o.id()).is_err() {
                    true => Err(format!(
                        "id `{}` is not a UUID: SS 12000 ids are UUIDs and Skolverket's reference \
                         ingest refuses others (fix the export, or import with --allow-non-uuid-ids)",
                        o.id()
                    )),
                    false => Ok(o),
                }
            });
            let id = match parsed {
                Ok(object) => object.id().to_owned(),
                Err(reason) if !options.keep_going => {
                    return Err(ImportError::BadObject {
                        path: path.to_owned(),
                        collection: section.collection.clone(),
                        index,
                        reason,
                    });
                }
                Err(reason) => {
                    reject(&mut bad, (number, index), reason);
                    continue;
                }
            };
            let key = (section.collection.clone(), id);
            let Some(&(first_section, first)) = seen.get(&key) else {
                seen.insert(key, (number, index));
                continue;
            };
            let (collection, id) = key;
            if !options.keep_going {
                return Err(ImportError::DuplicateId {
                    path: path.to_owned(),
                    collection,
                    id,
                    first,
                    index,
                });
            }
            let reason = |other: usize| {
                format!("the id `{id}` is also at {collection}[{other}]; every copy is skipped")
            };
            reject(&mut bad, (first_section, first), reason(index));
            reject(&mut bad, (number, index), reason(first));
        }
    }
    Ok(bad)
}

/// Deletes the live objects of a collection whose ids are not in `keep`.
async fn delete_missing(
    store: &Store,
    collection: &Collection,
    keep: &HashSet<String>,
    batch_size: usize,
) -> Result<ApplySummary, StoreError> {
    let mut missing = Vec::new();
    let mut query = ListQuery {
        limit: MAX_PAGE,
        ..ListQuery::default()
    };
    loop {
        let page = store.list(collection, &query).await?;
        let Some(last) = page.last() else { break };
        query.after_id = Some(last.id().to_owned());
        missing.extend(
            page.iter()
                .filter(|o| !keep.contains(o.id()))
                .map(|o| o.id().to_owned()),
        );
    }
    let now = Timestamp::now();
    let mut summary = ApplySummary::default();
    for chunk in missing.chunks(batch_size) {
        let mut batch = WriteBatch::new();
        for id in chunk {
            batch.delete(collection.clone(), id, now);
        }
        summary.merge(&store.apply(batch).await?);
    }
    Ok(summary)
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes live objects as one JSON object keyed by collection (the shape [`import_files`]
/// reads), each object exactly as stored, one per line. `collections` empty means every
/// collection of the store, Skolverket's order first. Returns the count per collection.
pub async fn export<W: std::io::Write>(
    store: &Store,
    collections: &[Collection],
    out: &mut W,
) -> Result<BTreeMap<Collection, u64>, ExportError> {
    let chosen = if collections.is_empty() {
        let mut all = store.collections().await?;
        all.sort_by_key(|c| {
            (
                Collection::SYNC_ORDER
                    .iter()
                    .position(|s| s == c)
                    .unwrap_or(usize::MAX),
                c.path().to_owned(),
            )
        });
        all
    } else {
        collections.to_vec()
    };
    let mut counts = BTreeMap::new();
    out.write_all(b"{")?;
    for (n, collection) in chosen.iter().enumerate() {
        let name = serde_json::to_string(collection.path()).unwrap_or_default();
        write!(out, "{}\n{name}: [", if n == 0 { "" } else { "," })?;
        let mut query = ListQuery {
            limit: MAX_PAGE,
            ..ListQuery::default()
        };
        let mut count = 0u64;
        loop {
            let page = store.list(collection, &query).await?;
            let Some(last) = page.last() else { break };
            query.after_id = Some(last.id().to_owned());
            for object in &page {
                write!(
                    out,
                    "{}\n{}",
                    if count == 0 { "" } else { "," },
                    object.json()
                )?;
                count += 1;
            }
        }
        out.write_all(if count == 0 { b"]" } else { b"\n]" })?;
        counts.insert(collection.clone(), count);
    }
    out.write_all(b"\n}\n")?;
    out.flush()?;
    Ok(counts)
}
