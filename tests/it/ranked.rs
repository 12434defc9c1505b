//! Ranked play through faults: waiting players get `rank.waiting` and, after the
//! maximum wait, `rank.timeout`; a match whose replica died after taking it still
//! reaches both players, through their logged streams, even when they were offline. The
//! burst stress test is its own test binary (`tests/ranked_stress.rs`), so its CPU
//! contention does not slow the other tests down.

use crate::harness::*;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::backend::{self, MatchRun};
use switchboard::config::Config;
use switchboard::event::{Epoch, Event, Topic};
use switchboard::gateway::Gateway;
use switchboard::hub::Hub;
use switchboard::matchmaking::{Rules, Waiting};
use switchboard::metrics::Metrics;
use switchboard::protocol::UserId;

fn rated(user: &str, rating: i64) -> String {
    let mut c = claims(user);
    c.rating = Some(rating);
    sign(&c)
}

async fn waiting_then_timeout(server: &TestServer) {
    let mut lone = server.ws_raw().await;
    lone.login(&rated("lonely", 4200)).await;
    let q = lone.request(json!({"type": "rank.join"})).await;
    assert_eq!(q["type"], "rank.queued", "{q}");
    assert_eq!(q["max_wait_ms"], 1_500);
    assert!(q["queued"].as_u64() >= Some(1), "{q}");
    let joined = Instant::now();
    let mut waited = Vec::new();
    loop {
        let f = lone.recv().await;
        match f["type"].as_str() {
            Some("rank.waiting") => {
                assert!(f["queued"].as_u64().is_some(), "{f}");
                assert!(f["window"].as_u64() >= Some(100), "{f}");
                waited.push(f["waited_ms"].as_u64().expect("waited"));
            }
            Some("rank.timeout") => {
                assert!(f["waited_ms"].as_u64() >= Some(1_400), "{f}");
                break;
            }
            _ => panic!("unexpected {f}"),
        }
    }
    let took = joined.elapsed();
    assert!(
        took >= Duration::from_millis(1_400) && took < Duration::from_secs(4),
        "timed out after {took:?}"
    );
    assert!(waited.len() >= 2, "status every 400 ms: {waited:?}");
    assert!(waited.windows(2).all(|w| w[0] < w[1]), "{waited:?}");
    // Out of the queue: no more status, and a new join starts a new wait.
    lone.quiet(Duration::from_millis(600)).await;
    let q = lone.request(json!({"type": "rank.join"})).await;
    assert_eq!(q["type"], "rank.queued");
    assert_eq!(lone.recv().await["type"], "rank.waiting");
    lone.request(json!({"type": "rank.leave"})).await;
}

fn short_wait(c: &mut Config) {
    c.rank_max_wait = Duration::from_millis(1_500);
    c.rank_status_interval = Duration::from_millis(400);
}

#[tokio::test]
async fn a_waiting_player_gets_status_then_a_timeout() {
    waiting_then_timeout(&TestServer::with(short_wait).await).await;
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let server = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        short_wait(c);
    })
    .await;
    waiting_then_timeout(&server).await;
}

