//! A session's outbound queue, bounded by frames and by bytes. It lives inside the
//! session's hub handle and allocates nothing until the first frame: an idle connection
//! costs a few dozen bytes here instead of a channel's shared state and first block
//! (~800 bytes with `tokio::sync::mpsc`).

use crate::event::Delivery;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Queues above this capacity (128 bytes of slots) give it back once drained: a burst
/// does not pin its peak for the connection's life.
const KEEP_CAPACITY: usize = 16;

pub struct Outbox {
    state: Mutex<State>,
    /// Woken on the first frame queued after the writer looked.
    ready: Notify,
    max_frames: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Arc<Delivery>>,
    bytes: usize,
    closed: bool,
}

/// What one `take` moved out.
#[derive(Debug, PartialEq, Eq)]
pub struct Taken {
    /// Bytes of the frames taken.
    pub bytes: usize,
    /// Frames that were queued before the take (the queue's depth at that wake).
    pub depth: usize,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds `max_frames` already.
    Full,
    /// The frame would take the queued bytes past `max_bytes`.
    OverBytes,
    /// The session is gone; the frame is not for anyone.
    Closed,
}

impl Outbox {
    /// At most `max_frames` frames and `max_bytes` bytes queued (one frame larger than
    /// `max_bytes` still passes an empty queue).
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a shared frame.
    pub fn push(&self, delivery: &Arc<Delivery>) -> Result<(), Refused> {
        let len = delivery.frame.len();
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.frames.len() >= self.max_frames {
            return Err(Refused::Full);
        }
        if state.bytes > 0 && state.bytes.saturating_add(len) > self.max_bytes {
            return Err(Refused::OverBytes);
        }
        let was_empty = state.frames.is_empty();
        state.frames.push_back(delivery.clone());
        state.bytes += len;
        drop(state);
        if was_empty {
            // A writer that found the queue empty waits for this (or finds the permit).
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Resolves once a frame is queued (at once if one is). Cancel-safe: the queue is
    /// only read by `take`.
    pub async fn ready(&self) {
        loop {
            let notified = self.ready.notified();
            if !self.state().frames.is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Moves up to `max` queued frames into `out`, oldest first.
    pub fn take(&self, out: &mut Vec<Arc<Delivery>>, max: usize) -> Taken {
        let mut state = self.state();
        let depth = state.frames.len();
        let n = depth.min(max);
        let mut bytes = 0;
        for d in state.frames.drain(..n) {
            bytes += d.frame.len();
            out.push(d);
        }
        state.bytes = state.bytes.saturating_sub(bytes);
        if state.frames.is_empty() && state.frames.capacity() > KEEP_CAPACITY {
            state.frames = VecDeque::new();
        }
        Taken { bytes, depth }
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.state().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses every later frame and drops the queued ones; returns how many frames and
    /// bytes were dropped (never to be written).
    pub fn close(&self) -> (usize, usize) {
        let mut state = self.state();
        state.closed = true;
        let dropped = (state.frames.len(), state.bytes);
        state.frames = VecDeque::new();
        state.bytes = 0;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerFrame;
    use std::time::Duration;

    fn delivery(n: u64) -> Arc<Delivery> {
        let id = serde_json::json!(n);
        Arc::new(Delivery {
            frame: ServerFrame::Pong { id: Some(&id) }.encode(),
            order: None,
        })
    }

    #[test]
    fn bounded_by_frames_and_bytes() {
        let small = delivery(1);
        let by_frames = Outbox::new(2, usize::MAX);
        assert_eq!(by_frames.push(&small), Ok(()));
        assert_eq!(by_frames.push(&small), Ok(()));
        assert_eq!(by_frames.push(&small), Err(Refused::Full));

        let large = delivery(u64::MAX);
        assert!(large.frame.len() > small.frame.len());
        let by_bytes = Outbox::new(100, small.frame.len() + 1);
        // One frame larger than the cap still passes an empty queue.
        assert_eq!(by_bytes.push(&large), Ok(()));
        assert_eq!(by_bytes.push(&small), Err(Refused::OverBytes));
        let mut out = Vec::new();
        assert_eq!(by_bytes.take(&mut out, 10).bytes, large.frame.len());
        assert_eq!(by_bytes.push(&small), Ok(()));
    }

    #[test]
    fn take_is_oldest_first_and_bounded() {
        let outbox = Outbox::new(100, usize::MAX);
        let frames: Vec<_> = (0..5).map(delivery).collect();
        for d in &frames {
            outbox.push(d).expect("queued");
        }
        let mut out = Vec::new();
        outbox.take(&mut out, 3);
        assert!(out.iter().zip(&frames).all(|(a, b)| Arc::ptr_eq(a, b)));
        assert_eq!((out.len(), outbox.len()), (3, 2));
    }

    #[test]
    fn closed_refuses_and_reports_what_it_dropped() {
        let outbox = Outbox::new(100, usize::MAX);
        let d = delivery(0);
        outbox.push(&d).expect("queued");
        outbox.push(&d).expect("queued");
        assert_eq!(outbox.close(), (2, 2 * d.frame.len()));
        assert_eq!(outbox.push(&d), Err(Refused::Closed));
        assert!(outbox.is_empty());
    }

    #[test]
    fn a_drained_burst_gives_its_capacity_back() {
        let outbox = Outbox::new(10_000, usize::MAX);
        let d = delivery(0);
        for _ in 0..1000 {
            outbox.push(&d).expect("queued");
        }
        let mut out = Vec::new();
        outbox.take(&mut out, usize::MAX);
        assert_eq!(outbox.state().frames.capacity(), 0);
    }

    #[tokio::test]
    async fn ready_wakes_on_a_push_made_before_or_while_waiting() {
        let outbox = Arc::new(Outbox::new(10, usize::MAX));
        let d = delivery(0);
        // Pushed before anyone waits: the permit (and the queue) make it ready at once.
        outbox.push(&d).expect("queued");
        tokio::time::timeout(Duration::from_secs(1), outbox.ready())
            .await
            .expect("ready");
        outbox.take(&mut Vec::new(), 10);
        // Pushed while waiting.
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.ready().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "nothing queued yet");
        outbox.push(&d).expect("queued");
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("joined");
    }
}
