//! In-memory game rooms with seats, watchers, away marks and idle expiry.

use super::*;

struct GameEntry {
    state: GameState,
    /// When each seat went away (ms), 0 while taken.
    owner_away: u64,
    opponent_away: u64,
    /// Until when each seat's holder is vouched for (ms), 0: no lease.
    owner_lease: u64,
    opponent_lease: u64,
    watchers: HashSet<UserId>,
    touched: Instant,
}

/// Pending game checks by due time, and each game's due time.
type Checks = (BTreeSet<(u64, RoomId)>, HashMap<RoomId, u64>);

/// Game rooms in process memory; idle games expire after `ttl`.
pub struct MemoryGames {
    games: Mutex<HashMap<RoomId, GameEntry>>,
    ttl: Duration,
    /// Pending game checks: by due time, and the due time of each game.
    checks: Mutex<Checks>,
}

impl MemoryGames {
    pub fn new(ttl: Duration) -> Self {
        MemoryGames {
            games: Mutex::default(),
            ttl,
            checks: Mutex::default(),
        }
    }

    /// The live entry for `room`, dropping it if it expired; refreshes its idle timer.
    fn live<'a>(
        &self,
        games: &'a mut HashMap<RoomId, GameEntry>,
        room: &RoomId,
    ) -> Option<&'a mut GameEntry> {
        if games
            .get(room)
            .is_some_and(|g| g.touched.elapsed() > self.ttl)
        {
            games.remove(room);
        }
        let entry = games.get_mut(room)?;
        entry.touched = Instant::now();
        Some(entry)
    }
}

fn snapshot(entry: &GameEntry) -> GameState {
    GameState {
        watchers: entry.watchers.len(),
        ..entry.state.clone()
    }
}

#[async_trait]
impl Games for MemoryGames {
    async fn create(
        &self,
        room: &RoomId,
        owner: &UserId,
        opponent: Option<&UserId>,
        now_ms: u64,
    ) -> Result<(), BackendError> {
        let mut games = lock(&self.games);
        let ttl = self.ttl;
        games.retain(|_, g| g.touched.elapsed() <= ttl);
        games.insert(
            room.clone(),
            GameEntry {
                state: GameState {
                    room: room.clone(),
                    owner: owner.clone(),
                    opponent: opponent.cloned(),
                    started: false,
                    watchers: 0,
                },
                owner_away: if opponent.is_some() { now_ms } else { 0 },
                opponent_away: if opponent.is_some() { now_ms } else { 0 },
                owner_lease: 0,
                opponent_lease: 0,
                watchers: HashSet::new(),
                touched: Instant::now(),
            },
        );
        Ok(())
    }

    async fn get(&self, room: &RoomId) -> Result<Option<GameState>, BackendError> {
        let mut games = lock(&self.games);
        Ok(self.live(&mut games, room).map(|g| snapshot(g)))
    }

    async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Result<Seated, GameRefusal>, BackendError> {
        let mut games = lock(&self.games);
        let Some(g) = self.live(&mut games, room) else {
            return Ok(Err(GameRefusal::NotFound));
        };
        if &g.state.owner == user {
            g.owner_away = 0;
        } else if g.state.opponent.as_ref() == Some(user) {
            g.opponent_away = 0;
        } else if g.state.opponent.is_none() {
            g.state.opponent = Some(user.clone());
            g.opponent_away = 0;
            g.watchers.remove(user);
        } else {
            return Ok(Err(GameRefusal::RoomFull));
        }
        let starts = !g.state.started
            && g.state.opponent.is_some()
            && g.owner_away == 0
            && g.opponent_away == 0;
        if starts {
            g.state.started = true;
        }
        Ok(Ok(Seated {
            state: snapshot(g),
            starts,
        }))
    }

