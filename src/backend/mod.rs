//! What replicas share, behind four traits: the event `Bus` (publish/subscribe with
//! per-topic logs for resume and offline delivery), `Presence`, `Games` and the ranked
//! `Matchmaker`. Events reach this replica's sessions through `event::EventSink`.
//!
//! `memory` is the single-node implementation. A Redis implementation plugs in behind
//! the same traits; the rules in `features` never know which one runs.

pub mod memory;
pub mod redis;

use crate::config::Config;
use crate::event::{Epoch, Event, EventSink, Position, Topic};
use crate::matchmaking::{Rules, Waiting};
use crate::metrics::Metrics;
use crate::protocol::{Member, RoomId, UserId};
use async_trait::async_trait;
use memory::{MemoryBus, MemoryGames, MemoryMatchmaker, MemoryPresence};
use std::sync::Arc;

/// Result of reading a topic's log after a seq.
#[derive(Debug, Default)]
pub struct Replay {
    pub events: Vec<Event>,
    /// False when messages after `since` were dropped from retention or beyond the
    /// replay cap: the client has a gap and should refetch its state.
    pub complete: bool,
    /// The topic's latest seq. A client cursor above it predates a reset of the log.
    pub head: u64,
    /// The log's epoch; created when the topic had none, so a joiner always learns it.
    pub epoch: Epoch,
    /// The cursor was from another epoch (the log was reset since): the events are the
    /// current log from its start and `complete` is false.
    pub reset: bool,
}

/// Where a logged publish landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    /// The dedupe key was seen before: nothing was stored, `seq` is the first one's.
    pub duplicate: bool,
}

/// The four shared stores of one gateway.
pub struct Backends {
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn Presence>,
    pub games: Arc<dyn Games>,
    pub matchmaker: Arc<dyn Matchmaker>,
    /// Set on Redis: readiness and shutdown need the connection's health.
    pub redis: Option<Arc<redis::RedisBackend>>,
}

/// Why the shared backend could not be set up. An unreachable Redis is not one: it is
/// retried in the background while the replica reports not ready.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `SWITCHBOARD_REDIS_URL` does not parse.
    #[error("SWITCHBOARD_REDIS_URL: {0}")]
    Url(String),
    /// The Redis client could not be built (TLS setup and the like).
    #[error("redis client: {0}")]
    Client(String),
}

/// Builds the backends: Redis when `redis_url` is set, else in-memory. Events for this
/// replica reach `sink`.
pub async fn connect(
    config: &Config,
    sink: Arc<dyn EventSink>,
    metrics: Arc<Metrics>,
    replica: &str,
) -> Result<Backends, ConnectError> {
    Ok(match config.redis_url.as_deref() {
        Some(url) => {
            let redis =
                redis::RedisBackend::connect(config, url, sink, metrics, replica.to_owned())
                    .await?;
            Backends {
                bus: redis.clone(),
                presence: redis.clone(),
                games: redis.clone(),
                matchmaker: redis.clone(),
                redis: Some(redis),
            }
        }
        None => Backends {
            bus: Arc::new(MemoryBus::new(sink, config, metrics)),
            presence: Arc::new(MemoryPresence::new()),
            games: Arc::new(MemoryGames::new(config.game_ttl)),
            matchmaker: Arc::new(MemoryMatchmaker::new()),
            redis: None,
        },
    })
}

