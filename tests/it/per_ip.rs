//! Per-address limits: connections held and new connections per second per client
//! address, on both transports; behind a trusted proxy the header's address counts.

use crate::harness::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket upgrade as if from `forwarded` (an `X-Forwarded-For` value).
async fn upgrade(s: &TestServer, forwarded: Option<&str>) -> Result<Ws, String> {
    let mut req = format!("ws://{}/ws", s.http)
        .into_client_request()
        .expect("request");
    if let Some(ip) = forwarded {
        req.headers_mut()
            .insert("X-Forwarded-For", ip.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_connections() {
    let s = TestServer::with(|c| c.max_connections_per_ip = 2).await;
    let _a = s.ws("a").await;
    let mut b = s.tcp("b").await;
    let refused = upgrade(&s, None).await.expect_err("third upgrade");
    assert!(refused.contains("503"), "{refused}");
    let mut c = s.tcp_raw().await;
    let error = c.recv().await;
    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(c.closed().await, Some(1013));
    // Closing one frees a place.
    b.request(json!({"type": "ping"})).await;
    drop(b);
    until("a place to free up", WAIT, async || {
        match upgrade(&s, None).await {
            Ok(_) => Ok(()),
            Err(err) => Err(err),
        }
    })
    .await;
    let (_, metrics) = http(s.http, "GET", "/metrics", None, None).await;
    assert!(
        metrics.contains(r#"switchboard_connections_refused_total{reason="per_ip"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn one_address_opens_connections_at_a_bounded_rate() {
    let s = TestServer::with(|c| c.connect_rate_per_ip = 1.0).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(upgrade(&s, None).await.expect("within the burst"));
    }
    let refused = upgrade(&s, None).await.expect_err("past the burst");
    assert!(refused.contains("503"), "{refused}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_counts() {
    let s = TestServer::with(|c| {
        c.max_connections_per_ip = 1;
        c.trusted_proxy_header = Some("x-forwarded-for".into());
    })
    .await;
    let _one = upgrade(&s, Some("203.0.113.1"))
        .await
        .expect("first client");
    let _two = upgrade(&s, Some("203.0.113.2"))
        .await
        .expect("another client");
    let again = upgrade(&s, Some("203.0.113.1"))
        .await
        .expect_err("same client");
    assert!(again.contains("503"), "{again}");
    // Without the setting the header is ignored: everyone is the peer address.
    let plain = TestServer::with(|c| c.max_connections_per_ip = 1).await;
    let _first = upgrade(&plain, Some("203.0.113.1")).await.expect("first");
    let forged = upgrade(&plain, Some("203.0.113.9"))
        .await
        .expect_err("a forged header does not help");
    assert!(forged.contains("503"), "{forged}");
}
