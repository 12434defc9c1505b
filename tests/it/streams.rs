//! Logged streams (rooms, games, direct messages) across log resets: every log has an
//! epoch, so a log that starts again (Redis restarted empty, an in-memory replica
//! restarted) is announced with `stream.reset` instead of hiding new messages behind
//! an old cursor.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Publishes until Redis takes it again (after a restart); returns the `ok`.
async fn publish_until_ok(client: &mut Client, room: &str, data: Value) -> Value {
    until("publish to be accepted", WAIT, async || {
        let ok = client
            .request(json!({"type": "publish", "room": room, "data": data}))
            .await;
        if ok["type"] == "ok" {
            Ok(ok)
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(ok.to_string())
        }
    })
    .await
}

#[tokio::test]
async fn redis_restarted_empty_resets_streams_for_connected_clients() {
    let (mut redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.tcp("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    let joined = bob.request(json!({"type": "join", "room": "lobby"})).await;
    let old_epoch = joined["epoch"]
        .as_str()
        .expect("join ok has the epoch")
        .to_owned();
    for i in 1..=5 {
        alice
            .request(json!({"type": "publish", "room": "lobby", "data": i}))
            .await;
    }
    for _ in 0..2 {
        alice
            .request(json!({"type": "send", "to": "bob", "data": "before"}))
            .await;
    }
    for i in 1..=5u64 {
        let m = bob.recv_type("message").await;
        assert_eq!((m["seq"].as_u64(), m["epoch"].as_str()), (Some(i), None));
    }
    for i in 1..=2u64 {
        assert_eq!(bob.recv_type("direct").await["seq"], i);
    }

    redis.restart().await;
    wait_ready(&r1).await;
    wait_ready(&r2).await;
    let first = publish_until_ok(&mut alice, "lobby", json!("after")).await;
    assert_eq!(first["seq"], 1, "the new log starts at 1");
    for i in 2..=3 {
        alice
            .request(json!({"type": "publish", "room": "lobby", "data": i}))
            .await;
    }
    alice
        .request(json!({"type": "send", "to": "bob", "data": "after"}))
        .await;

    // Bob is told, then gets every new message although its seq is below his cursor.
    // (Order holds within a stream; the room and the DMs may interleave.)
    let (mut room, mut dms) = (Vec::new(), Vec::new());
    while room.len() < 4 || dms.len() < 2 {
        let frame = bob.recv().await;
        match (frame["type"].as_str(), frame["stream"].as_str()) {
            (Some("stream.reset"), Some("room")) | (Some("message"), _) => room.push(frame),
            (Some("stream.reset"), Some("dm")) | (Some("direct"), _) => dms.push(frame),
            _ => {}
        }
    }
    assert_eq!(
        (&room[0]["type"], &room[0]["room"]),
        (&json!("stream.reset"), &json!("lobby"))
    );
    let new_epoch = room[0]["epoch"].as_str().expect("epoch").to_owned();
    assert_ne!(new_epoch, old_epoch);
    let got: Vec<(Value, Value)> = room[1..]
        .iter()
        .map(|m| (m["seq"].clone(), m["data"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (json!(1), json!("after")),
            (json!(2), json!(2)),
            (json!(3), json!(3))
        ]
    );
    assert_eq!(dms[0]["type"], "stream.reset");
    assert_eq!(
        (&dms[1]["seq"], &dms[1]["data"]),
        (&json!(1), &json!("after"))
    );
    bob.quiet(Duration::from_millis(300)).await;

    // Resuming with the new epoch is a plain resume; with the old one, a reset.
    let ok = bob
        .request(json!({"type": "join", "room": "lobby", "since": 2, "epoch": new_epoch}))
        .await;
    assert_eq!(
        (&ok["recovered"], &ok["replayed"]),
        (&json!(true), &json!(1))
    );
    let mut carol = r1.ws("carol").await;
    let ok = carol
        .request(json!({"type": "join", "room": "lobby", "since": 5, "epoch": old_epoch}))
        .await;
    assert_eq!(
        (&ok["recovered"], &ok["replayed"]),
        (&json!(false), &json!(3)),
        "{ok}"
    );
    assert_eq!(ok["epoch"], json!(new_epoch));
}

#[tokio::test]
async fn presence_is_back_within_a_second_of_redis_restarting_empty() {
    let (mut redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    let mut bob = r2.ws("bob").await;
    redis.restart().await;
    let started = std::time::Instant::now();
    until("alice back in presence", WAIT, async || {
        let who = bob
            .request(json!({"type": "presence", "room": "lobby"}))
            .await;
        if who["count"] == 1 {
            Ok(())
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(who.to_string())
        }
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "presence took {took:?}");
}

#[tokio::test]
async fn a_restarted_in_memory_gateway_is_a_new_epoch() {
    // First life: three messages; the client keeps its cursor.
    let mut first = TestServer::spawn().await;
    let mut alice = first.ws_raw().await;
    let welcome = alice.login(&token("alice")).await;
    let dm_epoch = welcome["dm_epoch"].clone();
    let ok = alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    let epoch = ok["epoch"].as_str().expect("epoch").to_owned();
    for i in 1..=3 {
        alice
            .request(json!({"type": "publish", "room": "lobby", "data": i}))
            .await;
    }
    first.shutdown().await;

    // Second life: two new messages while the client was away.
    let second = TestServer::spawn().await;
    let mut bob = second.ws("bob").await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    for i in ["x", "y"] {
        bob.request(json!({"type": "publish", "room": "lobby", "data": i}))
            .await;
    }
    bob.request(json!({"type": "send", "to": "alice", "data": "dm"}))
        .await;

    // Resuming with the old cursor (seq 3, above the new head) is not silence.
    let mut alice = second.ws_raw().await;
    alice
        .send(
            json!({"type": "login", "token": token("alice"), "dm_since": 4, "dm_epoch": dm_epoch}),
        )
        .await;
    let welcome = alice.recv_type("welcome").await;
    assert!(welcome["dm_epoch"].is_string(), "{welcome}");
    let reset = alice.recv().await;
    assert_eq!(reset["type"], "stream.reset", "{reset}");
    assert_eq!(reset["stream"], "dm");
    assert_eq!(alice.recv_type("direct").await["seq"], 1);
    alice
        .send(json!({"id": "j", "type": "join", "room": "lobby", "since": 3, "epoch": epoch}))
        .await;
    let reset = alice.recv().await;
    assert_eq!(
        (&reset["type"], &reset["room"]),
        (&json!("stream.reset"), &json!("lobby"))
    );
    assert_ne!(reset["epoch"], json!(epoch));
    assert_eq!(alice.recv().await["data"], "x");
    assert_eq!(alice.recv().await["data"], "y");
    let ok = alice.recv().await;
    assert_eq!(
        (&ok["type"], &ok["recovered"], &ok["replayed"]),
        (&json!("ok"), &json!(false), &json!(2))
    );
}
