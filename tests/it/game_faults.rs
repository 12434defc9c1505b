//! Games through replica faults: a seat held on a replica that was killed is taken back
//! at once elsewhere, and an abandoned game is closed by whichever replica's sweep gets
//! there (the grace period no longer lives on the replica that saw the player drop).

use crate::harness::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard::client;

async fn on(addr: &str, user: &str) -> client::Client {
    let mut c = client::Client::connect(&format!("ws://{addr}/ws"))
        .await
        .expect("connect");
    c.login(&token(user)).await.expect("welcome");
    c
}

fn value(frame: &client::Frame) -> Value {
    frame.value().expect("json")
}

/// A friend game between alice (on the victim process) and bob (on the survivor).
async fn game_across(victim: &str, survivor: &TestServer) -> (client::Client, Client, String) {
    let mut alice = on(victim, "alice").await;
    let created = alice
        .request(&json!({"type": "game.create"}))
        .await
        .expect("created");
    let room = value(&created)["room"].as_str().expect("room").to_owned();
    let mut bob = survivor.ws("bob").await;
    let ok = bob
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(ok["started"], true, "{ok}");
    (alice, bob, room)
}

#[tokio::test]
async fn a_player_whose_replica_was_killed_takes_the_seat_back_at_once() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let survivor = TestServer::with(on_redis(&redis, &prefix)).await;
    wait_ready(&survivor).await;
    let mut victim = gateway_process(&redis, &prefix, &[]);
    let (_alice, mut bob, room) = game_across(&victim.addr, &survivor).await;

    victim.child.kill().expect("kill -9");
    let _ = victim.child.wait();
    // Alice comes back through the survivor: her seat is hers, not a conflict until
    // the game expires.
    let mut alice = survivor.ws("alice").await;
    let ok = alice
        .request(json!({"type": "game.join", "room": room, "since": 0}))
        .await;
    assert_eq!(
        (&ok["type"], &ok["role"]),
        (&json!("ok"), &json!("player")),
        "{ok}"
    );
    // Joining twice from one session is still refused.
    let again = alice
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(again["code"], "conflict", "{again}");
    alice
        .request(json!({"type": "game.send", "room": room, "to": "opponent", "data": "e4"}))
        .await;
    assert_eq!(bob.recv_type("game.message").await["data"], "e4");
}

#[tokio::test]
async fn a_game_abandoned_on_a_killed_replica_is_closed_by_another() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let survivor = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        c.presence_ttl = Duration::from_secs(3);
        c.game_reconnect_grace = Duration::from_secs(1);
    })
    .await;
    wait_ready(&survivor).await;
    let mut victim = gateway_process(
        &redis,
        &prefix,
        &[
            ("SWITCHBOARD_PRESENCE_TTL", "3s"),
            ("SWITCHBOARD_GAME_RECONNECT_GRACE", "1s"),
        ],
    );
    let (_alice, mut bob, room) = game_across(&victim.addr, &survivor).await;
    victim.child.kill().expect("kill -9");
    let _ = victim.child.wait();
    let killed = Instant::now();
    // Nobody marked alice away; her seat's lease lapses (presence TTL), then the grace.
    let closed = loop {
        match bob.next_within(Duration::from_secs(8)).await {
            Some(Seen::Frame(f)) if f["type"] == "game.closed" => break f,
            Some(Seen::Frame(_)) => continue,
            other => panic!("no game.closed: {other:?}"),
        }
    };
    assert_eq!(
        (&closed["room"], &closed["reason"]),
        (&json!(room), &json!("abandoned"))
    );
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(7), "closed after {took:?}");
}

#[tokio::test]
async fn a_drained_replicas_grace_period_is_kept_by_the_others() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let grace = |c: &mut switchboard::config::Config| {
        c.game_reconnect_grace = Duration::from_secs(1);
    };
    let survivor = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        grace(c);
    })
    .await;
    let mut leaving = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        grace(c);
    })
    .await;
    wait_ready(&survivor).await;
    wait_ready(&leaving).await;
    let mut alice = leaving.ws("alice").await;
    let created = alice.request(json!({"type": "game.create"})).await;
    let room = created["room"].as_str().expect("room").to_owned();
    let mut bob = survivor.ws("bob").await;
    bob.request(json!({"type": "game.join", "room": room}))
        .await;
    // The replica drains and is gone; alice never comes back.
    leaving.shutdown().await;
    let closed = bob.recv_type("game.closed").await;
    assert_eq!(closed["reason"], "abandoned", "{closed}");
}

#[tokio::test]
async fn a_closed_game_leaves_no_keys_behind_in_redis() {
    let (redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let created = alice.request(json!({"type": "game.create"})).await;
    let room = created["room"].as_str().expect("room").to_owned();
    let mut bob = r2.ws("bob").await;
    bob.request(json!({"type": "game.join", "room": room}))
        .await;
    alice
        .request(json!({"type": "game.send", "room": room, "to": "all", "data": "e4"}))
        .await;
    let keys = || {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "--scan", "--pattern"])
            .arg(format!("*{{g:{room}}}*"))
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(
        keys().contains(":log"),
        "the game logs its moves: {}",
        keys()
    );
    alice
        .request(json!({"type": "game.close", "room": room}))
        .await;
    assert_eq!(bob.recv_type("game.closed").await["reason"], "closed");
    // Its state, watchers, position and log went with it (they would stay for
    // history_ttl, 24 h, otherwise).
    assert_eq!(keys(), "", "left behind");
}
