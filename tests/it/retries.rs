//! Safe retries: a client message id (`msg_id`) makes a publish, DM or game move
//! stored once however often it is sent, and a stalled Redis answers every queued
//! request within the timeout instead of one timeout per request.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn retried_publishes_are_stored_once(server: &TestServer, other: &TestServer) {
    let mut alice = server.ws("alice").await;
    let mut bob = other.tcp("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    let publish = json!({"type": "publish", "room": "lobby", "data": "hi", "msg_id": "m-1"});
    let first = alice.request(publish.clone()).await;
    assert_eq!((&first["seq"], first.get("duplicate")), (&json!(1), None));
    let again = alice.request(publish).await;
    assert_eq!(
        (&again["seq"], &again["duplicate"]),
        (&json!(1), &json!(true))
    );
    // Another user may use the same id.
    let bobs = bob
        .request(json!({"type": "publish", "room": "lobby", "data": "yo", "msg_id": "m-1"}))
        .await;
    assert_eq!((&bobs["seq"], bobs.get("duplicate")), (&json!(2), None));
    let seen: Vec<Value> = [
        bob.recv_type("message").await,
        bob.recv_type("message").await,
    ]
    .iter()
    .map(|m| m["data"].clone())
    .collect();
    assert_eq!(
        seen,
        [json!("hi"), json!("yo")],
        "the retry was not delivered"
    );

    let dm = json!({"type": "send", "to": "bob", "data": "psst", "msg_id": "d-1"});
    assert_eq!(alice.request(dm.clone()).await["seq"], 1);
    assert_eq!(alice.request(dm).await["duplicate"], true);
    assert_eq!(bob.recv_type("direct").await["data"], "psst");
    bob.quiet(Duration::from_millis(200)).await;

    // The HTTP API takes the same id.
    let body = r#"{"data":"from the api","msg_id":"api-1"}"#;
    let (status, first) = http(
        server.http,
        "POST",
        "/api/v1/rooms/lobby/publish",
        Some(API_KEY),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (_, again) = http(
        other.http,
        "POST",
        "/api/v1/rooms/lobby/publish",
        Some(API_KEY),
        Some(body),
    )
    .await;
    let (first, again): (Value, Value) = (
        serde_json::from_str(&first).expect("json"),
        serde_json::from_str(&again).expect("json"),
    );
    assert_eq!(
        (&again["seq"], &again["duplicate"]),
        (&first["seq"], &json!(true))
    );

    // An id that is not an id is refused.
    let bad = alice
        .request(json!({"type": "publish", "room": "lobby", "data": 1, "msg_id": "a b"}))
        .await;
    assert_eq!(bad["code"], "bad_request", "{bad}");
}

#[tokio::test]
async fn retried_publishes_are_stored_once_in_memory() {
    let server = TestServer::spawn().await;
    retried_publishes_are_stored_once(&server, &server).await;
}

#[tokio::test]
async fn retried_publishes_are_stored_once_across_replicas() {
    let (_redis, r1, r2) = pair().await;
    retried_publishes_are_stored_once(&r1, &r2).await;
}

#[tokio::test]
async fn a_stalled_redis_answers_queued_requests_within_the_timeout_and_retries_store_once() {
    // on_redis sets a 500 ms Redis timeout.
    let (redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.ws("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;

    redis.pause();
    let started = Instant::now();
    for i in 0..10 {
        alice
            .send(json!({"id": i, "type": "publish", "room": "lobby", "data": i, "msg_id": format!("m-{i}")}))
            .await;
    }
    let mut answers = Vec::new();
    while answers.len() < 10 {
        let frame = alice.recv().await;
        if frame.get("id").is_some() {
            answers.push(frame);
        }
    }
    let took = started.elapsed();
    redis.resume();
    assert!(
        answers.iter().all(|a| a["code"] == "unavailable"),
        "{answers:?}"
    );
    // Ten requests queued on one connection: one timeout in all, not one each.
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?}"
    );

    // The client retries everything with the same ids; each message exists once,
    // whether or not the stalled attempt reached Redis.
    until("redis answers again", WAIT, async || {
        let ok = alice
            .request(json!({"type": "presence", "room": "lobby"}))
            .await;
        if ok["type"] == "presence" {
            Ok(())
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(ok.to_string())
        }
    })
    .await;
    for i in 0..10 {
        let ok = alice
            .request(
                json!({"type": "publish", "room": "lobby", "data": i, "msg_id": format!("m-{i}")}),
            )
            .await;
        assert_eq!(ok["type"], "ok", "{ok}");
    }
    let mut seen = Vec::new();
    while let Some(Seen::Frame(m)) = bob.next_within(Duration::from_millis(500)).await {
        if m["type"] == "message" {
            seen.push(m["data"].as_u64().expect("data"));
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..10).collect::<Vec<u64>>(),
        "each message exactly once"
    );
}
