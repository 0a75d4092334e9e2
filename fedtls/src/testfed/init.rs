//! Creating a test federation on disk, in named steps: certificates, metadata, signing, files.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::jwk::{Jwks, SigningKey};
use crate::jws::{JwsFormat, SignOptions, sign_metadata};
use crate::metadata::{Endpoint, Entity, Issuer, Metadata, SAML_SCOPE_EXTENSION};
use crate::names::{OrganizationId, Tag};
use crate::pin::Pin;

use super::certs::{Issued, Window, ca, issued_by, leaf_params, self_signed};
use super::keys::{Keys, SIGNING_KEY_FILE, TEST_KEY_NOTE, party_key_file};
use super::manifest::manifest;
use super::output::Writer;
use super::{FederationOptions, Party, ServerPorts, TestFedError, TestFederation};

/// The organizations and entity ids of the three members.
const SCHOOL_ORG: &str = "Exempla kommun";
const SUPPLIER_ORG: &str = "Leverantör Exempel AB";
const AUTHORITY_ORG: &str = "Exempelmyndigheten";
const SCHOOL_ID: &str = "https://school.test.example";
const SUPPLIER_ID: &str = "https://supplier.test.example/moa";
const AUTHORITY_ID: &str = "https://auth.test.example";

/// Creates a test federation in `dir` (created if missing) and signs its metadata.
///
/// Members: a municipality running an SS 12000 server and a client (self-signed), a supplier
/// whose client and server chain to a private CA, and an authorization server tagged
/// `gnapv1`. An extra client certificate, `unlisted-client`, is deliberately not in the
/// metadata, for negative tests.
///
/// With [`FederationOptions::keep_keys`], the keys already in `dir` are reused, so the pins
/// and the JWKS stay the same; together with
/// [`CertValidity::Fixed`](super::CertValidity::Fixed), only the signatures (ECDSA is
/// randomized) and the metadata's `iat`/`exp` change from one run to the next. A kept key that
/// cannot be read stops the run before any file is written.
pub fn init(dir: &Path, options: &FederationOptions) -> Result<TestFederation, TestFedError> {
    if !options.force
        && let Ok(mut entries) = fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(TestFedError::NotEmpty(dir.to_path_buf()));
    }
    let now = crate::verify::unix_now();
    let (window, ca_window) = options.cert_validity.windows(now)?;
    let host = options.host.as_str();
    let mut keys = Keys {
        dir,
        keep: options.keep_keys,
        reused: Vec::new(),
    };
    let certs = issue_certificates(&mut keys, host, window, ca_window)?;
    let (signing_key, new_signing_key) = keys.signing(options.algorithm)?;
    let uris = base_uris(host, options.ports);
    let metadata = build_metadata(&certs, &uris);
    let (payload, jws) = sign(&metadata, &signing_key, options, now)?;

    fs::create_dir_all(dir).map_err(|source| TestFedError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let out = Writer { dir };
    let documents = write_documents(&out, &signing_key, new_signing_key, &payload, &jws)?;
    let parties = write_parties(&out, &certs, &uris)?;

    let federation = TestFederation {
        dir: dir.to_path_buf(),
        iss: options.iss.clone(),
        jwks: documents.jwks,
        signing_key: documents.signing_key,
        metadata_json: documents.metadata_json,
        metadata_jws: documents.metadata_jws,
        parties,
        reused_keys: keys.reused,
    };
    out.write("federation.json", manifest(&federation).as_bytes(), false)?;
    Ok(federation)
}

/// The certificates of the members, and the unlisted one.
struct Certificates {
    school_server: Issued,
    school_client: Issued,
    supplier_ca: Issued,
    supplier_client: Issued,
    supplier_server: Issued,
    authserver: Issued,
    unlisted: Issued,
}

/// Makes (or, with kept keys, remakes) every certificate; reads every kept key first.
fn issue_certificates(
    keys: &mut Keys<'_>,
    host: &str,
    window: Window,
    ca_window: Window,
) -> Result<Certificates, TestFedError> {
    let school_server = self_signed(
        leaf_params("school-server", SCHOOL_ORG, host, window)?,
        keys.party("school-server")?,
    )?;
    let school_client = self_signed(
        leaf_params("school-client", SCHOOL_ORG, host, window)?,
        keys.party("school-client")?,
    )?;
    let supplier_ca = ca(
        "Leverantör Exempel Root CA",
        SUPPLIER_ORG,
        ca_window,
        keys.party("supplier-ca")?,
    )?;
    let supplier_client = issued_by(
        leaf_params("supplier-client", SUPPLIER_ORG, host, window)?,
        &supplier_ca,
        keys.party("supplier-client")?,
    )?;
    let supplier_server = issued_by(
        leaf_params("supplier-server", SUPPLIER_ORG, host, window)?,
        &supplier_ca,
        keys.party("supplier-server")?,
    )?;
    let authserver = self_signed(
        leaf_params("authserver", AUTHORITY_ORG, host, window)?,
        keys.party("authserver")?,
    )?;
    let unlisted = self_signed(
        leaf_params("unlisted-client", "Okänd AB", host, window)?,
        keys.party("unlisted-client")?,
    )?;
    Ok(Certificates {
        school_server,
        school_client,
        supplier_ca,
        supplier_client,
        supplier_server,
        authserver,
        unlisted,
    })
}

