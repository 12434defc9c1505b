//! Redis backend (fred): replicas share pub/sub channels, ordered logs and presence.
//!
//! Layout (prefix `sb`, see docs/ARCHITECTURE.md): channels `sb:room:<r>`, `sb:user:<u>`,
//! `sb:all`, `sb:probe:<replica>`; keys hash-tagged per room (`sb:{r:<r>}:…`), per user
//! (`sb:{u:<u>}:…`) and for the online list (`sb:{online}:…`), so every Lua script
//! touches one cluster slot. Multi-key work is done by the scripts beside this file.

mod games;
mod subscriptions;

use subscriptions::Subscriptions;

use super::{BackendError, Bus, Event, EventSink, Membership, OnlinePage, Presence, Replay, Topic};
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::protocol::{Member, RoomId, UserId};
use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::Value as RedisValue;
use fred::types::scripts::Script;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

struct Scripts {
    publish_logged: Script,
    replay: Script,
    mark_delivered: Script,
    session_add: Script,
    session_remove: Script,
    room_join: Script,
    room_leave: Script,
    room_members: Script,
    online_touch: Script,
    online_remove: Script,
    online_page: Script,
    names: Script,
    range: Script,
    game_create: Script,
    game_join: Script,
    game_watch: Script,
    game_seat: Script,
    game_close: Script,
    rank_enqueue: Script,
    rank_dequeue: Script,
    rank_match: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            publish_logged: Script::from_lua(include_str!("publish_logged.lua")),
            replay: Script::from_lua(include_str!("replay.lua")),
            mark_delivered: Script::from_lua(include_str!("mark_delivered.lua")),
            session_add: Script::from_lua(include_str!("session_add.lua")),
            session_remove: Script::from_lua(include_str!("session_remove.lua")),
            room_join: Script::from_lua(include_str!("room_join.lua")),
            room_leave: Script::from_lua(include_str!("room_leave.lua")),
            room_members: Script::from_lua(include_str!("room_members.lua")),
            online_touch: Script::from_lua(include_str!("online_touch.lua")),
            online_remove: Script::from_lua(include_str!("online_remove.lua")),
            online_page: Script::from_lua(include_str!("online_page.lua")),
            names: Script::from_lua(include_str!("names.lua")),
            range: Script::from_lua(include_str!("range.lua")),
            game_create: Script::from_lua(include_str!("game_create.lua")),
            game_join: Script::from_lua(include_str!("game_join.lua")),
            game_watch: Script::from_lua(include_str!("game_watch.lua")),
            game_seat: Script::from_lua(include_str!("game_seat.lua")),
            game_close: Script::from_lua(include_str!("game_close.lua")),
            rank_enqueue: Script::from_lua(include_str!("rank_enqueue.lua")),
            rank_dequeue: Script::from_lua(include_str!("rank_dequeue.lua")),
            rank_match: Script::from_lua(include_str!("rank_match.lua")),
        }
    }
}

/// Key and channel names under one prefix.
struct Keys {
    prefix: String,
}

impl Keys {
    /// The hash tag shared by a topic's channel and keys (one cluster slot).
    fn tag(topic: &Topic) -> String {
        match topic {
            Topic::Room(r) => format!("{{r:{r}}}"),
            Topic::User(u) => format!("{{u:{u}}}"),
            Topic::All => "{all}".to_owned(),
            Topic::Game(g) => format!("{{g:{g}}}"),
        }
    }

    fn channel(&self, topic: &Topic) -> String {
        format!("{}:{}:ch", self.prefix, Self::tag(topic))
    }

    fn topic(&self, channel: &str) -> Option<Topic> {
        let tag = channel
            .strip_prefix(&self.prefix)?
            .strip_prefix(":{")?
            .strip_suffix("}:ch")?;
        if tag == "all" {
            return Some(Topic::All);
        }
        match tag.split_once(':')? {
            ("r", name) => RoomId::new(name).ok().map(Topic::Room),
            ("u", name) => UserId::new(name).ok().map(Topic::User),
            ("g", name) => RoomId::new(name).ok().map(Topic::Game),
            _ => None,
        }
    }

    fn probe(&self, replica: &str) -> String {
        format!("{}:{{probe:{replica}}}:ch", self.prefix)
    }

