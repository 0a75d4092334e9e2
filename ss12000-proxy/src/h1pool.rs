//! Plain-HTTP/1.1 backend connections, pooled per thread.
//!
//! The common deployment puts the proxy next to an `http://` backend. For it the proxy keeps
//! its own small pool instead of hyper-util's general client: each thread owns its idle
//! connections outright (no lock, no pool-key hashing, no connector clones per request),
//! and a connection goes back to its thread's pool when the response body has been read to
//! the end. That is a few percent of the proxy's CPU per request.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::per_thread::{PerThread, PerThreadHandle};
use crate::upstream::UpstreamBody;

/// A boxed error from the backend connection (the framework's).
pub use kontosynk_framework::response::BoxError;

/// Idle connections kept per thread at most; more are closed when handed back.
const MAX_IDLE: usize = 1024;

/// An idle connection unused for this long is closed rather than reused (checked whenever
/// a connection is handed back or taken).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// One backend's pools (one per thread).
pub struct H1Pool {
    /// The backend's host and port, sent as `Host`.
    authority: http::HeaderValue,
    dialer: Dialer,
    idle: PerThread<Vec<Idle>>,
}

struct Idle {
    sender: SendRequest<UpstreamBody>,
    since: Instant,
}

/// A connection lent out for one request, handed back to the pool of the thread that
/// finishes reading its response.
pub struct Checkin {
    sender: SendRequest<UpstreamBody>,
    pool: PerThreadHandle<Vec<Idle>>,
}

impl Checkin {
    fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        let sender = self.sender;
        let now = Instant::now();
        // On a thread that never used the pool (only when connections are not kept on
        // one thread) the connection is simply closed.
        self.pool.with(|idle| {
            // The list is oldest first: close what has idled too long.
            let expired = idle
                .iter()
                .take_while(|entry| now.duration_since(entry.since) >= IDLE_TIMEOUT)
                .count();
            idle.drain(..expired);
            if idle.len() < MAX_IDLE {
                idle.push(Idle { sender, since: now });
            }
        });
    }
}

impl H1Pool {
    /// A pool for the backend at `authority` (port 80 unless it names one).
    pub fn new(authority: &http::uri::Authority, connect_timeout: Duration) -> Self {
        let host = authority.host();
        // Host is host and port only, never userinfo a backend URL may carry.
        let host_header = match authority.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Self {
            authority: http::HeaderValue::from_str(&host_header)
                .expect("a parsed host and port are a valid header value"),
            dialer: Dialer::new(authority, connect_timeout),
            idle: PerThread::default(),
        }
    }

    /// Sends `request` on an idle connection of this thread, or a new one. A request that
    /// an idle connection could not take (the backend closed it meanwhile) is sent again on
    /// another; once sent, it is never repeated.
    pub async fn send(
        &self,
        mut request: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Checkin), BoxError> {
        self.origin_form(&mut request);
        while let Some(mut sender) = self.idle.with(Vec::new, take_usable) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, self.checkin(sender))),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(failed.into_error().into()),
                },
            }
        }
        let mut sender = self.connect().await?;
        let response = sender.send_request(request).await?;
        Ok((response, self.checkin(sender)))
    }

    /// The request as an origin server expects it: a `Host` (the backend's, unless the
    /// forwarder kept the client's), and the request target as the path and query only.
    fn origin_form(&self, request: &mut Request<UpstreamBody>) {
        request
            .headers_mut()
            .entry(http::header::HOST)
            .or_insert_with(|| self.authority.clone());
        let path_and_query = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        *request.uri_mut() = http::Uri::from(path_and_query);
    }

    fn checkin(&self, sender: SendRequest<UpstreamBody>) -> Checkin {
        Checkin {
            sender,
            pool: self.idle.handle(),
        }
    }

    async fn connect(&self) -> Result<SendRequest<UpstreamBody>, BoxError> {
        let stream = self.dialer.dial().await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(error = %err, "backend connection ended");
            }
        });
        Ok(sender)
    }
}

/// Where a plain-HTTP backend is dialled, and for how long: one TCP connection (no Nagle) to
/// the host and port of its URL (port 80 unless named), for the HTTP/1.1 pool and h2c alike.
pub(crate) struct Dialer {
    host: String,
    port: u16,
    connect_timeout: Duration,
}

impl Dialer {
    pub(crate) fn new(authority: &http::uri::Authority, connect_timeout: Duration) -> Self {
        Self {
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: authority.port_u16().unwrap_or(80),
            connect_timeout,
        }
    }

    /// A new connection, or an error naming the address and the time allowed.
    pub(crate) async fn dial(&self) -> Result<TcpStream, BoxError> {
        let address = (self.host.as_str(), self.port);
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                format!(
                    "connecting to {}:{} timed out after {:?}",
                    self.host, self.port, self.connect_timeout
                )
            })?
            .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// The freshest idle connection still worth trying; stale and closed ones are dropped.
fn take_usable(idle: &mut Vec<Idle>) -> Option<SendRequest<UpstreamBody>> {
    while let Some(entry) = idle.pop() {
        if !entry.sender.is_closed() && entry.since.elapsed() < IDLE_TIMEOUT {
            return Some(entry.sender);
        }
    }
    None
}

/// A backend response body that hands its connection back to the pool once read to the
/// end. Dropped early (the client went away), the connection is closed instead.
pub struct ReturningBody {
    inner: Incoming,
    checkin: Option<Checkin>,
}

impl ReturningBody {
    /// `inner`, whose connection `checkin` returns to the pool at the end (if given).
    pub fn new(inner: Incoming, checkin: Option<Checkin>) -> Self {
        let mut body = Self { inner, checkin };
        if body.inner.is_end_stream() {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        if let Some(checkin) = self.checkin.take() {
            checkin.give_back();
        }
    }
}

impl Body for ReturningBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.finish(),
            Poll::Ready(Some(Err(_))) => self.checkin = None,
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_and_address_come_from_the_backend_authority() {
        let pool = |text: &str| H1Pool::new(&text.parse().unwrap(), Duration::from_secs(1));
        let with_userinfo = pool("user:secret@backend.example:8080");
        assert_eq!(with_userinfo.authority, "backend.example:8080");
        assert_eq!(
            (
                with_userinfo.dialer.host.as_str(),
                with_userinfo.dialer.port
            ),
            ("backend.example", 8080)
        );
        let ipv6 = pool("[::1]:9000");
        assert_eq!(ipv6.authority, "[::1]:9000");
        assert_eq!((ipv6.dialer.host.as_str(), ipv6.dialer.port), ("::1", 9000));
        let default_port = pool("backend.example");
        assert_eq!(default_port.authority, "backend.example");
        assert_eq!(default_port.dialer.port, 80);
    }
}
