//! Mutual-TLS clients for FedTLS federations (Skolfederation Moa): discovery of servers in the
//! federation metadata, SS 12000 sync into a store, Skolverket token exchange and push, and
//! federation health checks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod sync;