/// A shared-store call that did not work; every kind makes clients answer `unavailable`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The store cannot be reached right now (disconnected, timed out, stopping).
    #[error("backend unavailable: {0}")]
    Unavailable(&'static str),
    /// The store answered a command with an error, kept as the source.
    #[error("backend command failed: {0}")]
    Command(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The store answered with a reply of an unexpected shape.
    #[error("unexpected backend reply: {0}")]
    Reply(String),
}

/// Topic-based publish/subscribe across replicas, with ordered logs for room messages
/// and direct messages.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Publishes without logging (presence events, broadcast, control).
    async fn publish(&self, topic: &Topic, event: Event) -> Result<(), BackendError>;
    /// Assigns the topic's next seq, appends to its bounded log, then publishes;
    /// delivery order on every replica equals seq order. With `dedupe`, an event whose
    /// key this topic already logged within `msg_id_ttl` is not stored again.
    async fn publish_logged(
        &self,
        topic: &Topic,
        event: Event,
        dedupe: Option<&str>,
    ) -> Result<Published, BackendError>;
    /// Logged events after `after`, at most `limit` (the newest ones if more); with
    /// `limit` 0 only the log's head and epoch. A cursor from another epoch replays the
    /// current log from its start (`reset`); one with no epoch is taken as current.
    async fn replay(
        &self,
        topic: &Topic,
        after: &Position,
        limit: usize,
    ) -> Result<Replay, BackendError>;
    /// A login's direct messages: those of `user` after `cursor`, or after the user's
    /// delivery watermark (`delivered`) when the client sent none, at most `limit`.
    /// Returns the cursor the replay started from with the replay. Redis reads the
    /// watermark and the log in one round trip.
    async fn inbox(
        &self,
        user: &UserId,
        cursor: Option<&Position>,
        limit: usize,
    ) -> Result<(Position, Replay), BackendError> {
        let after = match cursor {
            Some(at) => at.clone(),
            None => self.delivered(user).await?,
        };
        let replay = self
            .replay(&Topic::User(user.clone()), &after, limit)
            .await?;
        Ok((after, replay))
    }
    /// Highest direct-message position handed to any session of `user`: where a login
    /// without an explicit cursor resumes.
    async fn delivered(&self, user: &UserId) -> Result<Position, BackendError>;
    /// Records that direct messages up to `upto` reached a session of `user`; a mark
    /// from an older epoch of the log is ignored.
    async fn mark_delivered(&self, user: &UserId, upto: &Position) -> Result<(), BackendError>;
    /// Starts receiving a topic on this replica (called on the first local interest).
    async fn subscribe(&self, topic: &Topic) -> Result<(), BackendError>;
    /// Stops receiving a topic (called when the last local interest goes).
    async fn unsubscribe(&self, topic: &Topic) -> Result<(), BackendError>;
}

/// Publishes a presence change on the online feed. Best effort: a lost announcement
/// only leaves watchers to the next page they fetch or the next change.
pub async fn announce(bus: &dyn Bus, event: Event) {
    if let Err(err) = bus.publish(&Topic::Online, event).await {
        tracing::debug!(cause = %err, "online announcement not published");
    }
}

/// Who is online and in which rooms, across replicas.
#[async_trait]
pub trait Presence: Send + Sync {
    /// Marks a session online; returns how many sessions the user had before it.
    async fn connect(
        &self,
        user: &UserId,
        name: &str,
        session: &str,
    ) -> Result<usize, BackendError>;
    /// Marks a session offline; returns how many sessions the user has left.
    async fn disconnect(&self, user: &UserId, session: &str) -> Result<usize, BackendError>;
    /// `connect`, then `user_online` on the online feed through `bus` when it is the
    /// user's first live session. On one Redis both are one script call.
    async fn connect_announced(
        &self,
        bus: &dyn Bus,
        user: &UserId,
        name: &str,
        session: &str,
    ) -> Result<usize, BackendError> {
        let before = self.connect(user, name, session).await?;
        if before == 0 {
            let online = Event::UserOnline {
                user: user.clone(),
                name: name.to_owned(),
            };
            announce(bus, online).await;
        }
        Ok(before)
    }
    /// `disconnect`, then `user_offline` on the online feed through `bus` when the user
    /// has no live session left. On one Redis both are one script call.
    async fn disconnect_announced(
        &self,
        bus: &dyn Bus,
        user: &UserId,
        session: &str,
    ) -> Result<usize, BackendError> {
        let left = self.disconnect(user, session).await?;
        if left == 0 {
            announce(bus, Event::UserOffline { user: user.clone() }).await;
        }
        Ok(left)
    }
    /// Sessions the user has on all replicas.
    async fn session_count(&self, user: &UserId) -> Result<usize, BackendError>;
    /// Puts a session in a room; `changed` when it is the user's first session there.
    async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError>;
    /// Takes a session out of a room; `changed` when it was the user's last one there.
    async fn leave(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError>;
    /// Up to `limit` members of a room with their names, and the exact member count.
    async fn members(
        &self,
        room: &RoomId,
        limit: usize,
    ) -> Result<(Vec<Member>, usize), BackendError>;
    /// Online users ordered by id after `cursor`, the total count, and the next cursor.
    async fn online(&self, cursor: Option<&str>, limit: usize) -> Result<OnlinePage, BackendError>;
    /// Changes the user's display name; returns the rooms the user is in.
    async fn rename(&self, user: &UserId, name: &str) -> Result<Vec<RoomId>, BackendError>;
}

/// Outcome of a join or leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The user entered (join) or left (leave) the room as a whole.
    pub changed: bool,
    /// Distinct users in the room afterwards.
    pub members: usize,
}

