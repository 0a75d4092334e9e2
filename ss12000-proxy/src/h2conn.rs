//! HTTP/2 with prior knowledge (h2c) to a plain-HTTP backend: one multiplexed connection per
//! thread.
//!
//! An h2 request carries the host it is for in `:authority`, not in a `Host` header, and a
//! backend may refuse a request that has both (nginx answers 400 "client sent duplicate host
//! header"). A general pooled client takes `:authority` from the URI it also connects to, so
//! it could not present the client's host (as bowness, Go's reverse proxy, does) without
//! pooling per host. Here the connection is to the backend's address whatever the request
//! says, so the request's URI names the host the backend should see and no `Host` header
//! goes with it.
//!
//! Each thread keeps one connection and sends every request of its own connections on it
//! (HTTP/2 multiplexes; the backend's `SETTINGS_MAX_CONCURRENT_STREAMS` queues the rest).
//! A closed connection is replaced on the next request.

use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::h1pool::Dialer;
use crate::per_thread::PerThread;
use crate::upstream::UpstreamBody;

pub use kontosynk_framework::response::BoxError;

/// How often an idle connection is pinged, so a backend that vanished is noticed.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// One h2c backend's connections (one per thread).
pub struct H2Conn {
    dialer: Dialer,
    senders: PerThread<Option<SendRequest<UpstreamBody>>>,
}

impl H2Conn {
    /// Connections to the backend at `authority` (port 80 unless it names one).
    pub fn new(authority: &http::uri::Authority, connect_timeout: Duration) -> Self {
        Self {
            dialer: Dialer::new(authority, connect_timeout),
            senders: PerThread::default(),
        }
    }

    /// Sends `request` (an absolute URI whose authority becomes `:authority`, no `Host`
    /// header) on this thread's connection, opening it first when there is none.
    pub async fn send(
        &self,
        request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        let current = self.senders.with(
            || None,
            |slot| slot.as_ref().filter(|s| !s.is_closed()).cloned(),
        );
        let mut sender = match current {
            Some(sender) => sender,
            None => {
                let fresh = self.connect().await?;
                self.senders
                    .with(|| None, |slot| *slot = Some(fresh.clone()));
                fresh
            }
        };
        sender.ready().await?;
        Ok(sender.send_request(request).await?)
    }

    async fn connect(&self) -> Result<SendRequest<UpstreamBody>, BoxError> {
        let stream = self.dialer.dial().await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(Duration::from_secs(20))
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "h2c backend connection ended");
            }
        });
        Ok(sender)
    }
}
