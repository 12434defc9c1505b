//! Raw TCP transport: newline-delimited JSON, one frame per line, the same frames and
//! rules as WebSocket. Oversized lines are skipped without being buffered.

use super::{Inbound, Transport};
use crate::protocol::close::CloseCode;
use crate::protocol::{Encoded, ServerFrame};
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Output buffers that grew past this are shrunk back after a flush.
const KEEP_OUT_BYTES: usize = 64 * 1024;

pub struct TcpTransport {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The line being assembled across reads.
    line: Vec<u8>,
    /// True while skipping the rest of an oversized line.
    discarding: bool,
    max_frame_bytes: usize,
    out: Vec<u8>,
    /// Bytes of `out` already written: a flush cut short (a slow consumer being closed)
    /// resumes where it stopped instead of repeating part of a line.
    sent: usize,
}

impl TcpTransport {
    pub fn new(stream: TcpStream, max_frame_bytes: usize, buffer_bytes: usize) -> Self {
        let (read, writer) = stream.into_split();
        TcpTransport {
            reader: BufReader::with_capacity(buffer_bytes, read),
            writer,
            line: Vec::new(),
            discarding: false,
            max_frame_bytes,
            out: Vec::new(),
            sent: 0,
        }
    }

    fn finish_line(&mut self) -> Inbound {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            // Blank lines are keep-alives: proof of life, nothing to parse.
            return Inbound::Activity;
        }
        match String::from_utf8(line) {
            Ok(text) => Inbound::Text(Utf8Bytes::from(text)),
            Err(_) => Inbound::InvalidUtf8 { fatal: false },
        }
    }
}

impl Transport for TcpTransport {
    const KIND: &'static str = "tcp";

    async fn recv(&mut self) -> Inbound {
        loop {
            // Only `fill_buf` awaits; all state changes happen after it returns, so
            // dropping this future mid-way loses nothing.
            let buf = match self.reader.fill_buf().await {
                Ok(buf) => buf,
                Err(_) => return Inbound::Closed,
            };
            if buf.is_empty() {
                // EOF: a half line is ignored.
                return Inbound::Closed;
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let oversized = self.discarding || self.line.len() + end > self.max_frame_bytes;
                    if !oversized {
                        self.line.extend_from_slice(&buf[..end]);
                    }
                    self.reader.consume(end + 1);
                    if oversized {
                        self.discarding = false;
                        self.line = Vec::new();
                        return Inbound::TooLarge { fatal: false };
                    }
                    return self.finish_line();
                }
                None => {
                    let n = buf.len();
                    if self.discarding || self.line.len() + n > self.max_frame_bytes {
                        self.discarding = true;
                        self.line = Vec::new();
                    } else {
                        self.line.extend_from_slice(buf);
                    }
                    self.reader.consume(n);
                }
            }
        }
    }

    async fn feed(&mut self, frame: &Encoded) -> io::Result<()> {
        self.out.extend_from_slice(frame.as_str().as_bytes());
        self.out.push(b'\n');
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            // Cancel-safe: `sent` only moves after a completed write.
            while self.sent < self.out.len() {
                let n = self.writer.write(&self.out[self.sent..]).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                self.sent += n;
            }
            self.sent = 0;
            self.out.clear();
            if self.out.capacity() > KEEP_OUT_BYTES {
                self.out = Vec::new();
            }
        }
        Ok(())
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.feed(&ServerFrame::Ping.encode()).await?;
        self.flush().await
    }

    async fn close(&mut self, code: CloseCode, reason: &str) -> io::Result<()> {
        self.feed(&ServerFrame::Close { code, reason }.encode())
            .await?;
        self.flush().await?;
        self.writer.shutdown().await
    }
}
