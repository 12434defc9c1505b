//! Rooms, direct messages, presence, renames and broadcast across WS and TCP clients.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn rooms_publish_join_leave_across_users_and_transports() {
    let s = TestServer::spawn().await;
    let mut alice = s.ws("alice").await;
    let mut bob = s.tcp("bob").await;
    let mut carol = s.ws("carol").await;

    let ok = alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    assert_eq!(ok["type"], "ok");
    assert_eq!(ok["room"], "lobby");
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    let joined = alice.recv_type("member.joined").await;
    assert_eq!(joined["user"], "bob");
    assert_eq!(joined["room"], "lobby");
    carol
        .request(json!({"type": "join", "room": "other"}))
        .await;

    // Alice (WS) publishes; Bob (TCP) and Alice herself receive it, Carol does not.
    let ok = alice
        .request(json!({"type": "publish", "room": "lobby", "data": {"text": "hi"}}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let seq1 = ok["seq"].as_u64().expect("seq");
    let m = bob.recv_type("message").await;
    assert_eq!(m["room"], "lobby");
    assert_eq!(m["from"], "alice");
    assert_eq!(m["name"], "alice name");
    assert_eq!(m["data"], json!({"text": "hi"}));
    assert_eq!(m["seq"], seq1);
    assert!(m["ts"].as_u64().is_some());
    assert_eq!(alice.recv_type("message").await["seq"], seq1);

    // Bob (TCP) answers; seq grows.
    let ok = bob
        .request(json!({"type": "publish", "room": "lobby", "data": "hello back"}))
        .await;
    let seq2 = ok["seq"].as_u64().expect("seq");
    assert!(seq2 > seq1);
    let m = alice.recv_type("message").await;
    assert_eq!(
        (m["from"].clone(), m["seq"].clone()),
        (json!("bob"), json!(seq2))
    );
    assert_eq!(
        bob.recv_type("message").await["data"],
        "hello back",
        "own echo"
    );

    // echo:false keeps it from the sender's own sessions.
    alice
        .request(json!({"type": "publish", "room": "lobby", "data": 1, "echo": false}))
        .await;
    assert_eq!(bob.recv_type("message").await["data"], 1);
    alice.quiet(Duration::from_millis(150)).await;
    carol.quiet(Duration::from_millis(50)).await;

    // Publishing to a room one has not joined is forbidden.
    let err = carol
        .request(json!({"type": "publish", "room": "lobby", "data": 1}))
        .await;
    assert_eq!(err["code"], "forbidden");

    // Leave: Alice is told, Bob no longer receives.
    let ok = bob.request(json!({"type": "leave", "room": "lobby"})).await;
    assert_eq!(ok["type"], "ok");
    let left = alice.recv_type("member.left").await;
    assert_eq!(left["user"], "bob");
    alice
        .request(json!({"type": "publish", "room": "lobby", "data": 2}))
        .await;
    bob.quiet(Duration::from_millis(150)).await;
    let err = bob.request(json!({"type": "leave", "room": "lobby"})).await;
    assert_eq!(err["code"], "not_found");
}

#[tokio::test]
async fn user_in_many_rooms_and_rooms_claim() {
    let s = TestServer::spawn().await;
    let mut alice = s.ws("alice").await;
    for room in ["a", "b", "c"] {
        alice.request(json!({"type": "join", "room": room})).await;
    }
    let mut c = claims("limited");
    c.rooms = Some(vec!["team-*".into()]);
    let mut limited = s.ws_raw().await;
    limited.login(&sign(&c)).await;
    let err = limited.request(json!({"type": "join", "room": "a"})).await;
    assert_eq!(err["code"], "forbidden");
    let ok = limited
        .request(json!({"type": "join", "room": "team-red"}))
        .await;
    assert_eq!(ok["type"], "ok");
    let err = limited
        .request(json!({"type": "presence", "room": "a"}))
        .await;
    assert_eq!(err["code"], "forbidden");
    for room in ["a", "b", "c"] {
        alice
            .request(json!({"type": "publish", "room": room, "data": room}))
            .await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            alice.recv_type("message").await["room"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
}

#[tokio::test]
async fn room_limit_per_session() {
    let s = TestServer::with(|c| c.max_rooms_per_session = 2).await;
    let mut a = s.ws("alice").await;
    a.request(json!({"type": "join", "room": "r1"})).await;
    a.request(json!({"type": "join", "room": "r2"})).await;
    let err = a.request(json!({"type": "join", "room": "r3"})).await;
    assert_eq!(err["code"], "forbidden");
}

#[tokio::test]
async fn direct_messages_reach_every_device() {
    let s = TestServer::spawn().await;
    let mut alice = s.ws("alice").await;
    let mut bob_ws = s.ws("bob").await;
    let mut bob_tcp = s.tcp("bob").await;
    let ok = alice
        .request(json!({"type": "send", "to": "bob", "data": {"t": "psst"}}))
        .await;
    let seq = ok["seq"].as_u64().expect("seq");
    for bob in [&mut bob_ws, &mut bob_tcp] {
        let d = bob.recv_type("direct").await;
        assert_eq!(d["from"], "alice");
        assert_eq!(d["name"], "alice name");
        assert_eq!(d["data"], json!({"t": "psst"}));
        assert_eq!(d["seq"], seq);
    }
    alice.quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn offline_direct_messages_are_delivered_once_at_next_login() {
    let s = TestServer::spawn().await;
    let mut alice = s.ws("alice").await;
    for i in 0..3 {
        let ok = alice
            .request(json!({"type": "send", "to": "dave", "data": i}))
            .await;
        assert_eq!(ok["type"], "ok", "sending to an offline user is fine: {ok}");
    }
    let mut dave = s.tcp("dave").await;
    for i in 0..3 {
        let d = dave.recv_type("direct").await;
        assert_eq!(d["data"], i);
    }
    dave.quiet(Duration::from_millis(100)).await;
    drop(dave);
    eventually("dave offline", || s.gw.hub.session_count() == 1).await;
    // A later login gets nothing again, only what is new.
    alice
        .request(json!({"type": "send", "to": "dave", "data": "new"}))
        .await;
    let mut dave = s.ws("dave").await;
    assert_eq!(dave.recv_type("direct").await["data"], "new");
    dave.quiet(Duration::from_millis(150)).await;
    // A device that says what it saw gets exactly what came after.
    let mut dave2 = s.ws_raw().await;
    dave2
        .send(json!({"type": "login", "token": token("dave"), "dm_since": 2}))
        .await;
    assert_eq!(dave2.recv().await["type"], "welcome");
    assert_eq!(dave2.recv().await["data"], 2);
    assert_eq!(dave2.recv().await["data"], "new");
    dave2.quiet(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn presence_who_and_rename() {
    let s = TestServer::with(|c| c.who_page = 2).await;
    let mut alice = s.ws("alice").await;
    let mut bob = s.tcp("bob").await;
    let _carol = s.ws("carol").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    let p = alice
        .request(json!({"type": "presence", "room": "lobby"}))
        .await;
    assert_eq!(p["type"], "presence");
    assert_eq!(p["count"], 2);
    assert_eq!(
        p["members"],
        json!([{"user": "alice", "name": "alice name"}, {"user": "bob", "name": "bob name"}])
    );
    let empty = alice
        .request(json!({"type": "presence", "room": "nobody"}))
        .await;
    assert_eq!(empty["count"], 0);

    let who = alice.request(json!({"type": "who"})).await;
    assert_eq!(who["count"], 3);
    assert_eq!(who["users"].as_array().map(Vec::len), Some(2));
    let next = who["next"].as_str().expect("cursor").to_owned();
    let who2 = alice.request(json!({"type": "who", "cursor": next})).await;
    assert_eq!(
        who2["users"],
        json!([{"user": "carol", "name": "carol name"}])
    );
    assert!(who2.get("next").is_none());

    let ok = bob
        .request(json!({"type": "rename", "name": "  Bobby B. "}))
        .await;
    assert_eq!(ok["name"], "Bobby B.");
    let ev = alice.recv_type("member.renamed").await;
    assert_eq!(
        (ev["user"].clone(), ev["name"].clone()),
        (json!("bob"), json!("Bobby B."))
    );
    let p = alice
        .request(json!({"type": "presence", "room": "lobby"}))
        .await;
    assert_eq!(p["members"][1]["name"], "Bobby B.");
    bob.request(json!({"type": "publish", "room": "lobby", "data": 1}))
        .await;
    assert_eq!(alice.recv_type("message").await["name"], "Bobby B.");
    let err = bob.request(json!({"type": "rename", "name": "   "})).await;
    assert_eq!(err["code"], "bad_request");
}

#[tokio::test]
async fn broadcast_needs_permission() {
    let s = TestServer::spawn().await;
    let mut plain = s.ws("plain").await;
    let err = plain.request(json!({"type": "broadcast", "data": 1})).await;
    assert_eq!(err["code"], "forbidden");
    let mut c = claims("admin");
    c.perms = vec!["broadcast".into()];
    let mut admin = s.tcp_raw().await;
    admin.login(&sign(&c)).await;
    let ok = admin
        .request(json!({"type": "broadcast", "data": {"n": "maintenance"}}))
        .await;
    assert_eq!(ok["type"], "ok");
    let b = plain.recv_type("broadcast").await;
    assert_eq!(b["from"], "admin");
    assert_eq!(b["data"], json!({"n": "maintenance"}));
}

#[tokio::test]
async fn resume_replays_missed_room_messages_without_gaps_or_duplicates() {
    let s = TestServer::with(|c| c.history_size = 5).await;
    let mut alice = s.ws("alice").await;
    alice.request(json!({"type": "join", "room": "r"})).await;
    let mut last = 0;
    for i in 0..3 {
        last = alice
            .request(json!({"type": "publish", "room": "r", "data": i, "echo": false}))
            .await["seq"]
            .as_u64()
            .expect("seq");
    }
    let mut bob = s.ws("bob").await;
    let ok = bob
        .request(json!({"type": "join", "room": "r", "since": last - 2}))
        .await;
    assert_eq!(ok["recovered"], true, "{ok}");
    assert_eq!(ok["replayed"], 2);
    // Replayed frames precede the ok; collect them from a fresh join instead.
    let mut carol = s.ws("carol").await;
    carol
        .send(json!({"type": "join", "room": "r", "since": last - 1, "id": "j"}))
        .await;
    let m = carol.recv_type("message").await;
    assert_eq!(m["seq"], last);
    assert_eq!(carol.recv_type("ok").await["id"], "j");
    // Too far back: not recovered.
    let mut dave = s.ws("dave").await;
    for i in 0..10 {
        alice
            .request(json!({"type": "publish", "room": "r", "data": i}))
            .await;
    }
    let ok = dave
        .request(json!({"type": "join", "room": "r", "since": 1}))
        .await;
    assert_eq!(ok["recovered"], false);
}

#[tokio::test]
async fn cursors_ahead_of_the_server_do_not_hide_new_messages() {
    // After a restart the in-memory seqs start over; old cursors must not mute clients.
    let s = TestServer::spawn().await;
    let mut alice = s.ws("alice").await;
    alice.request(json!({"type": "join", "room": "r"})).await;
    let mut bob = s.ws_raw().await;
    bob.send(json!({"type": "login", "token": token("bob"), "dm_since": 500}))
        .await;
    assert_eq!(bob.recv().await["type"], "welcome");
    let ok = bob
        .request(json!({"type": "join", "room": "r", "since": 900}))
        .await;
    assert_eq!(ok["recovered"], false);
    alice
        .request(json!({"type": "publish", "room": "r", "data": "after reset"}))
        .await;
    assert_eq!(bob.recv_type("message").await["data"], "after reset");
    alice
        .request(json!({"type": "send", "to": "bob", "data": "dm"}))
        .await;
    assert_eq!(bob.recv_type("direct").await["data"], "dm");
}

#[tokio::test]
async fn member_events_carry_counts_and_stop_in_big_rooms() {
    let s = TestServer::with(|c| c.member_events_limit = 2).await;
    let mut a = s.ws("a").await;
    a.request(json!({"type": "join", "room": "big"})).await;
    let mut b = s.tcp("b").await;
    b.request(json!({"type": "join", "room": "big"})).await;
    let ev = a.recv_type("member.joined").await;
    assert_eq!(
        (ev["user"].clone(), ev["count"].clone()),
        (json!("b"), json!(2))
    );
    // A third member exceeds the limit: no event, but presence still counts everyone.
    let mut c = s.ws("c").await;
    c.request(json!({"type": "join", "room": "big"})).await;
    a.quiet(Duration::from_millis(150)).await;
    let p = a.request(json!({"type": "presence", "room": "big"})).await;
    assert_eq!(p["count"], 3);
    // Back under the limit, departures are announced again with the new count.
    c.request(json!({"type": "leave", "room": "big"})).await;
    a.quiet(Duration::from_millis(100)).await;
    b.request(json!({"type": "leave", "room": "big"})).await;
    let ev = a.recv_type("member.left").await;
    assert_eq!(
        (ev["user"].clone(), ev["count"].clone()),
        (json!("b"), json!(1))
    );
}

/// A client that closes gets the closing handshake completed (RFC 6455 §5.5.1): the
/// server echoes a close frame instead of dropping the connection (which would read
/// as 1006 in a browser).
#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let s = TestServer::spawn().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.http))
        .await
        .expect("connect");
    let login = json!({"type": "login", "token": token("alice")}).to_string();
    ws.send(Message::text(login)).await.expect("login");
    let welcome = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("welcome");
    assert!(matches!(welcome, Some(Ok(Message::Text(_)))), "{welcome:?}");
    ws.send(Message::Close(Some(CloseFrame {
        code: 1000u16.into(),
        reason: "bye".into(),
    })))
    .await
    .expect("send close");
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("reply in time");
    assert!(
        matches!(reply, Some(Ok(Message::Close(_)))),
        "expected the close echo, got {reply:?}"
    );
}
