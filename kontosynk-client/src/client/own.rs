//! The member's own certificate, checked before every request: the two classic outages are a
//! renewed certificate whose pin is not yet in the metadata and a client that was never
//! listed. A server then refuses the handshake with a bare TLS alert, which reaches the
//! member as "connection closed"; checked here first, the member reads what is wrong and
//! what to do.

use fedtls::Pin;
use fedtls::claims::Rfc3339;
use fedtls::index::Index;
use fedtls::tls::PresentedCertificate;

/// The pin and validity of the client certificate a [`Sender`](super::Sender) presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnCertificate {
    pin: Pin,
    not_before: i64,
    not_after: i64,
}

/// Why a request was not sent: something about the member's own certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnCertificateProblem {
    /// The metadata lists the pin as no entity's client.
    #[error(
        "your client certificate's pin {pin} is not listed as a client of any entity in the \
         federation metadata, so servers refuse the handshake. List it in your entity (`fedtls \
         entity … --client cert=<your certificate>`), have the federation operator publish it, \
         and wait one cache_ttl for peers to refresh (after a renewal: publish the new pin \
         beside the old one before switching)"
    )]
    NotListed {
        /// The certificate's SPKI pin.
        pin: Pin,
    },
    /// The certificate's `notAfter` has passed.
    #[error(
        "your client certificate (pin {pin}) expired at {expired}: renew it and publish the new pin"
    )]
    Expired {
        /// The certificate's SPKI pin.
        pin: Pin,
        /// `notAfter`, RFC 3339.
        expired: String,
    },
    /// The certificate's `notBefore` is still ahead.
    #[error("your client certificate (pin {pin}) is not valid before {from}: check the clock")]
    NotYetValid {
        /// The certificate's SPKI pin.
        pin: Pin,
        /// `notBefore`, RFC 3339.
        from: String,
    },
}

impl OwnCertificate {
    /// Reads the leaf of the member's chain.
    pub fn read(leaf: &[u8]) -> Result<Self, fedtls::tls::CertificateReadError> {
        let cert = PresentedCertificate::read(leaf)?;
        Ok(Self {
            pin: cert.pin,
            not_before: cert.not_before,
            not_after: cert.not_after,
        })
    }

    /// The certificate's SPKI pin.
    pub fn pin(&self) -> Pin {
        self.pin
    }

    /// Whether servers of the federation described by `index` can accept this certificate
    /// at `now` (Unix seconds).
    pub fn check(&self, index: &Index, now: i64) -> Result<(), OwnCertificateProblem> {
        if now > self.not_after {
            return Err(OwnCertificateProblem::Expired {
                pin: self.pin,
                expired: Rfc3339(self.not_after).to_string(),
            });
        }
        if now < self.not_before {
            return Err(OwnCertificateProblem::NotYetValid {
                pin: self.pin,
                from: Rfc3339(self.not_before).to_string(),
            });
        }
        if index.client_by_pin(&self.pin).is_none() {
            return Err(OwnCertificateProblem::NotListed { pin: self.pin });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fedtls::verify::unix_now;

    use super::*;
    use crate::testsupport::Fed;

    #[test]
    fn listed_expired_not_yet_valid_and_unlisted_are_told_apart() {
        let fed = Fed::new();
        let snapshot = fed.snapshot();
        let index = snapshot.index();
        let own = OwnCertificate::read(&fed.identity("supplier-client").chain()[0]).unwrap();
        assert_eq!(own.check(index, unix_now()), Ok(()));
        let far_future = unix_now() + 200 * 365 * 86_400;
        assert!(matches!(
            own.check(index, far_future),
            Err(OwnCertificateProblem::Expired { .. })
        ));
        assert!(matches!(
            own.check(index, 0),
            Err(OwnCertificateProblem::NotYetValid { .. })
        ));
        let stranger = OwnCertificate::read(&fed.identity("unlisted-client").chain()[0]).unwrap();
        let problem = stranger.check(index, unix_now()).unwrap_err();
        assert_eq!(
            problem,
            OwnCertificateProblem::NotListed {
                pin: stranger.pin()
            }
        );
        // A server pin is not a client pin.
        let server = OwnCertificate::read(&fed.identity("school-server").chain()[0]).unwrap();
        assert!(matches!(
            server.check(index, unix_now()),
            Err(OwnCertificateProblem::NotListed { .. })
        ));
    }
}
