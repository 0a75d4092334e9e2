//! Shared syntax checks of URIs and DNS names (also used by `entity`).

/// The parts of an absolute URI that the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AbsoluteUri {
    /// The scheme, lowercased.
    pub scheme: String,
    /// The host of the authority, if there is an authority.
    pub host: Option<String>,
}

/// Parses an absolute URI (`scheme:rest`, RFC 3986) with a light touch: enough to tell an
/// `https://host/path` URL from a relative path, a bare host name or text with spaces.
pub(crate) fn parse_absolute_uri(text: &str) -> Result<AbsoluteUri, &'static str> {
    if text.is_empty() {
        return Err("it is empty");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters");
    }
    let Some((scheme, rest)) = text.split_once(':') else {
        return Err("it has no scheme (like https://)");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err("it has no scheme (like https://)");
    }
    let scheme = scheme.to_ascii_lowercase();
    let host = match rest.strip_prefix("//") {
        Some(after) => {
            let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
            let host_port = authority.rsplit('@').next().unwrap_or_default();
            let host = if let Some(bracketed) = host_port.strip_prefix('[') {
                let Some((inside, after_bracket)) = bracketed.split_once(']') else {
                    return Err("its IPv6 host has no closing bracket");
                };
                check_port(after_bracket)?;
                inside
            } else {
                let (host, port) = match host_port.split_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (host_port, None),
                };
                if let Some(port) = port {
                    check_port(&format!(":{port}"))?;
                }
                host
            };
            Some(host.to_owned())
        }
        None => None,
    };
    if matches!(scheme.as_str(), "http" | "https") && host.as_deref().is_none_or(str::is_empty) {
        return Err("it has no host (expected https://host/...)");
    }
    Ok(AbsoluteUri { scheme, host })
}

fn check_port(text: &str) -> Result<(), &'static str> {
    match text.strip_prefix(':') {
        None if text.is_empty() => Ok(()),
        Some(port) if port.is_empty() || port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("its port is not a number"),
    }
}

/// A lowercase DNS name with at least two labels: `skola.example.se`.
pub(crate) fn is_lowercase_dns_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let labels_ok = labels.iter().all(|label| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    let tld_ok = labels
        .last()
        .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && labels.len() >= 2 && tld_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let ok = parse_absolute_uri("https://api.example.org:8443/ss12000/v2.0/?q#f").unwrap();
        assert_eq!(ok.scheme, "https");
        assert_eq!(ok.host.as_deref(), Some("api.example.org"));
        assert_eq!(
            parse_absolute_uri("https://[::1]:443/")
                .unwrap()
                .host
                .as_deref(),
            Some("::1")
        );
        assert_eq!(parse_absolute_uri("urn:example:x").unwrap().scheme, "urn");
        for bad in [
            "",
            "example.org",
            "/relative",
            "https://",
            "https:///path",
            "https://host:port/",
            "https://exa mple.org/",
            "1https://x",
            "https://[::1/",
        ] {
            assert!(parse_absolute_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_names() {
        assert!(is_lowercase_dns_name("skola.angelholm.example"));
        assert!(is_lowercase_dns_name("a-b.example"));
        for bad in [
            "",
            "example",
            "Skola.example",
            "-a.example",
            "a..example",
            "a.example.",
            "10.0.0.1",
            "*.example.org",
        ] {
            assert!(!is_lowercase_dns_name(bad), "{bad:?}");
        }
    }
}
