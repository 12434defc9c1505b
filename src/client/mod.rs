//! A typed async client for the gateway, over WebSocket or TCP: connect, log in,
//! send frames, match replies to requests by `id`, read typed frames.
//!
//! One implementation serves the integration tests, the load generator and the
//! terminal client.
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), switchboard::client::ClientError> {
//! use switchboard::client::{Client, Request, ServerEvent};
//! let mut client = Client::connect("ws://127.0.0.1:8080/ws").await?;
//! let welcome = client.login(token).await?;
//! client.request_ok(Request::join("lobby")).await?;
//! client.request_ok(Request::publish("lobby", "hi")).await?;
//! while let Ok(frame) = client.recv().await {
//!     if let ServerEvent::Message { from, data, .. } = frame.event()? {
//!         println!("{from}: {data} (I am {})", welcome.user);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Reads are cancel-safe (`recv` may sit in a `tokio::select!`); frames that arrive
//! while `request` waits for its reply are kept, in order, for later reads.

mod conn;
mod error;
mod event;
mod frame;
mod line;
mod request;

pub use error::ClientError;
pub use event::{OkReply, ServerEvent, Welcome};
pub use frame::Frame;
pub use request::Request;

use conn::{Conn, Inbound, Target};
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

/// How a client connects and waits. `Options::default()` suits an interactive client.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest inbound frame (WebSocket message or TCP line) accepted.
    max_frame_bytes: usize,
    connect_timeout: Duration,
    /// Bound on every wait (`recv`, `recv_type`, `request`, `closed`); `None`: wait.
    timeout: Option<Duration>,
    /// Answer the server's TCP `ping` lines with `pong`.
    auto_pong: bool,
    /// Frames kept for later reads while `request` waits for its reply.
    max_backlog: usize,
    nodelay: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_frame_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(10),
            timeout: None,
            auto_pong: true,
            max_backlog: 100_000,
            nodelay: true,
        }
    }
}

impl Options {
    /// Largest inbound frame accepted (default 1 MiB).
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes;
        self
    }

    /// How long connecting (and the WebSocket handshake) may take (default 10 s).
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// Bounds every wait; `Err(Timeout)` when it passes (default: no bound).
    pub fn timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// Whether TCP `ping` lines are answered with `pong` (default true). Tests that
    /// need a silent client turn it off; WebSocket pings are always answered.
    pub fn auto_pong(mut self, on: bool) -> Self {
        self.auto_pong = on;
        self
    }

    /// Most frames kept while a `request` waits for its reply (default 100,000).
    pub fn max_backlog(mut self, frames: usize) -> Self {
        self.max_backlog = frames;
        self
    }

    /// Whether Nagle's algorithm is turned off on the socket (default true).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }
}

const PONG: &str = r#"{"type":"pong"}"#;

/// A connection to the gateway.
#[derive(Debug)]
pub struct Client {
    conn: Conn,
    options: Options,
    /// Frames read while `request` waited for a reply; handed out first.
    backlog: VecDeque<Frame>,
    next_id: u64,
    /// Set once the connection is over: the close code and reason, if any.
    ended: Option<(Option<u16>, String)>,
}

impl Client {
    /// Connects to `ws://host:port/path` or `tcp://host:port` with default options.
    pub async fn connect(address: &str) -> Result<Client, ClientError> {
        Self::connect_with(address, Options::default()).await
    }

    /// Connects to `ws://host:port/path` or `tcp://host:port`.
    pub async fn connect_with(address: &str, options: Options) -> Result<Client, ClientError> {
        let conn = Conn::connect(&Target::parse(address)?, &options).await?;
        Ok(Client {
            conn,
            options,
            backlog: VecDeque::new(),
            next_id: 0,
            ended: None,
        })
    }

    /// Connects over WebSocket to `url` (`ws://host:port/ws`).
    pub async fn connect_ws(url: &str) -> Result<Client, ClientError> {
        match Target::parse(url)? {
            Target::Ws(_) => Self::connect(url).await,
            Target::Tcp(_) => Err(ClientError::Address(url.to_owned())),
        }
    }

    /// Connects over TCP to `addr` (`host:port`).
    pub async fn connect_tcp(addr: &str) -> Result<Client, ClientError> {
        Self::connect(&format!("tcp://{addr}")).await
    }

    /// Logs in with `token` and returns the `welcome`.
    pub async fn login(&mut self, token: &str) -> Result<Welcome, ClientError> {
        match self.login_with(Request::login(token)).await?.event()? {
            ServerEvent::Welcome(welcome) => Ok(welcome),
            other => Err(ClientError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }

    /// Sends a login frame of your own (with `dm_since`, an `id`, ...) and returns the
    /// `welcome` frame as received. A refused login is `Rejected`; the server then
    /// closes the connection.
    pub async fn login_with(&mut self, login: impl Serialize) -> Result<Frame, ClientError> {
        self.send(login).await?;
        let reply = self.recv().await?;
        match reply.kind() {
            "welcome" => Ok(reply),
            "error" => Err(reply.rejection()),
            other => Err(ClientError::Protocol(format!(
                "expected welcome, got {other}"
            ))),
        }
    }

    /// Sends one frame: a [`Request`], a `serde_json::Value`, anything that serialises
    /// to a JSON object.
    pub async fn send(&mut self, frame: impl Serialize) -> Result<(), ClientError> {
        let text = serde_json::to_string(&frame)
            .map_err(|err| ClientError::InvalidFrame(err.to_string()))?;
        self.send_text(&text).await
    }

    /// Sends `text` as one frame, unchecked: valid JSON or not.
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.conn.send_text(text).await
    }

    /// Sends bytes outside the framing rules: a binary message on WebSocket, the bytes
    /// as they are (no newline added) on TCP. For testing how the server copes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.conn.send_raw(bytes).await
    }

