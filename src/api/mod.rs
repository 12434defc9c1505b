//! HTTP surface: the WebSocket endpoint, the server API under `/api/v1` for backends,
//! metrics, probes, the dev token endpoint and the demo page.

mod error;
mod web;

pub use error::ApiError;

use crate::backend::Published;
use crate::gateway::Gateway;
use crate::per_ip;
use crate::protocol::{ErrorCode, Member, MsgId, RoomId, UserId};
use crate::session;
use crate::transport::ws::{NotAnUpgrade, Upgrade, WsTransport};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, Extension, MatchedPath, Path, Query, Request, State,
};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub gw: Arc<Gateway>,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    pub draining: CancellationToken,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/rooms/{room}/publish", post(publish))
        .route("/rooms/{room}/presence", get(room_presence))
        .route("/users/{user}/send", post(send))
        .route("/users/{user}/disconnect", post(disconnect))
        .route("/broadcast", post(broadcast))
        .route("/online", get(online))
        .route("/matchmaking", get(matchmaking))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(DefaultBodyLimit::max(state.gw.config.api_max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ));
    let public = Router::new()
        .route("/", get(web::index))
        .route("/app/{file}", get(web::asset))
        .route("/ws", get(ws_upgrade))
        .route("/dev/token", get(dev_token))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    // With an admin listener, metrics live only there, off the public path.
    let public = if state.gw.config.admin_listen.is_some() {
        public
    } else {
        public
            .route("/metrics", get(metrics))
            .route("/debug/allocator", get(allocator_stats))
    };
    public.nest("/api/v1", api).with_state(state)
}

/// The admin listener: metrics and probes only, for scrapers and kubelets.
pub fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/debug/allocator", get(allocator_stats))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn readyz(State(st): State<AppState>) -> Response {
    if st.gw.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else if st.gw.is_accepting() {
        (StatusCode::SERVICE_UNAVAILABLE, "backend unavailable").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    }
}