    /// `{seq, log}` keys of a logged topic.
    fn log(&self, topic: &Topic) -> Vec<String> {
        let tag = Self::tag(topic);
        vec![
            format!("{}:{tag}:seq", self.prefix),
            format!("{}:{tag}:log", self.prefix),
        ]
    }

    fn user(&self, user: &UserId, what: &str) -> String {
        format!("{}:{{u:{user}}}:{what}", self.prefix)
    }

    fn room_user(&self, room: &RoomId, user: &UserId) -> String {
        format!("{}:{{r:{room}}}:u:{user}", self.prefix)
    }

    fn room_users(&self, room: &RoomId) -> String {
        format!("{}:{{r:{room}}}:users", self.prefix)
    }

    fn online(&self) -> Vec<String> {
        ["exp", "lex", "names"]
            .iter()
            .map(|k| format!("{}:{{online}}:{k}", self.prefix))
            .collect()
    }
}

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
    crate::auth::unix_millis()
}

fn unavailable(err: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(err.to_string())
}

/// Shared state of a replica's Redis connection.
pub struct RedisBackend {
    cmd: Client,
    sub: SubscriberClient,
    keys: Keys,
    scripts: Scripts,
    hub: Arc<Hub>,
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
    timeout: Duration,
    /// Last seq dispatched per logged topic, to notice and fill gaps.
    last_seen: std::sync::Mutex<std::collections::HashMap<Topic, u64>>,
    /// When our own probe message last came back through the subscriber (ms epoch).
    probe_seen_ms: AtomicU64,
    probe_interval: Duration,
    /// Wakes the probe loop right after a (re)connection, so readiness returns at once.
    probe_now: tokio::sync::Notify,
    stop: CancellationToken,
}

