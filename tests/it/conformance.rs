//! One suite for the backend traits, run against the memory and the Redis backend.

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use switchboard::backend::{self, Backends, Bus, GameRefusal, Games, Matchmaker, Presence, Seat};
use switchboard::config::Config;
use switchboard::event::{Epoch, Event, Position, Topic};
use switchboard::hub::{Hub, SessionHandle};
use switchboard::metrics::Metrics;
use switchboard::protocol::{RoomId, UserId};

/// The four stores as `backend::connect` builds them, and the hub they deliver to.
pub(crate) struct Backend {
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) games: Arc<dyn Games>,
    pub(crate) matchmaker: Arc<dyn Matchmaker>,
    pub(crate) hub: Arc<Hub>,
    _redis: Option<TestRedis>,
}

pub(crate) fn config() -> Config {
    Config {
        history_size: 5,
        inbox_size: 5,
        presence_ttl: Duration::from_secs(30),
        redis_timeout: Duration::from_millis(500),
        ..Config::default()
    }
}

pub(crate) async fn connect(config: Config, redis: Option<TestRedis>) -> Backend {
    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::new(metrics.clone(), 100));
    let Backends {
        bus,
        presence,
        games,
        matchmaker,
        ..
    } = backend::connect(&config, hub.clone(), metrics, "conf")
        .await
        .expect("connect");
    Backend {
        bus,
        presence,
        games,
        matchmaker,
        hub,
        _redis: redis,
    }
}

pub(crate) async fn memory() -> Backend {
    connect(config(), None).await
}

pub(crate) async fn redis() -> Backend {
    let server = TestRedis::start().await;
    let c = Config {
        redis_url: Some(server.url()),
        redis_prefix: unique_prefix(),
        ..config()
    };
    connect(c, Some(server)).await
}

pub(crate) fn room(name: &str) -> RoomId {
    RoomId::new(name).expect("room")
}

pub(crate) fn user(name: &str) -> UserId {
    UserId::new(name).expect("user")
}

fn message(r: &str, data: Value) -> Event {
    Event::Message {
        room: room(r),
        from: user("alice"),
        name: "Alice".into(),
        data,
        seq: 0,
        epoch: Epoch::default(),
        ts: 1,
        skip: None,
    }
}

/// A cursor at `seq` of `epoch`.
fn at(seq: u64, epoch: &Epoch) -> Position {
    Position::at(seq, epoch)
}

/// A local session in the hub whose queue the test reads.
fn listener(b: &Backend, id: &str, who: &str) -> Arc<SessionHandle> {
    let handle = SessionHandle::with_limits(id, user(who), who, 64, usize::MAX);
    b.hub.add_session(&handle);
    handle
}

async fn next(handle: &SessionHandle) -> Value {
    tokio::time::timeout(WAIT, handle.outbox.ready())
        .await
        .expect("delivery in time");
    let mut got = Vec::new();
    handle.outbox.take(&mut got, 1);
    serde_json::from_str(got[0].frame.as_str()).expect("json")
}

/// Logs `n` direct messages from alice to `to`; returns their seqs.
async fn send_dms(b: &Backend, to: &UserId, n: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    for i in 1..=n {
        let ev = Event::Direct {
            to: to.clone(),
            from: user("alice"),
            name: "A".into(),
            data: json!(i),
            seq: 0,
            epoch: Epoch::default(),
            ts: 1,
        };
        let inbox = Topic::User(to.clone());
        let published = b.bus.publish_logged(&inbox, ev, None).await;
        seqs.push(published.expect("dm").seq);
    }
    seqs
}

