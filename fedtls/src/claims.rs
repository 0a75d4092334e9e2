//! The time and issuer claims of federation metadata (`iat`, `exp`, `nbf`, `iss`) and the
//! policy that decides whether a verified document may be trusted *now*.
//!
//! MATF documents carry these claims either in the JWS protected header (older documents)
//! or in the payload (RFC 9932 style). Both are read; per member, the payload wins
//! ([`Claims::overlay`]). `exp` is REQUIRED and has no leeway: once it has passed, the
//! metadata must no longer be trusted (fail closed).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::pin::truncate_for_message;

/// Claim names this crate understands (also the names a JWS `crit` may list).
pub const CLAIM_NAMES: [&str; 4] = ["iat", "exp", "nbf", "iss"];

/// `iat`/`exp`/`nbf`/`iss` as found in one place (a protected header or a payload).
///
/// Times are NumericDates: whole seconds since the Unix epoch, UTC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    /// Issued at.
    pub iat: Option<i64>,
    /// Expiration time: not trusted at or after it.
    pub exp: Option<i64>,
    /// Not before.
    pub nbf: Option<i64>,
    /// Issuer (the federation's identifier).
    pub iss: Option<String>,
}

/// Why claims could not be read or are not acceptable now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// Neither the payload nor the protected header has `exp`.
    #[error(
        "no exp claim: MATF requires an expiration time (in the payload or the protected header)"
    )]
    MissingExp,
    /// `exp` has passed (no leeway).
    #[error("expired at {} (unix {exp}); now is {} (unix {now})", Rfc3339(*.exp), Rfc3339(*.now))]
    Expired {
        /// The `exp` claim.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error("not valid before {} (unix {nbf}): nbf is in the future", Rfc3339(*.nbf))]
    NotYetValid {
        /// The `nbf` claim.
        nbf: i64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("issued in the future: iat is {} (unix {iat})", Rfc3339(*.iat))]
    IssuedInFuture {
        /// The `iat` claim.
        iat: i64,
    },
    /// `iss` is not the required issuer.
    #[error("wrong issuer: expected {expected:?}, found {}", found.as_deref().map_or_else(|| "no iss claim".to_owned(), |f| format!("{f:?}")))]
    WrongIssuer {
        /// The issuer the policy requires.
        expected: String,
        /// The issuer in the claims (truncated for display), if any.
        found: Option<String>,
    },
    /// A payload whose claims were to be read is not a JSON object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// A claim has the wrong type or an unusable value.
    #[error("claim {member}: {reason}")]
    Invalid {
        /// The member name (`iat`, `exp`, `nbf` or `iss`).
        member: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClaimsError {
    fn invalid(member: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            member: member.to_owned(),
            reason: reason.into(),
        }
    }
}

impl Claims {
    /// Reads `iat`, `exp`, `nbf` (NumericDate) and `iss` (string) from a JSON object;
    /// other members are ignored.
    ///
    /// A NumericDate may be an integer or a float (rounded down); negative, non-finite or
    /// out-of-range numbers and non-numbers are errors naming the member.
    pub fn from_json_object(obj: &Map<String, Value>) -> Result<Claims, ClaimsError> {
        let mut claims = Claims::default();
        for name in CLAIM_NAMES {
            if let Some(value) = obj.get(name) {
                claims.set(name, value)?;
            }
        }
        Ok(claims)
    }

    /// Reads the top-level claims of a JSON payload without building the rest of the
    /// document (every other member is skipped), so a large payload costs one scan.
    ///
    /// The payload must be a JSON object; a claim member that appears twice is an error
    /// (parsers that keep the first and parsers that keep the last would disagree).
    pub fn from_payload_json(payload: &[u8]) -> Result<Claims, ClaimsError> {
        let PayloadClaims(result) = serde_json::from_slice::<PayloadClaims>(payload)
            .map_err(|e| ClaimsError::NotAnObject(e.to_string()))?;
        result
    }

    /// Combines claims per member: the payload's value if present, else the header's
    /// ("the payload wins", as RFC 9932 documents carry their claims in the payload).
    pub fn overlay(payload: &Claims, header: &Claims) -> Claims {
        Claims {
            iat: payload.iat.or(header.iat),
            exp: payload.exp.or(header.exp),
            nbf: payload.nbf.or(header.nbf),
            iss: payload.iss.clone().or_else(|| header.iss.clone()),
        }
    }

    fn set(&mut self, name: &str, value: &Value) -> Result<(), ClaimsError> {
        match name {
            "iat" => self.iat = Some(numeric_date(name, value)?),
            "exp" => self.exp = Some(numeric_date(name, value)?),
            "nbf" => self.nbf = Some(numeric_date(name, value)?),
            "iss" => match value {
                Value::String(s) => self.iss = Some(s.clone()),
                other => {
                    return Err(ClaimsError::invalid(
                        name,
                        format!("must be a string, found {}", crate::json::kind(other)),
                    ));
                }
            },
            _ => {}
        }
        Ok(())
    }
}

/// Parses a NumericDate (RFC 7519 §2): a non-negative number of seconds, floats rounded down.
fn numeric_date(member: &str, value: &Value) -> Result<i64, ClaimsError> {
    let Value::Number(number) = value else {
        return Err(ClaimsError::invalid(
            member,
            format!(
                "must be a NumericDate (number), found {}",
                crate::json::kind(value)
            ),
        ));
    };
    if let Some(i) = number.as_i64() {
        if i < 0 {
            return Err(ClaimsError::invalid(
                member,
                format!("must not be negative ({i})"),
            ));
        }
        return Ok(i);
    }
    if number.as_u64().is_some() {
        return Err(ClaimsError::invalid(
            member,
            format!("{number} is out of range"),
        ));
    }
    let Some(f) = number.as_f64() else {
        return Err(ClaimsError::invalid(member, "not a usable number"));
    };
    if !f.is_finite() {
        return Err(ClaimsError::invalid(member, "must be finite"));
    }
    if f < 0.0 {
        return Err(ClaimsError::invalid(
            member,
            format!("must not be negative ({f})"),
        ));
    }
    let floored = f.floor();
    // 2^63 as f64: every finite value below it converts exactly after flooring.
    if floored >= 9_223_372_036_854_775_808.0 {
        return Err(ClaimsError::invalid(member, format!("{f} is out of range")));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(floored as i64)
}

/// Deserializes only the claim members of a top-level object, skipping the rest.
struct PayloadClaims(Result<Claims, ClaimsError>);

impl<'de> Deserialize<'de> for PayloadClaims {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PayloadClaimsVisitor)
    }
}

