//! The official MATF metadata JSON Schemas, embedded unchanged (`fedtls/schemas/`), and every
//! violation of either reported as an error with the JSON path and the schema version that
//! rejected it.
//!
//! Validation is done by `boon` (JSON Schema drafts 4 to 2020-12, format assertions on), so
//! what lint calls schema-valid is what the schema says, not a hand-written approximation.
//! The Moa production schema declares `$schema: http://json-schema.org/schema#` ("the latest
//! draft"), which boon reads as 2020-12; its `$ref`s are plain JSON pointers
//! (`#/definitions/entity`) and resolve the same under any draft.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use boon::{Compiler, ErrorKind, InstanceToken, SchemaIndex, Schemas, ValidationError};
use serde_json::Value;

use crate::json::Path;
use crate::pin::truncate_for_message;

/// One embedded version of the official schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    /// How messages name it, e.g. `Moa production schema 712c5bf`.
    pub label: &'static str,
    /// The file name under `fedtls/schemas/`.
    pub file: &'static str,
    /// The schema's `$id` (resources are registered under it; nothing is fetched).
    id: &'static str,
    /// The pointer of the entity definition, for input that is one entity or an array.
    entity_pointer: &'static str,
    /// The YAML text.
    yaml: &'static str,
}

/// Every embedded schema version; a document that any of them rejects is invalid.
pub const SCHEMA_VERSIONS: [SchemaVersion; 2] = [
    SchemaVersion {
        label: "Moa production schema 712c5bf",
        file: "fedtls-metadata-schema.712c5bf-moa-prod.yaml",
        id: "https://schemas.fedtls.se/metadata-1.0.0.json",
        entity_pointer: "#/definitions/entity",
        yaml: include_str!("../../schemas/fedtls-metadata-schema.712c5bf-moa-prod.yaml"),
    },
    SchemaVersion {
        label: "MATF schema HEAD c4134bc",
        file: "matf-metadata-schema.HEAD-c4134bc.yaml",
        id: "https://mtlsfed.se/schema/matf-metadata-schema.json",
        entity_pointer: "#/$defs/entity",
        yaml: include_str!("../../schemas/matf-metadata-schema.HEAD-c4134bc.yaml"),
    },
];

/// What the input holds, which decides the schema location to validate against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// A whole document: the schema's root.
    Document,
    /// One entity object: the schema's entity definition.
    Entity,
    /// A bare array of entities: each item against the entity definition.
    Entities,
}

/// One schema error, merged across versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Violation {
    /// Where in the input.
    pub path: Path,
    /// What the schema says is wrong, and how to fix it.
    pub message: String,
    /// Labels of the versions that reject it.
    pub versions: Vec<&'static str>,
}

impl Violation {
    /// `the official MATF schema (A and B) rejects this: MESSAGE`.
    pub(super) fn describe(&self) -> String {
        format!(
            "the official MATF schema ({}) rejects this: {}",
            self.versions.join(" and "),
            self.message
        )
    }
}

/// An embedded schema that did not load (a defect of this build, never of the input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the embedded schema {file} cannot be used: {why}")]
pub struct SchemaLoadError {
    /// The schema file.
    pub file: &'static str,
    /// What went wrong.
    pub why: String,
}

struct Compiled {
    schemas: Schemas,
    /// Per version: (root, entity definition).
    indexes: Vec<(SchemaVersion, SchemaIndex, SchemaIndex)>,
}

fn compiled() -> Result<&'static Compiled, &'static SchemaLoadError> {
    static COMPILED: OnceLock<Result<Compiled, SchemaLoadError>> = OnceLock::new();
    COMPILED.get_or_init(compile).as_ref()
}

fn compile() -> Result<Compiled, SchemaLoadError> {
    let mut schemas = Schemas::new();
    let mut indexes = Vec::new();
    for version in SCHEMA_VERSIONS {
        let fail = |why: String| SchemaLoadError {
            file: version.file,
            why,
        };
        let json: Value =
            serde_norway::from_str(version.yaml).map_err(|e| fail(format!("not YAML: {e}")))?;
        let mut compiler = Compiler::new();
        compiler.enable_format_assertions();
        compiler
            .add_resource(version.id, json)
            .map_err(|e| fail(e.to_string()))?;
        let root = compiler
            .compile(version.id, &mut schemas)
            .map_err(|e| fail(e.to_string()))?;
        let entity = compiler
            .compile(
                &format!("{}{}", version.id, version.entity_pointer),
                &mut schemas,
            )
            .map_err(|e| fail(e.to_string()))?;
        indexes.push((version, root, entity));
    }
    Ok(Compiled { schemas, indexes })
}