async fn bus_suite(b: Backend) {
    let lobby = Topic::Room(room("lobby"));
    let h = listener(&b, "s1", "bob");
    b.hub.join(&room("lobby"), &h);
    b.bus.subscribe(&lobby).await.expect("subscribe");

    // Seq starts at 1 and grows; delivery order is seq order.
    for i in 1..=8u64 {
        let seq = b
            .bus
            .publish_logged(&lobby, message("lobby", json!(i)), None)
            .await
            .expect("publish");
        assert_eq!(seq.seq, i);
    }
    for i in 1..=8u64 {
        let m = next(&h).await;
        assert_eq!((m["seq"].as_u64(), m["data"].as_u64()), (Some(i), Some(i)));
    }

    // The log has an epoch, carried by every delivery and reported by replays.
    let head = b
        .bus
        .replay(&lobby, &Position::default(), 0)
        .await
        .expect("position");
    assert!(head.epoch.is_known() && !head.reset);
    assert_eq!(
        (head.head, head.events.len()),
        (8, 0),
        "limit 0: position only"
    );
    let epoch = head.epoch;

    // Replay: retention is 5, so seq 4..=8 are kept.
    let r = b
        .bus
        .replay(&lobby, &at(5, &epoch), 100)
        .await
        .expect("replay");
    assert!(r.complete && !r.reset);
    assert_eq!((r.head, &r.epoch), (8, &epoch));
    let seqs: Vec<u64> = r
        .events
        .iter()
        .map(|e| match e {
            Event::Message { seq, epoch: e, .. } => {
                assert_eq!(e, &epoch, "replayed events carry the epoch");
                *seq
            }
            _ => 0,
        })
        .collect();
    assert_eq!(seqs, [6, 7, 8]);
    let r = b
        .bus
        .replay(&lobby, &at(8, &epoch), 100)
        .await
        .expect("replay");
    assert!(r.complete && r.events.is_empty());
    let r = b
        .bus
        .replay(&lobby, &at(1, &epoch), 100)
        .await
        .expect("replay");
    assert!(!r.complete, "seq 2 and 3 were trimmed");
    let r = b
        .bus
        .replay(&lobby, &at(5, &epoch), 2)
        .await
        .expect("replay");
    assert!(!r.complete, "capped");
    assert_eq!(r.events.len(), 2, "the newest two");
    // A cursor without an epoch (an old client) is taken as current.
    let r = b
        .bus
        .replay(&lobby, &at(99, &Epoch::default()), 10)
        .await
        .expect("replay");
    assert!(!r.complete && r.events.is_empty() && !r.reset);
    assert_eq!(r.head, 8);
    // A cursor from another epoch gets the whole retained log, flagged as a reset.
    let r = b
        .bus
        .replay(&lobby, &at(7, &Epoch::new("1.0")), 10)
        .await
        .expect("replay");
    assert!(r.reset && !r.complete);
    assert_eq!(r.events.len(), 5, "seq 4..=8: everything retained");
    let r = b
        .bus
        .replay(&Topic::Room(room("empty")), &Position::default(), 10)
        .await
        .expect("replay");
    assert!(r.complete && r.events.is_empty() && r.head == 0);
    assert!(
        r.epoch.is_known() && r.epoch != epoch,
        "every log its own epoch"
    );
    let again = b
        .bus
        .replay(&Topic::Room(room("empty")), &Position::default(), 0)
        .await
        .expect("position");
    assert_eq!(again.epoch, r.epoch, "an epoch stays until the log is lost");

    // A dedupe key is logged once: the retry gets the first seq and is not delivered.
    let kept = b
        .bus
        .publish_logged(&lobby, message("lobby", json!("once")), Some("alice:m1"))
        .await
        .expect("publish");
    assert_eq!((kept.seq, kept.duplicate), (9, false));
    assert_eq!(next(&h).await["data"], "once");
    let retry = b
        .bus
        .publish_logged(&lobby, message("lobby", json!("once")), Some("alice:m1"))
        .await
        .expect("publish");
    assert_eq!((retry.seq, retry.duplicate), (9, true));
    let other = b
        .bus
        .publish_logged(&lobby, message("lobby", json!("other")), Some("bob:m1"))
        .await
        .expect("publish");
    assert_eq!((other.seq, other.duplicate), (10, false));
    assert_eq!(
        next(&h).await["data"],
        "other",
        "the retry was not delivered"
    );

    // Unlogged publish reaches subscribers; unsubscribed topics do not.
    b.bus
        .publish(
            &lobby,
            Event::MemberRenamed {
                room: room("lobby"),
                user: user("x"),
                name: "X".into(),
            },
        )
        .await
        .expect("publish");
    assert_eq!(next(&h).await["type"], "member.renamed");
    b.bus.unsubscribe(&lobby).await.expect("unsubscribe");
    b.hub.leave(&room("lobby"), &h);
    b.bus
        .publish_logged(&lobby, message("lobby", json!("late")), None)
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.outbox.is_empty(), "nothing after leaving");

    // Direct messages: logged per user, delivery watermark only rises.
    let dave = user("dave");
    let inbox = Topic::User(dave.clone());
    assert_eq!(send_dms(&b, &dave, 3).await, vec![1, 2, 3]);
    assert_eq!(b.bus.delivered(&dave).await.expect("watermark").seq, 0);
    let dm_epoch = b
        .bus
        .replay(&inbox, &Position::default(), 0)
        .await
        .expect("position")
        .epoch;
    b.bus
        .mark_delivered(&dave, &at(2, &dm_epoch))
        .await
        .expect("mark");
    b.bus
        .mark_delivered(&dave, &at(1, &dm_epoch))
        .await
        .expect("mark");
    b.bus
        .mark_delivered(&dave, &at(3, &Epoch::new("1.0")))
        .await
        .expect("mark from another epoch");
    assert_eq!(
        b.bus.delivered(&dave).await.expect("watermark"),
        at(2, &dm_epoch),
        "only rises, only within the log's epoch"
    );
    let r = b
        .bus
        .replay(&inbox, &at(2, &dm_epoch), 10)
        .await
        .expect("replay");
    assert_eq!(r.events.len(), 1);

    // A login's inbox: after the watermark when the client sent no cursor, after the
    // client's cursor when it did, all of the log for a cursor from another epoch.
    let seqs = |r: &backend::Replay| -> Vec<u64> {
        r.events
            .iter()
            .filter_map(|e| e.position().map(|p| p.seq))
            .collect()
    };
    let (from, r) = b.bus.inbox(&dave, None, 10).await.expect("inbox");
    assert_eq!(from, at(2, &dm_epoch), "resumes at the watermark");
    assert_eq!((seqs(&r), r.complete, r.reset), (vec![3], true, false));
    let (from, r) = b
        .bus
        .inbox(&dave, Some(&at(1, &dm_epoch)), 10)
        .await
        .expect("inbox");
    assert_eq!(from, at(1, &dm_epoch), "the client's cursor wins");
    assert_eq!(seqs(&r), vec![2, 3]);
    let (_, r) = b
        .bus
        .inbox(&dave, Some(&at(3, &Epoch::new("1.0"))), 2)
        .await
        .expect("inbox");
    assert_eq!(
        (seqs(&r), r.complete, r.reset, r.epoch.clone()),
        (vec![2, 3], false, true, dm_epoch.clone()),
        "a cursor from another epoch replays the log from its start, newest within the limit"
    );
    let (from, r) = b.bus.inbox(&user("nobody"), None, 10).await.expect("inbox");
    assert_eq!(
        (from.seq, r.events.len(), r.head),
        (0, 0, 0),
        "an empty inbox"
    );
}

