//! EGIL test support: an EGIL server on loopback for a [`Fed`], and a client that sends
//! exactly what EgilSCIM 2.23 sends (its headers, on one keep-alive HTTP/1.1 connection), with
//! sample EGIL resources shaped like EgilSCIM's.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use fedtls::snapshot::SnapshotCell;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kontosynk_framework::ServerBuilder;
use kontosynk_server::egil::{EgilConfig, EgilServer};
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use ss12000::Store;
use tokio::net::TcpStream;

use crate::federation::{Fed, Running, spawn};

/// The User-Agent EgilSCIM sends.
pub const USER_AGENT: &str = "EgilSCIM/2.23.0 libcurl/8.5.0 OpenSSL/3.0.13";

/// Starts an EGIL server with `supplier-server`'s certificate over `store`, deciding with
/// `cell`; `optional_certs` lets clients connect without a certificate (the API-key listener).
pub async fn start_egil(
    fed: &Fed,
    cell: Arc<SnapshotCell>,
    store: Store,
    config: EgilConfig,
    optional_certs: bool,
) -> (Running, EgilServer) {
    let bound = ServerBuilder::new(cell)
        .tls(fed.resolver("supplier-server"))
        .optional_client_certificates(optional_certs)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = EgilServer::new(store, config);
    (spawn(bound, server.handler()), server)
}

/// An answer: status, content type, body text.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// The body.
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One keep-alive HTTP/1.1 connection speaking as EgilSCIM does.
pub struct EgilScim {
    sender: SendRequest<Full<Bytes>>,
    /// Extra headers on every request (an API key).
    pub extra: Vec<(String, String)>,
}

impl EgilScim {
    /// Connects to `addr` presenting `client`'s certificate (none for `None`), pinning
    /// `supplier-server`.
    pub async fn connect(
        fed: &Fed,
        addr: SocketAddr,
        client: Option<&str>,
    ) -> Result<EgilScim, String> {
        EgilScim::connect_with(&fed.connector(client, "supplier-server"), addr).await
    }

    /// Connects to `addr` with `connector` (a client certificate of one's own).
    pub async fn connect_with(
        connector: &tokio_rustls::TlsConnector,
        addr: SocketAddr,
    ) -> Result<EgilScim, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(EgilScim {
            sender,
            extra: Vec::new(),
        })
    }

    /// Sends one request with EgilSCIM's headers for its method.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", "localhost")
            .header("user-agent", USER_AGENT);
        let bytes = match (&method, body) {
            (&Method::DELETE, _) => {
                // curl's artefact: a DELETE with an empty form body.
                request = request
                    .header("accept", "*/*")
                    .header("content-length", "0")
                    .header("content-type", "application/x-www-form-urlencoded");
                Bytes::new()
            }
            (_, Some(body)) => {
                let text = body.to_string();
                request = request
                    .header("accept", "application/scim+json")
                    .header("content-type", "application/scim+json")
                    .header("content-length", text.len().to_string());
                Bytes::from(text)
            }
            (_, None) => {
                request = request.header("accept", "application/scim+json");
                Bytes::new()
            }
        };
        for (name, value) in &self.extra {
            request = request.header(name.as_str(), value.as_str());
        }
        self.raw(request.body(Full::new(bytes)).unwrap()).await
    }

    /// Sends a request as given.
    pub async fn raw(&mut self, request: Request<Full<Bytes>>) -> Result<Answer, String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let retry_after = header("retry-after");
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            content_type,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// `POST /X`.
    pub async fn post(&mut self, resource: &str, body: &Value) -> Answer {
        self.send(Method::POST, &format!("/{resource}"), Some(body))
            .await
            .unwrap()
    }

    /// `PUT /X/{id}`.
    pub async fn put(&mut self, resource: &str, id: &str, body: &Value) -> Answer {
        self.send(Method::PUT, &format!("/{resource}/{id}"), Some(body))
            .await
            .unwrap()
    }

    /// `DELETE /X/{id}`.
    pub async fn delete(&mut self, resource: &str, id: &str) -> Answer {
        self.send(Method::DELETE, &format!("/{resource}/{id}"), None)
            .await
            .unwrap()
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await.unwrap()
    }
}

