//! Lint of a member's metadata before upload: every problem is reported with a JSON path
//! (`$.entities[2].clients[0].pins[1].digest`), a severity and a message that says how to fix it.
//!
//! The lint works on raw JSON, not on a typed model, so that one run reports everything that is
//! wrong instead of stopping at the first type error. Unknown members are allowed (MATF says
//! they must be ignored), but a near-miss of a known name (`entityid`, `base_url`) is flagged.
//!
//! Accepted inputs: a whole document `{"version", "entities": [...]}`, a single entity object,
//! or a bare array of entities.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use crate::json::{Path, Seg, parse_recording_duplicates as parse_json};
use crate::pin::{Pin, sha256, truncate_for_message};

mod certificates;
mod cross;
mod document;
mod endpoint;
mod entity;
mod schema;
mod uri;

pub use schema::{SCHEMA_VERSIONS, SchemaLoadError, SchemaVersion, check_embedded_schemas};

pub(crate) use uri::{is_lowercase_dns_name, parse_absolute_uri};

/// The extension member that ties an entity to the DNS domains it may speak for (Kontosynk).
pub const SAML_SCOPE_EXTENSION: &str = "https://kontosynk.internetstiftelsen.se/saml-scope";

/// Which rules to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// The MATF (RFC 9932) metadata schema.
    Matf,
    /// MATF plus Skolfederation's Moa technical profile: strengthened tags, `organization`,
    /// `organization_id` and the saml-scope extension.
    Moa,
}

/// A profile name other than `matf` or `moa`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lint profile {0:?}: expected \"matf\" or \"moa\"")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    /// Parses `matf` or `moa` (case-insensitive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "matf" => Ok(Self::Matf),
            "moa" => Ok(Self::Moa),
            _ => Err(UnknownProfile(truncate_for_message(text))),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Matf => "matf",
            Self::Moa => "moa",
        })
    }
}

