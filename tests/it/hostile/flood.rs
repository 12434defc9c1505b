//! Floods: WebSocket pings and pongs (before and after login), frames over TCP and
//! fragment storms.

use super::raw::{CONTINUATION, Got, PING, RawWs, TEXT};
use super::*;

/// `count` copies of one frame written at once.
fn many(first: u8, payload: &[u8], count: usize) -> Vec<u8> {
    RawWs::encode(first, payload).repeat(count)
}

/// Reads until the close: its code, the pongs and the text frames before it.
async fn until_close(ws: &mut RawWs) -> (Option<u16>, usize, Vec<Value>) {
    let (mut pongs, mut texts) = (0, Vec::new());
    loop {
        match ws.next().await {
            Got::Pong => pongs += 1,
            Got::Ping => {}
            Got::Text(v) => texts.push(v),
            Got::Close(code) => return (code, pongs, texts),
            Got::Eof => panic!("no close frame; {pongs} pongs, {texts:?}"),
        }
    }
}

#[tokio::test]
async fn ws_ping_flood_after_login_closes_4008() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    ws.raw(&many(0x80 | PING, b"p", 50_000)).await;
    let (code, pongs, texts) = until_close(&mut ws).await;
    assert_eq!(code, Some(4008));
    // burst 100 + abuse 200 (+ a little refill): far from 50,000.
    assert!((300..400).contains(&pongs), "{pongs} pongs");
    assert_eq!(texts.len(), 1, "{texts:?}");
    is_error(&texts[0], "rate_limited");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_pong_flood_closes_4008() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    ws.raw(&many(0x80 | 0xA, b"", 5_000)).await;
    let (code, pongs, _) = until_close(&mut ws).await;
    assert_eq!(code, Some(4008));
    assert_eq!(pongs, 0);
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_ping_flood_before_login_closes_4008() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::connect(server.http).await;
    ws.raw(&many(0x80 | PING, b"", 5_000)).await;
    let (code, pongs, texts) = until_close(&mut ws).await;
    assert_eq!(code, Some(4008));
    assert!(pongs <= 110, "{pongs} pongs before login");
    is_error(&texts[0], "rate_limited");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn tcp_frame_flood_closes_4008() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.tcp("mallory").await;
    c.send_bytes("{\"type\":\"ping\"}\n".repeat(2_000).as_bytes())
        .await;
    let mut limited = 0;
    let code = loop {
        match c.next_within(WAIT).await {
            Some(Seen::Frame(f)) if f["code"] == "rate_limited" => limited += 1,
            Some(Seen::Frame(_)) => {}
            Some(Seen::Closed(code)) => break code,
            None => panic!("no close"),
        }
    };
    assert_eq!(code, Some(4008));
    assert!(limited >= 200, "{limited}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_fragment_storm_is_one_frame() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    let frame = br#"{"type":"ping","id":"storm"}"#;
    let mut bytes = RawWs::encode(TEXT, &frame[..1]);
    bytes.extend(many(CONTINUATION, b"", 50_000));
    bytes.extend(RawWs::encode(0x80 | CONTINUATION, &frame[1..]));
    ws.raw(&bytes).await;
    match ws.next().await {
        Got::Text(v) => assert_eq!(v["id"], "storm", "{v}"),
        other => panic!("expected the pong, got {other:?}"),
    }
    still_serving(&server).await;
    log.assert_none();
}
