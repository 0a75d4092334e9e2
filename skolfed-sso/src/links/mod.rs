//! The pilot's SSO-link metadata: a JSON array of service-provider organizations, each with
//! its `organization_info` and a list of `sso_links` (services).
//!
//! [`parse`] is lenient: an organization or link with an error is left out with a
//! [`Problem`](crate::Problem) that names its JSON path, and the rest of the document stays
//! usable. The same problems are the lint report (`skolfed-sso lint`). [`SsoLink::login_url`]
//! builds a service's login URL for an IdP exactly as the pilot describes.

mod build;
mod model;
mod parse;
mod resolve;

pub use build::{append_query_parameter, encode_component};
pub use model::{LoginMethod, Organization, OrganizationInfo, SsoLink, SsoLinks};
pub use parse::{MAX_ORGANIZATIONS, ParsedLinks, parse};
pub use resolve::{IdpLinks, OrganizationLinks, ServiceLink};