/// The allocator's full statistics (JSON), beside the metrics and on the same listener:
/// where memory goes, by size class, when the gauges are not enough.
async fn allocator_stats() -> Response {
    match crate::metrics::allocator::stats_json() {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => ApiError::new(ErrorCode::NotFound, "not built with jemalloc").into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    // Derived when scraped, so the gauge is never stale.
    st.gw.metrics.ready.set(i64::from(st.gw.is_ready()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.gw.metrics.render(),
    )
        .into_response()
}

/// Browsers always send `Origin`; only listed origins (or the same host) may connect,
/// so a page on another site cannot ride on a user's cookies or network position.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

async fn ws_upgrade(
    State(st): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut request: Request,
) -> Response {
    let upgrade = match Upgrade::from_request(&mut request) {
        Ok(upgrade) => upgrade,
        Err(refusal) => {
            let mut response =
                ApiError::new(ErrorCode::BadRequest, refusal.message()).into_response();
            if refusal == NotAnUpgrade::Version {
                // RFC 6455 §4.4: name the version spoken here.
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    header::HeaderValue::from_static("13"),
                );
            }
            return response;
        }
    };
    let headers = request.headers();
    // 503 with Retry-After: a load balancer may retry on another replica (HAProxy
    // `retry-on 503`), and any client knows to come back.
    if !st.gw.is_accepting() {
        st.gw.refused("draining");
        return retry_later("server draining");
    }
    if st.gw.at_connection_limit() {
        st.gw.refused("limit");
        return retry_later("connection limit reached");
    }
    if !origin_allowed(&st.gw.config.allowed_origins, headers) {
        return ApiError::new(ErrorCode::Forbidden, "origin not allowed").into_response();
    }
    // Held by the session task: the address's count drops when the connection ends.
    let ip_slot = match peer {
        Some(Extension(ConnectInfo(peer))) => {
            let trusted = st.gw.config.trusted_proxy_header.as_deref();
            match st.gw.admit_ip(per_ip::client_ip(peer, headers, trusted)) {
                Ok(slot) => slot,
                Err(refusal) => return retry_later(refusal.message()),
            }
        }
        None => None,
    };
    let Some(pending) = st.gw.pending_login() else {
        st.gw.refused("pending_logins");
        return retry_later("too many connections waiting to log in");
    };
    // Counted now, before the 101 goes out: the next upgrade already sees it.
    let counted = st.gw.count_connection::<WsTransport>();
    let (response, socket) = upgrade.switch();
    let AppState {
        gw,
        tracker,
        draining,
    } = st;
    // The connection's one task. Its future is allocated for the connection's life, so
    // it captures only what the session needs and holds the transport once: a `let
    // else` (an `if let` would keep its scrutinee, the transport, beside the session).
    tracker.spawn(async move {
        let Some(transport) = socket.socket(&gw.config).await else {
            return;
        };
        session::run(gw, transport, draining, pending, ip_slot, counted).await;
    });
    response
}

fn retry_later(message: &str) -> Response {
    let mut response = ApiError::new(ErrorCode::Unavailable, message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

#[derive(Deserialize)]
struct DevTokenQuery {
    user: String,
    name: Option<String>,
}

async fn dev_token(State(st): State<AppState>, Query(q): Query<DevTokenQuery>) -> Response {
    if !st.gw.verifier.is_dev() {
        return ApiError::new(ErrorCode::NotFound, "dev mode is off").into_response();
    }
    if UserId::new(&q.user).is_err() {
        return ApiError::new(ErrorCode::BadRequest, "invalid user id").into_response();
    }
    match st
        .gw
        .verifier
        .dev_token(&q.user, q.name.as_deref(), Duration::from_secs(24 * 3600))
    {
        Some(token) => token.into_response(),
        None => ApiError::new(ErrorCode::Internal, "cannot mint").into_response(),
    }
}

/// Constant-time comparison (`subtle`, which keeps the optimiser from short-cutting it),
/// so response timing does not leak how much of the key matched. Only the key's length
/// can be learned, which says nothing useful about a random key.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Bounds every API request by SWITCHBOARD_API_TIMEOUT: a stalled backend answers 503
/// `unavailable` instead of holding the caller (and a connection) open. The work may
/// still complete after the answer.
async fn time_limit(State(st): State<AppState>, request: Request, next: Next) -> Response {
    let limit = st.gw.config.api_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::debug!(?limit, "API request timed out");
            retry_later("request timed out")
        }
    }
}

async fn require_api_key(State(st): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = st.gw.config.api_key.as_deref() else {
        return ApiError::new(
            ErrorCode::Unavailable,
            "HTTP API disabled: set SWITCHBOARD_API_KEY",
        )
        .into_response();
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match presented {
        Some(p) if same_key(p.as_bytes(), key.as_bytes()) => next.run(request).await,
        _ => ApiError::new(ErrorCode::Unauthorized, "missing or wrong API key").into_response(),
    }
}

/// The credentials of `Authorization: Bearer <token>`; the scheme is case-insensitive
/// (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

async fn count_requests(State(st): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    st.gw
        .metrics
        .api_requests
        .with_label_values(&[&route, &status])
        .inc();
    response
}

/// Body of publish/send/broadcast calls.
#[derive(Deserialize)]
struct Push {
    data: Value,
    /// Sender id shown to recipients; `server` when absent.
    #[serde(default)]
    from: Option<UserId>,
    #[serde(default)]
    name: Option<String>,
    /// Makes a retried push safe: stored once per sender and id within `msg_id_ttl`.
    #[serde(default)]
    msg_id: Option<MsgId>,
}

impl Push {
    /// Parses the body as JSON whatever its Content-Type says: `curl -d` sends
    /// `application/x-www-form-urlencoded` by default, and the body is JSON anyway.
    fn from_body(body: Result<Bytes, BytesRejection>) -> Result<Push, ApiError> {
        let bytes = body.map_err(|rejection| {
            let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ErrorCode::TooLarge
            } else {
                ErrorCode::BadRequest
            };
            ApiError::new(code, rejection.body_text())
        })?;
        serde_json::from_slice(&bytes).map_err(|err| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("body must be JSON like {{\"data\": ...}}: {err}"),
            )
        })
    }

    fn sender(&self, max_name_chars: usize) -> (UserId, String) {
        let from = self.from.clone().unwrap_or_else(UserId::server);
        let name = self
            .name
            .as_deref()
            .map(|n| crate::protocol::clean_name(n, max_name_chars))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| from.to_string());
        (from, name)
    }
}

