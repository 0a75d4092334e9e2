//! Redirects from a federation server: followed only within the origin the metadata pins.
//!
//! A server's SPKI pins vouch for the origin of its `base_uri` and nothing else. Following a
//! redirect to another host would either send the member's requests (and its client
//! certificate) somewhere the metadata does not list, or, as reqwest would by default, fail
//! the pinned handshake with the *other* host and report "invalid peer certificate" against
//! the original URL, which makes the school's own certificate look broken. So a redirect off
//! the origin is refused and reported as what it is, naming its target.

use reqwest::Url;
use reqwest::redirect::Policy;

/// The most redirects followed within the server's own origin (a trailing-slash fix-up, a
/// moved path).
pub const MAX_SAME_ORIGIN_REDIRECTS: usize = 5;

/// Why a redirect from a federation server was not followed.
#[derive(Debug, thiserror::Error)]
pub enum RedirectRefused {
    /// The target is on another origin (scheme, host or port) than the pinned server.
    #[error(
        "the server redirected to {to}, another origin than its own ({origin}); calls to a \
         federation server never follow a redirect off its origin, because the metadata's pins \
         vouch for that origin only. Ask the server's operator to serve the API at the \
         base_uri the metadata lists (or to publish {to_origin} as a base_uri)"
    )]
    CrossOrigin {
        /// The origin of the first request.
        origin: String,
        /// The redirect's target.
        to: String,
        /// The target's origin.
        to_origin: String,
    },
    /// More than [`MAX_SAME_ORIGIN_REDIRECTS`] redirects in a row.
    #[error(
        "more than {MAX_SAME_ORIGIN_REDIRECTS} redirects in a row within {origin} (the last to {to}); the server's redirects loop"
    )]
    TooMany {
        /// The server's origin.
        origin: String,
        /// The last redirect's target.
        to: String,
    },
}

/// The redirect policy of every [`FederationClient`](super::FederationClient).
pub(crate) fn policy() -> Policy {
    Policy::custom(|attempt| match judge(attempt.url(), attempt.previous()) {
        Some(refused) => attempt.error(refused),
        None => attempt.follow(),
    })
}

/// `None` to follow a redirect (the judgement, apart from reqwest's `Attempt` so it can be
/// tested on URLs) to `to` after the requests to `previous`; else why not.
fn judge(to: &Url, previous: &[Url]) -> Option<RedirectRefused> {
    let first = previous.first()?;
    let origin = first.origin().ascii_serialization();
    let to_origin = to.origin().ascii_serialization();
    if to_origin != origin {
        return Some(RedirectRefused::CrossOrigin {
            origin,
            to: to.to_string(),
            to_origin,
        });
    }
    (previous.len() > MAX_SAME_ORIGIN_REDIRECTS).then(|| RedirectRefused::TooMany {
        origin,
        to: to.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        text.parse().unwrap()
    }

    #[test]
    fn only_same_origin_redirects_are_followed() {
        let start = [url("https://school.example/ss12000/v2.0/persons")];
        assert!(judge(&url("https://school.example/v3/persons"), &start).is_none());
        for other in [
            "https://other.example/ss12000/v2.0/persons",
            "https://school.example:8443/ss12000/v2.0/persons",
            "http://school.example/ss12000/v2.0/persons",
            "https://sub.school.example/ss12000/v2.0/persons",
        ] {
            let refused = judge(&url(other), &start).unwrap();
            let text = refused.to_string();
            assert!(
                matches!(refused, RedirectRefused::CrossOrigin { .. }),
                "{text}"
            );
            assert!(text.contains(other), "{text}");
        }
        let many: Vec<Url> = (0..=MAX_SAME_ORIGIN_REDIRECTS)
            .map(|i| url(&format!("https://school.example/{i}")))
            .collect();
        let refused = judge(&url("https://school.example/again"), &many).unwrap();
        assert!(
            matches!(refused, RedirectRefused::TooMany { .. }),
            "{refused}"
        );
    }
}
