//! WebSocket transport: the upgrade handshake (RFC 6455 §4.2) and the session's view of
//! the socket, on tokio-tungstenite.
//!
//! The handshake is ours rather than axum's `WebSocketUpgrade`: axum's connection task
//! keeps the upgrade's settings, callback and subprotocol beside the session for the
//! connection's whole life (~230 bytes that moved each task up a 128-byte size class),
//! and its refusals are plain text where every other refusal here is a JSON error code.

use super::{Inbound, Transport};
use crate::config::Config;
use crate::protocol::Encoded;
use crate::protocol::close::CloseCode;
use axum::body::Body;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::io;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WireCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Why a request to the WebSocket endpoint is not a WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAnUpgrade {
    NotGet,
    NoConnectionUpgrade,
    NoUpgradeWebsocket,
    NoKey,
    /// Any version but 13; the refusal names the one spoken here (RFC 6455 §4.4).
    Version,
    /// The HTTP connection cannot be taken over (not HTTP/1.1 with upgrades).
    NotUpgradable,
}

impl NotAnUpgrade {
    pub fn message(self) -> &'static str {
        match self {
            NotAnUpgrade::NotGet => "a WebSocket upgrade must be a GET",
            NotAnUpgrade::NoConnectionUpgrade => {
                "not a WebSocket upgrade: `Connection: upgrade` missing"
            }
            NotAnUpgrade::NoUpgradeWebsocket => {
                "not a WebSocket upgrade: `Upgrade: websocket` missing"
            }
            NotAnUpgrade::NoKey => "`Sec-WebSocket-Key` missing",
            NotAnUpgrade::Version => "unsupported WebSocket version: only 13 is spoken",
            NotAnUpgrade::NotUpgradable => {
                "this HTTP connection cannot be upgraded (HTTP/1.1 only)"
            }
        }
    }
}

/// A request the headers show to be a WebSocket opening handshake, checked before any
/// admission decision so that a non-WebSocket request is told so whatever the load.
pub struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Checks the opening handshake's headers and takes the connection's upgrade handle.
    pub fn from_request(request: &mut Request<Body>) -> Result<Self, NotAnUpgrade> {
        if request.method() != Method::GET {
            return Err(NotAnUpgrade::NotGet);
        }
        let headers = request.headers();
        if !has_token(headers, &header::CONNECTION, "upgrade") {
            return Err(NotAnUpgrade::NoConnectionUpgrade);
        }
        if !has_token(headers, &header::UPGRADE, "websocket") {
            return Err(NotAnUpgrade::NoUpgradeWebsocket);
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(NotAnUpgrade::Version);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(NotAnUpgrade::NoKey)?;
        let accept = HeaderValue::try_from(derive_accept_key(key.as_bytes()))
            .map_err(|_| NotAnUpgrade::NoKey)?;
        let on_upgrade = request
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or(NotAnUpgrade::NotUpgradable)?;
        Ok(Upgrade { accept, on_upgrade })
    }

    /// The `101 Switching Protocols` answer; the socket is handed over once it is sent.
    /// The connection is then the caller's to take with `socket`.
    pub fn switch(self) -> (Response<Body>, PendingSocket) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        (response, PendingSocket(self.on_upgrade))
    }
}

/// The connection between the 101 and the first WebSocket frame.
pub struct PendingSocket(OnUpgrade);

impl PendingSocket {
    /// Waits for hyper to hand over the connection; `None` if it went away first.
    pub async fn socket(self, config: &Config) -> Option<WsTransport> {
        let upgraded = match self.0.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(error = %err, "WebSocket upgrade failed");
                return None;
            }
        };
        let socket = WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(socket_config(config)),
        )
        .await;
        Some(WsTransport::new(socket, config.max_frame_bytes))
    }
}

