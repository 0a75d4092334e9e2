//! The request headers that a TLS terminator or the gateway vouches for, and the one way
//! their names are compared. The gateway (`ss12000-proxy`) removes every one of them from a
//! client's request before setting its own; the server behind a trusted terminator reads
//! `Client-Cert` and `Client-Cert-Chain` and refuses any other spelling of them.
//!
//! CGI and WSGI backends (Python's `wsgiref`, Go's `net/http/cgi`, PHP-FPM, …) see a
//! header as `HTTP_` + its name upper-cased with `-` turned into `_`: `Client-Cert`,
//! `Client_Cert` and `CLIENT-CERT` all become `HTTP_CLIENT_CERT`, and the backend cannot
//! tell the gateway's header from a client's. So names are compared *folded*: ASCII lower
//! case, with `_` read as `-` ([`fold`], [`same_name`]). Folding rather than dropping every
//! client header with an `_` in its name (nginx's `underscores_in_headers off`) removes
//! exactly the spellings that can pass for a trusted header and leaves other clients'
//! headers alone.

/// The header a TLS terminator forwards the client certificate in (RFC 9440).
pub const CLIENT_CERT: &str = "client-cert";

/// The header a TLS terminator forwards the client's certificate chain in (RFC 9440).
pub const CLIENT_CERT_CHAIN: &str = "client-cert-chain";

/// Every header whose folded name starts with this is the gateway's alone
/// (`X-FedTLSAuth-Entity-ID` and the other identity headers).
pub const IDENTITY_PREFIX: &str = "x-fedtlsauth-";

/// Headers that say where a request came from; the gateway sets them for the backend.
pub const FORWARDING: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// A header name as a CGI or WSGI backend tells it apart: ASCII lower case, `_` as `-`.
pub fn fold(name: &str) -> String {
    name.bytes().map(|b| char::from(fold_byte(b))).collect()
}

/// True when `a` and `b` are the same header to a backend that folds names (see [`fold`]).
pub fn same_name(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| fold_byte(*x) == fold_byte(*y))
}

/// True when `name`, folded, is one of the headers the gateway or a terminator vouches for:
/// [`CLIENT_CERT`], [`CLIENT_CERT_CHAIN`], the [`FORWARDING`] headers or an
/// [`IDENTITY_PREFIX`] header. (A configured API-key or client-certificate header name is
/// the gateway's too; compare it with [`same_name`].)
pub fn is_trusted(name: &str) -> bool {
    let prefix = IDENTITY_PREFIX.as_bytes();
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|start| same_bytes(start, prefix))
        || same_name(name, CLIENT_CERT)
        || same_name(name, CLIENT_CERT_CHAIN)
        || FORWARDING.iter().any(|f| same_name(name, f))
}

fn fold_byte(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscore_and_case_spellings_are_the_same_header() {
        for name in [
            "X_FedTLSAuth_Entity_ID",
            "x-fedtlsauth_organization",
            "Client_Cert",
            "CLIENT-CERT",
            "client_cert_chain",
            "X_Forwarded_For",
            "x_real_ip",
            "Forwarded",
        ] {
            assert!(is_trusted(name), "{name}");
        }
        for name in [
            "accept",
            "client-certs",
            "x-fedtlsauth",
            "x_request_id",
            "é_",
        ] {
            assert!(!is_trusted(name), "{name}");
        }
        assert!(same_name("X_API_Key", "x-api-key"));
        assert!(!same_name("x-api-keys", "x-api-key"));
        assert_eq!(fold("X_API_Key"), "x-api-key");
    }
}
