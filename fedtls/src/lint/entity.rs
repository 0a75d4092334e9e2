//! One entity: its id, organization, tags and the saml-scope extension.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::json::{Path, kind as type_name};
use crate::names::{MOA_STRENGTHENED_TAGS, Tag, is_moa_organization_id};
use crate::pin::truncate_for_message;

use super::uri::{is_lowercase_dns_name, parse_absolute_uri};
use super::{ENTITY_MEMBERS, EntityFacts, Linter, Role, SAML_SCOPE_EXTENSION};

impl Linter<'_> {
    pub(super) fn entity(&mut self, value: &Value, path: Path) {
        let index = self.entities.len();
        self.entities.push(EntityFacts {
            entity_id: None,
            organization: None,
            organization_id: None,
            pins_incomplete: false,
            issuers: Vec::new(),
        });
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "an entity must be a JSON object, found {}",
                    type_name(value)
                ),
            );
            return;
        };
        self.near_misses(map, ENTITY_MEMBERS, &path);
        self.entity_id(map, &path, index);
        self.organization(map, &path, index);

        let issuers_path = path.key("issuers");
        match map.get("issuers") {
            None => self.error(
                &issuers_path,
                "issuers is required: list the root CA of the entity's certificates as {\"x509certificate\": \"-----BEGIN CERTIFICATE-----...\"}, or the certificate itself if it is self-signed (the array may be empty)",
            ),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    self.warn(
                        &issuers_path,
                        "issuers is empty: peers that validate the certificate chain, and the SUNET authorization server (which matches issuers), will refuse this entity's certificates",
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    self.issuer(item, issuers_path.index(i), index);
                }
            }
            Some(other) => self.error(
                &issuers_path,
                format!(
                    "issuers must be an array of {{\"x509certificate\": PEM}} objects, found {}",
                    type_name(other)
                ),
            ),
        }

        let mut endpoints = 0;
        for role in [Role::Server, Role::Client] {
            let role_path = path.key(role.member());
            match map.get(role.member()) {
                None => {}
                Some(Value::Array(items)) => {
                    endpoints += items.len();
                    for (i, item) in items.iter().enumerate() {
                        self.endpoint(item, role_path.index(i), index, role);
                    }
                }
                Some(other) => {
                    // Already an error; do not also say the entity has no endpoints.
                    endpoints += 1;
                    self.error(
                        &role_path,
                        format!(
                            "{} must be an array of endpoint objects, found {}",
                            role.member(),
                            type_name(other)
                        ),
                    );
                }
            }
        }
        if endpoints == 0 {
            self.warn(
                &path,
                "the entity has neither servers nor clients: add the endpoints it is for",
            );
        }

        let ext_path = path.key("extensions");
        match map.get("extensions") {
            None => {}
            Some(Value::Object(ext)) => {
                if self.moa()
                    && let Some(scope) = ext.get(SAML_SCOPE_EXTENSION)
                {
                    self.saml_scope(scope, ext_path.key(SAML_SCOPE_EXTENSION));
                }
            }
            Some(other) => self.error(
                &ext_path,
                format!(
                    "extensions must be an object keyed by extension URI, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn entity_id(&mut self, map: &Map<String, Value>, path: &Path, index: usize) {
        let path = path.key("entity_id");
        match map.get("entity_id") {
            None => self.error(
                &path,
                "entity_id is required: the entity's unique URI, e.g. \"https://example.org/metadata\"",
            ),
            Some(Value::String(id)) => {
                match parse_absolute_uri(id) {
                    Err(why) => self.error(
                        &path,
                        format!(
                            "entity_id {:?} is not an absolute URI ({why}): use a URI such as \"https://example.org/metadata\"",
                            truncate_for_message(id)
                        ),
                    ),
                    Ok(uri) if uri.scheme != "https" => self.warn(
                        &path,
                        format!(
                            "entity_id {:?} is not an https URI: prefer an https URI under a domain the member controls",
                            truncate_for_message(id)
                        ),
                    ),
                    Ok(_) => {}
                }
                if let Some(first) = self.entity_ids.get(id) {
                    let message = format!(
                        "duplicate entity_id {:?}: also used at {first}; every entity needs its own entity_id",
                        truncate_for_message(id)
                    );
                    self.error(&path, message);
                } else {
                    self.entity_ids.insert(id.clone(), path.clone());
                }
                if let Some(facts) = self.entities.get_mut(index) {
                    facts.entity_id = Some(id.clone());
                }
            }
            Some(other) => self.error(
                &path,
                format!("entity_id must be a string (a URI), found {}", type_name(other)),
            ),
        }
    }

    fn organization(&mut self, map: &Map<String, Value>, path: &Path, index: usize) {
        let moa = self.moa();
        let org_path = path.key("organization");
        match map.get("organization") {
            None if moa => self.error(
                &org_path,
                "organization is required by the Moa profile: add the member's legal name",
            ),
            None => {}
            Some(Value::String(name)) if name.trim().is_empty() => {
                let message = "organization is empty: give the member's legal name";
                if moa {
                    self.error(&org_path, message);
                } else {
                    self.warn(&org_path, message);
                }
            }
            Some(Value::String(name)) => {
                if let Some(facts) = self.entities.get_mut(index) {
                    facts.organization = Some((name.clone(), org_path.clone()));
                }
            }
            Some(other) => self.error(
                &org_path,
                format!(
                    "organization must be a string (the member's legal name), found {}",
                    type_name(other)
                ),
            ),
        }

        let id_path = path.key("organization_id");
        match map.get("organization_id") {
            None if moa => self.error(
                &id_path,
                "organization_id is required by the Moa profile: the country code and organization number, e.g. \"SE2021004185\"",
            ),
            None => {}
            Some(Value::String(id)) if moa && !is_moa_organization_id(id) => self.error(
                &id_path,
                format!(
                    "organization_id {:?} is not LLYYMMDDXXXX: two capital letters of country code and the 10-digit organization number without a dash, e.g. \"SE2021004185\"",
                    truncate_for_message(id)
                ),
            ),
            Some(Value::String(id)) => {
                if let Some(facts) = self.entities.get_mut(index) {
                    facts.organization_id = Some((id.clone(), id_path.clone()));
                }
            }
            Some(other) => self.error(
                &id_path,
                format!(
                    "organization_id must be a string such as \"SE2021004185\", found {}",
                    type_name(other)
                ),
            ),
        }
    }

    pub(super) fn tags(&mut self, value: Option<&Value>, path: Path, role: Role) {
        let moa_message = || match role {
            Role::Client => format!(
                "the Moa profile requires every client to carry a strengthened tag: add the one for this client's purpose ({})",
                MOA_STRENGTHENED_TAGS.join(", ")
            ),
            Role::Server => format!(
                "the Moa profile requires every server to carry at least one strengthened tag: add the services it offers ({})",
                MOA_STRENGTHENED_TAGS.join(", ")
            ),
        };
        let items = match value {
            None => {
                if self.moa() {
                    self.error(&path, moa_message());
                }
                return;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    &path,
                    format!(
                        "tags must be an array of strings, found {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        let mut seen = HashSet::new();
        let mut strengthened = 0;
        for (i, item) in items.iter().enumerate() {
            let tag_path = path.index(i);
            let Value::String(text) = item else {
                self.error(
                    &tag_path,
                    format!("a tag must be a string, found {}", type_name(item)),
                );
                continue;
            };
            match Tag::new(text) {
                Ok(tag) => {
                    if tag.is_moa_strengthened() {
                        strengthened += 1;
                    }
                    if !seen.insert(text.as_str()) {
                        self.warn(
                            &tag_path,
                            format!("tag {text:?} is listed twice: remove one"),
                        );
                    }
                }
                Err(_) => {
                    let lower = text.to_ascii_lowercase();
                    let hint = if Tag::new(&lower).is_ok() {
                        format!(": write {lower:?}")
                    } else {
                        String::new()
                    };
                    self.error(
                        &tag_path,
                        format!(
                            "tag {:?} is not 1 to 64 characters of a-z and 0-9{hint}",
                            truncate_for_message(text)
                        ),
                    );
                }
            }
        }
        if self.moa() && strengthened == 0 {
            self.error(&path, moa_message());
        }
    }

    fn saml_scope(&mut self, value: &Value, path: Path) {
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "the saml-scope extension must be an object {{\"scope\": [\"domain.example\"]}}, found {}",
                    type_name(value)
                ),
            );
            return;
        };
        let scope_path = path.key("scope");
        let items = match map.get("scope") {
            None => {
                self.error(
                    &scope_path,
                    "scope is required in the saml-scope extension: the DNS domains the entity speaks for",
                );
                return;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    &scope_path,
                    format!(
                        "scope must be an array of DNS domain names, found {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        if items.is_empty() {
            self.warn(
                &scope_path,
                "scope is empty: the entity speaks for no domain; remove the extension or add domains",
            );
        }
        for (i, item) in items.iter().enumerate() {
            let item_path = scope_path.index(i);
            match item {
                Value::String(name) if is_lowercase_dns_name(name) => {}
                Value::String(name) => {
                    let lower = name.to_ascii_lowercase();
                    let message = if is_lowercase_dns_name(&lower) {
                        format!("scope domains must be lowercase: write {lower:?}")
                    } else {
                        format!(
                            "{:?} is not a DNS domain name such as \"skola.example.se\"",
                            truncate_for_message(name)
                        )
                    };
                    self.error(&item_path, message);
                }
                other => self.error(
                    &item_path,
                    format!(
                        "a scope entry must be a DNS domain name string, found {}",
                        type_name(other)
                    ),
                ),
            }
        }
    }
}
