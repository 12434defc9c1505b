//! The "who comes online" feed: sessions opt in (`online.watch`) to hear when users come
//! online or go offline, for everyone or for a list of user ids (a friends list).
//! Changes from all replicas arrive on one topic and are coalesced per replica: every
//! interval each watcher gets at most one `online.changes` frame, and a batch holds at
//! most `batch` users, so a login storm costs watchers a frame per interval, not a frame
//! per login (never N² frames).

use crate::hub::SessionHandle;
use crate::protocol::{Member, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// What one session watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// Every user.
    All,
    /// These users only.
    Users(HashSet<UserId>),
}

impl Watch {
    fn covers(&self, user: &UserId) -> bool {
        match self {
            Watch::All => true,
            Watch::Users(users) => users.contains(user),
        }
    }
}

/// Changes collected since the last flush: the latest state per user, in arrival order.
#[derive(Debug, Default)]
struct Pending {
    order: Vec<UserId>,
    /// `Some(name)` online, `None` offline.
    state: HashMap<UserId, Option<Arc<str>>>,
    /// Users left out because the batch was full.
    dropped: usize,
}

/// One flush worth of changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub online: Vec<Member>,
    pub offline: Vec<UserId>,
    /// Changes left out of this batch (the client should refresh with `who`).
    pub dropped: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.online.is_empty() && self.offline.is_empty() && self.dropped == 0
    }

    /// The part of the batch one watcher asked for.
    pub fn for_watch(&self, watch: &Watch) -> Changes {
        match watch {
            Watch::All => Changes {
                online: self.online.clone(),
                offline: self.offline.clone(),
                dropped: self.dropped,
            },
            Watch::Users(_) => Changes {
                online: self
                    .online
                    .iter()
                    .filter(|m| watch.covers(&m.user))
                    .cloned()
                    .collect(),
                offline: self
                    .offline
                    .iter()
                    .filter(|u| watch.covers(u))
                    .cloned()
                    .collect(),
                dropped: self.dropped,
            },
        }
    }
}

/// Watching sessions by session id.
type Watchers = HashMap<Arc<str>, (Arc<SessionHandle>, Watch)>;

/// This replica's watchers and the changes waiting for the next flush.
pub struct OnlineFeed {
    watchers: RwLock<Watchers>,
    pending: Mutex<Pending>,
    batch: usize,
}

impl OnlineFeed {
    pub fn new(batch: usize) -> Self {
        OnlineFeed {
            watchers: RwLock::default(),
            pending: Mutex::default(),
            batch,
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what a session watches; true when it did not watch before.
    pub fn watch(&self, handle: &Arc<SessionHandle>, watch: Watch) -> bool {
        let mut watchers = self.watchers.write().unwrap_or_else(|e| e.into_inner());
        watchers
            .insert(handle.id.clone(), (handle.clone(), watch))
            .is_none()
    }

    /// Stops a session's watch; true when it watched.
    pub fn unwatch(&self, session: &str) -> bool {
        let mut watchers = self.watchers.write().unwrap_or_else(|e| e.into_inner());
        let removed = watchers.remove(session).is_some();
        crate::sparse::shrink_when_sparse(&mut watchers);
        removed
    }

    pub fn has_watchers(&self) -> bool {
        !self
            .watchers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Records a change; the latest state of a user within one interval wins. Without
    /// watchers on this replica nothing is kept.
    pub fn record(&self, user: &UserId, name: Option<&str>) {
        if !self.has_watchers() {
            return;
        }
        let mut pending = self.pending();
        let state = name.map(Arc::from);
        if let Some(slot) = pending.state.get_mut(user) {
            *slot = state;
            return;
        }
        if pending.order.len() >= self.batch {
            pending.dropped += 1;
            return;
        }
        pending.order.push(user.clone());
        pending.state.insert(user.clone(), state);
    }

    /// Takes the collected changes and the current watchers.
    pub fn drain(&self) -> (Changes, Vec<(Arc<SessionHandle>, Watch)>) {
        let pending = std::mem::take(&mut *self.pending());
        let mut changes = Changes {
            dropped: pending.dropped,
            ..Changes::default()
        };
        let mut state = pending.state;
        for user in pending.order {
            match state.remove(&user) {
                Some(Some(name)) => changes.online.push(Member {
                    user,
                    name: name.to_string(),
                }),
                Some(None) => changes.offline.push(user),
                None => {}
            }
        }
        let watchers = self
            .watchers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        (changes, watchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap_or_else(|_| panic!("valid id {name}"))
    }

    fn watched(batch: usize) -> OnlineFeed {
        let feed = OnlineFeed::new(batch);
        feed.watch(&SessionHandle::new("s", user("w"), "W"), Watch::All);
        feed
    }

    #[test]
    fn nothing_is_kept_without_watchers() {
        let feed = OnlineFeed::new(2);
        feed.record(&user("a"), Some("A"));
        assert!(feed.drain().0.is_empty());
    }

    #[test]
    fn latest_state_wins_and_the_batch_is_capped() {
        let feed = watched(2);
        feed.record(&user("a"), Some("A"));
        feed.record(&user("b"), Some("B"));
        feed.record(&user("a"), None);
        feed.record(&user("c"), Some("C"));
        let (changes, _) = feed.drain();
        assert_eq!(changes.offline, vec![user("a")]);
        assert_eq!(changes.online.len(), 1);
        assert_eq!(changes.online[0].user, user("b"));
        assert_eq!(changes.dropped, 1);
        assert!(feed.drain().0.is_empty());
    }

    #[test]
    fn a_list_watch_sees_only_its_users() {
        let feed = watched(10);
        feed.record(&user("a"), Some("A"));
        feed.record(&user("b"), None);
        let (changes, _) = feed.drain();
        let friends = Watch::Users([user("b")].into_iter().collect());
        let mine = changes.for_watch(&friends);
        assert!(mine.online.is_empty());
        assert_eq!(mine.offline, vec![user("b")]);
        assert_eq!(changes.for_watch(&Watch::All), changes);
    }
}
