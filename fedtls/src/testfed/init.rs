//! Creating a test federation on disk.

use std::fs;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::jwk::Jwks;
use crate::jws::{JwsFormat, SignOptions, sign_metadata};
use crate::metadata::{Endpoint, Entity, Issuer, Metadata, SAML_SCOPE_EXTENSION};
use crate::names::{OrganizationId, Tag};
use crate::pin::Pin;

use super::certs::{Issued, ca, issued_by, leaf_params, self_signed};
use super::keys::{Keys, SIGNING_KEY_FILE, TEST_KEY_NOTE, party_key_file};
use super::manifest::manifest;
use super::output::Writer;
use super::{FederationOptions, Party, TestFedError, TestFederation};

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

    let school_org = "Exempla kommun";
    let school_server = self_signed(
        leaf_params("school-server", school_org, host, window)?,
        keys.party("school-server")?,
    )?;
    let school_client = self_signed(
        leaf_params("school-client", school_org, host, window)?,
        keys.party("school-client")?,
    )?;
    let supplier_org = "Leverantör Exempel AB";
    let supplier_ca = ca(
        "Leverantör Exempel Root CA",
        supplier_org,
        ca_window,
        keys.party("supplier-ca")?,
    )?;
    let supplier_client = issued_by(
        leaf_params("supplier-client", supplier_org, host, window)?,
        &supplier_ca,
        keys.party("supplier-client")?,
    )?;
    let supplier_server = issued_by(
        leaf_params("supplier-server", supplier_org, host, window)?,
        &supplier_ca,
        keys.party("supplier-server")?,
    )?;
    let authority_org = "Exempelmyndigheten";
    let authserver = self_signed(
        leaf_params("authserver", authority_org, host, window)?,
        keys.party("authserver")?,
    )?;
    let unlisted = self_signed(
        leaf_params("unlisted-client", "Okänd AB", host, window)?,
        keys.party("unlisted-client")?,
    )?;
    let (signing_key, new_signing_key) = keys.signing(options.algorithm)?;

    let school_id = "https://school.test.example";
    let supplier_id = "https://supplier.test.example/moa";
    let authority_id = "https://auth.test.example";
    let ports = options.ports;
    let school_base = format!("https://{host}:{}/ss12000/v2.0/", ports.school);
    let supplier_base = format!("https://{host}:{}/ss12000/", ports.supplier);
    let auth_base = format!("https://{host}:{}/transaction", ports.auth);

    let mut school_extensions = Map::new();
    school_extensions.insert(
        SAML_SCOPE_EXTENSION.to_owned(),
        json!({"scope": ["exempla.test.example", "skola.exempla.test.example"]}),
    );
    let entities = vec![
        Entity {
            entity_id: school_id.to_owned(),
            organization: Some(school_org.to_owned()),
            organization_id: OrganizationId::new("SE2120009999").ok(),
            issuers: vec![issuer(&school_server), issuer(&school_client)],
            servers: vec![endpoint(
                "SS 12000 API",
                Some(school_base.clone()),
                &school_server,
                &["egilv1"],
            )],
            clients: vec![endpoint(
                "SS 12000 client",
                None,
                &school_client,
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
            entity_id: supplier_id.to_owned(),
            organization: Some(supplier_org.to_owned()),
            organization_id: OrganizationId::new("SE5566000001").ok(),
            issuers: vec![issuer(&supplier_ca)],
            servers: vec![endpoint(
                "SS 12000 API (supplier)",
                Some(supplier_base.clone()),
                &supplier_server,
                &["egilv1"],
            )],
            clients: vec![endpoint("Sync client", None, &supplier_client, &["egilv1"])],
            scopes: Vec::new(),
            extensions: None,
            extra: Map::new(),
        },
        Entity {
            entity_id: authority_id.to_owned(),
            organization: Some(authority_org.to_owned()),
            organization_id: OrganizationId::new("SE2021004185").ok(),
            issuers: vec![issuer(&authserver)],
            servers: vec![endpoint(
                "Authorization server (GNAP)",
                Some(auth_base.clone()),
                &authserver,
                &["gnapv1"],
            )],
            clients: Vec::new(),
            scopes: Vec::new(),
            extensions: None,
            extra: Map::new(),
        },
    ];
    let metadata = Metadata {
        version: "1.0.0".to_owned(),
        cache_ttl: Some(3600),
        claims: Default::default(),
        entities,
        rejected: Vec::new(),
        warnings: Vec::new(),
        extra: Map::new(),
    };

    let payload = match serde_json::to_value(&metadata) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(TestFedError::NotAnObject);
        }
    };
    let jws = sign_metadata(
        &payload,
        &[&signing_key],
        &SignOptions {
            iss: options.iss.clone(),
            lifetime_secs: options.metadata_lifetime_secs,
            now,
            format: JwsFormat::General,
            default_cache_ttl: 3600,
        },
    )?;

    fs::create_dir_all(dir).map_err(|source| TestFedError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let out = Writer { dir };
    let signing_key_path = if new_signing_key {
        out.write(
            SIGNING_KEY_FILE,
            signing_key.to_private_jwk_json().as_bytes(),
            true,
        )?
    } else {
        dir.join(SIGNING_KEY_FILE)
    };
    let jwks_path = out.write(
        "jwks.json",
        Jwks::from_keys(vec![signing_key.public_jwk()])
            .to_json()
            .as_bytes(),
        false,
    )?;
    let pretty = serde_json::to_vec_pretty(&payload).unwrap_or_default();
    let metadata_json = out.write("metadata.json", &pretty, false)?;
    let metadata_jws = out.write("metadata.jws", jws.as_bytes(), false)?;

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
            dir.join(party_key_file(name))
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
        Some(school_id),
        "server",
        &school_server,
        None,
        Some(&school_base),
        &["egilv1"],
    )?;
    add(
        "school-client",
        Some(school_id),
        "client",
        &school_client,
        None,
        None,
        &["egilv1"],
    )?;
    add(
        "supplier-ca",
        Some(supplier_id),
        "ca",
        &supplier_ca,
        None,
        None,
        &[],
    )?;
    add(
        "supplier-client",
        Some(supplier_id),
        "client",
        &supplier_client,
        Some(&supplier_ca),
        None,
        &["egilv1"],
    )?;
    add(
        "supplier-server",
        Some(supplier_id),
        "server",
        &supplier_server,
        Some(&supplier_ca),
        Some(&supplier_base),
        &["egilv1"],
    )?;
    add(
        "authserver",
        Some(authority_id),
        "server",
        &authserver,
        None,
        Some(&auth_base),
        &["gnapv1"],
    )?;
    add(
        "unlisted-client",
        None,
        "client",
        &unlisted,
        None,
        None,
        &[],
    )?;

    let federation = TestFederation {
        dir: dir.to_path_buf(),
        iss: options.iss.clone(),
        jwks: jwks_path,
        signing_key: signing_key_path,
        metadata_json,
        metadata_jws,
        parties,
        reused_keys: keys.reused,
    };
    out.write("federation.json", manifest(&federation).as_bytes(), false)?;
    Ok(federation)
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
