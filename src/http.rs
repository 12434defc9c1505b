//! The HTTP server loop for the public and admin listeners: a deadline for the request
//! head (a connection that sends nothing, or trickles its headers, is closed instead of
//! holding a file descriptor forever) and a graceful stop; sockets come from `accept`.
//! axum's own `serve` has no header deadline, which let idle sockets lock every client
//! out once the fd limit was reached.

use crate::accept::Acceptor;
use crate::gateway::Gateway;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The answer to a connection over the pending-login cap, before any request is read:
/// the same JSON error an API call gets.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ncontent-type: application/json\r\nContent-Length: 66\r\nConnection: close\r\n\r\n{\"code\":\"unavailable\",\"message\":\"too many connections logging in\"}";

/// Answers 503 and closes gently: the client's request is read (briefly) so the close
/// is not a reset that could destroy the answer.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let answer = async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// Serves `router` on `listener` until `stop`, then lets requests in flight finish.
/// Upgraded connections (WebSockets) leave this loop's care once upgraded. With `gw`
/// (the public listener), a connection counts as a pending login until its first
/// request head is in: past `SWITCHBOARD_MAX_PENDING_LOGINS` new ones get a bare 503.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    stop: CancellationToken,
    gw: Option<Arc<Gateway>>,
) {
    let connections = TaskTracker::new();
    let mut acceptor = Acceptor::new(listener, "http");
    while let Some(stream) = acceptor.next(&stop).await {
        let pending = match &gw {
            Some(gw) => match gw.pending_login() {
                Some(guard) => Some(guard),
                None => {
                    gw.refused("pending_logins");
                    connections.spawn(refuse(stream));
                    continue;
                }
            },
            None => None,
        };
        // Released by the first request (an upgrade takes its own), or the close.
        let pending = Arc::new(std::sync::Mutex::new(pending));
        // Handlers that limit per client address read it as `ConnectInfo`.
        let peer = stream.peer_addr().ok();
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                pending.lock().unwrap_or_else(|e| e.into_inner()).take();
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
