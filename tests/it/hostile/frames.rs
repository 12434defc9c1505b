//! Framing and parsing: bad bytes, bad WebSocket frames and bad JSON.

use super::raw::{BINARY, CONTINUATION, PING, RawWs, TEXT};
use super::*;

/// A logged-in raw WebSocket sends `bytes` as one frame with header byte `first`; the
/// server must close with `code`, after the error frames `errors` (codes), if any.
async fn ws_closes(first: u8, payload: &[u8], code: u16, errors: &[&str]) {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    ws.raw(&RawWs::encode(first, payload)).await;
    let (got, texts) = ws.close_code().await;
    assert_eq!(got, Some(code), "frames before the close: {texts:?}");
    let codes: Vec<&str> = texts.iter().filter_map(|t| t["code"].as_str()).collect();
    assert_eq!(codes, errors, "{texts:?}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_invalid_utf8_text_closes_1007() {
    ws_closes(
        0x80 | TEXT,
        b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}",
        1007,
        &["bad_request"],
    )
    .await;
}

#[tokio::test]
async fn ws_rsv1_closes_1002() {
    ws_closes(0x80 | 0x40 | TEXT, br#"{"type":"ping"}"#, 1002, &[]).await;
}

#[tokio::test]
async fn ws_rsv2_rsv3_close_1002() {
    ws_closes(0x80 | 0x30 | TEXT, br#"{"type":"ping"}"#, 1002, &[]).await;
}

#[tokio::test]
async fn ws_reserved_data_opcode_closes_1002() {
    ws_closes(0x80 | 0x3, br#"{"type":"ping"}"#, 1002, &[]).await;
}

#[tokio::test]
async fn ws_reserved_control_opcode_closes_1002() {
    ws_closes(0x80 | 0xB, b"", 1002, &[]).await;
}

#[tokio::test]
async fn ws_fragmented_ping_closes_1002() {
    ws_closes(PING, b"x", 1002, &[]).await;
}

#[tokio::test]
async fn ws_stray_continuation_closes_1002() {
    ws_closes(0x80 | CONTINUATION, br#"{"type":"ping"}"#, 1002, &[]).await;
}

#[tokio::test]
async fn ws_unmasked_frame_closes_1002() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    ws.raw(&RawWs::encode_masked(
        0x80 | TEXT,
        br#"{"type":"ping"}"#,
        false,
    ))
    .await;
    assert_eq!(ws.close_code().await.0, Some(1002));
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_huge_frame_closes_1009() {
    let server_limit = 1024;
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.max_frame_bytes = server_limit).await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    ws.text(&"x".repeat(server_limit * 5)).await;
    let (code, texts) = ws.close_code().await;
    assert_eq!(code, Some(1009));
    is_error(&texts[0], "too_large");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_fragments_past_the_hard_limit_close_1009() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.max_frame_bytes = 1024).await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    ws.frame(false, 0, TEXT, b"[").await;
    for _ in 0..100 {
        ws.frame(false, 0, CONTINUATION, &[b' '; 100]).await;
    }
    let (code, texts) = ws.close_code().await;
    assert_eq!(code, Some(1009), "{texts:?}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_many_small_fragments_are_one_message() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    let frame = br#"{"type":"ping","id":"frag"}"#;
    ws.frame(false, 0, TEXT, &frame[..1]).await;
    for b in &frame[1..frame.len() - 1] {
        ws.frame(false, 0, CONTINUATION, &[*b]).await;
    }
    ws.frame(true, 0, CONTINUATION, &frame[frame.len() - 1..])
        .await;
    match ws.next().await {
        super::raw::Got::Text(v) => assert_eq!(v["id"], "frag", "{v}"),
        other => panic!("expected the pong, got {other:?}"),
    }
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_binary_not_utf8_is_bad_request_and_stays_open() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.ws("mallory").await;
    c.send_bytes(b"\xc3\x28 not utf-8").await;
    expect_error(&mut c, "bad_request").await;
    let pong = c.request(json!({"type": "ping", "id": 1})).await;
    assert_eq!(pong["type"], "pong");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_binary_json_is_served_like_text() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    ws.frame(true, 0, BINARY, br#"{"type":"ping","id":"b"}"#)
        .await;
    match ws.next().await {
        super::raw::Got::Text(v) => assert_eq!(v["type"], "pong", "{v}"),
        other => panic!("expected the pong, got {other:?}"),
    }
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_oversize_message_under_the_hard_limit_keeps_the_session() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.max_frame_bytes = 1024).await;
    let mut c = server.ws("mallory").await;
    c.send_text(&"y".repeat(2000)).await;
    expect_error(&mut c, "too_large").await;
    assert_eq!(
        c.request(json!({"type": "ping", "id": 2})).await["type"],
        "pong"
    );
    log.assert_none();
    still_serving(&server).await;
}

#[tokio::test]
async fn tcp_invalid_utf8_is_bad_request_and_stays_open() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.tcp("mallory").await;
    c.send_bytes(b"{\"type\":\"ping\",\"x\":\"\xff\"}\n").await;
    expect_error(&mut c, "bad_request").await;
    assert_eq!(
        c.request(json!({"type": "ping", "id": 3})).await["type"],
        "pong"
    );
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn tcp_oversize_line_is_too_large_and_stays_open() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.max_frame_bytes = 1024).await;
    let mut c = server.tcp("mallory").await;
    let mut line = vec![b'z'; 100_000];
    line.push(b'\n');
    c.send_bytes(&line).await;
    expect_error(&mut c, "too_large").await;
    assert_eq!(
        c.request(json!({"type": "ping", "id": 4})).await["type"],
        "pong"
    );
    log.assert_none();
    still_serving(&server).await;
}

/// Each bad frame gets `bad_request` (echoing the id where one could be read) on both
/// transports, and the session goes on.
async fn bad_request_on_both(frame: &str, id: Option<Value>) {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    for mut c in [server.ws("mallory").await, server.tcp("mallory2").await] {
        c.send_text(frame).await;
        let err = expect_error(&mut c, "bad_request").await;
        assert_eq!(err.get("id").cloned(), id, "{err}");
        assert_eq!(
            c.request(json!({"type": "ping", "id": 5})).await["type"],
            "pong"
        );
    }
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn deep_json_nesting_is_bad_request() {
    let depth = 20_000;
    let frame = format!(
        r#"{{"type":"publish","room":"r","data":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    bad_request_on_both(&frame, None).await;
}

#[tokio::test]
async fn deep_nesting_in_the_id_is_bad_request() {
    let frame = format!(
        r#"{{"type":"ping","id":{}1{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    bad_request_on_both(&frame, None).await;
}

#[tokio::test]
async fn not_json_is_bad_request() {
    bad_request_on_both("hello there", None).await;
}

#[tokio::test]
async fn json_that_is_not_an_object_is_bad_request() {
    bad_request_on_both(r#"["type","ping"]"#, None).await;
    bad_request_on_both("42", None).await;
}

#[tokio::test]
async fn wrong_field_types_are_bad_request_with_the_id() {
    bad_request_on_both(r#"{"type":"join","room":5,"id":"w"}"#, Some(json!("w"))).await;
    // serde would read an integer tag as a variant index (7 = `who`).
    bad_request_on_both(r#"{"type":7,"id":"t"}"#, Some(json!("t"))).await;
    bad_request_on_both(r#"{"type":0,"token":"x","id":"l"}"#, Some(json!("l"))).await;
}

#[tokio::test]
async fn huge_numbers_are_bad_request() {
    bad_request_on_both(
        r#"{"type":"join","room":"r","since":18446744073709551616,"id":1}"#,
        Some(json!(1)),
    )
    .await;
    bad_request_on_both(
        r#"{"type":"join","room":"r","since":-1,"id":2}"#,
        Some(json!(2)),
    )
    .await;
    bad_request_on_both(r#"{"type":"who","limit":1e400,"id":3}"#, Some(json!(3))).await;
}

#[tokio::test]
async fn unknown_type_is_bad_request() {
    bad_request_on_both(r#"{"type":"sudo","id":"x"}"#, Some(json!("x"))).await;
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.ws("mallory").await;
    let ok = c
        .request(json!({"type": "join", "room": "r", "id": "u", "admin": true, "__proto__": {}}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn duplicate_request_ids_are_each_answered() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.ws("mallory").await;
    c.send(json!({"type": "ping", "id": "same"})).await;
    c.send(json!({"type": "join", "room": "", "id": "same"}))
        .await;
    c.send(json!({"type": "ping", "id": "same"})).await;
    let first = c.recv().await;
    let second = c.recv().await;
    let third = c.recv().await;
    assert_eq!(first["type"], "pong");
    is_error(&second, "bad_request");
    assert_eq!(second["id"], "same");
    assert_eq!(third["type"], "pong");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn login_again_is_bad_request() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.tcp("mallory").await;
    let err = c
        .request(json!({"type": "login", "token": token("mallory"), "id": 9}))
        .await;
    is_error(&err, "bad_request");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn garbage_before_login_closes_4001_on_both_transports() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::connect(server.http).await;
    ws.frame(true, 0, TEXT, b"\xff\xfe").await;
    let (code, texts) = ws.close_code().await;
    assert_eq!(code, Some(4001));
    is_error(&texts[0], "unauthorized");
    let mut tcp = server.tcp_raw().await;
    tcp.send_text(r#"{"type":"join","room":"r"}"#).await;
    expect_error(&mut tcp, "unauthorized").await;
    assert_eq!(tcp.closed().await, Some(4001));
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn since_far_in_the_future_still_delivers_new_messages() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.ws("mallory").await;
    let ok = c
        .request(json!({"type": "join", "room": "r", "since": u64::MAX, "id": 1}))
        .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    assert_eq!(ok["replayed"], 0, "{ok}");
    let mut other = server.ws("bob").await;
    other
        .request(json!({"type": "join", "room": "r", "id": 1}))
        .await;
    other
        .request(json!({"type": "publish", "room": "r", "data": "hi", "id": 2}))
        .await;
    let msg = c.recv_type("message").await;
    assert_eq!(
        msg["data"], "hi",
        "a cursor from the future hid a new message"
    );
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn since_far_in_the_past_replays_what_is_kept() {
    let log = ErrorLog::capture();
    let server = TestServer::with(|c| c.history_size = 3).await;
    let mut a = server.ws("alice").await;
    a.request(json!({"type": "join", "room": "r", "id": 0}))
        .await;
    for i in 0..6 {
        a.request(json!({"type": "publish", "room": "r", "data": i, "id": i + 1, "echo": false}))
            .await;
    }
    let mut c = server.ws("mallory").await;
    let ok = c
        .request(json!({"type": "join", "room": "r", "since": 0, "id": "p"}))
        .await;
    assert_eq!(ok["recovered"], false, "{ok}");
    assert_eq!(ok["replayed"], 3, "{ok}");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn ws_invalid_utf8_across_fragments_closes_1007() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut ws = RawWs::login(server.http, "mallory").await;
    // "é" is C3 A9: the message ends after the lead byte.
    ws.frame(false, 0, TEXT, b"{\"type\":\"ping\",\"x\":\"\xc3")
        .await;
    ws.frame(true, 0, CONTINUATION, b"\"}").await;
    let (code, texts) = ws.close_code().await;
    assert_eq!(code, Some(1007), "{texts:?}");
    is_error(&texts[0], "bad_request");
    still_serving(&server).await;
    log.assert_none();
}
