//! Reading a bowness configuration file as it is, so that migrating is: stop bowness, start
//! `ss12000-proxy --bowness-config` on the same file (and the same `BWNS_*` variables).
//!
//! [bowness](https://github.com/joesiltberg/bowness) reads a YAML file through viper: keys
//! are case-insensitive, every key can be overridden by the environment variable `BWNS_`
//! followed by the key in upper case (`BWNS_TARGETURL`, `BWNS_READTIMEOUT`), and an empty
//! variable counts as unset. This module reads the same keys with the same defaults and
//! units (every timeout and retry in whole seconds, `MaxMetadataSize` in MiB), maps them to
//! a [`Config`], and refuses what it cannot honour naming the key and why. A key whose
//! value it can safely ignore gives a warning instead; nothing is dropped silently.
//!
//! | bowness key (default) | ss12000-proxy key |
//! |---|---|
//! | `ListenAddress` (required; `:443` = all interfaces) | `listen` (`0.0.0.0:443`) |
//! | `TargetURL` (required) | `backend` |
//! | `Cert`, `Key` (required) | `tls.cert`, `tls.key` |
//! | `MetadataURL` (bowness's built-in URL) | `federation.metadata` |
//! | `JWKSPath`, `CachePath` (required) | `federation.jwks`, `federation.cache` |
//! | `ReadHeaderTimeout` (5 s; 0: `ReadTimeout`) | `limits.header_timeout` |
//! | `ReadTimeout` (20 s) | `limits.handshake_timeout` (with `WriteTimeout`, the smaller) |
//! | `WriteTimeout` (40 s) | `limits.request_timeout` |
//! | `IdleTimeout` (60 s; 0: `ReadTimeout`) | `limits.idle_timeout` |
//! | `BackendTimeout` (30 s) | `limits.backend_timeout` |
//! | `ShutdownTimeout` (30 s) | `limits.shutdown_timeout` |
//! | `EnableLimiting` (false), `LimitRequestsPerSecond` (10), `LimitBurst` (50) | `limits.rate_limit`, `limits.rate_burst` |
//! | `APIKeyHeader`, `APIKeyValue` | `headers.api_key_header`, `headers.api_key` |
//! | `EncodeEntityId`, `EncodeOrganization`, `EncodeOrganizationId` | `headers.*_encoding` |
//! | `MaxMetadataSize` (100 MiB) | fixed at 100 MiB: a larger value is an error |
//! | `DefaultCacheTTL` (3600 s), `NetworkRetry` (60 s), `BadContentRetry` (3600 s) | the metadata store's own schedule: a warning unless equal |

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::config::{Config, Encoding, InvalidConfig};

/// The prefix of bowness's environment overrides.
pub const ENV_PREFIX: &str = "BWNS_";

/// bowness's built-in `MetadataURL`.
pub const DEFAULT_METADATA_URL: &str = "https://md.swefed.se/kontosynk/kontosynk-prod-1.jws";

/// The largest metadata document ss12000-proxy accepts, in MiB (bowness's default).
const MAX_METADATA_MIB: i64 = 100;

/// `SS12000_PROXY_*` variables that mean something with `--bowness-config` (the flags').
const OWN_VARIABLES: [&str; 3] = [
    "SS12000_PROXY_BOWNESS_CONFIG",
    "SS12000_PROXY_CHECK",
    "SS12000_PROXY_CONFIG",
];

/// Every key bowness reads, in its documented spelling.
const KEYS: [&str; 25] = [
    "MetadataURL",
    "JWKSPath",
    "CachePath",
    "Cert",
    "Key",
    "TargetURL",
    "ListenAddress",
    "DefaultCacheTTL",
    "NetworkRetry",
    "BadContentRetry",
    "ReadHeaderTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "IdleTimeout",
    "BackendTimeout",
    "ShutdownTimeout",
    "EnableLimiting",
    "LimitRequestsPerSecond",
    "LimitBurst",
    "MaxMetadataSize",
    "APIKeyHeader",
    "APIKeyValue",
    "EncodeEntityId",
    "EncodeOrganization",
    "EncodeOrganizationId",
];

