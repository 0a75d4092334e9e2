//! Member metadata generation: an entity object built from the member's certificates, with
//! pins computed and issuers derived, ready for upload (and clean under [`crate::lint`]).

use rustls_pki_types::CertificateDer;
use serde_json::{Map, Value, json};

use crate::encoding::pem_encode;
use crate::lint::{SAML_SCOPE_EXTENSION, is_lowercase_dns_name, parse_absolute_uri};
use crate::names::{Tag, is_moa_organization_id};
use crate::pin::{PinError, pem_certificates, truncate_for_message};
use crate::x509::{self, X509Error};

/// One server or client of the entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSpec {
    /// PEM of the endpoint's certificate: a leaf file, or a chain file with the leaf first
    /// and the root last.
    pub certificate_pem: Vec<u8>,
    /// Further certificates the endpoint uses or is about to use, each like
    /// `certificate_pem`: during a renewal the new certificate beside the old one, so that
    /// peers learn the new pin before the switch. Each adds its pin (and issuer); a renewed
    /// self-signed certificate may keep the subject of the one it replaces.
    pub more_certificates_pem: Vec<Vec<u8>>,
    /// The URL clients connect to (required for servers).
    pub base_uri: Option<String>,
    /// Discovery and authorization tags.
    pub tags: Vec<Tag>,
    /// A human-readable description.
    pub description: Option<String>,
}

/// Everything needed to build one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntitySpec {
    /// The entity's unique URI.
    pub entity_id: String,
    /// The member's legal name.
    pub organization: Option<String>,
    /// The Moa organization id (`LLYYMMDDXXXX`).
    pub organization_id: Option<String>,
    /// Servers, in output order.
    pub servers: Vec<EndpointSpec>,
    /// Clients, in output order.
    pub clients: Vec<EndpointSpec>,
    /// Further issuer certificates (PEM, one or more certificates each) to list.
    pub extra_issuers_pem: Vec<Vec<u8>>,
    /// DNS domains for the Kontosynk saml-scope extension (lowercased on output).
    pub scopes: Vec<String>,
}

/// Why an entity could not be built. Endpoints are named as `server 1`, `client 2` (1-based,
/// in the order given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityError {
    /// `entity_id` is empty or not an absolute URI.
    #[error("entity_id {id:?} is not usable: {why}")]
    BadEntityId {
        /// The given value.
        id: String,
        /// What is wrong.
        why: String,
    },
    /// `organization_id` is not `LLYYMMDDXXXX`.
    #[error(
        "organization_id {0:?} is not LLYYMMDDXXXX: two capital letters of country code and the 10-digit organization number, e.g. SE2021004185"
    )]
    BadOrganizationId(String),
    /// The entity has no servers and no clients.
    #[error("the entity has no servers and no clients: give at least one")]
    NoEndpoints,
    /// An endpoint's PEM holds no certificate.
    #[error("{endpoint}: no certificate in the given PEM: {source}")]
    NoCertificate {
        /// `server 1`, `client 2`, ….
        endpoint: String,
        /// The PEM problem.
        source: PinError,
    },
    /// A certificate could not be parsed.
    #[error("{endpoint}: certificate {position} of the PEM cannot be read: {source}")]
    BadCertificate {
        /// `server 1`, `client 2`, `issuer 1`.
        endpoint: String,
        /// 1-based position in the PEM file.
        position: usize,
        /// The parse error.
        source: X509Error,
    },
    /// A chain file is not in leaf-to-root order or a link does not verify.
    #[error(
        "{endpoint}: certificate {position} of the chain ({subject}) is not signed by certificate {next}: {source}; put the leaf first and each issuer after the certificate it signed"
    )]
    BrokenChain {
        /// `server 1`, `client 2`.
        endpoint: String,
        /// 1-based position of the child.
        position: usize,
        /// 1-based position of the expected issuer.
        next: usize,
        /// The child's subject.
        subject: String,
        /// Why the link failed.
        source: X509Error,
    },
    /// A single leaf that is not self-signed, with no extra issuer that signed it.
    #[error(
        "{endpoint}: the certificate {subject} is issued by {issuer} and is not self-signed: pass the chain file (leaf first, root last) or the issuing root CA as an extra issuer (--issuer)"
    )]
    MissingIssuer {
        /// `server 1`, `client 2`.
        endpoint: String,
        /// The leaf's subject.
        subject: String,
        /// The leaf's issuer name.
        issuer: String,
    },
    /// A server without `base_uri`.
    #[error("{endpoint}: a server needs a base_uri (the https URL clients connect to)")]
    MissingBaseUri {
        /// `server 1`, ….
        endpoint: String,
    },
    /// A `base_uri` that is not an http(s) URL.
    #[error("{endpoint}: base_uri {uri:?} is not an https URL: {why}")]
    BadBaseUri {
        /// `server 1`, `client 2`.
        endpoint: String,
        /// The given value.
        uri: String,
        /// What is wrong.
        why: String,
    },
    /// An extra issuer PEM holds no certificate.
    #[error("issuer {index}: no certificate in the given PEM: {source}")]
    BadIssuerPem {
        /// 1-based position among the extra issuers.
        index: usize,
        /// The PEM problem.
        source: PinError,
    },
    /// Two different issuer certificates of different endpoints (or extra issuers) have the
    /// same subject name. (Certificates of one endpoint may: that is a renewal.)
    #[error(
        "two different issuer certificates have the same subject {0}: every issuer needs a distinct X.509 subject; reissue one with a unique name (a renewed certificate is given beside the old one of the same endpoint: cert=OLD,cert=NEW)"
    )]
    DuplicateIssuerSubject(String),
    /// A scope that is not a DNS domain name.
    #[error("scope {0:?} is not a DNS domain name such as skola.example.se")]
    BadScope(String),
}

