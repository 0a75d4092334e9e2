//! Carries what the client-certificate verifier decided in a handshake to the connection
//! that handshake opens, so the certificate is parsed and its pin looked up once.
//!
//! rustls gives a [`ClientCertVerifier`] no per-connection context, but it calls it
//! synchronously from inside the poll of the handshake future (`process_new_packets`), on the
//! thread polling that future. [`Recorded`] therefore opens a slot in a thread-local for
//! exactly the duration of each poll of one connection's handshake, and [`RecordingVerifier`]
//! puts the [`VerifiedClient`] it accepted into the slot open at that moment. Only one future
//! is polled on a thread at a time, so the slot can hold no other connection's decision: a
//! verifier call outside any [`Recorded`] poll finds no slot and records nothing, and a slot
//! is read back only by the poll that opened it. What a handshake did not record (it did not
//! run this verifier, or the verifier refused) is `None`, and the connection then refuses a
//! client certificate it cannot attribute (fail closed; see `connection`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fedtls::tls::{PinnedClientVerifier, VerifiedClient};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

thread_local! {
    /// `None`: no handshake is being polled on this thread. `Some(slot)`: one is, and `slot`
    /// holds what the verifier accepted in it so far.
    static SLOT: Cell<Option<Option<VerifiedClient>>> = const { Cell::new(None) };
}

/// A [`PinnedClientVerifier`] that also records whom it accepted for the handshake being
/// polled (see the module documentation). Decides exactly as the verifier it wraps.
#[derive(Debug)]
pub(super) struct RecordingVerifier(pub(super) Arc<PinnedClientVerifier>);

impl ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let client = self.0.verify_client(end_entity, intermediates, now)?;
        // Fill the open slot, if any; with none open, nothing is recorded.
        let open = SLOT.take();
        SLOT.set(open.map(|_| Some(client)));
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A handshake future whose polls record what a [`RecordingVerifier`] accepts in them;
/// resolves to the handshake's output and that record.
pub(super) struct Recorded<F> {
    handshake: F,
    client: Option<VerifiedClient>,
}

/// Records what the verifier accepts while `handshake` is polled.
pub(super) fn record<F: Future + Unpin>(handshake: F) -> Recorded<F> {
    Recorded {
        handshake,
        client: None,
    }
}

impl<F: Future + Unpin> Future for Recorded<F> {
    type Output = (F::Output, Option<VerifiedClient>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let open = Open {
            outer: SLOT.replace(Some(this.client.take())),
            client: &mut this.client,
        };
        let polled = Pin::new(&mut this.handshake).poll(cx);
        drop(open);
        polled.map(|output| (output, this.client.take()))
    }
}

/// The slot of one poll: closed again (taking what was recorded, and giving back the slot of
/// any enclosing poll) when dropped, also when the handshake panics.
struct Open<'a> {
    outer: Option<Option<VerifiedClient>>,
    client: &'a mut Option<VerifiedClient>,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        *self.client = SLOT.replace(self.outer.take()).flatten();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedtls::snapshot::SnapshotCell;
    use std::future::poll_fn;

    /// An accepted client named `entity_id`.
    fn client(entity_id: &str) -> VerifiedClient {
        VerifiedClient {
            identity: fedtls::tls::PeerIdentity {
                entity_id: entity_id.to_owned(),
                organization: None,
                organization_id: None,
                tags: Vec::new(),
                scopes: Vec::new(),
                pin: fedtls::Pin::of_spki(entity_id.as_bytes()),
                generation: 1,
                source: "test".into(),
                source_iss: None,
            },
            metadata_expires_at: 0,
        }
    }

    /// What a verifier that accepted `accepted` does, as `RecordingVerifier` does it.
    fn accept(accepted: &str) {
        let open = SLOT.take();
        SLOT.set(open.map(|_| Some(client(accepted))));
    }

    #[tokio::test]
    async fn each_handshake_reads_back_only_what_was_accepted_in_its_own_polls() {
        // Outside any handshake, an acceptance is not recorded anywhere.
        accept("nobody");
        assert!(SLOT.take().is_none());

        // Two handshakes polled alternately on one thread, each accepting in its second poll.
        let handshake = |name: &'static str| {
            let mut polls = 0;
            poll_fn(move |cx| {
                polls += 1;
                match polls {
                    1 => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    2 => {
                        accept(name);
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    _ => Poll::Ready(name),
                }
            })
        };
        let a = record(Box::pin(handshake("a")));
        let b = record(Box::pin(handshake("b")));
        let ((name_a, got_a), (name_b, got_b)) = tokio::join!(a, b);
        assert_eq!(
            (name_a, got_a.unwrap().identity.entity_id),
            ("a", "a".into())
        );
        assert_eq!(
            (name_b, got_b.unwrap().identity.entity_id),
            ("b", "b".into())
        );

        // A handshake that never accepts records nothing, and no slot stays open.
        let (_, none) = record(Box::pin(async {})).await;
        assert!(none.is_none());
        assert!(SLOT.take().is_none());
    }

    #[test]
    fn a_refusing_verifier_records_nothing() {
        let verifier = RecordingVerifier(Arc::new(PinnedClientVerifier::new(Arc::new(
            SnapshotCell::new(),
        ))));
        SLOT.set(Some(None));
        let der = CertificateDer::from(&b"not a certificate"[..]);
        assert!(
            verifier
                .verify_client_cert(&der, &[], UnixTime::now())
                .is_err()
        );
        assert_eq!(SLOT.take(), Some(None));
        assert!(verifier.offer_client_auth() && verifier.client_auth_mandatory());
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