/// Checks that every embedded schema loads (for tests and `--self-check` style callers).
pub fn check_embedded_schemas() -> Result<(), SchemaLoadError> {
    compiled().map(|_| ()).map_err(Clone::clone)
}

/// Every violation of any embedded schema version, in no particular order.
pub(super) fn violations(value: &Value, shape: Shape) -> Result<Vec<Violation>, SchemaLoadError> {
    let compiled = compiled().map_err(Clone::clone)?;
    let mut merged: BTreeMap<(String, String), Violation> = BTreeMap::new();
    for (version, root, entity) in &compiled.indexes {
        let mut found = Vec::new();
        match (shape, value) {
            (Shape::Document, _) => {
                collect(
                    &compiled.schemas,
                    value,
                    *root,
                    &Path::default(),
                    &mut found,
                );
            }
            (Shape::Entity, _) => {
                collect(
                    &compiled.schemas,
                    value,
                    *entity,
                    &Path::default(),
                    &mut found,
                );
            }
            (Shape::Entities, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    collect(
                        &compiled.schemas,
                        item,
                        *entity,
                        &Path::default().index(i),
                        &mut found,
                    );
                }
            }
            (Shape::Entities, _) => {}
        }
        for (path, message) in found {
            merged
                .entry((path.to_string(), message.clone()))
                .or_insert_with(|| Violation {
                    path,
                    message,
                    versions: Vec::new(),
                })
                .versions
                .push(version.label);
        }
    }
    Ok(merged.into_values().collect())
}

fn collect(
    schemas: &Schemas,
    value: &Value,
    index: SchemaIndex,
    base: &Path,
    out: &mut Vec<(Path, String)>,
) {
    if !schemas.contains(index) {
        return;
    }
    if let Err(error) = schemas.validate(value, index) {
        leaves(&error, base, out);
    }
}

/// The innermost errors: a `$ref` or a group only wraps its causes.
fn leaves(error: &ValidationError<'_, '_>, base: &Path, out: &mut Vec<(Path, String)>) {
    if !error.causes.is_empty() {
        for cause in &error.causes {
            leaves(cause, base, out);
        }
        return;
    }
    let mut path = base.clone();
    for token in &error.instance_location.tokens {
        path = match token {
            InstanceToken::Prop(name) => path.key(name),
            InstanceToken::Item(i) => path.index(*i),
        };
    }
    match &error.kind {
        ErrorKind::Group | ErrorKind::Schema { .. } | ErrorKind::Reference { .. } => {}
        // One missing member is reported at the member, like the rest of lint does.
        ErrorKind::Required { want } if want.len() == 1 => {
            let name = want[0];
            out.push((
                path.key(name),
                format!("{name} is required{}", hint(&path.key(name), &error.kind)),
            ));
        }
        kind => {
            let hint = hint(&path, kind);
            out.push((path, format!("{}{hint}", describe(kind))));
        }
    }
}

fn describe(kind: &ErrorKind<'_, '_>) -> String {
    match kind {
        ErrorKind::Pattern { got, want } => format!(
            "{:?} does not match the pattern {want}",
            truncate_for_message(got)
        ),
        ErrorKind::AdditionalProperties { got } => {
            let names: Vec<String> = got
                .iter()
                .map(|n| format!("{:?}", truncate_for_message(n)))
                .collect();
            format!(
                "no member other than those the schema names is allowed here, found {}",
                names.join(", ")
            )
        }
        ErrorKind::Required { want } => format!("missing required members {}", want.join(", ")),
        ErrorKind::Format { got, want, .. } => {
            let got = match got.as_ref() {
                Value::String(s) => format!("{:?}", truncate_for_message(s)),
                other => truncate_for_message(&other.to_string()),
            };
            format!("{got} is not a valid {want}")
        }
        other => other.to_string(),
    }
}

