//! Who is asking on a request: the connection's identity while the metadata it was resolved
//! against is in force, resolved again when it changes; or a trusted terminator's
//! `Client-Cert`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fedtls::Pin;
use fedtls::tls::PeerIdentity;
use fedtls::verify::unix_now;
use http::StatusCode;
use rustls_pki_types::UnixTime;

use super::ClientCertificate;
use super::builder::Shared;
use super::connection::Connection;
use super::error::Refusal;
use crate::client_cert::{ForwardedCertError, ForwardedCertificate};
use crate::lock;

/// Who is asking, decided against the metadata in force now, with their certificate.
pub(super) fn authorize(
    shared: &Shared,
    connection: &Connection,
    forwarded_cert: ForwardedCertificate,
) -> Result<(PeerIdentity, ClientCertificate), Refusal> {
    if let (Some(pin), Some(certificate)) = (connection.pin, &connection.certificate) {
        let peer = connection_identity(shared, connection, pin, certificate)?;
        return Ok((peer, certificate.clone()));
    }
    if shared.source.current().is_none() {
        return Err(metadata_unavailable());
    }
    terminator_identity(shared, connection, forwarded_cert)
}

fn metadata_unavailable() -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "metadata_unavailable",
        "no valid federation metadata is available (missing or expired); every client is refused until it is",
    )
}

/// Who the client of a mutual-TLS connection is now: the identity the handshake's verifier
/// resolved while the metadata it was resolved against is in force, otherwise resolved
/// again against the current metadata (and the connection closed once its pin is gone).
fn connection_identity(
    shared: &Shared,
    connection: &Connection,
    pin: Pin,
    certificate: &ClientCertificate,
) -> Result<PeerIdentity, Refusal> {
    // The usual case, without loading the snapshot: the connection's identity was resolved
    // against the metadata still in force (same generation: no newer document has been
    // stored) and that document has not expired.
    let generation = shared.source.generation();
    let mut cached = lock(&connection.identity);
    if let Some((peer, _)) = cached.as_ref().filter(|(peer, expires)| {
        peer.generation == generation && peer.pin == pin && unix_now() < *expires
    }) {
        return Ok(peer.clone());
    }
    let Some(snapshot) = shared.source.current() else {
        return Err(metadata_unavailable());
    };
    if let Some((peer, _)) = cached
        .as_ref()
        .filter(|(p, _)| p.generation == snapshot.generation() && p.pin == pin)
    {
        return Ok(peer.clone());
    }
    let resolved = PeerIdentity::resolve_pin(&snapshot, &pin).or_else(|| {
        shared
            .issuer_certificates
            .then(|| PeerIdentity::resolve_issuer_certificate(&snapshot, &certificate.0))
            .flatten()
    });
    match resolved {
        Some(peer) => {
            *cached = Some((peer.clone(), snapshot.expires_at()));
            Ok(peer)
        }
        None => {
            *cached = None;
            // The pin left the metadata: this connection will never be allowed again.
            connection.close.store(true, Ordering::Release);
            Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "client_not_in_metadata",
                format!(
                    "the client certificate's pin {pin} is not a client pin in the current federation metadata"
                ),
            ))
        }
    }
}

/// The client certificate from `Client-Cert`, honoured only from a trusted terminator, and
/// who it is: checked and looked up once, as in a handshake.
fn terminator_identity(
    shared: &Shared,
    connection: &Connection,
    forwarded_cert: ForwardedCertificate,
) -> Result<(PeerIdentity, ClientCertificate), Refusal> {
    let remote = connection.info.remote_addr.ip();
    if !shared.trusted.iter().any(|t| t.contains(remote)) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "untrusted_proxy",
            format!("{remote} is not a trusted TLS terminator; connect through the terminator"),
        ));
    }
    let refuse = |message: String| {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            message,
        )
    };
    let forwarded = match forwarded_cert.read() {
        Ok(Some(forwarded)) => forwarded,
        Ok(None) => {
            return Err(refuse(
                "the terminator forwarded no Client-Cert header".into(),
            ));
        }
        Err(e) if e.is_unusable_certificate() => return Err(refuse(e.to_string())),
        Err(e) => {
            tracing::warn!(%remote, error = %e, "refusing a request whose client-certificate headers cannot be trusted");
            let code = match e {
                ForwardedCertError::MalformedChain(_)
                | ForwardedCertError::ChainMismatch { .. }
                | ForwardedCertError::NotAscii(_) => "bad_client_certificate_chain",
                _ => "ambiguous_client_certificate",
            };
            return Err(Refusal::new(StatusCode::BAD_REQUEST, code, e.to_string()));
        }
    };
    // The same checks as the handshake (pin listed, validity, issuer chain when required).
    let verified = shared
        .verifier
        .verify_client(
            &forwarded.certificate,
            &forwarded.intermediates,
            UnixTime::now(),
        )
        .map_err(|e| {
            Refusal::new(
                StatusCode::FORBIDDEN,
                "client_not_in_metadata",
                format!("the forwarded client certificate was refused: {e}"),
            )
        })?;
    Ok((
        verified.identity,
        ClientCertificate(Arc::new(forwarded.certificate)),
    ))
}
