//! This replica's registry of local sessions by user, room and game, and fan-out: each
//! event is encoded once and the shared bytes are queued to every local recipient. The
//! "who comes online" feed (`feed`) coalesces its changes before they go out.

pub mod feed;
pub mod outbox;

use crate::event::{Delivery, Event, EventSink, LocalSnapshot, Topic};
use crate::metrics::Metrics;
use crate::protocol::close::{self, CloseCode};
use crate::protocol::{GameRole, RoomId, ServerFrame, UserId};
use crate::sparse::shrink_when_sparse;
use feed::{Changes, OnlineFeed, Watch};
use outbox::{Outbox, Refused};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::{Notify, futures::Notified};

/// The hub's view of one live session: its queue and how to close it.
pub struct SessionHandle {
    /// Unique across replicas: `<replica>-<n>`. Shared, not copied, by every map
    /// that keys the session (registry, room members, game participants, watchers).
    pub id: Arc<str>,
    pub user: UserId,
    name: Mutex<Arc<str>>,
    /// Frames on their way to the session's writer.
    pub outbox: Outbox,
    /// Wakes `closed()` waiters; `close_code` (0 until then) says whether it happened.
    /// Inline, unlike a `CancellationToken`, which is an allocation of its own per session.
    closer: Notify,
    close_code: AtomicU16,
}

impl SessionHandle {
    /// A handle with an unbounded queue (tests, tools).
    pub fn new(id: &str, user: UserId, name: &str) -> Arc<Self> {
        Self::with_limits(id, user, name, usize::MAX, usize::MAX)
    }

    /// A handle whose queue holds at most `max_frames` frames and `max_bytes` bytes
    /// (one frame larger than that still passes an empty queue).
    pub fn with_limits(
        id: &str,
        user: UserId,
        name: &str,
        max_frames: usize,
        max_bytes: usize,
    ) -> Arc<Self> {
        Arc::new(SessionHandle {
            id: Arc::from(id),
            user,
            name: Mutex::new(Arc::from(name)),
            outbox: Outbox::new(max_frames, max_bytes),
            closer: Notify::new(),
            close_code: AtomicU16::new(0),
        })
    }

    pub fn name(&self) -> Arc<str> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_name(&self, name: &str) {
        *self.name.lock().unwrap_or_else(|e| e.into_inner()) = Arc::from(name);
    }

    /// Asks the session to close with `code`; the first reason wins. True when this
    /// call decided the reason, so an event is counted once.
    pub fn close(&self, code: CloseCode) -> bool {
        let first = self
            .close_code
            .compare_exchange(0, code.as_u16(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.closer.notify_waiters();
        first
    }

    /// Resolves when someone asked this session to close (at once if that happened).
    pub fn closed(&self) -> Closed<'_> {
        Closed {
            // Created before the code is first read: `notify_waiters` after this point
            // wakes it even before its first poll, and one before shows in the code.
            notified: self.closer.notified(),
            code: &self.close_code,
        }
    }

    pub fn close_code(&self) -> CloseCode {
        match self.close_code.load(Ordering::Acquire) {
            0 => close::NORMAL,
            code => CloseCode::from_u16(code),
        }
    }
}

pin_project_lite::pin_project! {
    /// `SessionHandle::closed`: no bigger than the `Notified` it waits on plus a pointer
    /// (it sits in every session's `select!`).
    pub struct Closed<'a> {
        #[pin]
        notified: Notified<'a>,
        code: &'a AtomicU16,
    }
}

impl Future for Closed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.code.load(Ordering::Acquire) != 0 {
            return Poll::Ready(());
        }
        this.notified.poll(cx)
    }
}

type Participants = HashMap<Arc<str>, (Arc<SessionHandle>, GameRole)>;

#[derive(Default)]
struct Registry {
    sessions: HashMap<Arc<str>, Arc<SessionHandle>>,
    users: HashMap<UserId, Vec<Arc<SessionHandle>>>,
    rooms: HashMap<RoomId, HashMap<Arc<str>, Arc<SessionHandle>>>,
    games: HashMap<RoomId, Participants>,
}

pub struct Hub {
    registry: RwLock<Registry>,
    /// Sessions watching users come online, and the changes waiting for a flush.
    pub online: OnlineFeed,
    metrics: Arc<Metrics>,
}

impl Hub {
    /// A hub whose online feed batches at most `feed_batch` users per flush.
    pub fn new(metrics: Arc<Metrics>, feed_batch: usize) -> Self {
        Hub {
            registry: RwLock::default(),
            online: OnlineFeed::new(feed_batch),
            metrics,
        }
    }

