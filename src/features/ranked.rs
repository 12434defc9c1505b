//! Ranked play: the shared queue, the matcher loop every replica runs, and turning a
//! pair into a game room announced over both players' user channels.

use super::games::new_game_id;
use crate::backend::QueueStats;
use crate::event::{Event, Topic};
use crate::gateway::Gateway;
use crate::matchmaking::{Rules, Waiting};
use crate::protocol::Reply;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl Gateway {
    pub fn rank_rules(&self) -> Rules {
        Rules {
            window: self.config.rank_window,
            widen_per_s: self.config.rank_widen_per_s,
            max_window: self.config.rank_max_window,
        }
    }

    /// Queues the player (once per user) and wakes the matcher.
    pub async fn rank_join(&self, player: &Waiting, session: &str) -> Result<(), Reply> {
        self.matchmaker.enqueue(player, session).await?;
        self.rank_wakeup.notify_one();
        Ok(())
    }

    pub async fn rank_leave(
        &self,
        user: &crate::protocol::UserId,
        session: Option<&str>,
    ) -> Result<bool, Reply> {
        Ok(self.matchmaker.dequeue(user, session).await?)
    }

    pub async fn rank_stats(&self) -> Result<QueueStats, Reply> {
        let stats = self.matchmaker.stats(crate::clock::unix_millis()).await?;
        self.metrics.rank_queue.set(stats.len as i64);
        Ok(stats)
    }

    /// Runs the matcher every `rank_interval` and whenever someone joins, until `stop`.
    pub async fn run_matchmaker(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.rank_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rules = self.rank_rules();
        let mut runs: u64 = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.rank_wakeup.notified() => {}
            }
            runs += 1;
            if runs.is_multiple_of(10) {
                // Keeps the queue-length gauge fresh without a read on every run.
                let _ = self.rank_stats().await;
            }
            let now = crate::clock::unix_millis();
            match self.matchmaker.take_pairs(now, &rules).await {
                Ok(pairs) => {
                    for (a, b) in pairs {
                        if let Err(err) = Self::start_ranked(&self, &a, &b, now).await {
                            tracing::warn!(cause = ?err, "announcing a ranked match failed");
                        }
                    }
                }
                Err(err) => tracing::debug!(cause = %err, "matcher run failed"),
            }
        }
    }

    /// Creates the pair's game (both seats away until taken) and tells both players;
    /// a player who never shows up within the grace period abandons it.
    async fn start_ranked(
        self: &Arc<Self>,
        a: &Waiting,
        b: &Waiting,
        now_ms: u64,
    ) -> Result<(), Reply> {
        let room = new_game_id();
        self.games
            .create(&room, &a.user, Some(&b.user), now_ms)
            .await?;
        self.close_unless_back(&room, &a.user, now_ms);
        self.close_unless_back(&room, &b.user, now_ms);
        self.metrics.games_created.inc();
        self.metrics.rank_matches.inc();
        for (me, other) in [(a, b), (b, a)] {
            self.metrics
                .rank_wait_seconds
                .observe(now_ms.saturating_sub(me.since_ms) as f64 / 1000.0);
            let event = Event::RankMatched {
                room: room.clone(),
                opponent: other.user.clone(),
                opponent_rating: other.rating,
            };
            self.bus
                .publish(&Topic::User(me.user.clone()), event)
                .await?;
        }
        tracing::debug!(%room, a = %a.user, b = %b.user, "ranked match");
        Ok(())
    }
}
