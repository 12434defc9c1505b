//! Redis backend (fred): replicas share pub/sub channels, ordered logs and presence.
//!
//! Layout (prefix `sb`, see docs/ARCHITECTURE.md): channels `sb:room:<r>`, `sb:user:<u>`,
//! `sb:all`, `sb:probe:<replica>`; keys hash-tagged per room (`sb:{r:<r>}:…`), per user
//! (`sb:{u:<u>}:…`) and for the online list (`sb:{online}:…`), so every Lua script
//! touches one cluster slot. Multi-key work is done by the scripts beside this file.
//!
//! Here: the connection, readiness probe and command helpers; `keys` names everything,
//! `scripts` loads the Lua, `bus` publishes and receives events, `presence` keeps this
//! replica's sessions alive in the shared store, `games` holds game rooms, `matcher` the
//! ranked queue (`rank_queue`: the replica's copy of it).

mod bus;
mod games;
mod keys;
mod matcher;
mod presence;
mod rank_queue;
mod scripts;
mod subscriptions;

use keys::Keys;
use scripts::Scripts;

use subscriptions::Subscriptions;

use super::{BackendError, Bus, Membership, OnlinePage, Presence, Published, Replay};
use crate::config::Config;
use crate::event::{Epoch, Event, EventSink, LocalSnapshot, Position, Topic};
use crate::metrics::Metrics;
use crate::protocol::{Member, RoomId, UserId};
use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Value as RedisValue;
use fred::types::scripts::Script;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
/// Runs the calls concurrently; returns how many failed.
async fn failed<T>(
    calls: impl Iterator<Item = impl std::future::Future<Output = Result<T, BackendError>>>,
) -> usize {
    futures_util::future::join_all(calls)
        .await
        .iter()
        .filter(|r| r.is_err())
        .count()
}

fn now_ms() -> u64 {
    crate::clock::unix_millis()
}

fn unavailable(why: &'static str) -> BackendError {
    BackendError::Unavailable(why)
}

/// Data that does not have the shape we store (or cannot be encoded).
fn bad_reply(err: impl std::fmt::Display) -> BackendError {
    BackendError::Reply(err.to_string())
}

/// A command Redis answered with an error (or the client failed to send it).
fn command_failed(err: fred::error::Error) -> BackendError {
    BackendError::Command(Arc::new(err))
}

/// Pub/sub messages the subscriber client buffers for the receiving task.
const SUBSCRIBER_RING: usize = 16 * 1024;
/// Longest pause between two reconnect attempts of a client.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// Shared state of a replica's Redis connection.
pub struct RedisBackend {
    cmd: Client,
    sub: SubscriberClient,
    keys: Keys,
    scripts: Scripts,
    hub: Arc<dyn EventSink>,
    metrics: Arc<Metrics>,
    replica: String,
    /// Batched, ordered SUBSCRIBE/UNSUBSCRIBE by local interest.
    subs: Subscriptions,
    /// Redis Cluster: sharded pub/sub (SPUBLISH/SSUBSCRIBE) per slot.
    sharded: bool,
    history_size: usize,
    inbox_size: usize,
    history_ttl_ms: u64,
    inbox_ttl_ms: u64,
    presence_ttl: Duration,
    game_ttl: Duration,
    msg_id_ttl: Duration,
    timeout: Duration,
    /// The ranked queue as this replica's matcher last read it.
    rank_cache: std::sync::Mutex<rank_queue::QueueCache>,
    /// Last position dispatched per logged topic, to notice and fill gaps.
    last_seen: std::sync::Mutex<std::collections::HashMap<Topic, Position>>,
    /// Our probe channels (one per shard in Cluster mode) and when each probe last came
    /// back through the subscriber (ms epoch).
    probes: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    probe_interval: Duration,
    /// Wakes the probe loop right after a (re)connection, so readiness returns at once.
    probe_now: tokio::sync::Notify,
    /// Wakes the presence refresh right after the command connection (re)connects: a
    /// Redis that restarted empty has this replica's users back within a round trip.
    refresh_now: tokio::sync::Notify,
    /// Set when a command timed out and none answered since: Redis is stalled (SIGSTOP,
    /// a slow script), so calls fail at once instead of each queueing behind the last
    /// for a full timeout. The next answer, or the probe's, clears it.
    stalled: std::sync::atomic::AtomicBool,
    /// Wakes the receive loop to read, from the logs, what was published while the
    /// subscriber was away (set after every re-subscription).
    catch_up_now: tokio::sync::Notify,
    /// Until when recovery reads may wait for the command client: set by the first read
    /// that finds commands down (one reconnect delay plus the timeout later), cleared on
    /// every reconnection and once commands answer, so an outage costs the receive loop
    /// one bounded wait, not one per gap.
    recovery_until: std::sync::Mutex<Option<Instant>>,
    /// A catch-up could not read (some of) the logs: redo it when commands return.
    catch_up_pending: std::sync::atomic::AtomicBool,
    stop: CancellationToken,
}

