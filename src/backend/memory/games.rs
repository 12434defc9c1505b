//! In-memory game rooms with seats, watchers, away marks and idle expiry.

use super::*;

struct GameEntry {
    state: GameState,
    /// When each seat went away (ms), 0 while taken.
    owner_away: u64,
    opponent_away: u64,
    watchers: HashSet<UserId>,
    touched: Instant,
}

/// Game rooms in process memory; idle games expire after `ttl`.
pub struct MemoryGames {
    games: Mutex<HashMap<RoomId, GameEntry>>,
    ttl: Duration,
}

impl MemoryGames {
    pub fn new(ttl: Duration) -> Self {
        MemoryGames {
            games: Mutex::default(),
            ttl,
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
            if g.owner_away == 0 {
                return Ok(Err(GameRefusal::Conflict));
            }
            g.owner_away = 0;
        } else if g.state.opponent.as_ref() == Some(user) {
            if g.opponent_away == 0 {
                return Ok(Err(GameRefusal::Conflict));
            }
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

    async fn away_since(&self, room: &RoomId, user: &UserId) -> Result<Option<u64>, BackendError> {
        let games = lock(&self.games);
        let Some(g) = games.get(room) else {
            return Ok(None);
        };
        let mark = if &g.state.owner == user {
            g.owner_away
        } else if g.state.opponent.as_ref() == Some(user) {
            g.opponent_away
        } else {
            0
        };
        Ok((mark != 0).then_some(mark))
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
