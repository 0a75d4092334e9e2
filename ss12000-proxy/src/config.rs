//! The proxy's configuration: a TOML file, every key overridable by an environment variable.
//!
//! `SS12000_PROXY_<KEY>` sets a top-level key and `SS12000_PROXY_<TABLE>__<KEY>` a key in a
//! table (upper case, `__` between levels): `SS12000_PROXY_LISTEN=0.0.0.0:443`,
//! `SS12000_PROXY_TLS__CERT=/etc/ss12000-proxy/server.pem`,
//! `SS12000_PROXY_ACCESS__CLIENT_TAGS=egilv1,bolv1`. Values are read as TOML when they parse
//! as such (numbers, booleans, arrays), as a comma-separated list for list keys, and as
//! strings otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use fedtls::store::federations::FederationSource;
use fedtls::{OrganizationId, Pin, Tag};
use kontosynk_framework::TrustedProxy;
use serde::Deserialize;

/// The environment-variable prefix.
pub const ENV_PREFIX: &str = "SS12000_PROXY_";

/// Everything the proxy is told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where clients connect (mutual TLS).
    pub listen: SocketAddr,
    /// The backend's base URL (`http://` or `https://`, optionally with a path prefix).
    #[serde(deserialize_with = "from_str")]
    pub backend: http::Uri,
    /// The proxy's server certificate.
    pub tls: TlsConfig,
    /// Where the federation metadata comes from: one `[federation]` table, or one
    /// `[[federation]]` table per federation to trust at once (the first listed wins where
    /// two list the same entity or pin).
    #[serde(deserialize_with = "one_or_many")]
    pub federation: Vec<FederationSource>,
    /// With several federations: ready (and able to start) only while every one has valid
    /// metadata. By default one suffices, and the others' members wait for theirs.
    #[serde(default)]
    pub require_all_federations: bool,
    /// Who may pass.
    #[serde(default)]
    pub access: AccessConfig,
    /// Which headers the backend receives.
    #[serde(default)]
    pub headers: HeadersConfig,
    /// Time and size limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How an `https` backend is verified.
    #[serde(default)]
    pub backend_tls: BackendTlsConfig,
    /// Speak HTTP/2 to a plain `http://` backend (prior knowledge, "h2c"), the client's host
    /// as `:authority`; an `https` backend is spoken to in HTTP/1.1, as nginx and HAProxy
    /// do by default.
    #[serde(default)]
    pub backend_h2c: bool,
    /// Plain-HTTP admin listener: `/healthz`, `/readyz`, `/metrics`.
    pub admin: Option<SocketAddr>,
    /// Serve plain HTTP behind these TLS terminators, taking the client certificate from
    /// their `Client-Cert` header.
    #[serde(default, deserialize_with = "each_from_str")]
    pub trusted_proxies: Vec<TrustedProxy>,
    /// `text` (default) or `json` logs on stderr.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Connection threads (default: one per core). Each connection lives on one of them.
    pub threads: Option<usize>,
}

/// The proxy's own certificate and key (PEM), reloaded on SIGHUP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// Refuse to start (and, on SIGHUP, keep the current certificate) when the metadata does
    /// not list the certificate's pin as a server; without it, a warning says so.
    #[serde(default)]
    pub require_listed: bool,
}

/// A `[federation]` table or a `[[federation]]` list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FederationSource>, D::Error> {
    use serde::de::Error;
    match toml::Value::deserialize(d)? {
        toml::Value::Array(list) => {
            if list.is_empty() {
                return Err(D::Error::custom("[[federation]] lists no federation"));
            }
            list.into_iter()
                .map(|v| v.try_into().map_err(D::Error::custom))
                .collect()
        }
        table => Ok(vec![table.try_into().map_err(D::Error::custom)?]),
    }
}

/// Access rules (all configured rules must pass; within one, any value suffices).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// The client endpoint must carry one of these tags.
    #[serde(default)]
    pub client_tags: Vec<Tag>,
    /// The entity must have one of these organization ids.
    #[serde(default)]
    pub organization_ids: Vec<OrganizationId>,
    /// The entity must be one of these.
    #[serde(default)]
    pub entity_ids: Vec<String>,
    /// The entity must be scoped to one of these domains.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The client certificate must chain to its entity's issuers.
    #[serde(default)]
    pub require_issuer_chain: bool,
}

