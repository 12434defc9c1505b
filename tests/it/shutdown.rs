//! Graceful drain: readiness off, clients told to reconnect, closed with 1012, in time.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn shutdown_sends_reconnect_and_exits_in_time() {
    let mut s = TestServer::with(|c| c.drain_timeout = Duration::from_millis(800)).await;
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(s.ws(&format!("u{i}")).await);
        clients.push(s.tcp(&format!("t{i}")).await);
    }
    let mut pending = s.ws_raw().await; // connected, never logged in
    let http_addr = s.http;
    let took = tokio::spawn(async move { s.shutdown().await });
    for c in &mut clients {
        let r = c.recv_type("reconnect").await;
        assert!(r["after_ms"].as_u64().is_some());
        assert_eq!(c.closed().await, Some(1012));
    }
    assert!(pending.recv_type("reconnect").await["after_ms"].is_u64());
    assert_eq!(pending.closed().await, Some(1012));
    let took = took.await.expect("join");
    assert!(
        took < Duration::from_millis(800) + Duration::from_millis(1500),
        "took {took:?}"
    );
    // Nothing accepts any more.
    assert!(tokio::net::TcpStream::connect(http_addr).await.is_err());
}

#[tokio::test]
async fn readiness_fails_while_draining() {
    let mut s = TestServer::with(|c| c.drain_timeout = Duration::from_secs(2)).await;
    let mut c = s.ws("alice").await;
    let gw = s.gw.clone();
    let handle = tokio::spawn(async move { s.shutdown().await });
    eventually("not accepting", || !gw.is_accepting()).await;
    c.recv_type("reconnect").await;
    let _ = json!({});
    handle.await.expect("join");
}
