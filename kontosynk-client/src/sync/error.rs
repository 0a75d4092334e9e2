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
    /// A listing hit one of the run's bounds ([`RunBounds`](super::RunBounds)): the server
    /// kept paging past what any school holds, or the run took longer than allowed. Every page
    /// committed before is kept, and the listing's watermark is not advanced.
    #[error(
        "{server}: stopped the `{listing}` listing after {pages} pages and {objects} objects in \
         this run: {bound}. The pages before are committed and the watermark is not advanced; \
         the next run resumes the listing (last request: {url})"
    )]
    Bounded {
        /// The server's base URL.
        server: String,
        /// The collection path, or `deletedEntities`.
        listing: String,
        /// Which bound was hit.
        bound: Bound,
        /// Pages of this listing committed in this run.
        pages: u64,
        /// Objects (or deleted ids) of this listing committed in this run.
        objects: u64,
        /// The last request URL.
        url: String,
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

/// The bound a run hit, with what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// More pages than `max_pages` in one listing.
    Pages(u64),
    /// More objects than `max_objects` in one listing.
    Objects(u64),
    /// The run's deadline passed.
    Deadline(std::time::Duration),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Pages(limit) => write!(
                f,
                "the next page would exceed {limit} pages (--max-pages); a server that keeps \
                 handing out new page tokens has a paging bug: tell its operator, or raise the \
                 bound if it really pages this finely"
            ),
            Bound::Objects(limit) => write!(
                f,
                "the next page would exceed {limit} objects (--max-objects); no school holds \
                 that many, so the server is probably paging without end: tell its operator, or \
                 raise the bound if it really holds this much"
            ),
            Bound::Deadline(limit) => write!(
                f,
                "the run's deadline of {} s passed (--deadline); re-run to continue, or raise \
                 the deadline for a server this slow",
                limit.as_secs()
            ),
        }
    }
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}
