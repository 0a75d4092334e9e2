//! Lint of a member's metadata before upload: every problem is reported with a JSON path
//! (`$.entities[2].clients[0].pins[1].digest`), a severity and a message that says how to fix it.
//!
//! The lint works on raw JSON, not on a typed model, so that one run reports everything that is
//! wrong instead of stopping at the first type error. Unknown members are allowed (MATF says
//! they must be ignored), but a near-miss of a known name (`entityid`, `base_url`) is flagged.
//!
//! Accepted inputs: a whole document `{"version", "entities": [...]}`, a single entity object,
//! or a bare array of entities.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use rustls_pki_types::CertificateDer;
use serde_json::{Map, Value};

use crate::claims::Rfc3339;
use crate::json::{Path, Seg, kind as type_name, parse_recording_duplicates as parse_json};
use crate::names::{MOA_STRENGTHENED_TAGS, Tag, is_moa_organization_id};
use crate::pin::{Pin, pem_certificates, sha256, truncate_for_message};
use crate::tls::MAX_CHAIN_LINKS;
use crate::tls::chain::{ChainError, chains_to_issuers};
use crate::x509::{self, CertInfo};

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
}

impl LintOptions {
    /// Options for `profile` at time `now`, without certificates, warning 30 days before expiry.
    pub fn new(profile: Profile, now: i64) -> Self {
        Self {
            profile,
            now,
            certificates: Vec::new(),
            expiry_warning_days: 30,
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
            Some(value)
        }
        Err(e) => {
            linter.error(&root, format!("not valid JSON: {e}"));
            None
        }
    };

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
// Shared syntax checks (also used by `entity`)

/// The parts of an absolute URI that the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AbsoluteUri {
    /// The scheme, lowercased.
    pub scheme: String,
    /// The host of the authority, if there is an authority.
    pub host: Option<String>,
}

/// Parses an absolute URI (`scheme:rest`, RFC 3986) with a light touch: enough to tell an
/// `https://host/path` URL from a relative path, a bare host name or text with spaces.
pub(crate) fn parse_absolute_uri(text: &str) -> Result<AbsoluteUri, &'static str> {
    if text.is_empty() {
        return Err("it is empty");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters");
    }
    let Some((scheme, rest)) = text.split_once(':') else {
        return Err("it has no scheme (like https://)");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err("it has no scheme (like https://)");
    }
    let scheme = scheme.to_ascii_lowercase();
    let host = match rest.strip_prefix("//") {
        Some(after) => {
            let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
            let host_port = authority.rsplit('@').next().unwrap_or_default();
            let host = if let Some(bracketed) = host_port.strip_prefix('[') {
                let Some((inside, after_bracket)) = bracketed.split_once(']') else {
                    return Err("its IPv6 host has no closing bracket");
                };
                check_port(after_bracket)?;
                inside
            } else {
                let (host, port) = match host_port.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (host_port, None),
                };
                if let Some(port) = port {
                    check_port(&format!(":{port}"))?;
                }
                host
            };
            Some(host.to_owned())
        }
        None => None,
    };
    if matches!(scheme.as_str(), "http" | "https") && host.as_deref().is_none_or(str::is_empty) {
        return Err("it has no host (expected https://host/...)");
    }
    Ok(AbsoluteUri { scheme, host })
}

fn check_port(text: &str) -> Result<(), &'static str> {
    match text.strip_prefix(':') {
        None if text.is_empty() => Ok(()),
        Some(port) if port.is_empty() || port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("its port is not a number"),
    }
}

/// A lowercase DNS name with at least two labels: `skola.example.se`.
pub(crate) fn is_lowercase_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let labels_ok = labels.iter().all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    let tld_ok = labels
        .last()
        .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && labels.len() >= 2 && tld_ok
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
    /// DER of every issuer certificate that parsed.
    issuers: Vec<Vec<u8>>,
}

struct IssuerFacts {
    entity: usize,
    path: Path,
    der: Vec<u8>,
    subject_der: Vec<u8>,
    subject: String,
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

