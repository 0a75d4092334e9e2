//! FedTLS / MATF (RFC 9932) for Rust: verify signed federation metadata, index its entities,
//! and identify peers by their public-key pins.
//!
//! Start with [`verify::verify_metadata`]: signed bytes and a trust anchor ([`jwk::Jwks`]) in,
//! an [`Index`] of the usable entities out. [`Pin`] identifies a peer by its certificate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod claims;
pub mod der;
pub mod encoding;
pub mod entity;
pub mod index;
mod json;
pub mod jwk;
pub mod jws;
pub mod lint;
pub mod metadata;
pub mod names;
pub mod pin;
pub mod snapshot;
pub mod store;
pub mod testfed;
pub mod tls;
pub mod verify;
pub mod x509;

pub use claims::{Claims, ClaimsError, ClaimsPolicy, ValidClaims};
pub use index::Index;
pub use jwk::{Algorithm, JwkError, Jwks, PublicJwk, SigningKey};
pub use jws::{Jws, JwsError, JwsFormat, ProtectedHeader, SignOptions, VerifiedSignature};
pub use metadata::{Endpoint, Entity, Metadata};
pub use names::Tag;
pub use pin::{CertThumbprint, Pin, PinError};
pub use snapshot::{Snapshot, SnapshotCell, SnapshotSource};
pub use store::MetadataStore;
pub use verify::{VerifiedMetadata, VerifyError, VerifyOptions, verify_metadata};
