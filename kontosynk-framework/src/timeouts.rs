//! The time limits of an HTTP connection once it is established (after the TLS handshake):
//!
//! - the first request head must arrive within `header_read_timeout` of the connection's
//!   start, so a client that connects and sends nothing is cut after that;
//! - every later request head must be complete within `header_read_timeout` of its first
//!   byte, so a client that sends part of a head and stalls is cut (slowloris);
//! - a connection with no request in flight and no bytes moving for `idle_timeout` is
//!   closed, so a kept-alive connection stays usable for `idle_timeout`.
//!
//! hyper's own HTTP/1 `header_read_timeout` starts its clock as soon as hyper waits for a
//! head, which on a kept-alive connection is the moment the previous response was written:
//! with it, every idle keep-alive connection was closed after `header_read_timeout` instead
//! of `idle_timeout`, costing handshakes and failing a request sent just as the server
//! closed. hyper has no hook for "the first byte of the next request", so the clock it is
//! given is [`HeadTimer`]: hyper arms it when it starts waiting for a head and drops it
//! when the head is complete (hyper 1.12's HTTP/1 server uses its timer for nothing else;
//! the connection-timeout tests fail if that changes), and the clock only starts running
//! once the peer sends a byte after it was armed. Bytes are counted on the socket, below
//! TLS, so a client that drips a TLS record without completing it starts the clock too.
//!
//! One case stays with the idle timeout: bytes of a pipelined next request that hyper
//! already read together with the previous request are not "a byte after arming", so a
//! client that pipelines a partial head and then sends nothing is closed after
//! `idle_timeout` (as an idle connection would be), not after `header_read_timeout`. Any
//! byte it sends after that starts the head clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;
use tokio::sync::watch;

use crate::io::Activity;

/// The HTTP/1 server timer for hyper's `header_read_timeout` (see the module docs): each
/// head's clock starts at the first byte the peer sends after hyper began waiting for it;
/// the first head's clock starts at once (the connection's first-request deadline in
/// [`Supervisor`] covers the time before its first byte).
pub(crate) struct HeadTimer {
    activity: Arc<Activity>,
    armed_before: AtomicBool,
}

impl HeadTimer {
    /// The head timer of the connection whose reads `activity` counts.
    pub(crate) fn new(activity: Arc<Activity>) -> Self {
        Self {
            activity,
            armed_before: AtomicBool::new(false),
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let first = !self.armed_before.swap(true, Ordering::Relaxed);
        Box::pin(HeadSleep {
            activity: Arc::clone(&self.activity),
            reads_when_armed: self.activity.reads(),
            timeout,
            running: first.then(|| Box::pin(tokio::time::sleep(timeout))),
        })
    }
}

/// One head's clock: not running until the peer has sent a byte since it was armed.
///
/// hyper polls it each time parsing the head needs more bytes, that is right after every
/// read from the peer; so it notices the first byte in the same poll that read it, and
/// needs no wake-up of its own until then.
struct HeadSleep {
    activity: Arc<Activity>,
    reads_when_armed: u64,
    timeout: Duration,
    running: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.running.is_none() {
            if self.activity.reads() == self.reads_when_armed {
                return Poll::Pending;
            }
            self.running = Some(Box::pin(tokio::time::sleep(self.timeout)));
        }
        match &mut self.running {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl Sleep for HeadSleep {}

/// Requests seen on one connection: how many have begun (their head is complete) and how
/// many are being answered.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    begun: AtomicU64,
    in_flight: AtomicUsize,
}

impl Requests {
    /// Counts a request whose head is complete, in flight until the guard is dropped.
    pub(crate) fn begin(&self) -> InFlight<'_> {
        self.begun.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
    }

    fn none_yet(&self) -> bool {
        self.begun.load(Ordering::Relaxed) == 0
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }
}

/// A request being answered (see [`Requests::begin`]).
pub(crate) struct InFlight<'a>(&'a Requests);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a [`Supervisor`] watches on one connection.
pub(crate) struct Watched<'a> {
    /// The first request's head must be complete within this of the start.
    pub(crate) header_read_timeout: Duration,
    /// Closed after this long without a request in flight or a byte moving.
    pub(crate) idle_timeout: Duration,
    /// The connection's I/O.
    pub(crate) activity: &'a Activity,
    /// Its requests.
    pub(crate) requests: &'a Requests,
    /// Set when the connection must close once its requests are answered.
    pub(crate) close: Option<&'a AtomicBool>,
    /// Becomes true when the server stops.
    pub(crate) stop: &'a mut watch::Receiver<bool>,
}

/// What to do with the connection (see [`Supervisor::next`]).
pub(crate) enum Action {
    /// Stop reading new requests and close once the current one is answered.
    GracefulShutdown,
    /// Close now: no first request arrived within the header read timeout.
    Drop,
}

/// Decides when a connection closes; the caller drives the connection and, in the same
/// `select!`, awaits [`next`](Self::next):
///
/// ```ignore
/// loop {
///     tokio::select! {
///         result = conn.as_mut() => break Some(result),
///         action = supervisor.next() => match action {
///             Action::GracefulShutdown => conn.as_mut().graceful_shutdown(),
///             Action::Drop => break None,
///         },
///     }
/// }
/// ```
pub(crate) struct Supervisor<'a> {
    watched: Watched<'a>,
    started: Instant,
    closing: bool,
}

impl<'a> Supervisor<'a> {
    /// Supervises a connection whose HTTP starts now.
    pub(crate) fn new(watched: Watched<'a>) -> Self {
        Self {
            watched,
            started: Instant::now(),
            closing: false,
        }
    }

    /// Waits until the connection must close; after a graceful shutdown, never again.
    pub(crate) async fn next(&mut self) -> Action {
        if self.closing {
            return std::future::pending().await;
        }
        let action = self.decide().await;
        if matches!(action, Action::GracefulShutdown) {
            self.closing = true;
        }
        action
    }

    async fn decide(&mut self) -> Action {
        let w = &mut self.watched;
        loop {
            let mut wake = w.idle_timeout.saturating_sub(w.activity.quiet());
            if w.requests.none_yet() {
                wake = wake.min(w.header_read_timeout.saturating_sub(self.started.elapsed()));
            }
            let wake = wake.max(Duration::from_millis(100));
            tokio::select! {
                changed = w.stop.changed() => {
                    if changed.is_err() || *w.stop.borrow() {
                        return Action::GracefulShutdown;
                    }
                }
                () = tokio::time::sleep(wake) => {
                    if w.requests.none_yet() && self.started.elapsed() >= w.header_read_timeout {
                        return Action::Drop;
                    }
                    let idle = !w.requests.busy() && w.activity.quiet() >= w.idle_timeout;
                    let must_close = w.close.is_some_and(|c| c.load(Ordering::Acquire));
                    if idle || must_close {
                        return Action::GracefulShutdown;
                    }
                }
            }
        }
    }
}
