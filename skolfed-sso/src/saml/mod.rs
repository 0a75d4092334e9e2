//! Skolfederation's signed SAML 2.0 metadata aggregate.
//!
//! [`verify_aggregate`] checks the XML-DSig enveloped signature over the root element against
//! the operator's certificate ([`SigningCertificate`]) and then reads that same element (never
//! another one found by searching) into an [`Aggregate`] of identity providers and service
//! providers. Only what Skolfederation uses is accepted: exclusive c14n, RSA-SHA256, SHA-256,
//! the enveloped-signature transform. Everything else is refused (fail closed).

mod c14n;
mod dsig;
mod entities;
mod names;

pub use c14n::{C14nError, Canonicalizer};
pub use dsig::{
    MAX_AGGREGATE_BYTES, SamlError, SigningCertificate, VerifyOptions, verify_aggregate,
};
pub use entities::{Aggregate, IdentityProvider, Logo, Organization, ServiceProvider};
pub use names::LocalizedText;

impl crate::fetch::FeedDocument for Aggregate {
    fn expires_at(&self) -> Option<i64> {
        Some(self.valid_until)
    }
}