/// How bad a problem is: errors make the operator refuse the upload, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The metadata is wrong and must be fixed.
    Error,
    /// Suspicious or deprecated, but acceptable.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// JSONPath-style location, e.g. `$.entities[0].servers[1].base_uri`; `$` for the whole
    /// input and for certificates given to the lint that match no location.
    pub path: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `error: PATH: MESSAGE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity, self.path, self.message)
    }
}

/// What to lint against.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// The rule set.
    pub profile: Profile,
    /// The current time, Unix seconds (certificate validity is checked against it).
    pub now: i64,
    /// Certificates the member will use. Each end-entity certificate must match a pin in the
    /// file and chain to that entity's issuers; when any are given, pins that match none of
    /// them are warned about. CA certificates that match no pin are used as intermediates.
    pub certificates: Vec<CertificateDer<'static>>,
    /// Warn about certificates that expire within this many days.
    pub expiry_warning_days: i64,
    /// Lint a whole federation aggregate (the operator's view): no "organization differs"
    /// warnings between members. Also on automatically when the input holds entities of two or
    /// more `organization_id`s.
    pub aggregate: bool,
}

impl LintOptions {
    /// Options for `profile` at time `now`, without certificates, warning 30 days before expiry.
    pub fn new(profile: Profile, now: i64) -> Self {
        Self {
            profile,
            now,
            certificates: Vec::new(),
            expiry_warning_days: 30,
            aggregate: false,
        }
    }
}

/// The outcome of [`lint`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LintReport {
    /// Every problem, in order of appearance in the input.
    pub problems: Vec<Problem>,
    /// SHA-1 of the exact input bytes, lowercase hex (the operator confirms it by phone).
    pub sha1_hex: String,
    /// SHA-256 of the exact input bytes, lowercase hex.
    pub sha256_hex: String,
    /// Whether the input was linted as a whole aggregate ([`LintOptions::aggregate`], or
    /// because it holds several organizations).
    pub aggregate: bool,
    /// Endpoints that list more than one pin (a certificate being renewed): JSON path of the
    /// endpoint and the number of pins.
    pub rotating: Vec<(String, usize)>,
    /// The document's `cache_ttl`, when the input is a whole document that has a valid one.
    pub cache_ttl: Option<u64>,
}

impl LintReport {
    /// True when at least one problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == severity)
            .count()
    }
}

/// Lints metadata bytes. Never panics; input that is not JSON yields one error at `$`.
pub fn lint(input: &[u8], opts: &LintOptions) -> LintReport {
    let sha1_hex = hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, input).as_ref());
    let sha256_hex = hex(&sha256(input));
    let mut linter = Linter::new(opts);
    let root = Path::default();

    let mut body = input;
    if let Some(rest) = input.strip_prefix(b"\xEF\xBB\xBF") {
        linter.warn(
            &root,
            "the file starts with a UTF-8 byte order mark: save it without one, some JSON readers refuse it",
        );
        body = rest;
    }
    let value = match parse_json(body) {
        Ok((value, duplicates)) => {
            for path in duplicates {
                let name = match path.0.last() {
                    Some(Seg::Key(k)) => k.clone(),
                    _ => String::new(),
                };
                linter.error(
                    &path,
                    format!(
                        "member {name:?} appears more than once in this object: JSON readers disagree on which one counts; keep exactly one"
                    ),
                );
            }
            linter.top(&value);
            linter.cross_checks();
            linter.certificate_checks();
            linter.schema_checks(&value);
            Some(value)
        }
        Err(e) => {
            linter.error(&root, format!("not valid JSON: {e}"));
            None
        }
    };

    let aggregate = linter.aggregate();
    let rotating = linter.rotating();
    let cache_ttl = value
        .as_ref()
        .and_then(|v| v.get("cache_ttl"))
        .and_then(Value::as_u64)
        .filter(|_| value.as_ref().is_some_and(|v| v.get("entities").is_some()));
    let mut found = linter.found;
    if let Some(value) = &value {
        let mut keyed: Vec<_> = found
            .into_iter()
            .map(|f| (ordinal(value, &f.path), f))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        found = keyed.into_iter().map(|(_, f)| f).collect();
    }
    LintReport {
        problems: found
            .into_iter()
            .map(|f| Problem {
                severity: f.severity,
                path: f.path.to_string(),
                message: f.message,
            })
            .collect(),
        sha1_hex,
        sha256_hex,
        aggregate,
        rotating,
        cache_ttl,
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Position of a path in document order: member positions as written, array indices; a member
/// that is missing sorts after the members that are present.
fn ordinal(root: &Value, path: &Path) -> Vec<usize> {
    let mut out = Vec::with_capacity(path.0.len());
    let mut current = Some(root);
    for seg in &path.0 {
        match (seg, current) {
            (Seg::Key(key), Some(Value::Object(map))) => {
                out.push(map.keys().position(|k| k == key).unwrap_or(map.len()));
                current = map.get(key);
            }
            (Seg::Index(i), Some(Value::Array(items))) => {
                out.push(*i);
                current = items.get(*i);
            }
            _ => {
                out.push(usize::MAX);
                current = None;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The linter

const DOCUMENT_MEMBERS: &[&str] = &["version", "cache_ttl", "entities", "iat", "exp", "iss"];
const ENTITY_MEMBERS: &[&str] = &[
    "entity_id",
    "organization",
    "organization_id",
    "issuers",
    "servers",
    "clients",
    "extensions",
];
const ISSUER_MEMBERS: &[&str] = &["x509certificate"];
const ENDPOINT_MEMBERS: &[&str] = &["description", "base_uri", "pins", "tags"];
const PIN_MEMBERS: &[&str] = &["alg", "digest", "name", "value"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    Client,
}

impl Role {
    fn member(self) -> &'static str {
        match self {
            Self::Server => "servers",
            Self::Client => "clients",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

struct Found {
    path: Path,
    severity: Severity,
    message: String,
}

struct EntityFacts {
    entity_id: Option<String>,
    organization: Option<(String, Path)>,
    organization_id: Option<(String, Path)>,
    /// Some endpoint's pins are missing or unreadable (checks that compare certificates with
    /// the pins stay quiet then: the pin error is the one to fix).
    pins_incomplete: bool,
    /// DER of every issuer certificate that parsed.
    issuers: Vec<Vec<u8>>,
}

struct IssuerFacts {
    entity: usize,
    path: Path,
    der: Vec<u8>,
    subject_der: Vec<u8>,
    subject: String,
    info: crate::x509::CertInfo,
}

/// A server with a usable `base_uri` host (for the host-name check).
struct ServerSite {
    entity: usize,
    /// Path of the endpoint.
    endpoint: Path,
    host: String,
}

struct PinSite {
    entity: usize,
    role: Role,
    /// Path of the endpoint.
    endpoint: Path,
    /// Path of the digest string.
    path: Path,
    pin: Pin,
}

struct Linter<'o> {
    opts: &'o LintOptions,
    found: Vec<Found>,
    entities: Vec<EntityFacts>,
    entity_ids: HashMap<String, Path>,
    issuers: Vec<IssuerFacts>,
    pins: Vec<PinSite>,
    servers: Vec<ServerSite>,
    /// Clients tagged `gnapv1` (they fetch tokens from a GNAP server such as Skolverket's).
    gnap_clients: Vec<Path>,
}

impl<'o> Linter<'o> {
    fn new(opts: &'o LintOptions) -> Self {
        Self {
            opts,
            found: Vec::new(),
            entities: Vec::new(),
            entity_ids: HashMap::new(),
            issuers: Vec::new(),
            pins: Vec::new(),
            gnap_clients: Vec::new(),
            servers: Vec::new(),
        }
    }

    fn moa(&self) -> bool {
        self.opts.profile == Profile::Moa
    }

    fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.push(path, Severity::Error, message.into());
    }

    fn warn(&mut self, path: &Path, message: impl Into<String>) {
        self.push(path, Severity::Warning, message.into());
    }

    fn push(&mut self, path: &Path, severity: Severity, message: String) {
        self.found.push(Found {
            path: path.clone(),
            severity,
            message,
        });
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_jsonpath() {
        let path = Path::default()
            .key("entities")
            .index(2)
            .key("extensions")
            .key(SAML_SCOPE_EXTENSION)
            .key("scope")
            .index(0);
        assert_eq!(
            path.to_string(),
            "$.entities[2].extensions[\"https://kontosynk.internetstiftelsen.se/saml-scope\"].scope[0]"
        );
        assert_eq!(Path::default().to_string(), "$");
    }

    #[test]
    fn duplicate_members_are_found_with_their_path() {
        let (_, dups) = parse_json(br#"{"entities":[{"entity_id":"a","entity_id":"b"}]}"#).unwrap();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].to_string(), "$.entities[0].entity_id");
    }

    #[test]
    fn garbage_never_panics() {
        let opts = LintOptions::new(Profile::Moa, 0);
        for input in [
            &b""[..],
            b"\xEF\xBB\xBF",
            b"null",
            b"[1, \"x\", null, {}]",
            b"{\"entities\": {}}",
            b"{\"entities\": [[], 3]}",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            b"{\"version\": 1, \"cache_ttl\": -1.5, \"entities\": [{\"issuers\": [1, {\"x509certificate\": 3}], \"servers\": [{\"pins\": [{}], \"tags\": 7}]}]}",
            b"\xff\xfe",
        ] {
            let report = lint(input, &opts);
            assert!(report.has_errors(), "{:?}", String::from_utf8_lossy(input));
        }
        let deep = "[".repeat(100_000);
        assert!(lint(deep.as_bytes(), &opts).has_errors());
    }

    #[test]
    fn digests_of_the_exact_bytes() {
        let report = lint(b"abc", &LintOptions::new(Profile::Matf, 0));
        assert_eq!(report.sha1_hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            report.sha256_hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.problems[0].path, "$");
    }
}
