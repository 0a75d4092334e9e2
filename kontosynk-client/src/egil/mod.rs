//! Pushing a school organizer's SS 12000 data to a service provider's EGIL server (SS
//! 12000:2018 over SCIM, Moa tag `egilv1`), as EgilSCIM does, with what its users asked for.
//!
//! - [`plan`]: the store's objects mapped to EGIL resources (`ss12000::egil::from_ss12000`),
//!   compared with what was last accepted by this server (state per server in the store):
//!   what to create, update and delete, and the mass-change guard.
//! - [`engine`]: sends the plan in EgilSCIM's order (creates and updates parent before child,
//!   students before staff, deletions afterwards in reverse order), 409 → PUT, 404 on PUT →
//!   POST, 404 on DELETE = already gone; `--rebuild` reconciles against the server's lists.
//! - [`audit`]: one JSON line per request sent.

pub mod audit;
pub mod engine;
pub mod plan;

pub use engine::{EgilPushConfig, EgilPushError, EgilPushReport, EgilPusher, ResourceSummary};
pub use plan::{GuardTrip, Known, Plan};
