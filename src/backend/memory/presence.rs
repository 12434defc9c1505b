//! In-memory presence: sessions, room memberships and display names.

use super::*;

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

    async fn disconnect(&self, user: &UserId, session: &str) -> Result<usize, BackendError> {
        let mut st = lock(&self.state);
        let Some(entry) = st.users.get_mut(user) else {
            return Ok(0);
        };
        entry.sessions.remove(session);
        let left = entry.sessions.len();
        if left == 0 {
            st.users.remove(user);
        }
        Ok(left)
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
            crate::sparse::shrink_when_sparse(&mut st.rooms);
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
