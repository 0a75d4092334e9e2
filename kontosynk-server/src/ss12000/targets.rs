//! Which webhook targets the server connects to: `https://` URLs without credentials whose
//! host is a public address, checked when a subscription is created and again on every
//! delivery attempt, after DNS resolution ([`GuardedResolver`]), so a subscriber can neither
//! point the server at its own network (loopback, RFC 1918, link-local, …) nor get there
//! later by changing what its name resolves to (DNS rebinding).
//!
//! The host is read the way the HTTP client reads it (the WHATWG URL parser), so obscure
//! spellings of an address (`0177.0.0.1`, `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) are
//! judged by the address they mean.
//!
//! Private deployments and tests opt in to internal targets with
//! [`TargetPolicy::allow_private`] (`--webhook-allow-private-targets`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The longest webhook target accepted (bytes).
pub const MAX_TARGET_LEN: usize = 2048;

/// The flag (and its environment variable) that allows internal webhook targets.
const ALLOW_PRIVATE_HINT: &str = "a private deployment can allow internal targets with \
--webhook-allow-private-targets (KONTOSYNK_WEBHOOK_ALLOW_PRIVATE_TARGETS=true)";

/// Which webhook targets are allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Accept `http://` targets besides `https://` (tests and closed networks only).
    pub allow_http: bool,
    /// Accept loopback, private, link-local and other internal addresses (tests and private
    /// deployments only).
    pub allow_private: bool,
}

/// Why a webhook target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Too long, or holds spaces or control characters.
    #[error(
        "target {target:?} must be a URL of at most {MAX_TARGET_LEN} bytes without spaces or control characters"
    )]
    Malformed {
        /// The target as given.
        target: String,
    },
    /// Not a URL.
    #[error("target {target:?} is not a URL ({reason}); send an https:// URL")]
    NotAUrl {
        /// The target as given.
        target: String,
        /// What the URL parser said.
        reason: String,
    },
    /// Not `https` (or `http` when allowed).
    #[error("target {target:?} uses the scheme {scheme:?}; webhook targets must be https:// URLs")]
    Scheme {
        /// The target as given.
        target: String,
        /// Its scheme.
        scheme: String,
    },
    /// Has a user name or password.
    #[error(
        "target {target:?} carries a user name or password; webhook targets must not hold credentials"
    )]
    Userinfo {
        /// The target as given.
        target: String,
    },
    /// Has no host.
    #[error("target {target:?} has no host; send an https:// URL naming a public host")]
    NoHost {
        /// The target as given.
        target: String,
    },
    /// The host is an internal address (or a name reserved for one, `localhost`).
    #[error(
        "target {target:?} points at {host}, a {kind} address; webhooks go only to public addresses ({ALLOW_PRIVATE_HINT})"
    )]
    Internal {
        /// The target as given.
        target: String,
        /// The host as the HTTP client reads it.
        host: String,
        /// What kind of internal address.
        kind: &'static str,
    },
    /// The host's name resolves to an internal address.
    #[error(
        "webhook host {host} resolves to {address}, a {kind} address; webhooks go only to public addresses ({ALLOW_PRIVATE_HINT})"
    )]
    ResolvesInternal {
        /// The host name.
        host: String,
        /// The internal address it resolved to.
        address: IpAddr,
        /// What kind of internal address.
        kind: &'static str,
    },
    /// The host's name did not resolve.
    #[error("webhook host {host} does not resolve: {reason}")]
    Unresolvable {
        /// The host name.
        host: String,
        /// Why.
        reason: String,
    },
}

impl TargetPolicy {
    /// Checks a new subscription's target: [`check`](Self::check), and no name reserved for
    /// loopback (`localhost`, `*.localhost`, RFC 6761), so the obvious mistake is refused at
    /// once rather than on every delivery.
    pub fn check_new(&self, target: &str) -> Result<Url, TargetError> {
        let url = self.check(target)?;
        let name = url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !self.allow_private && (name == "localhost" || name.ends_with(".localhost")) {
            return Err(TargetError::Internal {
                target: target.to_owned(),
                host: name,
                kind: "loopback",
            });
        }
        Ok(url)
    }

    /// Checks `target` as written, without resolving names (the client's
    /// [`GuardedResolver`] checks what a name resolves to): the URL the HTTP client will
    /// request, or why it is refused.
    pub fn check(&self, target: &str) -> Result<Url, TargetError> {
        let owned = || target.to_owned();
        if target.len() > MAX_TARGET_LEN
            || target.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(TargetError::Malformed { target: owned() });
        }
        let url = Url::parse(target).map_err(|e| TargetError::NotAUrl {
            target: owned(),
            reason: e.to_string(),
        })?;
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        if !scheme_ok {
            return Err(TargetError::Scheme {
                target: owned(),
                scheme: url.scheme().to_owned(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Userinfo { target: owned() });
        }
        let host = url.host_str().unwrap_or_default();
        let internal = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            // The parser has already read it as an IPv6 address.
            v6.parse::<Ipv6Addr>()
                .map_or(Some("unreadable IPv6"), |ip| internal_kind(IpAddr::V6(ip)))
        } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
            // Every IPv4 spelling comes out of the parser as dotted decimal.
            internal_kind(IpAddr::V4(v4))
        } else {
            // A name: judged after resolution, on every attempt (GuardedResolver).
            None
        };
        match internal {
            Some(kind) if !self.allow_private => Err(TargetError::Internal {
                target: owned(),
                host: host.to_owned(),
                kind,
            }),
            _ => Ok(url),
        }
    }
}

