//! Federation metadata: the typed model and its lenient, per-entity parser.

mod model;
mod parse;

pub use model::{Endpoint, Entity, Issuer, Metadata, RejectedEntity, SAML_SCOPE_EXTENSION};
pub use parse::{DocumentError, EntityParseError, parse_entity_json, parse_payload};
