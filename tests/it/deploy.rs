//! What load balancers and orchestrators rely on: readiness that follows Redis from
//! the first second, a drain delay with readiness off and listeners open, the
//! per-replica connection cap, and metrics kept on the admin listener.

use crate::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

async fn status(addr: std::net::SocketAddr, path: &str) -> u16 {
    http(addr, "GET", path, None, None).await.0
}

#[tokio::test]
async fn replica_started_before_redis_becomes_ready_soon_after_it_answers() {
    let mut redis = TestRedis::start().await;
    redis.kill();
    let prefix = unique_prefix();
    let started = Instant::now();
    let s = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        c.redis_timeout = Duration::from_secs(2);
        c.redis_probe_interval = Duration::from_secs(1);
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "start blocked on Redis for {:?}",
        started.elapsed()
    );
    // Serving (health yes, ready no) while Redis is away, and logins are refused.
    assert_eq!(status(s.http, "/healthz").await, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status(s.http, "/readyz").await, 503);
    let mut early = s.ws_raw().await;
    early
        .send(json!({"type": "login", "token": token("early")}))
        .await;
    assert_eq!(early.recv_type("error").await["code"], "unavailable");

    redis.restart().await;
    until(
        "ready soon after Redis came up",
        Duration::from_secs(3),
        async || match status(s.http, "/readyz").await {
            200 => Ok(()),
            other => Err(other.to_string()),
        },
    )
    .await;
    let mut alice = s.ws("alice").await;
    let joined = alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    assert_eq!(joined["type"], "ok", "{joined}");
}

#[tokio::test]
async fn drain_delay_keeps_listening_with_readiness_off() {
    let mut s = TestServer::with(|c| {
        c.drain_delay = Some(Duration::from_millis(1500));
        c.drain_timeout = Duration::from_millis(500);
    })
    .await;
    let mut alice = s.ws("alice").await;
    let mut tcp_early = s.tcp_raw().await; // connected, not logged in yet
    let addr = s.http;
    let gw = s.gw.clone();
    let started = Instant::now();
    let took = tokio::spawn(async move { s.shutdown().await });
    eventually("readiness off", || !gw.is_accepting()).await;

    // During the delay: readiness 503, the listener still answers, upgrades get 503
    // with Retry-After, and existing sessions work as before.
    assert_eq!(status(addr, "/readyz").await, 503);
    assert_eq!(status(addr, "/healthz").await, 200);
    let upgrade = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    match upgrade {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert_eq!(
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
                Some("1")
            );
        }
        other => panic!("upgrade during the drain delay: {other:?}"),
    }
    assert_eq!(alice.request(json!({"type": "ping"})).await["type"], "pong");
    // A TCP client logging in now is sent elsewhere at once.
    tcp_early
        .send(json!({"type": "login", "token": token("late")}))
        .await;
    tcp_early.recv_type("reconnect").await;
    assert_eq!(tcp_early.closed().await, Some(1012));
    let refused = gw.metrics.render();
    assert!(
        refused.contains("switchboard_connections_refused_total{reason=\"draining\"} 2"),
        "{refused}"
    );
    assert!(refused.contains("switchboard_draining 1"));
    // Told to reconnect only after the delay.
    alice.recv_type("reconnect").await;
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "reconnect after {:?}, before the delay ended",
        started.elapsed()
    );
    assert_eq!(alice.closed().await, Some(1012));
    let took = took.await.expect("join");
    assert!(
        took < Duration::from_millis(1500 + 500 + 1500),
        "took {took:?}"
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn connection_cap_refuses_with_503_and_counts() {
    let s = TestServer::with(|c| c.max_connections = 2).await;
    let _a = s.ws("a").await;
    let _b = s.tcp("b").await;
    eventually("two connections", || s.gw.connection_count() == 2).await;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws", s.http)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("upgrade over the cap: {other:?}"),
    }
    let mut over = s.tcp_raw().await;
    assert_eq!(over.recv_type("error").await["code"], "unavailable");
    assert_eq!(over.closed().await, Some(1013));
    let text = s.gw.metrics.render();
    assert!(
        text.contains("switchboard_connections_refused_total{reason=\"limit\"} 2"),
        "{text}"
    );
    assert!(text.contains("switchboard_connection_limit 2"), "{text}");
    // Room again once one leaves.
    drop(_a);
    eventually("one left", || s.gw.connection_count() == 1).await;
    let mut c = s.ws("c").await;
    assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong");
}

/// A connection counts from the moment its upgrade is accepted, not from when its
/// session task first runs: the request right after a 101 already sees it.
#[tokio::test]
async fn the_upgrade_right_after_the_cap_is_reached_is_refused() {
    let s = TestServer::with(|c| c.max_connections = 1).await;
    let url = format!("ws://{}/ws", s.http);
    for round in 0..20 {
        let (held, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| panic!("round {round}: first upgrade: {e}"));
        assert_eq!(
            s.gw.connection_count(),
            1,
            "round {round}: counted by the 101"
        );
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 503, "round {round}");
            }
            other => panic!("round {round}: upgrade over the cap: {other:?}"),
        }
        drop(held);
        eventually("the slot back", || s.gw.connection_count() == 0).await;
    }
}

#[tokio::test]
async fn admin_listener_keeps_metrics_off_the_public_port() {
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let s = TestServer::with(|c| c.admin_listen = Some(admin_port)).await;
    assert_eq!(status(s.http, "/metrics").await, 404);
    let (code, body) = http(admin_port, "GET", "/metrics", None, None).await;
    assert_eq!(code, 200);
    assert!(body.contains("switchboard_ready 1"), "{body}");
    assert!(body.contains("process_open_fds"), "{body}");
    for path in ["/healthz", "/readyz"] {
        assert_eq!(status(admin_port, path).await, 200, "{path}");
        assert_eq!(status(s.http, path).await, 200, "{path}");
    }
    // The allocator's statistics follow the metrics.
    assert_eq!(status(s.http, "/debug/allocator").await, 404);
    let (code, body) = http(admin_port, "GET", "/debug/allocator", None, None).await;
    assert_eq!(code, 200);
    let stats: serde_json::Value =
        serde_json::from_str(&body).expect("allocator statistics are JSON");
    assert!(
        stats["jemalloc"]["arenas"]["bin"].is_array()
            && stats["jemalloc"]["stats.arenas"].is_object(),
        "size classes and arena counts: {body:.300}"
    );
    // The admin port serves nothing else.
    assert_eq!(status(admin_port, "/api/v1/online").await, 404);
}

/// Slowloris: a connection that sends nothing, or trickles its request head, is closed
/// at `SWITCHBOARD_HTTP_HEADER_TIMEOUT` instead of holding a descriptor forever; upgraded
/// sessions are not affected.
#[tokio::test]
async fn slow_or_silent_http_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::with(|c| c.http_header_timeout = Duration::from_millis(300)).await;
    let mut session = s.ws("alice").await;

    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(s.http)
        .await
        .expect("connect");
    let mut trickle = tokio::net::TcpStream::connect(s.http)
        .await
        .expect("connect");
    trickle
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("head");
    let trickling = async {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickle.write_all(b"X").await.is_err() {
                return;
            }
        }
    };
    let mut buf = [0u8; 256];
    let (read, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf)),
        trickling
    );
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "silent connection still open: {read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), trickle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "trickling connection still open");

    // The logged-in session outlived the deadline and still works.
    assert_eq!(
        session.request(json!({"type": "ping"})).await["type"],
        "pong"
    );
    assert_eq!(status(s.http, "/healthz").await, 200);
}
