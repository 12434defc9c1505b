//! Ranked play: the shared queue, the matcher loop every replica runs on a fixed cadence,
//! and announcing a match: its game is created and both players are told through their
//! logged user streams (like direct messages), so a match survives a reconnect, a lost
//! reply and the death of the replica that made it.

use crate::backend::{Match, MatchRun, QueueStats};
use crate::event::{Epoch, Event, Topic};
use crate::gateway::Gateway;
use crate::matchmaking::{Rules, Waiting};
use crate::protocol::{Reply, RoomId, UserId};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Matches one replica announces at once (each is a few backend round trips).
const ANNOUNCE_CONCURRENCY: usize = 16;
/// Players still queued this long after their maximum wait (plus the lease) are dropped
/// by the matcher: the session that should have timed them out is gone.
const ORPHAN_MARGIN: Duration = Duration::from_secs(30);

impl Gateway {
    pub fn rank_rules(&self) -> Rules {
        Rules {
            window: self.config.rank_window,
            widen_per_s: self.config.rank_widen_per_s,
            max_window: self.config.rank_max_window,
            settle_ms: self.config.rank_settle.as_millis() as u64,
        }
    }

    /// The de-duplication key of a match's `rank.matched` in a user's stream: a retried
    /// announcement is logged once. It has a space, which no client key (`user:msg_id`)
    /// can contain.
    pub fn rank_matched_key(room: &RoomId) -> String {
        format!("rank.matched {room}")
    }

    /// How long a replica has to announce a match before another one takes it over: a
    /// few backend calls, each bounded by the Redis timeout.
    pub fn rank_lease(&self) -> Duration {
        self.config.redis_timeout * 2 + Duration::from_secs(1)
    }

    /// Queues the player (once per user); the next matcher run considers them.
    pub async fn rank_join(&self, player: &Waiting, session: &str) -> Result<bool, Reply> {
        let queued = self.matchmaker.enqueue(player, session).await?;
        if queued {
            self.rank_queued.fetch_add(1, Ordering::Relaxed);
        }
        Ok(queued)
    }

    pub async fn rank_leave(&self, user: &UserId, session: Option<&str>) -> Result<bool, Reply> {
        Ok(self.matchmaker.dequeue(user, session).await?)
    }

    /// Takes the player out after the maximum wait. True when this call removed them
    /// (`rank.timeout` is due); false when a match, or a leave on another device, came
    /// first: the queue decides atomically, so a player is never both matched and
    /// timed out.
    pub async fn rank_timeout(&self, user: &UserId, session: &str) -> Result<bool, Reply> {
        let removed = self.matchmaker.dequeue(user, Some(session)).await?;
        if removed {
            self.metrics.rank_timeouts.inc();
            tracing::debug!(%user, "ranked wait timed out");
        }
        Ok(removed)
    }

    /// Players in the queue as this replica's matcher last saw them.
    pub fn rank_queue_seen(&self) -> usize {
        self.rank_queued.load(Ordering::Relaxed)
    }

    pub async fn rank_stats(&self) -> Result<QueueStats, Reply> {
        let stats = self.matchmaker.stats(crate::clock::unix_millis()).await?;
        self.metrics.rank_queue.set(stats.len as i64);
        Ok(stats)
    }

