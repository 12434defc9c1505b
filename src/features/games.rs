//! Game rooms (friend play): seats, watchers, targeted game messages with a per-game
//! seq, and closing, including a grace period for players who drop out.

use super::dedupe_key;
use crate::backend::{BackendError, GameRefusal, GameState, Published, Replay, Seated};
use crate::event::{Epoch, Event, Position, Topic};
use crate::gateway::Gateway;
use crate::hub::SessionHandle;
use crate::protocol::{ErrorCode, GameRole, GameTarget, MsgId, Reply, RoomId, UserId};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a game closed, as sent in `game.closed`.
pub mod reason {
    /// A player sent `game.leave`.
    pub const LEFT: &str = "left";
    /// The owner sent `game.close` (or a backend closed it through the API).
    pub const CLOSED: &str = "closed";
    /// A player disconnected and did not come back within the grace period.
    pub const ABANDONED: &str = "abandoned";
}

impl From<GameRefusal> for Reply {
    fn from(refusal: GameRefusal) -> Self {
        match refusal {
            GameRefusal::NotFound => Reply::new(ErrorCode::NotFound, "no such game"),
            GameRefusal::RoomFull => Reply::new(ErrorCode::RoomFull, "game is full"),
            GameRefusal::Conflict => {
                Reply::new(ErrorCode::Conflict, "you are already in this game")
            }
        }
    }
}

/// An unguessable game id (128 random bits).
pub(super) fn new_game_id() -> RoomId {
    let id = format!("g-{:032x}", rand::random::<u128>());
    RoomId::new(&id).unwrap_or_else(|_| unreachable!("hex ids are valid room ids"))
}

impl Gateway {
    /// Creates a game owned by the session's user, who sits down at once.
    pub async fn game_create(&self, handle: &Arc<SessionHandle>) -> Result<RoomId, Reply> {
        let room = new_game_id();
        self.games
            .create(&room, &handle.user, None, crate::clock::unix_millis())
            .await?;
        self.metrics.games_created.inc();
        self.game_attach(handle, &room, GameRole::Player).await?;
        self.lease_seats(&[(room.clone(), handle.user.clone())])
            .await;
        Ok(room)
    }

    /// Makes the session receive the game's traffic (waits for the subscription).
    pub async fn game_attach(
        &self,
        handle: &Arc<SessionHandle>,
        room: &RoomId,
        role: GameRole,
    ) -> Result<(), Reply> {
        if self.hub.join_game(room, handle, role)
            && let Err(err) = self.bus.subscribe(&Topic::Game(room.clone())).await
        {
            self.hub.leave_game(room, handle);
            return Err(err.into());
        }
        Ok(())
    }

    /// Stops the session receiving the game's traffic.
    pub async fn game_detach(&self, handle: &SessionHandle, room: &RoomId) {
        if self.hub.leave_game(room, handle) {
            let _ = self.bus.unsubscribe(&Topic::Game(room.clone())).await;
        }
    }

    /// Takes a seat (or comes back to one) and announces the start when both are there.
    pub async fn game_join(
        &self,
        handle: &Arc<SessionHandle>,
        room: &RoomId,
    ) -> Result<GameState, Reply> {
        // Listening before the seat is taken: the other player may sit down on another
        // replica right after, and its `game.started` (not logged) must reach us.
        self.game_attach(handle, room, GameRole::Player).await?;
        let seated: Result<Seated, Reply> =
            async { Ok(self.games.join(room, &handle.user).await??) }.await;
        let Seated { state, starts } = match seated {
            Ok(seated) => seated,
            Err(reply) => {
                self.game_detach(handle, room).await;
                return Err(reply);
            }
        };
        self.lease_seats(&[(room.clone(), handle.user.clone())])
            .await;
        if starts && let Some(opponent) = state.opponent.clone() {
            let event = Event::GameStarted {
                room: room.clone(),
                owner: state.owner.clone(),
                opponent,
            };
            self.bus.publish(&Topic::Game(room.clone()), event).await?;
        }
        Ok(state)
    }

    pub async fn game_watch(
        &self,
        handle: &Arc<SessionHandle>,
        room: &RoomId,
    ) -> Result<GameState, Reply> {
        let state = self
            .games
            .watch(room, &handle.user, self.config.game_watchers)
            .await??;
        self.game_attach(handle, room, GameRole::Watcher).await?;
        Ok(state)
    }

    pub async fn game_unwatch(&self, handle: &SessionHandle, room: &RoomId) -> Result<(), Reply> {
        self.game_detach(handle, room).await;
        Ok(self.games.unwatch(room, &handle.user).await?)
    }

    /// A player's move or chat, logged with the game's next seq.
    pub async fn game_send(
        &self,
        room: &RoomId,
        from: &UserId,
        to: GameTarget,
        data: Value,
        msg_id: Option<&MsgId>,
    ) -> Result<Published, Reply> {
        self.games.touch(room).await?;
        let event = Event::GameMessage {
            room: room.clone(),
            from: from.clone(),
            to,
            data,
            seq: 0,
            epoch: Epoch::default(),
        };
        Ok(self
            .bus
            .publish_logged(
                &Topic::Game(room.clone()),
                event,
                dedupe_key(from, msg_id).as_deref(),
            )
            .await?)
    }

