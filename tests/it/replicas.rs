//! Several gateways sharing one Redis: every feature must work across replicas.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard::config::DuplicateLogin;

#[tokio::test]
async fn room_messages_cross_replicas_in_seq_order() {
    let (_redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.tcp("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    let joined = alice.recv_type("member.joined").await;
    assert_eq!(
        (joined["user"].clone(), joined["count"].clone()),
        (json!("bob"), json!(2))
    );
    // Both publish, interleaved, from different replicas.
    for i in 0..10 {
        alice
            .request(json!({"type": "publish", "room": "lobby", "data": format!("a{i}")}))
            .await;
        bob.request(json!({"type": "publish", "room": "lobby", "data": format!("b{i}")}))
            .await;
    }
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..20 {
        seen_a.push(alice.recv_type("message").await);
        seen_b.push(bob.recv_type("message").await);
    }
    let seqs = |v: &[Value]| {
        v.iter()
            .map(|m| m["seq"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    let expected: Vec<u64> = (1..=20).collect();
    assert_eq!(seqs(&seen_a), expected, "strictly increasing, no gap");
    assert_eq!(seqs(&seen_b), expected);
    let data = |v: &[Value]| v.iter().map(|m| m["data"].clone()).collect::<Vec<_>>();
    assert_eq!(data(&seen_a), data(&seen_b), "same order on both replicas");
}

#[tokio::test]
async fn direct_messages_reach_devices_on_every_replica_and_offline_once() {
    let (_redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let mut bob1 = r1.ws("bob").await;
    let mut bob2 = r2.tcp("bob").await;
    let seq = alice
        .request(json!({"type": "send", "to": "bob", "data": "hi"}))
        .await["seq"]
        .as_u64()
        .expect("seq");
    for bob in [&mut bob1, &mut bob2] {
        let d = bob.recv_type("direct").await;
        assert_eq!(
            (d["data"].clone(), d["seq"].as_u64()),
            (json!("hi"), Some(seq))
        );
    }
    // Offline user: messages kept, delivered once at login on the other replica.
    for i in 0..3 {
        alice
            .request(json!({"type": "send", "to": "carol", "data": i}))
            .await;
    }
    let mut carol = r2.ws("carol").await;
    for i in 0..3 {
        assert_eq!(carol.recv_type("direct").await["data"], i);
    }
    carol.quiet(Duration::from_millis(150)).await;
    drop(carol);
    let mut again = r1.ws("carol").await;
    again.quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn presence_who_rename_and_api_span_replicas() {
    let (_redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.ws("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    let p = alice
        .request(json!({"type": "presence", "room": "lobby"}))
        .await;
    assert_eq!(p["count"], 2, "{p}");
    let who = bob.request(json!({"type": "who"})).await;
    assert_eq!(who["count"], 2);
    bob.request(json!({"type": "rename", "name": "Bobby"}))
        .await;
    let ev = alice.recv_type("member.renamed").await;
    assert_eq!(ev["name"], "Bobby");
    let p = alice
        .request(json!({"type": "presence", "room": "lobby"}))
        .await;
    assert_eq!(p["members"][1]["name"], "Bobby");

    // HTTP API on either replica.
    let (status, _) = http(
        r2.http,
        "POST",
        "/api/v1/rooms/lobby/publish",
        Some(API_KEY),
        Some(r#"{"data":"from api"}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv_type("message").await["data"], "from api");
    let (status, body) = http(r1.http, "GET", "/api/v1/online", Some(API_KEY), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"count\":2"), "{body}");
    let (status, _) = http(
        r1.http,
        "POST",
        "/api/v1/broadcast",
        Some(API_KEY),
        Some(r#"{"data":1}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bob.recv_type("broadcast").await["data"], 1);
    let (status, _) = http(
        r1.http,
        "POST",
        "/api/v1/users/bob/disconnect",
        Some(API_KEY),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bob.closed().await, Some(4004));
    // Bob's departure reaches the other replica.
    assert_eq!(alice.recv_type("member.left").await["user"], "bob");
}

#[tokio::test]
async fn duplicate_login_policies_across_replicas() {
    let (_redis, r1, r2) = pair_with(|c| c.duplicate_login = DuplicateLogin::Kick).await;
    let mut old = r1.ws("alice").await;
    let mut new = r2.ws("alice").await;
    assert_eq!(old.closed().await, Some(4003));
    new.request(json!({"type": "ping"})).await;

    let (_redis, r1, r2) = pair_with(|c| c.duplicate_login = DuplicateLogin::Reject).await;
    let mut first = r1.ws("alice").await;
    let mut second = r2.ws_raw().await;
    second
        .send(json!({"type": "login", "token": token("alice")}))
        .await;
    assert_eq!(second.recv().await["code"], "conflict");
    assert_eq!(second.closed().await, Some(4005));
    first.request(json!({"type": "ping"})).await;
}

#[tokio::test]
async fn resume_on_another_replica_has_no_gap_and_no_duplicate() {
    let (_redis, r1, r2) = pair_with(|c| c.rate_limit = 1000.0).await;
    let mut publisher = r1.ws("pub").await;
    publisher
        .request(json!({"type": "join", "room": "feed"}))
        .await;
    let mut reader = r1.ws("reader").await;
    reader
        .request(json!({"type": "join", "room": "feed"}))
        .await;
    let total = 60u64;
    let task = tokio::spawn(async move {
        for i in 0..total {
            publisher
                .request(json!({"type": "publish", "room": "feed", "data": i, "echo": false}))
                .await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        publisher
    });
    // Read some, then drop the connection mid-stream.
    let mut last = 0;
    for _ in 0..10 {
        last = reader.recv_type("message").await["seq"]
            .as_u64()
            .expect("seq");
    }
    drop(reader);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut reader = r2.ws("reader").await;
    reader
        .send(json!({"type": "join", "room": "feed", "since": last, "id": "j"}))
        .await;
    let mut seqs = Vec::new();
    while seqs.len() < (total - last) as usize {
        let v = reader.recv().await;
        if v["type"] == "message" {
            seqs.push(v["seq"].as_u64().expect("seq"));
        } else if v["id"] == "j" {
            assert_eq!(v["recovered"], true, "{v}");
        }
    }
    let expected: Vec<u64> = (last + 1..=total).collect();
    assert_eq!(seqs, expected);
    let _publisher = task.await.expect("publisher");
    reader.quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn redis_outage_answers_unavailable_then_recovers() {
    let (mut redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.ws("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;

    redis.kill();
    // Not ready, and operations that need Redis answer unavailable quickly.
    readyz_becomes(&r1, 503).await;
    let started = Instant::now();
    let err = alice
        .request(json!({"type": "publish", "room": "lobby", "data": 1}))
        .await;
    assert_eq!(err["code"], "unavailable", "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "no hang");
    let (status, body) = http(
        r2.http,
        "POST",
        "/api/v1/rooms/lobby/publish",
        Some(API_KEY),
        Some(r#"{"data":1}"#),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    // Connections stay up meanwhile.
    assert_eq!(bob.request(json!({"type": "ping"})).await["type"], "pong");

    redis.restart().await;
    wait_ready(&r1).await;
    wait_ready(&r2).await;
    // Subscriptions were restored: traffic crosses replicas again without a restart.
    until("publish to recover", WAIT, async || {
        let ok = alice
            .request(json!({"type": "publish", "room": "lobby", "data": "back"}))
            .await;
        if ok["type"] == "ok" {
            Ok(())
        } else {
            Err(ok.to_string())
        }
    })
    .await;
    assert_eq!(bob.recv_type("message").await["data"], "back");
}

#[tokio::test]
async fn crashed_replica_vanishes_from_presence_within_ttl() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let survivor = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        c.presence_ttl = Duration::from_secs(3);
    })
    .await;
    wait_ready(&survivor).await;
    // The victim is a real process, so kill -9 leaves no chance for cleanup.
    let mut victim = gateway_process(&redis, &prefix, &[("SWITCHBOARD_PRESENCE_TTL", "3s")]);
    let mut ghost = switchboard::client::Client::connect(&format!("ws://{}/ws", victim.addr))
        .await
        .expect("connect victim");
    ghost.login(&token("ghost")).await.expect("welcome");
    ghost
        .request_ok(json!({"type": "join", "room": "lobby"}))
        .await
        .expect("join");
    let mut watcher = survivor.ws("watcher").await;
    until("the ghost to appear", WAIT, async || {
        let p = watcher
            .request(json!({"type": "presence", "room": "lobby"}))
            .await;
        if p["count"] == 1 {
            Ok(())
        } else {
            Err(p.to_string())
        }
    })
    .await;
    assert_eq!(watcher.request(json!({"type": "who"})).await["count"], 2);

    victim.child.kill().expect("kill -9");
    let _ = victim.child.wait();
    let killed = Instant::now();
    until("the ghost to vanish", Duration::from_secs(8), async || {
        let who = watcher.request(json!({"type": "who"})).await;
        let p = watcher
            .request(json!({"type": "presence", "room": "lobby"}))
            .await;
        if who["count"] == 1 && p["count"] == 0 {
            Ok(())
        } else {
            Err(format!("{who} {p}"))
        }
    })
    .await;
    assert!(
        killed.elapsed() <= Duration::from_secs(4),
        "gone within the ttl (+ refresh slack)"
    );
    drop(ghost);
}

#[tokio::test]
async fn redis_cluster_with_sharded_pubsub() {
    let cluster = TestRedisCluster::start().await;
    let prefix = unique_prefix();
    let url = cluster.url();
    let setup = |c: &mut switchboard::config::Config| {
        c.redis_url = Some(url.clone());
        c.redis_prefix = prefix.clone();
        c.redis_timeout = Duration::from_millis(1000);
        c.redis_probe_interval = Duration::from_millis(100);
    };
    let r1 = TestServer::with(setup).await;
    let r2 = TestServer::with(setup).await;
    wait_ready(&r1).await;
    wait_ready(&r2).await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.tcp("bob").await;
    // Several rooms, so several slots and shards are involved.
    for room in ["lobby", "r1", "r2", "r3"] {
        alice.request(json!({"type": "join", "room": room})).await;
        bob.request(json!({"type": "join", "room": room})).await;
    }
    for room in ["lobby", "r1", "r2", "r3"] {
        for i in 0..3 {
            let ok = alice
                .request(json!({"type": "publish", "room": room, "data": i, "echo": false}))
                .await;
            assert_eq!(ok["seq"], i + 1, "{ok}");
        }
    }
    for room in ["lobby", "r1", "r2", "r3"] {
        for i in 0..3u64 {
            let m = bob.recv_type("message").await;
            assert_eq!(
                (m["room"].as_str(), m["seq"].as_u64()),
                (Some(room), Some(i + 1))
            );
        }
    }
    bob.request(json!({"type": "send", "to": "alice", "data": "dm"}))
        .await;
    assert_eq!(alice.recv_type("direct").await["data"], "dm");
    let p = bob.request(json!({"type": "presence", "room": "r2"})).await;
    assert_eq!(p["count"], 2);
    // Readiness waits for a probe through every shard's pub/sub connection, not one.
    let (_, metrics) = http(r1.http, "GET", "/metrics", None, None).await;
    assert!(
        metrics.contains("switchboard_redis_probe_shards 3"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("probe"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(alice.request(json!({"type": "who"})).await["count"], 2);
    let (status, _) = http(
        r1.http,
        "POST",
        "/api/v1/broadcast",
        Some(API_KEY),
        Some(r#"{"data":"all"}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bob.recv_type("broadcast").await["data"], "all");
    // Resume works against the sharded log too.
    let mut carol = r2.ws("carol").await;
    let ok = carol
        .request(json!({"type": "join", "room": "r3", "since": 1}))
        .await;
    assert_eq!(
        (ok["recovered"].clone(), ok["replayed"].clone()),
        (json!(true), json!(2))
    );
}

#[tokio::test]
async fn lost_subscriptions_are_noticed_and_restored() {
    let (redis, r1, r2) = pair().await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.ws("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    // Drop every subscriber connection; command connections stay up.
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "client",
            "kill",
            "type",
            "pubsub",
        ])
        .output()
        .expect("redis-cli");
    assert!(out.status.success());
    // Traffic flows again without a restart, and the replicas are ready.
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    loop {
        n += 1;
        alice
            .request(json!({"type": "publish", "room": "lobby", "data": n}))
            .await;
        if let Some(Seen::Frame(m)) = bob.next_within(Duration::from_millis(200)).await
            && m["type"] == "message"
        {
            break;
        }
        assert!(Instant::now() < deadline, "subscriptions never came back");
    }
    wait_ready(&r1).await;
    wait_ready(&r2).await;
}

#[tokio::test]
async fn messages_lost_while_the_subscriber_reconnects_are_recovered() {
    let (redis, r1, r2) = pair_with(|c| c.rate_limit = 1000.0).await;
    let mut alice = r1.ws("alice").await;
    let mut bob = r2.ws("bob").await;
    alice
        .request(json!({"type": "join", "room": "lobby"}))
        .await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    let first = alice
        .request(json!({"type": "publish", "room": "lobby", "data": 0, "echo": false}))
        .await["seq"]
        .as_u64()
        .expect("seq");
    assert_eq!(bob.recv_type("message").await["seq"].as_u64(), Some(first));
    // Publish steadily while every subscriber connection is killed once.
    let kill_port = redis.port;
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        std::process::Command::new("redis-cli")
            .args([
                "-p",
                &kill_port.to_string(),
                "client",
                "kill",
                "type",
                "pubsub",
            ])
            .output()
            .expect("redis-cli")
    });
    for i in 1..=40 {
        alice
            .request(json!({"type": "publish", "room": "lobby", "data": i, "echo": false}))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killer.await.expect("killer");
    // One more after the reconnect reveals any gap, which is filled from the log.
    let last = until("publishing to recover", WAIT, async || {
        let ok = alice
            .request(json!({"type": "publish", "room": "lobby", "data": "end", "echo": false}))
            .await;
        ok["seq"].as_u64().ok_or_else(|| ok.to_string())
    })
    .await;
    let mut seqs = Vec::new();
    while seqs.last().copied() != Some(last) {
        seqs.push(bob.recv_type("message").await["seq"].as_u64().expect("seq"));
    }
    let expected: Vec<u64> = (first + 1..=last).collect();
    assert_eq!(seqs, expected, "no gap and no duplicate");
    eprintln!(
        "recovered from the log: {}",
        r2.gw.metrics.bus_recovered_messages.get()
    );
}

#[tokio::test]
async fn live_sessions_and_memberships_outlast_the_presence_ttl() {
    // Refreshed in batches (one script call per chunk): nothing may lapse meanwhile.
    let (_redis, r1, r2) = pair_with(|c| c.presence_ttl = Duration::from_secs(3)).await;
    let mut alice = r1.ws("alice").await;
    for room in ["lobby", "den"] {
        alice.request(json!({"type": "join", "room": room})).await;
    }
    let mut bob = r2.ws("bob").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for room in ["lobby", "den"] {
        let p = bob.request(json!({"type": "presence", "room": room})).await;
        assert_eq!(p["count"], 1, "{room}: {p}");
    }
    let who = bob.request(json!({"type": "who"})).await;
    assert_eq!(who["count"], 2, "{who}");
}

/// With one clean-up place (`SWITCHBOARD_MAX_TEARDOWNS=1`), forty sessions dropping at
/// once all leave: each waits its turn, none is forgotten, and the other replica sees
/// the room empty and the users offline.
#[tokio::test]
async fn sessions_dropping_at_once_all_clean_up_through_one_teardown_place() {
    let (_redis, r1, r2) = pair_with(|c| c.max_teardowns = 1).await;
    let mut watcher = r2.ws("watcher").await;
    watcher
        .request(json!({"type": "join", "room": "crowd"}))
        .await;
    let mut crowd = Vec::new();
    for i in 0..40 {
        let mut c = r1.ws(&format!("user{i}")).await;
        c.request(json!({"type": "join", "room": "crowd"})).await;
        crowd.push(c);
    }
    let p = watcher
        .request(json!({"type": "presence", "room": "crowd"}))
        .await;
    assert_eq!(p["count"], 41, "{p}");
    drop(crowd);
    until("the crowd to be gone", WAIT, async || {
        let p = watcher
            .request(json!({"type": "presence", "room": "crowd"}))
            .await;
        let who = watcher.request(json!({"type": "who"})).await;
        if p["count"] == 1 && who["count"] == 1 {
            Ok(())
        } else {
            Err(format!("presence {p}, who {who}"))
        }
    })
    .await;
    let (_, metrics) = http(r1.http, "GET", "/metrics", None, None).await;
    assert!(
        metrics.contains("switchboard_teardowns_waiting 0"),
        "{metrics}"
    );
}
