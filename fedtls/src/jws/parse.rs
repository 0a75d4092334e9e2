//! Reading the three serializations and the protected headers.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Entry, Jws, JwsError, JwsFormat, ParsedSignature, ProtectedHeader, most_useful};
use crate::claims::{CLAIM_NAMES, Claims};
use crate::encoding::b64url_decode;
use crate::json::{StrictError, parse_unique_object};
use crate::jwk::Algorithm;
use crate::pin::truncate_for_message;

/// The most signature entries a General document may have. Key rollover needs two or
/// three; each entry costs a hash of the whole (possibly 17 MB) signing input, so a hostile
/// document with thousands of entries must not be able to stall the verifier.
pub const MAX_SIGNATURES: usize = 32;

/// A JSON string that borrows from the input unless it contains escapes.
struct JsonStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for JsonStr<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        deserializer.deserialize_str(V).map(JsonStr)
    }
}

/// The top level of a JSON serialization. serde's derive rejects a repeated known member
/// (two `payload`s would be an ambiguity attack); unknown members are ignored.
#[derive(Deserialize)]
struct RawDocument<'a> {
    #[serde(borrow, default)]
    payload: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    signatures: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    protected: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    header: Option<&'a RawValue>,
    #[serde(borrow, default)]
    signature: Option<JsonStr<'a>>,
}

/// One element of `signatures`.
#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(borrow, default)]
    protected: Option<JsonStr<'a>>,
    #[serde(borrow, default)]
    header: Option<&'a RawValue>,
    #[serde(borrow, default)]
    signature: Option<JsonStr<'a>>,
}

impl<'a> Jws<'a> {
    /// Parses a JWS in any serialization, detected from the input: JSON (leading `{`
    /// after whitespace) with `signatures` is General, without it Flattened; anything else
    /// must be Compact (`protected.payload.signature`; surrounding whitespace ignored).
    ///
    /// Every signature's protected header is decoded and checked (alg allow-list, `crit`,
    /// duplicate members, disjoint unprotected header, claim types). In General syntax a
    /// bad entry does not fail the document: it is recorded and reported by
    /// [`Jws::verify_signatures`] only if no signature verifies. Parsing fails when no
    /// entry is usable, or with more than [`MAX_SIGNATURES`] entries.
    pub fn parse(input: &'a [u8]) -> Result<Jws<'a>, JwsError> {
        let text = std::str::from_utf8(input).map_err(|e| JwsError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() {
            return Err(JwsError::Empty);
        }
        let jws = if trimmed.starts_with('{') {
            parse_json(trimmed)?
        } else {
            parse_compact(trimmed)?
        };
        if jws.entries.iter().all(|e| e.parsed.is_err()) {
            let errors = jws
                .entries
                .into_iter()
                .filter_map(|e| e.parsed.err())
                .collect();
            return Err(most_useful(errors, JwsError::NoSignatures));
        }
        Ok(jws)
    }
}

fn parse_json(text: &str) -> Result<Jws<'_>, JwsError> {
    let raw: RawDocument<'_> =
        serde_json::from_str(text).map_err(|e| JwsError::Json(e.to_string()))?;
    let payload = raw
        .payload
        .ok_or_else(|| {
            JwsError::Malformed(
                "no \"payload\" member (detached payloads are not supported)".into(),
            )
        })?
        .0;
    match raw.signatures {
        Some(signatures) => {
            if raw.protected.is_some() || raw.header.is_some() || raw.signature.is_some() {
                return Err(JwsError::Malformed(
                    "\"signatures\" cannot be combined with top-level \"protected\", \"header\" or \"signature\"".into(),
                ));
            }
            if signatures.is_empty() {
                return Err(JwsError::NoSignatures);
            }
            if signatures.len() > MAX_SIGNATURES {
                return Err(JwsError::Malformed(format!(
                    "{} signatures (at most {MAX_SIGNATURES} are accepted: each one costs a hash of the whole payload)",
                    signatures.len()
                )));
            }
            let entries = signatures
                .into_iter()
                .enumerate()
                .map(|(index, raw)| general_entry(index, raw))
                .collect();
            Ok(Jws {
                format: JwsFormat::General,
                payload_b64: payload,
                entries,
                compact_signing_input: None,
            })
        }
        None => {
            if raw.protected.is_none() && raw.signature.is_none() {
                return Err(JwsError::Malformed(
                    "neither \"signatures\" (General) nor \"protected\" and \"signature\" (Flattened)".into(),
                ));
            }
            let entry = make_entry(
                0,
                raw.protected.map(|p| p.0),
                raw.header.map(RawValue::get),
                raw.signature.map(|s| s.0),
            );
            Ok(Jws {
                format: JwsFormat::Flattened,
                payload_b64: payload,
                entries: vec![entry],
                compact_signing_input: None,
            })
        }
    }
}

fn general_entry<'a>(index: usize, raw: &'a RawValue) -> Entry<'a> {
    let failed = |reason: String| Entry {
        protected_b64: Cow::Borrowed(""),
        parsed: Err(JwsError::Entry { index, reason }),
    };
    // serde would also map a JSON array onto the struct by position: require an object.
    if !raw.get().trim_start().starts_with('{') {
        return failed("a signatures entry must be a JSON object".into());
    }
    match serde_json::from_str::<RawEntry<'a>>(raw.get()) {
        Ok(entry) => make_entry(
            index,
            entry.protected.map(|p| p.0),
            entry.header.map(RawValue::get),
            entry.signature.map(|s| s.0),
        ),
        Err(e) => failed(format!("malformed signatures entry: {e}")),
    }
}

