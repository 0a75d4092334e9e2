//! Building login URLs: the IdP's entityID goes into a query parameter, percent-encoded so
//! that any entityID (spaces, `%20`, `&`, `#`, non-ASCII) survives the round trip.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded: the value cannot end the
/// parameter (`&`, `;`), start a fragment (`#`), or be decoded into something else (`%`, `+`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `value` as one query component (UTF-8, unreserved characters kept).
pub fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// Appends `name=value` (both encoded) to the query of `base`, before any fragment: with no
/// separator when `base` already ends in `?` or `&`, with `&` when it has a query, else `?`.
pub fn append_query_parameter(base: &str, name: &str, value: &str) -> String {
    append_raw(
        base,
        &format!("{}={}", encode_component(name), encode_component(value)),
    )
}

fn append_raw(base: &str, text: &str) -> String {
    let (head, fragment) = match base.find('#') {
        Some(at) => base.split_at(at),
        None => (base, ""),
    };
    let separator = if head.ends_with('?') || head.ends_with('&') {
        ""
    } else if head.contains('?') {
        "&"
    } else {
        "?"
    };
    format!("{head}{separator}{text}{fragment}")
}

/// The `entity_id` login link: `sp_init` + `idp_parameter=<IdP entityID>` (+ `&` and the
/// `target_parameter` text, verbatim, when given).
pub(crate) fn entity_id_link(
    sp_init: &str,
    idp_parameter: &str,
    idp_entity_id: &str,
    target_parameter: Option<&str>,
) -> String {
    let link = append_query_parameter(sp_init, idp_parameter, idp_entity_id);
    match target_parameter {
        Some(target) if !target.is_empty() => append_raw(&link, target),
        _ => link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators() {
        assert_eq!(
            append_query_parameter("https://a/x?", "e", "v"),
            "https://a/x?e=v"
        );
        assert_eq!(
            append_query_parameter("https://a/x", "e", "v"),
            "https://a/x?e=v"
        );
        assert_eq!(
            append_query_parameter("https://a/x?p=1", "e", "v"),
            "https://a/x?p=1&e=v"
        );
        assert_eq!(
            append_query_parameter("https://a/x?p=1&", "e", "v"),
            "https://a/x?p=1&e=v"
        );
        assert_eq!(
            append_query_parameter("https://a/x#top", "e", "v"),
            "https://a/x?e=v#top"
        );
    }

    #[test]
    fn awkward_values_are_encoded() {
        assert_eq!(
            encode_component("https://idp.x/a b"),
            "https%3A%2F%2Fidp.x%2Fa%20b"
        );
        assert_eq!(encode_component("a%20b&c=d#e+f"), "a%2520b%26c%3Dd%23e%2Bf");
        assert_eq!(
            encode_component("https://skola.se/å"),
            "https%3A%2F%2Fskola.se%2F%C3%A5"
        );
    }
}
