//! Game rooms and ranked play, each scenario on one memory node and on two replicas
//! sharing Redis.

use crate::harness::*;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use switchboard::config::Config;

/// Runs `scenario(first, second)` on one memory node (both the same) and on two Redis
/// replicas.
macro_rules! on_both_backends {
    ($tweak:expr, $scenario:ident) => {{
        let tweak = $tweak;
        let memory = TestServer::with(tweak).await;
        $scenario(&memory, &memory).await;
        let redis = TestRedis::start().await;
        let prefix = unique_prefix();
        let a = TestServer::with(|c| {
            on_redis(&redis, &prefix)(c);
            tweak(c);
        })
        .await;
        let b = TestServer::with(|c| {
            on_redis(&redis, &prefix)(c);
            tweak(c);
        })
        .await;
        $scenario(&a, &b).await;
    }};
}

fn no_tweak(_: &mut Config) {}

fn rated(user: &str, rating: i64) -> String {
    let mut c = claims(user);
    c.rating = Some(rating);
    sign(&c)
}

async fn created(c: &mut Client) -> String {
    let created = c.request(json!({"type": "game.create"})).await;
    assert_eq!(created["type"], "game.created", "{created}");
    assert!(
        created["epoch"].is_string(),
        "the creator can resume: {created}"
    );
    created["room"].as_str().expect("room").to_owned()
}

async fn friend_play_flow(r1: &TestServer, r2: &TestServer) {
    let mut alice = r1.ws("alice").await;
    let room = created(&mut alice).await;
    assert!(room.len() > 30, "unguessable id: {room}");

    let mut bob = r2.tcp("bob").await;
    let ok = bob
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    assert_eq!(
        (ok["role"].clone(), ok["owner"].clone()),
        (json!("player"), json!("alice"))
    );
    assert_eq!(
        (ok["opponent"].clone(), ok["started"].clone()),
        (json!("bob"), json!(true))
    );
    for c in [&mut alice, &mut bob] {
        let started = c.recv_type("game.started").await;
        assert_eq!(started["room"], room.as_str());
        assert_eq!(
            (started["owner"].clone(), started["opponent"].clone()),
            (json!("alice"), json!("bob"))
        );
    }

    // Refusals.
    let mut carol = r1.ws("carol").await;
    let err = carol
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(err["code"], "room_full");
    let err = carol
        .request(json!({"type": "game.join", "room": "g-nope"}))
        .await;
    assert_eq!(err["code"], "not_found");
    let err = alice
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(err["code"], "conflict");
    let err = carol
        .request(json!({"type": "game.send", "room": room, "to": "all", "data": 1}))
        .await;
    assert_eq!(err["code"], "forbidden");

    // A watcher sees public traffic but cannot move.
    let mut wendy = r2.ws("wendy").await;
    let ok = wendy
        .request(json!({"type": "game.watch", "room": room}))
        .await;
    assert_eq!(ok["role"], "watcher", "{ok}");
    let err = wendy
        .request(json!({"type": "game.send", "room": room, "to": "all", "data": 1}))
        .await;
    assert_eq!(err["code"], "forbidden");

    // to=all: everyone; to=opponent: the other player only; to=watchers: watchers only.
    let seq1 = alice
        .request(json!({"type": "game.send", "room": room, "to": "all", "data": "e4"}))
        .await["seq"]
        .as_u64()
        .expect("seq");
    for c in [&mut bob, &mut wendy] {
        let m = c.recv_type("game.message").await;
        assert_eq!(
            (m["from"].clone(), m["to"].clone(), m["data"].clone()),
            (json!("alice"), json!("all"), json!("e4"))
        );
        assert_eq!(m["seq"].as_u64(), Some(seq1));
    }
    alice.recv_type("game.message").await;
    alice
        .request(json!({"type": "game.send", "room": room, "to": "opponent", "data": "psst"}))
        .await;
    assert_eq!(bob.recv_type("game.message").await["data"], "psst");
    bob.request(json!({"type": "game.send", "room": room, "to": "watchers", "data": "gg"}))
        .await;
    let m = wendy.recv_type("game.message").await;
    assert_eq!(
        (m["data"].clone(), m["seq"].as_u64()),
        (json!("gg"), Some(seq1 + 2))
    );
    wendy.quiet(Duration::from_millis(150)).await;
    alice.quiet(Duration::from_millis(50)).await;

    // The watcher leaves and hears nothing more.
    wendy
        .request(json!({"type": "game.leave", "room": room}))
        .await;
    alice
        .request(json!({"type": "game.send", "room": room, "to": "all", "data": 2}))
        .await;
    bob.recv_type("game.message").await;
    wendy.quiet(Duration::from_millis(150)).await;

    // Only the owner closes; everyone is told.
    let err = bob
        .request(json!({"type": "game.close", "room": room}))
        .await;
    assert_eq!(err["code"], "forbidden");
    alice
        .request(json!({"type": "game.close", "room": room}))
        .await;
    for c in [&mut alice, &mut bob] {
        let closed = c.recv_type("game.closed").await;
        assert_eq!(
            (closed["room"].as_str(), closed["reason"].as_str()),
            (Some(room.as_str()), Some("closed"))
        );
    }
    let err = bob
        .request(json!({"type": "game.send", "room": room, "to": "all", "data": 3}))
        .await;
    assert_eq!(err["code"], "forbidden");
    let err = carol
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(err["code"], "not_found", "the room is gone");
}

