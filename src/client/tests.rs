//! The client against scripted fake servers on loopback (no gateway): reply matching,
//! heartbeats, close codes and timeouts on both transports.

use super::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(5);

/// A fake TCP server: runs `script` on the first connection; returns the address.
async fn tcp_server<F, Fut>(script: F) -> (String, tokio::task::JoinHandle<()>)
where
    F: FnOnce(BufReader<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        script(BufReader::new(stream)).await;
    });
    (format!("tcp://{addr}"), task)
}

async fn read_json(server: &mut BufReader<TcpStream>) -> Value {
    let mut line = String::new();
    tokio::time::timeout(WAIT, server.read_line(&mut line))
        .await
        .expect("line in time")
        .expect("read");
    serde_json::from_str(&line).expect("client sent JSON")
}

async fn write_line(server: &mut BufReader<TcpStream>, line: &str) {
    let stream = server.get_mut();
    stream.write_all(line.as_bytes()).await.expect("write");
    stream.write_all(b"\n").await.expect("write");
}

fn bounded_options() -> Options {
    Options::default().timeout(Some(WAIT))
}

#[tokio::test]
async fn request_returns_its_reply_and_keeps_the_rest_in_order() {
    let (addr, server) = tcp_server(|mut s| async move {
        let req = read_json(&mut s).await;
        assert_eq!(req["type"], "presence");
        let id = req["id"].clone();
        write_line(&mut s, r#"{"type":"message","room":"a","seq":1}"#).await;
        write_line(&mut s, r#"{"type":"ok","id":"someone-else"}"#).await;
        let reply = json!({"type": "presence", "id": id, "room": "a", "members": [], "count": 0});
        write_line(&mut s, &reply.to_string()).await;
        write_line(&mut s, r#"{"type":"message","room":"a","seq":2}"#).await;
        // Keep the socket open until the client is done.
        let _ = read_json(&mut s).await;
    })
    .await;
    let mut c = Client::connect_with(&addr, bounded_options())
        .await
        .expect("connect");
    let reply = c.request(Request::presence("a")).await.expect("reply");
    assert_eq!(reply.kind(), "presence");
    assert_eq!(reply.id(), Some(&json!("r1")));
    let seqs: Vec<_> = [
        c.recv().await.expect("1"),
        c.recv().await.expect("2"),
        c.recv().await.expect("3"),
    ]
    .iter()
    .map(|f| (f.kind().to_owned(), f.value().expect("json")["seq"].clone()))
    .collect();
    assert_eq!(
        seqs,
        vec![
            ("message".into(), json!(1)),
            ("ok".into(), Value::Null),
            ("message".into(), json!(2)),
        ]
    );
    c.send(Request::Ping).await.expect("send");
    server.await.expect("server");
}

#[tokio::test]
async fn error_replies_are_rejections_for_request_ok() {
    let (addr, server) = tcp_server(|mut s| async move {
        let req = read_json(&mut s).await;
        let reply = json!({"type": "error", "id": req["id"], "code": "forbidden", "message": "no"});
        write_line(&mut s, &reply.to_string()).await;
        let _ = read_json(&mut s).await;
    })
    .await;
    let mut c = Client::connect_with(&addr, bounded_options())
        .await
        .expect("connect");
    let err = c
        .request_ok(Request::publish("staff", json!({})))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, ClientError::Rejected { code, .. } if code == "forbidden"),
        "{err}"
    );
    c.send(Request::Ping).await.expect("send");
    server.await.expect("server");
}

#[tokio::test]
async fn tcp_pings_are_answered_and_the_close_line_ends_the_connection() {
    let (addr, server) = tcp_server(|mut s| async move {
        write_line(&mut s, r#"{"type":"ping"}"#).await;
        assert_eq!(read_json(&mut s).await, json!({"type": "pong"}));
        write_line(&mut s, "not json").await;
        write_line(
            &mut s,
            r#"{"type":"close","code":4010,"reason":"idle timeout"}"#,
        )
        .await;
    })
    .await;
    let mut c = Client::connect_with(&addr, bounded_options())
        .await
        .expect("connect");
    assert!(matches!(c.recv().await, Err(ClientError::Protocol(_))));
    assert_eq!(c.closed().await.expect("closed"), Some(4010));
    assert!(c.is_closed());
    let again = c.recv().await.expect_err("still closed");
    assert_eq!(again.close_code(), Some(4010));
    server.await.expect("server");
}

#[tokio::test]
async fn without_auto_pong_pings_are_skipped_silently() {
    let (addr, server) = tcp_server(|mut s| async move {
        write_line(&mut s, r#"{"type":"ping"}"#).await;
        write_line(&mut s, r#"{"type":"direct","seq":1}"#).await;
        // The client's next line is its own ping, not a pong.
        assert_eq!(read_json(&mut s).await["type"], "ping");
    })
    .await;
    let options = bounded_options().auto_pong(false);
    let mut c = Client::connect_with(&addr, options).await.expect("connect");
    assert_eq!(c.recv().await.expect("frame").kind(), "direct");
    c.send(Request::Ping).await.expect("send");
    server.await.expect("server");
    assert_eq!(c.closed().await.expect("eof"), None);
}

#[tokio::test]
async fn login_refused_and_timeouts() {
    let (addr, server) = tcp_server(|mut s| async move {
        let login = read_json(&mut s).await;
        assert_eq!(login, json!({"type": "login", "token": "bad"}));
        write_line(
            &mut s,
            r#"{"type":"error","code":"unauthorized","message":"invalid token: malformed"}"#,
        )
        .await;
        write_line(
            &mut s,
            r#"{"type":"close","code":4001,"reason":"unauthorized"}"#,
        )
        .await;
    })
    .await;
    let mut c = Client::connect_with(&addr, bounded_options())
        .await
        .expect("connect");
    let err = c.login("bad").await.expect_err("refused");
    assert!(matches!(&err, ClientError::Rejected { code, .. } if code == "unauthorized"));
    assert_eq!(c.closed().await.expect("closed"), Some(4001));
    server.await.expect("server");

    let (addr, server) = tcp_server(|mut s| async move {
        let _ = read_json(&mut s).await;
    })
    .await;
    let mut c = Client::connect(&addr).await.expect("connect");
    let quiet = c.recv_timeout(Duration::from_millis(50)).await;
    assert!(matches!(quiet, Err(ClientError::Timeout)));
    c.send(json!({"type": "ping"})).await.expect("send");
    server.await.expect("server");
}

#[tokio::test]
async fn requests_must_be_objects_and_tcp_frames_one_line() {
    let (addr, server) = tcp_server(|mut s| async move {
        assert_eq!(read_json(&mut s).await["type"], "ping");
    })
    .await;
    let mut c = Client::connect(&addr).await.expect("connect");
    assert!(matches!(
        c.request(json!([1, 2])).await,
        Err(ClientError::InvalidFrame(_))
    ));
    assert!(matches!(
        c.send_text("{\n}").await,
        Err(ClientError::InvalidFrame(_))
    ));
    c.send(Request::Ping).await.expect("send");
    server.await.expect("server");
}

#[tokio::test]
async fn websocket_pings_close_codes_and_binary_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/ws", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(stream).await.expect("ws");
        ws.send(Message::Ping("hb".into())).await.expect("ping");
        ws.send(Message::binary(br#"{"type":"broadcast"}"#.to_vec()))
            .await
            .expect("send");
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(payload))) => {
                    assert_eq!(&payload[..], b"hb");
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("no pong: {other:?}"),
            }
        }
        let close = CloseFrame {
            code: CloseCode::from(1012),
            reason: "server draining".into(),
        };
        ws.send(Message::Close(Some(close))).await.expect("close");
    });
    let mut c = Client::connect_with(&url, bounded_options())
        .await
        .expect("connect");
    assert_eq!(c.recv().await.expect("frame").kind(), "broadcast");
    c.send(Request::Ping).await.expect("send");
    let err = c.recv().await.expect_err("closed");
    assert!(
        matches!(&err, ClientError::Closed { code: Some(1012), reason } if reason == "server draining"),
        "{err}"
    );
    server.await.expect("server");
}

#[tokio::test]
async fn connect_errors_name_the_target() {
    // A socket bound but never listening holds the port for the whole test, so no other
    // test can take it, and connecting to it is refused.
    let reserved = tokio::net::TcpSocket::new_v4().expect("socket");
    reserved
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = reserved.local_addr().expect("addr");
    for target in [format!("tcp://{addr}"), format!("ws://{addr}/ws")] {
        match Client::connect(&target).await {
            Err(ClientError::Connect { target: t, .. }) => {
                assert!(target.ends_with(&t) || t == target)
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    assert!(matches!(
        Client::connect_ws(&format!("tcp://{addr}")).await,
        Err(ClientError::Address(_))
    ));
    drop(reserved);
}
