//! One suite for the backend traits, run against the memory and the Redis backend.

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use switchboard::backend::memory::{MemoryBus, MemoryPresence};
use switchboard::backend::redis::RedisBackend;
use switchboard::backend::{Bus, Presence};
use switchboard::config::Config;
use switchboard::event::{Delivery, Event, Topic};
use switchboard::hub::{Hub, SessionHandle};
use switchboard::metrics::Metrics;
use switchboard::protocol::{RoomId, UserId};
use tokio::sync::mpsc;

struct Backend {
    bus: Arc<dyn Bus>,
    presence: Arc<dyn Presence>,
    hub: Arc<Hub>,
    _redis: Option<TestRedis>,
}

fn config() -> Config {
    Config {
        history_size: 5,
        inbox_size: 5,
        presence_ttl: Duration::from_secs(30),
        redis_timeout: Duration::from_millis(500),
        ..Config::default()
    }
}

async fn memory() -> Backend {
    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::new(metrics.clone()));
    let c = config();
    Backend {
        bus: Arc::new(MemoryBus::new(
            hub.clone(),
            c.history_size,
            c.inbox_size,
            metrics,
        )),
        presence: Arc::new(MemoryPresence::new()),
        hub,
        _redis: None,
    }
}

async fn redis() -> Backend {
    let server = TestRedis::start().await;
    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::new(metrics.clone()));
    let c = Config {
        redis_prefix: unique_prefix(),
        ..config()
    };
    let backend = RedisBackend::connect(&c, &server.url(), hub.clone(), metrics, "conf".into())
        .await
        .expect("connect");
    Backend {
        bus: backend.clone(),
        presence: backend,
        hub,
        _redis: Some(server),
    }
}

fn room(name: &str) -> RoomId {
    RoomId::new(name).expect("room")
}

fn user(name: &str) -> UserId {
    UserId::new(name).expect("user")
}

fn message(r: &str, data: Value) -> Event {
    Event::Message {
        room: room(r),
        from: user("alice"),
        name: "Alice".into(),
        data,
        seq: 0,
        ts: 1,
        skip: None,
    }
}

/// A local session in the hub whose queue the test reads.
fn listener(
    b: &Backend,
    id: &str,
    who: &str,
) -> (Arc<SessionHandle>, mpsc::Receiver<Arc<Delivery>>) {
    let (tx, rx) = mpsc::channel(64);
    let handle = SessionHandle::new(id.into(), user(who), who, tx);
    b.hub.add_session(&handle);
    (handle, rx)
}

async fn next(rx: &mut mpsc::Receiver<Arc<Delivery>>) -> Value {
    let d = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("delivery in time")
        .expect("open");
    serde_json::from_str(d.frame.as_str()).expect("json")
}

async fn bus_suite(b: Backend) {
    let lobby = Topic::Room(room("lobby"));
    let (h, mut rx) = listener(&b, "s1", "bob");
    b.hub.join(&room("lobby"), &h);
    b.bus.subscribe(&lobby).await.expect("subscribe");

    // Seq starts at 1 and grows; delivery order is seq order.
    for i in 1..=8u64 {
        let seq = b
            .bus
            .publish_logged(&lobby, message("lobby", json!(i)))
            .await
            .expect("publish");
        assert_eq!(seq, i);
    }
    for i in 1..=8u64 {
        let m = next(&mut rx).await;
        assert_eq!((m["seq"].as_u64(), m["data"].as_u64()), (Some(i), Some(i)));
    }

    // Replay: retention is 5, so seq 4..=8 are kept.
    let r = b.bus.replay(&lobby, 5, 100).await.expect("replay");
    assert!(r.complete);
    assert_eq!(r.head, 8);
    let seqs: Vec<u64> = r
        .events
        .iter()
        .map(|e| match e {
            Event::Message { seq, .. } => *seq,
            _ => 0,
        })
        .collect();
    assert_eq!(seqs, [6, 7, 8]);
    let r = b.bus.replay(&lobby, 8, 100).await.expect("replay");
    assert!(r.complete && r.events.is_empty());
    let r = b.bus.replay(&lobby, 1, 100).await.expect("replay");
    assert!(!r.complete, "seq 2 and 3 were trimmed");
    let r = b.bus.replay(&lobby, 5, 2).await.expect("replay");
    assert!(!r.complete, "capped");
    assert_eq!(r.events.len(), 2, "the newest two");
    let r = b.bus.replay(&lobby, 99, 10).await.expect("replay");
    assert!(!r.complete && r.events.is_empty());
    assert_eq!(r.head, 8);
    let r = b
        .bus
        .replay(&Topic::Room(room("empty")), 0, 10)
        .await
        .expect("replay");
    assert!(r.complete && r.events.is_empty() && r.head == 0);

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
    assert_eq!(next(&mut rx).await["type"], "member.renamed");
    b.bus.unsubscribe(&lobby).await.expect("unsubscribe");
    b.hub.leave(&room("lobby"), &h);
    b.bus
        .publish_logged(&lobby, message("lobby", json!("late")))
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(rx.try_recv().is_err(), "nothing after leaving");

    // Direct messages: logged per user, delivery watermark only rises.
    let dave = user("dave");
    let inbox = Topic::User(dave.clone());
    for i in 1..=3 {
        let ev = Event::Direct {
            to: dave.clone(),
            from: user("alice"),
            name: "A".into(),
            data: json!(i),
            seq: 0,
            ts: 1,
        };
        assert_eq!(b.bus.publish_logged(&inbox, ev).await.expect("dm"), i);
    }
    assert_eq!(b.bus.delivered(&dave).await.expect("watermark"), 0);
    b.bus.mark_delivered(&dave, 2).await.expect("mark");
    b.bus.mark_delivered(&dave, 1).await.expect("mark");
    assert_eq!(b.bus.delivered(&dave).await.expect("watermark"), 2);
    let r = b.bus.replay(&inbox, 2, 10).await.expect("replay");
    assert_eq!(r.events.len(), 1);
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

    p.disconnect(&alice, "a1").await.expect("disconnect");
    assert_eq!(p.session_count(&alice).await.expect("count"), 1);
    p.disconnect(&alice, "a2").await.expect("disconnect");
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
