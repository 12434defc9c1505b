//! The in-memory ranked queue and its pending matches, matched with the same rule
//! (`matchmaking::pair`) as the Redis backend.

use super::*;
use crate::backend::{Match, MatchRun, RECLAIM_PER_RUN, Taken};

#[derive(Default)]
struct State {
    /// Queued players with the session that queued them.
    queue: HashMap<UserId, (Waiting, String)>,
    /// Matches taken but not finished, with their lease deadline (ms).
    pending: HashMap<RoomId, (Match, u64)>,
}

/// The ranked queue in process memory.
#[derive(Default)]
pub struct MemoryMatchmaker {
    state: Mutex<State>,
}

impl MemoryMatchmaker {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The room of a run's `k`th new match (1-based), as the Redis script names it.
fn match_room(prefix: &str, k: usize) -> Result<RoomId, BackendError> {
    RoomId::new(&format!("{prefix}{k:08x}")).map_err(BackendError::Reply)
}

#[async_trait]
impl Matchmaker for MemoryMatchmaker {
    async fn enqueue(&self, player: &Waiting, session: &str) -> Result<bool, BackendError> {
        let mut state = lock(&self.state);
        if state.queue.contains_key(&player.user) {
            return Ok(false);
        }
        state
            .queue
            .insert(player.user.clone(), (player.clone(), session.to_owned()));
        Ok(true)
    }

    async fn dequeue(&self, user: &UserId, session: Option<&str>) -> Result<bool, BackendError> {
        let mut state = lock(&self.state);
        let owned = state
            .queue
            .get(user)
            .is_some_and(|(_, s)| session.is_none_or(|want| want == s));
        Ok(owned && state.queue.remove(user).is_some())
    }

    async fn take_matches(&self, run: &MatchRun<'_>) -> Result<Taken, BackendError> {
        let mut state = lock(&self.state);
        state
            .queue
            .retain(|_, (w, _)| w.since_ms >= run.drop_before_ms);
        let waiting: Vec<Waiting> = state.queue.values().map(|(w, _)| w.clone()).collect();
        let mut taken = Taken::default();
        for (k, (a, b)) in matchmaking::pair(&waiting, run.now_ms, &run.rules)
            .into_iter()
            .enumerate()
        {
            let found = Match {
                room: match_room(run.room_prefix, k + 1)?,
                a: waiting[a].clone(),
                b: waiting[b].clone(),
                made_ms: run.now_ms,
            };
            state.queue.remove(&found.a.user);
            state.queue.remove(&found.b.user);
            let deadline = run.now_ms + run.lease_ms;
            state
                .pending
                .insert(found.room.clone(), (found.clone(), deadline));
            taken.matches.push(found);
        }
        let mut expired: Vec<&mut (Match, u64)> = state
            .pending
            .values_mut()
            .filter(|(_, deadline)| *deadline <= run.now_ms)
            .collect();
        expired.sort_by_key(|(m, deadline)| (*deadline, m.room.clone()));
        for (found, deadline) in expired.into_iter().take(RECLAIM_PER_RUN) {
            *deadline = run.now_ms + run.lease_ms;
            taken.matches.push(found.clone());
            taken.recovered += 1;
        }
        taken.queued = state.queue.len();
        taken.pending = state.pending.len();
        Ok(taken)
    }

    async fn finish(&self, room: &RoomId) -> Result<(), BackendError> {
        lock(&self.state).pending.remove(room);
        Ok(())
    }

    async fn stats(&self, now_ms: u64) -> Result<QueueStats, BackendError> {
        let state = lock(&self.state);
        Ok(QueueStats {
            len: state.queue.len(),
            waits_ms: state
                .queue
                .values()
                .map(|(w, _)| now_ms.saturating_sub(w.since_ms))
                .collect(),
        })
    }
}
