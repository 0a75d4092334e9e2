//! Producing signed metadata (the operator's side, with the `tooling` feature), and the
//! low-level signer it builds on: for servers that issue tokens, and for tests and tools that
//! need unusual headers.

use serde_json::{Map, Value};

use super::{JwsError, JwsFormat};
use crate::encoding::b64url_encode;
use crate::jwk::SigningKey;

/// How [`sign_metadata`] stamps and serializes a document.
#[cfg(feature = "tooling")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOptions {
    /// The federation's issuer identifier, put in the payload and each protected header.
    pub iss: String,
    /// Seconds from `now` to `exp` (must be positive).
    pub lifetime_secs: i64,
    /// The signing time (unix seconds), used as `iat`.
    pub now: i64,
    /// The serialization; General (the default) is what federations publish.
    pub format: JwsFormat,
    /// `cache_ttl` to add when the payload has none (peers such as the SUNET auth server
    /// reject documents without it). Default 3600.
    pub default_cache_ttl: u64,
}

#[cfg(feature = "tooling")]
impl Default for SignOptions {
    fn default() -> Self {
        Self {
            iss: String::new(),
            lifetime_secs: 86_400,
            now: 0,
            format: JwsFormat::General,
            default_cache_ttl: 3600,
        }
    }
}

/// Signs federation metadata.
///
/// The payload is copied with `iat` = now, `exp` = now + lifetime and `iss` set
/// (overwriting), and `cache_ttl` added if absent. Each key gets a protected header
/// `{"alg","kid","iat","exp","iss"}` with the same values, so verifiers reading either the
/// header (older documents) or the payload (RFC 9932) agree. General syntax carries one
/// signature per key (key rollover); Flattened and Compact need exactly one key. The
/// result has no trailing newline.
#[cfg(feature = "tooling")]
pub fn sign_metadata(
    payload: &Map<String, Value>,
    keys: &[&SigningKey],
    opts: &SignOptions,
) -> Result<String, JwsError> {
    if opts.lifetime_secs <= 0 {
        return Err(JwsError::Sign(format!(
            "lifetime must be positive, got {} seconds",
            opts.lifetime_secs
        )));
    }
    if opts.now < 0 {
        return Err(JwsError::Sign(format!(
            "signing time {} is before 1970",
            opts.now
        )));
    }
    let exp = opts
        .now
        .checked_add(opts.lifetime_secs)
        .ok_or_else(|| JwsError::Sign("now + lifetime overflows".into()))?;
    let mut body = payload.clone();
    body.insert("iat".into(), opts.now.into());
    body.insert("exp".into(), exp.into());
    body.insert("iss".into(), opts.iss.clone().into());
    if !body.contains_key("cache_ttl") {
        body.insert("cache_ttl".into(), opts.default_cache_ttl.into());
    }
    let payload_json =
        serde_json::to_vec(&body).map_err(|e| JwsError::Sign(format!("payload: {e}")))?;

    let headers: Vec<(&SigningKey, Map<String, Value>)> = keys
        .iter()
        .map(|key| {
            let mut header = Map::new();
            header.insert("alg".into(), key.algorithm().name().into());
            header.insert("kid".into(), key.kid().into());
            header.insert("iat".into(), opts.now.into());
            header.insert("exp".into(), exp.into());
            header.insert("iss".into(), opts.iss.clone().into());
            (*key, header)
        })
        .collect();
    sign_raw(&payload_json, &headers, opts.format)
}

/// Signs `payload` bytes as given, one signature per `(key, protected header)`.
///
/// Each header is used as given, with `alg` and `kid` inserted from the key when absent
/// (so tests can craft `crit`, `nbf`, odd or even invalid headers); an `alg` or `kid`
/// given as JSON `null` is left out instead (to craft headers without them). Flattened and
/// Compact need exactly one header.
pub fn sign_raw(
    payload: &[u8],
    headers: &[(&SigningKey, Map<String, Value>)],
    format: JwsFormat,
) -> Result<String, JwsError> {
    if headers.is_empty() {
        return Err(JwsError::Sign("no signing key given".into()));
    }
    if format != JwsFormat::General && headers.len() != 1 {
        return Err(JwsError::Sign(format!(
            "{format} serialization holds exactly one signature, but {} keys were given (use general for key rollover)",
            headers.len()
        )));
    }
    let payload_b64 = b64url_encode(payload);
    let mut signatures: Vec<(String, String)> = Vec::with_capacity(headers.len());
    let mut signing_input = Vec::new();
    for (key, header) in headers {
        let mut header = header.clone();
        for (name, value) in [("alg", key.algorithm().name()), ("kid", key.kid())] {
            match header.get(name) {
                None => {
                    header.insert(name.into(), value.into());
                }
                Some(Value::Null) => {
                    header.remove(name);
                }
                Some(_) => {}
            }
        }
        let header_json = serde_json::to_vec(&header)
            .map_err(|e| JwsError::Sign(format!("protected header: {e}")))?;
        let protected_b64 = b64url_encode(header_json);
        signing_input.clear();
        signing_input.reserve(protected_b64.len() + 1 + payload_b64.len());
        signing_input.extend_from_slice(protected_b64.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload_b64.as_bytes());
        let signature = key.sign(&signing_input)?;
        signatures.push((protected_b64, b64url_encode(signature)));
    }

    // Every value below is base64url, which needs no JSON escaping.
    let mut out = String::with_capacity(
        payload_b64.len()
            + signatures
                .iter()
                .map(|(p, s)| p.len() + s.len() + 40)
                .sum::<usize>()
            + 40,
    );
    match (format, signatures.as_slice()) {
        (JwsFormat::Compact, [(protected, signature)]) => {
            out.push_str(protected);
            out.push('.');
            out.push_str(&payload_b64);
            out.push('.');
            out.push_str(signature);
        }
        (JwsFormat::Flattened, [(protected, signature)]) => {
            out.push_str("{\"payload\":\"");
            out.push_str(&payload_b64);
            out.push_str("\",\"protected\":\"");
            out.push_str(protected);
            out.push_str("\",\"signature\":\"");
            out.push_str(signature);
            out.push_str("\"}");
        }
        (JwsFormat::General, all) => {
            out.push_str("{\"payload\":\"");
            out.push_str(&payload_b64);
            out.push_str("\",\"signatures\":[");
            for (i, (protected, signature)) in all.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"protected\":\"");
                out.push_str(protected);
                out.push_str("\",\"signature\":\"");
                out.push_str(signature);
                out.push_str("\"}");
            }
            out.push_str("]}");
        }
        _ => {
            return Err(JwsError::Sign(format!(
                "{format} serialization holds exactly one signature"
            )));
        }
    }
    Ok(out)
}
