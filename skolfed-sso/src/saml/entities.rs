//! The identity providers and service providers of a verified aggregate.

use std::collections::HashMap;

use roxmltree::Node;

use super::dsig::{MD, parse_datetime};
use super::names::LocalizedText;

const MDUI: &str = "urn:oasis:names:tc:SAML:metadata:ui";
const SHIBMD: &str = "urn:mace:shibboleth:metadata:1.0";
const XML: &str = "http://www.w3.org/XML/1998/namespace";

/// The deepest nesting of `EntitiesDescriptor`s read.
const MAX_NESTING: usize = 16;

/// A verified aggregate: its end of validity and the entities it lists, IdPs sorted by
/// display name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Aggregate {
    /// `validUntil` of the root, Unix seconds.
    pub valid_until: i64,
    /// The identity providers (entities with an `IDPSSODescriptor`).
    pub idps: Vec<IdentityProvider>,
    /// The service providers (entities with an `SPSSODescriptor`).
    pub sps: Vec<ServiceProvider>,
    /// Entities left out because their own `validUntil` had passed.
    pub expired_entities: usize,
    #[serde(skip)]
    idp_index: HashMap<String, usize>,
}

/// An identity provider: what a user chooses as their school's login.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IdentityProvider {
    /// The entityID.
    pub entity_id: String,
    /// `mdui:DisplayName`.
    pub display_name: LocalizedText,
    /// `mdui:Description`.
    pub description: LocalizedText,
    /// `mdui:Logo`s.
    pub logos: Vec<Logo>,
    /// The organization behind it.
    pub organization: Organization,
    /// `shibmd:Scope`s: the domains its users' identifiers are in.
    pub scopes: Vec<String>,
}

/// A service provider.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceProvider {
    /// The entityID.
    pub entity_id: String,
    /// `mdui:DisplayName`.
    pub display_name: LocalizedText,
    /// The organization behind it.
    pub organization: Organization,
}

/// `md:Organization`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Organization {
    /// `OrganizationName`.
    pub name: LocalizedText,
    /// `OrganizationDisplayName`.
    pub display_name: LocalizedText,
    /// `OrganizationURL`.
    pub url: LocalizedText,
}

/// `mdui:Logo`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Logo {
    /// The image URL (or `data:` URI).
    pub url: String,
    /// Its width in pixels, when given.
    pub width: Option<u32>,
    /// Its height in pixels, when given.
    pub height: Option<u32>,
    /// Its `xml:lang`, when given.
    pub lang: Option<String>,
}

impl IdentityProvider {
    /// The name to show in `lang`: the mdui display name, else the organization's, else the
    /// entityID.
    pub fn name(&self, lang: &str) -> &str {
        self.display_name
            .get(lang)
            .or_else(|| self.organization.display_name.get(lang))
            .or_else(|| self.organization.name.get(lang))
            .unwrap_or(&self.entity_id)
    }

    /// Whether `query` (lower-case words) matches every word somewhere in the names, scopes
    /// or entityID.
    pub fn matches(&self, query: &str) -> bool {
        let haystack = self.search_text();
        query
            .split_whitespace()
            .all(|word| haystack.contains(&word.to_lowercase()))
    }

    fn search_text(&self) -> String {
        let mut text = String::new();
        for part in [
            &self.display_name,
            &self.organization.display_name,
            &self.organization.name,
        ] {
            for value in [&part.sv, &part.en, &part.other].into_iter().flatten() {
                text.push_str(value);
                text.push(' ');
            }
        }
        for scope in &self.scopes {
            text.push_str(scope);
            text.push(' ');
        }
        text.push_str(&self.entity_id);
        text.to_lowercase()
    }
}

impl Aggregate {
    /// The IdP with this entityID.
    pub fn idp(&self, entity_id: &str) -> Option<&IdentityProvider> {
        self.idp_index.get(entity_id).map(|&i| &self.idps[i])
    }
}

/// Reads the entities of the verified `root` (never searching the document for another).
pub(crate) fn read_aggregate(root: Node<'_, '_>, valid_until: i64, now: i64) -> Aggregate {
    let mut aggregate = Aggregate {
        valid_until,
        idps: Vec::new(),
        sps: Vec::new(),
        expired_entities: 0,
        idp_index: HashMap::new(),
    };
    collect(root, 0, now, &mut aggregate);
    aggregate
        .idps
        .sort_by_cached_key(|idp| (idp.name("sv").to_lowercase(), idp.entity_id.clone()));
    aggregate.idps.dedup_by(|a, b| a.entity_id == b.entity_id);
    aggregate.idp_index = aggregate
        .idps
        .iter()
        .enumerate()
        .map(|(i, idp)| (idp.entity_id.clone(), i))
        .collect();
    aggregate
}

