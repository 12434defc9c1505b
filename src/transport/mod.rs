//! Client transports. Each turns its socket into a stream of `Inbound` events and
//! writes encoded frames; the session logic above never knows which one it runs on.

pub mod tcp;
pub mod ws;

use crate::protocol::Encoded;
use crate::protocol::close::CloseCode;
use std::future::Future;
use std::io;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a transport read from its client.
#[derive(Debug)]
pub enum Inbound {
    /// One complete text frame (a WebSocket message or a TCP line).
    Text(Utf8Bytes),
    /// Proof of life without a frame (a blank TCP line).
    Activity,
    /// A WebSocket ping or pong from the client. The WebSocket layer answers pings by
    /// itself, so these count against the rate limit: a flood of them ends the session.
    Control,
    /// A frame over the size limit was skipped; `fatal` when the transport cannot
    /// continue after it.
    TooLarge { fatal: bool },
    /// A frame that is not UTF-8; `fatal` when the transport cannot continue after it
    /// (a WebSocket text message: RFC 6455 fails the connection with 1007).
    InvalidUtf8 { fatal: bool },
    /// The peer broke the transport's framing rules (WebSocket: reserved bits or
    /// opcodes, unmasked or fragmented control frames); the connection cannot continue.
    ProtocolViolation,
    /// The peer closed or the connection broke.
    Closed,
}

/// A client connection as the session sees it.
pub trait Transport: Send {
    /// Label for metrics and logs.
    const KIND: &'static str;

    /// Next inbound event. Must be cancel-safe: it runs inside `select!`.
    fn recv(&mut self) -> impl Future<Output = Inbound> + Send;
    /// Buffers one frame for writing.
    fn feed(&mut self, frame: &Encoded) -> impl Future<Output = io::Result<()>> + Send;
    /// Writes out everything buffered.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Sends a liveness probe the client must answer (or at least not ignore for long).
    fn ping(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Says goodbye with a close code and ends the connection.
    fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
    ) -> impl Future<Output = io::Result<()>> + Send;
}