struct PayloadClaimsVisitor;

impl<'de> Visitor<'de> for PayloadClaimsVisitor {
    type Value = PayloadClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut claims = Claims::default();
        let mut seen = [false; CLAIM_NAMES.len()];
        let mut first_error = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match CLAIM_NAMES.iter().position(|n| *n == key) {
                Some(i) => {
                    let value: Value = map.next_value()?;
                    if let Some(flag) = seen.get_mut(i) {
                        if *flag && first_error.is_none() {
                            first_error = Some(ClaimsError::invalid(
                                &key,
                                "appears more than once in the payload",
                            ));
                        }
                        *flag = true;
                    }
                    if let Err(e) = claims.set(&key, &value) {
                        first_error.get_or_insert(e);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(PayloadClaims(match first_error {
            Some(e) => Err(e),
            None => Ok(claims),
        }))
    }
}

/// How claims are judged: clock leeway and the required issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimsPolicy {
    /// Seconds of clock skew tolerated for `iat` and `nbf` (never for `exp`). Default 60.
    pub leeway_secs: i64,
    /// When set, `iss` must equal it exactly.
    pub required_iss: Option<String>,
}

impl Default for ClaimsPolicy {
    fn default() -> Self {
        Self {
            leeway_secs: 60,
            required_iss: None,
        }
    }
}

/// Claims that passed [`ClaimsPolicy::check`]; `exp` is always present.
///
/// Only a check makes one ([`ClaimsPolicy::check`], or verifying a document), so holding
/// `ValidClaims` means the claims were acceptable at the time of the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidClaims {
    iat: Option<i64>,
    exp: i64,
    nbf: Option<i64>,
    iss: Option<String>,
}

