//! Room churn on the in-memory backend: histories are bounded in bytes as a whole (the
//! least recently used logs nobody follows go first, inboxes last), and joining fresh
//! rooms is rate limited per session.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

/// The value of an unlabelled metric on `/metrics`.
async fn metric(s: &TestServer, name: &str) -> f64 {
    let (_, text) = http(s.http, "GET", "/metrics", None, None).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test]
async fn churning_fresh_rooms_keeps_history_within_its_byte_bound() {
    const BOUND: usize = 256 * 1024;
    let s = TestServer::with(|c| {
        c.memory_history_bytes = BOUND;
        c.max_rooms_per_session = 1_000;
        c.join_rate = 1_000.0;
        c.rate_limit = 1_000.0;
        c.rate_burst = 1_000.0;
    })
    .await;
    // A followed room with history, and an inbox for someone offline.
    let mut keeper = s.ws("keeper").await;
    keeper
        .request(json!({"type": "join", "room": "keep"}))
        .await;
    for i in 0..5 {
        keeper
            .request(json!({"type": "publish", "room": "keep", "data": i}))
            .await;
    }
    keeper
        .request(json!({"type": "send", "to": "away", "data": "read me later"}))
        .await;

    let mut churner = s.tcp("churner").await;
    let pad = "x".repeat(8 * 1024);
    for i in 0..200 {
        let room = format!("fresh-{i}");
        churner.request(json!({"type": "join", "room": room})).await;
        churner
            .request(json!({"type": "publish", "room": room, "data": pad}))
            .await;
        churner
            .request(json!({"type": "leave", "room": room}))
            .await;
    }
    // 200 × 8 KiB would be 1.6 MiB; the bound holds (one message of slack).
    let held = metric(&s, "switchboard_memory_log_bytes").await;
    assert!(held <= (BOUND + 16 * 1024) as f64, "{held} bytes held");
    assert!(metric(&s, "switchboard_memory_logs_evicted_total").await > 0.0);

    // What is followed or unread was not what went.
    let ok = keeper
        .request(json!({"type": "join", "room": "keep", "since": 0}))
        .await;
    assert_eq!(
        (&ok["recovered"], &ok["replayed"]),
        (&json!(true), &json!(5)),
        "{ok}"
    );
    let mut away = s.ws("away").await;
    assert_eq!(away.recv_type("direct").await["data"], "read me later");
    // A dropped room starts again under a new epoch: no silent gap for a resume.
    let old = churner
        .request(json!({"type": "join", "room": "fresh-0"}))
        .await;
    assert_eq!(old["type"], "ok", "{old}");
}

#[tokio::test]
async fn joining_fresh_rooms_is_rate_limited_after_a_burst() {
    let s = TestServer::with(|c| {
        c.max_rooms_per_session = 3;
        c.join_rate = 2.0;
    })
    .await;
    let mut c = s.ws("alice").await;
    for room in ["a", "b", "c"] {
        c.request(json!({"type": "join", "room": room})).await;
        c.request(json!({"type": "leave", "room": room})).await;
    }
    let refused = c.request(json!({"type": "join", "room": "d"})).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    // Re-joining a room the session is in costs nothing; the bucket refills.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ok = c.request(json!({"type": "join", "room": "d"})).await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let again = c.request(json!({"type": "join", "room": "d"})).await;
    assert_eq!(again["type"], "ok", "{again}");
}