#[tokio::test]
async fn friend_play_full_flow() {
    on_both_backends!(no_tweak, friend_play_flow);
}

async fn player_leave_closes(r1: &TestServer, r2: &TestServer) {
    let mut alice = r1.ws("alice").await;
    let room = created(&mut alice).await;
    let mut bob = r2.ws("bob").await;
    bob.request(json!({"type": "game.join", "room": room}))
        .await;
    bob.request(json!({"type": "game.leave", "room": room}))
        .await;
    assert_eq!(alice.recv_type("game.closed").await["reason"], "left");
    assert_eq!(bob.recv_type("game.closed").await["reason"], "left");
}

#[tokio::test]
async fn a_player_leaving_closes_the_game() {
    on_both_backends!(no_tweak, player_leave_closes);
}

fn short_grace(c: &mut Config) {
    c.game_reconnect_grace = Duration::from_millis(1500);
}

async fn reconnect_within_grace(r1: &TestServer, r2: &TestServer) {
    let mut alice = r1.ws("alice").await;
    let room = created(&mut alice).await;
    let mut bob = r2.ws("bob").await;
    bob.request(json!({"type": "game.join", "room": room}))
        .await;
    alice
        .request(json!({"type": "game.send", "room": room, "to": "all", "data": 0}))
        .await;
    let seen = bob.recv_type("game.message").await["seq"]
        .as_u64()
        .expect("seq");
    assert_eq!(
        alice.recv_type("game.message").await["data"],
        0,
        "to=all includes the sender"
    );
    drop(bob);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 1..=2 {
        alice
            .request(json!({"type": "game.send", "room": room, "to": "opponent", "data": i}))
            .await;
    }
    // Bob comes back on the other replica and gets the room and what he missed.
    let mut bob = r1.ws("bob").await;
    bob.send(json!({"type": "game.join", "room": room, "since": seen, "id": "back"}))
        .await;
    assert_eq!(bob.recv_type("game.message").await["data"], 1);
    assert_eq!(bob.recv_type("game.message").await["data"], 2);
    let ok = bob.recv_type("ok").await;
    assert_eq!(
        (
            ok["id"].clone(),
            ok["recovered"].clone(),
            ok["replayed"].clone()
        ),
        (json!("back"), json!(true), json!(2))
    );
    // Past the grace period the game is still on.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    bob.request(json!({"type": "game.send", "room": room, "to": "opponent", "data": "still here"}))
        .await;
    assert_eq!(alice.recv_type("game.message").await["data"], "still here");
}

#[tokio::test]
async fn player_reconnecting_within_grace_gets_the_room_back() {
    on_both_backends!(short_grace, reconnect_within_grace);
}

