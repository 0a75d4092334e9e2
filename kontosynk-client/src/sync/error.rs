//! Why a sync failed: each variant names the request (URL), the state key or the store
//! operation involved, so one `error:` line tells an operator where to look.

use ss12000::StoreError;

/// A failed sync. The store is left consistent (every page is applied atomically with its
/// resume state), so re-running the sync continues where this one stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The request could not be sent or its response not read (no valid metadata,
    /// connection, TLS, timeout), after the client's retries.
    #[error(transparent)]
    Request(#[from] crate::client::ClientError),
    /// The response body could not be read.
    #[error("GET {url}: reading the body failed: {message}")]
    Body {
        /// The request URL.
        url: String,
        /// The transport error with its causes.
        message: String,
    },
    /// The server answered with a status other than 200.
    #[error("{method} {url}: HTTP {status}{}", body_suffix(.body))]
    Status {
        /// `GET` or `POST`.
        method: &'static str,
        /// The request URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (best effort; bodies are not uniform across servers).
        body: String,
    },
    /// A response body is not a page of the expected shape.
    #[error("GET {url}: {message}")]
    BadPage {
        /// The request URL.
        url: String,
        /// What is wrong with the body.
        message: String,
    },
    /// One item of a page is not an SS 12000 object.
    #[error("GET {url}: item {index} of `data`: {message}")]
    BadObject {
        /// The request URL.
        url: String,
        /// Zero-based position in the page's `data` array.
        index: usize,
        /// Why the item was refused.
        message: String,
    },
    /// The server handed out a page token it had already given in this listing; following it
    /// would loop forever.
    #[error("GET {url}: the server repeated page token `{token}` (paging loop); stopping")]
    TokenLoop {
        /// The request URL that returned the repeated token.
        url: String,
        /// The repeated token.
        token: String,
    },
    /// Too many empty pages in a row that still carried a page token.
    #[error("GET {url}: {count} empty pages in a row still carry a page token; stopping")]
    EmptyPages {
        /// The last request URL.
        url: String,
        /// How many empty pages were seen in a row.
        count: usize,
    },
    /// A stored sync-state value cannot be read (written by another program or version).
    #[error("sync state `{key}` is unreadable: {message} (remove it to start over)")]
    State {
        /// The state key.
        key: String,
        /// Why it could not be read.
        message: String,
    },
    /// The base URL and a path do not make a URL.
    #[error("invalid URL `{url}`: {message}")]
    Url {
        /// The offending URL text.
        url: String,
        /// Why it is invalid.
        message: String,
    },
    /// The store refused a read or a write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}