/// How to fix it, for the violations members really make.
fn hint(path: &Path, kind: &ErrorKind<'_, '_>) -> String {
    let last = path.0.last().and_then(|s| match s {
        crate::json::Seg::Key(k) => Some(k.as_str()),
        crate::json::Seg::Index(_) => None,
    });
    let parent_is = |name: &str| {
        path.0.len() >= 2
            && matches!(&path.0[path.0.len() - 2], crate::json::Seg::Key(k) if k == name)
    };
    let text = match (kind, last) {
        (ErrorKind::Pattern { .. }, Some("digest")) => {
            "write the digest as standard base64 with padding (44 characters, + and /, ending in =), as `fedtls pin CERT` prints it; the SUNET authorization server drops the whole document otherwise"
        }
        (ErrorKind::Pattern { .. }, _) if parent_is("tags") => {
            "a tag is 1 to 64 characters of a-z and 0-9"
        }
        (ErrorKind::Pattern { .. }, Some("version")) => "use \"1.0.0\"",
        (ErrorKind::AdditionalProperties { .. }, _) if parent_is("pins") => {
            "a pin is exactly {\"alg\": \"sha256\", \"digest\": \"...\"}: remove the other members (the legacy {\"name\", \"value\"} form is not allowed any more)"
        }
        (ErrorKind::AdditionalProperties { .. }, _) if parent_is("issuers") => {
            "an issuer is exactly {\"x509certificate\": PEM}: remove the other members"
        }
        (ErrorKind::Required { .. }, Some("alg" | "digest")) => {
            "write each pin as {\"alg\": \"sha256\", \"digest\": \"<standard base64 SHA-256 of the SubjectPublicKeyInfo>\"}"
        }
        (ErrorKind::Enum { .. }, Some("alg")) => "use \"sha256\"",
        (ErrorKind::Format { .. }, _) => "write an absolute URI such as \"https://example.org/\"",
        (ErrorKind::Type { .. }, _) => "change the value to the type the schema names",
        (ErrorKind::Minimum { .. }, Some("cache_ttl")) => {
            "give the number of seconds to cache, e.g. 3600"
        }
        _ => return String::new(),
    };
    format!(": {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(json: &str, shape: Shape) -> Vec<String> {
        let value: Value = serde_json::from_str(json).unwrap();
        violations(&value, shape)
            .unwrap()
            .iter()
            .map(|v| format!("{}: {}", v.path, v.describe()))
            .collect()
    }

    #[test]
    fn embedded_schemas_load() {
        check_embedded_schemas().unwrap();
    }

    #[test]
    fn a_minimal_document_is_valid_under_both() {
        assert!(messages(r#"{"version": "1.0.0", "entities": []}"#, Shape::Document).is_empty());
    }

    #[test]
    fn both_versions_are_named() {
        let found = messages(
            r#"{"version": "1.0.0", "entities": [{"entity_id": "https://a.example", "issuers": [],
                "servers": [{"base_uri": "https://a.example/", "pins": [{"alg": "sha256",
                "digest": "HiMkrb4phPSP-OvGqmZd6sGvy7AUn4k3XEe8OMBrzt8"}]}]}]}"#,
            Shape::Document,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("$.entities[0].servers[0].pins[0].digest: ")
                && found[0].contains("Moa production schema 712c5bf and MATF schema HEAD c4134bc"),
            "{found:?}"
        );
    }

    #[test]
    fn one_entity_and_arrays_use_the_entity_definition() {
        let found = messages(
            r#"{"issuers": [{"x509certificate": "x", "note": 1}]}"#,
            Shape::Entity,
        );
        assert!(
            found.iter().any(|m| m.starts_with("$.entity_id: ")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|m| m.starts_with("$.issuers[0]: ") && m.contains("\"note\"")),
            "{found:?}"
        );
        let found = messages(
            r#"[{"entity_id": "https://a.example", "issuers": 3}]"#,
            Shape::Entities,
        );
        assert!(
            found.iter().any(|m| m.starts_with("$[0].issuers: ")),
            "{found:?}"
        );
    }
}
