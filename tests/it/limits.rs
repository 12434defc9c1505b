//! Bad input and abuse: malformed frames, oversize frames and lines, rate limits,
//! idle clients and slow consumers.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn malformed_frames_get_bad_request_and_connection_stays() {
    let s = TestServer::spawn().await;
    for mut c in [s.ws("alice").await, s.tcp("bob").await] {
        c.send_text("{oops").await;
        assert_eq!(c.recv().await["code"], "bad_request");
        c.send_text(r#"{"type":"join","room":42,"id":"x"}"#).await;
        let err = c.recv().await;
        assert_eq!(
            (err["code"].clone(), err["id"].clone()),
            (json!("bad_request"), json!("x"))
        );
        c.send_text(r#"{"type":"teleport","id":9}"#).await;
        let err = c.recv().await;
        assert_eq!(err["code"], "bad_request");
        assert_eq!(err["id"], 9);
        c.send_text(r#"{"type":"join","room":"bad room"}"#).await;
        assert_eq!(c.recv().await["code"], "bad_request");
        c.send_text(r#"[1,2,3]"#).await;
        assert_eq!(c.recv().await["code"], "bad_request");
        c.send(json!({"type": "login", "token": "x"})).await;
        assert_eq!(c.recv().await["code"], "bad_request");
        assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong");
    }
}

/// The read buffer is small (it is kept for each connection's life); frames many times
/// its size still arrive whole, over both transports, and the next one right after.
#[tokio::test]
async fn frames_larger_than_the_read_buffer_arrive_whole() {
    let s = TestServer::with(|c| c.read_buffer_bytes = 64).await;
    let mut ws = s.ws("alice").await;
    let mut tcp = s.tcp("bob").await;
    for c in [&mut ws, &mut tcp] {
        c.request(json!({"type": "join", "room": "big"})).await;
    }
    let pad = "p".repeat(40 * 1024);
    for (from, name) in [(&mut ws, "ws"), (&mut tcp, "tcp")] {
        let ok = from
            .request(json!({"type": "publish", "room": "big", "data": {"from": name, "pad": pad}}))
            .await;
        assert_eq!(ok["type"], "ok", "{name}: {ok}");
        assert_eq!(from.request(json!({"type": "ping"})).await["type"], "pong");
    }
    for c in [&mut ws, &mut tcp] {
        for name in ["ws", "tcp"] {
            let m = c.recv_type("message").await;
            assert_eq!(m["data"]["from"], name);
            assert_eq!(m["data"]["pad"].as_str().map(str::len), Some(pad.len()));
        }
    }
}

#[tokio::test]
async fn oversize_ws_frame_gets_too_large_and_connection_stays() {
    let s = TestServer::with(|c| c.max_frame_bytes = 1024).await;
    let mut c = s.ws("alice").await;
    let big = json!({"type": "ping", "pad": "x".repeat(2000)}).to_string();
    c.send_text(&big).await;
    assert_eq!(c.recv().await["code"], "too_large");
    assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong");
    // Far beyond the limit the WebSocket cannot continue: it is closed (1009, or a
    // reset when the unread rest of the frame makes the kernel abort the socket).
    c.send_text(&"y".repeat(10_000)).await;
    assert!(matches!(c.closed().await, Some(1009) | None));
}

#[tokio::test]
async fn oversize_tcp_line_is_skipped_without_buffering() {
    let s = TestServer::with(|c| c.max_frame_bytes = 1024).await;
    let mut c = s.tcp("alice").await;
    // 1 MiB line, sent in pieces: refused once, the rest of the line discarded.
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..16 {
        c.send_bytes(&chunk).await;
    }
    c.send_bytes(b"\n").await;
    assert_eq!(c.recv().await["code"], "too_large");
    assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong");
    // Invalid UTF-8 on a line of its own.
    c.send_bytes(b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}\n")
        .await;
    assert_eq!(c.recv().await["code"], "bad_request");
    // Blank lines are ignored, a half line at EOF too.
    c.send_bytes(b"\n\r\n").await;
    assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong");
}

#[tokio::test]
async fn rate_limit_refuses_then_closes_sustained_abuse() {
    let s = TestServer::with(|c| {
        c.rate_limit = 5.0;
        c.rate_burst = 10.0;
        c.rate_abuse_limit = 20.0;
    })
    .await;
    let mut c = s.ws("alice").await;
    for _ in 0..15 {
        c.send(json!({"type": "ping"})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..15 {
        match c.recv().await["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        (10..=11).contains(&pongs),
        "burst of 10 allowed, got {pongs}"
    );
    assert_eq!(pongs + limited, 15);
    // Keep flooding: the connection is closed with 4008.
    for _ in 0..40 {
        c.send(json!({"type": "ping"})).await;
    }
    assert_eq!(c.closed().await, Some(4008));
    assert!(s.gw.metrics.rate_limited.get() >= 20);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let s = TestServer::with(|c| {
        c.heartbeat = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(400);
    })
    .await;
    // A TCP client that stays silent is closed; the server pinged it first.
    let mut tcp = s.tcp("quiet").await;
    let mut pinged = false;
    let code = loop {
        match tcp.next_within(WAIT).await {
            Some(Seen::Frame(v)) if v["type"] == "ping" => pinged = true,
            Some(Seen::Frame(v)) => panic!("unexpected {v}"),
            Some(Seen::Closed(code)) => break code,
            None => panic!("not closed"),
        }
    };
    let _ = pinged;
    assert_eq!(code, Some(4010));
    // A client that answers pings stays.
    let mut busy = s.tcp("busy").await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        busy.send(json!({"type": "pong"})).await;
    }
    assert_eq!(busy.request(json!({"type": "ping"})).await["type"], "pong");
}

#[tokio::test]
async fn slow_consumer_is_closed_while_fast_one_gets_everything() {
    let s = TestServer::with(|c| {
        c.outbound_queue = 16;
        c.write_timeout = Duration::from_millis(500);
        c.history_size = 0;
    })
    .await;
    // The slow client logs in and joins over raw TCP, then never reads again.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut slow = socket.connect(s.tcp).await.expect("connect");
    let login = json!({"type": "login", "token": token("slow")}).to_string() + "\n";
    slow.write_all(login.as_bytes()).await.expect("write");
    slow.write_all(b"{\"type\":\"join\",\"room\":\"feed\"}\n")
        .await
        .expect("write");
    let mut fast = s.ws("fast").await;
    fast.request(json!({"type": "join", "room": "feed"})).await;
    until("both in the room", WAIT, async || {
        let p = fast
            .request(json!({"type": "presence", "room": "feed"}))
            .await;
        if p["count"] == 2 {
            Ok(())
        } else {
            Err(p.to_string())
        }
    })
    .await;

    let pad = "z".repeat(32 * 1024);
    let total = 600;
    let publisher = {
        let addr = s.http;
        let body = json!({"data": {"pad": pad}}).to_string();
        tokio::spawn(async move {
            for _ in 0..total {
                let (status, _) = http(
                    addr,
                    "POST",
                    "/api/v1/rooms/feed/publish",
                    Some(API_KEY),
                    Some(&body),
                )
                .await;
                assert_eq!(status, 200);
            }
        })
    };
    let mut last = 0;
    for _ in 0..total {
        let m = fast.recv_type("message").await;
        let seq = m["seq"].as_u64().expect("seq");
        assert!(seq > last, "in order");
        last = seq;
    }
    publisher.await.expect("publisher");
    assert_eq!(s.gw.metrics.slow_consumer_closes.get(), 1);
    eventually("slow session gone", || s.gw.hub.session_count() == 1).await;
    drop(slow);
}
