//! Token expiry while connected: close 4011 with a `token_expired` error when `exp`
//! passes, unless `refresh` brought a newer token of the same user; on both transports.

use crate::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard::auth::Claims;
use switchboard::clock::unix_now;

/// A token for `user` that expires `secs` from now.
fn expiring(user: &str, secs: u64) -> String {
    sign(&Claims {
        exp: unix_now() + secs,
        ..claims(user)
    })
}

async fn no_leeway() -> TestServer {
    TestServer::with(|c| c.jwt_leeway = Duration::ZERO).await
}

async fn expect_expired(c: &mut Client) {
    let err = c.recv_type("error").await;
    assert_eq!(err["code"], "token_expired", "{err}");
    assert_eq!(c.closed().await, Some(4011));
}

#[tokio::test]
async fn session_closes_with_4011_when_the_token_expires() {
    let s = no_leeway().await;
    let started = Instant::now();
    let mut ws = s.ws_raw().await;
    ws.login(&expiring("alice", 2)).await;
    let mut tcp = s.tcp_raw().await;
    tcp.login(&expiring("bob", 2)).await;
    // Still fine before exp.
    assert_eq!(
        ws.request(json!({"type": "ping", "id": 1})).await["type"],
        "pong"
    );
    expect_expired(&mut ws).await;
    expect_expired(&mut tcp).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
    assert!(took < Duration::from_millis(4500), "closed late: {took:?}");
    assert_eq!(s.gw.metrics.token_expiries.get(), 2);
}

#[tokio::test]
async fn leeway_is_added_before_closing() {
    let s = TestServer::with(|c| c.jwt_leeway = Duration::from_secs(2)).await;
    let mut ws = s.ws_raw().await;
    ws.login(&expiring("alice", 1)).await;
    // exp passes after about 1 s, the close comes only after exp + 2 s.
    ws.quiet(Duration::from_millis(1800)).await;
    expect_expired(&mut ws).await;
}

#[tokio::test]
async fn refresh_with_a_new_token_keeps_the_session() {
    let s = no_leeway().await;
    let mut ws = s.ws_raw().await;
    ws.login(&expiring("alice", 2)).await;
    let mut tcp = s.tcp_raw().await;
    tcp.login(&expiring("alice", 2)).await;
    for c in [&mut ws, &mut tcp] {
        let exp = unix_now() + 3600;
        let fresh = sign(&Claims {
            exp,
            ..claims("alice")
        });
        let ok = c
            .request(json!({"type": "refresh", "token": fresh, "id": "r"}))
            .await;
        assert_eq!(ok["type"], "ok", "{ok}");
        assert_eq!(ok["exp"], exp);
    }
    ws.quiet(Duration::from_millis(3000)).await;
    tcp.quiet(Duration::from_millis(100)).await;
    assert_eq!(
        ws.request(json!({"type": "ping", "id": 2})).await["type"],
        "pong"
    );
    assert_eq!(
        tcp.request(json!({"type": "ping", "id": 2})).await["type"],
        "pong"
    );
}

#[tokio::test]
async fn refresh_for_another_user_or_with_a_bad_token_is_refused() {
    let s = no_leeway().await;
    for mut c in [s.ws_raw().await, s.tcp_raw().await] {
        c.login(&expiring("alice", 2)).await;
        let other = c
            .request(json!({"type": "refresh", "token": expiring("mallory", 3600), "id": 1}))
            .await;
        assert_eq!(other["code"], "forbidden", "{other}");
        assert_eq!(other["message"], "token is for another user");
        let bad = c
            .request(json!({"type": "refresh", "token": "not-a-jwt", "id": 2}))
            .await;
        assert_eq!(bad["code"], "unauthorized", "{bad}");
        let expired = sign(&Claims {
            exp: unix_now() - 60,
            ..claims("alice")
        });
        let late = c
            .request(json!({"type": "refresh", "token": expired, "id": 3}))
            .await;
        assert_eq!(late["code"], "unauthorized", "{late}");
        // The session is kept with its old expiry, then closed at it.
        assert_eq!(
            c.request(json!({"type": "ping", "id": 4})).await["type"],
            "pong"
        );
        expect_expired(&mut c).await;
    }
    let refused = s.gw.metrics.render();
    assert!(refused.contains("switchboard_token_refreshes_total{result=\"other_user\"} 2"));
}

#[tokio::test]
async fn refresh_is_not_a_login() {
    let s = TestServer::spawn().await;
    let mut c = s.ws_raw().await;
    c.send(json!({"type": "refresh", "token": token("alice")}))
        .await;
    assert_eq!(c.recv().await["code"], "unauthorized");
    assert_eq!(c.closed().await, Some(4001));
}

#[tokio::test]
async fn the_rust_client_refreshes() {
    let s = no_leeway().await;
    let mut c = switchboard::client::Client::connect(&format!("tcp://{}", s.tcp))
        .await
        .expect("connect");
    c.login(&expiring("alice", 60)).await.expect("welcome");
    let exp = unix_now() + 7200;
    let fresh = sign(&Claims {
        exp,
        ..claims("alice")
    });
    let ok = c
        .request_ok(switchboard::client::Request::refresh(fresh))
        .await
        .expect("ok");
    let switchboard::client::ServerEvent::Ok(reply) = ok.event().expect("typed") else {
        panic!("not ok: {ok:?}");
    };
    assert_eq!(reply.exp, Some(exp));
}
