//! A WebSocket client built from bytes: the upgrade by hand and frames with any header
//! bits, so tests can send what no well-behaved library would.

use crate::harness::WAIT;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// What the server sent next.
#[derive(Debug)]
pub enum Got {
    Text(Value),
    Close(Option<u16>),
    Pong,
    Ping,
    /// The socket ended without a close frame.
    Eof,
}

impl RawWs {
    /// Upgrades a fresh connection (no login yet).
    pub async fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            timeout(WAIT, stream.read_exact(&mut byte))
                .await
                .expect("upgrade answer in time")
                .expect("read");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        RawWs {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and logs in as `user`; the welcome is consumed.
    pub async fn login(addr: SocketAddr, user: &str) -> Self {
        let mut ws = Self::connect(addr).await;
        let login = serde_json::json!({"type": "login", "token": crate::harness::token(user)});
        ws.text(&login.to_string()).await;
        match ws.next().await {
            Got::Text(v) if v["type"] == "welcome" => ws,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Encodes one masked client frame: `first` is the FIN/RSV/opcode byte.
    pub fn encode(first: u8, payload: &[u8]) -> Vec<u8> {
        Self::encode_masked(first, payload, true)
    }

    pub fn encode_masked(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mask_bit = if masked { 0x80 } else { 0 };
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let key = [0x37u8, 0xfa, 0x21, 0x3d];
        if masked {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        out
    }

    /// Sends one frame: `fin` + `opcode`, with extra header bits in `rsv` (0x70 mask).
    pub async fn frame(&mut self, fin: bool, rsv: u8, opcode: u8, payload: &[u8]) {
        let first = if fin { 0x80 } else { 0 } | rsv | opcode;
        self.raw(&Self::encode(first, payload)).await;
    }

    pub async fn raw(&mut self, bytes: &[u8]) {
        // A server that already closed may refuse more bytes: that is fine here.
        let _ = self.stream.write_all(bytes).await;
    }

    pub async fn text(&mut self, text: &str) {
        self.frame(true, 0, TEXT, text.as_bytes()).await;
    }

    async fn fill(&mut self, need: usize) -> bool {
        while self.buf.len() < need {
            let mut chunk = [0u8; 16 * 1024];
            match timeout(WAIT, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => panic!("nothing from the server within {WAIT:?}"),
            }
        }
        true
    }

    /// The next server frame (server frames are never masked or fragmented here).
    pub async fn next(&mut self) -> Got {
        if !self.fill(2).await {
            return Got::Eof;
        }
        let opcode = self.buf[0] & 0x0f;
        let (len, at) = match self.buf[1] & 0x7f {
            126 => {
                if !self.fill(4).await {
                    return Got::Eof;
                }
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                if !self.fill(10).await {
                    return Got::Eof;
                }
                let mut n = [0u8; 8];
                n.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if !self.fill(at + len).await {
            return Got::Eof;
        }
        let payload: Vec<u8> = self.buf[at..at + len].to_vec();
        self.buf.drain(..at + len);
        match opcode {
            TEXT => Got::Text(serde_json::from_slice(&payload).expect("server JSON")),
            CLOSE => Got::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            ),
            0xA => Got::Pong,
            PING => Got::Ping,
            other => panic!("unexpected opcode {other}"),
        }
    }

    /// Reads frames until the close frame; returns its code and the text frames before.
    pub async fn close_code(&mut self) -> (Option<u16>, Vec<Value>) {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Got::Text(v) => texts.push(v),
                Got::Close(code) => return (code, texts),
                Got::Pong | Got::Ping => {}
                Got::Eof => panic!("socket ended without a close frame; frames: {texts:?}"),
            }
        }
    }
}