/// One page of online users.
#[derive(Debug, Default)]
pub struct OnlinePage {
    pub users: Vec<Member>,
    pub count: usize,
    pub next: Option<String>,
}

/// A game as stored in the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameState {
    pub room: RoomId,
    pub owner: UserId,
    pub opponent: Option<UserId>,
    /// Both players were present at least once: `game.started` was sent.
    pub started: bool,
    pub watchers: usize,
}

impl GameState {
    pub fn is_player(&self, user: &UserId) -> bool {
        &self.owner == user || self.opponent.as_ref() == Some(user)
    }
}

/// A player's seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub user: UserId,
    /// When the seat went away (ms), 0 while taken.
    pub away: u64,
    /// Until when the holder's replica vouches for it (ms); 0: no lease yet.
    pub lease: u64,
}

impl Seat {
    /// Since when the seat counts as away at `now_ms`: marked away, or its lease lapsed.
    pub fn away_at(&self, now_ms: u64) -> Option<u64> {
        if self.away != 0 {
            Some(self.away)
        } else if self.lease != 0 && self.lease < now_ms {
            Some(self.lease)
        } else {
            None
        }
    }
}

/// Why a game request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GameRefusal {
    NotFound,
    RoomFull,
    Conflict,
}

/// How a `join` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seated {
    pub state: GameState,
    /// True when this join made both players present for the first time: announce it.
    pub starts: bool,
}

/// Game rooms shared by all replicas: seats, presence of players, watchers, expiry.
#[async_trait]
pub trait Games: Send + Sync {
    /// Creates a game; `opponent` is set for ranked games, whose two seats start away
    /// (marked `now_ms`) until the players take them with `join`.
    async fn create(
        &self,
        room: &RoomId,
        owner: &UserId,
        opponent: Option<&UserId>,
        now_ms: u64,
    ) -> Result<(), BackendError>;
    async fn get(&self, room: &RoomId) -> Result<Option<GameState>, BackendError>;
    /// Takes the free seat, or the caller's own seat (away or not: another device of the
    /// same player, or the player back after its replica died); `RoomFull` when both
    /// seats belong to others.
    async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Result<Seated, GameRefusal>, BackendError>;
    /// Adds a watcher, up to `limit`.
    async fn watch(
        &self,
        room: &RoomId,
        user: &UserId,
        limit: usize,
    ) -> Result<Result<GameState, GameRefusal>, BackendError>;
    async fn unwatch(&self, room: &RoomId, user: &UserId) -> Result<(), BackendError>;
    /// Marks a player's seat away since `mark` (ms); `join` or `lease` brings it back.
    async fn away(&self, room: &RoomId, user: &UserId, mark: u64) -> Result<(), BackendError>;
    /// Renews the seats held by sessions on this replica until `until_ms` (and clears an
    /// away mark another device left). A seat whose lease lapses counts as away from
    /// then: its replica died without marking it.
    async fn lease(&self, seats: &[(RoomId, UserId)], until_ms: u64) -> Result<(), BackendError>;
    /// The game's player seats, or `None` when there is no such game.
    async fn seats(&self, room: &RoomId) -> Result<Option<Vec<Seat>>, BackendError>;
    /// Asks for a check of the game at `due_ms` (an earlier pending check is kept).
    async fn schedule(&self, room: &RoomId, due_ms: u64) -> Result<(), BackendError>;
    /// Replaces the game's pending check (`None`: no check).
    async fn reschedule(&self, room: &RoomId, due_ms: Option<u64>) -> Result<(), BackendError>;
    /// Up to `limit` games whose check is due at `now_ms`, on every replica alike.
    async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<RoomId>, BackendError>;
    /// Records activity so a busy game does not expire as idle.
    async fn touch(&self, room: &RoomId) -> Result<(), BackendError>;
    /// Deletes the game; `Some` only for the one caller that actually closed it.
    async fn close(&self, room: &RoomId) -> Result<Option<GameState>, BackendError>;
}

