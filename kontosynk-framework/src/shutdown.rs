//! Process signals: SIGTERM and Ctrl-C stop the server gracefully; SIGHUP reloads files.

/// Completes on the first SIGTERM or Ctrl-C (SIGINT).
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Runs `reload` on every SIGHUP, in a background task, for as long as the runtime lives
/// (a no-op where there is no SIGHUP). `reload` keeps the old state when the new one is bad.
pub fn on_hangup(mut reload: impl FnMut() + Send + 'static) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; files will not be reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            reload();
        }
    });
    #[cfg(not(unix))]
    let _ = &mut reload;
}
