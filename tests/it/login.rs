//! First-frame login: success on both transports and every way it can fail.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;
use switchboard::auth;
use switchboard::config::{DuplicateLogin, JwtAlg};

#[tokio::test]
async fn ws_and_tcp_login_get_welcome() {
    let s = TestServer::spawn().await;
    let mut ws = s.ws_raw().await;
    let welcome = ws.login(&token("alice")).await;
    assert_eq!(welcome["user"], "alice");
    assert_eq!(welcome["name"], "alice name");
    assert_eq!(welcome["replica"], s.gw.replica.as_str());
    assert!(welcome["session"].as_str().is_some_and(|x| !x.is_empty()));
    assert_eq!(welcome["heartbeat_s"], 25);
    let mut tcp = s.tcp_raw().await;
    let welcome = tcp.login(&token("bob")).await;
    assert_eq!(welcome["user"], "bob");
    let pong = tcp.request(json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong");
}

async fn refused(s: &TestServer, token: &str) {
    for mut c in [s.ws_raw().await, s.tcp_raw().await] {
        c.send(json!({"type": "login", "token": token, "id": 1}))
            .await;
        let err = c.recv().await;
        assert_eq!(err["type"], "error", "{err}");
        assert_eq!(err["code"], "unauthorized", "{err}");
        assert_eq!(err["id"], 1);
        assert!(!err["message"].as_str().unwrap_or("").contains(token));
        assert_eq!(c.closed().await, Some(4001));
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_with_4001() {
    let s = TestServer::spawn().await;
    // Wrong secret.
    let wrong = auth::sign_hmac(JwtAlg::Hs256, b"another-secret", &claims("a")).expect("sign");
    refused(&s, &wrong).await;
    // Expired beyond leeway.
    let mut c = claims("a");
    c.exp = switchboard::clock::unix_now() - 3600;
    refused(&s, &sign(&c)).await;
    // Wrong algorithm (HS512 while HS256 is configured).
    let hs512 = auth::sign_hmac(JwtAlg::Hs512, SECRET.as_bytes(), &claims("a")).expect("sign");
    refused(&s, &hs512).await;
    // alg:none, unsigned.
    let b64 = |v: serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(json!({"sub": "a", "exp": switchboard::clock::unix_now() + 60}))
    );
    refused(&s, &none).await;
    // Garbage and a bad subject.
    refused(&s, "not-a-jwt").await;
    let mut c = claims("a");
    c.sub = "has space".into();
    refused(&s, &sign(&c)).await;
}

#[tokio::test]
async fn first_frame_must_be_login() {
    let s = TestServer::spawn().await;
    for mut c in [s.ws_raw().await, s.tcp_raw().await] {
        c.send(json!({"type": "join", "room": "lobby"})).await;
        let err = c.recv().await;
        assert_eq!(err["code"], "unauthorized");
        assert_eq!(c.closed().await, Some(4001));
    }
    let mut c = s.ws_raw().await;
    c.send_text("{not json").await;
    assert_eq!(c.recv().await["code"], "unauthorized");
    assert_eq!(c.closed().await, Some(4001));
}

#[tokio::test]
async fn login_timeout_closes_with_4002() {
    let s = TestServer::with(|c| c.login_timeout = Duration::from_millis(200)).await;
    for mut c in [s.ws_raw().await, s.tcp_raw().await] {
        let err = c.recv().await;
        assert_eq!(err["code"], "unauthorized");
        assert_eq!(err["message"], "login timeout");
        assert_eq!(c.closed().await, Some(4002));
    }
}

#[tokio::test]
async fn issuer_and_audience_are_enforced() {
    let s = TestServer::with(|c| {
        c.jwt_issuer = Some("auth.example".into());
        c.jwt_audience = Some("games".into());
    })
    .await;
    refused(&s, &token("a")).await;
    let mut good = claims("a");
    good.iss = Some("auth.example".into());
    good.aud = Some("games".into());
    s.ws_raw().await.login(&sign(&good)).await;
    good.aud = Some("other".into());
    refused(&s, &sign(&good)).await;
    // A configured audience is required, not merely checked when present.
    good.aud = None;
    refused(&s, &sign(&good)).await;
    // Not valid before a future nbf: signed by hand since Claims has no nbf.
    let mut early = serde_json::to_value(claims("a")).expect("json");
    early["iss"] = json!("auth.example");
    early["aud"] = json!("games");
    early["nbf"] = json!(switchboard::clock::unix_now() + 3600);
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    refused(
        &s,
        &jsonwebtoken::encode(&header, &early, &key).expect("sign"),
    )
    .await;
}

#[tokio::test]
async fn duplicate_login_multi_keeps_both() {
    let s = TestServer::spawn().await;
    let mut a1 = s.ws("alice").await;
    let mut a2 = s.tcp("alice").await;
    let who = a1.request(json!({"type": "who"})).await;
    assert_eq!(who["count"], 1);
    a2.request(json!({"type": "ping"})).await;
    a1.request(json!({"type": "ping"})).await;
}

#[tokio::test]
async fn duplicate_login_reject_refuses_the_new_one() {
    let s = TestServer::with(|c| c.duplicate_login = DuplicateLogin::Reject).await;
    let mut a1 = s.ws("alice").await;
    let mut a2 = s.ws_raw().await;
    a2.send(json!({"type": "login", "token": token("alice"), "id": "L"}))
        .await;
    let err = a2.recv().await;
    assert_eq!(err["code"], "conflict", "{err}");
    assert_eq!(err["id"], "L");
    assert_eq!(a2.closed().await, Some(4005));
    a1.request(json!({"type": "ping"})).await;
    // Once the first session is gone, the user may log in again.
    drop(a1);
    let s2 = &s;
    eventually("old session gone", || s2.gw.hub.session_count() == 0).await;
    s.ws("alice").await;
}

#[tokio::test]
async fn duplicate_login_kick_closes_the_old_one() {
    let s = TestServer::with(|c| c.duplicate_login = DuplicateLogin::Kick).await;
    let mut old = s.ws("alice").await;
    let mut new = s.tcp("alice").await;
    assert_eq!(old.closed().await, Some(4003));
    new.request(json!({"type": "ping"})).await;
}