    async fn watch(
        &self,
        room: &RoomId,
        user: &UserId,
        limit: usize,
    ) -> Result<Result<GameState, GameRefusal>, BackendError> {
        let mut games = lock(&self.games);
        let Some(g) = self.live(&mut games, room) else {
            return Ok(Err(GameRefusal::NotFound));
        };
        if g.state.is_player(user) {
            return Ok(Err(GameRefusal::Conflict));
        }
        if !g.watchers.contains(user) && g.watchers.len() >= limit {
            return Ok(Err(GameRefusal::RoomFull));
        }
        g.watchers.insert(user.clone());
        Ok(Ok(snapshot(g)))
    }

    async fn unwatch(&self, room: &RoomId, user: &UserId) -> Result<(), BackendError> {
        if let Some(g) = lock(&self.games).get_mut(room) {
            g.watchers.remove(user);
        }
        Ok(())
    }

    async fn away(&self, room: &RoomId, user: &UserId, mark: u64) -> Result<(), BackendError> {
        if let Some(g) = lock(&self.games).get_mut(room) {
            if &g.state.owner == user {
                g.owner_away = mark;
            } else if g.state.opponent.as_ref() == Some(user) {
                g.opponent_away = mark;
            }
        }
        Ok(())
    }

    async fn lease(&self, seats: &[(RoomId, UserId)], until_ms: u64) -> Result<(), BackendError> {
        let mut games = lock(&self.games);
        for (room, user) in seats {
            if let Some(g) = games.get_mut(room) {
                if &g.state.owner == user {
                    (g.owner_away, g.owner_lease) = (0, until_ms);
                } else if g.state.opponent.as_ref() == Some(user) {
                    (g.opponent_away, g.opponent_lease) = (0, until_ms);
                }
            }
        }
        Ok(())
    }

    async fn seats(&self, room: &RoomId) -> Result<Option<Vec<Seat>>, BackendError> {
        let mut games = lock(&self.games);
        let ttl = self.ttl;
        if games.get(room).is_some_and(|g| g.touched.elapsed() > ttl) {
            games.remove(room);
        }
        Ok(games.get(room).map(|g| {
            let mut seats = vec![Seat {
                user: g.state.owner.clone(),
                away: g.owner_away,
                lease: g.owner_lease,
            }];
            if let Some(opponent) = &g.state.opponent {
                seats.push(Seat {
                    user: opponent.clone(),
                    away: g.opponent_away,
                    lease: g.opponent_lease,
                });
            }
            seats
        }))
    }

    async fn schedule(&self, room: &RoomId, due_ms: u64) -> Result<(), BackendError> {
        let mut checks = lock(&self.checks);
        let (by_time, by_room) = &mut *checks;
        match by_room.get(room) {
            Some(&pending) if pending <= due_ms => {}
            pending => {
                if let Some(&old) = pending {
                    by_time.remove(&(old, room.clone()));
                }
                by_time.insert((due_ms, room.clone()));
                by_room.insert(room.clone(), due_ms);
            }
        }
        Ok(())
    }

    async fn reschedule(&self, room: &RoomId, due_ms: Option<u64>) -> Result<(), BackendError> {
        let mut checks = lock(&self.checks);
        let (by_time, by_room) = &mut *checks;
        if let Some(old) = by_room.remove(room) {
            by_time.remove(&(old, room.clone()));
        }
        if let Some(due) = due_ms {
            by_time.insert((due, room.clone()));
            by_room.insert(room.clone(), due);
        }
        Ok(())
    }

    async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<RoomId>, BackendError> {
        let checks = lock(&self.checks);
        Ok(checks
            .0
            .iter()
            .take_while(|(due, _)| *due <= now_ms)
            .take(limit)
            .map(|(_, room)| room.clone())
            .collect())
    }

    async fn touch(&self, room: &RoomId) -> Result<(), BackendError> {
        let mut games = lock(&self.games);
        self.live(&mut games, room);
        Ok(())
    }

    async fn close(&self, room: &RoomId) -> Result<Option<GameState>, BackendError> {
        Ok(lock(&self.games).remove(room).map(|g| snapshot(&g)))
    }
}
