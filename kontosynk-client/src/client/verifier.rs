//! A server verifier that reads the server's pins from the current metadata at every
//! handshake, and refuses every server when there is no valid metadata (fail closed).

use std::sync::Arc;

use fedtls::snapshot::SnapshotSource;
use fedtls::tls::{PeerRejection, PinnedServerVerifier, ServerCertDecision};
use rustls::client::danger::ServerCertVerified;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::discovery::ServerTarget;

/// Accepts a server iff its pin is one the *current* metadata lists for the chosen server
/// (same entity, same `base_uri`). Pins rotated in the metadata are followed; a server
/// removed from the metadata, or expired metadata, refuses the handshake.
///
/// A [`ServerCertDecision`]: rustls takes it wrapped in [`fedtls::tls::SignatureChecked`],
/// which adds the handshake signature checks.
#[derive(Debug)]
pub struct MetadataPinnedVerifier {
    source: Arc<dyn SnapshotSource>,
    entity_id: String,
    base_uri: String,
    check_hostname: bool,
}

impl MetadataPinnedVerifier {
    /// A verifier for `target`, reading pins from `source`.
    pub fn new(
        source: Arc<dyn SnapshotSource>,
        target: &ServerTarget,
        check_hostname: bool,
    ) -> Self {
        Self {
            source,
            entity_id: target.entity_id.clone(),
            base_uri: target.base_uri.to_string(),
            check_hostname,
        }
    }

    /// The pins the current metadata lists for the server, or the rejection to report.
    fn current_verifier(&self) -> Result<PinnedServerVerifier, rustls::Error> {
        let snapshot = self
            .source
            .current()
            .ok_or_else(|| PeerRejection::NoMetadata.into_rustls())?;
        let pins = snapshot
            .index()
            .entity(&self.entity_id)
            .into_iter()
            .flat_map(|entity| entity.servers.iter())
            .filter(|server| {
                server
                    .base_uri
                    .as_deref()
                    .and_then(|raw| crate::discovery::parse_base_uri(raw).ok())
                    .is_some_and(|url| url.as_str() == self.base_uri)
            })
            .flat_map(|server| server.pins.iter().copied())
            .collect::<Vec<_>>();
        Ok(PinnedServerVerifier::new(pins).check_hostname(self.check_hostname))
    }
}

impl ServerCertDecision for MetadataPinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current_verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }
}