impl RedisBackend {
    /// Connects both clients and starts the subscriber, probe and presence loops.
    /// A Redis that is down at startup is retried in the background (not ready meanwhile).
    pub async fn connect(
        config: &Config,
        url: &str,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        replica: String,
    ) -> Result<Arc<Self>, String> {
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
        .map_err(|e| format!("SWITCHBOARD_REDIS_URL: {e}"))?;
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
                p.broadcast_channel_capacity = 16 * 1024;
            })
            // Capped at 1 s so a replica is ready about a second after Redis answers.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 1_000, 2));
        let cmd = builder.build().map_err(|e| format!("redis client: {e}"))?;
        let sub = builder
            .build_subscriber_client()
            .map_err(|e| format!("redis subscriber: {e}"))?;
        let stop = CancellationToken::new();
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
            timeout: config.redis_timeout,
            last_seen: std::sync::Mutex::default(),
            probe_seen_ms: AtomicU64::new(0),
            probe_interval: config.redis_probe_interval,
            probe_now: tokio::sync::Notify::new(),
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
                                // Our own counts decide what to re-subscribe.
                                if subscriber && let Err(err) = this.subs.resync().await {
                                    tracing::warn!(cause = %err, "re-subscribing after reconnect failed");
                                }
                                this.probe_now.notify_one();
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
        let fresh = now_ms().saturating_sub(self.probe_seen_ms.load(Ordering::Acquire))
            < (self.probe_interval * 3).as_millis() as u64;
        let up = self.cmd.is_connected() && self.sub.is_connected() && fresh;
        self.metrics.redis_up.set(i64::from(up));
        up
    }

    /// Runs one Redis call: fails fast when disconnected, bounded by the timeout, timed.
    async fn call<R>(
        &self,
        request: impl std::future::Future<Output = Result<R, fred::error::Error>>,
    ) -> Result<R, BackendError> {
        if !self.cmd.is_connected() {
            return Err(unavailable("redis disconnected"));
        }
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, request).await;
        self.metrics
            .redis_command_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(unavailable(err)),
            Err(_) => Err(unavailable("redis command timed out")),
        }
    }

    async fn eval<R: FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, BackendError> {
        self.call(script.evalsha_with_reload::<R, _, _>(&self.cmd, keys, args))
            .await
    }

    /// Forwards every pub/sub message to the local hub.
    async fn receive(self: Arc<Self>) {
        let mut rx = self.sub.message_rx();
        let probe = self.keys.probe(&self.replica);
        loop {
            let message = tokio::select! {
                _ = self.stop.cancelled() => return,
                m = rx.recv() => m,
            };
            match message {
                Ok(message) => {
                    let channel: &str = &message.channel;
                    if channel == probe {
                        self.probe_seen_ms.store(now_ms(), Ordering::Release);
                        continue;
                    }
                    self.deliver(channel, &message.value).await;
                }
                Err(RecvError::Lagged(n)) => {
                    self.metrics.bus_lost_messages.inc_by(n);
                    tracing::warn!(lost = n, "pub/sub receiver lagged; messages dropped");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    async fn deliver(self: &Arc<Self>, channel: &str, value: &RedisValue) {
        let Some(topic) = self.keys.topic(channel) else {
            return;
        };
        let Some(payload) = value.as_str() else {
            return;
        };
        let Some((seq, json)) = payload.split_once(' ') else {
            return;
        };
        let mut event: Event = match serde_json::from_str(json) {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(%channel, cause = %err, "undecodable bus message");
                return;
            }
        };
        let seq: u64 = seq.parse().unwrap_or(0);
        if seq > 0 {
            event.set_seq(seq);
            self.fill_gap(&topic, seq).await;
        }
        // Sessions raise the DM watermark themselves once a DM is really written.
        self.hub.dispatch(&topic, &event);
    }

    /// Logged topics reach this replica complete and in order (filtering happens later,
    /// in the hub), so a jump in seq means messages were lost on the way: while the
    /// subscriber reconnected, or when the local receiver lagged. They are fetched from
    /// the topic's log and dispatched first.
    async fn fill_gap(&self, topic: &Topic, seq: u64) {
        let last = {
            let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            let last = seen.insert(topic.clone(), seq).unwrap_or(0);
            if last == 0 || seq <= last + 1 {
                // First message, in order, or the counter restarted.
                return;
            }
            last
        };
        let log = self.keys.log(topic).swap_remove(1);
        let range = vec![(last + 1).to_string(), (seq - 1).to_string()];
        match self
            .eval::<RedisValue>(&self.scripts.range, vec![log], range)
            .await
        {
            Ok(value) => {
                let events = Self::log_entries(value.into_array());
                for event in &events {
                    self.hub.dispatch(topic, event);
                }
                self.metrics
                    .bus_recovered_messages
                    .inc_by(events.len() as u64);
                tracing::info!(
                    ?topic,
                    last,
                    seq,
                    recovered = events.len(),
                    "filled a gap from the log"
                );
            }
            Err(err) => tracing::warn!(?topic, cause = %err, "could not fill a gap"),
        }
    }

    /// Publishes a probe to our own channel; `healthy` checks that it comes back.
    async fn probe_loop(self: Arc<Self>) {
        let channel = self.keys.probe(&self.replica);
        let mut tick = tokio::time::interval(self.probe_interval);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.probe_now.notified() => {}
            }
            if self.cmd.is_connected() {
                let probe = async {
                    if self.sharded {
                        self.cmd
                            .spublish::<i64, _, _>(channel.as_str(), "probe")
                            .await
                    } else {
                        self.cmd
                            .publish::<i64, _, _>(channel.as_str(), "probe")
                            .await
                    }
                };
                let _ = tokio::time::timeout(self.timeout, probe).await;
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

    /// Re-asserts this replica's sessions and memberships before they expire, so a
    /// crashed replica's users vanish within `presence_ttl` without any cleanup.
    async fn presence_loop(self: Arc<Self>) {
        let this = &*self;
        let mut tick = tokio::time::interval(this.presence_ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = this.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !this.cmd.is_connected() {
                continue;
            }
            // Forget gap tracking for topics nobody here listens to any more.
            this.last_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|topic, _| this.hub.has_interest(topic));
            let (sessions, memberships) = this.hub.snapshot();
            let expiry = (now_ms() + this.presence_ttl.as_millis() as u64).to_string();
            let now = now_ms().to_string();
            let ttl = (this.presence_ttl.as_millis() as u64 * 2).to_string();
            let mut failures = 0usize;
            for chunk in sessions.chunks(256) {
                // Re-check each entry: a session that closed since the snapshot must not
                // be brought back to life for another presence_ttl.
                let live = chunk
                    .iter()
                    .filter(|(_, session, _)| this.hub.holds(session, None));
                let calls = live.map(|(user, session, name)| {
                    let keys = this.keys.user(user, "sess");
                    let online = this.keys.online();
                    let args = vec![session.clone(), now.clone(), expiry.clone(), ttl.clone()];
                    let touch = vec![
                        user.to_string(),
                        expiry.clone(),
                        name.to_string(),
                        "0".into(),
                    ];
                    async move {
                        this.eval::<i64>(&this.scripts.session_add, vec![keys], args)
                            .await?;
                        this.eval::<i64>(&this.scripts.online_touch, online, touch)
                            .await
                    }
                });
                failures += failed(calls).await;
            }
            for chunk in memberships.chunks(256) {
                let live = chunk
                    .iter()
                    .filter(|(room, _, session)| this.hub.holds(session, Some(room)));
                let calls = live.map(|(room, user, session)| async move {
                    this.room_join_script(room, user, session).await?;
                    this.remember_room(user, room).await
                });
                failures += failed(calls).await;
            }
            if failures > 0 {
                tracing::warn!(failures, "presence refresh incomplete");
            }
        }
    }

    /// Decodes `{id, event JSON, ...}` log entries; the id `<seq>-1` carries the seq
    /// (the JSON was written before its seq existed).
    fn log_entries(flat: Vec<RedisValue>) -> Vec<Event> {
        let mut events = Vec::new();
        for pair in flat.chunks(2) {
            let [id, json] = pair else { continue };
            let seq = id
                .as_str()
                .and_then(|id| id.split('-').next().and_then(|s| s.parse::<u64>().ok()));
            let (Some(seq), Some(json)) = (seq, json.as_str()) else {
                continue;
            };
            match serde_json::from_str::<Event>(&json) {
                Ok(mut event) => {
                    event.set_seq(seq);
                    events.push(event);
                }
                Err(err) => tracing::warn!(cause = %err, "undecodable log entry"),
            }
        }
        events
    }

    /// Adds the room to the user's room set (read by `rename`) and keeps the set alive.
    async fn remember_room(&self, user: &UserId, room: &RoomId) -> Result<i64, BackendError> {
        let rooms = self.keys.user(user, "rooms");
        let ttl_ms = self.presence_ttl.as_millis() as i64 * 2;
        self.call(async {
            self.cmd.sadd::<i64, _, _>(&rooms, room.as_str()).await?;
            self.cmd.pexpire::<i64, _>(&rooms, ttl_ms, None).await
        })
        .await
    }

    /// Runs `room_join.lua`: adds or refreshes a session's membership with a fresh expiry.
    async fn room_join_script(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let now = now_ms();
        let presence_ms = self.presence_ttl.as_millis() as u64;
        let keys = vec![
            self.keys.room_user(room, user),
            self.keys.room_users(room),
            self.keys.log(&Topic::Room(room.clone())).swap_remove(0),
        ];
        let args = vec![
            session.to_owned(),
            user.to_string(),
            now.to_string(),
            (now + presence_ms).to_string(),
            (presence_ms * 2).to_string(),
            self.history_ttl_ms.to_string(),
        ];
        Ok(Self::membership(
            self.eval(&self.scripts.room_join, keys, args).await?,
        ))
    }

    /// `{changed (0/1), members}` from the room scripts.
    fn membership(value: RedisValue) -> Membership {
        let r = Self::ints(value);
        Membership {
            changed: r.first().copied().unwrap_or(0) == 1,
            members: r.get(1).copied().unwrap_or(0).max(0) as usize,
        }
    }

    fn ints(value: RedisValue) -> Vec<i64> {
        value
            .into_array()
            .into_iter()
            .map(|v| v.as_i64().unwrap_or(0))
            .collect()
    }

    async fn names(&self, users: &[UserId]) -> Result<Vec<Member>, BackendError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let names_key = self.keys.online().swap_remove(2);
        let args = users.iter().map(UserId::to_string).collect();
        let names: Vec<String> = self
            .eval(&self.scripts.names, vec![names_key], args)
            .await?;
        Ok(users
            .iter()
            .zip(names)
            .map(|(user, name)| Member {
                user: user.clone(),
                name,
            })
            .collect())
    }
}

#[async_trait]
impl Bus for RedisBackend {
    async fn publish(&self, topic: &Topic, event: Event) -> Result<(), BackendError> {
        let payload = format!("0 {}", serde_json::to_string(&event).map_err(unavailable)?);
        let channel = self.keys.channel(topic);
        if self.sharded {
            self.call(self.cmd.spublish::<i64, _, _>(channel, payload))
                .await?;
        } else {
            self.call(self.cmd.publish::<i64, _, _>(channel, payload))
                .await?;
        }
        Ok(())
    }

    async fn publish_logged(&self, topic: &Topic, event: Event) -> Result<u64, BackendError> {
        let (cap, ttl) = match topic {
            Topic::User(_) => (self.inbox_size, self.inbox_ttl_ms),
            _ => (self.history_size, self.history_ttl_ms),
        };
        let args = vec![
            serde_json::to_string(&event).map_err(unavailable)?,
            cap.to_string(),
            ttl.to_string(),
            if self.sharded { "SPUBLISH" } else { "PUBLISH" }.to_owned(),
        ];
        let mut keys = self.keys.log(topic);
        keys.push(self.keys.channel(topic));
        let mut args = args;
        if let Topic::Game(room) = topic {
            keys.extend(self.game_keys(room));
            args.push(self.game_ttl.as_millis().to_string());
        }
        let seq: i64 = self.eval(&self.scripts.publish_logged, keys, args).await?;
        Ok(seq.max(0) as u64)
    }

    async fn replay(
        &self,
        topic: &Topic,
        after: u64,
        limit: usize,
    ) -> Result<Replay, BackendError> {
        let args = vec![after.to_string(), limit.max(1).to_string()];
        let value: RedisValue = self
            .eval(&self.scripts.replay, self.keys.log(topic), args)
            .await?;
        let mut items = value.into_array().into_iter();
        let head = items.next().and_then(|v| v.as_i64()).unwrap_or(0).max(0) as u64;
        let events = Self::log_entries(items.collect());
        let missed = head.saturating_sub(after);
        Ok(Replay {
            complete: after <= head && events.len() as u64 == missed,
            events,
            head,
        })
    }

    async fn delivered(&self, user: &UserId) -> Result<u64, BackendError> {
        let key = self.keys.user(user, "dlv");
        let value: Option<u64> = self.call(self.cmd.get(key)).await?;
        Ok(value.unwrap_or(0))
    }

    async fn mark_delivered(&self, user: &UserId, seq: u64) -> Result<(), BackendError> {
        let keys = vec![
            self.keys.user(user, "dlv"),
            self.keys.log(&Topic::User(user.clone())).swap_remove(0),
        ];
        let args = vec![seq.to_string(), self.inbox_ttl_ms.to_string()];
        self.eval::<i64>(&self.scripts.mark_delivered, keys, args)
            .await
            .map(|_| ())
    }

    async fn subscribe(&self, topic: &Topic) -> Result<(), BackendError> {
        self.subs.change(self.keys.channel(topic), 1).await
    }

    async fn unsubscribe(&self, topic: &Topic) -> Result<(), BackendError> {
        if !self.hub.has_interest(topic) {
            // A later subscription starts afresh: no "gap" back to this point.
            self.last_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(topic);
        }
        self.subs.change(self.keys.channel(topic), -1).await
    }
}

#[async_trait]
impl Presence for RedisBackend {
    async fn connect(
        &self,
        user: &UserId,
        name: &str,
        session: &str,
    ) -> Result<usize, BackendError> {
        let now = now_ms();
        let expiry = (now + self.presence_ttl.as_millis() as u64).to_string();
        let ttl = (self.presence_ttl.as_millis() as u64 * 2).to_string();
        let before: i64 = self
            .eval(
                &self.scripts.session_add,
                vec![self.keys.user(user, "sess")],
                vec![session.to_owned(), now.to_string(), expiry.clone(), ttl],
            )
            .await?;
        let overwrite = if before == 0 { "1" } else { "0" };
        self.eval::<i64>(
            &self.scripts.online_touch,
            self.keys.online(),
            vec![user.to_string(), expiry, name.to_owned(), overwrite.into()],
        )
        .await?;
        Ok(before.max(0) as usize)
    }

    async fn disconnect(&self, user: &UserId, session: &str) -> Result<(), BackendError> {
        let left = Self::ints(
            self.eval(
                &self.scripts.session_remove,
                vec![self.keys.user(user, "sess")],
                vec![session.to_owned(), now_ms().to_string()],
            )
            .await?,
        );
        if left.get(1).copied().unwrap_or(0) == 0 {
            self.eval::<i64>(
                &self.scripts.online_remove,
                self.keys.online(),
                vec![user.to_string()],
            )
            .await?;
        }
        Ok(())
    }

    async fn session_count(&self, user: &UserId) -> Result<usize, BackendError> {
        let key = self.keys.user(user, "sess");
        let count: i64 = self
            .call(self.cmd.zcount(key, now_ms() as f64, f64::INFINITY))
            .await?;
        Ok(count.max(0) as usize)
    }

    async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let joined = self.room_join_script(room, user, session).await?;
        if joined.changed {
            // Best effort: only `rename` reads this set.
            let _ = self.remember_room(user, room).await;
        }
        Ok(joined)
    }

    async fn leave(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let keys = vec![self.keys.room_user(room, user), self.keys.room_users(room)];
        let args = vec![session.to_owned(), user.to_string(), now_ms().to_string()];
        let left = Self::membership(self.eval(&self.scripts.room_leave, keys, args).await?);
        if left.changed {
            let rooms = self.keys.user(user, "rooms");
            let _ = self
                .call(self.cmd.srem::<i64, _, _>(rooms, room.as_str()))
                .await;
        }
        Ok(left)
    }

    async fn members(
        &self,
        room: &RoomId,
        limit: usize,
    ) -> Result<(Vec<Member>, usize), BackendError> {
        let value: RedisValue = self
            .eval(
                &self.scripts.room_members,
                vec![self.keys.room_users(room)],
                vec![now_ms().to_string(), limit.to_string()],
            )
            .await?;
        let mut items = value.into_array().into_iter();
        let count = items.next().and_then(|v| v.as_i64()).unwrap_or(0).max(0) as usize;
        let users: Vec<UserId> = items
            .filter_map(|v| v.as_str().and_then(|s| UserId::new(&s).ok()))
            .collect();
        Ok((self.names(&users).await?, count))
    }

    async fn online(&self, cursor: Option<&str>, limit: usize) -> Result<OnlinePage, BackendError> {
        let value: RedisValue = self
            .eval(
                &self.scripts.online_page,
                self.keys.online(),
                vec![
                    now_ms().to_string(),
                    cursor.unwrap_or("").to_owned(),
                    (limit + 1).to_string(),
                ],
            )
            .await?;
        let mut items = value.into_array().into_iter();
        let count = items.next().and_then(|v| v.as_i64()).unwrap_or(0).max(0) as usize;
        let rest: Vec<String> = items.filter_map(|v| v.as_string()).collect();
        let mut users: Vec<Member> = rest
            .chunks(2)
            .filter_map(|pair| match pair {
                [user, name] => UserId::new(user).ok().map(|user| Member {
                    user,
                    name: name.clone(),
                }),
                _ => None,
            })
            .collect();
        let next = if users.len() > limit {
            users.truncate(limit);
            users.last().map(|m| m.user.to_string())
        } else {
            None
        };
        Ok(OnlinePage { users, count, next })
    }

    async fn rename(&self, user: &UserId, name: &str) -> Result<Vec<RoomId>, BackendError> {
        let expiry = (now_ms() + self.presence_ttl.as_millis() as u64).to_string();
        self.eval::<i64>(
            &self.scripts.online_touch,
            self.keys.online(),
            vec![user.to_string(), expiry, name.to_owned(), "1".into()],
        )
        .await?;
        let rooms: Vec<String> = self
            .call(self.cmd.smembers(self.keys.user(user, "rooms")))
            .await?;
        Ok(rooms.iter().filter_map(|r| RoomId::new(r).ok()).collect())
    }
}
