//! The table's rows as compact JSON embedded in the page (organizations and tags listed once,
//! each row an array), so 5,000 servers stay well under a megabyte and the browser renders
//! only the rows on screen.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::html::ReportContext;
use super::{HealthState, ServerHealth};

/// A server the metadata lists that has not been checked yet (e.g. right after a start, or
/// added by a metadata refresh since the last run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingServer {
    /// The entity listing the server.
    pub entity_id: String,
    /// The entity's organization.
    pub organization: Option<String>,
    /// The entity's organization id.
    pub organization_id: Option<String>,
    /// The server's `base_uri`.
    pub base_uri: String,
    /// The server's tags.
    pub tags: Vec<String>,
    /// The first pin the metadata lists.
    pub pin: Option<String>,
}

/// The state's code on the page, in display order: unhealthy 0, refused_client 1, warning 2,
/// not checked yet 3, healthy 4.
pub fn state_code(state: HealthState) -> u8 {
    match state {
        HealthState::Unhealthy => 0,
        HealthState::RefusedClient => 1,
        HealthState::Warning => 2,
        HealthState::Healthy => 4,
    }
}

/// The code of a server not checked yet.
pub const PENDING: u8 = 3;

/// Interns organizations (`[name, id]`) and tags, answering their index.
#[derive(Default)]
struct Interner {
    orgs: Vec<(String, String)>,
    org_index: BTreeMap<(String, String), usize>,
    tags: Vec<String>,
    tag_index: BTreeMap<String, usize>,
}

impl Interner {
    fn org(&mut self, name: Option<&str>, id: Option<String>) -> usize {
        let key = (name.unwrap_or("").to_owned(), id.unwrap_or_default());
        if let Some(&i) = self.org_index.get(&key) {
            return i;
        }
        self.orgs.push(key.clone());
        self.org_index.insert(key, self.orgs.len() - 1);
        self.orgs.len() - 1
    }

    fn tags(&mut self, tags: &[String]) -> Vec<usize> {
        tags.iter()
            .map(|t| {
                if let Some(&i) = self.tag_index.get(t) {
                    return i;
                }
                self.tags.push(t.clone());
                self.tag_index.insert(t.clone(), self.tags.len() - 1);
                self.tags.len() - 1
            })
            .collect()
    }
}

/// The page's data: `{"o": [[name, id]…], "t": [tag…], "r": [row…]}` where a row is
/// `[state, org, entity_id, base_uri, [tag…], pin, days_left, http, latency_ms, since,
/// recent, problem, up, of]`; `pin` starts with `!` when it is not one the metadata lists,
/// `recent` is the last checks oldest first (`+` healthy, `~` warning, `-` unhealthy), and
/// `up`/`of` count healthy checks in the history window; trailing empty members are left
/// out.
pub fn data(results: &[ServerHealth], context: &ReportContext) -> Value {
    let mut interner = Interner::default();
    let mut rows = Vec::with_capacity(results.len() + context.pending.len());
    for r in results {
        let key = (r.entity_id.clone(), r.base_uri.clone());
        let org = interner.org(
            r.organization.as_deref(),
            r.organization_id.as_ref().map(ToString::to_string),
        );
        let pin = match (&r.presented_pin, r.pin_match) {
            (Some(pin), Some(false)) => Value::from(format!("!{pin}")),
            (Some(pin), _) => Value::from(pin.as_str()),
            (None, _) => r
                .expected_pins
                .first()
                .map_or(Value::Null, |p| p.as_str().into()),
        };
        let problem = match &r.error {
            Some(error) => std::iter::once(error.as_str())
                .chain(r.warnings.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("; "),
            None => r.warnings.join("; "),
        };
        let (up, of) = context.uptime.get(&key).copied().unwrap_or((0, 0));
        rows.push(trimmed(json!([
            state_code(r.state),
            org,
            r.entity_id,
            r.base_uri,
            interner.tags(&r.tags),
            pin,
            r.cert_days_left,
            r.http_status,
            r.latency_ms,
            context.since.get(&key),
            context.recent.get(&key).map_or("", String::as_str),
            problem,
            up,
            of,
        ])));
    }
    for p in &context.pending {
        let org = interner.org(p.organization.as_deref(), p.organization_id.clone());
        rows.push(trimmed(json!([
            PENDING,
            org,
            p.entity_id,
            p.base_uri,
            interner.tags(&p.tags),
            p.pin,
            null,
            null,
            null,
            null,
            "",
            "",
            0,
            0
        ])));
    }
    let orgs: Vec<Value> = interner
        .orgs
        .into_iter()
        .map(|(name, id)| json!([name, id]))
        .collect();
    json!({"o": orgs, "t": interner.tags, "r": rows})
}

/// `row` without its trailing empty members (`null`, `""`, `0`): the page reads a missing
/// member as empty, and 5,000 rows save some 75 kB.
fn trimmed(mut row: Value) -> Value {
    if let Value::Array(members) = &mut row {
        while members
            .last()
            .is_some_and(|m| m.is_null() || m.as_str() == Some("") || m.as_u64() == Some(0))
        {
            members.pop();
        }
    }
    row
}

/// JSON made safe inside `<script type="application/json">`: every `<` (which JSON only has
/// inside strings) becomes `\u003c`, so no `</script>` or `<!--` can end the element.
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}