/// A bowness configuration, typed, after the file and the `BWNS_*` variables (durations in
/// whole seconds, as bowness reads them).
#[derive(Debug, Clone, PartialEq)]
pub struct BownessConfig {
    /// `MetadataURL`.
    pub metadata_url: String,
    /// `JWKSPath`.
    pub jwks_path: PathBuf,
    /// `CachePath`.
    pub cache_path: PathBuf,
    /// `Cert`.
    pub cert: PathBuf,
    /// `Key`.
    pub key: PathBuf,
    /// `TargetURL`.
    pub target_url: String,
    /// `ListenAddress` (Go syntax: `:443` means every interface).
    pub listen_address: String,
    /// `DefaultCacheTTL`, seconds.
    pub default_cache_ttl: i64,
    /// `NetworkRetry`, seconds.
    pub network_retry: i64,
    /// `BadContentRetry`, seconds.
    pub bad_content_retry: i64,
    /// `ReadHeaderTimeout`, seconds (0 or less: `ReadTimeout`).
    pub read_header_timeout: i64,
    /// `ReadTimeout`, seconds.
    pub read_timeout: i64,
    /// `WriteTimeout`, seconds.
    pub write_timeout: i64,
    /// `IdleTimeout`, seconds (0 or less: `ReadTimeout`).
    pub idle_timeout: i64,
    /// `BackendTimeout`, seconds.
    pub backend_timeout: i64,
    /// `ShutdownTimeout`, seconds.
    pub shutdown_timeout: i64,
    /// `EnableLimiting`.
    pub enable_limiting: bool,
    /// `LimitRequestsPerSecond`.
    pub limit_requests_per_second: f64,
    /// `LimitBurst`.
    pub limit_burst: i64,
    /// `MaxMetadataSize`, MiB.
    pub max_metadata_size: i64,
    /// `APIKeyHeader`.
    pub api_key_header: Option<String>,
    /// `APIKeyValue`.
    pub api_key_value: Option<String>,
    /// `EncodeEntityId`.
    pub encode_entity_id: Encoding,
    /// `EncodeOrganization`.
    pub encode_organization: Encoding,
    /// `EncodeOrganizationId`.
    pub encode_organization_id: Encoding,
}

/// What is wrong with a bowness configuration, naming the key (or variable) and why.
#[derive(Debug, thiserror::Error)]
pub enum BownessError {
    /// The file is not YAML, or not a mapping of keys to values.
    #[error("not a bowness configuration (YAML keys and values): {0}")]
    Yaml(String),
    /// A key bowness requires is neither in the file nor in the environment.
    #[error("{key}: required (bowness needs it too), set it in the file or as {ENV_PREFIX}{}", .key.to_ascii_uppercase())]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// A key bowness does not know (viper would ignore it: a typo, most likely).
    #[error("{key}: not a bowness key (the keys are {})", KEYS.join(", "))]
    Unknown {
        /// The key as written.
        key: String,
    },
    /// A key given twice (bowness's keys are case-insensitive).
    #[error("{key}: given twice (keys are case-insensitive)")]
    Duplicate {
        /// The key as written the second time.
        key: String,
    },
    /// A value of the wrong type or out of range, or one ss12000-proxy cannot honour.
    #[error("{key}: {reason}")]
    Value {
        /// The key, or `BWNS_…` when the value came from the environment.
        key: String,
        /// What it must be, or why it cannot be honoured.
        reason: String,
    },
    /// The mapped configuration does not validate.
    #[error("the equivalent configuration is not valid: {0}")]
    Mapped(#[source] InvalidConfig),
}

/// Why a bowness configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BownessFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Its contents (with the `BWNS_*` variables) cannot be honoured.
    #[error("{path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: BownessError,
    },
}

/// A bowness configuration and its ss12000-proxy equivalent.
#[derive(Debug, Clone)]
pub struct Migration {
    /// What bowness would read.
    pub bowness: BownessConfig,
    /// The same configuration in ss12000-proxy's TOML (for `--config`).
    pub toml: String,
    /// `toml`, parsed: what the proxy runs with.
    pub config: Config,
    /// Keys whose values ss12000-proxy ignores or treats differently, one sentence each.
    pub warnings: Vec<String>,
}