/// Queue statistics for the API and metrics.
#[derive(Debug, Default, Clone)]
pub struct QueueStats {
    pub len: usize,
    /// How long each queued player has waited, in ms.
    pub waits_ms: Vec<u64>,
}

/// A pair taken from the ranked queue. It stays pending in the backend, leased to the
/// replica announcing it, until `finish`: when that replica dies or stalls first, the
/// lease runs out and the next matcher run on any replica takes the match over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The game room, which is also the match's id.
    pub room: RoomId,
    /// The first seat: the lower-rated player (who queued first on equal ratings).
    pub a: Waiting,
    pub b: Waiting,
    /// When the pair was formed (ms since the epoch).
    pub made_ms: u64,
}

/// Most expired matches one run takes over (the rest wait for the next run).
pub const RECLAIM_PER_RUN: usize = 100;

/// One matcher run's input.
#[derive(Debug, Clone)]
pub struct MatchRun<'a> {
    pub now_ms: u64,
    pub rules: Rules,
    /// New matches get the rooms `<room_prefix>00000001`, `<room_prefix>00000002`, ...
    /// (k in 8 hex digits): the prefix must be unique per run.
    pub room_prefix: &'a str,
    /// How long the caller has to announce a match before another run takes it over.
    pub lease_ms: u64,
    /// Players queued before this (ms) are dropped: their session should have timed
    /// them out, so their replica is gone.
    pub drop_before_ms: u64,
    /// When > 0, the run first claims the matcher for this long (ms) across replicas and
    /// does nothing but count if another replica holds it: one run per tick in all.
    pub exclusive_ms: u64,
}

/// What one matcher run took.
#[derive(Debug, Default, Clone)]
pub struct Taken {
    /// New matches, then pending ones whose lease ran out (now leased to the caller).
    pub matches: Vec<Match>,
    /// How many of `matches` were taken over from an expired lease.
    pub recovered: usize,
    /// Players left in the queue.
    pub queued: usize,
    /// Matches pending after the run (taken but not yet finished, by any replica).
    pub pending: usize,
}

/// The ranked queue shared by all replicas.
#[async_trait]
pub trait Matchmaker: Send + Sync {
    /// Queues a player (once per user, whatever the number of devices); false if the
    /// user was already queued.
    async fn enqueue(&self, player: &Waiting, session: &str) -> Result<bool, BackendError>;
    /// Removes a player; with `session`, only if that session queued them.
    async fn dequeue(&self, user: &UserId, session: Option<&str>) -> Result<bool, BackendError>;
    /// Atomically takes the pairs `matchmaking::pair` chooses out of the queue into
    /// pending matches, and re-leases pending matches whose lease ran out: safe to run
    /// on every replica at once, nobody is matched twice, no match is lost.
    async fn take_matches(&self, run: &MatchRun<'_>) -> Result<Taken, BackendError>;
    /// The match was announced to both players: forget it.
    async fn finish(&self, room: &RoomId) -> Result<(), BackendError>;
    async fn stats(&self, now_ms: u64) -> Result<QueueStats, BackendError>;
}
