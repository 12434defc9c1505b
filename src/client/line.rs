//! The TCP framing on the client side: newline-delimited JSON, bounded line length.
//!
//! Mirrors the server's rules (PROTOCOL.md §1): `\r\n` is accepted, blank lines are
//! keep-alives, a half line at EOF is ignored, and an oversized line is reported once
//! and then skipped without being buffered.

use super::ClientError;
use bytes::{Buf, BytesMut};
use std::io;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// Output buffers that grew past this are dropped after a flush.
const KEEP_OUT_BYTES: usize = 64 * 1024;

/// Reads one line at a time. Cancel-safe: only `fill_buf` awaits, and all state
/// changes happen after it returns.
#[derive(Debug)]
pub(super) struct LineReader<R> {
    reader: R,
    /// The line being assembled across reads.
    line: Vec<u8>,
    /// True while skipping the rest of an oversized line.
    discarding: bool,
    max_line: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(super) fn new(reader: R, max_line: usize) -> Self {
        LineReader {
            reader,
            line: Vec::new(),
            discarding: false,
            max_line,
        }
    }

    /// The next non-blank line without its line ending; `None` at EOF.
    ///
    /// `TooLarge` and `Protocol` (not UTF-8) consume the offending line and leave the
    /// reader usable.
    pub(super) async fn next_line(&mut self) -> Result<Option<String>, ClientError> {
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                return Ok(None);
            }
            let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                let n = buf.len();
                // One byte of slack for a `\r` that the line ending will remove.
                let oversized = !self.discarding && self.line.len() + n > self.max_line + 1;
                if !self.discarding && !oversized {
                    self.line.extend_from_slice(buf);
                }
                self.reader.consume(n);
                if oversized {
                    self.discarding = true;
                    self.line = Vec::new();
                    return Err(self.too_large());
                }
                continue;
            };
            if self.discarding {
                // The error was reported when the line outgrew the limit.
                self.reader.consume(end + 1);
                self.discarding = false;
                continue;
            }
            let oversized = self.line.len() + end > self.max_line + 1;
            if !oversized {
                self.line.extend_from_slice(&buf[..end]);
            }
            self.reader.consume(end + 1);
            let mut line = std::mem::take(&mut self.line);
            if oversized {
                return Err(self.too_large());
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > self.max_line {
                return Err(self.too_large());
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return String::from_utf8(line)
                .map(Some)
                .map_err(|_| ClientError::Protocol("line is not valid UTF-8".into()));
        }
    }

    fn too_large(&self) -> ClientError {
        ClientError::TooLarge {
            limit: self.max_line,
        }
    }
}

/// Writes whole frames. What is not written yet stays in `pending`, so a write that
/// is cancelled half way is finished by the next one instead of leaving half a line.
#[derive(Debug)]
pub(super) struct LineWriter<W> {
    writer: W,
    pending: BytesMut,
}

impl<W: AsyncWrite + Unpin> LineWriter<W> {
    pub(super) fn new(writer: W) -> Self {
        LineWriter {
            writer,
            pending: BytesMut::new(),
        }
    }

    /// Queues `line` plus `\n`; the caller checked it holds no newline.
    pub(super) fn queue_line(&mut self, line: &str) {
        self.pending.extend_from_slice(line.as_bytes());
        self.pending.extend_from_slice(b"\n");
    }

    /// Queues bytes exactly as given.
    pub(super) fn queue_raw(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Writes out everything queued.
    pub(super) async fn flush(&mut self) -> io::Result<()> {
        while self.pending.has_remaining() {
            if self.writer.write_buf(&mut self.pending).await? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        if self.pending.capacity() > KEEP_OUT_BYTES {
            self.pending = BytesMut::new();
        }
        self.writer.flush().await
    }

    /// Ends the write side (TCP FIN) after flushing.
    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.writer.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    /// Reads all outcomes from `input` delivered in `chunk`-sized reads.
    async fn lines(input: &[u8], max: usize, chunk: usize) -> Vec<Result<String, String>> {
        let (mut tx, rx) = tokio::io::duplex(chunk.max(1));
        let data = input.to_vec();
        let feeder = tokio::spawn(async move {
            for piece in data.chunks(chunk.max(1)) {
                tx.write_all(piece).await.expect("write");
            }
        });
        let mut reader = LineReader::new(BufReader::with_capacity(chunk.max(1), rx), max);
        let mut out = Vec::new();
        loop {
            match reader.next_line().await {
                Ok(Some(line)) => out.push(Ok(line)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
        feeder.await.expect("feeder");
        out
    }

    #[tokio::test]
    async fn splits_lines_strips_cr_and_skips_blank_ones() {
        for chunk in [1, 3, 64] {
            let got = lines(b"{\"a\":1}\n\r\n  \n{\"b\":2}\r\n", 64, chunk).await;
            assert_eq!(
                got,
                vec![Ok("{\"a\":1}".to_owned()), Ok("{\"b\":2}".to_owned())],
                "chunk {chunk}"
            );
        }
    }

    #[tokio::test]
    async fn half_line_at_eof_is_ignored() {
        assert_eq!(lines(b"one\ntwo", 16, 4).await, vec![Ok("one".to_owned())]);
    }

    #[tokio::test]
    async fn oversized_line_is_reported_once_and_skipped() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\nnext\n");
        for chunk in [1, 7, 256] {
            let got = lines(&input, 10, chunk).await;
            assert_eq!(got.len(), 3, "chunk {chunk}: {got:?}");
            assert_eq!(got[0], Ok("ok".to_owned()));
            assert!(got[1].as_ref().is_err_and(|e| e.contains("10 bytes")));
            assert_eq!(got[2], Ok("next".to_owned()));
        }
    }

    #[tokio::test]
    async fn limit_counts_content_not_line_ending() {
        let exact = "y".repeat(10);
        let input = format!("{exact}\r\n{exact}y\n{exact}\n");
        for chunk in [1, 5, 64] {
            let got = lines(input.as_bytes(), 10, chunk).await;
            assert_eq!(got.len(), 3, "chunk {chunk}: {got:?}");
            assert_eq!(got[0], Ok(exact.clone()));
            assert!(got[1].is_err(), "11 bytes is over the limit");
            assert_eq!(got[2], Ok(exact.clone()));
        }
    }

    #[tokio::test]
    async fn invalid_utf8_is_an_error_for_that_line_only() {
        let got = lines(b"\xff\xfe\n{}\n", 16, 16).await;
        assert_eq!(got.len(), 2);
        assert!(got[0].as_ref().is_err_and(|e| e.contains("UTF-8")));
        assert_eq!(got[1], Ok("{}".to_owned()));
    }

    #[tokio::test]
    async fn writer_sends_queued_lines_in_order() {
        let (tx, rx) = tokio::io::duplex(4);
        let reader = tokio::spawn(async move {
            let mut r = LineReader::new(BufReader::new(rx), 64);
            let mut got = Vec::new();
            while let Ok(Some(line)) = r.next_line().await {
                got.push(line);
            }
            got
        });
        let mut w = LineWriter::new(tx);
        w.queue_line("{\"type\":\"ping\"}");
        w.queue_raw(b"{\"type\":");
        w.queue_raw(b"\"pong\"}\n");
        w.shutdown().await.expect("write");
        drop(w);
        assert_eq!(
            reader.await.expect("reader"),
            vec!["{\"type\":\"ping\"}", "{\"type\":\"pong\"}"]
        );
    }
}