/// Reads a bowness YAML file and applies the `BWNS_*` variables of `env`.
pub fn load(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Migration, BownessFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| BownessFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, env).map_err(|source| BownessFileError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses bowness YAML, applies the `BWNS_*` variables of `env` and maps the result.
///
/// ```
/// use ss12000_proxy::bowness;
///
/// let yaml = "JWKSPath: jwks.json\nCachePath: cache.jws\nCert: cert.pem\nKey: key.pem\n\
///             TargetURL: http://backend:8000\nListenAddress: :443\n";
/// let env = [("BWNS_READTIMEOUT".to_owned(), "25".to_owned())];
/// let migration = bowness::parse(yaml, env).unwrap();
/// assert_eq!(migration.config.listen.to_string(), "0.0.0.0:443");
/// assert_eq!(migration.config.limits.handshake_timeout, 25.0);
/// ```
pub fn parse(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Migration, BownessError> {
    let mut warnings = Vec::new();
    let mut raw = read_yaml(text)?;
    for (name, value) in env {
        if let Some(upper) = name.strip_prefix(ENV_PREFIX) {
            match KEYS.iter().find(|k| k.eq_ignore_ascii_case(upper)) {
                // viper reads an empty variable as unset.
                Some(_) if value.is_empty() => {}
                Some(key) => {
                    raw.insert(
                        key,
                        Raw {
                            value: serde_norway::Value::String(value),
                            from_env: true,
                        },
                    );
                }
                None => warnings.push(format!(
                    "{name}: not a bowness key, ignored (as bowness ignores it)"
                )),
            }
        } else if name.starts_with(crate::config::ENV_PREFIX)
            && !OWN_VARIABLES.contains(&name.as_str())
        {
            warnings.push(format!(
                "{name}: ignored with --bowness-config (use the BWNS_* variables, or switch \
                 to --config)"
            ));
        }
    }
    let bowness = BownessConfig::from_raw(&raw)?;
    let toml = bowness.to_toml(&raw, &mut warnings)?;
    let config = Config::parse(&toml, []).map_err(BownessError::Mapped)?;
    Ok(Migration {
        bowness,
        toml,
        config,
        warnings,
    })
}

/// A value and where it came from.
struct Raw {
    value: serde_norway::Value,
    from_env: bool,
}

/// The file's keys, in bowness's spelling; nulls left out (viper treats them as unset).
fn read_yaml(text: &str) -> Result<BTreeMap<&'static str, Raw>, BownessError> {
    let value: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| BownessError::Yaml(e.to_string()))?;
    let mapping = match value {
        serde_norway::Value::Mapping(mapping) => mapping,
        // An empty file: every key at its default (the required ones are then missing).
        serde_norway::Value::Null => serde_norway::Mapping::new(),
        _ => return Err(BownessError::Yaml("the top level must be a mapping".into())),
    };
    let mut seen = BTreeSet::new();
    let mut raw = BTreeMap::new();
    for (key, value) in mapping {
        let written = match key {
            serde_norway::Value::String(key) => key,
            other => return Err(BownessError::Yaml(format!("a key is not text: {other:?}"))),
        };
        let key = KEYS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&written))
            .ok_or_else(|| BownessError::Unknown {
                key: written.clone(),
            })?;
        if !seen.insert(*key) {
            return Err(BownessError::Duplicate { key: written });
        }
        if !value.is_null() {
            raw.insert(
                *key,
                Raw {
                    value,
                    from_env: false,
                },
            );
        }
    }
    Ok(raw)
}

/// Typed reads of the raw values, naming the key (or `BWNS_KEY`) on error.
struct Reader<'a>(&'a BTreeMap<&'static str, Raw>);

