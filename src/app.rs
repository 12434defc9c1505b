//! Wiring: binds listeners, serves HTTP/WebSocket, admin and TCP, and drains gracefully
//! on shutdown: readiness off at once while the listeners stay open for the drain delay
//! (so load balancers notice), then no new connections, every client told to reconnect
//! and closed spread over the drain period, then exit.

use crate::accept::Acceptor;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::protocol::close;
use crate::session;
use crate::transport::tcp::TcpTransport;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Extra time past the drain timeout for the last closes to be written.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);
/// Share of the drain period over which closes are spread; the rest lets them finish.
const DRAIN_SPREAD: f64 = 0.75;

/// The sockets the gateway serves, bound before the backend connects (so the port is
/// open at once) and before `run` (so tests can use port 0).
pub struct Listeners {
    pub http: TcpListener,
    pub admin: Option<TcpListener>,
    pub tcp: Option<TcpListener>,
}

impl Listeners {
    /// Binds every configured listener with `SWITCHBOARD_LISTEN_BACKLOG`; the error
    /// names the setting and the address.
    pub async fn bind(config: &Config) -> Result<Self, String> {
        let backlog = config.listen_backlog;
        let one = |addr: SocketAddr, setting: &str| {
            listen(addr, backlog).map_err(|e| format!("cannot listen on {addr} ({setting}): {e}"))
        };
        let http = one(config.listen_addr(), "SWITCHBOARD_LISTEN")?;
        let admin = match config.admin_listen {
            Some(addr) => Some(one(addr, "SWITCHBOARD_ADMIN_LISTEN")?),
            None => None,
        };
        let tcp = match config.tcp_listen {
            Some(addr) => Some(one(addr, "SWITCHBOARD_TCP_LISTEN")?),
            None => None,
        };
        Ok(Listeners { http, admin, tcp })
    }
}

/// A listening socket as `TcpListener::bind` makes one (`SO_REUSEADDR` on Unix, so a
/// restarted replica can bind while old connections linger in TIME_WAIT), but with our
/// backlog instead of tokio's fixed 1024.
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves until `shutdown` resolves, then drains and returns.
pub async fn run(
    gw: Arc<Gateway>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let tracker = TaskTracker::new();
    let draining = CancellationToken::new();
    let state = AppState {
        gw: gw.clone(),
        tracker: tracker.clone(),
        draining: draining.clone(),
    };
    let admin = match listeners.admin {
        Some(listener) => {
            tracing::info!(addr = %listener.local_addr()?, "admin listening (metrics, probes)");
            // Open until the drain is over, so the drain itself can be watched.
            Some(tokio::spawn(crate::http::serve(
                listener,
                api::admin_router(state.clone()),
                gw.config.http_header_timeout,
                CancellationToken::new(),
                None,
            )))
        }
        None => None,
    };
    // 503s are expected (readiness while draining or waiting for Redis, refused
    // upgrades): logged at debug, not as errors on every health check.
    let trace = tower_http::trace::TraceLayer::new_for_http()
        .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG));
    let router = api::router(state).layer(trace);
    let http_addr = listeners.http.local_addr()?;
    let http = tokio::spawn(crate::http::serve(
        listeners.http,
        router,
        gw.config.http_header_timeout,
        draining.clone(),
        Some(gw.clone()),
    ));
    let tcp = match listeners.tcp {
        Some(listener) => {
            tracing::info!(addr = %listener.local_addr()?, "tcp transport listening");
            Some(tokio::spawn(accept_tcp(
                listener,
                gw.clone(),
                tracker.clone(),
                draining.clone(),
            )))
        }
        None => None,
    };
    let matcher = tokio::spawn(gw.clone().run_matchmaker(draining.clone()));
    let online_feed = tokio::spawn(gw.clone().run_online_feed(draining.clone()));
    // Runs through the drain: seats of sessions still here keep their leases.
    let game_sweep = tokio::spawn(gw.clone().run_game_sweep(CancellationToken::new()));
    let key_watch = {
        let gw = gw.clone();
        let stop = draining.clone();
        tokio::spawn(async move {
            crate::auth::watch_keys(
                &gw.verifier,
                &gw.metrics,
                gw.config.jwt_reload_interval,
                stop,
            )
            .await;
        })
    };
    tracing::info!(addr = %http_addr, replica = %gw.replica, "switchboard listening");

    shutdown.await;
    // Readiness off, listeners open: endpoints and health checks catch up while new
    // upgrades get 503 + Retry-After and new TCP clients a `reconnect`.
    gw.stop_accepting();
    let delay = gw.config.drain_delay();
    tracing::info!(sessions = gw.hub.session_count(), ?delay, drain = ?gw.config.drain_timeout, "draining: readiness off");
    sleep(delay).await;
    let started = Instant::now();
    let deadline = started + gw.config.drain_timeout;
    tracing::info!(
        sessions = gw.hub.session_count(),
        "draining: listeners closed, clients told to reconnect"
    );
    draining.cancel();

    let sessions = gw.hub.sessions();
    let spread = gw.config.drain_timeout.mul_f64(DRAIN_SPREAD);
    let n = sessions.len().max(1) as f64;
    for (i, handle) in sessions.iter().enumerate() {
        sleep_until(started + spread.mul_f64(i as f64 / n)).await;
        let _ = handle.close(close::DRAINING);
    }
    tracker.close();
    if timeout_at(deadline + DRAIN_MARGIN, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = tracker.len(),
            "drain timeout reached with connections still open"
        );
    }
    if let Some(tcp) = tcp {
        tcp.abort();
    }
    matcher.abort();
    online_feed.abort();
    game_sweep.abort();
    key_watch.abort();
    if timeout(DRAIN_MARGIN, http).await.is_err() {
        tracing::debug!("http server still closing idle connections");
    }
    gw.close().await;
    if let Some(admin) = admin {
        admin.abort();
    }
    tracing::info!(took = ?(started.elapsed() + delay), "drained");
    Ok(())
}