async fn abandoned_after_grace(r1: &TestServer, r2: &TestServer) {
    let mut alice = r1.ws("alice").await;
    let room = created(&mut alice).await;
    let mut bob = r2.ws("bob").await;
    bob.request(json!({"type": "game.join", "room": room}))
        .await;
    let mut wendy = r2.ws("wendy").await;
    wendy
        .request(json!({"type": "game.watch", "room": room}))
        .await;
    drop(bob);
    let started = Instant::now();
    assert_eq!(alice.recv_type("game.closed").await["reason"], "abandoned");
    assert_eq!(wendy.recv_type("game.closed").await["reason"], "abandoned");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "not before the grace"
    );
}

#[tokio::test]
async fn game_closes_when_a_player_does_not_come_back() {
    on_both_backends!(short_grace, abandoned_after_grace);
}

fn one_watcher(c: &mut Config) {
    c.game_watchers = 1;
}

async fn watcher_limit(r1: &TestServer, r2: &TestServer) {
    let mut alice = r1.ws("alice").await;
    let room = created(&mut alice).await;
    let mut w1 = r2.ws("w1").await;
    assert_eq!(
        w1.request(json!({"type": "game.watch", "room": room}))
            .await["type"],
        "ok"
    );
    let mut w2 = r1.ws("w2").await;
    let err = w2
        .request(json!({"type": "game.watch", "room": room}))
        .await;
    assert_eq!(err["code"], "room_full");
}

#[tokio::test]
async fn watchers_are_limited() {
    on_both_backends!(one_watcher, watcher_limit);
}

async fn ranked_everyone_once(r1: &TestServer, r2: &TestServer) {
    let n = 200;
    let mut players = Vec::new();
    for i in 0..n {
        let server = if i % 2 == 0 { r1 } else { r2 };
        let mut c = server.ws_raw().await;
        c.login(&rated(&format!("p{i}"), 1400 + (i as i64 % 25) * 8))
            .await;
        players.push(c);
    }
    // Everyone joins concurrently-ish: send all, then read the acknowledgements.
    for c in players.iter_mut() {
        c.send(json!({"type": "rank.join", "id": "q"})).await;
    }
    let mut rating = HashMap::new();
    for (i, c) in players.iter_mut().enumerate() {
        let q = c.recv_type("rank.queued").await;
        rating.insert(format!("p{i}"), q["rating"].as_i64().expect("rating"));
    }
    let mut opponent_of: HashMap<String, (String, String, i64)> = HashMap::new();
    for (i, c) in players.iter_mut().enumerate() {
        let m = c.recv_type("rank.matched").await;
        let entry = (
            m["room"].as_str().expect("room").to_owned(),
            m["opponent"].as_str().expect("opponent").to_owned(),
            m["opponent_rating"].as_i64().expect("rating"),
        );
        opponent_of.insert(format!("p{i}"), entry);
    }
    let mut rooms = HashSet::new();
    for (me, (room, other, other_rating)) in &opponent_of {
        assert_ne!(me, other);
        let (back_room, back, _) = &opponent_of[other];
        assert_eq!((back_room, back), (room, me), "pairs agree");
        assert_eq!(rating[other], *other_rating);
        assert!(
            (rating[me] - rating[other]).abs() <= 200,
            "within the widened window"
        );
        rooms.insert(room.clone());
    }
    assert_eq!(rooms.len(), n / 2, "one game per pair, nobody in two games");
    // Nobody is matched a second time.
    for c in players.iter_mut().take(10) {
        c.quiet(Duration::from_millis(50)).await;
    }
    // A matched pair plays a normal game.
    let (room, other, _) = opponent_of["p0"].clone();
    let other_index: usize = other[1..].parse().expect("index");
    let ok = players[0]
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    players[other_index]
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(
        players[0].recv_type("game.started").await["room"],
        room.as_str()
    );
}

#[tokio::test]
async fn ranked_players_are_matched_exactly_once_across_replicas() {
    on_both_backends!(no_tweak, ranked_everyone_once);
}

async fn queue_len(s: &TestServer) -> u64 {
    let (status, body) = http(s.http, "GET", "/api/v1/matchmaking", Some(API_KEY), None).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(v["wait_ms"]["p50"].is_u64(), "{v}");
    v["queue"].as_u64().expect("queue")
}

