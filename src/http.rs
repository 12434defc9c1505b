//! The HTTP server loop for the public and admin listeners: a deadline for the request
//! head (a connection that sends nothing, or trickles its headers, is closed instead of
//! holding a file descriptor forever) and a graceful stop; sockets come from `accept`.
//! axum's own `serve` has no header deadline, which let idle sockets lock every client
//! out once the fd limit was reached.

use crate::accept::Acceptor;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Serves `router` on `listener` until `stop`, then lets requests in flight finish.
/// Upgraded connections (WebSockets) leave this loop's care once upgraded.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let connections = TaskTracker::new();
    let mut acceptor = Acceptor::new(listener, "http");
    while let Some(stream) = acceptor.next(&stop).await {
        // Handlers that limit per client address read it as `ConnectInfo`.
        let peer = stream.peer_addr().ok();
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                if let Some(peer) = peer {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                request
            },
        ));
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