async fn accept_tcp(
    listener: TcpListener,
    gw: Arc<Gateway>,
    tracker: TaskTracker,
    draining: CancellationToken,
) {
    let mut acceptor = Acceptor::new(listener, "tcp");
    while let Some(stream) = acceptor.next(&draining).await {
        // The raw TCP transport has no headers: always the peer's address.
        let peer = stream.peer_addr();
        let transport = TcpTransport::new(
            stream,
            gw.config.max_frame_bytes,
            gw.config.read_buffer_bytes,
        );
        let ip_slot = match peer.map(|peer| gw.admit_ip(peer.ip())) {
            Ok(Ok(slot)) => slot,
            Ok(Err(refusal)) => {
                tracker.spawn(session::refuse(gw.clone(), transport, refusal.message()));
                continue;
            }
            Err(_) => None,
        };
        if gw.at_connection_limit() {
            gw.refused("limit");
            tracker.spawn(session::refuse(
                gw.clone(),
                transport,
                "connection limit reached",
            ));
            continue;
        }
        let Some(pending) = gw.pending_login() else {
            gw.refused("pending_logins");
            tracker.spawn(session::refuse(
                gw.clone(),
                transport,
                "too many connections waiting to log in",
            ));
            continue;
        };
        let counted = gw.count_connection::<TcpTransport>();
        tracker.spawn(session::run(
            gw.clone(),
            transport,
            draining.clone(),
            pending,
            ip_slot,
            counted,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Connections completed within `wait` of `n` attempts, none accepted.
    async fn completed(listener: &TcpListener, n: usize, wait: Duration) -> usize {
        let addr = listener.local_addr().expect("addr");
        let attempts =
            (0..n).map(|_| tokio::time::timeout(wait, tokio::net::TcpStream::connect(addr)));
        let results = futures_util::future::join_all(attempts).await;
        results
            .into_iter()
            .filter(|r| matches!(r, Ok(Ok(_))))
            .count()
    }

    #[tokio::test]
    async fn the_backlog_bounds_connections_waiting_to_be_accepted() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        // Linux queues backlog + 1 completed connections and drops further SYNs (the
        // client would retry after a second).
        let small = listen(loopback, 2).expect("listen");
        let done = completed(&small, 12, Duration::from_millis(300)).await;
        assert!((2..=4).contains(&done), "backlog 2 let {done} of 12 in");
        let large = listen(loopback, 64).expect("listen");
        assert_eq!(completed(&large, 12, Duration::from_millis(300)).await, 12);
    }
}
