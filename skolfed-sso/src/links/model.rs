//! The parsed SSO-link document: organizations, their services and how each starts a login.

use std::collections::BTreeMap;

/// A parsed SSO-link document: the organizations that had no error, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SsoLinks {
    /// The service-provider organizations.
    pub organizations: Vec<Organization>,
}

/// One service-provider organization and its services.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Organization {
    /// Its `organization_info`.
    pub info: OrganizationInfo,
    /// Its services (`sso_links`) that had no error, in document order.
    pub links: Vec<SsoLink>,
}

/// `organization_info`: who offers the services.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrganizationInfo {
    /// The name shown as the heading of the organization's services.
    pub display_name: String,
    /// The legal name (`name`).
    pub name: String,
    /// A short description, shown as body text.
    pub description: Option<String>,
    /// The organization's logo (an https URL).
    pub logotype: Option<String>,
    /// The organization's web site (an https URL).
    pub url: Option<String>,
}

/// One service (an entry of `sso_links`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SsoLink {
    /// The name shown on the service's button.
    pub display_name: String,
    /// A short description shown under the name.
    pub description: Option<String>,
    /// The service's logo (an https URL).
    pub logo: Option<String>,
    /// `disabled: true`: the service is shown greyed out and never linked.
    pub disabled: bool,
    /// The service provider's SAML entityID.
    pub entity_id: Option<String>,
    /// How a login at the service is started.
    pub login: LoginMethod,
}

/// How a login at a service is started for a given IdP (`sso_type`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "sso_type", rename_all = "snake_case")]
pub enum LoginMethod {
    /// `sso_type: entity_id`: the service's SP-initiated login URL takes the IdP's entityID
    /// as a query parameter.
    EntityId {
        /// `sp_init`: the SP's session initiator (e.g. `…/Shibboleth.sso/Login?`).
        sp_init: String,
        /// `idp_parameter`: the name of the parameter that carries the IdP's entityID.
        idp_parameter: String,
        /// `target_parameter`: extra query text appended after the IdP parameter (`None`
        /// when absent or empty).
        target_parameter: Option<String>,
    },
    /// `sso_type: link_map`: a fixed login URL per IdP entityID; IdPs not in the map get no
    /// link.
    LinkMap {
        /// `link_mapping`: IdP entityID → login URL.
        link_mapping: BTreeMap<String, String>,
    },
}

impl SsoLink {
    /// The login URL of this service for the IdP `idp_entity_id`, or `None` when the service
    /// is disabled or (for `link_map`) the IdP is not in its map.
    pub fn login_url(&self, idp_entity_id: &str) -> Option<String> {
        if self.disabled {
            return None;
        }
        match &self.login {
            LoginMethod::EntityId {
                sp_init,
                idp_parameter,
                target_parameter,
            } => Some(super::build::entity_id_link(
                sp_init,
                idp_parameter,
                idp_entity_id,
                target_parameter.as_deref(),
            )),
            LoginMethod::LinkMap { link_mapping } => link_mapping.get(idp_entity_id).cloned(),
        }
    }
}