fn parse_compact(text: &str) -> Result<Jws<'_>, JwsError> {
    let mut parts = text.split('.');
    let (Some(protected), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let count = text.split('.').count();
        return Err(JwsError::Compact(format!(
            "expected 3 base64url parts separated by '.', found {count}"
        )));
    };
    if !is_b64url(protected) || !is_b64url(payload) || !is_b64url(signature) {
        return Err(JwsError::Compact(
            "parts must be base64url (A-Z a-z 0-9 - _)".into(),
        ));
    }
    // protected + '.' + payload is a prefix of `text`: the signing input, uncopied.
    let signing_len = protected.len() + 1 + payload.len();
    let signing_input = text.get(..signing_len);
    let entry = make_entry(
        0,
        Some(Cow::Borrowed(protected)),
        None,
        Some(Cow::Borrowed(signature)),
    );
    Ok(Jws {
        format: JwsFormat::Compact,
        payload_b64: Cow::Borrowed(payload),
        entries: vec![entry],
        compact_signing_input: signing_input,
    })
}

/// `true` for the bytes of the base64url alphabet (a table: the payload may be 17 MB).
const B64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        i += 1;
    }
    table
};

fn is_b64url(text: &str) -> bool {
    text.bytes().all(|b| B64URL[usize::from(b)])
}

fn make_entry<'a>(
    index: usize,
    protected: Option<Cow<'a, str>>,
    unprotected: Option<&str>,
    signature: Option<Cow<'a, str>>,
) -> Entry<'a> {
    let Some(protected) = protected else {
        return Entry {
            protected_b64: Cow::Borrowed(""),
            parsed: Err(JwsError::MissingProtected { index }),
        };
    };
    let parsed = parse_signature(index, &protected, unprotected, signature.as_deref());
    Entry {
        protected_b64: protected,
        parsed,
    }
}

fn header_object(
    index: usize,
    location: &'static str,
    text: &str,
) -> Result<Map<String, Value>, JwsError> {
    parse_unique_object(text).map_err(|e| match e {
        StrictError::Duplicate(name) => JwsError::DuplicateMember {
            index,
            location,
            name: truncate_for_message(&name),
        },
        StrictError::NotObject => JwsError::Header {
            index,
            location,
            reason: "not a JSON object".into(),
        },
        StrictError::Syntax(reason) => JwsError::Header {
            index,
            location,
            reason: format!("not JSON: {reason}"),
        },
    })
}

