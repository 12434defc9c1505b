//! One task owns this replica's channel subscriptions. Requests queue up, each batch
//! becomes at most one SUBSCRIBE and one UNSUBSCRIBE (per slot when sharded), in request
//! order: a leave and a quick re-join cannot reorder and lose a member's messages, and a
//! reconnect storm of logins costs a few round trips, not one per user.

use super::{command_failed, unavailable};
use crate::backend::BackendError;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Most requests folded into one batch.
const BATCH: usize = 1024;

struct Request {
    /// The channel to change; `None` asks to re-subscribe every channel with interest
    /// (after a reconnect, or when the probe shows subscriptions were lost).
    channel: Option<String>,
    delta: i64,
    done: oneshot::Sender<Result<(), BackendError>>,
}

pub(super) struct Subscriptions {
    tx: mpsc::Sender<Request>,
    channels: Arc<AtomicUsize>,
    sub: SubscriberClient,
    timeout: Duration,
    /// Permanent channels whose first subscribe failed; added back on the next resync.
    pin: std::sync::Mutex<Vec<String>>,
}

impl Subscriptions {
    pub(super) fn start(
        sub: SubscriberClient,
        sharded: bool,
        timeout: Duration,
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(BATCH * 4);
        let channels = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(
            sub.clone(),
            sharded,
            timeout,
            rx,
            channels.clone(),
            stop,
        ));
        Subscriptions {
            tx,
            channels,
            sub,
            timeout,
            pin: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Adds (`+1`) or removes (`-1`) one unit of local interest in `channel`; resolves once
    /// Redis took any resulting SUBSCRIBE. Fails fast while disconnected and never waits
    /// longer than twice the Redis timeout.
    pub(super) async fn change(&self, channel: String, delta: i64) -> Result<(), BackendError> {
        if delta > 0 && !self.sub.is_connected() {
            return Err(unavailable("redis subscriber disconnected"));
        }
        self.request(Some(channel), delta).await
    }

    /// Permanent interest (broadcast, probe): counted even when the subscribe fails now,
    /// so the next resync brings it back.
    pub(super) async fn request_always(&self, channel: String) -> Result<(), BackendError> {
        let result = self.request(Some(channel.clone()), 1).await;
        if result.is_err() {
            self.pin
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(channel);
        }
        result
    }

    /// Re-subscribes every channel with local interest, from our own counts (fred's
    /// tracked set may hold channels we already released).
    pub(super) async fn resync(&self) -> Result<(), BackendError> {
        let pinned = std::mem::take(&mut *self.pin.lock().unwrap_or_else(|e| e.into_inner()));
        for channel in pinned {
            if self.request(Some(channel.clone()), 1).await.is_err() {
                self.pin
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(channel);
            }
        }
        self.request(None, 0).await
    }

    async fn request(&self, channel: Option<String>, delta: i64) -> Result<(), BackendError> {
        let (done, wait) = oneshot::channel();
        let send_and_wait = async {
            self.tx
                .send(Request {
                    channel,
                    delta,
                    done,
                })
                .await
                .map_err(|_| unavailable("subscription manager stopped"))?;
            wait.await
                .unwrap_or_else(|_| Err(unavailable("subscription manager stopped")))
        };
        tokio::time::timeout(self.timeout * 2, send_and_wait)
            .await
            .unwrap_or_else(|_| Err(unavailable("redis subscribe timed out")))
    }

    /// Channels with local interest.
    pub(super) fn len(&self) -> usize {
        self.channels.load(Ordering::Relaxed)
    }
}

/// Subscribes to `channels` now: one call, or one per hash slot (concurrently) for
/// sharded pub/sub. fred completes SUBSCRIBE once written, so a PING on the same
/// connection (answered in order) confirms Redis processed it.
pub(super) async fn subscribe(
    sub: &SubscriberClient,
    sharded: bool,
    channels: Vec<String>,
) -> Result<(), fred::error::Error> {
    if channels.is_empty() {
        return Ok(());
    }
    if sharded {
        let calls = by_slot(channels)
            .into_iter()
            .map(|group| sub.ssubscribe(group));
        futures_util::future::try_join_all(calls).await?;
    } else {
        sub.subscribe(channels).await?;
        sub.ping::<fred::types::Value>(None).await?;
    }
    Ok(())
}

async fn unsubscribe(
    sub: &SubscriberClient,
    sharded: bool,
    channels: Vec<String>,
) -> Result<(), fred::error::Error> {
    if !sharded {
        return sub.unsubscribe(channels).await;
    }
    for group in by_slot(channels) {
        sub.sunsubscribe(group).await?;
    }
    Ok(())
}

fn by_slot(channels: Vec<String>) -> Vec<Vec<String>> {
    let mut groups: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for channel in channels {
        let slot = fred::util::redis_keyslot(channel.as_bytes());
        groups.entry(slot).or_default().push(channel);
    }
    groups.into_values().collect()
}

async fn run(
    sub: SubscriberClient,
    sharded: bool,
    timeout: Duration,
    mut rx: mpsc::Receiver<Request>,
    count: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    let mut refs: HashMap<String, i64> = HashMap::new();
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => return,
            request = rx.recv() => match request {
                Some(request) => request,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let resync = batch.iter().any(|r| r.channel.is_none());
        // Net effect of the batch per channel: subscribed before vs after.
        let mut was: HashMap<String, bool> = HashMap::new();
        for r in &batch {
            let Some(channel) = &r.channel else { continue };
            was.entry(channel.clone())
                .or_insert_with(|| refs.get(channel).copied().unwrap_or(0) > 0);
            // Never below zero: a stray release must not swallow a later subscribe.
            let n = refs.entry(channel.clone()).or_insert(0);
            *n = (*n + r.delta).max(0);
        }
        let before = was.clone();
        let mut to_sub = Vec::new();
        let mut to_unsub = Vec::new();
        for (channel, before) in was {
            let now = refs.get(&channel).copied().unwrap_or(0);
            if now == 0 {
                refs.remove(&channel);
            }
            match (before, now > 0) {
                (false, true) => to_sub.push(channel),
                (true, false) => to_unsub.push(channel),
                _ => {}
            }
        }
        if resync {
            // Everything with interest, not only what this batch added.
            to_sub = refs.keys().cloned().collect();
        }
        let failed = if to_sub.is_empty() {
            None
        } else {
            let call = subscribe(&sub, sharded, to_sub.clone());
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(command_failed(err)),
                Err(_) => Some(unavailable("redis subscribe timed out")),
            }
        };
        if !to_unsub.is_empty() {
            // A failed UNSUBSCRIBE only leaves traffic that the hub drops.
            let _ = tokio::time::timeout(timeout, unsubscribe(&sub, sharded, to_unsub)).await;
        }
        for r in batch {
            let result = match (&failed, &r.channel) {
                (Some(err), None) => Err(err.clone()),
                (Some(err), Some(channel)) if r.delta > 0 && !was_subscribed(&before, channel) => {
                    // Roll back: the caller undoes its local join.
                    if let Some(n) = refs.get_mut(channel) {
                        *n = (*n - r.delta).max(0);
                        if *n == 0 {
                            refs.remove(channel);
                        }
                    }
                    Err(err.clone())
                }
                _ => Ok(()),
            };
            let _ = r.done.send(result);
        }
        crate::sparse::shrink_when_sparse(&mut refs);
        count.store(refs.len(), Ordering::Relaxed);
    }
}

/// True when the channel was already subscribed before the failed batch.
fn was_subscribed(before: &HashMap<String, bool>, channel: &str) -> bool {
    before.get(channel).copied().unwrap_or(false)
}