/// How a header value that may hold non-ASCII text is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// As is (UTF-8 bytes; what bowness sends by default).
    #[default]
    None,
    /// Percent-encoded UTF-8 (RFC 3986).
    Url,
    /// Standard base64 of the UTF-8 bytes.
    Base64,
}

/// How the client certificate is passed to the backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertFormat {
    /// Not at all.
    #[default]
    None,
    /// RFC 9440: `:BASE64-DER:`.
    Rfc9440,
    /// PEM with the line breaks replaced by spaces (the SUNET auth server reads this).
    PemSpaces,
    /// Single-line base64 of the DER.
    Base64Der,
}

/// Which `Host` the backend sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostHeader {
    /// The client's, as bowness (Go's reverse proxy) passes it: a backend that builds URLs
    /// from its `Host` (the SUNET auth server's discovery) names the public address.
    #[default]
    Client,
    /// The backend's own address from `backend`.
    Backend,
}

/// Headers added for the backend. Every one of them is removed from client requests first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersConfig {
    /// Encoding of `X-FedTLSAuth-Entity-ID`.
    #[serde(default)]
    pub entity_id_encoding: Encoding,
    /// Encoding of `X-FedTLSAuth-Organization` (legal names are often non-ASCII).
    #[serde(default)]
    pub organization_encoding: Encoding,
    /// Encoding of `X-FedTLSAuth-Organization-ID`.
    #[serde(default)]
    pub organization_id_encoding: Encoding,
    /// Send the client certificate in `client_cert_header` in this format.
    #[serde(default)]
    pub client_cert: ClientCertFormat,
    /// The header for the client certificate (default `Client-Cert`).
    pub client_cert_header: Option<String>,
    /// An API-key header for backends that want one (name).
    pub api_key_header: Option<String>,
    /// The API key's value (prefer `SS12000_PROXY_HEADERS__API_KEY` over the file).
    pub api_key: Option<String>,
    /// `client` (default, as bowness): the backend sees the `Host` the client sent;
    /// `backend`: the backend's own address.
    #[serde(default)]
    pub host: HostHeader,
}

/// Limits; every timeout is in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body in bytes (streamed, never buffered).
    pub max_body: u64,
    /// Per-entity requests per second; none when absent.
    pub rate_limit: Option<f64>,
    /// Requests an entity may make at once before `rate_limit` applies (default: twice
    /// `rate_limit`, rounded up).
    pub rate_burst: Option<u32>,
    /// TLS handshake.
    pub handshake_timeout: f64,
    /// Client request head, from its first byte (the first request: from the handshake).
    pub header_timeout: f64,
    /// Idle keep-alive connection: how long it waits for its next request.
    pub idle_timeout: f64,
    /// Backend response head (504 beyond it).
    pub backend_timeout: f64,
    /// Whole request, including streaming the body (long uploads need a large value).
    pub request_timeout: f64,
    /// Client connections at once.
    pub max_connections: usize,
    /// On SIGTERM/Ctrl-C, in-flight requests get this long to finish.
    pub shutdown_timeout: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body: 100 * 1024 * 1024,
            rate_limit: None,
            rate_burst: None,
            handshake_timeout: 10.0,
            header_timeout: 10.0,
            idle_timeout: 90.0,
            backend_timeout: 30.0,
            request_timeout: 3600.0,
            max_connections: 10_000,
            shutdown_timeout: 30.0,
        }
    }
}

/// Verification of an `https` backend: system roots by default, or a CA file, or a pin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsConfig {
    /// Trust only the CA certificates in this PEM file.
    pub ca_file: Option<PathBuf>,
    /// Trust only a server certificate with this SPKI pin.
    pub pin: Option<String>,
}

/// Log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// JSON lines.
    Json,
}

/// A configuration problem, naming the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML (after environment overrides) is not a valid configuration.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        #[source]
        source: InvalidConfig,
    },
}

/// What is wrong with a configuration, naming the key (`backend`, `limits.idle_timeout`, an
/// environment variable…) and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(String);

impl InvalidConfig {
    /// Whether the description mentions `text` (for tests and callers that match on keys).
    pub fn contains(&self, text: &str) -> bool {
        self.0.contains(text)
    }
}