async fn leaving_the_queue(r1: &TestServer, r2: &TestServer) {
    let mut lone = r1.ws_raw().await;
    lone.login(&rated("lone", 9000)).await;
    let q = lone.request(json!({"type": "rank.join"})).await;
    assert_eq!(
        (q["type"].clone(), q["rating"].clone()),
        (json!("rank.queued"), json!(9000))
    );
    // A second device of the same user does not queue twice.
    let mut second = r2.ws_raw().await;
    second.login(&rated("lone", 9000)).await;
    second.request(json!({"type": "rank.join"})).await;
    assert_eq!(queue_len(r2).await, 1);
    lone.request(json!({"type": "rank.leave"})).await;
    assert_eq!(queue_len(r1).await, 0);
    // Disconnecting removes the player too.
    lone.request(json!({"type": "rank.join"})).await;
    assert_eq!(queue_len(r1).await, 1);
    drop(lone);
    until(
        "the disconnected player to leave the queue",
        WAIT,
        async || match queue_len(r2).await {
            0 => Ok(()),
            n => Err(format!("{n} queued")),
        },
    )
    .await;
    // The default rating applies without a claim.
    let mut plain = r1.ws("plain").await;
    assert_eq!(
        plain.request(json!({"type": "rank.join"})).await["rating"],
        1500
    );
}

#[tokio::test]
async fn leaving_or_disconnecting_removes_from_the_queue() {
    on_both_backends!(no_tweak, leaving_the_queue);
}

fn short_ttl(c: &mut Config) {
    c.game_ttl = Duration::from_millis(600);
}

async fn idle_games_expire(r1: &TestServer, r2: &TestServer) {
    let mut alice = r1.ws("alice").await;
    let room = created(&mut alice).await;
    let mut bob = r2.ws("bob").await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let err = bob
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(err["code"], "not_found", "idle game expired: {err}");
}

#[tokio::test]
async fn idle_games_expire_on_both_backends() {
    on_both_backends!(short_ttl, idle_games_expire);
}

async fn second_drop_gets_a_full_grace(r1: &TestServer, r2: &TestServer) {
    let mut alice = r1.ws("alice").await;
    let room = created(&mut alice).await;
    let mut bob = r2.ws("bob").await;
    bob.request(json!({"type": "game.join", "room": room}))
        .await;
    let first_drop = Instant::now();
    drop(bob);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut bob = r1.ws("bob").await;
    bob.request(json!({"type": "game.join", "room": room}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(bob); // second drop at ~0.8 s: its own 1.5 s grace runs to ~2.3 s
    assert_eq!(alice.recv_type("game.closed").await["reason"], "abandoned");
    assert!(
        first_drop.elapsed() >= Duration::from_millis(2100),
        "the first drop's timer must not close the game ({:?})",
        first_drop.elapsed()
    );
}

#[tokio::test]
async fn a_stale_grace_timer_does_not_close_the_game_early() {
    on_both_backends!(short_grace, second_drop_gets_a_full_grace);
}

async fn ranked_no_show(r1: &TestServer, r2: &TestServer) {
    let mut a = r1.ws_raw().await;
    a.login(&rated("ns-a", 1500)).await;
    let mut b = r2.ws_raw().await;
    b.login(&rated("ns-b", 1510)).await;
    a.request(json!({"type": "rank.join"})).await;
    b.request(json!({"type": "rank.join"})).await;
    let room = a.recv_type("rank.matched").await["room"]
        .as_str()
        .expect("room")
        .to_owned();
    b.recv_type("rank.matched").await;
    // Neither takes the seat: the game is abandoned after the grace period.
    tokio::time::sleep(Duration::from_millis(1900)).await;
    let err = a.request(json!({"type": "game.join", "room": room})).await;
    assert_eq!(err["code"], "not_found", "{err}");
}

#[tokio::test]
async fn ranked_games_nobody_joins_are_abandoned() {
    on_both_backends!(short_grace, ranked_no_show);
}