/// Adds `count` school organizers to the federation, each an entity with one client tagged
/// `egilv1` and a certificate of its own, and returns a connector for each (presenting that
/// certificate, pinning `supplier-server`). Re-sign (`fed.snapshot()`) afterwards.
pub fn add_tenants(fed: &mut Fed, count: usize) -> Vec<tokio_rustls::TlsConnector> {
    let now = fedtls::verify::unix_now();
    let server_pin = fed.party("supplier-server").pin;
    let mut connectors = Vec::new();
    for i in 0..count {
        let stem = format!("tenant{i}");
        let (cert, key, pin) = crate::federation::rcgen_cert(
            fed.dir.path(),
            &stem,
            &["localhost"],
            now - 60,
            now + 86_400,
        );
        fed.push_entity(json!({
            "entity_id": format!("https://huvudman{i}.test.example"),
            "organization": format!("Huvudman {i}"),
            "organization_id": format!("SE21200{i:05}"),
            "issuers": [],
            "clients": [{"pins": [{"alg": "sha256", "digest": pin.to_string()}], "tags": ["egilv1"]}]
        }));
        let identity = (
            fedtls::tls::load_cert_chain(&cert).unwrap(),
            fedtls::tls::load_private_key(&key).unwrap(),
        );
        let verifier = fedtls::tls::PinnedServerVerifier::new([server_pin]).into_arc();
        let config = fedtls::tls::client_config(verifier, Some(identity), &[b"http/1.1"]).unwrap();
        connectors.push(tokio_rustls::TlsConnector::from(Arc::new(config)));
    }
    connectors
}

/// The URN of EGIL's user extension.
pub const USER_EXT: &str = "urn:scim:schemas:extension:sis:school:1.0:User";

/// A deterministic UUID for sample object `n` of kind `kind` (0–15).
pub fn uuid(kind: u8, n: u64) -> String {
    format!(
        "{:08x}-0000-4000-8{:03x}-{:012x}",
        0x0e61_0000 + u32::from(kind),
        kind,
        n
    )
}

/// An Organisation as EgilSCIM sends it.
pub fn organisation(id: &str, name: &str) -> Value {
    json!({"schemas": ["urn:scim:schemas:extension:sis:school:1.0:Organisation"],
           "externalId": id, "displayName": name})
}

/// A SchoolUnit.
pub fn school_unit(id: &str, organisation: &str, code: &str) -> Value {
    json!({"schemas": ["urn:scim:schemas:extension:sis:school:1.0:SchoolUnit"],
           "externalId": id, "displayName": format!("Skola {code}"), "schoolUnitCode": code,
           "organisation": {"value": organisation, "$ref": format!("Organisations/{organisation}")},
           "schoolTypes": ["GR"], "municipalityCode": "0180"})
}

/// A pupil (the shape of EGIL-NOTES' example).
pub fn pupil(id: &str, n: u64, unit: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", USER_EXT],
           "externalId": id, "userName": format!("elev{n}@skola.exempla.example"),
           "displayName": format!("Elev {n}"), "name": {"familyName": "Berg", "givenName": format!("Elev{n}")},
           "emails": [{"value": format!("elev{n}@skola.exempla.example"), "type": "work"}],
           USER_EXT: {"enrolments": [{"value": unit, "$ref": format!("SchoolUnits/{unit}"), "schoolYear": 7}]}})
}

/// A StudentGroup of `members`.
pub fn student_group(id: &str, unit: &str, members: &[String]) -> Value {
    let members: Vec<Value> = members
        .iter()
        .map(|m| json!({"value": m, "$ref": format!("Users/{m}")}))
        .collect();
    json!({"schemas": ["urn:scim:schemas:extension:sis:school:1.0:StudentGroup"],
           "externalId": id, "displayName": format!("Grupp {id}"), "studentGroupType": "Klass",
           "owner": {"value": unit, "$ref": format!("SchoolUnits/{unit}")},
           "studentMemberships": members})
}

/// An Activity of `group`.
pub fn activity(id: &str, unit: &str, group: &str) -> Value {
    json!({"schemas": ["urn:scim:schemas:extension:sis:school:1.0:Activity"],
           "externalId": id, "displayName": format!("Aktivitet {id}"),
           "owner": {"value": unit, "$ref": format!("SchoolUnits/{unit}")},
           "groups": [{"value": group, "$ref": format!("StudentGroups/{group}")}]})
}