    /// Sends `frame` with a fresh `id` and returns the reply that echoes it, whatever
    /// its type (`ok`, `error`, `presence`, `who`, `pong`, `game.created`,
    /// `rank.queued`). Other frames read meanwhile are kept for later reads.
    ///
    /// Ids are the strings `"r1"`, `"r2"`, ... of this client; an `id` already in
    /// `frame` is replaced. Errors the server cannot tie to a request (`rate_limited`,
    /// `too_large`) carry no id: they are kept like other frames, so bound the wait
    /// with [`Options::timeout`] where that matters.
    pub async fn request(&mut self, frame: impl Serialize) -> Result<Frame, ClientError> {
        let mut value = serde_json::to_value(&frame)
            .map_err(|err| ClientError::InvalidFrame(err.to_string()))?;
        let Some(fields) = value.as_object_mut() else {
            return Err(ClientError::InvalidFrame(
                "a request must be a JSON object".into(),
            ));
        };
        self.next_id += 1;
        let id = Value::from(format!("r{}", self.next_id));
        fields.insert("id".into(), id.clone());
        self.send_text(&value.to_string()).await?;
        let limit = self.options.timeout;
        bounded(limit, self.reply_to(&id)).await
    }

    /// Like [`request`](Client::request), but an `error` reply is `Err(Rejected)`.
    pub async fn request_ok(&mut self, frame: impl Serialize) -> Result<Frame, ClientError> {
        let reply = self.request(frame).await?;
        if reply.kind() == "error" {
            return Err(reply.rejection());
        }
        Ok(reply)
    }

    /// The next frame (server pings are answered, not returned).
    pub async fn recv(&mut self) -> Result<Frame, ClientError> {
        let limit = self.options.timeout;
        bounded(limit, self.next_frame()).await
    }

    /// The next frame within `limit`, whatever the client's own timeout.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<Frame, ClientError> {
        bounded(Some(limit), self.next_frame()).await
    }

    /// Skips frames until one of type `kind` arrives.
    pub async fn recv_type(&mut self, kind: &str) -> Result<Frame, ClientError> {
        let limit = self.options.timeout;
        bounded(limit, async {
            loop {
                let frame = self.next_frame().await?;
                if frame.kind() == kind {
                    return Ok(frame);
                }
            }
        })
        .await
    }

    /// Reads (and drops) frames until the connection ends; returns the close code,
    /// `None` when it ended without one.
    pub async fn closed(&mut self) -> Result<Option<u16>, ClientError> {
        let limit = self.options.timeout;
        bounded(limit, async {
            loop {
                match self.next_frame().await {
                    Ok(_) => continue,
                    Err(err) => match &self.ended {
                        Some((code, _)) => return Ok(*code),
                        // A bad frame; the connection goes on.
                        None if matches!(
                            err,
                            ClientError::Protocol(_) | ClientError::TooLarge { .. }
                        ) =>
                        {
                            continue;
                        }
                        None => return Err(err),
                    },
                }
            }
        })
        .await
    }

    /// Whether the connection is over (closed by the server or broken).
    pub fn is_closed(&self) -> bool {
        self.ended.is_some()
    }

    /// Says goodbye (WebSocket close 1000, or the end of the TCP write side). Frames
    /// still in flight can be read until the server closes too.
    pub async fn close(&mut self) -> Result<(), ClientError> {
        self.conn.close().await
    }

    /// The next frame: kept ones first, then the connection.
    async fn next_frame(&mut self) -> Result<Frame, ClientError> {
        match self.backlog.pop_front() {
            Some(frame) => Ok(frame),
            None => self.read_frame().await,
        }
    }

    /// Reads until the reply to `id`, keeping the other frames.
    async fn reply_to(&mut self, id: &Value) -> Result<Frame, ClientError> {
        if let Some(at) = self.backlog.iter().position(|f| f.id() == Some(id))
            && let Some(reply) = self.backlog.remove(at)
        {
            return Ok(reply);
        }
        loop {
            let frame = self.read_frame().await?;
            if frame.id() == Some(id) {
                return Ok(frame);
            }
            if self.backlog.len() >= self.options.max_backlog {
                return Err(ClientError::Backlog {
                    limit: self.options.max_backlog,
                });
            }
            self.backlog.push_back(frame);
        }
    }

    /// The next frame from the connection. Answers TCP pings, turns the TCP `close`
    /// line into `Closed`, and remembers the end of the connection.
    async fn read_frame(&mut self) -> Result<Frame, ClientError> {
        loop {
            if let Some((code, reason)) = &self.ended {
                return Err(ClientError::Closed {
                    code: *code,
                    reason: reason.clone(),
                });
            }
            let frame = match self.conn.read().await? {
                Inbound::Text(text) => Frame::parse(text)?,
                Inbound::Closed { code, reason } => {
                    self.ended = Some((code, reason));
                    continue;
                }
                Inbound::Broken(err) => {
                    self.ended = Some((None, err.to_string()));
                    return Err(err);
                }
            };
            match frame.kind() {
                "ping" => {
                    if self.options.auto_pong {
                        self.conn.send_text(PONG).await?;
                    }
                }
                "close" => {
                    let (code, reason) = match frame.event() {
                        Ok(ServerEvent::Close { code, reason }) => (Some(code), reason),
                        _ => (None, String::new()),
                    };
                    self.ended = Some((code, reason));
                }
                _ => return Ok(frame),
            }
        }
    }
}

/// Runs `work` within `limit`, if any. `work` must be cancel-safe.
async fn bounded<T>(
    limit: Option<Duration>,
    work: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .unwrap_or(Err(ClientError::Timeout)),
        None => work.await,
    }
}

#[cfg(test)]
mod tests;
