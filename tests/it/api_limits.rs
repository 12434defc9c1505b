//! HTTP API hardening: the body size limit, the per-request time limit and the API key
//! check's answers.

use crate::harness::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn code(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap_or_else(|e| panic!("JSON body ({e}): {body}"))
        ["code"]
        .clone()
}

fn body_of(bytes: usize) -> String {
    // {"data":"xxx"} is 11 bytes of framing.
    format!(r#"{{"data":"{}"}}"#, "x".repeat(bytes - 11))
}

#[tokio::test]
async fn body_limit_is_its_own_setting() {
    // Default 64 KiB, independent of the (smaller here) frame limit.
    let s = TestServer::with(|c| c.max_frame_bytes = 1024).await;
    let post = async |body: &str| {
        http(
            s.http,
            "POST",
            "/api/v1/broadcast",
            Some(API_KEY),
            Some(body),
        )
        .await
    };
    let (status, text) = post(&body_of(64 * 1024)).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = post(&body_of(64 * 1024 + 1)).await;
    assert_eq!((status, code(&text)), (413, "too_large".into()), "{text}");

    let small = TestServer::with(|c| c.api_max_body_bytes = 100).await;
    let (status, text) = http(
        small.http,
        "POST",
        "/api/v1/rooms/lobby/publish",
        Some(API_KEY),
        Some(&body_of(100)),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = http(
        small.http,
        "POST",
        "/api/v1/users/alice/send",
        Some(API_KEY),
        Some(&body_of(101)),
    )
    .await;
    assert_eq!((status, code(&text)), (413, "too_large".into()), "{text}");
    // Counted like any API answer.
    assert!(small.gw.metrics.render().contains(
        r#"switchboard_api_requests_total{route="/api/v1/users/{user}/send",status="4xx"} 1"#
    ));
}

#[tokio::test]
async fn a_stalled_backend_gets_503_within_the_api_timeout() {
    let redis = TestRedis::start().await;
    let s = TestServer::with(|c| {
        c.redis_url = Some(redis.url());
        c.redis_prefix = unique_prefix();
        c.redis_timeout = Duration::from_secs(10);
        c.api_timeout = Duration::from_millis(300);
    })
    .await;
    let publish = async || {
        http(
            s.http,
            "POST",
            "/api/v1/rooms/lobby/publish",
            Some(API_KEY),
            Some(r#"{"data":1}"#),
        )
        .await
    };
    until("a publish through Redis", WAIT, async || {
        match publish().await {
            (200, _) => Ok(()),
            (status, text) => Err(format!("{status} {text}")),
        }
    })
    .await;
    redis.pause();
    let started = Instant::now();
    let (status, text) = publish().await;
    let took = started.elapsed();
    redis.resume();
    assert_eq!((status, code(&text)), (503, "unavailable".into()), "{text}");
    assert!(text.contains("request timed out"), "{text}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    until("publishes after the stall", WAIT, async || {
        match publish().await {
            (200, _) => Ok(()),
            (status, text) => Err(format!("{status} {text}")),
        }
    })
    .await;
}

#[tokio::test]
async fn wrong_keys_of_any_length_are_refused_alike() {
    let s = TestServer::spawn().await;
    let mut near = API_KEY.to_owned();
    near.pop();
    near.push('X');
    for key in [
        "".to_owned(),
        "t".to_owned(),
        near,
        format!("{API_KEY}x"),
        API_KEY.to_uppercase(),
    ] {
        let (status, text) = http(s.http, "GET", "/api/v1/online", Some(&key), None).await;
        assert_eq!(
            (status, code(&text)),
            (401, "unauthorized".into()),
            "{key:?}"
        );
    }
    let (status, _) = http(s.http, "GET", "/api/v1/online", Some(API_KEY), None).await;
    assert_eq!(status, 200);
}
