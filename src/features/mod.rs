//! The gateway's rules, written once against the backend traits and shared by client
//! sessions and the HTTP API: login registration, rooms, direct messages, broadcast,
//! presence and renames here; game rooms in `games`, the ranked queue in `ranked`.

mod games;
mod ranked;

pub use games::reason;

use crate::auth::{Identity, Verifier};
use crate::backend::memory::{MemoryBus, MemoryGames, MemoryMatchmaker, MemoryPresence};
use crate::backend::redis::RedisBackend;
use crate::backend::{
    BackendError, Bus, Event, Games, Matchmaker, OnlinePage, Presence, Replay, Topic,
};
use crate::config::{Config, DuplicateLogin};
use crate::hub::{Delivery, Hub, SessionHandle};
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, Member, Reply, RoomId, UserId, close};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::mpsc;

impl From<BackendError> for Reply {
    fn from(err: BackendError) -> Self {
        tracing::warn!(cause = %err, "backend call failed");
        Reply::new(ErrorCode::Unavailable, "backend unavailable, try again")
    }
}

/// Everything a session or API handler needs, shared by reference.
pub struct Gateway {
    pub config: Config,
    /// Short random id of this process, part of every session id.
    pub replica: String,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn Presence>,
    pub games: Arc<dyn Games>,
    pub matchmaker: Arc<dyn Matchmaker>,
    /// Wakes the matchmaker loop when someone joins the ranked queue.
    rank_wakeup: tokio::sync::Notify,
    pub metrics: Arc<Metrics>,
    pub verifier: Verifier,
    /// Set when running on Redis: readiness and shutdown need it.
    redis: Option<Arc<RedisBackend>>,
    next_session: AtomicU64,
    /// False once draining started: `/readyz` fails and new logins are refused.
    accepting: AtomicBool,
}

/// A registered session and where its direct-message replay starts.
pub struct Registered {
    pub handle: Arc<SessionHandle>,
    pub dm_after: u64,
}

impl Gateway {
    /// Builds the gateway: the Redis backend when `redis_url` is set, else in-memory.
    pub async fn start(config: Config) -> Result<Arc<Self>, String> {
        config.validate()?;
        let verifier = Verifier::from_config(&config)?;
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let replica = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        #[allow(clippy::type_complexity)]
        let (bus, presence, games, matchmaker, redis): (
            Arc<dyn Bus>,
            Arc<dyn Presence>,
            Arc<dyn Games>,
            Arc<dyn Matchmaker>,
            _,
        ) = match config.redis_url.as_deref() {
            Some(url) => {
                let redis = RedisBackend::connect(
                    &config,
                    url,
                    hub.clone(),
                    metrics.clone(),
                    replica.clone(),
                )
                .await?;
                (
                    redis.clone(),
                    redis.clone(),
                    redis.clone(),
                    redis.clone(),
                    Some(redis),
                )
            }
            None => (
                Arc::new(MemoryBus::new(
                    hub.clone(),
                    config.history_size,
                    config.inbox_size,
                    metrics.clone(),
                )),
                Arc::new(MemoryPresence::new()),
                Arc::new(MemoryGames::new(config.game_ttl)),
                Arc::new(MemoryMatchmaker::new()),
                None,
            ),
        };
        metrics.connection_limit.set(config.max_connections as i64);
        Ok(Arc::new(Gateway {
            config,
            replica,
            hub,
            bus,
            presence,
            games,
            matchmaker,
            rank_wakeup: tokio::sync::Notify::new(),
            metrics,
            verifier,
            redis,
            next_session: AtomicU64::new(1),
            accepting: AtomicBool::new(true),
        }))
    }

    /// Ready for traffic: not draining, and the shared backend (if any) works end to end.
    pub fn is_ready(&self) -> bool {
        self.is_accepting() && self.redis.as_ref().is_none_or(|r| r.healthy())
    }

    /// Stops backend background work after the drain.
    pub async fn close(&self) {
        if let Some(redis) = &self.redis {
            redis.close().await;
        }
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
        self.metrics.draining.set(1);
    }

    /// Open connections (logged in or not) on this replica, all transports.
    pub fn connection_count(&self) -> usize {
        ["ws", "tcp"]
            .iter()
            .map(|t| self.metrics.connections.with_label_values(&[*t]).get())
            .sum::<i64>()
            .max(0) as usize
    }