/// The base URIs of the servers.
struct BaseUris {
    school_base: String,
    supplier_base: String,
    auth_base: String,
}

fn base_uris(host: &str, ports: ServerPorts) -> BaseUris {
    BaseUris {
        school_base: format!("https://{host}:{}/ss12000/v2.0/", ports.school),
        supplier_base: format!("https://{host}:{}/ss12000/", ports.supplier),
        auth_base: format!("https://{host}:{}/transaction", ports.auth),
    }
}

/// The metadata that lists the three members.
fn build_metadata(certs: &Certificates, uris: &BaseUris) -> Metadata {
    let Certificates {
        school_server,
        school_client,
        supplier_ca,
        supplier_client,
        supplier_server,
        authserver,
        ..
    } = certs;
    let BaseUris {
        school_base,
        supplier_base,
        auth_base,
    } = uris;
    let mut school_extensions = Map::new();
    school_extensions.insert(
        SAML_SCOPE_EXTENSION.to_owned(),
        json!({"scope": ["exempla.test.example", "skola.exempla.test.example"]}),
    );
    let entities = vec![
        Entity {
            entity_id: SCHOOL_ID.to_owned(),
            organization: Some(SCHOOL_ORG.to_owned()),
            organization_id: OrganizationId::new("SE2120009999").ok(),
            issuers: vec![issuer(school_server), issuer(school_client)],
            servers: vec![endpoint(
                "SS 12000 API",
                Some(school_base.clone()),
                school_server,
                &["egilv1"],
            )],
            clients: vec![endpoint(
                "SS 12000 client",
                None,
                school_client,
                &["egilv1"],
            )],
            scopes: vec![
                "exempla.test.example".to_owned(),
                "skola.exempla.test.example".to_owned(),
            ],
            extensions: Some(school_extensions),
            extra: Map::new(),
        },
        Entity {
            entity_id: SUPPLIER_ID.to_owned(),
            organization: Some(SUPPLIER_ORG.to_owned()),
            organization_id: OrganizationId::new("SE5566000001").ok(),
            issuers: vec![issuer(supplier_ca)],
            servers: vec![endpoint(
                "SS 12000 API (supplier)",
                Some(supplier_base.clone()),
                supplier_server,
                &["egilv1"],
            )],
            clients: vec![endpoint("Sync client", None, supplier_client, &["egilv1"])],
            scopes: Vec::new(),
            extensions: None,
            extra: Map::new(),
        },
        Entity {
            entity_id: AUTHORITY_ID.to_owned(),
            organization: Some(AUTHORITY_ORG.to_owned()),
            organization_id: OrganizationId::new("SE2021004185").ok(),
            issuers: vec![issuer(authserver)],
            servers: vec![endpoint(
                "Authorization server (GNAP)",
                Some(auth_base.clone()),
                authserver,
                &["gnapv1"],
            )],
            clients: Vec::new(),
            scopes: Vec::new(),
            extensions: None,
            extra: Map::new(),
        },
    ];
    Metadata {
        version: "1.0.0".to_owned(),
        cache_ttl: Some(3600),
        claims: Default::default(),
        entities,
        rejected: Vec::new(),
        warnings: Vec::new(),
        extra: Map::new(),
    }
}

/// The metadata as a JSON object, and signed by the federation key.
fn sign(
    metadata: &Metadata,
    signing_key: &SigningKey,
    options: &FederationOptions,
    now: i64,
) -> Result<(Map<String, Value>, String), TestFedError> {
    let payload = match serde_json::to_value(metadata) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(TestFedError::NotAnObject);
        }
    };
    let jws = sign_metadata(
        &payload,
        &[signing_key],
        &SignOptions {
            iss: options.iss.clone(),
            lifetime_secs: options.metadata_lifetime_secs,
            now,
            format: JwsFormat::General,
            default_cache_ttl: 3600,
        },
    )?;
    Ok((payload, jws))
}

