//! Clients that never read: the outbound queue is bounded in bytes, the session is cut
//! well before the write timeout, and the 4009 close reaches a client that reads again.

use super::raw::{Got, RawWs};
use super::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CAP: usize = 256 * 1024;

async fn busy_server() -> TestServer {
    TestServer::with(|c| {
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
        c.max_outbound_bytes = CAP;
        c.outbound_queue = 1_000_000;
        // Far longer than the test may take: the byte cap must act, not the timeout.
        c.write_timeout = Duration::from_secs(30);
        c.idle_timeout = Duration::from_secs(60);
    })
    .await
}

/// Publishes 16 KB messages to `room` until some session is closed as a slow consumer.
async fn flood_until_cut(server: &TestServer, room: &str) -> Duration {
    let started = Instant::now();
    let mut publisher = server.ws("publisher").await;
    publisher
        .request(json!({"type": "join", "room": room}))
        .await;
    let data = "x".repeat(16 * 1024);
    for i in 0..4000 {
        if server.gw.metrics.slow_consumer_closes.get() > 0 {
            return started.elapsed();
        }
        publisher
            .send(json!({"type": "publish", "room": room, "data": data, "echo": false}))
            .await;
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    until("a slow consumer close", WAIT, async || {
        (server.gw.metrics.slow_consumer_closes.get() > 0)
            .then_some(())
            .ok_or_default()
    })
    .await;
    started.elapsed()
}

trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

#[tokio::test]
async fn ws_client_that_stops_reading_gets_4009_when_it_reads_again() {
    let log = ErrorLog::capture();
    let server = busy_server().await;
    let mut slow = RawWs::login(server.http, "slow").await;
    slow.text(r#"{"type":"join","room":"busy","id":1}"#).await;
    assert!(matches!(slow.next().await, Got::Text(v) if v["type"] == "ok"));
    let took = flood_until_cut(&server, "busy").await;
    assert!(took < Duration::from_secs(10), "cut after {took:?}");
    let (code, texts) = slow.close_code().await;
    assert_eq!(code, Some(4009), "after {} messages", texts.len());
    until("the queue gauges back at zero", WAIT, async || {
        let m = &server.gw.metrics;
        let left = (m.outbound_queued_bytes.get(), m.outbound_queued.get());
        (left == (0, 0)).then_some(()).ok_or(format!("{left:?}"))
    })
    .await;
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn tcp_client_that_stops_reading_gets_4009_when_it_reads_again() {
    let log = ErrorLog::capture();
    let server = busy_server().await;
    let stream = TcpStream::connect(server.tcp).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let login = json!({"type": "login", "token": token("slow")});
    write
        .write_all(
            format!("{login}\n{{\"type\":\"join\",\"room\":\"busy\",\"id\":1}}\n").as_bytes(),
        )
        .await
        .expect("write");
    for _ in 0..2 {
        let line = tokio::time::timeout(WAIT, lines.next_line()).await;
        assert!(matches!(line, Ok(Ok(Some(_)))), "{line:?}");
    }
    flood_until_cut(&server, "busy").await;
    let mut seen = 0;
    let close = loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the close in time")
            .expect("read")
            .expect("a close line before EOF");
        let frame: Value = serde_json::from_str(&line).expect("json");
        if frame["type"] == "close" {
            break frame;
        }
        seen += 1;
    };
    assert_eq!(close["code"], 4009, "after {seen} frames: {close}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn client_that_never_reads_is_cut_within_the_close_deadline() {
    let log = ErrorLog::capture();
    let server = busy_server().await;
    let mut slow = RawWs::login(server.http, "slow").await;
    slow.text(r#"{"type":"join","room":"busy","id":1}"#).await;
    assert!(matches!(slow.next().await, Got::Text(v) if v["type"] == "ok"));
    flood_until_cut(&server, "busy").await;
    let cut = Instant::now();
    // Never reads again: the session must still end (close deadline 2 s), not hold its
    // memory until the 30 s write timeout.
    until(
        "the slow session gone",
        Duration::from_secs(5),
        async || {
            let users = server.gw.hub.session_count();
            (users == 1)
                .then_some(())
                .ok_or(format!("{users} sessions"))
        },
    )
    .await;
    assert!(
        cut.elapsed() < Duration::from_secs(4),
        "{:?}",
        cut.elapsed()
    );
    assert!(server.gw.metrics.outbound_queued_bytes.get() <= CAP as i64);
    still_serving(&server).await;
    log.assert_none();
    drop(slow);
}
