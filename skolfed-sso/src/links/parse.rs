//! Lenient parsing of the SSO-link document: every problem is reported with its JSON path,
//! an organization or link with an error is left out, everything else stays usable.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::model::{LoginMethod, Organization, OrganizationInfo, SsoLink, SsoLinks};
use crate::problem::{Problem, Severity};

/// The most organizations read from one document; the rest are reported and left out (a
/// national pilot has a few hundred).
pub const MAX_ORGANIZATIONS: usize = 10_000;
/// The most services read per organization.
const MAX_LINKS: usize = 1_000;
/// The most IdPs in one `link_mapping`.
const MAX_MAPPINGS: usize = 10_000;

/// The usable part of a document and every problem found in it.
#[derive(Debug, Clone, Default)]
pub struct ParsedLinks {
    /// The organizations and links without errors.
    pub links: SsoLinks,
    /// Errors (the item was left out) and warnings, in document order.
    pub problems: Vec<Problem>,
}

impl ParsedLinks {
    /// Whether any problem is an error (something was left out).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

const ORG_FIELDS: &[&str] = &["description", "display_name", "logotype", "name", "url"];
const LINK_FIELDS: &[&str] = &[
    "description",
    "disabled",
    "display_name",
    "entity_id",
    "idp_parameter",
    "link_mapping",
    "logo",
    "sp_init",
    "sso_type",
    "sso_url",
    "target_parameter",
];

/// Parses an SSO-link document (UTF-8 JSON). Never fails: a document that is not a JSON
/// array gives no organizations and one error at `$`.
pub fn parse(bytes: &[u8]) -> ParsedLinks {
    let mut out = ParsedLinks::default();
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => {
            out.problems.push(Problem::error(
                "$",
                format!("not JSON ({err}); the document must be a JSON array of organizations"),
            ));
            return out;
        }
    };
    let Value::Array(items) = value else {
        out.problems.push(Problem::error(
            "$",
            "the document must be a JSON array of organizations ([{\"organization_info\": …, \"sso_links\": […]}])",
        ));
        return out;
    };
    if items.is_empty() {
        out.problems
            .push(Problem::warning("$", "the document lists no organizations"));
    }
    let mut seen_entities = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("$[{i}]");
        if i >= MAX_ORGANIZATIONS {
            out.problems.push(Problem::error(
                path,
                format!("more than {MAX_ORGANIZATIONS} organizations; the rest are left out"),
            ));
            break;
        }
        if let Some(org) = organization(item, &path, &mut seen_entities, &mut out.problems) {
            out.links.organizations.push(org);
        }
    }
    out
}

fn organization(
    item: &Value,
    path: &str,
    seen_entities: &mut HashSet<String>,
    problems: &mut Vec<Problem>,
) -> Option<Organization> {
    let Some(object) = item.as_object() else {
        problems.push(Problem::error(
            path,
            "an organization must be a JSON object",
        ));
        return None;
    };
    unknown_fields(object, &["organization_info", "sso_links"], path, problems);
    let info_path = format!("{path}.organization_info");
    let Some(info) = object.get("organization_info").and_then(Value::as_object) else {
        problems.push(Problem::error(
            &info_path,
            "organization_info is missing or not an object; the organization is left out",
        ));
        return None;
    };
    let info = organization_info(info, &info_path, problems)?;
    let links_path = format!("{path}.sso_links");
    let links = match object.get("sso_links") {
        Some(Value::Array(links)) => links,
        _ => {
            problems.push(Problem::error(
                &links_path,
                "sso_links is missing or not an array; the organization is left out",
            ));
            return None;
        }
    };
    if links.is_empty() {
        problems.push(Problem::warning(
            &links_path,
            "the organization lists no services",
        ));
    }
    let mut parsed = Vec::new();
    for (j, link) in links.iter().enumerate() {
        let path = format!("{links_path}[{j}]");
        if j >= MAX_LINKS {
            problems.push(Problem::error(
                path,
                format!("more than {MAX_LINKS} services; the rest are left out"),
            ));
            break;
        }
        if let Some(link) = sso_link(link, &path, problems) {
            if let Some(entity) = &link.entity_id
                && !seen_entities.insert(entity.clone())
            {
                problems.push(Problem::warning(
                    format!("{path}.entity_id"),
                    format!("entity_id {entity:?} is also used by an earlier service"),
                ));
            }
            parsed.push(link);
        }
    }
    Some(Organization {
        info,
        links: parsed,
    })
}

