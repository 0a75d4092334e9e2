//! What a push will send: the store's objects as EGIL resources, compared with the hash of what
//! this server last accepted for each (the store's sync state under
//! `egil/<server entity>/<Resource>/<id>`), and the mass-change guard over the result.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use ss12000::egil::from_ss12000::{Mapped, from_ss12000, is_student};
use ss12000::{Collection, EgilResource, ListQuery, Store, StoreError};

use crate::push::engine::hash;

/// Objects read from the store per page.
const PAGE: usize = 1_000;

/// The guard never trips for fewer changed objects of a type than this (a small school
/// changing a third of its three school units is not a mass change).
pub const GUARD_MIN_OBJECTS: u64 = 10;

/// The sync-state prefix of `server`'s objects of `resource`.
pub fn state_prefix(server: &str, resource: EgilResource) -> String {
    format!("egil/{server}/{}/", resource.path())
}

/// How an object is sent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Never accepted by this server: POST.
    Create,
    /// Accepted before with other content (or unknown content after `--rebuild`): PUT.
    Update,
}

/// One object to send.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its id (`externalId`).
    pub id: String,
    /// The EGIL JSON.
    pub json: String,
    /// Its hash, stored once the server accepts it.
    pub hash: String,
    /// POST or PUT first.
    pub op: Op,
}

/// The plan for one resource.
#[derive(Debug, Clone, Default)]
pub struct ResourcePlan {
    /// Objects to send, in order (students before staff for Users).
    pub send: Vec<Item>,
    /// Ids to delete (accepted before, gone from the store).
    pub delete: Vec<String>,
    /// Objects in the store of this resource.
    pub live: u64,
    /// Accepted before with the same content: not sent.
    pub unchanged: u64,
    /// Objects this server holds according to the state (or its lists, with `--rebuild`).
    pub previous: u64,
    /// Objects that cannot be mapped (reported, not sent).
    pub invalid: Vec<String>,
}

/// A type over the guard's share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardTrip {
    /// The resource.
    pub resource: &'static str,
    /// Objects the server holds.
    pub previous: u64,
    /// Would be changed.
    pub changed: u64,
    /// Would be deleted.
    pub deleted: u64,
    /// The allowed share.
    pub max_share: f64,
}

impl std::fmt::Display for GuardTrip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} of {} would change and {} be deleted (more than {:.0} %)",
            self.resource,
            self.changed,
            self.previous,
            self.deleted,
            self.max_share * 100.0
        )
    }
}

/// The whole plan, per resource in send order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Per resource.
    pub resources: BTreeMap<EgilResource, ResourcePlan>,
}

/// What the server is known to hold: id → hash of the accepted JSON (`""`: unknown content).
pub type Known = HashMap<EgilResource, HashMap<String, String>>;

/// Reads the state of `server` from the store.
pub async fn known_from_state(store: &Store, server: &str) -> Result<Known, StoreError> {
    let mut known = Known::new();
    for resource in EgilResource::SEND_ORDER {
        let prefix = state_prefix(server, resource);
        let mut ids = HashMap::new();
        for (key, value) in store.states_with_prefix(&prefix).await? {
            let hash = value.as_str().unwrap_or_default().to_owned();
            ids.insert(key[prefix.len()..].to_owned(), hash);
        }
        known.insert(resource, ids);
    }
    Ok(known)
}

impl Plan {
    /// Maps the store's objects and compares them with `known`.
    pub async fn build(store: &Store, known: &Known) -> Result<Plan, StoreError> {
        let mut plan = Plan::default();
        let mut seen: HashMap<EgilResource, HashSet<String>> = HashMap::new();
        let mut staff: Vec<Item> = Vec::new();
        for name in ["organisations", "persons", "duties", "groups", "activities"] {
            let collection = Collection::from_path(name).map_err(|e| StoreError::Corrupt {
                operation: "egil plan".into(),
                message: e.to_string(),
            })?;
            let mut query = ListQuery {
                limit: PAGE,
                ..ListQuery::default()
            };
            loop {
                let page = store.list(&collection, &query).await?;
                let Some(last) = page.last() else { break };
                query.after_id = Some(last.id().to_owned());
                let full = page.len() >= PAGE;
                for object in page {
                    let value: serde_json::Value = match serde_json::from_str(object.json()) {
                        Ok(v) => v,
                        Err(_) => continue,
                    };
                    let (resource, egil) = match from_ss12000(name, &value) {
                        Mapped::Send(resource, egil) => (resource, egil),
                        Mapped::Skip(_) => continue,
                        Mapped::Invalid(why) => {
                            let target = match name {
                                "persons" => EgilResource::Users,
                                "duties" => EgilResource::Employments,
                                "groups" => EgilResource::StudentGroups,
                                "activities" => EgilResource::Activities,
                                _ => EgilResource::SchoolUnits,
                            };
                            plan.resources.entry(target).or_default().invalid.push(why);
                            continue;
                        }
                    };
                    let id = object.id().to_owned();
                    let entry = plan.resources.entry(resource).or_default();
                    entry.live += 1;
                    seen.entry(resource).or_default().insert(id.clone());
                    let json = egil.to_string();
                    let digest = hash(&json);
                    let op = match known.get(&resource).and_then(|k| k.get(&id)) {
                        Some(h) if *h == digest => {
                            entry.unchanged += 1;
                            continue;
                        }
                        Some(_) => Op::Update,
                        None => Op::Create,
                    };
                    let item = Item {
                        id,
                        json,
                        hash: digest,
                        op,
                    };
                    if resource == EgilResource::Users && !is_student(&egil) {
                        staff.push(item);
                    } else {
                        entry.send.push(item);
                    }
                }
                if !full {
                    break;
                }
            }
        }
        plan.resources
            .entry(EgilResource::Users)
            .or_default()
            .send
            .extend(staff);
        for (resource, ids) in known {
            let entry = plan.resources.entry(*resource).or_default();
            entry.previous = ids.len() as u64;
            let live = seen.get(resource);
            let mut gone: Vec<String> = ids
                .keys()
                .filter(|id| !live.is_some_and(|l| l.contains(*id)))
                .cloned()
                .collect();
            gone.sort();
            entry.delete = gone;
        }
        Ok(plan)
    }

    /// The types that would change or lose more than `max_share` of what the server holds
    /// (at least [`GUARD_MIN_OBJECTS`] objects). With `deletions_only` (a rebuild, where the
    /// server's content is unknown) only deletions count.
    pub fn guard(&self, max_share: f64, deletions_only: bool) -> Vec<GuardTrip> {
        let mut trips = Vec::new();
        for (resource, plan) in &self.resources {
            if plan.previous == 0 {
                continue;
            }
            let changed = if deletions_only {
                0
            } else {
                plan.send.iter().filter(|i| i.op == Op::Update).count() as u64
            };
            let deleted = plan.delete.len() as u64;
            let total = changed + deleted;
            if total >= GUARD_MIN_OBJECTS && total as f64 > max_share * plan.previous as f64 {
                trips.push(GuardTrip {
                    resource: resource.path(),
                    previous: plan.previous,
                    changed,
                    deleted,
                    max_share,
                });
            }
        }
        trips
    }
}
