//! Skolfederation's SSO links and its signed SAML metadata aggregate.
//!
//! - [`links`]: the pilot's SSO-link metadata (a JSON list of service-provider organizations
//!   and their services): lenient parsing per organization and per link, lint with JSON paths,
//!   and building each service's login URL for the user's identity provider (IdP).
//! - [`saml`]: verification of the federation's signed SAML 2.0 metadata aggregate (XML-DSig
//!   enveloped signature, exclusive canonicalization, RSA-SHA256, checked with aws-lc-rs against
//!   the operator's certificate) and the IdPs and SPs it lists.
//! - [`fetch`]: keeping either document fresh over https (conditional requests, a cache file,
//!   backoff, the last good document kept on failure).
//!
//! The crate knows nothing of FedTLS: the portal in `kontosynk-server` and the `skolfed-sso`
//! command-line tool build on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod fetch;
pub mod links;
pub mod problem;
pub mod saml;

pub use problem::{Problem, Severity};
#[cfg(feature = "testing")]
pub mod testing;
