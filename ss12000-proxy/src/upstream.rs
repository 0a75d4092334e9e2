//! The request body on its way to the backend, shared by both ways of reaching it (the
//! general client of [`backend`](crate::backend) and the HTTP/1.1 pool of
//! [`h1pool`](crate::h1pool)); it depends on neither.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};
use kontosynk_framework::RequestBody;
use kontosynk_framework::response::BoxError;

/// The client's request body on its way to the backend; tells when it has been sent in
/// full, so the backend's response time is measured from then (a slow upload is not a
/// slow backend).
pub struct UpstreamBody {
    inner: RequestBody,
    sent: Option<tokio::sync::oneshot::Sender<()>>,
}

impl UpstreamBody {
    /// The body, and a receiver that fires once it has been sent in full.
    pub(crate) fn new(inner: RequestBody) -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (sent, done) = tokio::sync::oneshot::channel();
        let mut body = Self {
            inner,
            sent: Some(sent),
        };
        if Body::is_end_stream(&body.inner) {
            body.signal();
        }
        (body, done)
    }

    fn signal(&mut self) {
        if let Some(sent) = self.sent.take() {
            let _ = sent.send(());
        }
    }
}

impl Body for UpstreamBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || Body::is_end_stream(&self.inner) {
            self.signal();
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
