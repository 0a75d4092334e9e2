//! FedTLS / MATF (RFC 9932) for Rust: verify signed federation metadata, index its entities,
//! and identify peers by their public-key pins.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod claims;
pub mod der;
pub mod encoding;
pub mod entity;
pub mod lint;
pub mod jwk;
pub mod jws;
pub mod pin;
pub mod x509;

pub use pin::{CertThumbprint, Pin, PinError};
pub mod names;

pub use names::Tag;
pub mod claims;
pub mod index;
pub mod metadata;

pub use index::Index;
pub use metadata::{Endpoint, Entity, Metadata};

pub use claims::{Claims, ClaimsError, ClaimsPolicy, ValidClaims};
pub use jwk::{Algorithm, JwkError, Jwks, PublicJwk, SigningKey};
pub use jws::{Jws, JwsError, JwsFormat, ProtectedHeader, SignOptions, VerifiedSignature};