impl ValidClaims {
    /// Issued at, if given.
    pub fn iat(&self) -> Option<i64> {
        self.iat
    }

    /// Expiration time: the document must not be used at or after it.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// Not before, if given.
    pub fn nbf(&self) -> Option<i64> {
        self.nbf
    }

    /// Issuer, if given.
    pub fn iss(&self) -> Option<&str> {
        self.iss.as_deref()
    }
}

impl ClaimsPolicy {
    /// Checks claims at time `now` (unix seconds).
    ///
    /// `exp` is required and has no leeway (expired iff `now >= exp`); `nbf` and `iat` may be
    /// up to `leeway_secs` in the future; with `required_iss`, `iss` must match exactly.
    pub fn check(&self, claims: &Claims, now: i64) -> Result<ValidClaims, ClaimsError> {
        let exp = claims.exp.ok_or(ClaimsError::MissingExp)?;
        if now >= exp {
            return Err(ClaimsError::Expired { exp, now });
        }
        let leeway = self.leeway_secs.max(0);
        let latest = now.saturating_add(leeway);
        if let Some(nbf) = claims.nbf
            && nbf > latest
        {
            return Err(ClaimsError::NotYetValid { nbf });
        }
        if let Some(iat) = claims.iat
            && iat > latest
        {
            return Err(ClaimsError::IssuedInFuture { iat });
        }
        if let Some(expected) = &self.required_iss
            && claims.iss.as_deref() != Some(expected.as_str())
        {
            return Err(ClaimsError::WrongIssuer {
                expected: expected.clone(),
                found: claims.iss.as_deref().map(truncate_for_message),
            });
        }
        Ok(ValidClaims {
            iat: claims.iat,
            exp,
            nbf: claims.nbf,
            iss: claims.iss.clone(),
        })
    }
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-21T19:51:09Z`), for messages.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339(pub i64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after H. Hinnant's
/// public-domain `civil_from_days` algorithm. No overflow for any `i64 / 86400` input.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Rfc3339(1_795_290_669).to_string(), "2026-11-21T19:51:09Z");
        assert_eq!(Rfc3339(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Rfc3339(4_102_444_800).to_string(), "2100-01-01T00:00:00Z");
        assert_eq!(Rfc3339(-1).to_string(), "1969-12-31T23:59:59Z");
        // Extremes must not panic.
        let _ = Rfc3339(i64::MAX).to_string();
        let _ = Rfc3339(i64::MIN).to_string();
    }

    #[test]
    fn numeric_dates() {
        let c = Claims::from_json_object(&obj(
            json!({"iat": 10, "exp": 20.9, "nbf": 0.5, "iss": "x", "other": true}),
        ))
        .unwrap();
        assert_eq!(
            c,
            Claims {
                iat: Some(10),
                exp: Some(20),
                nbf: Some(0),
                iss: Some("x".into())
            }
        );
        for bad in [
            json!({"exp": -1}),
            json!({"exp": -0.5}),
            json!({"exp": "123"}),
            json!({"exp": null}),
            json!({"exp": 1e300}),
            json!({"exp": u64::MAX}),
        ] {
            let err = Claims::from_json_object(&obj(bad.clone())).unwrap_err();
            assert!(
                matches!(&err, ClaimsError::Invalid { member, .. } if member == "exp"),
                "{bad}: {err}"
            );
        }
        let err = Claims::from_json_object(&obj(json!({"iss": 5}))).unwrap_err();
        assert!(err.to_string().contains("iss"), "{err}");
    }

    #[test]
    fn exp_has_no_leeway() {
        let policy = ClaimsPolicy::default();
        let claims = Claims {
            exp: Some(1000),
            ..Claims::default()
        };
        assert!(policy.check(&claims, 999).is_ok());
        assert_eq!(
            policy.check(&claims, 1000),
            Err(ClaimsError::Expired {
                exp: 1000,
                now: 1000
            })
        );
        let msg = policy
            .check(
                &Claims {
                    exp: Some(1_795_290_669),
                    ..Claims::default()
                },
                1_795_294_269,
            )
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("expired at 2026-11-21T19:51:09Z (unix 1795290669)"),
            "{msg}"
        );
    }

    #[test]
    fn exp_is_required() {
        let claims = Claims {
            iat: Some(1),
            ..Claims::default()
        };
        assert_eq!(
            ClaimsPolicy::default().check(&claims, 10),
            Err(ClaimsError::MissingExp)
        );
    }

    #[test]
    fn leeway_applies_to_iat_and_nbf() {
        let policy = ClaimsPolicy::default();
        let base = Claims {
            exp: Some(10_000),
            ..Claims::default()
        };
        let nbf_ok = Claims {
            nbf: Some(1060),
            ..base.clone()
        };
        assert!(policy.check(&nbf_ok, 1000).is_ok());
        let nbf_late = Claims {
            nbf: Some(1061),
            ..base.clone()
        };
        assert_eq!(
            policy.check(&nbf_late, 1000),
            Err(ClaimsError::NotYetValid { nbf: 1061 })
        );
        let iat_ok = Claims {
            iat: Some(1060),
            ..base.clone()
        };
        assert!(policy.check(&iat_ok, 1000).is_ok());
        let iat_late = Claims {
            iat: Some(1061),
            ..base.clone()
        };
        assert_eq!(
            policy.check(&iat_late, 1000),
            Err(ClaimsError::IssuedInFuture { iat: 1061 })
        );
        let strict = ClaimsPolicy {
            leeway_secs: 0,
            ..ClaimsPolicy::default()
        };
        assert!(strict.check(&nbf_ok, 1000).is_err());
    }

    #[test]
    fn payload_wins() {
        let header = Claims {
            iat: Some(1),
            exp: Some(100),
            nbf: None,
            iss: Some("header".into()),
        };
        let payload = Claims {
            exp: Some(50),
            nbf: Some(2),
            ..Claims::default()
        };
        let merged = Claims::overlay(&payload, &header);
        assert_eq!(
            merged,
            Claims {
                iat: Some(1),
                exp: Some(50),
                nbf: Some(2),
                iss: Some("header".into())
            }
        );
    }

    #[test]
    fn required_issuer() {
        let policy = ClaimsPolicy {
            required_iss: Some("https://fed.example".into()),
            ..ClaimsPolicy::default()
        };
        let mut claims = Claims {
            exp: Some(100),
            iss: Some("https://fed.example".into()),
            ..Claims::default()
        };
        assert!(policy.check(&claims, 1).is_ok());
        claims.iss = Some("https://fed.example/".into());
        assert!(matches!(
            policy.check(&claims, 1),
            Err(ClaimsError::WrongIssuer { .. })
        ));
        claims.iss = None;
        let err = policy.check(&claims, 1).unwrap_err();
        assert!(err.to_string().contains("no iss claim"), "{err}");
    }

    #[test]
    fn payload_claims_scan() {
        let c = Claims::from_payload_json(
            br#"{"entities":[{"exp":"nested is ignored"}],"exp":5,"iss":"i","version":"1.0.0"}"#,
        )
        .unwrap();
        assert_eq!(c.exp, Some(5));
        assert_eq!(c.iss.as_deref(), Some("i"));
        assert!(Claims::from_payload_json(br#"{"exp":5,"exp":6}"#).is_err());
        assert!(matches!(
            Claims::from_payload_json(b"[1]"),
            Err(ClaimsError::NotAnObject(_))
        ));
        assert!(Claims::from_payload_json(b"{").is_err());
        assert!(Claims::from_payload_json(br#"{"exp":"x"}"#).is_err());
    }
}