async fn presence_suite(b: Backend) {
    let p = &b.presence;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    assert_eq!(p.connect(&alice, "Alice", "a1").await.expect("connect"), 0);
    assert_eq!(p.connect(&alice, "Alice", "a2").await.expect("connect"), 1);
    assert_eq!(p.connect(&bob, "Bob", "b1").await.expect("connect"), 0);
    assert_eq!(p.connect(&carol, "Carol", "c1").await.expect("connect"), 0);
    assert_eq!(p.session_count(&alice).await.expect("count"), 2);
    assert_eq!(p.session_count(&user("nobody")).await.expect("count"), 0);

    let lobby = room("lobby");
    let j = p.join(&lobby, &alice, "a1").await.expect("join");
    assert!(j.changed && j.members == 1);
    let j = p.join(&lobby, &alice, "a2").await.expect("join");
    assert!(
        !j.changed && j.members == 1,
        "second session of the same user"
    );
    let j = p.join(&lobby, &bob, "b1").await.expect("join");
    assert!(j.changed && j.members == 2);
    let (members, count) = p.members(&lobby, 10).await.expect("members");
    assert_eq!(count, 2);
    let names: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.user.as_str(), m.name.as_str()))
        .collect();
    assert_eq!(names, [("alice", "Alice"), ("bob", "Bob")]);
    let (members, count) = p.members(&lobby, 1).await.expect("members");
    assert_eq!((members.len(), count), (1, 2));

    let l = p.leave(&lobby, &alice, "a1").await.expect("leave");
    assert!(!l.changed && l.members == 2, "a2 is still there");
    let l = p.leave(&lobby, &alice, "a2").await.expect("leave");
    assert!(l.changed && l.members == 1);
    let l = p.leave(&lobby, &alice, "a2").await.expect("leave twice");
    assert!(!l.changed);

    let page = p.online(None, 2).await.expect("online");
    assert_eq!(page.count, 3);
    assert_eq!(
        page.users
            .iter()
            .map(|m| m.user.as_str())
            .collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    let next = page.next.expect("more");
    let page = p.online(Some(&next), 2).await.expect("online");
    assert_eq!(
        page.users
            .iter()
            .map(|m| m.user.as_str())
            .collect::<Vec<_>>(),
        ["carol"]
    );
    assert!(page.next.is_none());

    let rooms = p.rename(&bob, "Bobby").await.expect("rename");
    assert_eq!(rooms, std::slice::from_ref(&lobby));
    let (members, _) = p.members(&lobby, 10).await.expect("members");
    assert_eq!(members[0].name, "Bobby");

    assert_eq!(p.disconnect(&alice, "a1").await.expect("disconnect"), 1);
    assert_eq!(p.session_count(&alice).await.expect("count"), 1);
    assert_eq!(p.disconnect(&alice, "a2").await.expect("disconnect"), 0);
    assert_eq!(p.online(None, 10).await.expect("online").count, 2);
}

