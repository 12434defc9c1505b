//! HTTP server API, probes, dev token and metrics.

use crate::harness::*;
use serde_json::{Value, json};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON body expected ({e}): {body}"))
}

#[tokio::test]
async fn api_requires_a_key() {
    let s = TestServer::spawn().await;
    let (status, body) = http(s.http, "GET", "/api/v1/online", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(parse(&body)["code"], "unauthorized");
    let (status, _) = http(s.http, "GET", "/api/v1/online", Some("wrong"), None).await;
    assert_eq!(status, 401);
    let (status, body) = http(s.http, "GET", "/api/v1/online", Some(API_KEY), None).await;
    assert_eq!(status, 200, "{body}");

    let open = TestServer::with(|c| c.api_key = None).await;
    let (status, body) = http(open.http, "GET", "/api/v1/online", Some(API_KEY), None).await;
    assert_eq!(status, 503);
    assert_eq!(parse(&body)["code"], "unavailable");
}

#[tokio::test]
async fn api_pushes_reach_clients() {
    let s = TestServer::spawn().await;
    let mut alice = s.ws("alice").await;
    let mut bob = s.tcp("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;

    let (status, body) = http(
        s.http,
        "POST",
        "/api/v1/rooms/lobby/publish",
        Some(API_KEY),
        Some(r#"{"data":{"score":3}}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seq = parse(&body)["seq"].as_u64().expect("seq");
    let m = alice.recv_type("message").await;
    assert_eq!(
        (m["from"].clone(), m["seq"].clone()),
        (json!("server"), json!(seq))
    );
    assert_eq!(m["data"], json!({"score": 3}));

    let (status, _) = http(
        s.http,
        "POST",
        "/api/v1/users/bob/send",
        Some(API_KEY),
        Some(r#"{"data":"hi bob","from":"billing","name":"Billing"}"#),
    )
    .await;
    assert_eq!(status, 200);
    let d = bob.recv_type("direct").await;
    assert_eq!(
        (d["from"].clone(), d["name"].clone()),
        (json!("billing"), json!("Billing"))
    );

    let (status, _) = http(
        s.http,
        "POST",
        "/api/v1/broadcast",
        Some(API_KEY),
        Some(r#"{"data":1}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv_type("broadcast").await["data"], 1);
    assert_eq!(bob.recv_type("broadcast").await["data"], 1);

    let (status, body) = http(
        s.http,
        "GET",
        "/api/v1/rooms/lobby/presence",
        Some(API_KEY),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let p = parse(&body);
    assert_eq!(p["count"], 1);
    assert_eq!(p["members"][0]["user"], "alice");

    let (_, body) = http(s.http, "GET", "/api/v1/online?limit=1", Some(API_KEY), None).await;
    let o = parse(&body);
    assert_eq!(o["count"], 2);
    assert_eq!(o["users"].as_array().map(Vec::len), Some(1));
    assert_eq!(o["next"], "alice");

    let (status, _) = http(
        s.http,
        "POST",
        "/api/v1/users/bob/disconnect",
        Some(API_KEY),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bob.closed().await, Some(4004));
}

#[tokio::test]
async fn api_bad_input_gets_stable_codes() {
    let s = TestServer::spawn().await;
    let cases = [
        (
            "POST",
            "/api/v1/rooms/lobby/publish",
            Some("{oops"),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/rooms/lobby/publish",
            Some(r#"{"nodata":1}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/rooms/bad%20room/publish",
            Some(r#"{"data":1}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/users/bob/send",
            Some(r#"{"data":1,"from":"a b"}"#),
            400,
            "bad_request",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, text) = http(s.http, method, path, Some(API_KEY), body).await;
        assert_eq!(got, status, "{path}: {text}");
        assert_eq!(parse(&text)["code"], code, "{path}");
    }
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(100 * 1024));
    let (got, text) = http(
        s.http,
        "POST",
        "/api/v1/broadcast",
        Some(API_KEY),
        Some(&big),
    )
    .await;
    assert_eq!(got, 413, "{text}");
    assert_eq!(parse(&text)["code"], "too_large");
}

#[tokio::test]
async fn probes_dev_token_and_page() {
    let s = TestServer::spawn().await;
    assert_eq!(http(s.http, "GET", "/healthz", None, None).await.0, 200);
    assert_eq!(http(s.http, "GET", "/readyz", None, None).await.0, 200);
    let (status, page) = http(s.http, "GET", "/", None, None).await;
    assert_eq!(status, 200);
    assert!(page.contains("Switchboard"));
    // The app's files, the JS client among them; nothing else.
    let (status, js) = http(s.http, "GET", "/app/switchboard.js", None, None).await;
    assert_eq!(status, 200);
    assert!(js.contains("SwitchboardClient"));
    for path in ["/app/Cargo.toml", "/app/..%2FCargo.toml", "/app/"] {
        assert_eq!(http(s.http, "GET", path, None, None).await.0, 404, "{path}");
    }
    // A secret is configured: no dev tokens.
    assert_eq!(
        http(s.http, "GET", "/dev/token?user=a", None, None).await.0,
        404
    );

    let dev = TestServer::with(|c| {
        c.jwt_secret = None;
        c.dev = true;
    })
    .await;
    let (status, token) = http(
        dev.http,
        "GET",
        "/dev/token?user=alice&name=Alice",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let mut c = dev.ws_raw().await;
    let welcome = c.login(token.trim()).await;
    assert_eq!(
        (welcome["user"].clone(), welcome["name"].clone()),
        (json!("alice"), json!("Alice"))
    );

    // Dev mode with a shared secret: a token minted by one replica works on another.
    let dev_shared = TestServer::with(|c| c.dev = true).await;
    let (status, token) = http(dev_shared.http, "GET", "/dev/token?user=bob", None, None).await;
    assert_eq!(status, 200);
    let mut c = s.ws_raw().await;
    assert_eq!(c.login(token.trim()).await["user"], "bob");
}

#[tokio::test]
async fn websocket_origin_is_checked() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let s = TestServer::spawn().await;
    let mut req = format!("ws://{}/ws", s.http)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().expect("header"));
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("403"), "{err}");
    let mut req = format!("ws://{}/ws", s.http)
        .into_client_request()
        .expect("request");
    let same = format!("http://{}", s.http);
    req.headers_mut()
        .insert("Origin", same.parse().expect("header"));
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test]
async fn metrics_expose_the_named_series() {
    let s = TestServer::spawn().await;
    let mut a = s.ws("alice").await;
    let mut b = s.tcp("bob").await;
    a.request(json!({"type": "join", "room": "lobby"})).await;
    b.request(json!({"type": "join", "room": "lobby"})).await;
    a.request(json!({"type": "publish", "room": "lobby", "data": 1}))
        .await;
    b.recv_type("message").await;
    a.send_text("{bad").await;
    a.recv_type("error").await;
    let mut bad = s.ws_raw().await;
    bad.send(json!({"type": "login", "token": "nope"})).await;
    bad.closed().await;
    let (status, text) = http(s.http, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    for series in [
        "switchboard_connections{transport=\"ws\"}",
        "switchboard_connections{transport=\"tcp\"} 1",
        "switchboard_logins_total{result=\"ok\"} 2",
        "switchboard_logins_total{result=\"invalid\"} 1",
        "switchboard_frames_in_total{type=\"publish\"} 1",
        "switchboard_frames_out_total{type=\"message\"} 2",
        "switchboard_deliveries_total",
        "switchboard_fanout_seconds_bucket",
        "switchboard_slow_consumer_closes_total 0",
        "switchboard_teardowns_waiting 0",
        "switchboard_rate_limited_frames_total 0",
        "switchboard_outbound_queued_frames",
        "switchboard_outbound_queue_depth_bucket",
        "switchboard_errors_total{code=\"bad_request\"} 1",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    // jemalloc's counters, when the gateway is built with it (the default).
    assert_eq!(
        text.contains("switchboard_allocator_bytes{kind=\"allocated\"}"),
        cfg!(feature = "jemalloc"),
        "{text}"
    );
    assert!(!text.contains("alice"), "no user ids in labels");
}

/// `curl -d '{"data":…}'` sends `application/x-www-form-urlencoded`: the body is JSON
/// all the same, so the README's examples work as written.
#[tokio::test]
async fn json_bodies_are_accepted_whatever_the_content_type() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::spawn().await;
    let mut alice = s.ws("alice").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        None,
    ] {
        let body = r#"{"data":{"score":3}}"#;
        let header = content_type
            .map(|t| format!("Content-Type: {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST /api/v1/rooms/lobby/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(s.http)
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        assert!(raw.starts_with("HTTP/1.1 200"), "{content_type:?}: {raw}");
        let message = alice.recv_type("message").await;
        assert_eq!(message["data"]["score"], 3);
    }
    // Not JSON at all is still a clear 400.
    let (status, body) = http(
        s.http,
        "POST",
        "/api/v1/rooms/lobby/publish",
        Some(API_KEY),
        Some("score=3"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("bad_request"), "{body}");
}
