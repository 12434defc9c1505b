//! Accepting sockets, the same way for every listener (HTTP, admin, raw TCP): Nagle off
//! on each socket, and when accept fails (out of file descriptors) a growing pause
//! instead of a spin, with one warning a second instead of one per attempt.

use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

/// A listener with its accept-error state.
pub struct Acceptor {
    listener: TcpListener,
    /// Names the listener in logs.
    what: &'static str,
    backoff: Duration,
    last_warning: Option<Instant>,
}

impl Acceptor {
    pub fn new(listener: TcpListener, what: &'static str) -> Self {
        Acceptor {
            listener,
            what,
            backoff: Duration::ZERO,
            last_warning: None,
        }
    }

    /// The next connection, or `None` once `stop` fires.
    pub async fn next(&mut self, stop: &CancellationToken) -> Option<TcpStream> {
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = stop.cancelled() => return None,
            };
            match accepted {
                Ok((stream, _peer)) => {
                    self.backoff = Duration::ZERO;
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(listener = self.what, cause = %err, "set_nodelay failed");
                    }
                    return Some(stream);
                }
                Err(err) => {
                    if self
                        .last_warning
                        .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
                    {
                        tracing::warn!(listener = self.what, cause = %err, "accept failed; backing off");
                        self.last_warning = Some(Instant::now());
                    }
                    self.backoff =
                        (self.backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    tokio::select! {
                        _ = sleep(self.backoff) => {}
                        _ = stop.cancelled() => return None,
                    }
                }
            }
        }
    }
}