impl From<String> for InvalidConfig {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for InvalidConfig {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl Config {
    /// Reads `path` and applies the `SS12000_PROXY_*` variables of `env`.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, env).map_err(|source| ConfigError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses TOML text and applies environment overrides.
    ///
    /// ```
    /// use ss12000_proxy::config::Config;
    ///
    /// let toml = r#"
    ///     listen = "127.0.0.1:8443"
    ///     backend = "http://127.0.0.1:8080"
    ///     [tls]
    ///     cert = "server.pem"
    ///     key = "server.key"
    ///     [federation]
    ///     metadata = "metadata.jws"
    ///     jwks = "jwks.json"
    /// "#;
    /// let env = [("SS12000_PROXY_ACCESS__CLIENT_TAGS".to_owned(), "egilv1,bolv1".to_owned())];
    /// let config = Config::parse(toml, env).unwrap();
    /// assert_eq!(config.access.client_tags, ["egilv1", "bolv1"]);
    /// ```
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, InvalidConfig> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        for (name, value) in env {
            if let Some(key) = name.strip_prefix(ENV_PREFIX) {
                apply_override(&mut table, key, &value)
                    .map_err(|e| format!("environment variable {name}: {e}"))?;
            }
        }
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), InvalidConfig> {
        let scheme = self.backend.scheme_str().map(str::to_ascii_lowercase);
        let https = scheme.as_deref() == Some("https");
        if !(https || scheme.as_deref() == Some("http")) || self.backend.authority().is_none() {
            return Err(InvalidConfig(format!(
                "backend = {:?}: must be an http:// or https:// URL with a host",
                self.backend.to_string()
            )));
        }
        if let Some(pin) = &self.backend_tls.pin {
            pin.parse::<Pin>()
                .map_err(|e| format!("backend_tls.pin: {e}"))?;
        }
        if self.backend_h2c && https {
            return Err(
                "backend_h2c is for http:// backends; https backends are spoken to in HTTP/1.1"
                    .into(),
            );
        }
        if self.backend_tls.pin.is_some() && self.backend_tls.ca_file.is_some() {
            return Err("backend_tls: set either ca_file or pin, not both".into());
        }
        if self.threads.is_some_and(|n| !(1..=1024).contains(&n)) {
            return Err("threads: must be 1 to 1024 (leave it out for one per core)".into());
        }
        if self.headers.api_key_header.is_some() != self.headers.api_key.is_some() {
            return Err("headers: api_key_header and api_key go together".into());
        }
        let limits = &self.limits;
        for (name, secs) in [
            ("handshake_timeout", limits.handshake_timeout),
            ("header_timeout", limits.header_timeout),
            ("idle_timeout", limits.idle_timeout),
            ("backend_timeout", limits.backend_timeout),
            ("request_timeout", limits.request_timeout),
            ("shutdown_timeout", limits.shutdown_timeout),
        ] {
            if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
                return Err(InvalidConfig(format!(
                    "limits.{name} must be a positive number of seconds"
                )));
            }
        }
        if limits
            .rate_limit
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
        {
            return Err(
                "limits.rate_limit must be a positive number of requests per second".into(),
            );
        }
        if limits.rate_burst.is_some() && limits.rate_limit.is_none() {
            return Err("limits.rate_burst needs limits.rate_limit".into());
        }
        if limits.rate_burst == Some(0) {
            return Err("limits.rate_burst must be at least 1".into());
        }
        Ok(())
    }
}

/// Deserializes a value through its `FromStr`, so the configuration holds typed values.
fn from_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Deserializes a list of values through their `FromStr`.
fn each_from_str<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// Sets `KEY` or `TABLE__KEY` (upper case in the variable, lower case in the file).
fn apply_override(table: &mut toml::Table, key: &str, raw: &str) -> Result<(), String> {
    let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut current = table;
    for part in parents {
        current = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{part} is not a table"))?;
    }
    let existing_is_list = matches!(current.get(last), Some(toml::Value::Array(_)))
        || LIST_KEYS.contains(&last.as_str());
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut parsed) => parsed
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_owned())),
        Err(_) if existing_is_list => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        Err(_) => toml::Value::String(raw.to_owned()),
    };
    current.insert(last.clone(), value);
    Ok(())
}

