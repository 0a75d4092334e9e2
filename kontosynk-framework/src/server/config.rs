//! Time and size limits, and trusted TLS terminator ranges.

use std::net::IpAddr;
use std::time::Duration;

/// Time and size limits; the defaults suit a federation API.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// An HTTP/1 request head must be complete within this of its first byte, and a
    /// connection's first request within this of the handshake (HTTP/1 and HTTP/2).
    pub header_read_timeout: Duration,
    /// A connection without requests or traffic for this long is closed; a kept-alive
    /// connection waits this long for its next request.
    pub idle_timeout: Duration,
    /// A handler must answer within this (503 otherwise).
    pub request_timeout: Duration,
    /// Largest request body in bytes (413 beyond it).
    pub max_body: u64,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            request_timeout: Duration::from_secs(60),
            max_body: 10 * 1024 * 1024,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// An address range from which a TLS terminator may forward `Client-Cert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

/// Why a trusted-proxy range does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustedProxyError {
    /// Not an IP address or `ADDRESS/PREFIX`.
    #[error("{0:?} is not an IP address or CIDR range")]
    NotAnAddress(String),
    /// The prefix length is not a number within the address family's size.
    #[error("{text:?}: the prefix length must be 0 to {max}")]
    Prefix {
        /// The range as written.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

impl std::str::FromStr for TrustedProxy {
    type Err = TrustedProxyError;

    /// `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    fn from_str(text: &str) -> Result<Self, TrustedProxyError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| TrustedProxyError::NotAnAddress(text.to_owned()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| TrustedProxyError::Prefix {
                    text: text.to_owned(),
                    max,
                })?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl TrustedProxy {
    /// True when `addr` lies in this range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}
