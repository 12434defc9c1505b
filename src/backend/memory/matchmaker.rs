//! The in-memory ranked queue, matched with the same rule as the Redis script.

use super::*;

/// The ranked queue in process memory.
#[derive(Default)]
pub struct MemoryMatchmaker {
    queue: Mutex<HashMap<UserId, (Waiting, String)>>,
}

impl MemoryMatchmaker {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Matchmaker for MemoryMatchmaker {
    async fn enqueue(&self, player: &Waiting, session: &str) -> Result<bool, BackendError> {
        let mut queue = lock(&self.queue);
        if queue.contains_key(&player.user) {
            return Ok(false);
        }
        queue.insert(player.user.clone(), (player.clone(), session.to_owned()));
        Ok(true)
    }

    async fn dequeue(&self, user: &UserId, session: Option<&str>) -> Result<bool, BackendError> {
        let mut queue = lock(&self.queue);
        let owned = queue
            .get(user)
            .is_some_and(|(_, s)| session.is_none_or(|want| want == s));
        Ok(owned && queue.remove(user).is_some())
    }

    async fn take_pairs(
        &self,
        now_ms: u64,
        rules: &Rules,
    ) -> Result<Vec<(Waiting, Waiting)>, BackendError> {
        let mut queue = lock(&self.queue);
        let waiting: Vec<Waiting> = queue.values().map(|(w, _)| w.clone()).collect();
        let pairs = matchmaking::pair(&waiting, now_ms, rules);
        Ok(pairs
            .into_iter()
            .map(|(a, b)| {
                queue.remove(&waiting[a].user);
                queue.remove(&waiting[b].user);
                (waiting[a].clone(), waiting[b].clone())
            })
            .collect())
    }

    async fn stats(&self, now_ms: u64) -> Result<QueueStats, BackendError> {
        let queue = lock(&self.queue);
        Ok(QueueStats {
            len: queue.len(),
            waits_ms: queue
                .values()
                .map(|(w, _)| now_ms.saturating_sub(w.since_ms))
                .collect(),
        })
    }
}