fn organization_info(
    object: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<OrganizationInfo> {
    unknown_fields(object, ORG_FIELDS, path, problems);
    let mut fields = Fields {
        object,
        path,
        problems,
        failed: false,
    };
    let display_name = fields.required_text("display_name");
    let name = fields.required_text("name");
    let description = fields.recommended_text("description");
    let logotype = fields.url("logotype", Need::Recommended);
    let url = fields.url("url", Need::Recommended);
    if fields.failed {
        return None;
    }
    Some(OrganizationInfo {
        display_name: display_name?,
        name: name?,
        description,
        logotype,
        url,
    })
}

fn sso_link(item: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<SsoLink> {
    let Some(object) = item.as_object() else {
        problems.push(Problem::error(path, "a service must be a JSON object"));
        return None;
    };
    unknown_fields(object, LINK_FIELDS, path, problems);
    let mut fields = Fields {
        object,
        path,
        problems,
        failed: false,
    };
    let display_name = fields.required_text("display_name");
    let description = fields.recommended_text("description");
    let logo = fields.url("logo", Need::Recommended);
    let disabled = fields.flag("disabled");
    let entity_id = fields.recommended_text("entity_id");
    fields.url("sso_url", Need::Optional);
    let sso_type = fields.required_text("sso_type");
    let login = match sso_type.as_deref() {
        Some("entity_id") => {
            fields.unused("link_mapping", "entity_id");
            let sp_init = fields.url("sp_init", Need::Required);
            let idp_parameter = fields.required_text("idp_parameter");
            let target_parameter = fields.optional_text("target_parameter");
            match (sp_init, idp_parameter) {
                (Some(sp_init), Some(idp_parameter)) => Some(LoginMethod::EntityId {
                    sp_init,
                    idp_parameter,
                    target_parameter: target_parameter.filter(|t| !t.is_empty()),
                }),
                _ => None,
            }
        }
        Some("link_map") => {
            fields.unused("sp_init", "link_map");
            fields.unused("idp_parameter", "link_map");
            if fields
                .optional_text("target_parameter")
                .is_some_and(|t| !t.is_empty())
            {
                fields.warn(
                    "target_parameter",
                    "target_parameter is not used with sso_type link_map; remove it",
                );
            }
            fields.link_mapping()
        }
        Some(other) => {
            let message = format!(
                "unknown sso_type {other:?}; use \"entity_id\" or \"link_map\" (the service is left out)"
            );
            fields.error("sso_type", message);
            None
        }
        None => None,
    };
    if fields.failed {
        return None;
    }
    Some(SsoLink {
        display_name: display_name?,
        description,
        logo,
        disabled,
        entity_id,
        login: login?,
    })
}

fn unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    path: &str,
    problems: &mut Vec<Problem>,
) {
    for key in object.keys() {
        if !known.contains(&key.as_str()) {
            problems.push(Problem::warning(
                format!("{path}.{key}"),
                format!("unknown field {key:?} is ignored (a typo?)"),
            ));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Recommended,
    Optional,
}

/// Reads the fields of one object, recording problems at their paths.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    path: &'a str,
    problems: &'a mut Vec<Problem>,
    failed: bool,
}

impl Fields<'_> {
    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn error(&mut self, key: &str, message: String) {
        self.problems.push(Problem::error(self.at(key), message));
        self.failed = true;
    }

    fn warn(&mut self, key: &str, message: &str) {
        self.problems.push(Problem::warning(self.at(key), message));
    }

    fn text(&mut self, key: &str, need: Need) -> Option<String> {
        match self.object.get(key) {
            Some(Value::String(text)) if !text.trim().is_empty() || need == Need::Optional => {
                Some(text.trim().to_owned())
            }
            Some(Value::String(_)) | None | Some(Value::Null) => {
                match need {
                    Need::Required => self.error(
                        key,
                        format!("{key} is required (a non-empty string); the item is left out"),
                    ),
                    Need::Recommended => self.warn(
                        key,
                        &format!("{key} is missing or empty; the pilot requires it"),
                    ),
                    Need::Optional => {}
                }
                None
            }
            Some(other) => {
                let message = format!("{key} must be a string, not {}", kind(other));
                if need == Need::Required {
                    self.error(key, format!("{message}; the item is left out"));
                } else {
                    self.warn(key, &format!("{message}; it is ignored"));
                }
                None
            }
        }
    }

    fn required_text(&mut self, key: &str) -> Option<String> {
        self.text(key, Need::Required)
    }

    fn recommended_text(&mut self, key: &str) -> Option<String> {
        self.text(key, Need::Recommended)
    }

    fn optional_text(&mut self, key: &str) -> Option<String> {
        self.text(key, Need::Optional)
    }

    /// An https URL. A required one that is not https is an error; an optional one is dropped
    /// with a warning (a page must never link or load from plain http).
    fn url(&mut self, key: &str, need: Need) -> Option<String> {
        let text = self.text(key, need)?;
        if text.is_empty() {
            return None;
        }
        match https_url_problem(&text) {
            None => Some(text),
            Some(problem) => {
                let message = format!("{key} {text:?} {problem}");
                if need == Need::Required {
                    self.error(key, format!("{message}; the item is left out"));
                } else {
                    self.warn(key, &format!("{message}; it is ignored"));
                }
                None
            }
        }
    }

    fn flag(&mut self, key: &str) -> bool {
        match self.object.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => {
                // Fail closed: a service whose state is unclear is shown disabled.
                let message = format!(
                    "{key} must be true or false, not {}; the service is treated as disabled",
                    kind(other)
                );
                self.warn(key, &message);
                true
            }
        }
    }

    fn unused(&mut self, key: &str, sso_type: &str) {
        if self.object.contains_key(key) {
            let message = format!("{key} is not used with sso_type {sso_type}; remove it");
            self.warn(key, &message);
        }
    }

    fn link_mapping(&mut self) -> Option<LoginMethod> {
        let key = "link_mapping";
        let Some(Value::Object(map)) = self.object.get(key) else {
            self.error(
                key,
                "link_mapping (an object of IdP entityID → login URL) is required with sso_type link_map; the service is left out".into(),
            );
            return None;
        };
        if map.is_empty() {
            self.warn(
                key,
                "link_mapping is empty: no IdP gets a link to this service",
            );
        }
        let mut link_mapping = BTreeMap::new();
        for (idp, url) in map {
            let path = format!("{}.{key}[{}]", self.path, json_string(idp));
            if link_mapping.len() >= MAX_MAPPINGS {
                self.problems.push(Problem::error(
                    path,
                    format!("more than {MAX_MAPPINGS} IdPs; the rest are left out"),
                ));
                break;
            }
            if idp.trim().is_empty() {
                self.problems
                    .push(Problem::warning(path, "an empty IdP entityID is ignored"));
                continue;
            }
            match url.as_str().map(|u| (u, https_url_problem(u))) {
                Some((url, None)) => {
                    link_mapping.insert(idp.clone(), url.to_owned());
                }
                Some((url, Some(problem))) => self.problems.push(Problem::warning(
                    path,
                    format!("the login URL {url:?} {problem}; this IdP gets no link"),
                )),
                None => self.problems.push(Problem::warning(
                    path,
                    "the login URL must be a string; this IdP gets no link",
                )),
            }
        }
        Some(LoginMethod::LinkMap { link_mapping })
    }
}

/// Why `text` is not an absolute https URL with a host, or `None` when it is.
fn https_url_problem(text: &str) -> Option<&'static str> {
    let Some(rest) = text.strip_prefix("https://") else {
        return Some("is not an https URL (it must start with https://)");
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest[..host_end].is_empty() {
        return Some("has no host");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains spaces or control characters (percent-encode them)");
    }
    None
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}
