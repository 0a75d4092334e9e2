//! Mutual-TLS clients for FedTLS federations (Skolfederation Moa): discovery of servers in the
//! federation metadata, SS 12000 sync into a store, Skolverket token exchange and push, and
//! federation health checks.
//!
//! [`discovery`] finds servers in the metadata; [`client`] builds the pinned mutual-TLS HTTP
//! client every other module sends with.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod discovery;
pub mod egil;
pub mod health;
pub mod push;
pub mod sync;
pub mod token;

pub use client::{ClientBuilder, ClientError, FederationClient, Identity, RetryPolicy, Sender};
pub use discovery::{Choice, DiscoveryError, ServerQuery, ServerTarget};

#[cfg(test)]
extern crate self as kontosynk_client;

#[cfg(test)]
#[path = "../../tests/src/federation.rs"]
mod testsupport;