/// A DNS resolver for the webhook client that resolves a name, checks every address it gets
/// and hands the client only checked addresses to connect to (the client never resolves the
/// name again), refusing the name when any address is internal.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Skip the address check (internal targets allowed).
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| TargetError::Unresolvable {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect();
            if addrs.is_empty() {
                return Err(TargetError::Unresolvable {
                    host,
                    reason: "no addresses".into(),
                }
                .into());
            }
            if !allow_private {
                for addr in &addrs {
                    if let Some(kind) = internal_kind(addr.ip()) {
                        return Err(TargetError::ResolvesInternal {
                            host,
                            address: addr.ip(),
                            kind,
                        }
                        .into());
                    }
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// What kind of internal address `ip` is, or `None` for a public (globally routable) one.
///
/// Internal: unspecified, loopback, private (RFC 1918, unique local `fc00::/7`), shared CGNAT
/// `100.64.0.0/10`, link-local, multicast, broadcast, documentation, benchmarking, reserved and
/// IETF protocol ranges, and IPv6 forms embedding an internal IPv4 address (IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4).
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (100, 64..=127, _) => "shared CGNAT (100.64.0.0/10)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "reserved 6to4 relay (192.88.99.0/24)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast",
        _ if ip == Ipv4Addr::BROADCAST => "broadcast",
        (240..=255, _, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    match s {
        // IPv4-mapped ::ffff:a.b.c.d: the IPv4 address is what is reached.
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => internal_v4(embedded(hi, lo)),
        // IPv4-compatible ::a.b.c.d (deprecated) and the rest of ::/96.
        [0, 0, 0, 0, 0, 0, _, _] => Some("IPv4-compatible (deprecated, ::/96)"),
        // NAT64 64:ff9b::/96 reaches the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => internal_v4(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Some("private (local-use NAT64 64:ff9b:1::/48)"),
        [0x100, 0, 0, 0, ..] => Some("reserved (discard 100::/64)"),
        [0x2001, 0xdb8, ..] => Some("documentation"),
        [0x2001, 0..=0x1ff, ..] => Some("IETF protocol assignment (2001::/23)"),
        // 6to4 2002:AABB:CCDD::/48 reaches AA.BB.CC.DD.
        [0x2002, hi, lo, ..] => internal_v4(embedded(hi, lo)),
        [0x3fff, 0..=0x0fff, ..] => Some("documentation"),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("private (unique local fc00::/7)"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("link-local"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("site-local (deprecated)"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// The refusal of a webhook target inside an HTTP client error, if that is what it is.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a TargetError> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refusal) = error.downcast_ref::<TargetError>() {
            return Some(refusal);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_and_public_addresses() {
        for internal in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ] {
            let ip: IpAddr = internal.parse().unwrap();
            assert!(internal_kind(ip).is_some(), "{internal} counted as public");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "193.10.0.1",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2606:4700::1111",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert_eq!(internal_kind(ip), None, "{public}");
        }
    }

    #[test]
    fn obscure_spellings_are_read_as_the_address_they_mean() {
        let policy = TargetPolicy::default();
        for target in [
            "https://127.0.0.1/",
            "https://0177.0.0.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://127.1/",
            "https://127.0.0.1./",
            "https://%31%32%37.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[0:0:0:0:0:ffff:a9fe:a9fe]/",
            "https://localhost/",
            "https://LocalHost./x",
            "https://a.localhost/",
            "https://0/",
            "https://10.0.0.1:8443/hook",
        ] {
            let refused = policy.check_new(target);
            assert!(
                matches!(refused, Err(TargetError::Internal { .. })),
                "{target}: {refused:?}"
            );
        }
        assert!(policy.check("https://hooks.example/x").is_ok());
        assert!(policy.check("https://8.8.8.8/x").is_ok());
        let allowed = TargetPolicy {
            allow_private: true,
            allow_http: true,
        };
        assert!(allowed.check("http://127.0.0.1:1/x").is_ok());
        assert!(allowed.check_new("https://localhost/x").is_ok());
        // Names are judged after resolution, on every attempt.
        assert!(policy.check("https://localhost/x").is_ok());
    }

    #[test]
    fn credentials_schemes_and_junk_are_refused() {
        let policy = TargetPolicy::default();
        for (target, what) in [
            ("https://user@hooks.example/", "user name"),
            ("https://user:pw@hooks.example/", "user name"),
            ("https://:pw@hooks.example/", "user name"),
            ("http://hooks.example/", "scheme"),
            ("ftp://hooks.example/", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("gopher://hooks.example/", "scheme"),
            ("https://hooks .example/", "without spaces"),
            ("https://hooks.example/\n", "without spaces"),
            ("not a url", "without spaces"),
            ("hooks.example/x", "not a URL"),
            ("https://", "not a URL"),
        ] {
            let message = policy.check(target).unwrap_err().to_string();
            assert!(message.contains(what), "{target}: {message}");
        }
        let long = format!("https://hooks.example/{}", "a".repeat(MAX_TARGET_LEN));
        assert!(policy.check(&long).is_err());
    }
}