#[tokio::test]
async fn memory_bus() {
    bus_suite(memory().await).await;
}

#[tokio::test]
async fn redis_bus() {
    bus_suite(redis().await).await;
}

#[tokio::test]
async fn memory_presence() {
    presence_suite(memory().await).await;
}

#[tokio::test]
async fn redis_presence() {
    presence_suite(redis().await).await;
}

/// Seats, watchers, away marks and closing, as the `Games` trait documents them.
async fn games_suite(b: Backend) {
    let g = &b.games;
    let (game, ranked) = (room("g1"), room("g2"));
    let (owner, bob, carol, dave) = (user("owner"), user("bob"), user("carol"), user("dave"));
    assert_eq!(g.get(&game).await.expect("get"), None);
    assert_eq!(
        g.join(&game, &bob).await.expect("join"),
        Err(GameRefusal::NotFound)
    );
    g.create(&game, &owner, None, 1_000).await.expect("create");
    let state = g.get(&game).await.expect("get").expect("created");
    assert_eq!(
        (state.owner.clone(), state.opponent.clone()),
        (owner.clone(), None)
    );
    assert!(!state.started);

    // The owner sits already (and may sit again: another device, or back after its
    // replica died); the free seat goes to the first other player.
    assert!(
        !g.join(&game, &owner)
            .await
            .expect("join")
            .expect("own seat")
            .starts
    );
    let seated = g.join(&game, &bob).await.expect("join").expect("seat");
    assert!(seated.starts, "both players present for the first time");
    assert_eq!(seated.state.opponent, Some(bob.clone()));
    assert_eq!(
        g.join(&game, &carol).await.expect("join"),
        Err(GameRefusal::RoomFull)
    );

    // Watchers up to the limit.
    let watched = g.watch(&game, &carol, 1).await.expect("watch").expect("ok");
    assert_eq!(watched.watchers, 1);
    assert_eq!(
        g.watch(&game, &dave, 1).await.expect("watch").err(),
        Some(GameRefusal::RoomFull)
    );
    g.unwatch(&game, &carol).await.expect("unwatch");
    assert!(g.watch(&game, &dave, 1).await.expect("watch").is_ok());

    // A player who drops keeps the seat, marked away, until joining again.
    let away_at = |seats: Option<Vec<Seat>>, who: &UserId, now: u64| {
        seats
            .expect("game")
            .iter()
            .find(|s| &s.user == who)
            .expect("seat")
            .away_at(now)
    };
    assert_eq!(away_at(g.seats(&game).await.expect("seats"), &bob, 1), None);
    g.away(&game, &bob, 5_000).await.expect("away");
    assert_eq!(
        away_at(g.seats(&game).await.expect("seats"), &bob, 6_000),
        Some(5_000)
    );
    let back = g.join(&game, &bob).await.expect("join").expect("back");
    assert!(!back.starts, "game.started is announced once");
    assert_eq!(
        away_at(g.seats(&game).await.expect("seats"), &bob, 6_000),
        None
    );
    g.touch(&game).await.expect("touch");

    // A lease vouches for a seat until it lapses (its replica died), and clears an
    // away mark another device left.
    g.away(&game, &bob, 5_000).await.expect("away");
    g.lease(
        &[(game.clone(), bob.clone()), (game.clone(), carol.clone())],
        9_000,
    )
    .await
    .expect("lease");
    let seats = g.seats(&game).await.expect("seats");
    assert_eq!(away_at(seats.clone(), &bob, 8_000), None, "leased");
    assert_eq!(away_at(seats, &bob, 9_500), Some(9_000), "lapsed");
    assert_eq!(g.seats(&room("nope")).await.expect("seats"), None);

    // Checks: the earliest pending one is kept, due ones are listed, reschedule moves.
    g.schedule(&game, 20_000).await.expect("schedule");
    g.schedule(&game, 30_000).await.expect("schedule later");
    g.schedule(&ranked, 25_000).await.expect("schedule");
    assert_eq!(g.due(19_999, 10).await.expect("due"), Vec::<RoomId>::new());
    assert_eq!(
        g.due(20_000, 10).await.expect("due"),
        std::slice::from_ref(&game)
    );
    assert_eq!(
        g.due(40_000, 10).await.expect("due"),
        [game.clone(), ranked.clone()]
    );
    g.reschedule(&game, Some(50_000)).await.expect("reschedule");
    assert_eq!(
        g.due(40_000, 10).await.expect("due"),
        std::slice::from_ref(&ranked)
    );
    g.reschedule(&ranked, None).await.expect("unschedule");
    g.reschedule(&game, None).await.expect("unschedule");
    assert_eq!(
        g.due(u64::MAX / 2, 10).await.expect("due"),
        Vec::<RoomId>::new()
    );

    // Exactly one caller closes a game.
    let closed = g.close(&game).await.expect("close").expect("closed once");
    assert_eq!(closed.owner, owner);
    assert_eq!(g.close(&game).await.expect("close"), None);
    assert_eq!(g.get(&game).await.expect("get"), None);

    // Ranked games start with both seats away until the players take them.
    g.create(&ranked, &owner, Some(&bob), 7_000)
        .await
        .expect("create ranked");
    let seats = g.seats(&ranked).await.expect("seats");
    assert_eq!(away_at(seats.clone(), &owner, 8_000), Some(7_000));
    assert_eq!(away_at(seats, &bob, 8_000), Some(7_000));
    assert!(
        !g.join(&ranked, &owner)
            .await
            .expect("join")
            .expect("seat")
            .starts
    );
    assert!(
        g.join(&ranked, &bob)
            .await
            .expect("join")
            .expect("seat")
            .starts
    );
}