/// Buffers and limits from the gateway's settings.
fn socket_config(cfg: &Config) -> WebSocketConfig {
    let hard_limit = cfg.max_frame_bytes.saturating_mul(HARD_LIMIT_FACTOR);
    let write = cfg.write_buffer_bytes;
    WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(write)
        .max_write_buffer_size(write.saturating_mul(64).max(hard_limit))
        .max_message_size(Some(hard_limit))
        .max_frame_size(Some(hard_limit))
}

/// Whether a comma-separated header holds `token` (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

pub struct WsTransport {
    socket: WebSocketStream<TokioIo<Upgraded>>,
    max_frame_bytes: usize,
    /// The client sent a close frame: the reply is already queued by the WebSocket
    /// layer and only needs flushing (sending another close would fail).
    peer_closed: bool,
}

impl WsTransport {
    pub fn new(socket: WebSocketStream<TokioIo<Upgraded>>, max_frame_bytes: usize) -> Self {
        WsTransport {
            socket,
            max_frame_bytes,
            peer_closed: false,
        }
    }
}

/// Frames up to this many times the limit are read and refused with `too_large`
/// while the connection stays usable; larger ones end it (close 1009).
pub const HARD_LIMIT_FACTOR: usize = 4;

fn to_io(err: WsError) -> io::Error {
    match err {
        WsError::Io(err) => err,
        err => io::Error::other(err),
    }
}

use tokio_tungstenite::tungstenite::Error as WsError;

/// What a read error means for the session. Every read error ends the stream
/// (tokio-tungstenite fuses it), so each is fatal; only the close code differs.
fn classify(err: WsError) -> Inbound {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match err {
        WsError::Capacity(_) => Inbound::TooLarge { fatal: true },
        WsError::Utf8(_) => Inbound::InvalidUtf8 { fatal: true },
        // The peer went away without a close frame: not a violation worth a code.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Inbound::Closed,
        WsError::Protocol(_) => Inbound::ProtocolViolation,
        _ => Inbound::Closed,
    }
}

impl Transport for WsTransport {
    const KIND: &'static str = "ws";

    async fn recv(&mut self) -> Inbound {
        match self.socket.next().await {
            None => Inbound::Closed,
            Some(Ok(Message::Text(text))) if text.len() > self.max_frame_bytes => {
                Inbound::TooLarge { fatal: false }
            }
            Some(Ok(Message::Text(text))) => Inbound::Text(text),
            Some(Ok(Message::Binary(bin))) if bin.len() > self.max_frame_bytes => {
                Inbound::TooLarge { fatal: false }
            }
            Some(Ok(Message::Binary(bin))) => match Utf8Bytes::try_from(bin) {
                Ok(text) => Inbound::Text(text),
                // A binary message has no UTF-8 rule of its own: refused, stream intact.
                Err(_) => Inbound::InvalidUtf8 { fatal: false },
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Inbound::Control,
            Some(Ok(Message::Close(_))) => {
                self.peer_closed = true;
                Inbound::Closed
            }
            Some(Err(err)) => classify(err),
        }
    }

    async fn feed(&mut self, frame: &Encoded) -> io::Result<()> {
        self.socket
            .feed(Message::Text(frame.to_ws_text()))
            .await
            .map_err(to_io)
    }

    async fn flush(&mut self) -> io::Result<()> {
        SinkExt::<Message>::flush(&mut self.socket)
            .await
            .map_err(to_io)
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.socket
            .send(Message::Ping(Bytes::new()))
            .await
            .map_err(to_io)
    }

    async fn close(&mut self, code: CloseCode, reason: &str) -> io::Result<()> {
        if self.peer_closed {
            // Completes the closing handshake with the echo the client expects.
            return SinkExt::<Message>::flush(&mut self.socket)
                .await
                .map_err(to_io);
        }
        let frame = CloseFrame {
            code: WireCloseCode::from(code.as_u16()),
            reason: Utf8Bytes::from(reason),
        };
        self.socket
            .send(Message::Close(Some(frame)))
            .await
            .map_err(to_io)
    }
}