/// A matcher replica that takes a pair and dies before announcing it: its lease runs
/// out, a live replica takes the match over and tells both players through their
/// logged streams. The dead one managed to create the game and tell `early`, who sat
/// down: the game is kept, and `early` is not told twice. `late` was offline all along
/// and gets the match at login.
#[tokio::test]
async fn a_match_survives_its_matcher_dying_and_reaches_an_offline_player() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let r1 = TestServer::with(on_redis(&redis, &prefix)).await;
    let r2 = TestServer::with(on_redis(&redis, &prefix)).await;
    // The doomed replica: the same backend code, driven by hand.
    let mut config = Config::default();
    on_redis(&redis, &prefix)(&mut config);
    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::new(metrics.clone(), 100));
    let doomed = backend::connect(&config, hub, metrics, "doomed")
        .await
        .expect("connect");
    let mut early = r1.ws_raw().await;
    early.login(&rated("early", 1500)).await;
    // Queued just now: the live replicas wait out the settle time (1 s) before pairing
    // them, the doomed one (settle 0) takes them first.
    let now = switchboard::clock::unix_millis();
    for (user, rating) in [("early", 1500), ("late", 1520)] {
        let player = Waiting {
            user: UserId::new(user).expect("id"),
            rating,
            since_ms: now,
        };
        assert!(
            doomed
                .matchmaker
                .enqueue(&player, "gone")
                .await
                .expect("enqueue")
        );
    }
    let run = MatchRun {
        now_ms: now,
        rules: Rules {
            settle_ms: 0,
            ..r1.gw.rank_rules()
        },
        room_prefix: "g-doomed-",
        lease_ms: r1.gw.rank_lease().as_millis() as u64,
        drop_before_ms: 0,
        exclusive_ms: 0,
    };
    let taken = doomed.matchmaker.take_matches(&run).await.expect("take");
    assert_eq!(taken.matches.len(), 1, "{taken:?}");
    let found = taken.matches[0].clone();
    assert_eq!(found.a.user.as_str(), "early");
    doomed
        .games
        .create(
            &found.room,
            &found.a.user,
            Some(&found.b.user),
            found.made_ms,
        )
        .await
        .expect("create");
    let told = Event::RankMatched {
        room: found.room.clone(),
        opponent: found.b.user.clone(),
        opponent_rating: 1520,
        seq: 0,
        epoch: Epoch::default(),
        ts: found.made_ms,
    };
    let topic = Topic::User(found.a.user.clone());
    let key = Gateway::rank_matched_key(&found.room);
    doomed
        .bus
        .publish_logged(&topic, told, Some(&key))
        .await
        .expect("tell early");
    // ... and the doomed replica is gone (never finishes).
    drop(doomed);
    let room = found.room.to_string();
    let m = early.recv_type("rank.matched").await;
    assert_eq!(
        (m["room"].as_str(), m["seq"].as_u64()),
        (Some(room.as_str()), Some(1))
    );
    let ok = early
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    // After the lease (2 × 500 ms + 1 s) a live replica takes over.
    until("a live replica to finish the match", WAIT, async || {
        let recovered = r1.gw.metrics.rank_recovered.get() + r2.gw.metrics.rank_recovered.get();
        let pending = r1.gw.metrics.rank_pending.get();
        if recovered == 1 && pending == 0 {
            Ok(())
        } else {
            Err(format!("recovered {recovered}, pending {pending}"))
        }
    })
    .await;
    // `late` logs in only now and finds the match in its stream; the game still has
    // `early` seated, so `late` taking the seat starts it.
    let mut late = r2.ws_raw().await;
    late.login(&rated("late", 1520)).await;
    let m = late.recv_type("rank.matched").await;
    assert_eq!(
        (
            m["room"].as_str(),
            m["opponent"].as_str(),
            m["opponent_rating"].as_i64()
        ),
        (Some(room.as_str()), Some("early"), Some(1500))
    );
    let ok = late
        .request(json!({"type": "game.join", "room": room}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    assert_eq!(early.recv_type("game.started").await["room"], room.as_str());
    // `early` was told exactly once.
    early.quiet(Duration::from_millis(300)).await;
}

/// `rank.matched` is in the user's logged stream: a session that comes back with the
/// cursor from before the match gets it again, one with its seq does not, and a login
/// without a cursor after it was written does not either.
#[tokio::test]
async fn rank_matched_is_resumed_like_a_direct_message() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let r1 = TestServer::with(on_redis(&redis, &prefix)).await;
    let r2 = TestServer::with(on_redis(&redis, &prefix)).await;
    let mut a = r1.ws_raw().await;
    a.login(&rated("ra", 1500)).await;
    let mut b = r2.ws_raw().await;
    b.login(&rated("rb", 1500)).await;
    let mut c = r1.ws("rc").await;
    c.request(json!({"type": "send", "to": "ra", "data": "before"}))
        .await;
    assert_eq!(a.recv_type("direct").await["seq"], 1);
    a.request(json!({"type": "rank.join"})).await;
    b.request(json!({"type": "rank.join"})).await;
    let m = a.recv_type("rank.matched").await;
    assert_eq!(m["seq"], 2, "after the DM in the same stream: {m}");
    b.recv_type("rank.matched").await;
    drop(a);
    // Back with the cursor of the DM: the match is replayed.
    let mut again = r2.ws_raw().await;
    again
        .login_frame(json!({"type": "login", "token": rated("ra", 1500), "dm_since": 1}))
        .await;
    let replayed = again.recv_type("rank.matched").await;
    assert_eq!(replayed["room"], m["room"]);
    drop(again);
    // With the match's own seq, or with no cursor (it was written): nothing.
    let mut resumed = r1.ws_raw().await;
    resumed
        .login_frame(json!({"type": "login", "token": rated("ra", 1500), "dm_since": 2}))
        .await;
    resumed.quiet(Duration::from_millis(300)).await;
    let mut plain = r2.ws_raw().await;
    plain.login(&rated("ra", 1500)).await;
    plain.quiet(Duration::from_millis(300)).await;
}
