//! The HTTP server loop for the public and admin listeners: TCP_NODELAY on every
//! socket, a deadline for the request head (a connection that sends nothing, or
//! trickles its headers, is closed instead of holding a file descriptor forever), a
//! backoff when accept fails (out of file descriptors) instead of spinning, and a
//! graceful stop. axum's own `serve` has no header deadline, which let idle sockets lock
//! every client out once the fd limit was reached.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves `router` on `listener` until `stop`, then lets requests in flight finish.
/// Upgraded connections (WebSockets) leave this loop's care once upgraded.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let connections = TaskTracker::new();
    let mut backoff = Duration::ZERO;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(err) => {
                // EMFILE and friends: wait for descriptors to free up; warn once a second.
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(cause = %err, "http accept failed; backing off");
                    last_warning = Some(Instant::now());
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tokio::select! {
                    _ = sleep(backoff) => {}
                    _ = stop.cancelled() => break,
                }
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(cause = %err, "set_nodelay failed");
        }
        let service = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        connections.spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(cause = %err, "http connection ended with an error");
            }
        });
    }
    connections.close();
    connections.wait().await;
}