impl RedisBackend {
    /// Connects both clients and starts the subscriber, probe and presence loops.
    /// A Redis that is down at startup is retried in the background (not ready meanwhile).
    pub async fn connect(
        config: &Config,
        url: &str,
        hub: Arc<dyn EventSink>,
        metrics: Arc<Metrics>,
        replica: String,
    ) -> Result<Arc<Self>, super::ConnectError> {
        let cluster = config.redis_cluster || url.starts_with("redis-cluster://");
        let redis_config = if cluster {
            fred::types::config::Config::from_url_clustered(&url.replacen(
                "redis-cluster://",
                "redis://",
                1,
            ))
        } else {
            fred::types::config::Config::from_url(url)
        }
        .map_err(|e| super::ConnectError::Url(e.to_string()))?;
        let mut redis_config = redis_config;
        // A Redis that is not up yet is retried like a lost connection, however long it
        // takes (compose and Kubernetes start everything at once).
        redis_config.fail_fast = false;
        let mut builder = Builder::from_config(redis_config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = config.redis_timeout;
                c.internal_command_timeout = config.redis_timeout;
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = config.redis_timeout;
            })
            // Capped at 1 s so a replica is ready about a second after Redis answers.
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                100,
                RECONNECT_MAX_DELAY.as_millis() as u32,
                2,
            ));
        // The command client receives no pub/sub messages: fred's default capacity (32)
        // serves its error and reconnect notices. Each client allocates eight broadcast
        // rings of this capacity up front, so 16 Ki on both cost ~27 MB of idle RSS.
        let cmd = builder
            .build()
            .map_err(|e| super::ConnectError::Client(e.to_string()))?;
        // The subscriber's ring absorbs bursts while the receiving task is busy; past it
        // messages are skipped (`Lagged`) and logged topics refill from their logs.
        builder.with_performance_config(|p| p.broadcast_channel_capacity = SUBSCRIBER_RING);
        let sub = builder
            .build_subscriber_client()
            .map_err(|e| super::ConnectError::Client(format!("subscriber: {e}")))?;
        let stop = CancellationToken::new();
        let keys_probe = Keys {
            prefix: config.redis_prefix.clone(),
        }
        .probe(&replica);
        let backend = Arc::new(RedisBackend {
            cmd,
            sub: sub.clone(),
            keys: Keys {
                prefix: config.redis_prefix.clone(),
            },
            scripts: Scripts::new(),
            hub,
            metrics,
            replica,
            subs: Subscriptions::start(sub.clone(), cluster, config.redis_timeout, stop.clone()),
            sharded: cluster,
            history_size: config.history_size,
            inbox_size: config.inbox_size,
            history_ttl_ms: config.history_ttl.as_millis() as u64,
            inbox_ttl_ms: config.inbox_ttl.as_millis() as u64,
            presence_ttl: config.presence_ttl,
            game_ttl: config.game_ttl,
            msg_id_ttl: config.msg_id_ttl,
            timeout: config.redis_timeout,
            rank_cache: std::sync::Mutex::default(),
            last_seen: std::sync::Mutex::default(),
            probes: std::sync::Mutex::new(std::collections::HashMap::from([(
                keys_probe.clone(),
                0,
            )])),
            probe_interval: config.redis_probe_interval,
            probe_now: tokio::sync::Notify::new(),
            refresh_now: tokio::sync::Notify::new(),
            stalled: Default::default(),
            catch_up_now: tokio::sync::Notify::new(),
            recovery_until: std::sync::Mutex::new(None),
            catch_up_pending: Default::default(),
            stop,
        });
        backend.cmd.connect();
        backend.sub.connect();
        for (client, subscriber) in [
            (backend.cmd.clone(), false),
            (backend.sub.to_client(), true),
        ] {
            let this = backend.clone();
            let mut reconnects = client.reconnect_rx();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = this.stop.cancelled() => return,
                        r = reconnects.recv() => match r {
                            Ok(server) => {
                                this.metrics.redis_reconnects.inc();
                                tracing::info!(%server, subscriber, "redis connected");
                                // A fresh connection answers: the refresh and catch-up
                                // below must not fail fast on the old stall, and the
                                // next outage gets its own recovery wait.
                                this.stalled.store(false, Ordering::Release);
                                this.end_recovery_wait();
                                // Our own counts decide what to re-subscribe.
                                if subscriber {
                                    match this.subs.resync().await {
                                        Ok(()) => this.catch_up_now.notify_one(),
                                        Err(err) => tracing::warn!(cause = %err, "re-subscribing after reconnect failed"),
                                    }
                                }
                                this.probe_now.notify_one();
                                if !subscriber {
                                    this.refresh_now.notify_one();
                                    // A catch-up that failed while only the subscriber
                                    // was back is redone now.
                                    if this.catch_up_pending.swap(false, Ordering::AcqRel) {
                                        this.catch_up_now.notify_one();
                                    }
                                }
                            }
                            Err(RecvError::Lagged(_)) => {}
                            Err(RecvError::Closed) => return,
                        }
                    }
                }
            });
        }
        let wait = async {
            backend.cmd.wait_for_connect().await?;
            backend.sub.wait_for_connect().await
        };
        // Bounded: the listeners are open meanwhile; an absent Redis only means "not ready".
        let connected = matches!(
            tokio::time::timeout(config.redis_timeout, wait).await,
            Ok(Ok(()))
        );
        if connected {
            tracing::info!("redis backend connected");
        } else {
            tracing::warn!("redis not reachable yet; retrying in the background (not ready)");
        }
        // Every replica always listens to broadcasts and to its own probe: permanent
        // interest, re-subscribed with everything else.
        let base = {
            let backend = backend.clone();
            async move {
                for channel in [
                    backend.keys.channel(&Topic::All),
                    backend.keys.probe(&backend.replica),
                ] {
                    if let Err(err) = backend.subs.request_always(channel).await {
                        tracing::warn!(cause = %err, "base subscription failed; retried by the probe");
                    }
                }
            }
        };
        if connected {
            base.await;
        } else {
            tokio::spawn(base);
        }
        tokio::spawn(backend.clone().receive());
        tokio::spawn(backend.clone().probe_loop());
        tokio::spawn(backend.clone().presence_loop());
        Ok(backend)
    }

    /// Stops the background loops and closes both connections.
    pub async fn close(&self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(self.timeout, self.sub.quit()).await;
        let _ = tokio::time::timeout(self.timeout, self.cmd.quit()).await;
    }

    /// True when commands reach Redis and our own probe came back through the
    /// subscriber recently: subscriptions really work, not just PING.
    pub fn healthy(&self) -> bool {
        let now = now_ms();
        let window = (self.probe_interval * 3).as_millis() as u64;
        // In Cluster mode every shard's probe must come back, not just one.
        let fresh = self
            .probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(|&seen| now.saturating_sub(seen) < window);
        let up = self.cmd.is_connected() && self.sub.is_connected() && fresh;
        self.metrics.redis_up.set(i64::from(up));
        up
    }

    /// True once commands can go out (connected, not failing fast after a stall). While
    /// they cannot, waits for them until `recovery_until` (started now if no wait is
    /// running): the subscriber often comes back a few milliseconds before the command
    /// client, and a recovery read (catch-up, gap fill) failing fast then would lose
    /// those messages for good. Once that wait ran out, answers at once until commands
    /// return, so an outage stalls the receive loop once, not once per gap.
    async fn commands_ready(&self) -> bool {
        let ready = || self.cmd.is_connected() && !self.stalled.load(Ordering::Acquire);
        if ready() {
            self.end_recovery_wait();
            return true;
        }
        let until = *self
            .recovery_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| Instant::now() + RECONNECT_MAX_DELAY + self.timeout);
        while Instant::now() < until && !self.stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if ready() {
                self.end_recovery_wait();
                return true;
            }
        }
        false
    }

    /// Connected again, or commands answer: the next outage gets its own recovery wait.
    fn end_recovery_wait(&self) {
        *self
            .recovery_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Runs one Redis call: fails fast when disconnected, bounded by the timeout, timed.
    /// fred's command futures are ~13 KiB each: boxed once, here, so that the futures
    /// awaiting this one (and `async_trait`'s boxes around them) stay small instead of
    /// copying those kilobytes at every level.
    fn call<'a, R: Send + 'a>(
        &'a self,
        request: impl Future<Output = Result<R, fred::error::Error>> + Send + 'a,
    ) -> impl Future<Output = Result<R, BackendError>> + Send + 'a {
        let request = Box::pin(request);
        async move {
            if !self.cmd.is_connected() {
                self.metrics
                    .redis_errors
                    .with_label_values(&["disconnected"])
                    .inc();
                return Err(unavailable("redis disconnected"));
            }
            if self.stalled.load(Ordering::Acquire) {
                self.metrics
                    .redis_errors
                    .with_label_values(&["stalled"])
                    .inc();
                return Err(unavailable("redis stalled"));
            }
            let started = Instant::now();
            let result = tokio::time::timeout(self.timeout, request).await;
            self.metrics
                .redis_command_seconds
                .observe(started.elapsed().as_secs_f64());
            let failed = |kind: &str| self.metrics.redis_errors.with_label_values(&[kind]).inc();
            match result {
                Ok(Ok(value)) => {
                    self.stalled.store(false, Ordering::Release);
                    Ok(value)
                }
                Ok(Err(err)) if *err.kind() != fred::error::ErrorKind::Timeout => {
                    self.stalled.store(false, Ordering::Release);
                    failed("command");
                    Err(command_failed(err))
                }
                // Our timeout or fred's own (the same length): Redis did not answer.
                _ => {
                    failed("timeout");
                    if !self.stalled.swap(true, Ordering::AcqRel) {
                        tracing::warn!(
                            timeout_ms = self.timeout.as_millis() as u64,
                            "redis command timed out; failing fast until redis answers again"
                        );
                    }
                    Err(unavailable("redis command timed out"))
                }
            }
        }
    }

    async fn eval<R: FromValue + Send>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, BackendError> {
        self.call(script.evalsha_with_reload::<R, _, _>(&self.cmd, keys, args))
            .await
    }

    /// One probe channel per primary in Cluster mode (sharded pub/sub runs a connection
    /// per shard, and any of them can lose its subscriptions), else the one channel.
    /// New channels are subscribed; a channel whose shard is gone stops being awaited.
    async fn probe_channels(&self) -> Vec<String> {
        let base = self.keys.probe(&self.replica);
        let Some(state) = self
            .sharded
            .then(|| self.cmd.cached_cluster_state())
            .flatten()
        else {
            self.metrics.redis_probe_shards.set(1);
            return vec![base];
        };
        let slots = state.slots();
        let mut wanted: Vec<String> = Vec::new();
        let mut covered = std::collections::HashSet::new();
        let primaries = state.unique_primary_nodes().len();
        for i in 0..4096u32 {
            if covered.len() >= primaries {
                break;
            }
            let channel = self.keys.probe(&format!("{}:{i}", self.replica));
            let slot = fred::util::redis_keyslot(channel.as_bytes());
            if let Some(range) = slots.iter().find(|r| r.start <= slot && slot <= r.end)
                && covered.insert(range.primary.clone())
            {
                wanted.push(channel);
            }
        }
        if wanted.is_empty() {
            return vec![base];
        }
        let new: Vec<String> = {
            let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
            probes.retain(|channel, _| wanted.contains(channel));
            let new: Vec<String> = wanted
                .iter()
                .filter(|c| !probes.contains_key(*c))
                .cloned()
                .collect();
            // A new channel counts as seen now: it gets `probe_interval * 3` to answer.
            for channel in &new {
                probes.insert(channel.clone(), now_ms());
            }
            new
        };
        for channel in new {
            if let Err(err) = self.subs.request_always(channel).await {
                tracing::warn!(cause = %err, "probe subscription failed; retried by the probe");
            }
        }
        self.metrics.redis_probe_shards.set(wanted.len() as i64);
        wanted
    }

    /// Publishes a probe to our own channel(s); `healthy` checks that they come back.
    async fn probe_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.probe_interval);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.probe_now.notified() => {}
            }
            if self.cmd.is_connected() {
                let sent = now_ms().to_string();
                let channels = self.probe_channels().await;
                let probes = channels.iter().map(|channel| async {
                    let probe = async {
                        if self.sharded {
                            self.cmd
                                .spublish::<i64, _, _>(channel.as_str(), sent.as_str())
                                .await
                        } else {
                            self.cmd
                                .publish::<i64, _, _>(channel.as_str(), sent.as_str())
                                .await
                        }
                    };
                    matches!(tokio::time::timeout(self.timeout, probe).await, Ok(Ok(_)))
                });
                let answered = futures_util::future::join_all(probes).await;
                if answered.iter().any(|ok| *ok) && self.stalled.swap(false, Ordering::AcqRel) {
                    // What failed fast meanwhile is redone now, not at the next tick.
                    tracing::info!("redis answers again");
                    self.end_recovery_wait();
                    self.refresh_now.notify_one();
                    self.catch_up_now.notify_one();
                }
            }
            self.metrics
                .redis_subscribed_channels
                .set(self.subs.len() as i64);
            if !self.healthy() && self.sub.is_connected() {
                // Connected but our probe does not come back: subscriptions were lost
                // (or never made, if Redis was down at startup). Restore them all.
                if let Err(err) = self.subs.resync().await {
                    tracing::warn!(cause = %err, "restoring subscriptions failed");
                }
            }
        }
    }
}