    /// True when `SWITCHBOARD_MAX_CONNECTIONS` is set and reached. A soft cap: upgrades
    /// racing each other may pass it by a few.
    pub fn at_connection_limit(&self) -> bool {
        let cap = self.config.max_connections;
        cap > 0 && self.connection_count() >= cap
    }

    /// Counts a connection turned away before its session started.
    pub fn refused(&self, reason: &str) {
        self.metrics
            .connections_refused
            .with_label_values(&[reason])
            .inc();
    }

    /// Applies the duplicate-login policy and registers the session everywhere.
    pub async fn register(
        &self,
        identity: &Identity,
        tx: mpsc::Sender<Arc<Delivery>>,
        dm_since: Option<u64>,
    ) -> Result<Registered, Reply> {
        if !self.is_accepting() {
            return Err(Reply::new(ErrorCode::Unavailable, "server draining"));
        }
        let user = &identity.user;
        if self.config.duplicate_login == DuplicateLogin::Reject
            && self.presence.session_count(user).await? > 0
        {
            return Err(Reply::new(
                ErrorCode::Conflict,
                "user already has a session (duplicate logins are rejected)",
            ));
        }
        // Read the watermark before registering, so DMs arriving from now on are either
        // queued live or replayed, never skipped.
        let dm_after = match dm_since {
            Some(seq) => seq,
            None => self.bus.delivered(user).await?,
        };
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        let handle = SessionHandle::new(
            format!("{}-{n}", self.replica),
            user.clone(),
            &identity.name,
            tx,
        );
        // Every session counts as one unit of interest in its user's channel, and its
        // login waits until that subscription is live.
        self.hub.add_session(&handle);
        if let Err(err) = self.bus.subscribe(&Topic::User(user.clone())).await {
            self.hub.remove_session(&handle);
            return Err(err.into());
        }
        if let Err(err) = self
            .presence
            .connect(user, &identity.name, &handle.id)
            .await
        {
            self.unregister(&handle, &[]).await;
            return Err(err.into());
        }
        if self.config.duplicate_login == DuplicateLogin::Kick {
            let kick = Event::Kick {
                user: user.clone(),
                except: Some(handle.id.clone()),
                code: close::REPLACED,
            };
            if let Err(err) = self.bus.publish(&Topic::User(user.clone()), kick).await {
                // Without the kick the policy would not hold: refuse this login.
                self.unregister(&handle, &[]).await;
                return Err(err.into());
            }
        }
        Ok(Registered { handle, dm_after })
    }

    /// Undoes `register` and leaves every room; best effort when the backend is down
    /// (presence entries nobody refreshes expire on their own).
    pub async fn unregister(&self, handle: &Arc<SessionHandle>, rooms: &[RoomId]) {
        for room in rooms {
            if let Err(err) = self.leave(handle, room).await {
                tracing::debug!(session = %handle.id, %room, cause = %err, "leave on close failed");
            }
        }
        if self.hub.remove_session(handle) {
            let _ = self
                .bus
                .unsubscribe(&Topic::User(handle.user.clone()))
                .await;
        }
        if let Err(err) = self.presence.disconnect(&handle.user, &handle.id).await {
            tracing::debug!(session = %handle.id, cause = %err, "presence disconnect failed");
        }
    }

    /// Puts a session into a room and announces the user's arrival on first join. The
    /// local state is settled before any announcement, which is best effort.
    pub async fn join(&self, handle: &Arc<SessionHandle>, room: &RoomId) -> Result<(), Reply> {
        let topic = Topic::Room(room.clone());
        if !self.hub.join(room, handle) {
            return Ok(());
        }
        if let Err(err) = self.bus.subscribe(&topic).await {
            self.hub.leave(room, handle);
            return Err(err.into());
        }
        let joined = match self.presence.join(room, &handle.user, &handle.id).await {
            Ok(joined) => joined,
            Err(err) => {
                self.hub.leave(room, handle);
                let _ = self.bus.unsubscribe(&topic).await;
                return Err(err.into());
            }
        };
        if joined.changed && joined.members <= self.config.member_events_limit {
            let event = Event::MemberJoined {
                room: room.clone(),
                user: handle.user.clone(),
                name: handle.name().to_string(),
                count: joined.members,
            };
            self.announce(&topic, event).await;
        }
        Ok(())
    }