fn md(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(MD) && node.tag_name().name() == name
}

fn collect(node: Node<'_, '_>, depth: usize, now: i64, out: &mut Aggregate) {
    if md(node, "EntityDescriptor") {
        entity(node, now, out);
        return;
    }
    if depth >= MAX_NESTING || !md(node, "EntitiesDescriptor") {
        return;
    }
    for child in node.children().filter(|c| c.is_element()) {
        collect(child, depth + 1, now, out);
    }
}

fn entity(node: Node<'_, '_>, now: i64, out: &mut Aggregate) {
    let Some(entity_id) = node
        .attribute("entityID")
        .map(str::trim)
        .filter(|e| !e.is_empty())
    else {
        return;
    };
    if node
        .attribute("validUntil")
        .and_then(parse_datetime)
        .is_some_and(|until| until <= now)
    {
        out.expired_entities += 1;
        return;
    }
    let organization = node
        .children()
        .find(|c| md(*c, "Organization"))
        .map(read_organization)
        .unwrap_or_default();
    if let Some(idp) = node.children().find(|c| md(*c, "IDPSSODescriptor")) {
        let ui = ui_info(idp);
        let mut scopes: Vec<String> = [Some(idp), node.children().find(|c| md(*c, "Extensions"))]
            .into_iter()
            .flatten()
            .flat_map(|n| {
                n.children()
                    .filter(|c| md(*c, "Extensions"))
                    .chain(if md(n, "Extensions") { Some(n) } else { None })
            })
            .flat_map(|ext| ext.children())
            .filter(|c| {
                c.is_element()
                    && c.tag_name().namespace() == Some(SHIBMD)
                    && c.tag_name().name() == "Scope"
            })
            .filter_map(|c| c.text().map(|t| t.trim().to_owned()))
            .filter(|s| !s.is_empty())
            .collect();
        scopes.dedup();
        out.idps.push(IdentityProvider {
            entity_id: entity_id.to_owned(),
            display_name: ui.display_name,
            description: ui.description,
            logos: ui.logos,
            organization: organization.clone(),
            scopes,
        });
    }
    if let Some(sp) = node.children().find(|c| md(*c, "SPSSODescriptor")) {
        out.sps.push(ServiceProvider {
            entity_id: entity_id.to_owned(),
            display_name: ui_info(sp).display_name,
            organization,
        });
    }
}

#[derive(Default)]
struct UiInfo {
    display_name: LocalizedText,
    description: LocalizedText,
    logos: Vec<Logo>,
}

fn ui_info(role: Node<'_, '_>) -> UiInfo {
    let mut ui = UiInfo::default();
    let infos = role
        .children()
        .filter(|c| md(*c, "Extensions"))
        .flat_map(|e| e.children())
        .filter(|c| {
            c.is_element()
                && c.tag_name().namespace() == Some(MDUI)
                && c.tag_name().name() == "UIInfo"
        });
    for info in infos {
        for item in info
            .children()
            .filter(|c| c.is_element() && c.tag_name().namespace() == Some(MDUI))
        {
            let lang = item.attribute((XML, "lang"));
            let text = item.text().unwrap_or_default();
            match item.tag_name().name() {
                "DisplayName" => ui.display_name.add(lang, text),
                "Description" => ui.description.add(lang, text),
                "Logo" if !text.trim().is_empty() && ui.logos.len() < 8 => ui.logos.push(Logo {
                    url: text.trim().to_owned(),
                    width: item.attribute("width").and_then(|w| w.parse().ok()),
                    height: item.attribute("height").and_then(|h| h.parse().ok()),
                    lang: lang.map(str::to_owned),
                }),
                _ => {}
            }
        }
    }
    ui
}

fn read_organization(node: Node<'_, '_>) -> Organization {
    let mut organization = Organization::default();
    for item in node
        .children()
        .filter(|c| c.is_element() && c.tag_name().namespace() == Some(MD))
    {
        let lang = item.attribute((XML, "lang"));
        let text = item.text().unwrap_or_default();
        match item.tag_name().name() {
            "OrganizationName" => organization.name.add(lang, text),
            "OrganizationDisplayName" => organization.display_name.add(lang, text),
            "OrganizationURL" => organization.url.add(lang, text),
            _ => {}
        }
    }
    organization
}
