//! Servers and clients of an entity, and their pins.

use serde_json::Value;

use crate::json::{Path, kind as type_name};
use crate::pin::{Pin, truncate_for_message};

use super::uri::parse_absolute_uri;
use super::{ENDPOINT_MEMBERS, Linter, PIN_MEMBERS, PinSite, Role, ServerSite};

impl Linter<'_> {
    pub(super) fn endpoint(&mut self, value: &Value, path: Path, entity: usize, role: Role) {
        let Value::Object(map) = value else {
            if let Some(facts) = self.entities.get_mut(entity) {
                facts.pins_incomplete = true;
            }
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
        let gnap = map
            .get("tags")
            .and_then(Value::as_array)
            .is_some_and(|tags| tags.iter().any(|t| t == "gnapv1"));
        if role == Role::Client && gnap {
            self.gnap_clients.push(path.clone());
        }

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
                Ok(u) if u.scheme == "https" => {
                    if let (Role::Server, Some(host)) = (role, u.host) {
                        self.servers.push(ServerSite {
                            entity,
                            endpoint: path.clone(),
                            host,
                        });
                    }
                }
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
        let usable = map
            .get("pins")
            .and_then(Value::as_array)
            .is_some_and(|items| {
                !items.is_empty()
                    && items.iter().all(|p| {
                        let digest = p.get("digest").or_else(|| p.get("value"));
                        digest
                            .and_then(Value::as_str)
                            .is_some_and(|d| Pin::parse_digest(d).is_ok())
                    })
            });
        if !usable && let Some(facts) = self.entities.get_mut(entity) {
            facts.pins_incomplete = true;
        }
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
            self.error(
                &path,
                "legacy pin form {\"name\", \"value\"} (verifiers still read it, the schema does not allow it): write {\"alg\": \"sha256\", \"digest\": \"...\"} instead",
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
                self.error(
                    &alg_path,
                    format!("write {alg_key} as \"sha256\" (lowercase, no dash)"),
                );
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
                        self.error(
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
}
