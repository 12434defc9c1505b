//! The two transports behind one type: a WebSocket (tokio-tungstenite) or a TCP
//! stream of newline-delimited JSON. Everything above this file is transport-blind.

use super::line::{LineReader, LineWriter};
use super::{ClientError, Options};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::io;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Read and write buffer of a WebSocket connection (bytes).
const CLIENT_IO_BUFFER: usize = 8 * 1024;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where to connect, parsed from the address a caller gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target<'a> {
    /// A `ws://` URL, passed to the WebSocket handshake as is.
    Ws(&'a str),
    /// `host:port` from a `tcp://` address.
    Tcp(&'a str),
}

impl<'a> Target<'a> {
    pub(super) fn parse(address: &'a str) -> Result<Self, ClientError> {
        if address.starts_with("ws://") {
            Ok(Target::Ws(address))
        } else if let Some(addr) = address.strip_prefix("tcp://") {
            Ok(Target::Tcp(addr.trim_end_matches('/')))
        } else {
            Err(ClientError::Address(address.to_owned()))
        }
    }
}

/// What one read produced.
#[derive(Debug)]
pub(super) enum Inbound {
    /// One text frame: a WebSocket message or a TCP line.
    Text(Utf8Bytes),
    /// The server closed the connection; on TCP the `close` line is seen above this.
    Closed { code: Option<u16>, reason: String },
    /// The connection broke; nothing more can be read.
    Broken(ClientError),
}

/// One connection to the gateway.
#[derive(Debug)]
pub(super) enum Conn {
    Ws(Box<Ws>),
    Tcp {
        lines: LineReader<BufReader<OwnedReadHalf>>,
        writer: LineWriter<OwnedWriteHalf>,
    },
}

impl Conn {
    pub(super) async fn connect(
        target: &Target<'_>,
        options: &Options,
    ) -> Result<Conn, ClientError> {
        let name = match *target {
            Target::Ws(url) | Target::Tcp(url) => url,
        };
        let attempt = async {
            match *target {
                Target::Ws(url) => Self::ws(url, options).await,
                Target::Tcp(addr) => Self::tcp(addr, options).await,
            }
        };
        match tokio::time::timeout(options.connect_timeout, attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(ClientError::Connect {
                target: name.to_owned(),
                source,
            }),
            Err(_) => Err(ClientError::Connect {
                target: name.to_owned(),
                source: Box::new(io::Error::from(io::ErrorKind::TimedOut)),
            }),
        }
    }

    async fn ws(url: &str, options: &Options) -> Result<Conn, BoxError> {
        // tungstenite zero-fills its whole read buffer before every read: at its default
        // 128 KiB that was 40 % of the load generator's CPU (perf, 1,000 receivers).
        // Larger frames still arrive; the buffer grows for them.
        let config = WebSocketConfig::default()
            .read_buffer_size(CLIENT_IO_BUFFER)
            .write_buffer_size(CLIENT_IO_BUFFER)
            .max_message_size(Some(options.max_frame_bytes))
            .max_frame_size(Some(options.max_frame_bytes));
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), options.nodelay)
                .await?;
        Ok(Conn::Ws(Box::new(ws)))
    }

    async fn tcp(addr: &str, options: &Options) -> Result<Conn, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(options.nodelay)?;
        let (read, write) = stream.into_split();
        Ok(Conn::Tcp {
            lines: LineReader::new(BufReader::new(read), options.max_frame_bytes),
            writer: LineWriter::new(write),
        })
    }

    /// The next frame or the end of the connection. Cancel-safe.
    ///
    /// `Err` is for a bad frame after which the connection is still usable.
    pub(super) async fn read(&mut self) -> Result<Inbound, ClientError> {
        match self {
            Conn::Ws(ws) => loop {
                let message = match ws.next().await {
                    None => return Ok(closed(None, "")),
                    Some(Ok(message)) => message,
                    Some(Err(err)) => return Ok(ws_failure(err)),
                };
                match message {
                    Message::Text(text) => return Ok(Inbound::Text(text)),
                    Message::Binary(bytes) => {
                        return Utf8Bytes::try_from(bytes).map(Inbound::Text).map_err(|_| {
                            ClientError::Protocol("binary message is not valid UTF-8".into())
                        });
                    }
                    Message::Close(frame) => {
                        // tungstenite queued the close reply; send it if that does not
                        // have to wait.
                        let _ = ws.flush().now_or_never();
                        return Ok(match frame {
                            Some(f) => closed(Some(u16::from(f.code)), f.reason.as_str()),
                            None => closed(None, ""),
                        });
                    }
                    // Pings are answered by tungstenite while reading.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                }
            },
            Conn::Tcp { lines, .. } => match lines.next_line().await {
                Ok(Some(line)) => Ok(Inbound::Text(Utf8Bytes::from(line))),
                Ok(None) => Ok(closed(None, "")),
                Err(ClientError::Io(err)) => Ok(Inbound::Broken(ClientError::Io(err))),
                Err(err) => Err(err),
            },
        }
    }

    /// Sends one frame: a WebSocket text message or a TCP line.
    pub(super) async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        match self {
            Conn::Ws(ws) => ws.send(Message::text(text)).await.map_err(ws_error),
            Conn::Tcp { writer, .. } => {
                if text.contains('\n') {
                    return Err(ClientError::InvalidFrame(
                        "a TCP frame cannot contain a newline".into(),
                    ));
                }
                writer.queue_line(text);
                Ok(writer.flush().await?)
            }
        }
    }

    /// Sends bytes without framing rules: one binary message on a WebSocket, the bytes
    /// exactly as given on TCP (no newline added).
    pub(super) async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match self {
            Conn::Ws(ws) => ws
                .send(Message::binary(bytes.to_vec()))
                .await
                .map_err(ws_error),
            Conn::Tcp { writer, .. } => {
                writer.queue_raw(bytes);
                Ok(writer.flush().await?)
            }
        }
    }

    /// Says goodbye: a WebSocket close frame (1000), or the end of the TCP write side.
    pub(super) async fn close(&mut self) -> Result<(), ClientError> {
        match self {
            Conn::Ws(ws) => match WebSocketStream::close(ws, None).await {
                Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Ok(()),
                Err(err) => Err(ws_error(err)),
            },
            Conn::Tcp { writer, .. } => Ok(writer.shutdown().await?),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn closed(code: Option<u16>, reason: &str) -> Inbound {
    Inbound::Closed {
        code,
        reason: reason.to_owned(),
    }
}

/// A failed WebSocket read always ends the connection; this says how.
fn ws_failure(err: tungstenite::Error) -> Inbound {
    match err {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            closed(None, "")
        }
        err => Inbound::Broken(ws_error(err)),
    }
}

fn ws_error(err: tungstenite::Error) -> ClientError {
    match err {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            ClientError::Closed {
                code: None,
                reason: String::new(),
            }
        }
        tungstenite::Error::Io(err) => ClientError::Io(err),
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { max_size, .. }) => {
            ClientError::TooLarge { limit: max_size }
        }
        err => ClientError::WebSocket(Box::new(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("ws://127.0.0.1:8080/ws").ok(),
            Some(Target::Ws("ws://127.0.0.1:8080/ws"))
        );
        assert_eq!(
            Target::parse("tcp://localhost:7070").ok(),
            Some(Target::Tcp("localhost:7070"))
        );
        assert_eq!(
            Target::parse("tcp://localhost:7070/").ok(),
            Some(Target::Tcp("localhost:7070"))
        );
        for bad in ["wss://example.com/ws", "http://x", "localhost:7070", ""] {
            assert!(
                matches!(Target::parse(bad), Err(ClientError::Address(_))),
                "{bad}"
            );
        }
    }
}