fn parse_signature(
    index: usize,
    protected_b64: &str,
    unprotected: Option<&str>,
    signature_b64: Option<&str>,
) -> Result<ParsedSignature, JwsError> {
    let header_err = |reason: &str| JwsError::Header {
        index,
        location: "protected",
        reason: reason.to_owned(),
    };
    if protected_b64.is_empty() {
        return Err(JwsError::MissingProtected { index });
    }
    let bytes = b64url_decode(protected_b64).map_err(|_| header_err("not base64url"))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| header_err("not UTF-8"))?;
    let protected = header_object(index, "protected", text)?;
    let unprotected = unprotected
        .map(|text| header_object(index, "unprotected", text))
        .transpose()?
        .unwrap_or_default();
    if let Some(name) = unprotected.keys().find(|k| protected.contains_key(*k)) {
        return Err(JwsError::NotDisjoint {
            index,
            name: truncate_for_message(name),
        });
    }

    let alg = match protected.get("alg") {
        Some(Value::String(name)) => {
            name.parse::<Algorithm>()
                .map_err(|_| JwsError::UnsupportedAlgorithm {
                    index,
                    alg: truncate_for_message(name),
                })?
        }
        Some(_) => {
            return Err(JwsError::HeaderMember {
                index,
                member: "alg".into(),
                reason: "must be a string".into(),
            });
        }
        None if unprotected.contains_key("alg") => {
            return Err(JwsError::NotProtected {
                index,
                member: "alg",
            });
        }
        None => return Err(JwsError::MissingAlg { index }),
    };

    let kid = match protected.get("kid").or_else(|| unprotected.get("kid")) {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => {
            return Err(JwsError::HeaderMember {
                index,
                member: "kid".into(),
                reason: "must be a string".into(),
            });
        }
    };

    if unprotected.contains_key("crit") {
        return Err(JwsError::NotProtected {
            index,
            member: "crit",
        });
    }
    let crit = check_crit(index, &protected)?;

    // Claims only from the integrity-protected header.
    let claims = Claims::from_json_object(&protected)
        .map_err(|source| JwsError::HeaderClaims { index, source })?;

    let signature = match signature_b64 {
        Some(text) => b64url_decode(text).map_err(|_| JwsError::SignatureEncoding { index })?,
        None => {
            return Err(JwsError::Entry {
                index,
                reason: "no \"signature\" member".into(),
            });
        }
    };

    Ok(ParsedSignature {
        header: ProtectedHeader {
            alg,
            kid,
            claims,
            crit,
        },
        signature,
    })
}