    /// Runs the matcher every `rank_interval` until `stop`. Only the cadence runs it, not
    /// each `rank.join`: a burst is seen whole (see `matchmaking`).
    pub async fn run_matchmaker(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.rank_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.match_once().await;
        }
    }

    /// One matcher run: takes new matches (and expired pending ones) and announces them.
    pub async fn match_once(self: &Arc<Self>) {
        let now = crate::clock::unix_millis();
        let lease = self.rank_lease();
        let orphaned = self.config.rank_max_wait + lease + ORPHAN_MARGIN;
        // Rooms look like any game's: `g-` and 32 hex digits (96 random bits, then k).
        let prefix = format!("g-{:024x}", rand::random::<u128>() >> 32);
        let run = MatchRun {
            now_ms: now,
            rules: self.rank_rules(),
            room_prefix: &prefix,
            lease_ms: lease.as_millis() as u64,
            drop_before_ms: now.saturating_sub(orphaned.as_millis() as u64),
            // One run per tick across replicas: the lease ends a little before the next
            // tick, so whichever replica ticks first then runs.
            exclusive_ms: (self.config.rank_interval.as_millis() as u64 * 9 / 10).max(1),
        };
        let taken = match self.matchmaker.take_matches(&run).await {
            Ok(taken) => taken,
            Err(err) => {
                // If the run went through but its reply was lost, its matches stay
                // pending and a later run takes them over when their lease ends.
                tracing::debug!(cause = %err, "matcher run failed");
                return;
            }
        };
        self.rank_queued.store(taken.queued, Ordering::Relaxed);
        self.metrics.rank_queue.set(taken.queued as i64);
        self.metrics.rank_pending.set(taken.pending as i64);
        if taken.recovered > 0 {
            self.metrics.rank_recovered.inc_by(taken.recovered as u64);
            tracing::info!(
                matches = taken.recovered,
                "took over ranked matches whose announcing replica did not finish"
            );
        }
        let new = taken.matches.len() - taken.recovered;
        futures_util::stream::iter(taken.matches.into_iter().enumerate())
            .for_each_concurrent(ANNOUNCE_CONCURRENCY, |(i, found)| async move {
                self.announce_match(&found, i < new, now).await;
            })
            .await;
    }

    /// Creates the match's game (unless a first attempt did) and tells each player
    /// through their logged user stream, at most once per match; the match is finished
    /// only when everything worked, else a later run (on any replica) tries again.
    async fn announce_match(self: &Arc<Self>, found: &Match, new: bool, now_ms: u64) {
        let (room, a, b) = (&found.room, &found.a, &found.b);
        if let Err(err) = self.create_ranked(found, new).await {
            tracing::warn!(%room, cause = %err, "creating a ranked game failed; retried later");
            return;
        }
        if new {
            self.metrics.rank_matches.inc();
            for p in [a, b] {
                self.metrics
                    .rank_wait_seconds
                    .observe(now_ms.saturating_sub(p.since_ms) as f64 / 1000.0);
            }
        }
        let mut told = true;
        for (me, other) in [(a, b), (b, a)] {
            let event = Event::RankMatched {
                room: room.clone(),
                opponent: other.user.clone(),
                opponent_rating: other.rating,
                seq: 0,
                epoch: Epoch::default(),
                ts: found.made_ms,
            };
            let topic = Topic::User(me.user.clone());
            let key = Self::rank_matched_key(room);
            if let Err(err) = self.bus.publish_logged(&topic, event, Some(&key)).await {
                told = false;
                tracing::warn!(%room, user = %me.user, cause = %err, "telling a ranked player failed; retried later");
            }
        }
        if !told {
            return;
        }
        if let Err(err) = self.matchmaker.finish(room).await {
            // Harmless: the next run after the lease repeats the announcement, which
            // finds the game and both players already told.
            tracing::debug!(%room, cause = %err, "finishing a ranked match failed");
        }
        tracing::debug!(%room, a = %a.user, b = %b.user, "ranked match");
    }

    /// The match's game with both seats away until taken; a player who never shows up
    /// within the grace period abandons it. A match taken over may already have its
    /// game (players may be in it): that one is kept.
    async fn create_ranked(self: &Arc<Self>, found: &Match, new: bool) -> Result<(), Reply> {
        let (room, a, b) = (&found.room, &found.a, &found.b);
        if new || self.games.get(room).await?.is_none() {
            self.games
                .create(room, &a.user, Some(&b.user), found.made_ms)
                .await?;
            self.metrics.games_created.inc();
        }
        // Both seats start away at `made_ms`: one check covers them.
        self.check_after_grace(room, found.made_ms);
        Ok(())
    }
}