    fn top(&mut self, value: &Value) {
        let root = Path::default();
        match value {
            Value::Array(items) => {
                if items.is_empty() {
                    self.warn(&root, "the array holds no entities");
                }
                for (i, item) in items.iter().enumerate() {
                    self.entity(item, root.index(i));
                }
            }
            Value::Object(map)
                if map.contains_key("entities")
                    || (!map.contains_key("entity_id")
                        && (map.contains_key("version") || map.contains_key("cache_ttl"))) =>
            {
                self.document(map);
            }
            Value::Object(_) => self.entity(value, root),
            other => self.error(
                &root,
                format!(
                    "expected a metadata document {{\"version\": \"1.0.0\", \"entities\": [...]}}, one entity object or an array of entities, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn document(&mut self, map: &Map<String, Value>) {
        let root = Path::default();
        self.near_misses(map, DOCUMENT_MEMBERS, &root);
        let path = root.key("version");
        match map.get("version") {
            None => self.error(&path, "version is required: add \"version\": \"1.0.0\""),
            Some(Value::String(v)) if is_semver(v) => {}
            Some(Value::String(v)) => self.error(
                &path,
                format!(
                    "version {:?} is not MAJOR.MINOR.PATCH: use \"1.0.0\"",
                    truncate_for_message(v)
                ),
            ),
            Some(other) => self.error(
                &path,
                format!(
                    "version must be a string such as \"1.0.0\", found {}",
                    type_name(other)
                ),
            ),
        }
        if let Some(ttl) = map.get("cache_ttl") {
            let path = root.key("cache_ttl");
            match ttl {
                Value::Number(n) if n.as_u64().is_some() => {}
                Value::Number(n) if n.as_i64().is_some() => self.error(
                    &path,
                    "cache_ttl must not be negative: give the number of seconds to cache, e.g. 3600",
                ),
                other => self.error(
                    &path,
                    format!(
                        "cache_ttl must be a whole number of seconds (e.g. 3600), found {}",
                        type_name(other)
                    ),
                ),
            }
        }
        let path = root.key("entities");
        match map.get("entities") {
            None => self.error(&path, "entities is required: an array of entity objects"),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    self.warn(&path, "entities is empty: the document describes nothing");
                }
                for (i, item) in items.iter().enumerate() {
                    self.entity(item, path.index(i));
                }
            }
            Some(other) => self.error(
                &path,
                format!(
                    "entities must be an array of entity objects, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn entity(&mut self, value: &Value, path: Path) {
        let index = self.entities.len();
        self.entities.push(EntityFacts {
            entity_id: None,
            organization: None,
            issuers: Vec::new(),
        });
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "an entity must be a JSON object, found {}",
                    type_name(value)
                ),
            );
            return;
        };
        self.near_misses(map, ENTITY_MEMBERS, &path);
        self.entity_id(map, &path, index);
        self.organization(map, &path, index);

        let issuers_path = path.key("issuers");
        match map.get("issuers") {
            None => self.error(
                &issuers_path,
                "issuers is required: list the root CA of the entity's certificates as {\"x509certificate\": \"-----BEGIN CERTIFICATE-----...\"}, or the certificate itself if it is self-signed (the array may be empty)",
            ),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    self.warn(
                        &issuers_path,
                        "issuers is empty: peers that validate the certificate chain, and the SUNET authorization server (which matches issuers), will refuse this entity's certificates",
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    self.issuer(item, issuers_path.index(i), index);
                }
            }
            Some(other) => self.error(
                &issuers_path,
                format!(
                    "issuers must be an array of {{\"x509certificate\": PEM}} objects, found {}",
                    type_name(other)
                ),
            ),
        }

        let mut endpoints = 0;
        for role in [Role::Server, Role::Client] {
            let role_path = path.key(role.member());
            match map.get(role.member()) {
                None => {}
                Some(Value::Array(items)) => {
                    endpoints += items.len();
                    for (i, item) in items.iter().enumerate() {
                        self.endpoint(item, role_path.index(i), index, role);
                    }
                }
                Some(other) => {
                    // Already an error; do not also say the entity has no endpoints.
                    endpoints += 1;
                    self.error(
                        &role_path,
                        format!(
                            "{} must be an array of endpoint objects, found {}",
                            role.member(),
                            type_name(other)
                        ),
                    );
                }
            }
        }
        if endpoints == 0 {
            self.warn(
                &path,
                "the entity has neither servers nor clients: add the endpoints it is for",
            );
        }

        let ext_path = path.key("extensions");
        match map.get("extensions") {
            None => {}
            Some(Value::Object(ext)) => {
                if self.moa()
                    && let Some(scope) = ext.get(SAML_SCOPE_EXTENSION)
                {
                    self.saml_scope(scope, ext_path.key(SAML_SCOPE_EXTENSION));
                }
            }
            Some(other) => self.error(
                &ext_path,
                format!(
                    "extensions must be an object keyed by extension URI, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn entity_id(&mut self, map: &Map<String, Value>, path: &Path, index: usize) {
        let path = path.key("entity_id");
        match map.get("entity_id") {
            None => self.error(
                &path,
                "entity_id is required: the entity's unique URI, e.g. \"https://example.org/metadata\"",
            ),
            Some(Value::String(id)) => {
                match parse_absolute_uri(id) {
                    Err(why) => self.error(
                        &path,
                        format!(
                            "entity_id {:?} is not an absolute URI ({why}): use a URI such as \"https://example.org/metadata\"",
                            truncate_for_message(id)
                        ),
                    ),
                    Ok(uri) if uri.scheme != "https" => self.warn(
                        &path,
                        format!(
                            "entity_id {:?} is not an https URI: prefer an https URI under a domain the member controls",
                            truncate_for_message(id)
                        ),
                    ),
                    Ok(_) => {}
                }
                if let Some(first) = self.entity_ids.get(id) {
                    let message = format!(
                        "duplicate entity_id {:?}: also used at {first}; every entity needs its own entity_id",
                        truncate_for_message(id)
                    );
                    self.error(&path, message);
                } else {
                    self.entity_ids.insert(id.clone(), path.clone());
                }
                if let Some(facts) = self.entities.get_mut(index) {
                    facts.entity_id = Some(id.clone());
                }
            }
            Some(other) => self.error(
                &path,
                format!("entity_id must be a string (a URI), found {}", type_name(other)),
            ),
        }
    }

    fn organization(&mut self, map: &Map<String, Value>, path: &Path, index: usize) {
        let moa = self.moa();
        let org_path = path.key("organization");
        match map.get("organization") {
            None if moa => self.error(
                &org_path,
                "organization is required by the Moa profile: add the member's legal name",
            ),
            None => {}
            Some(Value::String(name)) if name.trim().is_empty() => {
                let message = "organization is empty: give the member's legal name";
                if moa {
                    self.error(&org_path, message);
                } else {
                    self.warn(&org_path, message);
                }
            }
            Some(Value::String(name)) => {
                if let Some(facts) = self.entities.get_mut(index) {
                    facts.organization = Some((name.clone(), org_path.clone()));
                }
            }
            Some(other) => self.error(
                &org_path,
                format!(
                    "organization must be a string (the member's legal name), found {}",
                    type_name(other)
                ),
            ),
        }

        let id_path = path.key("organization_id");
        match map.get("organization_id") {
            None if moa => self.error(
                &id_path,
                "organization_id is required by the Moa profile: the country code and organization number, e.g. \"SE2021004185\"",
            ),
            None => {}
            Some(Value::String(id)) if moa && !is_moa_organization_id(id) => self.error(
                &id_path,
                format!(
                    "organization_id {:?} is not LLYYMMDDXXXX: two capital letters of country code and the 10-digit organization number without a dash, e.g. \"SE2021004185\"",
                    truncate_for_message(id)
                ),
            ),
            Some(Value::String(_)) => {}
            Some(other) => self.error(
                &id_path,
                format!(
                    "organization_id must be a string such as \"SE2021004185\", found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn issuer(&mut self, value: &Value, path: Path, entity: usize) {
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "an issuer must be an object {{\"x509certificate\": PEM}}, found {}",
                    type_name(value)
                ),
            );
            return;
        };
        self.near_misses(map, ISSUER_MEMBERS, &path);
        let path = path.key("x509certificate");
        let pem = match map.get("x509certificate") {
            None => {
                self.error(
                    &path,
                    "x509certificate is required: the issuer certificate in PEM form",
                );
                return;
            }
            Some(Value::String(pem)) => pem,
            Some(other) => {
                self.error(
                    &path,
                    format!(
                        "x509certificate must be a PEM string, found {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        if pem.contains("PRIVATE KEY-----") {
            self.error(
                &path,
                "this contains a PRIVATE KEY: remove it at once, never publish it, and treat the key as compromised",
            );
        }
        let certs = match pem_certificates(pem.as_bytes()) {
            Ok(certs) => certs,
            Err(_) => {
                self.error(
                    &path,
                    "not a PEM certificate: expected \"-----BEGIN CERTIFICATE-----\\n...\\n-----END CERTIFICATE-----\\n\" with \\n line breaks",
                );
                return;
            }
        };
        let [cert] = certs.as_slice() else {
            self.error(
                &path,
                format!(
                    "holds {} certificates: list each issuer as its own {{\"x509certificate\": ...}} entry (usually only the root CA)",
                    certs.len()
                ),
            );
            return;
        };
        let info = match x509::inspect(cert) {
            Ok(info) => info,
            Err(e) => {
                self.error(&path, format!("the certificate cannot be read: {e}"));
                return;
            }
        };
        if !info.is_ca && !info.self_signed {
            self.error(
                &path,
                format!(
                    "{} is neither a CA certificate (basicConstraints cA) nor self-signed: list the root CA that issued the entity's certificates, or the certificate itself if it is self-signed",
                    info.subject
                ),
            );
        }
        self.validity(&path, &info, "the issuer certificate");
        if let Err(why) = x509::signature_is_sane(&info) {
            self.error(&path, format!("the issuer certificate is {why}"));
        }
        if let Some(facts) = self.entities.get_mut(entity) {
            facts.issuers.push(cert.to_vec());
        }
        self.issuers.push(IssuerFacts {
            entity,
            path,
            der: cert.to_vec(),
            subject_der: info.subject_der,
            subject: info.subject,
        });
    }

    fn validity(&mut self, path: &Path, info: &CertInfo, what: &str) {
        if let Some((severity, message)) = validity_problem(info, what, self.opts) {
            self.push(path, severity, message);
        }
    }

    fn endpoint(&mut self, value: &Value, path: Path, entity: usize, role: Role) {
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "a {} must be a JSON object, found {}",
                    role.noun(),
                    type_name(value)
                ),
            );
            return;
        };
        self.near_misses(map, ENDPOINT_MEMBERS, &path);

        if let Some(description) = map.get("description")
            && !description.is_string()
        {
            self.error(
                &path.key("description"),
                format!(
                    "description must be a string, found {}",
                    type_name(description)
                ),
            );
        }

        let uri_path = path.key("base_uri");
        match map.get("base_uri") {
            None if role == Role::Server => self.error(
                &uri_path,
                "base_uri is required for a server: the https URL clients connect to",
            ),
            None => {}
            Some(Value::String(uri)) => match parse_absolute_uri(uri) {
                Err(why) => self.error(
                    &uri_path,
                    format!(
                        "base_uri {:?} is not an absolute URL ({why}): write it like \"https://api.example.org/ss12000/v2.0/\"",
                        truncate_for_message(uri)
                    ),
                ),
                Ok(u) if u.scheme == "https" => {}
                Ok(u) if u.scheme == "http" => self.warn(
                    &uri_path,
                    "base_uri uses http: FedTLS peers authenticate with TLS, use https",
                ),
                Ok(u) => self.error(
                    &uri_path,
                    format!(
                        "base_uri has scheme {:?}: use an https URL",
                        truncate_for_message(&u.scheme)
                    ),
                ),
            },
            Some(other) => self.error(
                &uri_path,
                format!(
                    "base_uri must be a string (an https URL), found {}",
                    type_name(other)
                ),
            ),
        }

        let pins_path = path.key("pins");
        match map.get("pins") {
            None => self.error(
                &pins_path,
                "pins is required: [{\"alg\": \"sha256\", \"digest\": \"<base64 SHA-256 of the certificate's public key>\"}]",
            ),
            Some(Value::Array(items)) if items.is_empty() => self.error(
                &pins_path,
                format!(
                    "pins is empty: add the pin of the {}'s certificate",
                    role.noun()
                ),
            ),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.pin(item, pins_path.index(i), &path, entity, role);
                }
            }
            Some(other) => self.error(
                &pins_path,
                format!(
                    "pins must be an array of {{\"alg\", \"digest\"}} objects, found {}",
                    type_name(other)
                ),
            ),
        }

        self.tags(map.get("tags"), path.key("tags"), role);
    }

    fn pin(&mut self, value: &Value, path: Path, endpoint: &Path, entity: usize, role: Role) {
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "a pin must be an object {{\"alg\": \"sha256\", \"digest\": \"...\"}}, found {}",
                    type_name(value)
                ),
            );
            return;
        };
        self.near_misses(map, PIN_MEMBERS, &path);
        let modern = map.contains_key("alg") || map.contains_key("digest");
        let legacy = map.contains_key("name") || map.contains_key("value");
        let (alg_key, digest_key) = if modern {
            ("alg", "digest")
        } else if legacy {
            self.warn(
                &path,
                "legacy pin form {\"name\", \"value\"}: write {\"alg\": \"sha256\", \"digest\": \"...\"} instead",
            );
            ("name", "value")
        } else {
            self.error(
                &path,
                "a pin needs alg and digest: {\"alg\": \"sha256\", \"digest\": \"<base64 SHA-256>\"}",
            );
            return;
        };

        let alg_path = path.key(alg_key);
        match map.get(alg_key) {
            None => self.error(&alg_path, format!("{alg_key} is required: \"sha256\"")),
            Some(Value::String(alg)) if alg == "sha256" => {}
            Some(Value::String(alg))
                if alg.eq_ignore_ascii_case("sha256") || alg.eq_ignore_ascii_case("sha-256") =>
            {
                self.warn(&alg_path, format!("write {alg_key} as \"sha256\""));
            }
            Some(Value::String(alg)) => self.error(
                &alg_path,
                format!(
                    "unsupported pin algorithm {:?}: only \"sha256\" is defined",
                    truncate_for_message(alg)
                ),
            ),
            Some(other) => self.error(
                &alg_path,
                format!(
                    "{alg_key} must be the string \"sha256\", found {}",
                    type_name(other)
                ),
            ),
        }

        let digest_path = path.key(digest_key);
        match map.get(digest_key) {
            None => self.error(
                &digest_path,
                format!(
                    "{digest_key} is required: the standard base64 SHA-256 of the certificate's SubjectPublicKeyInfo"
                ),
            ),
            Some(Value::String(text)) => match Pin::parse_digest(text) {
                Ok(pin) => {
                    let canonical = pin.to_string();
                    if *text != canonical {
                        self.warn(
                            &digest_path,
                            format!(
                                "write the digest as standard base64 with padding, as RFC 7469 does: \"{canonical}\""
                            ),
                        );
                    }
                    self.pins.push(PinSite {
                        entity,
                        role,
                        endpoint: endpoint.clone(),
                        path: digest_path,
                        pin,
                    });
                }
                Err(_) => self.error(
                    &digest_path,
                    format!(
                        "{:?} is not a SHA-256 pin: expected the standard base64 (44 characters with padding) of the 32-byte SHA-256 of the certificate's SubjectPublicKeyInfo",
                        truncate_for_message(text)
                    ),
                ),
            },
            Some(other) => self.error(
                &digest_path,
                format!(
                    "{digest_key} must be a base64 string, found {}",
                    type_name(other)
                ),
            ),
        }
    }

    fn tags(&mut self, value: Option<&Value>, path: Path, role: Role) {
        let moa_message = || match role {
            Role::Client => format!(
                "the Moa profile requires every client to carry a strengthened tag: add the one for this client's purpose ({})",
                MOA_STRENGTHENED_TAGS.join(", ")
            ),
            Role::Server => format!(
                "the Moa profile requires every server to carry at least one strengthened tag: add the services it offers ({})",
                MOA_STRENGTHENED_TAGS.join(", ")
            ),
        };
        let items = match value {
            None => {
                if self.moa() {
                    self.error(&path, moa_message());
                }
                return;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    &path,
                    format!(
                        "tags must be an array of strings, found {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        let mut seen = HashSet::new();
        let mut strengthened = 0;
        for (i, item) in items.iter().enumerate() {
            let tag_path = path.index(i);
            let Value::String(text) = item else {
                self.error(
                    &tag_path,
                    format!("a tag must be a string, found {}", type_name(item)),
                );
                continue;
            };
            match Tag::new(text) {
                Ok(tag) => {
                    if tag.is_moa_strengthened() {
                        strengthened += 1;
                    }
                    if !seen.insert(text.as_str()) {
                        self.warn(
                            &tag_path,
                            format!("tag {text:?} is listed twice: remove one"),
                        );
                    }
                }
                Err(_) => {
                    let lower = text.to_ascii_lowercase();
                    let hint = if Tag::new(&lower).is_ok() {
                        format!(": write {lower:?}")
                    } else {
                        String::new()
                    };
                    self.error(
                        &tag_path,
                        format!(
                            "tag {:?} is not 1 to 64 characters of a-z and 0-9{hint}",
                            truncate_for_message(text)
                        ),
                    );
                }
            }
        }
        if self.moa() && strengthened == 0 {
            self.error(&path, moa_message());
        }
    }

    fn saml_scope(&mut self, value: &Value, path: Path) {
        let Value::Object(map) = value else {
            self.error(
                &path,
                format!(
                    "the saml-scope extension must be an object {{\"scope\": [\"domain.example\"]}}, found {}",
                    type_name(value)
                ),
            );
            return;
        };
        let scope_path = path.key("scope");
        let items = match map.get("scope") {
            None => {
                self.error(
                    &scope_path,
                    "scope is required in the saml-scope extension: the DNS domains the entity speaks for",
                );
                return;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    &scope_path,
                    format!(
                        "scope must be an array of DNS domain names, found {}",
                        type_name(other)
                    ),
                );
                return;
            }
        };
        if items.is_empty() {
            self.warn(
                &scope_path,
                "scope is empty: the entity speaks for no domain; remove the extension or add domains",
            );
        }
        for (i, item) in items.iter().enumerate() {
            let item_path = scope_path.index(i);
            match item {
                Value::String(name) if is_lowercase_dns_name(name) => {}
                Value::String(name) => {
                    let lower = name.to_ascii_lowercase();
                    let message = if is_lowercase_dns_name(&lower) {
                        format!("scope domains must be lowercase: write {lower:?}")
                    } else {
                        format!(
                            "{:?} is not a DNS domain name such as \"skola.example.se\"",
                            truncate_for_message(name)
                        )
                    };
                    self.error(&item_path, message);
                }
                other => self.error(
                    &item_path,
                    format!(
                        "a scope entry must be a DNS domain name string, found {}",
                        type_name(other)
                    ),
                ),
            }
        }
    }

    fn near_misses(&mut self, map: &Map<String, Value>, known: &[&'static str], path: &Path) {
        for key in map.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            if let Some(suggestion) = near_miss(key, known)
                && !map.contains_key(suggestion)
            {
                self.warn(
                    &path.key(key),
                    format!(
                        "unknown member {:?} is ignored: did you mean {suggestion:?}?",
                        truncate_for_message(key)
                    ),
                );
            }
        }
    }

    /// Checks that need the whole file: issuer subjects, client pin uniqueness, Moa organization.
    fn cross_checks(&mut self) {
        let mut problems = Vec::new();
        for (j, later) in self.issuers.iter().enumerate() {
            for earlier in self.issuers.iter().take(j) {
                if earlier.der == later.der {
                    if earlier.entity == later.entity {
                        problems.push((
                            later.path.clone(),
                            Severity::Warning,
                            format!(
                                "this certificate is already listed at {}: remove the duplicate",
                                earlier.path
                            ),
                        ));
                    }
                    break;
                }
                if earlier.subject_der == later.subject_der {
                    problems.push((
                        later.path.clone(),
                        Severity::Error,
                        format!(
                            "another issuer certificate at {} has the same subject ({}): every issuer needs a distinct X.509 subject; reissue one with a unique name",
                            earlier.path, later.subject
                        ),
                    ));
                    break;
                }
            }
        }

        let clients: Vec<&PinSite> = self
            .pins
            .iter()
            .filter(|s| s.role == Role::Client)
            .collect();
        for (j, later) in clients.iter().enumerate() {
            let earlier: Vec<&&PinSite> = clients
                .iter()
                .take(j)
                .filter(|s| s.pin == later.pin)
                .collect();
            if let Some(other) = earlier.iter().find(|s| s.entity != later.entity) {
                let owner = self
                    .entities
                    .get(other.entity)
                    .and_then(|e| e.entity_id.clone())
                    .map(|id| format!(" of entity {id:?}"))
                    .unwrap_or_default();
                problems.push((
                    later.path.clone(),
                    Severity::Error,
                    format!(
                        "this client pin is already used by the client at {}{owner}: a client pin identifies one entity, give each entity its own key and certificate",
                        other.endpoint
                    ),
                ));
            } else if let Some(same) = earlier.iter().find(|s| s.endpoint == later.endpoint) {
                problems.push((
                    later.path.clone(),
                    Severity::Warning,
                    format!(
                        "the same pin is already listed at {}: remove the duplicate",
                        same.path
                    ),
                ));
            } else if let Some(sibling) = earlier.first() {
                problems.push((
                    later.path.clone(),
                    Severity::Warning,
                    format!(
                        "the client at {} uses the same pin: allowed within one entity, but peers cannot tell these clients apart",
                        sibling.endpoint
                    ),
                ));
            }
        }

        if self.moa() {
            let mut reference: Option<(String, Path)> = None;
            for facts in &self.entities {
                let Some((name, path)) = &facts.organization else {
                    continue;
                };
                match &reference {
                    None => reference = Some((name.clone(), path.clone())),
                    Some((first, first_path)) if first != name => problems.push((
                        path.clone(),
                        Severity::Warning,
                        format!(
                            "organization {name:?} differs from {first:?} at {first_path}: all of a member's entities carry the member's legal name (never a contractor's)"
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }

        for (path, severity, message) in problems {
            self.push(&path, severity, message);
        }
    }

    /// Checks the certificates the user gave against the pins and issuers of the file.
    fn certificate_checks(&mut self) {
        if self.opts.certificates.is_empty() {
            return;
        }
        let root = Path::default();
        let mut infos = Vec::new();
        for (k, der) in self.opts.certificates.iter().enumerate() {
            match x509::inspect(der) {
                Ok(info) => infos.push((k, der.as_ref(), info)),
                Err(e) => self.error(
                    &root,
                    format!("given certificate {} cannot be read: {e}", k + 1),
                ),
            }
        }
        let intermediates: Vec<&[u8]> = infos
            .iter()
            .filter(|(_, _, info)| info.is_ca && !self.pins.iter().any(|s| s.pin == info.pin))
            .map(|(_, der, _)| *der)
            .collect();

        let mut problems: Vec<(Path, Severity, String)> = Vec::new();
        for (k, der, info) in &infos {
            let sites: Vec<&PinSite> = self.pins.iter().filter(|s| s.pin == info.pin).collect();
            let Some(first) = sites.first() else {
                if !info.is_ca {
                    problems.push((
                        root.clone(),
                        Severity::Error,
                        format!(
                            "given certificate {} ({}) matches no pin in the file: add {{\"alg\": \"sha256\", \"digest\": \"{}\"}} to the endpoint that uses it",
                            k + 1,
                            info.subject,
                            info.pin
                        ),
                    ));
                }
                continue;
            };
            let mut checked = HashSet::new();
            for site in &sites {
                if !checked.insert(site.entity) {
                    continue;
                }
                let issuers = self
                    .entities
                    .get(site.entity)
                    .map(|e| e.issuers.as_slice())
                    .unwrap_or_default();
                if let Err(why) = chains_to(der, info, issuers, &intermediates) {
                    problems.push((
                        site.path.clone(),
                        Severity::Error,
                        format!(
                            "the certificate for this pin is not issued by any of the entity's issuers ({why}): list its root CA under issuers, or the certificate itself if it is self-signed"
                        ),
                    ));
                }
            }
            let what = format!("the certificate for this pin (given certificate {})", k + 1);
            if let Some((severity, message)) = validity_problem(info, &what, self.opts) {
                problems.push((first.path.clone(), severity, message));
            }
            if let Err(why) = x509::signature_is_sane(info) {
                problems.push((
                    first.path.clone(),
                    Severity::Error,
                    format!("{what} is {why}"),
                ));
            }
        }

        for site in &self.pins {
            if !infos.iter().any(|(_, _, info)| info.pin == site.pin) {
                problems.push((
                    site.path.clone(),
                    Severity::Warning,
                    "none of the given certificates has this pin: check that the pin is current, or give its certificate too".to_owned(),
                ));
            }
        }
        for (path, severity, message) in problems {
            self.push(&path, severity, message);
        }
    }
}

/// An expired, not yet valid or soon expiring certificate.
fn validity_problem(info: &CertInfo, what: &str, opts: &LintOptions) -> Option<(Severity, String)> {
    let now = opts.now;
    if info.not_after < now {
        Some((
            Severity::Error,
            format!(
                "{what} ({}) expired at {}: replace it",
                info.subject,
                Rfc3339(info.not_after)
            ),
        ))
    } else if info.not_before > now {
        Some((
            Severity::Error,
            format!(
                "{what} ({}) is not valid until {}: check the clock of the machine that made it",
                info.subject,
                Rfc3339(info.not_before)
            ),
        ))
    } else if info.not_after.saturating_sub(now) < opts.expiry_warning_days.saturating_mul(86_400) {
        Some((
            Severity::Warning,
            format!(
                "{what} ({}) expires at {}, in {} days: plan its replacement",
                info.subject,
                Rfc3339(info.not_after),
                info.not_after.saturating_sub(now) / 86_400
            ),
        ))
    } else {
        None
    }
}

/// Whether `leaf` is one of `issuers`, or is signed by one of them, possibly through the given
/// intermediate CA certificates: the walk the server's client verifier makes
/// ([`chains_to_issuers`]), so lint approves exactly the chains a server accepts.
fn chains_to(
    leaf: &[u8],
    leaf_info: &CertInfo,
    issuers: &[Vec<u8>],
    intermediates: &[&[u8]],
) -> Result<(), String> {
    let issuers: Vec<&[u8]> = issuers.iter().map(Vec::as_slice).collect();
    match chains_to_issuers(leaf, intermediates, &issuers) {
        Ok(()) => Ok(()),
        Err(ChainError::NoIssuers) => Err("the entity lists no usable issuer".to_owned()),
        Err(ChainError::Unreached {
            candidates,
            closest,
            ..
        }) => {
            let issued = match closest {
                Some(e) => format!("issued by {}, but {e}", leaf_info.issuer),
                None => format!("it was issued by {}", leaf_info.issuer),
            };
            Err(if candidates == 0 {
                issued
            } else {
                format!(
                    "{issued}, and no chain of at most {MAX_CHAIN_LINKS} links through the {candidates} given CA certificate(s) reaches one"
                )
            })
        }
    }
}

fn is_semver(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
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

/// The known member name that `key` most likely misspells, if any.
fn near_miss(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let normalize = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let unknown = normalize(key);
    if unknown.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'static str)> = None;
    for &candidate in known {
        let target = normalize(candidate);
        let singular = target
            .strip_suffix("ies")
            .map(|s| format!("{s}y"))
            .or_else(|| target.strip_suffix('s').map(str::to_owned));
        let distance = if unknown == target || singular.as_deref() == Some(unknown.as_str()) {
            0
        } else if unknown.chars().count() >= 4 && target.starts_with(&unknown) {
            1
        } else {
            let limit = match target.chars().count() {
                0..=4 => 1,
                5..=8 => 2,
                _ => 3,
            };
            let d = edit_distance(&unknown, &target);
            if d > limit {
                continue;
            }
            d
        };
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, name)| name)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        d[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        d[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[at(i - 1, j)] + 1)
                .min(d[at(i, j - 1)] + 1)
                .min(d[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[at(i - 2, j - 2)] + 1);
            }
            d[at(i, j)] = v;
        }
    }
    d[at(a.len(), b.len())]
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
    fn near_misses() {
        assert_eq!(near_miss("entityid", ENTITY_MEMBERS), Some("entity_id"));
        assert_eq!(
            near_miss("organisation_id", ENTITY_MEMBERS),
            Some("organization_id")
        );
        assert_eq!(
            near_miss("organisation", ENTITY_MEMBERS),
            Some("organization")
        );
        assert_eq!(near_miss("issuer", ENTITY_MEMBERS), Some("issuers"));
        assert_eq!(near_miss("base_url", ENDPOINT_MEMBERS), Some("base_uri"));
        assert_eq!(near_miss("pin", ENDPOINT_MEMBERS), Some("pins"));
        assert_eq!(near_miss("entity", DOCUMENT_MEMBERS), Some("entities"));
        assert_eq!(
            near_miss("x509Certificate", ISSUER_MEMBERS),
            Some("x509certificate")
        );
        assert_eq!(
            near_miss("x509cert", ISSUER_MEMBERS),
            Some("x509certificate")
        );
        assert_eq!(
            near_miss("extension_field_from_the_future", ENTITY_MEMBERS),
            None
        );
        assert_eq!(near_miss("contact", ENTITY_MEMBERS), None);
        assert_eq!(near_miss("url", ENDPOINT_MEMBERS), None);
        assert_eq!(near_miss("", ENDPOINT_MEMBERS), None);
    }

    #[test]
    fn uris() {
        let ok = parse_absolute_uri("https://api.example.org:8443/ss12000/v2.0/?q#f").unwrap();
        assert_eq!(ok.scheme, "https");
        assert_eq!(ok.host.as_deref(), Some("api.example.org"));
        assert_eq!(
            parse_absolute_uri("https://[::1]:443/")
                .unwrap()
                .host
                .as_deref(),
            Some("::1")
        );
        assert_eq!(parse_absolute_uri("urn:example:x").unwrap().scheme, "urn");
        for bad in [
            "",
            "example.org",
            "/relative",
            "https://",
            "https:///path",
            "https://host:port/",
            "https://exa mple.org/",
            "1https://x",
            "https://[::1/",
        ] {
            assert!(parse_absolute_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_names() {
        assert!(is_lowercase_dns_name("skola.angelholm.example"));
        assert!(is_lowercase_dns_name("a-b.example"));
        for bad in [
            "",
            "example",
            "Skola.example",
            "-a.example",
            "a..example",
            "a.example.",
            "10.0.0.1",
            "*.example.org",
        ] {
            assert!(!is_lowercase_dns_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn semver() {
        assert!(is_semver("1.0.0"));
        assert!(is_semver("10.20.30"));
        for bad in ["1.0", "1.0.0.0", "v1.0.0", "1.0.x", "1..0", ""] {
            assert!(!is_semver(bad), "{bad:?}");
        }
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