/// The paths of the federation-wide files.
struct Documents {
    signing_key: PathBuf,
    jwks: PathBuf,
    metadata_json: PathBuf,
    metadata_jws: PathBuf,
}

/// Writes the signing key (if new), the JWKS and the metadata, plain and signed.
fn write_documents(
    out: &Writer<'_>,
    signing_key: &SigningKey,
    new_signing_key: bool,
    payload: &Map<String, Value>,
    jws: &str,
) -> Result<Documents, TestFedError> {
    let signing_key_path = if new_signing_key {
        out.write(
            SIGNING_KEY_FILE,
            signing_key.to_private_jwk_json().as_bytes(),
            true,
        )?
    } else {
        out.dir.join(SIGNING_KEY_FILE)
    };
    let jwks_path = out.write(
        "jwks.json",
        Jwks::from_keys(vec![signing_key.public_jwk()])
            .to_json()
            .as_bytes(),
        false,
    )?;
    let pretty = serde_json::to_vec_pretty(payload).unwrap_or_default();
    let metadata_json = out.write("metadata.json", &pretty, false)?;
    let metadata_jws = out.write("metadata.jws", jws.as_bytes(), false)?;
    Ok(Documents {
        signing_key: signing_key_path,
        jwks: jwks_path,
        metadata_json,
        metadata_jws,
    })
}

/// Writes every party's certificate, new key and chain, and describes the party.
fn write_parties(
    out: &Writer<'_>,
    certs: &Certificates,
    uris: &BaseUris,
) -> Result<Vec<Party>, TestFedError> {
    let Certificates {
        school_server,
        school_client,
        supplier_ca,
        supplier_client,
        supplier_server,
        authserver,
        unlisted,
    } = certs;
    let BaseUris {
        school_base,
        supplier_base,
        auth_base,
    } = uris;
    let mut parties = Vec::new();
    let mut add = |name: &str,
                   entity_id: Option<&str>,
                   role: &str,
                   cert: &Issued,
                   ca: Option<&Issued>,
                   base_uri: Option<&str>,
                   tags: &[&str]|
     -> Result<(), TestFedError> {
        let cert_path = out.write(&format!("certs/{name}.pem"), cert.pem.as_bytes(), false)?;
        let key_path = if cert.new_key {
            let pem = format!("{TEST_KEY_NOTE}{}", cert.key.serialize_pem());
            out.write(&party_key_file(name), pem.as_bytes(), true)?
        } else {
            out.dir.join(party_key_file(name))
        };
        let chain = match ca {
            Some(ca) => Some(out.write(
                &format!("certs/{name}-chain.pem"),
                format!("{}{}", cert.pem, ca.pem).as_bytes(),
                false,
            )?),
            None => None,
        };
        parties.push(Party {
            name: name.to_owned(),
            entity_id: entity_id.map(str::to_owned),
            role: role.to_owned(),
            cert: cert_path,
            key: key_path,
            chain,
            pin: Pin::of_certificate(&cert.der)?,
            base_uri: base_uri.map(str::to_owned),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        });
        Ok(())
    };
    add(
        "school-server",
        Some(SCHOOL_ID),
        "server",
        school_server,
        None,
        Some(school_base),
        &["egilv1"],
    )?;
    add(
        "school-client",
        Some(SCHOOL_ID),
        "client",
        school_client,
        None,
        None,
        &["egilv1"],
    )?;
    add(
        "supplier-ca",
        Some(SUPPLIER_ID),
        "ca",
        supplier_ca,
        None,
        None,
        &[],
    )?;
    add(
        "supplier-client",
        Some(SUPPLIER_ID),
        "client",
        supplier_client,
        Some(supplier_ca),
        None,
        &["egilv1"],
    )?;
    add(
        "supplier-server",
        Some(SUPPLIER_ID),
        "server",
        supplier_server,
        Some(supplier_ca),
        Some(supplier_base),
        &["egilv1"],
    )?;
    add(
        "authserver",
        Some(AUTHORITY_ID),
        "server",
        authserver,
        None,
        Some(auth_base),
        &["gnapv1"],
    )?;
    add("unlisted-client", None, "client", unlisted, None, None, &[])?;
    Ok(parties)
}

fn endpoint(description: &str, base_uri: Option<String>, cert: &Issued, tags: &[&str]) -> Endpoint {
    Endpoint {
        description: Some(description.to_owned()),
        base_uri,
        pins: Pin::of_certificate(&cert.der).into_iter().collect(),
        tags: tags.iter().filter_map(|t| Tag::new(t).ok()).collect(),
        extra: Map::new(),
    }
}

fn issuer(cert: &Issued) -> Issuer {
    Issuer {
        certificate: cert.der.clone(),
        extra: Map::new(),
    }
}
