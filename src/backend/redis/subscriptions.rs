//! One task owns this replica's channel subscriptions. Requests queue up, each batch
//! becomes at most one SUBSCRIBE and one UNSUBSCRIBE (per slot when sharded), in request
//! order: a leave and a quick re-join cannot reorder and lose a member's messages, and a
//! reconnect storm of logins costs a few round trips, not one per user.

use super::unavailable;
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
    channel: String,
    delta: i64,
    done: oneshot::Sender<Result<(), BackendError>>,
}

pub(super) struct Subscriptions {
    tx: mpsc::Sender<Request>,
    channels: Arc<AtomicUsize>,
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
        tokio::spawn(run(sub, sharded, timeout, rx, channels.clone(), stop));
        Subscriptions { tx, channels }
    }

    /// Adds (`+1`) or removes (`-1`) one unit of local interest in `channel`; resolves once
    /// Redis confirmed any resulting SUBSCRIBE.
    pub(super) async fn change(&self, channel: String, delta: i64) -> Result<(), BackendError> {
        let (done, wait) = oneshot::channel();
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
    }

    /// Channels with local interest.
    pub(super) fn len(&self) -> usize {
        self.channels.load(Ordering::Relaxed)
    }
}

/// Subscribes to `channels` now: one call, or one per hash slot for sharded pub/sub.
pub(super) async fn subscribe(
    sub: &SubscriberClient,
    sharded: bool,
    channels: Vec<String>,
) -> Result<(), fred::error::Error> {
    if !sharded {
        return sub.subscribe(channels).await;
    }
    for group in by_slot(channels) {
        sub.ssubscribe(group).await?;
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
        // Net effect of the batch per channel: subscribed before vs after.
        let mut was: HashMap<String, bool> = HashMap::new();
        for r in &batch {
            was.entry(r.channel.clone())
                .or_insert_with(|| refs.get(&r.channel).copied().unwrap_or(0) > 0);
            *refs.entry(r.channel.clone()).or_insert(0) += r.delta;
        }
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
        let failed = if to_sub.is_empty() {
            None
        } else {
            let call = subscribe(&sub, sharded, to_sub.clone());
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(unavailable(err)),
                Err(_) => Some(unavailable("redis subscribe timed out")),
            }
        };
        if !to_unsub.is_empty() {
            // A failed UNSUBSCRIBE only leaves traffic that the hub drops.
            let _ = tokio::time::timeout(timeout, unsubscribe(&sub, sharded, to_unsub)).await;
        }
        for r in batch {
            let result = match &failed {
                Some(err) if r.delta > 0 && to_sub.contains(&r.channel) => {
                    // Roll back: the caller undoes its local join.
                    if let Some(n) = refs.get_mut(&r.channel) {
                        *n -= r.delta;
                        if *n == 0 {
                            refs.remove(&r.channel);
                        }
                    }
                    Err(err.clone())
                }
                _ => Ok(()),
            };
            let _ = r.done.send(result);
        }
        count.store(refs.len(), Ordering::Relaxed);
    }
}
