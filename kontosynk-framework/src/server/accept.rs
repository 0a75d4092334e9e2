//! The accept loop: connection cap, worker threads, admin listener and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::Handler;
use super::builder::Shared;
use super::connection::serve_connection;
use crate::admin::{self, AdminState};
use crate::metrics::Metrics;
use crate::workers::{ServeConnection, WorkerPool};

/// A server with bound listeners, ready to serve.
pub struct BoundServer {
    pub(super) listener: TcpListener,
    pub(super) admin: Option<(TcpListener, Option<serde_json::Value>)>,
    pub(super) worker_threads: usize,
    pub(super) shared: Arc<Shared>,
}

impl BoundServer {
    /// The address clients connect to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The server's counters (also rendered at `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
    /// finish within the grace period, and returns.
    pub async fn serve<H: Handler>(self, handler: H, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let serve = connection_future(&self.shared, &handler, &stop_rx);
        let pool = self.start_workers(&serve);
        let admin_task = self.admin.map(|(listener, own)| {
            let state = AdminState {
                source: Arc::clone(&self.shared.source),
                store: self.shared.store.clone(),
                metrics: Arc::clone(&self.shared.metrics),
                own_metadata: own,
                own_certificate: self.shared.own_certificate.clone(),
                limits: self.shared.limits.clone(),
            };
            tokio::spawn(admin::serve(listener, Arc::new(state), stop_rx.clone()))
        });
        let permits = Arc::new(Semaphore::new(self.shared.limits.max_connections));
        let grace = self.shared.limits.shutdown_grace;
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (stream, remote) = match accepted {
                        Ok(pair) => pair,
                        Err(err) => {
                            // Out of descriptors and similar: pause instead of spinning.
                            tracing::warn!(error = %err, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        tracing::warn!(%remote, "connection limit reached; closing new connection");
                        continue;
                    };
                    if let Some(pool) = &pool {
                        pool.dispatch(stream, remote, permit);
                        continue;
                    }
                    let connection = serve(stream, remote);
                    connections.spawn(async move {
                        connection.await;
                        drop(permit);
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        tracing::info!(
            open = connections.len() + pool.as_ref().map_or(0, WorkerPool::open),
            "shutting down: draining connections"
        );
        let _ = stop_tx.send(true);
        if let Some(pool) = pool {
            pool.drain().await;
        }
        crate::workers::drain(&mut connections, grace).await;
        if let Some(task) = admin_task {
            task.abort();
        }
    }

    /// The connection threads, when configured; `None` serves on the caller's runtime
    /// (also when the threads cannot be started, which is logged).
    fn start_workers(&self, serve: &ServeConnection) -> Option<WorkerPool> {
        if self.worker_threads == 0 {
            return None;
        }
        let serve = Arc::clone(serve);
        let grace = self.shared.limits.shutdown_grace;
        match WorkerPool::start(self.worker_threads, "kontosynk-conn", grace, serve) {
            Ok(pool) => Some(pool),
            Err(err) => {
                tracing::error!(error = %err, "cannot start connection threads; serving on the main runtime");
                None
            }
        }
    }
}

/// Serves accepted connections with `handler`, each counted in the metrics.
fn connection_future<H: Handler>(
    shared: &Arc<Shared>,
    handler: &H,
    stop: &watch::Receiver<bool>,
) -> ServeConnection {
    let shared = Arc::clone(shared);
    let handler = handler.clone();
    let stop = stop.clone();
    Arc::new(move |stream, remote| {
        let shared = Arc::clone(&shared);
        let handler = handler.clone();
        let stop = stop.clone();
        Box::pin(async move {
            shared.metrics.connections(1);
            serve_connection(&shared, stream, remote, handler, stop).await;
            shared.metrics.connections(-1);
        })
    })
}
