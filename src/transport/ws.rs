//! WebSocket transport on top of axum's upgraded socket.

use super::{Inbound, Transport};
use crate::protocol::Encoded;
use crate::protocol::close::CloseCode;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use std::io;

pub struct WsTransport {
    socket: WebSocket,
    max_frame_bytes: usize,
    /// The client sent a close frame: the reply is already queued by the WebSocket
    /// layer and only needs flushing (sending another close would fail).
    peer_closed: bool,
}

impl WsTransport {
    pub fn new(socket: WebSocket, max_frame_bytes: usize) -> Self {
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

fn to_io(err: axum::Error) -> io::Error {
    io::Error::other(err)
}

/// What a read error means for the session, by its type (axum wraps tungstenite's).
/// Every read error ends the stream (tokio-tungstenite fuses it), so each is fatal;
/// only the close code differs.
fn classify(err: axum::Error) -> Inbound {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match err.into_inner().downcast::<WsError>() {
        Ok(ws) => match *ws {
            WsError::Capacity(_) => Inbound::TooLarge { fatal: true },
            WsError::Utf8(_) => Inbound::InvalidUtf8 { fatal: true },
            // The peer went away without a close frame: not a violation worth a code.
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Inbound::Closed,
            WsError::Protocol(_) => Inbound::ProtocolViolation,
            _ => Inbound::Closed,
        },
        Err(_) => Inbound::Closed,
    }
}

impl Transport for WsTransport {
    const KIND: &'static str = "ws";

    async fn recv(&mut self) -> Inbound {
        match self.socket.recv().await {
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
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Inbound::Control,
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
            code: code.as_u16(),
            reason: Utf8Bytes::from(reason),
        };
        self.socket
            .send(Message::Close(Some(frame)))
            .await
            .map_err(to_io)
    }
}
