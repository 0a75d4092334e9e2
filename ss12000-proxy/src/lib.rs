//! ss12000-proxy: a FedTLS gateway. It terminates mutual TLS pinned against the federation
//! metadata and forwards authenticated requests to an existing backend, which learns who is
//! calling from `X-FedTLSAuth-*` headers that clients can never set themselves.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod config;
pub mod forward;
