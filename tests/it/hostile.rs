//! The hostile-input catalogue: bad inputs on both transports, each asserting the exact
//! error or close code, that the server still serves another client afterwards, and
//! that a peer's mistake is never logged at ERROR. Split by theme; `raw` holds a
//! hand-rolled WebSocket client that can break the framing rules on purpose.

mod flood;
mod frames;
mod fuzz;
mod names;
mod raw;
mod slow;
mod upgrade;

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tracing_subscriber::layer::SubscriberExt;

/// Counts ERROR events on this thread (tests run on a current-thread runtime, so the
/// gateway's tasks log here too) for as long as it lives.
pub struct ErrorLog {
    count: Arc<AtomicUsize>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct CountErrors(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountErrors {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.fetch_add(1, Ordering::Relaxed);
            eprintln!("ERROR logged: {event:?}");
        }
    }
}

impl ErrorLog {
    pub fn capture() -> Self {
        let count = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(CountErrors(count.clone()));
        ErrorLog {
            count,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn assert_none(&self) {
        assert_eq!(
            self.count.load(Ordering::Relaxed),
            0,
            "a peer's mistake was logged at ERROR"
        );
    }
}

/// The server still serves: a new client on each transport logs in and gets a pong.
pub async fn still_serving(server: &TestServer) {
    for mut c in [server.ws("bystander").await, server.tcp("bystander2").await] {
        let pong = c.request(json!({"type": "ping"})).await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }
}

/// Asserts an `error` frame with `code`.
pub fn is_error(frame: &Value, code: &str) {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
}

/// The next frame is an `error` with `code`.
pub async fn expect_error(c: &mut Client, code: &str) -> Value {
    match c.next_within(WAIT).await {
        Some(Seen::Frame(f)) => {
            is_error(&f, code);
            f
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn error_log_sees_errors_from_spawned_tasks() {
    let log = ErrorLog::capture();
    tokio::spawn(async { tracing::error!("from a task") })
        .await
        .expect("join");
    assert_eq!(log.count.load(Ordering::Relaxed), 1);
}
