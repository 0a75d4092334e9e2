//! The federation's server applications on the [`kontosynk_framework`] mutual-TLS framework:
//! the SS 12000 API over an `ss12000` store ([`ss12000`]), the bearer-JWT checks Skolverket
//! requires of a school's API ([`bearer`]) and a GNAP authorization server that speaks the
//! SUNET server's protocol ([`gnap`]), the EGIL (SS 12000:2018 over SCIM) server school
//! organizers push to ([`egil`]), and the SSO portal of Skolfederation's SSO links
//! ([`portal`]). The `kontosynk-server` binary serves them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod base_path;
pub mod bearer;
pub mod egil;
pub mod gnap;
pub mod portal;
pub mod ss12000;
