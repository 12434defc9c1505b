//! The "who comes online" feed: opt-in, for everyone or a list, coalesced per interval,
//! capped per frame, and across replicas.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Collects `online.changes` frames for `wait`; returns (online users, offline users, frames).
async fn changes(c: &mut Client, wait: Duration) -> (Vec<String>, Vec<String>, usize, u64) {
    let (mut on, mut off, mut frames, mut dropped) = (Vec::new(), Vec::new(), 0, 0);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.next_within(left).await {
            Some(Seen::Frame(v)) if v["type"] == "online.changes" => {
                frames += 1;
                dropped += v["dropped"].as_u64().expect("dropped");
                for m in v["online"].as_array().expect("online") {
                    on.push(m["user"].as_str().expect("user").to_owned());
                }
                for u in v["offline"].as_array().expect("offline") {
                    off.push(u.as_str().expect("user").to_owned());
                }
            }
            Some(Seen::Frame(_)) => {}
            _ => return (on, off, frames, dropped),
        }
    }
}

fn fast(c: &mut switchboard::config::Config) {
    c.online_feed_interval = Duration::from_millis(200);
}

#[tokio::test]
async fn watchers_hear_who_comes_and_goes() {
    let s = TestServer::with(fast).await;
    let mut all = s.ws("watcher").await;
    let ok = all
        .request(json!({"type": "online.watch", "all": true}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let mut friend = s.ws("friendly").await;
    let ok = friend
        .request(json!({"type": "online.watch", "users": ["bob"]}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");

    let bob = s.tcp("bob").await;
    let dave = s.ws("dave").await;
    let (on, off, _, _) = changes(&mut all, Duration::from_millis(600)).await;
    assert_eq!((on.len(), off.len()), (3, 0), "{on:?}");
    assert!(on.contains(&"bob".to_owned()) && on.contains(&"dave".to_owned()));
    // The list watch sees bob only.
    let (on, _, _, _) = changes(&mut friend, Duration::from_millis(100)).await;
    assert_eq!(on, vec!["bob".to_owned()]);

    // A second device is no news; the last one leaving is.
    let bob2 = s.ws("bob").await;
    drop(bob);
    let (on, off, frames, _) = changes(&mut all, Duration::from_millis(600)).await;
    assert_eq!((on, off, frames), (vec![], vec![], 0));
    drop(bob2);
    drop(dave);
    let (_, off, _, _) = changes(&mut all, Duration::from_millis(600)).await;
    assert!(off.contains(&"bob".to_owned()) && off.contains(&"dave".to_owned()));
    let (_, off, _, _) = changes(&mut friend, Duration::from_millis(100)).await;
    assert_eq!(off, vec!["bob".to_owned()]);

    // After unwatch, nothing more.
    let ok = all.request(json!({"type": "online.unwatch"})).await;
    assert_eq!(ok["type"], "ok");
    let _eve = s.ws("eve").await;
    let (on, _, frames, _) = changes(&mut all, Duration::from_millis(500)).await;
    assert_eq!((on.len(), frames), (0, 0));
}

#[tokio::test]
async fn a_login_storm_is_coalesced_and_capped() {
    let s = TestServer::with(|c| {
        c.online_feed_interval = Duration::from_millis(300);
        c.online_feed_batch = 20;
    })
    .await;
    let mut w = s.ws("watcher").await;
    w.request(json!({"type": "online.watch", "all": true}))
        .await;
    let mut crowd = Vec::new();
    for i in 0..50 {
        crowd.push(s.tcp(&format!("u{i}")).await);
    }
    let (on, _, frames, dropped) = changes(&mut w, Duration::from_millis(1200)).await;
    // 50 logins cost a few frames (one per interval), each listing at most 20 users;
    // the rest are counted.
    assert!(frames <= 10, "{frames} frames");
    assert_eq!(
        on.len() as u64 + dropped,
        50,
        "{} listed, {dropped} dropped",
        on.len()
    );
    assert!(on.len() >= 20, "{} listed", on.len());
}

#[tokio::test]
async fn bad_watch_requests_are_refused() {
    let s = TestServer::with(|c| c.online_watch_limit = 3).await;
    let mut c = s.ws("alice").await;
    let cases: [(Value, &str); 4] = [
        (json!({"type": "online.watch"}), "bad_request"),
        (
            json!({"type": "online.watch", "all": true, "users": ["bob"]}),
            "bad_request",
        ),
        (
            json!({"type": "online.watch", "users": ["a", "b", "c", "d"]}),
            "too_large",
        ),
        (
            json!({"type": "online.watch", "users": ["not a valid id!"]}),
            "bad_request",
        ),
    ];
    for (frame, code) in cases {
        let reply = c.request(frame.clone()).await;
        assert_eq!(reply["code"], code, "{frame} -> {reply}");
    }
    assert_eq!(c.request(json!({"type": "ping"})).await["type"], "pong");
}

#[tokio::test]
async fn the_feed_crosses_replicas() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let setup = |c: &mut switchboard::config::Config| {
        on_redis(&redis, &prefix)(c);
        fast(c);
    };
    let a = TestServer::with(setup).await;
    let b = TestServer::with(setup).await;
    let mut w = a.ws("watcher").await;
    w.request(json!({"type": "online.watch", "users": ["carol"]}))
        .await;
    let carol = b.tcp("carol").await;
    let (on, _, _, _) = changes(&mut w, Duration::from_secs(2)).await;
    assert_eq!(on, vec!["carol".to_owned()]);
    drop(carol);
    let (_, off, _, _) = changes(&mut w, Duration::from_secs(2)).await;
    assert_eq!(off, vec!["carol".to_owned()]);
}

#[tokio::test]
async fn users_of_a_killed_replica_are_announced_offline_within_the_ttl() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let survivor = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        c.presence_ttl = Duration::from_secs(3);
        c.online_feed_interval = Duration::from_millis(100);
    })
    .await;
    wait_ready(&survivor).await;
    let mut watcher = survivor.ws("watcher").await;
    watcher
        .request(json!({"type": "online.watch", "all": true}))
        .await;
    let mut victim = gateway_process(&redis, &prefix, &[("SWITCHBOARD_PRESENCE_TTL", "3s")]);
    let mut ghost = switchboard::client::Client::connect(&format!("ws://{}/ws", victim.addr))
        .await
        .expect("connect victim");
    ghost.login(&token("ghost")).await.expect("welcome");
    let (on, _, _, _) = changes(&mut watcher, Duration::from_millis(800)).await;
    assert_eq!(on, ["ghost"]);

    victim.child.kill().expect("kill -9");
    let _ = victim.child.wait();
    let killed = std::time::Instant::now();
    // Nobody logs the ghost out; the presence TTL runs out and a survivor says so.
    let off = loop {
        let (_, off, _, _) = changes(&mut watcher, Duration::from_millis(500)).await;
        if !off.is_empty() || killed.elapsed() > Duration::from_secs(8) {
            break off;
        }
    };
    assert_eq!(
        off,
        ["ghost"],
        "announced once, after {:?}",
        killed.elapsed()
    );
    let who = watcher.request(json!({"type": "who"})).await;
    assert_eq!(who["count"], 1, "{who}");
}