    /// Takes a session out of a room and announces the user's departure on last leave.
    /// The local state changes first; a presence entry left behind by an outage is no
    /// longer refreshed and expires.
    pub async fn leave(&self, handle: &Arc<SessionHandle>, room: &RoomId) -> Result<(), Reply> {
        let topic = Topic::Room(room.clone());
        if self.hub.leave(room, handle) {
            let _ = self.bus.unsubscribe(&topic).await;
        }
        let left = self.presence.leave(room, &handle.user, &handle.id).await?;
        if left.changed && left.members < self.config.member_events_limit {
            let event = Event::MemberLeft {
                room: room.clone(),
                user: handle.user.clone(),
                name: handle.name().to_string(),
                count: left.members,
            };
            self.announce(&topic, event).await;
        }
        Ok(())
    }

    /// Publishes an event nobody must wait for; a failure is logged, not returned.
    async fn announce(&self, topic: &Topic, event: Event) {
        if let Err(err) = self.bus.publish(topic, event).await {
            tracing::debug!(?topic, cause = %err, "announcement not published");
        }
    }

    /// Room messages the session missed since `after`.
    pub async fn room_replay(&self, room: &RoomId, after: u64) -> Result<Replay, Reply> {
        Ok(self
            .bus
            .replay(&Topic::Room(room.clone()), after, self.config.replay_limit)
            .await?)
    }

    /// Direct messages of `user` after `after`.
    pub async fn dm_replay(&self, user: &UserId, after: u64) -> Result<Replay, Reply> {
        Ok(self
            .bus
            .replay(&Topic::User(user.clone()), after, self.config.inbox_size)
            .await?)
    }

    pub async fn publish(
        &self,
        room: &RoomId,
        from: &UserId,
        name: &str,
        data: Value,
        echo: bool,
    ) -> Result<u64, Reply> {
        let event = Event::Message {
            room: room.clone(),
            from: from.clone(),
            name: name.to_owned(),
            data,
            seq: 0,
            ts: crate::auth::unix_millis(),
            skip: (!echo).then(|| from.clone()),
        };
        Ok(self
            .bus
            .publish_logged(&Topic::Room(room.clone()), event)
            .await?)
    }

    /// Sends to every session of `to`; kept in the user's log when nobody is online.
    pub async fn send_direct(
        &self,
        to: &UserId,
        from: &UserId,
        name: &str,
        data: Value,
    ) -> Result<u64, Reply> {
        let event = Event::Direct {
            to: to.clone(),
            from: from.clone(),
            name: name.to_owned(),
            data,
            seq: 0,
            ts: crate::auth::unix_millis(),
        };
        Ok(self
            .bus
            .publish_logged(&Topic::User(to.clone()), event)
            .await?)
    }

    pub async fn broadcast(&self, from: &UserId, name: &str, data: Value) -> Result<(), Reply> {
        let event = Event::Broadcast {
            from: from.clone(),
            name: name.to_owned(),
            data,
            ts: crate::auth::unix_millis(),
        };
        Ok(self.bus.publish(&Topic::All, event).await?)
    }

    pub async fn presence(&self, room: &RoomId) -> Result<(Vec<Member>, usize), Reply> {
        Ok(self
            .presence
            .members(room, self.config.presence_limit)
            .await?)
    }

    pub async fn who(
        &self,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<OnlinePage, Reply> {
        let limit = limit
            .unwrap_or(self.config.who_page)
            .clamp(1, self.config.who_page);
        Ok(self.presence.online(cursor, limit).await?)
    }

    /// Changes a user's display name everywhere and tells the rooms it is in.
    pub async fn rename(&self, user: &UserId, name: &str) -> Result<String, Reply> {
        let name = crate::auth::clean_name(name, self.config.max_name_chars);
        if name.is_empty() {
            return Err(Reply::new(ErrorCode::BadRequest, "name must not be empty"));
        }
        let rooms = self.presence.rename(user, &name).await?;
        let renamed = Event::Renamed {
            user: user.clone(),
            name: name.clone(),
        };
        self.bus
            .publish(&Topic::User(user.clone()), renamed)
            .await?;
        for room in rooms {
            let event = Event::MemberRenamed {
                room: room.clone(),
                user: user.clone(),
                name: name.clone(),
            };
            self.bus.publish(&Topic::Room(room), event).await?;
        }
        Ok(name)
    }

    /// Closes every session of `user` on every replica.
    pub async fn disconnect_user(&self, user: &UserId) -> Result<(), Reply> {
        let event = Event::Kick {
            user: user.clone(),
            except: None,
            code: close::DISCONNECTED,
        };
        Ok(self.bus.publish(&Topic::User(user.clone()), event).await?)
    }
}