/// RFC 7515 §4.1.11: a non-empty array of unique names, each understood and present.
fn check_crit(index: usize, protected: &Map<String, Value>) -> Result<Vec<String>, JwsError> {
    let crit_err = |reason: String| JwsError::Crit { index, reason };
    let Some(value) = protected.get("crit") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(crit_err(
            "must be an array of header parameter names".into(),
        ));
    };
    if items.is_empty() {
        return Err(crit_err("must not be an empty array".into()));
    }
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(name) = item else {
            return Err(crit_err("entries must be strings".into()));
        };
        if names.contains(name) {
            return Err(crit_err(format!(
                "lists {:?} more than once",
                truncate_for_message(name)
            )));
        }
        if !CLAIM_NAMES.contains(&name.as_str()) {
            return Err(crit_err(format!(
                "names {:?}, which this verifier does not understand (understood: {})",
                truncate_for_message(name),
                CLAIM_NAMES.join(", ")
            )));
        }
        if !protected.contains_key(name) {
            return Err(crit_err(format!(
                "names {name:?}, which is not in the protected header"
            )));
        }
        names.push(name.clone());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::b64url_encode;

    fn compact(header: &str, payload: &str) -> String {
        format!("{}.{}.AAAA", b64url_encode(header), b64url_encode(payload))
    }

    fn first_error(input: &str) -> JwsError {
        Jws::parse(input.as_bytes()).unwrap_err()
    }

    #[test]
    fn detects_formats() {
        let c = compact(r#"{"alg":"ES256","kid":"k"}"#, "{}");
        let padded = format!("  {c}\n");
        let jws = Jws::parse(padded.as_bytes()).unwrap();
        assert_eq!(jws.format(), JwsFormat::Compact);
        assert_eq!(jws.payload_b64(), b64url_encode("{}"));
        assert_eq!(jws.decode_payload().unwrap(), b"{}");
        let (p, rest) = c.split_once('.').unwrap();
        let (pl, s) = rest.split_once('.').unwrap();
        let flat = format!(r#"{{"payload":"{pl}","protected":"{p}","signature":"{s}"}}"#);
        assert_eq!(
            Jws::parse(flat.as_bytes()).unwrap().format(),
            JwsFormat::Flattened
        );
        let general = format!(
            r#" {{"payload":"{pl}","signatures":[{{"protected":"{p}","signature":"{s}"}}]}}"#
        );
        let jws = Jws::parse(general.as_bytes()).unwrap();
        assert_eq!(jws.format(), JwsFormat::General);
        assert_eq!(jws.signature_count(), 1);
        // The payload text is borrowed from the input, not copied.
        assert!(matches!(jws.payload_b64, Cow::Borrowed(_)));
        let header = jws.headers()[0].unwrap();
        assert_eq!(header.alg, Algorithm::Es256);
        assert_eq!(header.kid.as_deref(), Some("k"));
    }

    #[test]
    fn shape_errors() {
        assert_eq!(first_error(""), JwsError::Empty);
        assert_eq!(first_error(" \n\t"), JwsError::Empty);
        assert!(matches!(
            Jws::parse(&[0xff, 0xfe]).unwrap_err(),
            JwsError::NotUtf8 { offset: 0 }
        ));
        assert!(matches!(first_error("{"), JwsError::Json(_)));
        assert!(matches!(first_error("{}"), JwsError::Malformed(_)));
        assert!(matches!(
            first_error(r#"{"payload":"e30"}"#),
            JwsError::Malformed(_)
        ));
        assert_eq!(
            first_error(r#"{"payload":"e30","signatures":[]}"#),
            JwsError::NoSignatures
        );
        assert!(matches!(
            first_error(r#"{"payload":"e30","payload":"e31","signatures":[]}"#),
            JwsError::Json(_)
        ));
        assert!(matches!(
            first_error(r#"{"payload":"e30","signatures":[{}],"signature":"AA"}"#),
            JwsError::Malformed(_)
        ));
        assert!(matches!(first_error("a.b"), JwsError::Compact(_)));
        let many = format!(
            r#"{{"payload":"e30","signatures":[{}]}}"#,
            vec!["{}"; MAX_SIGNATURES + 1].join(",")
        );
        assert!(matches!(first_error(&many), JwsError::Malformed(m) if m.contains("at most")));
        assert!(matches!(first_error("a.b.c.d"), JwsError::Compact(_)));
        assert!(matches!(first_error("a b.c.d"), JwsError::Compact(_)));
        assert!(matches!(
            first_error("this is not a JWS at all"),
            JwsError::Compact(_)
        ));
        assert!(matches!(
            first_error(r#"{"payload":"e30","signatures":[["a","b"]]}"#),
            JwsError::Entry { index: 0, .. }
        ));
        assert!(matches!(
            first_error(r#"{"payload":"e30","signatures":[{"signature":"AA"}]}"#),
            JwsError::MissingProtected { index: 0 }
        ));
    }

    #[test]
    fn header_checks() {
        type Check = fn(&JwsError) -> bool;
        let cases: [(&str, Check); 12] = [
            (
                r#"{"alg":"none"}"#,
                |e| matches!(e, JwsError::UnsupportedAlgorithm { alg, .. } if alg == "none"),
            ),
            (r#"{"alg":"HS256"}"#, |e| {
                matches!(e, JwsError::UnsupportedAlgorithm { .. })
            }),
            (r#"{"alg":5}"#, |e| {
                matches!(e, JwsError::HeaderMember { .. })
            }),
            (r#"{"kid":"k"}"#, |e| {
                matches!(e, JwsError::MissingAlg { .. })
            }),
            (
                r#"{"alg":"ES256","alg":"none"}"#,
                |e| matches!(e, JwsError::DuplicateMember { name, .. } if name == "alg"),
            ),
            (
                r#"{"alg":"ES256","kid":7}"#,
                |e| matches!(e, JwsError::HeaderMember { member, .. } if member == "kid"),
            ),
            (
                r#"{"alg":"ES256","crit":["x-unknown"],"x-unknown":1}"#,
                |e| matches!(e, JwsError::Crit { .. }),
            ),
            (r#"{"alg":"ES256","crit":[]}"#, |e| {
                matches!(e, JwsError::Crit { .. })
            }),
            (
                r#"{"alg":"ES256","crit":["exp"]}"#,
                |e| matches!(e, JwsError::Crit { reason, .. } if reason.contains("not in the protected header")),
            ),
            (r#"{"alg":"ES256","crit":["exp","exp"],"exp":5}"#, |e| {
                matches!(e, JwsError::Crit { .. })
            }),
            (r#"{"alg":"ES256","exp":"soon"}"#, |e| {
                matches!(e, JwsError::HeaderClaims { .. })
            }),
            ("[1]", |e| matches!(e, JwsError::Header { .. })),
        ];
        for (header, check) in cases {
            let err = first_error(&compact(header, "{}"));
            assert!(check(&err), "{header}: {err:?}");
            assert!(err.to_string().starts_with("signature 0: "), "{err}");
        }
        let text = compact(r#"{"alg":"ES256","crit":["exp"],"exp":5}"#, "{}");
        let ok = Jws::parse(text.as_bytes()).unwrap();
        let header = ok.headers()[0].unwrap();
        assert_eq!(header.crit, vec!["exp".to_owned()]);
        assert_eq!(header.claims.exp, Some(5));
    }

    #[test]
    fn unprotected_header_rules() {
        let p = b64url_encode(r#"{"alg":"ES256"}"#);
        let doc = |header: &str| {
            format!(r#"{{"payload":"e30","protected":"{p}","header":{header},"signature":"AA"}}"#)
        };
        assert!(matches!(
            first_error(&doc(r#"{"alg":"ES256"}"#)),
            JwsError::NotDisjoint { .. }
        ));
        assert!(matches!(
            first_error(&doc(r#"{"crit":["exp"]}"#)),
            JwsError::NotProtected { member: "crit", .. }
        ));
        assert!(matches!(
            first_error(&doc(r#"{"kid":"a","kid":"b"}"#)),
            JwsError::DuplicateMember {
                location: "unprotected",
                ..
            }
        ));
        assert!(matches!(
            first_error(&doc("[]")),
            JwsError::Header {
                location: "unprotected",
                ..
            }
        ));
        // kid may come from the unprotected header; claims there are ignored.
        let text = doc(r#"{"kid":"u","exp":1}"#);
        let jws = Jws::parse(text.as_bytes()).unwrap();
        let header = jws.headers()[0].unwrap();
        assert_eq!(header.kid.as_deref(), Some("u"));
        assert_eq!(header.claims.exp, None);
        // alg only in the unprotected header.
        let p2 = b64url_encode(r#"{"kid":"k"}"#);
        let only_unprotected = format!(
            r#"{{"payload":"e30","protected":"{p2}","header":{{"alg":"ES256"}},"signature":"AA"}}"#
        );
        assert!(matches!(
            first_error(&only_unprotected),
            JwsError::NotProtected { member: "alg", .. }
        ));
    }

    #[test]
    fn one_bad_entry_does_not_fail_a_general_document() {
        let good = b64url_encode(r#"{"alg":"ES256","kid":"k"}"#);
        let bad = b64url_encode(r#"{"alg":"none"}"#);
        let doc = format!(
            r#"{{"payload":"e30","signatures":[{{"protected":"{bad}","signature":""}},{{"protected":"{good}","signature":"AA"}}]}}"#
        );
        let jws = Jws::parse(doc.as_bytes()).unwrap();
        let headers = jws.headers();
        assert!(headers[0].is_err());
        assert!(headers[1].is_ok());
        // All bad: parse fails with the most telling error.
        let doc = format!(
            r#"{{"payload":"e30","signatures":[{{"protected":"{bad}","signature":""}},5]}}"#
        );
        assert!(matches!(
            first_error(&doc),
            JwsError::UnsupportedAlgorithm { index: 0, .. }
        ));
    }
}