/// Keys that hold lists, so `a,b` in a variable means two items.
const LIST_KEYS: [&str; 5] = [
    "client_tags",
    "organization_ids",
    "entity_ids",
    "scopes",
    "trusted_proxies",
];

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        listen = "127.0.0.1:8443"
        backend = "http://127.0.0.1:8080"
        [tls]
        cert = "server.pem"
        key = "server.key"
        [federation]
        metadata = "https://fed.example/md.jws"
        jwks = "jwks.json"
        cache = "metadata-cache.jws"
        [access]
        client_tags = ["egilv1"]
        organization_ids = []
    "#;

    #[test]
    fn the_documented_minimal_file_parses() {
        let config = Config::parse(MINIMAL, []).unwrap();
        assert_eq!(config.access.client_tags, ["egilv1"]);
        assert_eq!(config.limits.max_body, 100 * 1024 * 1024);
        assert_eq!(config.headers.organization_encoding, Encoding::None);
    }

    #[test]
    fn several_federations_are_a_federation_list() {
        // A top-level key goes before the first table.
        let two = format!(
            "require_all_federations = true\n{}",
            MINIMAL.replace(
                "[federation]",
                "[[federation]]\nname = \"moa-trial\"\n\
                 metadata = \"https://fed.example/trial.jws\"\njwks = \"trial.jwks\"\n[[federation]]",
            )
        );
        let config = Config::parse(&two, []).unwrap();
        assert!(config.require_all_federations);
        assert_eq!(config.federation.len(), 2);
        assert_eq!(config.federation[0].display_name(), "moa-trial");
        assert_eq!(
            config.federation[1].display_name(),
            "https://fed.example/md.jws"
        );
        let one = Config::parse(MINIMAL, []).unwrap();
        assert_eq!(one.federation.len(), 1);
        assert!(!one.require_all_federations);
        let typo = MINIMAL.replace("jwks = \"jwks.json\"", "jwk = \"jwks.json\"");
        let err = Config::parse(&typo, []).unwrap_err().to_string();
        assert!(err.contains("jwk"), "{err}");
    }

    #[test]
    fn the_commented_example_parses() {
        let text = include_str!("../ss12000-proxy.example.toml");
        Config::parse(text, []).unwrap();
    }

    #[test]
    fn environment_overrides_every_level() {
        let env = [
            ("SS12000_PROXY_LISTEN", "0.0.0.0:9443"),
            ("SS12000_PROXY_TLS__CERT", "/etc/p/server.pem"),
            ("SS12000_PROXY_ACCESS__CLIENT_TAGS", "egilv1,bolv1"),
            ("SS12000_PROXY_LIMITS__RATE_LIMIT", "5"),
            ("SS12000_PROXY_HEADERS__ORGANIZATION_ENCODING", "base64"),
            ("OTHER_VARIABLE", "ignored"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::parse(MINIMAL, env).unwrap();
        assert_eq!(config.listen.port(), 9443);
        assert_eq!(config.tls.cert, PathBuf::from("/etc/p/server.pem"));
        assert_eq!(config.access.client_tags, ["egilv1", "bolv1"]);
        assert_eq!(config.limits.rate_limit, Some(5.0));
        assert_eq!(config.headers.organization_encoding, Encoding::Base64);
    }

    #[test]
    fn mistakes_are_named() {
        let typo = MINIMAL.replace("client_tags", "client_tag");
        assert!(Config::parse(&typo, []).unwrap_err().contains("client_tag"));
        let ftp = MINIMAL.replace("http://127.0.0.1:8080", "ftp://x");
        assert!(Config::parse(&ftp, []).unwrap_err().contains("backend"));
        let env = [(
            "SS12000_PROXY_LIMITS__BACKEND_TIMEOUT".to_owned(),
            "-1".to_owned(),
        )];
        assert!(
            Config::parse(MINIMAL, env)
                .unwrap_err()
                .contains("backend_timeout")
        );
        let none = [("SS12000_PROXY_THREADS".to_owned(), "0".to_owned())];
        assert!(
            Config::parse(MINIMAL, none)
                .unwrap_err()
                .contains("threads")
        );
        let two = [("SS12000_PROXY_THREADS".to_owned(), "2".to_owned())];
        assert_eq!(Config::parse(MINIMAL, two).unwrap().threads, Some(2));
    }
}
