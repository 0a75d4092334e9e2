//! Skolverket provisioning push (PROTOCOL-NOTES §5): SS 12000 objects from an
//! [`ss12000::Store`] sent to the Provisioning API in bulk jobs.
//!
//! - [`kind`]: the four object types and their order (persons → duties → groups → activities).
//! - [`map`]: SS 12000 objects → the API's schemas (what Skolverket accepts, nothing more).
//! - [`pack`]: bulk bodies packed to at most 200 KB each.
//! - [`api`]: the HTTP client: bearer tokens, rate limits (5/s bulk and polls, 10/s reads),
//!   429 / `Retry-After` / `x-ratelimit-reset`, LogEntry errors.
//! - [`engine`]: the push run: what changed since the last run, jobs polled to completion,
//!   per-object results in the store's sync state, deletions, a summary per type.
//! - [`webhook`]: a school's webhook to Skolverket's SS 12000 client.

pub mod api;
pub mod engine;
pub mod kind;
pub mod map;
pub mod pack;
pub mod webhook;

pub use api::{ApiError, Bearer, LogEntry, ProvisioningClient, RateLimits};
pub use engine::{PushConfig, PushEngine, PushError, PushReport, TypeSummary};
pub use kind::ObjectType;
