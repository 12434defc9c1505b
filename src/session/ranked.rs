//! A session's side of ranked play: `rank.join`, then `rank.waiting` at a steady
//! cadence while the user waits, and `rank.timeout` once the maximum wait is over.

use super::*;
use crate::matchmaking::Waiting;

/// Retry delay when the queue could not be asked at the deadline.
const TIMEOUT_RETRY: Duration = Duration::from_secs(1);

/// This session's user waits in the ranked queue.
pub(super) struct RankWait {
    /// When the user joined (ms since the epoch), as stored in the queue.
    since_ms: u64,
    next_status: Instant,
    deadline: Instant,
}

impl RankWait {
    /// When the session loop must next look at the wait.
    pub(super) fn next_wake(&self) -> Instant {
        self.next_status.min(self.deadline)
    }
}

impl<T: Transport> Session<'_, T> {
    pub(super) async fn rank_join(&mut self, id: Option<&Value>) -> Result<(), Reply> {
        let gw = self.gw;
        let player = Waiting {
            user: self.identity.user.clone(),
            rating: self.identity.rating,
            since_ms: crate::clock::unix_millis(),
        };
        gw.rank_join(&player, &self.handle.id).await?;
        // Already waiting from this session: the first join's clock keeps running.
        if self.ranked.is_none() {
            let now = Instant::now();
            self.ranked = Some(Box::new(RankWait {
                since_ms: player.since_ms,
                next_status: now + gw.config.rank_status_interval,
                deadline: now + gw.config.rank_max_wait,
            }));
        }
        let frame = ServerFrame::RankQueued {
            id,
            rating: self.identity.rating,
            queued: gw.rank_queue_seen().max(1),
            max_wait_ms: gw.config.rank_max_wait.as_millis() as u64,
        };
        self.reply(frame).await;
        Ok(())
    }

    /// Sends `rank.waiting` when due, or ends the wait with `rank.timeout`.
    pub(super) async fn rank_tick(&mut self, now: Instant) {
        let gw = self.gw;
        let Some(wait) = &mut self.ranked else {
            return;
        };
        let waited_ms = crate::clock::unix_millis().saturating_sub(wait.since_ms);
        if now >= wait.deadline {
            match gw.rank_timeout(&self.identity.user, &self.handle.id).await {
                Ok(true) => {
                    self.ranked = None;
                    self.reply(ServerFrame::RankTimeout { waited_ms }).await;
                }
                // Matched meanwhile (`rank.matched` is on its way) or left elsewhere.
                Ok(false) => self.ranked = None,
                Err(err) => {
                    tracing::debug!(cause = ?err, "ranked timeout not applied; retrying");
                    wait.deadline = now + TIMEOUT_RETRY;
                }
            }
            return;
        }
        wait.next_status = now + gw.config.rank_status_interval;
        let frame = ServerFrame::RankWaiting {
            queued: gw.rank_queue_seen(),
            window: gw.rank_rules().window(waited_ms) as u64,
            waited_ms,
        };
        self.reply(frame).await;
    }
}