impl Reader<'_> {
    fn error(&self, key: &str, reason: impl Into<String>) -> BownessError {
        let key = match self.0.get(key) {
            Some(raw) if raw.from_env => format!("{ENV_PREFIX}{}", key.to_ascii_uppercase()),
            _ => key.to_owned(),
        };
        BownessError::Value {
            key,
            reason: reason.into(),
        }
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, BownessError> {
        use serde_norway::Value;
        Ok(match self.0.get(key).map(|raw| &raw.value) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => return Err(self.error(key, "must be a single value")),
        })
    }

    fn required(&self, key: &'static str) -> Result<String, BownessError> {
        self.string(key)?.ok_or(BownessError::Missing { key })
    }

    /// Whole seconds (or MiB, or requests): viper's `GetInt`, without its silent zero for
    /// text that is not a number, nor its truncation of fractions.
    fn int(&self, key: &'static str, default: i64) -> Result<i64, BownessError> {
        use serde_norway::Value;
        let bad = || self.error(key, "must be a whole number");
        match self.0.get(key).map(|raw| &raw.value) {
            None => Ok(default),
            Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(i),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
                _ => Err(bad()),
            },
            Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    fn float(&self, key: &'static str, default: f64) -> Result<f64, BownessError> {
        use serde_norway::Value;
        let bad = || self.error(key, "must be a number");
        match self.0.get(key).map(|raw| &raw.value) {
            None => Ok(default),
            Some(Value::Number(n)) => n.as_f64().ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// viper's `GetBool`: YAML booleans (YAML 1.1 spellings too, as bowness's parser reads
    /// them) in the file, Go's `strconv.ParseBool` spellings in the environment.
    fn bool(&self, key: &'static str, default: bool) -> Result<bool, BownessError> {
        use serde_norway::Value;
        let Some(raw) = self.0.get(key) else {
            return Ok(default);
        };
        let text = match &raw.value {
            Value::Bool(b) => return Ok(*b),
            Value::String(s) => s.as_str(),
            _ => return Err(self.error(key, "must be true or false")),
        };
        const GO_TRUE: [&str; 6] = ["1", "t", "T", "TRUE", "true", "True"];
        const GO_FALSE: [&str; 6] = ["0", "f", "F", "FALSE", "false", "False"];
        const YAML11_TRUE: [&str; 8] = ["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"];
        const YAML11_FALSE: [&str; 8] = ["n", "N", "no", "No", "NO", "off", "Off", "OFF"];
        if GO_TRUE.contains(&text) || (!raw.from_env && YAML11_TRUE.contains(&text)) {
            Ok(true)
        } else if GO_FALSE.contains(&text) || (!raw.from_env && YAML11_FALSE.contains(&text)) {
            Ok(false)
        } else {
            Err(self.error(key, "must be true or false"))
        }
    }

    /// bowness's `ParseHeaderEncoding`: `url` or `base64`, any letter case; empty for none.
    fn encoding(&self, key: &'static str) -> Result<Encoding, BownessError> {
        match self.string(key)?.map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("") => Ok(Encoding::None),
            Some("url") => Ok(Encoding::Url),
            Some("base64") => Ok(Encoding::Base64),
            Some(_) => Err(self.error(key, "must be url or base64 (or unset for none)")),
        }
    }
}

impl BownessConfig {
    fn from_raw(raw: &BTreeMap<&'static str, Raw>) -> Result<Self, BownessError> {
        let r = Reader(raw);
        // Checked in bowness's order, so the first missing key is the one bowness names.
        let jwks_path = r.required("JWKSPath")?.into();
        let cache_path = r.required("CachePath")?.into();
        let cert = r.required("Cert")?.into();
        let key = r.required("Key")?.into();
        let target_url = r.required("TargetURL")?;
        let listen_address = r.required("ListenAddress")?;
        Ok(Self {
            metadata_url: r
                .string("MetadataURL")?
                .unwrap_or_else(|| DEFAULT_METADATA_URL.to_owned()),
            jwks_path,
            cache_path,
            cert,
            key,
            target_url,
            listen_address,
            default_cache_ttl: r.int("DefaultCacheTTL", 3600)?,
            network_retry: r.int("NetworkRetry", 60)?,
            bad_content_retry: r.int("BadContentRetry", 3600)?,
            read_header_timeout: r.int("ReadHeaderTimeout", 5)?,
            read_timeout: r.int("ReadTimeout", 20)?,
            write_timeout: r.int("WriteTimeout", 40)?,
            idle_timeout: r.int("IdleTimeout", 60)?,
            backend_timeout: r.int("BackendTimeout", 30)?,
            shutdown_timeout: r.int("ShutdownTimeout", 30)?,
            enable_limiting: r.bool("EnableLimiting", false)?,
            limit_requests_per_second: r.float("LimitRequestsPerSecond", 10.0)?,
            limit_burst: r.int("LimitBurst", 50)?,
            max_metadata_size: r.int("MaxMetadataSize", MAX_METADATA_MIB)?,
            api_key_header: r.string("APIKeyHeader")?,
            api_key_value: r.string("APIKeyValue")?,
            encode_entity_id: r.encoding("EncodeEntityId")?,
            encode_organization: r.encoding("EncodeOrganization")?,
            encode_organization_id: r.encoding("EncodeOrganizationId")?,
        })
    }

    /// The equivalent ss12000-proxy TOML; what cannot be honoured is an error, what is
    /// harmlessly different a warning.
    fn to_toml(
        &self,
        raw: &BTreeMap<&'static str, Raw>,
        warnings: &mut Vec<String>,
    ) -> Result<String, BownessError> {
        let r = Reader(raw);
        let set = |key: &str| raw.contains_key(key);
        let listen = listen_address(&self.listen_address)
            .map_err(|reason| r.error("ListenAddress", reason))?;
        let backend: http::Uri = self
            .target_url
            .parse()
            .map_err(|e| r.error("TargetURL", format!("not a URL: {e}")))?;
        let scheme = backend.scheme_str().map(str::to_ascii_lowercase);
        if !matches!(scheme.as_deref(), Some("http" | "https")) || backend.host().is_none() {
            return Err(r.error(
                "TargetURL",
                "must be an http:// or https:// URL with a host",
            ));
        }
        if backend.query().is_some() {
            return Err(r.error(
                "TargetURL",
                "a query string is not supported (ss12000-proxy forwards the client's query only)",
            ));
        }

        // Go's http.Server: 0 (or less) is no timeout; ReadHeaderTimeout and IdleTimeout
        // then fall back to ReadTimeout. ss12000-proxy bounds every phase.
        let positive = |key: &'static str, secs: i64| -> Result<f64, BownessError> {
            if secs > 0 {
                Ok(secs as f64)
            } else {
                Err(r.error(
                    key,
                    "0 means no timeout to bowness; ss12000-proxy always bounds it: set a \
                     positive number of seconds",
                ))
            }
        };
        let read = positive("ReadTimeout", self.read_timeout)?;
        let write = positive("WriteTimeout", self.write_timeout)?;
        let header = if self.read_header_timeout > 0 {
            self.read_header_timeout as f64
        } else {
            read
        };
        let idle = if self.idle_timeout > 0 {
            self.idle_timeout as f64
        } else {
            read
        };
        // bowness only sets a backend timeout of at least a second.
        if self.backend_timeout < 1 {
            return Err(r.error(
                "BackendTimeout",
                "below 1 means no backend timeout to bowness; ss12000-proxy always bounds \
                 it: set a positive number of seconds",
            ));
        }
        let shutdown = positive("ShutdownTimeout", self.shutdown_timeout)?;

        let mut limits = toml::Table::new();
        limits.insert("header_timeout".into(), header.into());
        // Go bounds the TLS handshake by the read and write deadlines.
        limits.insert("handshake_timeout".into(), read.min(write).into());
        limits.insert("idle_timeout".into(), idle.into());
        // Go's WriteTimeout runs from the end of the request head to the end of the
        // response: the whole exchange.
        limits.insert("request_timeout".into(), write.into());
        limits.insert(
            "backend_timeout".into(),
            (self.backend_timeout as f64).into(),
        );
        limits.insert("shutdown_timeout".into(), shutdown.into());
        if self.enable_limiting {
            let rps = self.limit_requests_per_second;
            if !(rps.is_finite() && rps > 0.0) {
                return Err(r.error(
                    "LimitRequestsPerSecond",
                    "must be a positive number of requests per second with EnableLimiting",
                ));
            }
            let burst = u32::try_from(self.limit_burst)
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| {
                    r.error(
                        "LimitBurst",
                        "must be a positive number of requests with EnableLimiting (0 lets \
                         no request through)",
                    )
                })?;
            limits.insert("rate_limit".into(), rps.into());
            limits.insert("rate_burst".into(), i64::from(burst).into());
        } else {
            for key in ["LimitRequestsPerSecond", "LimitBurst"] {
                if set(key) {
                    warnings.push(format!(
                        "{key}: ignored without EnableLimiting (as bowness ignores it)"
                    ));
                }
            }
        }

        if self.max_metadata_size > MAX_METADATA_MIB {
            return Err(r.error(
                "MaxMetadataSize",
                format!("ss12000-proxy accepts metadata of at most {MAX_METADATA_MIB} MiB"),
            ));
        }
        if self.max_metadata_size < MAX_METADATA_MIB {
            warnings.push(format!(
                "MaxMetadataSize: ss12000-proxy accepts metadata of up to {MAX_METADATA_MIB} \
                 MiB, not {} MiB",
                self.max_metadata_size
            ));
        }
        if self.default_cache_ttl != 3600 {
            warnings.push(format!(
                "DefaultCacheTTL: ignored; without a cache_ttl in the metadata (or HTTP \
                 caching headers) ss12000-proxy refreshes hourly, not every {}s",
                self.default_cache_ttl
            ));
        }
        if self.network_retry != 60 {
            warnings.push(format!(
                "NetworkRetry: ignored; ss12000-proxy retries a failed fetch with a backoff of \
                 at most 60s, not every {}s",
                self.network_retry
            ));
        }
        if set("BadContentRetry") {
            warnings.push(format!(
                "BadContentRetry: ignored; ss12000-proxy retries metadata that does not \
                 verify with a backoff of at most 60s, not every {}s",
                self.bad_content_retry
            ));
        }

        let mut headers = toml::Table::new();
        for (name, encoding) in [
            ("entity_id_encoding", self.encode_entity_id),
            ("organization_encoding", self.encode_organization),
            ("organization_id_encoding", self.encode_organization_id),
        ] {
            let text = match encoding {
                Encoding::None => "none",
                Encoding::Url => "url",
                Encoding::Base64 => "base64",
            };
            headers.insert(name.into(), text.into());
        }
        match (&self.api_key_header, &self.api_key_value) {
            (Some(header), Some(value)) => {
                http::HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| r.error("APIKeyHeader", "not a valid header name"))?;
                http::HeaderValue::from_str(value)
                    .map_err(|_| r.error("APIKeyValue", "not a valid header value"))?;
                headers.insert("api_key_header".into(), header.clone().into());
                headers.insert("api_key".into(), value.clone().into());
            }
            (Some(_), None) => warnings
                .push("APIKeyHeader: ignored without APIKeyValue (as bowness ignores it)".into()),
            (None, Some(_)) => warnings
                .push("APIKeyValue: ignored without APIKeyHeader (as bowness ignores it)".into()),
            (None, None) => {}
        }
        // As behind bowness (Go's reverse proxy): the backend sees the client's Host.
        headers.insert("host".into(), "client".into());

        let mut tls = toml::Table::new();
        tls.insert("cert".into(), path_text(&self.cert).into());
        tls.insert("key".into(), path_text(&self.key).into());
        let mut federation = toml::Table::new();
        federation.insert("metadata".into(), self.metadata_url.clone().into());
        federation.insert("jwks".into(), path_text(&self.jwks_path).into());
        federation.insert("cache".into(), path_text(&self.cache_path).into());

        let mut top = toml::Table::new();
        top.insert("listen".into(), listen.to_string().into());
        top.insert("backend".into(), self.target_url.clone().into());
        top.insert("tls".into(), tls.into());
        top.insert("federation".into(), federation.into());
        top.insert("headers".into(), headers.into());
        top.insert("limits".into(), limits.into());
        let body = toml::to_string(&top).map_err(|e| BownessError::Yaml(e.to_string()))?;
        Ok(format!(
            "# ss12000-proxy configuration equivalent to a bowness configuration \
             (ss12000-proxy --config).\n{body}"
        ))
    }
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Go's `host:port`: an empty host is every interface (IPv4 here), a name is resolved.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    if let Ok(addr) = full.parse() {
        return Ok(addr);
    }
    full.to_socket_addrs()
        .map_err(|e| format!("{text:?} is not host:port ({e})"))?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "JWKSPath: /etc/bowness/jwks\nCachePath: /var/lib/bowness/md.jws\n\
        Cert: /etc/ssl/cert.pem\nKey: /etc/ssl/key.pem\nTargetURL: http://backend:8000\n\
        ListenAddress: :443\n";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_bownesss() {
        let m = parse(MINIMAL, []).unwrap();
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let c = &m.config;
        assert_eq!(c.listen.to_string(), "0.0.0.0:443");
        assert_eq!(c.backend.to_string(), "http://backend:8000/");
        assert_eq!(
            c.federation[0].metadata.to_string(),
            DEFAULT_METADATA_URL.to_owned()
        );
        assert_eq!(
            c.federation[0].cache.as_deref(),
            Some(Path::new("/var/lib/bowness/md.jws"))
        );
        assert_eq!(c.limits.header_timeout, 5.0);
        assert_eq!(c.limits.handshake_timeout, 20.0);
        assert_eq!(c.limits.request_timeout, 40.0);
        assert_eq!(c.limits.idle_timeout, 60.0);
        assert_eq!(c.limits.backend_timeout, 30.0);
        assert_eq!(c.limits.shutdown_timeout, 30.0);
        assert_eq!(c.limits.rate_limit, None);
        assert_eq!(c.headers.api_key, None);
    }

    #[test]
    fn every_key_maps_and_keys_are_case_insensitive() {
        let yaml = format!(
            "{MINIMAL}metadataurl: https://fed.example/md.jws\nReadHeaderTimeout: 0\n\
             ReadTimeout: 15\nWriteTimeout: 50\nIdleTimeout: 0\nBackendTimeout: 25\n\
             ShutdownTimeout: 7\nEnableLimiting: yes\nLimitRequestsPerSecond: 2.5\n\
             LimitBurst: 9\nAPIKeyHeader: X-API-Key\nAPIKeyValue: 12345\n\
             EncodeEntityId: BASE64\nEncodeOrganization: url\nEncodeOrganizationId: ''\n"
        );
        let c = parse(&yaml, []).unwrap().config;
        assert_eq!(
            c.federation[0].metadata.to_string(),
            "https://fed.example/md.jws"
        );
        assert_eq!(c.limits.header_timeout, 15.0);
        assert_eq!(c.limits.idle_timeout, 15.0);
        assert_eq!(c.limits.handshake_timeout, 15.0);
        assert_eq!(c.limits.request_timeout, 50.0);
        assert_eq!(c.limits.backend_timeout, 25.0);
        assert_eq!(c.limits.shutdown_timeout, 7.0);
        assert_eq!(c.limits.rate_limit, Some(2.5));
        assert_eq!(c.limits.rate_burst, Some(9));
        assert_eq!(c.headers.api_key_header.as_deref(), Some("X-API-Key"));
        assert_eq!(c.headers.api_key.as_deref(), Some("12345"));
        assert_eq!(c.headers.entity_id_encoding, Encoding::Base64);
        assert_eq!(c.headers.organization_encoding, Encoding::Url);
        assert_eq!(c.headers.organization_id_encoding, Encoding::None);
    }

    #[test]
    fn bwns_variables_override_and_empty_ones_do_not() {
        let vars = env(&[
            ("BWNS_TARGETURL", "https://api.example:8443/base"),
            ("BWNS_LISTENADDRESS", "127.0.0.1:8443"),
            ("BWNS_ENABLELIMITING", "true"),
            ("BWNS_LIMITREQUESTSPERSECOND", "4"),
            ("BWNS_CERT", ""),
            ("BWNS_TYPO", "x"),
            ("SS12000_PROXY_LIMITS__MAX_BODY", "1"),
            ("SS12000_PROXY_BOWNESS_CONFIG", "b.yaml"),
        ]);
        let m = parse(MINIMAL, vars).unwrap();
        assert_eq!(
            m.config.backend.to_string(),
            "https://api.example:8443/base"
        );
        assert_eq!(m.config.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(m.config.limits.rate_limit, Some(4.0));
        assert_eq!(m.config.limits.rate_burst, Some(50));
        assert_eq!(m.config.tls.cert, Path::new("/etc/ssl/cert.pem"));
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert!(m.warnings[0].contains("BWNS_TYPO"));
        assert!(m.warnings[1].contains("SS12000_PROXY_LIMITS__MAX_BODY"));
        // A required key from the environment only.
        let without = MINIMAL.replace("Cert: /etc/ssl/cert.pem\n", "");
        assert!(matches!(
            parse(&without, []).unwrap_err(),
            BownessError::Missing { key: "Cert" }
        ));
        let c = parse(&without, env(&[("BWNS_CERT", "/c.pem")]))
            .unwrap()
            .config;
        assert_eq!(c.tls.cert, Path::new("/c.pem"));
    }

    #[test]
    fn what_cannot_be_honoured_is_named() {
        let cases = [
            (format!("{MINIMAL}ReadTimout: 5\n"), "ReadTimout"),
            (
                format!("{MINIMAL}readtimeout: 5\nReadTimeout: 6\n"),
                "ReadTimeout",
            ),
            (format!("{MINIMAL}ReadTimeout: 0\n"), "ReadTimeout"),
            (format!("{MINIMAL}WriteTimeout: 1.5\n"), "WriteTimeout"),
            (format!("{MINIMAL}BackendTimeout: 0\n"), "BackendTimeout"),
            (
                format!("{MINIMAL}MaxMetadataSize: 500\n"),
                "MaxMetadataSize",
            ),
            (
                format!("{MINIMAL}EncodeOrganization: hex\n"),
                "EncodeOrganization",
            ),
            (
                format!("{MINIMAL}EnableLimiting: maybe\n"),
                "EnableLimiting",
            ),
            (
                format!("{MINIMAL}EnableLimiting: true\nLimitBurst: 0\n"),
                "LimitBurst",
            ),
            (MINIMAL.replace(":443", "nowhere"), "ListenAddress"),
            (
                MINIMAL.replace("http://backend:8000", "ftp://backend"),
                "TargetURL",
            ),
        ];
        for (yaml, key) in cases {
            let err = parse(&yaml, []).unwrap_err().to_string();
            assert!(err.starts_with(key), "{key}: {err}");
        }
        let err = parse(MINIMAL, env(&[("BWNS_IDLETIMEOUT", "soon")])).unwrap_err();
        assert!(err.to_string().starts_with("BWNS_IDLETIMEOUT"), "{err}");
        // Go's ParseBool does not know "yes": from the environment it is an error.
        let err = parse(MINIMAL, env(&[("BWNS_ENABLELIMITING", "yes")])).unwrap_err();
        assert!(err.to_string().starts_with("BWNS_ENABLELIMITING"), "{err}");
    }

    #[test]
    fn harmless_differences_warn() {
        let yaml = format!(
            "{MINIMAL}DefaultCacheTTL: 600\nNetworkRetry: 30\nBadContentRetry: 3600\n\
             MaxMetadataSize: 50\nLimitBurst: 5\nAPIKeyHeader: X-Key\n"
        );
        let m = parse(&yaml, []).unwrap();
        for key in [
            "DefaultCacheTTL",
            "NetworkRetry",
            "BadContentRetry",
            "MaxMetadataSize",
            "LimitBurst",
            "APIKeyHeader",
        ] {
            assert!(
                m.warnings.iter().any(|w| w.starts_with(key)),
                "{key}: {:?}",
                m.warnings
            );
        }
    }

    #[test]
    fn the_toml_is_the_config() {
        let yaml = format!("{MINIMAL}EnableLimiting: true\nEncodeOrganization: url\n");
        let m = parse(&yaml, []).unwrap();
        let again = Config::parse(&m.toml, []).unwrap();
        assert_eq!(format!("{again:?}"), format!("{:?}", m.config));
    }
}
