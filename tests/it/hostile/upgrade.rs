//! Before login: slowloris upgrades, many half-open upgrades (the pending-login cap)
//! and upgrades that never log in.

use super::raw::RawWs;
use super::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn slowloris_upgrade_is_closed_at_the_header_timeout() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.http_header_timeout = Duration::from_millis(800)).await;
    let mut s = TcpStream::connect(server.http).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        server.http
    );
    let started = Instant::now();
    let mut closed = false;
    for b in request.bytes() {
        if s.write_all(&[b]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            assert!(
                matches!(r, Ok(0) | Err(_)),
                "an answer to half a request head"
            );
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after trickling the whole head");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn half_open_upgrades_past_the_cap_get_503_and_tcp_1013() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| {
        c.max_pending_logins = 4;
        c.login_timeout = Duration::from_secs(30);
    })
    .await;
    let mut half_open = Vec::new();
    for _ in 0..4 {
        half_open.push(RawWs::connect(server.http).await);
    }
    until("four pending logins", WAIT, async || {
        let n = server.gw.metrics.pending_logins.get();
        (n == 4).then_some(()).ok_or(format!("{n}"))
    })
    .await;
    let (status, body) = http(server.http, "GET", "/ws", None, None).await;
    // A plain GET is not an upgrade; send a real one.
    assert_ne!(status, 101, "{body}");
    let answer = raw_upgrade(
        &server,
        "Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("\"code\":\"unavailable\""), "{answer}");
    let mut tcp = server.tcp_raw().await;
    expect_error(&mut tcp, "unavailable").await;
    assert_eq!(tcp.closed().await, Some(1013));
    let refused = server
        .gw
        .metrics
        .connections_refused
        .with_label_values(&["pending_logins"])
        .get();
    // The plain GET, the upgrade and the TCP client: an HTTP connection counts as
    // pending from accept until its request head is in.
    assert_eq!(refused, 3);
    // One logs in: its place frees at once, and others can come in.
    let login = json!({"type": "login", "token": token("late")});
    half_open[0].text(&login.to_string()).await;
    until("a free place", WAIT, async || {
        let n = server.gw.metrics.pending_logins.get();
        (n == 3).then_some(()).ok_or(format!("{n}"))
    })
    .await;
    let mut c = server.ws("next").await;
    assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong");
    drop(half_open);
    until("no pending logins", WAIT, async || {
        let n = server.gw.metrics.pending_logins.get();
        (n == 0).then_some(()).ok_or(format!("{n}"))
    })
    .await;
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn upgrade_without_login_is_closed_4002_at_the_login_timeout() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.login_timeout = Duration::from_millis(400)).await;
    let started = Instant::now();
    let mut ws = RawWs::connect(server.http).await;
    let mut tcp = server.tcp_raw().await;
    let (code, texts) = ws.close_code().await;
    assert_eq!(code, Some(4002));
    is_error(&texts[0], "unauthorized");
    expect_error(&mut tcp, "unauthorized").await;
    assert_eq!(tcp.closed().await, Some(4002));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.gw.metrics.pending_logins.get(), 0);
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn silent_http_connection_is_closed_at_the_header_timeout() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.http_header_timeout = Duration::from_millis(500)).await;
    let mut s = TcpStream::connect(server.http).await.expect("connect");
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn silent_http_connections_count_against_the_pending_login_cap() {
    let server = TestServer::with(|c| c.max_pending_logins = 2).await;
    // Two connections that send nothing hold the two places.
    let mut quiet: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        quiet.push(TcpStream::connect(server.http).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(server.http).await.expect("connect");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), third.read_to_string(&mut answer))
        .await
        .expect("answered at once")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    // A request head releases its place.
    for s in &mut quiet {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.expect("response");
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    let (status, _) = http(server.http, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
}

/// Sends a raw request head to `/ws`; returns the whole answer (the server closes or
/// switches protocols after it, so the head is all there is to read at first).
async fn raw_upgrade(server: &TestServer, extra_headers: &str) -> String {
    let mut s = TcpStream::connect(server.http).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\n{extra_headers}\r\n",
        server.http
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 2048];
    let n = tokio::time::timeout(WAIT, s.read(&mut answer))
        .await
        .expect("answer")
        .expect("read");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn requests_that_are_not_upgrades_get_json_errors_naming_what_is_missing() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    for (headers, missing) in [
        ("", "Connection: upgrade"),
        (
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
            "Upgrade: websocket",
        ),
        (
            "Connection: Upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Version: 13\r\n",
            "Upgrade: websocket",
        ),
        (
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Key",
        ),
    ] {
        let answer = raw_upgrade(&server, &format!("{headers}\r\n")).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{headers:?}: {answer}");
        assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
        assert!(
            answer.contains(missing),
            "{headers:?} should name {missing}: {answer}"
        );
    }
    // Another protocol version: refused with the one spoken here (RFC 6455 §4.4).
    let answer = raw_upgrade(
        &server,
        &format!("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n{KEY}"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{answer}"
    );
    // Token lists and any letter case are upgrades too (browsers send
    // `Connection: keep-alive, Upgrade`); the accept key is RFC 6455's example.
    let answer = raw_upgrade(
        &server,
        &format!(
            "Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n{KEY}"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(
        answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "accept key: {answer}"
    );
    let (status, _) = http(server.http, "POST", "/ws", None, None).await;
    assert_eq!(status, 405);
    still_serving(&server).await;
    log.assert_none();
}