    /// `game.close`: only the owner may close a game.
    pub async fn game_close_by(&self, user: &UserId, room: &RoomId) -> Result<(), Reply> {
        let Some(state) = self.games.get(room).await? else {
            return Err(Reply::new(ErrorCode::NotFound, "no such game"));
        };
        if &state.owner != user {
            return Err(Reply::new(ErrorCode::Forbidden, "only the owner can close"));
        }
        self.game_end(room, reason::CLOSED).await
    }

    /// The game's logged messages after `after` (every target; the caller filters by role).
    pub async fn game_replay(
        &self,
        room: &RoomId,
        after: &Position,
        limit: usize,
    ) -> Result<Replay, Reply> {
        Ok(self
            .bus
            .replay(
                &Topic::Game(room.clone()),
                after,
                limit.min(self.config.replay_limit),
            )
            .await?)
    }

    /// Closes a game for everyone; only the caller that really closed it announces it.
    pub async fn game_end(&self, room: &RoomId, why: &str) -> Result<(), Reply> {
        if self.games.close(room).await?.is_some() {
            self.metrics.games_closed.with_label_values(&[why]).inc();
            let event = Event::GameClosed {
                room: room.clone(),
                reason: why.to_owned(),
            };
            self.bus.publish(&Topic::Game(room.clone()), event).await?;
        }
        Ok(())
    }

    /// A player's session ended: unless another local device of the player still plays,
    /// the seat turns away and the game is checked when the grace period ends (by
    /// whichever replica's sweep gets there first).
    pub async fn game_player_gone(self: &Arc<Self>, room: &RoomId, user: &UserId) {
        if self.hub.plays_here(room, user) {
            return;
        }
        let mark = crate::clock::unix_millis();
        match self.games.away(room, user, mark).await {
            Ok(()) => self.check_after_grace(room, mark),
            Err(err) => tracing::debug!(%room, cause = %err, "could not mark player away"),
        }
    }

    /// Has the game checked once the grace period after `mark` is over: it closes then
    /// if a seat is still away. Shared by all replicas, so it survives this one.
    pub fn check_after_grace(self: &Arc<Self>, room: &RoomId, mark: u64) {
        let gw = self.clone();
        let room = room.clone();
        let due = mark + gw.config.game_reconnect_grace.as_millis() as u64;
        tokio::spawn(async move {
            if let Err(err) = gw.games.schedule(&room, due).await {
                tracing::warn!(%room, cause = %err, "could not schedule the game's grace check");
            }
        });
    }

    /// Vouches for the seats local sessions hold, for `presence_ttl`; a seat whose replica
    /// dies lapses after that and counts as away.
    async fn lease_seats(&self, seats: &[(RoomId, UserId)]) {
        if seats.is_empty() {
            return;
        }
        let now = crate::clock::unix_millis();
        let until = now + self.config.presence_ttl.as_millis() as u64;
        if let Err(err) = self.games.lease(seats, until).await {
            tracing::debug!(cause = %err, "seat leases not renewed");
            return;
        }
        // A lapse is noticed by the sweep: a check per game once the lease could run out.
        let grace = self.config.game_reconnect_grace.as_millis() as u64;
        for (room, _) in seats {
            let _ = self.games.schedule(room, until + grace).await;
        }
    }

    /// Closes a due game whose seat has been away longer than the grace period; else
    /// books its next check (when an away seat's grace or a lease could run out).
    async fn check_game(&self, room: &RoomId, now: u64) -> Result<(), BackendError> {
        let grace = self.config.game_reconnect_grace.as_millis() as u64;
        let Some(seats) = self.games.seats(room).await? else {
            return self.games.reschedule(room, None).await;
        };
        if seats
            .iter()
            .any(|s| s.away_at(now).is_some_and(|since| now >= since + grace))
        {
            if let Err(err) = self.game_end(room, reason::ABANDONED).await {
                tracing::warn!(%room, cause = ?err, "closing an abandoned game failed");
                return Ok(());
            }
            return self.games.reschedule(room, None).await;
        }
        let next = seats
            .iter()
            .filter_map(|s| match s.away_at(now) {
                Some(since) => Some(since + grace),
                None if s.lease != 0 => Some(s.lease + grace),
                None => None,
            })
            .min();
        self.games.reschedule(room, next).await
    }

    /// Every replica runs this: renews the leases of seats held here and closes games
    /// abandoned on any replica (one closer wins), so neither a drain nor a crash
    /// leaves a game open until `game_ttl`.
    pub async fn run_game_sweep(self: Arc<Self>, stop: CancellationToken) {
        let every = (self.config.game_reconnect_grace / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let lease_every = self.config.presence_ttl / 3;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leased = std::time::Instant::now() - lease_every;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if leased.elapsed() >= lease_every {
                leased = std::time::Instant::now();
                self.lease_seats(&self.hub.local_seats()).await;
            }
            let now = crate::clock::unix_millis();
            match self.games.due(now, SWEEP_BATCH).await {
                Ok(rooms) => {
                    for room in rooms {
                        if let Err(err) = self.check_game(&room, now).await {
                            tracing::debug!(%room, cause = %err, "game check failed; retried");
                        }
                    }
                }
                Err(err) => tracing::debug!(cause = %err, "game sweep skipped"),
            }
        }
    }
}

/// Games checked per sweep tick at most.
const SWEEP_BATCH: usize = 64;
