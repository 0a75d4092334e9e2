//! FedTLS / MATF (RFC 9932) for Rust: verify signed federation metadata, index its entities,
//! and identify peers by their public-key pins.
//!
//! Start with [`verify::verify_metadata`]: signed bytes and a trust anchor ([`jwk::Jwks`]) in,
//! a [`VerifiedMetadata`] with an [`Index`] of the usable entities out. [`Pin`] identifies a
//! peer by its certificate; [`store::MetadataStore`] keeps verified metadata current and the
//! [`tls`] verifiers check every handshake against it.
//!
//! That is the trust core, and all a server or client needs. Member and operator tooling —
//! linting, entity generation, certificate inspection, metadata signing and key generation,
//! test federations — is behind the `tooling` feature (the `cli` feature, on by default,
//! implies it):
//!
//! ```toml
//! fedtls = { version = "0.1", default-features = false }                          # trust core
//! fedtls = { version = "0.1", default-features = false, features = ["tooling"] }  # + tooling
//! ```
//!
//! # Features
//!
//! - `tooling`: the modules `lint`, `entity`, `x509` and `testfed`, plus
//!   `jws::sign_metadata`, `jws::SignOptions` and `SigningKey::generate`.
//! - `cli` (default): the `fedtls` command-line tool; implies `tooling`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod claims;
mod der;
mod encoding;
#[cfg(feature = "tooling")]
pub mod entity;
mod error_chain;
pub mod index;
mod json;
pub mod jwk;
pub mod jws;
#[cfg(feature = "tooling")]
pub mod lint;
pub mod metadata;
pub mod names;
#[cfg(feature = "tooling")]
pub mod output;
pub mod pin;
pub mod snapshot;
pub mod store;
#[cfg(feature = "tooling")]
pub mod testfed;
pub mod tls;
pub mod verify;
#[cfg(feature = "tooling")]
pub mod x509;
// Without the tooling only the issuer-signature check of the client verifier is used.
#[cfg(not(feature = "tooling"))]
#[allow(dead_code)]
mod x509;

pub use claims::{Claims, ClaimsError, ClaimsPolicy, ValidClaims};
pub use error_chain::error_chain;
pub use index::Index;
pub use jwk::{Algorithm, JwkError, Jwks, PublicJwk, SigningKey};
#[cfg(feature = "tooling")]
pub use jws::SignOptions;
pub use jws::{Jws, JwsError, JwsFormat, ProtectedHeader, VerifiedSignature};
pub use metadata::{Endpoint, Entity, Metadata};
pub use names::{OrganizationId, Tag};
pub use pin::{CertThumbprint, Pin, PinError};
pub use snapshot::{Snapshot, SnapshotCell, SnapshotSource};
pub use store::MetadataStore;
pub use verify::{VerifiedMetadata, VerifyError, VerifyOptions, verify_metadata};