/// A deterministic queue with close, equal and far ratings and distinct join times.
#[tokio::test]
async fn memory_games() {
    games_suite(memory().await).await;
}

#[tokio::test]
async fn redis_games() {
    games_suite(redis().await).await;
}

/// A watermark written before epochs existed (a bare seq) still places a login's inbox.
#[tokio::test]
async fn redis_inbox_reads_a_bare_seq_watermark() {
    let server = TestRedis::start().await;
    let (port, prefix) = (server.port, unique_prefix());
    let c = Config {
        redis_url: Some(server.url()),
        redis_prefix: prefix.clone(),
        ..config()
    };
    let b = connect(c, Some(server)).await;
    let erin = user("erin");
    send_dms(&b, &erin, 3).await;
    let set = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SET"])
        .arg(format!("{prefix}:{{u:erin}}:dlv"))
        .arg("2")
        .output()
        .expect("redis-cli");
    assert!(set.status.success());
    let (from, r) = b.bus.inbox(&erin, None, 10).await.expect("inbox");
    assert_eq!(from, at(2, &Epoch::default()));
    let seqs: Vec<u64> = r
        .events
        .iter()
        .filter_map(|e| e.position().map(|p| p.seq))
        .collect();
    assert_eq!((seqs, r.reset), (vec![3], false));
}
