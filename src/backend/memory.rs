//! Single-node backend: the bus loops events straight back to the local hub, logs and
//! presence, games and the ranked queue live in process memory. The default for
//! `cargo run` and most tests.

use super::{
    BackendError, Bus, Event, EventSink, GameRefusal, GameState, Games, Matchmaker, Membership,
    OnlinePage, Presence, QueueStats, Replay, Seated, Topic,
};
use crate::matchmaking::{self, Rules, Waiting};
use crate::metrics::Metrics;
use crate::protocol::{Member, RoomId, UserId};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// Locks a mutex even if a panicking thread poisoned it: the data are plain maps
/// whose invariants hold between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An ordered, bounded log of one topic.
#[derive(Default)]
struct Log {
    last_seq: u64,
    entries: VecDeque<Event>,
    /// For user topics: highest seq handed to a session.
    delivered: u64,
}

pub struct MemoryBus {
    sink: Arc<dyn EventSink>,
    logs: RwLock<HashMap<Topic, Arc<Mutex<Log>>>>,
    history_size: usize,
    inbox_size: usize,
    metrics: Arc<Metrics>,
}

impl MemoryBus {
    pub fn new(
        sink: Arc<dyn EventSink>,
        history_size: usize,
        inbox_size: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        MemoryBus {
            sink,
            logs: RwLock::default(),
            history_size,
            inbox_size,
            metrics,
        }
    }

    fn log(&self, topic: &Topic) -> Arc<Mutex<Log>> {
        if let Some(log) = self
            .logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
        {
            return log.clone();
        }
        self.logs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(topic.clone())
            .or_default()
            .clone()
    }

    fn existing_log(&self, topic: &Topic) -> Option<Arc<Mutex<Log>>> {
        self.logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .cloned()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &Topic, event: Event) -> Result<(), BackendError> {
        self.sink.dispatch(topic, &event);
        Ok(())
    }

    async fn publish_logged(&self, topic: &Topic, mut event: Event) -> Result<u64, BackendError> {
        let cap = match topic {
            Topic::User(_) => self.inbox_size,
            _ => self.history_size,
        };
        let log = self.log(topic);
        // Dispatch under the topic lock so local delivery order equals seq order.
        let mut log = lock(&log);
        log.last_seq += 1;
        let seq = log.last_seq;
        event.set_seq(seq);
        // Sessions raise the DM watermark themselves once a DM is really written.
        self.sink.dispatch(topic, &event);
        if cap > 0 {
            log.entries.push_back(event);
            self.metrics.log_entries.inc();
            while log.entries.len() > cap {
                log.entries.pop_front();
                self.metrics.log_entries.dec();
            }
        }
        Ok(seq)
    }

    async fn replay(
        &self,
        topic: &Topic,
        after: u64,
        limit: usize,
    ) -> Result<Replay, BackendError> {
        let Some(log) = self.existing_log(topic) else {
            return Ok(Replay {
                events: Vec::new(),
                complete: after == 0,
                head: 0,
            });
        };
        let log = lock(&log);
        if after >= log.last_seq {
            return Ok(Replay {
                events: Vec::new(),
                complete: after == log.last_seq,
                head: log.last_seq,
            });
        }
        let first_kept = log.last_seq + 1 - log.entries.len() as u64;
        let missed = log.last_seq - after;
        let skip = log.entries.len().saturating_sub(missed as usize);
        let newer: Vec<Event> = log.entries.iter().skip(skip).cloned().collect();
        let take_from = newer.len().saturating_sub(limit);
        Ok(Replay {
            complete: after + 1 >= first_kept && take_from == 0,
            events: newer.into_iter().skip(take_from).collect(),
            head: log.last_seq,
        })
    }

    async fn delivered(&self, user: &UserId) -> Result<u64, BackendError> {
        Ok(self
            .existing_log(&Topic::User(user.clone()))
            .map(|log| lock(&log).delivered)
            .unwrap_or(0))
    }

    async fn mark_delivered(&self, user: &UserId, seq: u64) -> Result<(), BackendError> {
        if let Some(log) = self.existing_log(&Topic::User(user.clone())) {
            let mut log = lock(&log);
            log.delivered = log.delivered.max(seq);
        }
        Ok(())
    }

    async fn subscribe(&self, _topic: &Topic) -> Result<(), BackendError> {
        Ok(())
    }