    /// Sends the online changes collected since the last flush: one frame per watcher,
    /// encoded once for all who watch everyone.
    pub fn flush_online_feed(&self) -> usize {
        let (changes, watchers) = self.online.drain();
        if changes.is_empty() || watchers.is_empty() {
            return 0;
        }
        let encode = |c: &Changes| Delivery {
            frame: ServerFrame::OnlineChanges {
                online: &c.online,
                offline: &c.offline,
                dropped: c.dropped,
            }
            .encode(),
            order: None,
        };
        let (all, lists): (Vec<_>, Vec<_>) =
            watchers.into_iter().partition(|(_, w)| *w == Watch::All);
        let mut sent = self.fan_out(all.iter().map(|(h, _)| h), encode(&changes));
        for (handle, watch) in &lists {
            let mine = changes.for_watch(watch);
            if !mine.is_empty() {
                sent += self.fan_out(std::iter::once(handle), encode(&mine));
            }
        }
        sent
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a logged-in session.
    pub fn add_session(&self, handle: &Arc<SessionHandle>) {
        let mut reg = self.write();
        reg.sessions.insert(handle.id.clone(), handle.clone());
        reg.users
            .entry(handle.user.clone())
            .or_default()
            .push(handle.clone());
    }

    /// Unregisters a session; true when it was registered.
    pub fn remove_session(&self, handle: &SessionHandle) -> bool {
        let mut reg = self.write();
        let removed = reg.sessions.remove(&handle.id).is_some();
        if let Some(list) = reg.users.get_mut(&handle.user) {
            list.retain(|h| h.id != handle.id);
            if list.is_empty() {
                reg.users.remove(&handle.user);
            }
        }
        shrink_when_sparse(&mut reg.sessions);
        shrink_when_sparse(&mut reg.users);
        removed
    }

    /// Adds a session to a room; true when it was not there yet.
    pub fn join(&self, room: &RoomId, handle: &Arc<SessionHandle>) -> bool {
        let mut reg = self.write();
        let members = reg.rooms.entry(room.clone()).or_default();
        members.insert(handle.id.clone(), handle.clone()).is_none()
    }

    /// Removes a session from a room; true when it was there.
    pub fn leave(&self, room: &RoomId, handle: &SessionHandle) -> bool {
        let mut reg = self.write();
        let Some(members) = reg.rooms.get_mut(room) else {
            return false;
        };
        let removed = members.remove(&handle.id).is_some();
        shrink_when_sparse(members);
        if members.is_empty() {
            reg.rooms.remove(room);
            shrink_when_sparse(&mut reg.rooms);
        }
        removed
    }

    /// Adds a session to a game in `role`; true when it was not there yet.
    pub fn join_game(&self, room: &RoomId, handle: &Arc<SessionHandle>, role: GameRole) -> bool {
        let mut reg = self.write();
        let members = reg.games.entry(room.clone()).or_default();
        members
            .insert(handle.id.clone(), (handle.clone(), role))
            .is_none()
    }

    /// `(game, user)` for every player seat a local session holds, each once.
    pub fn local_seats(&self) -> Vec<(RoomId, UserId)> {
        let reg = self.read();
        let mut seats: Vec<(RoomId, UserId)> = reg
            .games
            .iter()
            .flat_map(|(room, members)| {
                members
                    .values()
                    .filter(|(_, role)| *role == GameRole::Player)
                    .map(move |(handle, _)| (room.clone(), handle.user.clone()))
            })
            .collect();
        seats.sort_unstable();
        seats.dedup();
        seats
    }

    /// True while another local session of `user` plays in `room`.
    pub fn plays_here(&self, room: &RoomId, user: &UserId) -> bool {
        self.read().games.get(room).is_some_and(|members| {
            members
                .values()
                .any(|(h, role)| *role == GameRole::Player && &h.user == user)
        })
    }

    /// Removes a session from a game; true when it was there.
    pub fn leave_game(&self, room: &RoomId, handle: &SessionHandle) -> bool {
        let mut reg = self.write();
        let Some(members) = reg.games.get_mut(room) else {
            return false;
        };
        let removed = members.remove(&handle.id).is_some();
        if members.is_empty() {
            reg.games.remove(room);
            shrink_when_sparse(&mut reg.games);
        }
        removed
    }

    /// Every local session, for draining.
    pub fn sessions(&self) -> Vec<Arc<SessionHandle>> {
        self.read().sessions.values().cloned().collect()
    }

    pub fn session_count(&self) -> usize {
        self.read().sessions.len()
    }

    /// Queues one shared frame to each recipient; a full queue closes that session
    /// as a slow consumer instead of slowing down anyone else.
    fn fan_out<'a>(
        &self,
        recipients: impl Iterator<Item = &'a Arc<SessionHandle>>,
        delivery: Delivery,
    ) -> usize {
        let kind = delivery.frame.kind();
        let len = delivery.frame.len();
        let delivery = Arc::new(delivery);
        let mut sent = 0;
        for handle in recipients {
            let why = match handle.outbox.push(&delivery) {
                Ok(()) => {
                    sent += 1;
                    continue;
                }
                Err(Refused::Full) => "outbound queue full",
                Err(Refused::OverBytes) => "outbound bytes over the cap",
                Err(Refused::Closed) => continue,
            };
            if handle.close(close::SLOW_CONSUMER) {
                self.metrics.slow_consumer_closes.inc();
                tracing::info!(session = %handle.id, user = %handle.user, why, "slow consumer");
            }
        }
        if sent > 0 {
            self.metrics.deliveries.inc_by(sent as u64);
            self.metrics.outbound_queued.add(sent as i64);
            self.metrics.outbound_queued_bytes.add((sent * len) as i64);
            self.metrics
                .frames_out
                .with_label_values(&[kind])
                .inc_by(sent as u64);
        }
        sent
    }
}

