//! The stand-in's bearer check: a JWT from the GNAP authorization server (ES256, by `kid`
//! against its JWKS, `exp`/`nbf`) whose `requested_access` grants `provisioning-api` at this
//! API's base URL.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use kontosynk_client::token::PROVISIONING_API;

/// Checks an `Authorization` header value; `Err` says why it is refused (for the stand-in's
/// log, never sent with the token).
pub fn check(header: Option<&str>, jwks: &JwkSet, base_url: &str) -> Result<Value, String> {
    let token = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("no bearer token")?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("bad JWT header: {e}"))?;
    if header.alg != Algorithm::ES256 {
        return Err(format!("alg {:?} is not ES256", header.alg));
    }
    let kid = header.kid.ok_or("the JWT has no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| format!("unknown kid {kid:?}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK {kid:?}: {e}"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.leeway = 30;
    validation.set_required_spec_claims(&["exp", "iat"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| format!("JWT rejected: {e}"))?;
    let claims = data.claims;
    let wanted = base_url.trim_end_matches('/');
    let granted = claims
        .get("requested_access")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries.iter().any(|e| {
                e.get("type").and_then(Value::as_str) == Some(PROVISIONING_API)
                    && e.get("locations")
                        .and_then(Value::as_array)
                        .is_some_and(|l| {
                            l.iter().any(|x| {
                                x.as_str().map(|s| s.trim_end_matches('/')) == Some(wanted)
                            })
                        })
            })
        });
    if !granted {
        return Err(format!(
            "the token does not grant {PROVISIONING_API} at {wanted}"
        ));
    }
    Ok(claims)
}
