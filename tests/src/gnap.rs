//! The token and push scenarios' servers: the project's GNAP authorization server on loopback
//! (real mTLS) with the federation's `authserver` certificate, token clients, and the
//! Provisioning API stand-in.

use std::net::SocketAddr;
use std::sync::Arc;

use fedtls::jwk::{Algorithm, SigningKey};
use kontosynk_client::token::{TokenClient, transaction_url};
use kontosynk_framework::ServerBuilder;
use kontosynk_server::gnap::{GnapConfig, GnapService, KeyRing, TokenKeys};

use crate::federation::{Fed, Running, spawn};
use crate::provisioning_standin::{ProvisioningStandIn, StandInConfig};

/// The project's GNAP server (`kontosynk_server::gnap`) with the `authserver` certificate.
pub struct Gnap {
    /// The running server.
    pub server: Running,
    /// The JWKS its tokens verify with.
    pub jwks: jsonwebtoken::jwk::JwkSet,
}

/// Starts the GNAP server of `fed`'s `authserver` party.
pub async fn start_gnap(fed: &Fed) -> Gnap {
    let keys = TokenKeys::new(
        SigningKey::generate(Algorithm::Es256, "as-1").unwrap(),
        vec![],
    )
    .unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(keys.jwks_json()).unwrap();
    let service = GnapService::new(
        GnapConfig::new("https://auth.test.example"),
        Arc::new(KeyRing::new(keys)),
        fed.cell.clone(),
    );
    let builder = GnapService::configure(
        ServerBuilder::new(fed.cell.clone()).tls(fed.resolver("authserver")),
    );
    let server = builder.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    Gnap {
        server: spawn(server, service.handler()),
        jwks,
    }
}

/// A token client of `client` (a party name) for the GNAP server at `addr`.
pub fn token_client(fed: &Fed, client: &str, addr: SocketAddr) -> TokenClient {
    let http = fed.mtls_client(client, "authserver");
    let url = transaction_url(&format!("https://127.0.0.1:{}/transaction", addr.port())).unwrap();
    let entity = fed.party(client).entity_id.clone().unwrap_or_default();
    TokenClient::new(http, url, entity)
}

/// An HTTP client trusting only the stand-in's CA.
pub fn standin_http(standin: &ProvisioningStandIn) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(standin.ca_certificate().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(fedtls::tls::provider())
        .with_protocol_versions(fedtls::tls::PROTOCOL_VERSIONS)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

/// Starts the Provisioning API stand-in, trusting `gnap`'s tokens.
pub async fn start_standin(
    gnap: &Gnap,
    configure: impl FnOnce(&mut StandInConfig),
) -> ProvisioningStandIn {
    let mut config = StandInConfig::new(gnap.jwks.clone());
    configure(&mut config);
    ProvisioningStandIn::start(config).await.unwrap()
}