/// Builds an entity object: `entity_id`, `organization`, `organization_id`, `issuers`,
/// `servers`, `clients`, `extensions` (only with scopes), in that order; empty server or
/// client lists are left out.
///
/// Each endpoint's pins are the SPKI pins of the first certificate of each of its certificate
/// files (one, or several while a certificate is renewed). Issuers: the last
/// certificate of a chain file; a self-signed single leaf itself; a single leaf signed by
/// one of the extra issuers needs nothing more; any other single leaf is an error. A client
/// tagged `gnapv1` also lists its own certificate (the SUNET authorization server, Skolverket's
/// token service, accepts a client only when its certificate is one of the issuers). The extra
/// issuers are listed too. Issuers are deduplicated by DER.
pub fn build_entity(spec: &EntitySpec) -> Result<Value, EntityError> {
    match parse_absolute_uri(&spec.entity_id) {
        Ok(_) => {}
        Err(why) => {
            return Err(EntityError::BadEntityId {
                id: truncate_for_message(&spec.entity_id),
                why: format!("{why}; use a URI such as https://example.org/metadata"),
            });
        }
    }
    if let Some(id) = &spec.organization_id
        && !is_moa_organization_id(id)
    {
        return Err(EntityError::BadOrganizationId(truncate_for_message(id)));
    }
    if spec.servers.is_empty() && spec.clients.is_empty() {
        return Err(EntityError::NoEndpoints);
    }

    let mut extra_issuers: Vec<CertificateDer<'static>> = Vec::new();
    for (i, pem) in spec.extra_issuers_pem.iter().enumerate() {
        let certs = pem_certificates(pem).map_err(|source| EntityError::BadIssuerPem {
            index: i + 1,
            source,
        })?;
        for (position, cert) in certs.iter().enumerate() {
            x509::inspect(cert).map_err(|source| EntityError::BadCertificate {
                endpoint: format!("issuer {}", i + 1),
                position: position + 1,
                source,
            })?;
        }
        extra_issuers.extend(certs);
    }

    // Each issuer with the endpoint it came from: same-subject issuers of one endpoint are
    // generations of one certificate (a renewal), of two endpoints a clash.
    let mut issuers: Vec<(CertificateDer<'static>, String)> = Vec::new();
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (role, specs, out) in [
        ("server", &spec.servers, &mut servers),
        ("client", &spec.clients, &mut clients),
    ] {
        for (i, endpoint) in specs.iter().enumerate() {
            let name = format!("{role} {}", i + 1);
            let (value, implied) =
                build_endpoint(endpoint, &name, role == "server", &extra_issuers)?;
            issuers.extend(implied.into_iter().map(|issuer| (issuer, name.clone())));
            out.push(value);
        }
    }
    issuers.extend(
        extra_issuers
            .into_iter()
            .enumerate()
            .map(|(i, issuer)| (issuer, format!("issuer {}", i + 1))),
    );
    let mut unique: Vec<CertificateDer<'static>> = Vec::new();
    let mut subjects: Vec<(Vec<u8>, String)> = Vec::new();
    for (issuer, source) in issuers {
        if unique.contains(&issuer) {
            continue;
        }
        // Every issuer parsed before it got here.
        let info = x509::inspect(&issuer).map_err(|source| EntityError::BadCertificate {
            endpoint: "issuer".to_owned(),
            position: unique.len() + 1,
            source,
        })?;
        if subjects
            .iter()
            .any(|(subject, from)| *subject == info.subject_der && *from != source)
        {
            return Err(EntityError::DuplicateIssuerSubject(info.subject));
        }
        subjects.push((info.subject_der, source));
        unique.push(issuer);
    }

    let mut scopes = Vec::new();
    for scope in &spec.scopes {
        let lower = scope.trim().to_ascii_lowercase();
        if !is_lowercase_dns_name(&lower) {
            return Err(EntityError::BadScope(truncate_for_message(scope)));
        }
        if !scopes.contains(&lower) {
            scopes.push(lower);
        }
    }

    let mut entity = Map::new();
    entity.insert("entity_id".into(), Value::String(spec.entity_id.clone()));
    if let Some(org) = &spec.organization {
        entity.insert("organization".into(), Value::String(org.clone()));
    }
    if let Some(id) = &spec.organization_id {
        entity.insert("organization_id".into(), Value::String(id.clone()));
    }
    entity.insert(
        "issuers".into(),
        Value::Array(
            unique
                .iter()
                .map(|der| json!({ "x509certificate": pem_encode("CERTIFICATE", der) }))
                .collect(),
        ),
    );
    if !servers.is_empty() {
        entity.insert("servers".into(), Value::Array(servers));
    }
    if !clients.is_empty() {
        entity.insert("clients".into(), Value::Array(clients));
    }
    if !scopes.is_empty() {
        let mut extensions = Map::new();
        extensions.insert(SAML_SCOPE_EXTENSION.into(), json!({ "scope": scopes }));
        entity.insert("extensions".into(), Value::Object(extensions));
    }
    Ok(Value::Object(entity))
}

/// Builds one endpoint object and returns the issuers its certificate files imply.
fn build_endpoint(
    spec: &EndpointSpec,
    name: &str,
    is_server: bool,
    extra_issuers: &[CertificateDer<'static>],
) -> Result<(Value, Vec<CertificateDer<'static>>), EntityError> {
    let files: Vec<&Vec<u8>> = std::iter::once(&spec.certificate_pem)
        .chain(&spec.more_certificates_pem)
        .collect();
    let mut pins: Vec<String> = Vec::new();
    let mut issuers = Vec::new();
    for (i, pem) in files.iter().enumerate() {
        let file_name = if files.len() > 1 {
            format!("{name} (certificate {})", i + 1)
        } else {
            name.to_owned()
        };
        let (pin, issuer) = certificate_file(pem, &file_name, extra_issuers)?;
        if !pins.contains(&pin) {
            pins.push(pin);
        }
        // The SUNET authorization server (Skolverket's) finds a client only among its
        // entity's issuers: a gnapv1 client's own certificate is listed beside its CA.
        let leaf = (!is_server && spec.tags.iter().any(|t| t.as_str() == "gnapv1"))
            .then(|| pem_certificates(pem).ok())
            .flatten()
            .and_then(|chain| chain.into_iter().next())
            .filter(|leaf| issuer.as_ref() != Some(leaf));
        issuers.extend(issuer);
        issuers.extend(leaf);
    }

    let mut endpoint = Map::new();
    if let Some(description) = &spec.description {
        endpoint.insert("description".into(), Value::String(description.clone()));
    }
    match &spec.base_uri {
        None if is_server => {
            return Err(EntityError::MissingBaseUri {
                endpoint: name.to_owned(),
            });
        }
        None => {}
        Some(uri) => {
            let bad = |why: &str| EntityError::BadBaseUri {
                endpoint: name.to_owned(),
                uri: truncate_for_message(uri),
                why: why.to_owned(),
            };
            let parsed = parse_absolute_uri(uri).map_err(bad)?;
            if !matches!(parsed.scheme.as_str(), "https" | "http") {
                return Err(bad("the scheme must be https"));
            }
            endpoint.insert("base_uri".into(), Value::String(uri.clone()));
        }
    }
    endpoint.insert(
        "pins".into(),
        Value::Array(
            pins.into_iter()
                .map(|digest| json!({ "alg": "sha256", "digest": digest }))
                .collect(),
        ),
    );
    let mut tags: Vec<&str> = Vec::new();
    for tag in &spec.tags {
        if !tags.contains(&tag.as_str()) {
            tags.push(tag.as_str());
        }
    }
    if !tags.is_empty() {
        endpoint.insert("tags".into(), json!(tags));
    }
    Ok((Value::Object(endpoint), issuers))
}

/// One certificate file of an endpoint: the pin of its leaf and the issuer it implies.
fn certificate_file(
    pem: &[u8],
    name: &str,
    extra_issuers: &[CertificateDer<'static>],
) -> Result<(String, Option<CertificateDer<'static>>), EntityError> {
    let chain = pem_certificates(pem).map_err(|source| EntityError::NoCertificate {
        endpoint: name.to_owned(),
        source,
    })?;
    let mut infos = Vec::with_capacity(chain.len());
    for (position, cert) in chain.iter().enumerate() {
        infos.push(
            x509::inspect(cert).map_err(|source| EntityError::BadCertificate {
                endpoint: name.to_owned(),
                position: position + 1,
                source,
            })?,
        );
    }
    let (Some(leaf_info), Some(last)) = (infos.first(), chain.last()) else {
        return Err(EntityError::NoCertificate {
            endpoint: name.to_owned(),
            source: PinError::NoCertificate,
        });
    };

    for (position, pair) in chain.windows(2).enumerate() {
        if let [child, parent] = pair {
            x509::verify_signed_by(child, parent).map_err(|source| EntityError::BrokenChain {
                endpoint: name.to_owned(),
                position: position + 1,
                next: position + 2,
                subject: infos
                    .get(position)
                    .map(|i| i.subject.clone())
                    .unwrap_or_default(),
                source,
            })?;
        }
    }

    let issuer = if chain.len() > 1 || leaf_info.self_signed {
        Some(last.clone())
    } else if extra_issuers
        .iter()
        .any(|issuer| x509::verify_signed_by(last, issuer).is_ok())
    {
        None
    } else {
        return Err(EntityError::MissingIssuer {
            endpoint: name.to_owned(),
            subject: leaf_info.subject.clone(),
            issuer: leaf_info.issuer.clone(),
        });
    };

    Ok((leaf_info.pin.to_string(), issuer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{LintOptions, Profile, lint};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn self_signed_pem(name: &str) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).unwrap().pem()
    }

    fn tags(list: &[&str]) -> Vec<Tag> {
        list.iter().map(|t| Tag::new(t).unwrap()).collect()
    }

    #[test]
    fn self_signed_endpoints_list_themselves() {
        let server_pem = self_signed_pem("api.skola.example");
        let client_pem = self_signed_pem("client.example");
        let spec = EntitySpec {
            entity_id: "https://skola.example/md".into(),
            organization: Some("Exempel kommun".into()),
            organization_id: Some("SE2120001234".into()),
            servers: vec![EndpointSpec {
                certificate_pem: server_pem.clone().into_bytes(),
                base_uri: Some("https://api.skola.example/".into()),
                tags: tags(&["egilv1"]),
                description: Some("SS 12000".into()),
                ..Default::default()
            }],
            clients: vec![EndpointSpec {
                certificate_pem: client_pem.clone().into_bytes(),
                tags: tags(&["egilv1", "egilv1"]),
                ..Default::default()
            }],
            extra_issuers_pem: vec![server_pem.clone().into_bytes()],
            scopes: vec!["Skola.Example".into()],
        };
        let value = build_entity(&spec).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "entity_id",
                "organization",
                "organization_id",
                "issuers",
                "servers",
                "clients",
                "extensions"
            ]
        );
        assert_eq!(
            value["issuers"].as_array().unwrap().len(),
            2,
            "deduplicated"
        );
        assert_eq!(value["issuers"][0]["x509certificate"], server_pem.as_str());
        assert_eq!(value["clients"][0]["tags"], json!(["egilv1"]));
        assert_eq!(
            value["extensions"][SAML_SCOPE_EXTENSION]["scope"],
            json!(["skola.example"])
        );
        let report = lint(
            serde_json::to_string(&value).unwrap().as_bytes(),
            &LintOptions::new(Profile::Moa, 2_000_000_000),
        );
        assert!(report.problems.is_empty(), "{:#?}", report.problems);
    }

    #[test]
    fn chain_and_missing_issuer() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Unit Root CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["leaf.example".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();

        let client = |pem: String| EndpointSpec {
            certificate_pem: pem.into_bytes(),
            tags: tags(&["egilv1"]),
            ..Default::default()
        };
        let mut spec = EntitySpec {
            entity_id: "https://leverantor.example/".into(),
            clients: vec![client(format!("{}{}", leaf.pem(), ca.pem()))],
            ..Default::default()
        };
        let value = build_entity(&spec).unwrap();
        assert_eq!(value["issuers"][0]["x509certificate"], ca.pem().as_str());
        assert_eq!(
            value["clients"][0]["pins"][0]["digest"],
            crate::Pin::of_pem(leaf.pem().as_bytes())
                .unwrap()
                .to_string()
        );

        // Reversed chain: refused.
        spec.clients = vec![client(format!("{}{}", ca.pem(), leaf.pem()))];
        assert!(matches!(
            build_entity(&spec),
            Err(EntityError::BrokenChain { position: 1, .. })
        ));

        // Leaf alone: refused, unless the root is given as an extra issuer.
        spec.clients = vec![client(leaf.pem())];
        let err = build_entity(&spec).unwrap_err();
        assert!(matches!(err, EntityError::MissingIssuer { .. }));
        assert!(err.to_string().contains("--issuer"), "{err}");
        spec.extra_issuers_pem = vec![ca.pem().into_bytes()];
        let value = build_entity(&spec).unwrap();
        assert_eq!(value["issuers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn input_errors() {
        let pem = self_signed_pem("x.example");
        let server = EndpointSpec {
            certificate_pem: pem.clone().into_bytes(),
            ..Default::default()
        };
        let mut spec = EntitySpec {
            entity_id: "https://x.example".into(),
            servers: vec![server],
            ..Default::default()
        };
        assert_eq!(
            build_entity(&spec),
            Err(EntityError::MissingBaseUri {
                endpoint: "server 1".into()
            })
        );
        spec.servers[0].base_uri = Some("ftp://x.example/".into());
        assert!(matches!(
            build_entity(&spec),
            Err(EntityError::BadBaseUri { .. })
        ));
        spec.servers[0].base_uri = Some("https://x.example/".into());
        assert!(build_entity(&spec).is_ok());

        spec.entity_id = String::new();
        assert!(matches!(
            build_entity(&spec),
            Err(EntityError::BadEntityId { .. })
        ));
        spec.entity_id = "https://x.example".into();
        spec.organization_id = Some("SE-202100-4185".into());
        assert!(matches!(
            build_entity(&spec),
            Err(EntityError::BadOrganizationId(_))
        ));
        spec.organization_id = None;
        spec.scopes = vec!["not a domain".into()];
        assert!(matches!(build_entity(&spec), Err(EntityError::BadScope(_))));
        spec.scopes.clear();
        spec.servers[0].certificate_pem = b"garbage".to_vec();
        assert!(matches!(
            build_entity(&spec),
            Err(EntityError::NoCertificate { .. })
        ));
        spec.servers[0].certificate_pem = pem.clone().into_bytes();
        spec.clients = vec![EndpointSpec {
            // Another key, same subject name: the two issuers would clash.
            certificate_pem: self_signed_pem("x.example").into_bytes(),
            ..Default::default()
        }];
        assert!(matches!(
            build_entity(&spec),
            Err(EntityError::DuplicateIssuerSubject(_))
        ));
        spec.clients.clear();
        spec.servers.clear();
        assert_eq!(build_entity(&spec), Err(EntityError::NoEndpoints));
    }
}
