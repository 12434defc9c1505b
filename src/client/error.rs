//! What can go wrong between a client and the gateway, as one error type.

use std::error::Error as StdError;

/// Why a client call failed.
///
/// [`Closed`](ClientError::Closed) and the transport errors ([`Io`](ClientError::Io),
/// [`WebSocket`](ClientError::WebSocket)) end the connection; after them every read
/// reports `Closed`. The others leave it usable.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not `ws://host:port/path` or `tcp://host:port`.
    #[error("unsupported address {0:?}: expected ws://host:port/path or tcp://host:port")]
    Address(String),
    /// The TCP connect or the WebSocket handshake failed or timed out.
    #[error("could not connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The connection is over: closed by the server with a close code (see
    /// `protocol::close` for what each means), or ended without one (`code: None`).
    #[error("connection closed{}", close_text(*.code, .reason))]
    Closed { code: Option<u16>, reason: String },
    /// Nothing arrived within the time allowed.
    #[error("timed out waiting for the server")]
    Timeout,
    /// An inbound frame was larger than `Options::max_frame_bytes`.
    #[error("inbound frame larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The server sent something that is not a protocol frame (not JSON, no `type`,
    /// a known frame type with missing fields, ...).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered with an `error` frame.
    #[error("refused by the server: {code}: {message}")]
    Rejected { code: String, message: String },
    /// The frame to send cannot be sent (not a JSON object where an id must be added,
    /// or a newline inside a TCP frame).
    #[error("invalid outbound frame: {0}")]
    InvalidFrame(String),
    /// Too many frames arrived while waiting for a reply.
    #[error("more than {limit} frames buffered while waiting for a reply")]
    Backlog { limit: usize },
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer failed for a reason other than I/O or size.
    #[error("websocket error: {0}")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
}

fn close_text(code: Option<u16>, reason: &str) -> String {
    match (code, reason.is_empty()) {
        (Some(code), true) => format!(" with code {code}"),
        (Some(code), false) => format!(" with code {code} ({reason})"),
        (None, true) => String::new(),
        (None, false) => format!(" ({reason})"),
    }
}

impl ClientError {
    /// The close code when this error reports a closed connection.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            ClientError::Closed { code, .. } => *code,
            _ => None,
        }
    }
}
