//! The member's own certificate against the metadata, checked before peers see it: the two
//! classic outages are a renewed certificate whose pin is not yet published and an endpoint
//! that was never listed. Peers then refuse the handshake with a bare TLS alert, which
//! reaches the member as "connection closed"; checked here first, the member reads what is
//! wrong and what to do. Clients check before every request, servers at start and on every
//! certificate reload.

use std::fmt;

use crate::claims::Rfc3339;
use crate::index::{Index, Role};
use crate::pin::Pin;

use super::presented::{CertificateReadError, PresentedCertificate};

/// The pin, validity and role of the certificate this process presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnCertificate {
    pin: Pin,
    not_before: i64,
    not_after: i64,
    role: Role,
}

/// What is wrong with this process's own certificate, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnCertificateProblem {
    /// The metadata lists the pin as no entity's endpoint of this role.
    #[error("{}", not_listed(*.pin, *.role))]
    NotListed {
        /// The certificate's SPKI pin.
        pin: Pin,
        /// Client or server.
        role: Role,
    },
    /// The certificate's `notAfter` has passed.
    #[error("{} (pin {pin}) expired at {expired}: renew it and publish the new pin", Whose(*.role))]
    Expired {
        /// The certificate's SPKI pin.
        pin: Pin,
        /// Client or server.
        role: Role,
        /// `notAfter`, RFC 3339.
        expired: String,
    },
    /// The certificate's `notBefore` is still ahead.
    #[error("{} (pin {pin}) is not valid before {from}: check the clock", Whose(*.role))]
    NotYetValid {
        /// The certificate's SPKI pin.
        pin: Pin,
        /// Client or server.
        role: Role,
        /// `notBefore`, RFC 3339.
        from: String,
    },
}

/// "your client certificate" / "this server's certificate".
struct Whose(Role);

impl fmt::Display for Whose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Role::Client => "your client certificate",
            Role::Server => "this server's certificate",
        })
    }
}

fn not_listed(pin: Pin, role: Role) -> String {
    let (subject, peers, endpoint) = match role {
        Role::Client => (
            "your client certificate's pin",
            "servers refuse the handshake",
            "--client cert=<your certificate>",
        ),
        Role::Server => (
            "the pin of this server's certificate",
            "members' clients refuse to connect",
            "--server cert=<this certificate>,base_uri=<its URL>",
        ),
    };
    format!(
        "{subject} {pin} is not listed as a {role} of any entity in the federation metadata, \
         so {peers}. List it in your entity (`fedtls entity … {endpoint}`), have the federation \
         operator publish it, and wait one cache_ttl for peers to refresh (after a renewal: \
         publish the new pin beside the old one before switching)"
    )
}

impl OwnCertificate {
    /// Reads the leaf of this process's chain, presented in `role`.
    pub fn read(leaf: &[u8], role: Role) -> Result<Self, CertificateReadError> {
        let cert = PresentedCertificate::read(leaf)?;
        Ok(Self {
            pin: cert.pin,
            not_before: cert.not_before,
            not_after: cert.not_after,
            role,
        })
    }

    /// The certificate's SPKI pin.
    pub fn pin(&self) -> Pin {
        self.pin
    }

    /// `notAfter`, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Whether peers of the federation described by `index` can accept this certificate at
    /// `now` (Unix seconds): within its validity, and listed in its role.
    pub fn check(&self, index: &Index, now: i64) -> Result<(), OwnCertificateProblem> {
        let (pin, role) = (self.pin, self.role);
        if now > self.not_after {
            return Err(OwnCertificateProblem::Expired {
                pin,
                role,
                expired: Rfc3339(self.not_after).to_string(),
            });
        }
        if now < self.not_before {
            return Err(OwnCertificateProblem::NotYetValid {
                pin,
                role,
                from: Rfc3339(self.not_before).to_string(),
            });
        }
        if index.by_pin(&pin, role).is_none() {
            return Err(OwnCertificateProblem::NotListed { pin, role });
        }
        Ok(())
    }
}