impl EventSink for Hub {
    fn has_interest(&self, topic: &Topic) -> bool {
        let reg = self.read();
        match topic {
            Topic::Room(room) => reg.rooms.contains_key(room),
            Topic::User(user) => reg.users.contains_key(user),
            Topic::Game(room) => reg.games.contains_key(room),
            Topic::All => true,
            Topic::Online => self.online.has_watchers(),
        }
    }

    fn holds(&self, session: &str, room: Option<&RoomId>) -> bool {
        let reg = self.read();
        match room {
            None => reg.sessions.contains_key(session),
            Some(room) => reg.rooms.get(room).is_some_and(|m| m.contains_key(session)),
        }
    }

    fn snapshot(&self) -> LocalSnapshot {
        let reg = self.read();
        let sessions = reg
            .sessions
            .values()
            .map(|h| (h.user.clone(), h.id.to_string(), h.name()))
            .collect();
        let memberships = reg
            .rooms
            .iter()
            .flat_map(|(room, members)| {
                members
                    .values()
                    .map(move |h| (room.clone(), h.user.clone(), h.id.to_string()))
            })
            .collect();
        LocalSnapshot {
            sessions,
            memberships,
        }
    }

    fn dispatch(&self, topic: &Topic, event: &Event) -> usize {
        let started = Instant::now();
        let reg = self.read();
        match event {
            Event::Kick { user, except, code } => {
                for h in reg.users.get(user).into_iter().flatten() {
                    if except.as_deref() != Some(&*h.id) {
                        let _ = h.close(*code);
                    }
                }
                return 0;
            }
            Event::Renamed { user, name } => {
                for h in reg.users.get(user).into_iter().flatten() {
                    h.set_name(name);
                }
                return 0;
            }
            Event::UserOnline { user, name } => {
                self.online.record(user, Some(name));
                return 0;
            }
            Event::UserOffline { user } => {
                self.online.record(user, None);
                return 0;
            }
            _ => {}
        }
        let Some(delivery) = Delivery::for_event(event) else {
            return 0;
        };
        // No echo when asked, and nobody is told about their own arrival or departure.
        let skip = match event {
            Event::Message { skip, .. } => skip.as_ref(),
            Event::MemberJoined { user, .. } | Event::MemberLeft { user, .. } => Some(user),
            _ => None,
        };
        let sent = match topic {
            Topic::Room(room) => match reg.rooms.get(room) {
                Some(members) => {
                    self.fan_out(members.values().filter(|h| Some(&h.user) != skip), delivery)
                }
                None => 0,
            },
            Topic::User(user) => match reg.users.get(user) {
                Some(list) => self.fan_out(list.iter(), delivery),
                None => 0,
            },
            Topic::All => self.fan_out(reg.sessions.values(), delivery),
            // Feed changes were recorded above; nothing is sent per event.
            Topic::Online => 0,
            Topic::Game(room) => match reg.games.get(room) {
                Some(members) => {
                    let target = match event {
                        Event::GameMessage { from, to, .. } => Some((from, *to)),
                        _ => None,
                    };
                    self.fan_out(
                        members
                            .values()
                            .filter(|(h, role)| {
                                target.is_none_or(|(from, to)| to.reaches(from, *role, &h.user))
                            })
                            .map(|(h, _)| h),
                        delivery,
                    )
                }
                None => 0,
            },
        };
        self.metrics
            .fanout_seconds
            .observe(started.elapsed().as_secs_f64());
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn closed_wakes_waiters_and_later_callers_and_the_first_code_wins() {
        let handle = SessionHandle::new("r-1", UserId::new("u").expect("id"), "u");
        let waiter = handle.closed();
        // A future made before the close but first polled after it still completes.
        let early = handle.closed();
        assert!(
            tokio::time::timeout(Duration::from_millis(20), handle.closed())
                .await
                .is_err(),
            "not closed yet"
        );
        let task = tokio::spawn({
            let handle = handle.clone();
            async move { handle.closed().await }
        });
        tokio::task::yield_now().await;
        assert!(handle.close(close::REPLACED));
        assert!(!handle.close(close::NORMAL), "the first reason wins");
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("woken")
            .expect("task");
        waiter.await;
        early.await;
        handle.closed().await;
        assert_eq!(handle.close_code(), close::REPLACED);
    }
}
