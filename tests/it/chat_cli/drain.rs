//! `switchboard chat` across a gateway drain: the client reconnects by itself and
//! resumes its DMs and rooms, each missed message once.

use super::{Chat, named, switchboard};
use crate::harness::*;
use serde_json::json;
use std::process::Stdio;
use tokio::process::Child;

/// A gateway process on `port`, sharing `redis` under `prefix`; killed when dropped.
struct Gateway(Child);

impl Gateway {
    async fn start(port: u16, redis: &TestRedis, prefix: &str) -> Gateway {
        let child = switchboard()
            .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHBOARD_JWT_SECRET", SECRET)
            .env("SWITCHBOARD_REDIS_URL", redis.url())
            .env("SWITCHBOARD_REDIS_PREFIX", prefix)
            .env("SWITCHBOARD_DRAIN_DELAY", "0s")
            .env("SWITCHBOARD_DRAIN_TIMEOUT", "1s")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gateway");
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        until(
            &format!("the gateway on {port} to be ready"),
            WAIT,
            async || {
                if tokio::net::TcpStream::connect(addr).await.is_err() {
                    return Err("not listening".to_owned());
                }
                match http(addr, "GET", "/readyz", None, None).await {
                    (200, _) => Ok(()),
                    (status, body) => Err(format!("{status} {body}")),
                }
            },
        )
        .await;
        Gateway(child)
    }

    /// SIGTERM: the gateway drains (`reconnect` + close 1012) and exits.
    async fn drain(mut self) {
        let pid = self.0.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let exit = tokio::time::timeout(WAIT, self.0.wait())
            .await
            .expect("gateway exits after its drain")
            .expect("wait");
        assert!(exit.success(), "gateway exit {exit}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The chat client rides out a drain: its gateway stops, another starts on the same
/// address (sharing Redis, so history survives), and the client comes back by itself
/// with the DMs and room messages it missed, each once.
#[tokio::test]
async fn chat_reconnects_and_resumes_across_a_drain() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    // Bob stays on a second replica throughout.
    let other = TestServer::with(on_redis(&redis, &prefix)).await;
    let port = free_port();
    let first = Gateway::start(port, &redis, &prefix).await;
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mut alice = Chat::login(&url, &named("alice", "Alice"), &["--max-backoff", "300ms"]).await;
    alice.say("/join lobby").await;
    alice.expect("* you joined lobby").await;

    let mut bob = other.ws_raw().await;
    bob.login(&named("bob", "Bob")).await;
    bob.request(json!({"type": "join", "room": "lobby"})).await;
    alice.expect("* Bob (bob) joined lobby (2 here)").await;
    let say = |text: &str| json!({"type": "publish", "room": "lobby", "data": {"text": text}});
    let dm = |text: &str| json!({"type": "send", "to": "alice", "data": {"text": text}});
    assert_eq!(bob.request(say("one")).await["type"], "ok");
    alice.expect("[lobby] Bob: one").await;
    assert_eq!(bob.request(dm("before")).await["type"], "ok");
    alice.expect("DM from Bob: before").await;

    first.drain().await;
    alice
        .expect("* disconnected (server draining); reconnecting")
        .await;
    for frame in [say("two"), say("three"), dm("while away")] {
        assert_eq!(bob.request(frame).await["type"], "ok");
    }
    let _second = Gateway::start(port, &redis, &prefix).await;
    alice
        .expect("* reconnected (resumed lobby: 2 missed messages)")
        .await;
    alice.say("back").await;
    alice.expect("[lobby] Alice: back").await;
    // Bob's own echoes come first.
    loop {
        let seen = bob.recv_type("message").await;
        if seen["from"] == "alice" {
            assert_eq!(seen["data"]["text"], "back", "{seen}");
            break;
        }
    }

    let (status, lines) = alice.finish().await;
    assert!(status.success(), "exit {status}");
    assert_eq!(
        lines,
        [
            "* logged in as Alice (alice)",
            "* you joined lobby",
            "* Bob (bob) joined lobby (2 here)",
            "[lobby] Bob: one",
            "DM from Bob: before",
            "* disconnected (server draining); reconnecting",
            "DM from Bob: while away",
            "[lobby] Bob: two",
            "[lobby] Bob: three",
            "* reconnected (resumed lobby: 2 missed messages)",
            "[lobby] Alice: back",
        ]
    );
}
