//! Every service's login URL for one IdP: what `skolfed-sso links` prints and the portal's
//! JSON endpoint returns.

use super::model::SsoLinks;

/// The links of every organization's services for one IdP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdpLinks {
    /// The IdP's entityID.
    pub idp: String,
    /// The organizations, in document order.
    pub organizations: Vec<OrganizationLinks>,
}

/// One organization's services for an IdP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrganizationLinks {
    /// `display_name`.
    pub display_name: String,
    /// `name`.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `logotype`.
    pub logotype: Option<String>,
    /// `url`.
    pub url: Option<String>,
    /// The services.
    pub services: Vec<ServiceLink>,
}

/// One service's link for an IdP.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceLink {
    /// `display_name`.
    pub display_name: String,
    /// `description`.
    pub description: Option<String>,
    /// `logo`.
    pub logo: Option<String>,
    /// Whether the service is disabled (then `login_url` is `null`).
    pub disabled: bool,
    /// The SP's entityID.
    pub entity_id: Option<String>,
    /// The login URL for the IdP; `null` when disabled or the IdP is not in a `link_map`.
    pub login_url: Option<String>,
}

impl SsoLinks {
    /// Every service's link for the IdP `idp_entity_id`.
    pub fn for_idp(&self, idp_entity_id: &str) -> IdpLinks {
        IdpLinks {
            idp: idp_entity_id.to_owned(),
            organizations: self
                .organizations
                .iter()
                .map(|org| OrganizationLinks {
                    display_name: org.info.display_name.clone(),
                    name: org.info.name.clone(),
                    description: org.info.description.clone(),
                    logotype: org.info.logotype.clone(),
                    url: org.info.url.clone(),
                    services: org
                        .links
                        .iter()
                        .map(|link| ServiceLink {
                            display_name: link.display_name.clone(),
                            description: link.description.clone(),
                            logo: link.logo.clone(),
                            disabled: link.disabled,
                            entity_id: link.entity_id.clone(),
                            login_url: link.login_url(idp_entity_id),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