    async fn unsubscribe(&self, _topic: &Topic) -> Result<(), BackendError> {
        Ok(())
    }
}

#[derive(Default)]
struct PresenceState {
    /// Online users: name and session ids.
    users: BTreeMap<UserId, OnlineUser>,
    /// Room -> user -> that user's sessions in the room.
    rooms: HashMap<RoomId, BTreeMap<UserId, HashSet<String>>>,
}

struct OnlineUser {
    name: String,
    sessions: HashSet<String>,
    rooms: HashSet<RoomId>,
}

#[derive(Default)]
pub struct MemoryPresence {
    state: Mutex<PresenceState>,
}

impl MemoryPresence {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn connect(
        &self,
        user: &UserId,
        name: &str,
        session: &str,
    ) -> Result<usize, BackendError> {
        let mut st = lock(&self.state);
        let entry = st.users.entry(user.clone()).or_insert_with(|| OnlineUser {
            name: name.to_owned(),
            sessions: HashSet::new(),
            rooms: HashSet::new(),
        });
        let before = entry.sessions.len();
        if before == 0 {
            entry.name = name.to_owned();
        }
        entry.sessions.insert(session.to_owned());
        Ok(before)
    }

    async fn disconnect(&self, user: &UserId, session: &str) -> Result<(), BackendError> {
        let mut st = lock(&self.state);
        if let Some(entry) = st.users.get_mut(user) {
            entry.sessions.remove(session);
            if entry.sessions.is_empty() {
                st.users.remove(user);
            }
        }
        Ok(())
    }

    async fn session_count(&self, user: &UserId) -> Result<usize, BackendError> {
        Ok(lock(&self.state)
            .users
            .get(user)
            .map_or(0, |u| u.sessions.len()))
    }

    async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let mut st = lock(&self.state);
        let members = st.rooms.entry(room.clone()).or_default();
        let sessions = members.entry(user.clone()).or_default();
        let changed = sessions.is_empty();
        sessions.insert(session.to_owned());
        let count = members.len();
        if let Some(u) = st.users.get_mut(user) {
            u.rooms.insert(room.clone());
        }
        Ok(Membership {
            changed,
            members: count,
        })
    }

    async fn leave(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let mut st = lock(&self.state);
        let Some(members) = st.rooms.get_mut(room) else {
            return Ok(Membership {
                changed: false,
                members: 0,
            });
        };
        let mut changed = false;
        if let Some(sessions) = members.get_mut(user) {
            changed = sessions.remove(session) && sessions.is_empty();
            if sessions.is_empty() {
                members.remove(user);
            }
        }
        let count = members.len();
        if count == 0 {
            st.rooms.remove(room);
        }
        if changed && let Some(u) = st.users.get_mut(user) {
            u.rooms.remove(room);
        }
        Ok(Membership {
            changed,
            members: count,
        })
    }

    async fn members(
        &self,
        room: &RoomId,
        limit: usize,
    ) -> Result<(Vec<Member>, usize), BackendError> {
        let st = lock(&self.state);
        let Some(members) = st.rooms.get(room) else {
            return Ok((Vec::new(), 0));
        };
        let list = members
            .keys()
            .take(limit)
            .map(|user| Member {
                user: user.clone(),
                name: st
                    .users
                    .get(user)
                    .map_or_else(|| user.to_string(), |u| u.name.clone()),
            })
            .collect();
        Ok((list, members.len()))
    }

    async fn online(&self, cursor: Option<&str>, limit: usize) -> Result<OnlinePage, BackendError> {
        let st = lock(&self.state);
        let lower = match cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let mut users: Vec<Member> = st
            .users
            .range::<str, _>((lower, Bound::Unbounded))
            .take(limit + 1)
            .map(|(user, u)| Member {
                user: user.clone(),
                name: u.name.clone(),
            })
            .collect();
        let next = if users.len() > limit {
            users.truncate(limit);
            users.last().map(|m| m.user.to_string())
        } else {
            None
        };
        Ok(OnlinePage {
            users,
            count: st.users.len(),
            next,
        })
    }

    async fn rename(&self, user: &UserId, name: &str) -> Result<Vec<RoomId>, BackendError> {
        let mut st = lock(&self.state);
        Ok(match st.users.get_mut(user) {
            Some(u) => {
                u.name = name.to_owned();
                u.rooms.iter().cloned().collect()
            }
            None => Vec::new(),
        })
    }
}

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
