//! The access log: one line per request, written when the response body has been sent (or
//! abandoned), so streamed responses are logged with their real size and duration.
//! Never bodies, tokens or headers.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use fedtls::OrganizationId;
use http::Method;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::response::{Body, BoxError};

/// What the log line says about a request.
#[derive(Debug)]
pub(crate) struct AccessLog {
    pub(crate) remote: SocketAddr,
    pub(crate) entity_id: String,
    pub(crate) organization_id: Option<OrganizationId>,
    /// The metadata source that vouched for the client (empty when none authenticated).
    pub(crate) source: String,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) started: Instant,
}

/// A response body that counts what it sends and logs the request when it is done.
pub(crate) struct LoggedBody {
    inner: Body,
    entry: Option<AccessLog>,
    bytes: u64,
}

/// True when access log lines are wanted (the `kontosynk::access` target at info): only
/// then is a request's entry put together.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: "kontosynk::access", tracing::Level::INFO)
}

impl LoggedBody {
    /// `inner`, logged as `entry` when done; `None` when the access log is off.
    pub(crate) fn new(inner: Body, entry: Option<AccessLog>) -> Self {
        Self {
            inner,
            entry,
            bytes: 0,
        }
    }

    fn finish(&mut self, completed: bool) {
        if let Some(entry) = self.entry.take() {
            tracing::info!(
                target: "kontosynk::access",
                remote = %entry.remote,
                entity_id = entry.entity_id,
                organization_id = entry
                    .organization_id
                    .as_ref()
                    .map_or("-", OrganizationId::as_str),
                source = if entry.source.is_empty() { "-" } else { entry.source.as_str() },
                method = %entry.method,
                path = entry.path,
                status = entry.status,
                bytes = self.bytes,
                duration_ms = entry.started.elapsed().as_secs_f64() * 1000.0,
                completed,
                "request"
            );
        }
    }
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // Logged here when the body was empty from the start or the client went away.
        let completed = self.inner.is_end_stream();
        self.finish(completed);
    }
}