fn room_param(room: &str) -> Result<RoomId, ApiError> {
    RoomId::new(room).map_err(|m| ApiError::new(ErrorCode::BadRequest, m))
}

fn user_param(user: &str) -> Result<UserId, ApiError> {
    UserId::new(user).map_err(|m| ApiError::new(ErrorCode::BadRequest, m))
}

/// Adds `duplicate: true` to a push reply when the `msg_id` was seen before.
fn pushed(mut reply: Value, p: Published) -> Value {
    if p.duplicate {
        reply["duplicate"] = Value::Bool(true);
    }
    reply
}

async fn publish(
    State(st): State<AppState>,
    Path(room): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let room = room_param(&room)?;
    let push = Push::from_body(body)?;
    let (from, name) = push.sender(st.gw.config.max_name_chars);
    let p = st
        .gw
        .publish(&room, &from, &name, push.data, true, push.msg_id.as_ref())
        .await?;
    Ok(Json(pushed(json!({"room": room, "seq": p.seq}), p)))
}

async fn send(
    State(st): State<AppState>,
    Path(user): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let to = user_param(&user)?;
    let push = Push::from_body(body)?;
    let (from, name) = push.sender(st.gw.config.max_name_chars);
    let p = st
        .gw
        .send_direct(&to, &from, &name, push.data, push.msg_id.as_ref())
        .await?;
    Ok(Json(pushed(json!({"user": to, "seq": p.seq}), p)))
}

async fn broadcast(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let push = Push::from_body(body)?;
    let (from, name) = push.sender(st.gw.config.max_name_chars);
    st.gw.broadcast(&from, &name, push.data).await?;
    Ok(Json(json!({})))
}

async fn room_presence(
    State(st): State<AppState>,
    Path(room): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let room = room_param(&room)?;
    let (members, count): (Vec<Member>, usize) = st.gw.presence(&room).await?;
    Ok(Json(
        json!({"room": room, "members": members, "count": count}),
    ))
}

#[derive(Deserialize)]
struct OnlineQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn online(
    State(st): State<AppState>,
    Query(q): Query<OnlineQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = st.gw.who(q.cursor.as_deref(), q.limit).await?;
    let mut body = json!({"users": page.users, "count": page.count});
    if let Some(next) = page.next {
        body["next"] = json!(next);
    }
    Ok(Json(body))
}

/// Ranked queue length and how long the queued players have waited.
async fn matchmaking(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut stats = st.gw.rank_stats().await?;
    stats.waits_ms.sort_unstable();
    let pct = |p: f64| -> u64 {
        let n = stats.waits_ms.len();
        if n == 0 {
            return 0;
        }
        stats.waits_ms[((n as f64 * p) as usize).min(n - 1)]
    };
    Ok(Json(json!({
        "queue": stats.len,
        "wait_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        "matches": st.gw.metrics.rank_matches.get(),
    })))
}

async fn disconnect(
    State(st): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = user_param(&user)?;
    st.gw.disconnect_user(&user).await?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        assert!(
            origin_allowed(&[], &h),
            "non-browser clients send no Origin"
        );
        h.insert(header::HOST, HeaderValue::from_static("gw.example:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://gw.example:8080"),
        );
        assert!(origin_allowed(&[], &h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!origin_allowed(&[], &h));
        assert!(origin_allowed(&["https://evil.example".into()], &h));
        assert!(origin_allowed(&["*".into()], &h));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer k"), Some("k"));
        assert_eq!(bearer_token("bearer k"), Some("k"));
        assert_eq!(bearer_token("BEARER  k"), Some("k"));
        assert_eq!(bearer_token("Basic k"), None);
        assert_eq!(bearer_token("Bearerk"), None);
    }

    #[test]
    fn key_comparison() {
        assert!(same_key(b"abc", b"abc"));
        assert!(!same_key(b"abc", b"abd"));
        assert!(!same_key(b"abc", b"abcd"));
    }
}
