//! Events: what travels between replicas (`Topic`, `Event`), how this replica receives
//! them (`EventSink`, implemented by the hub), and the one encoding of an event into the
//! client frame every local recipient shares (`Delivery`).

use crate::protocol::close::CloseCode;
use crate::protocol::{Encoded, GameTarget, RoomId, ServerFrame, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Where an event goes: every replica delivers it to its local sessions of the topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    Room(RoomId),
    User(UserId),
    All,
    /// A game's participants (players and watchers); logged like a room.
    Game(RoomId),
    /// Users coming online and going offline, for `online.watch` feeds.
    Online,
}

/// What travels between replicas. Each replica turns it into a client frame once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Event {
    Message {
        room: RoomId,
        from: UserId,
        name: String,
        data: Value,
        seq: u64,
        ts: u64,
        /// Set when the sender asked for no echo: its own sessions are skipped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skip: Option<UserId>,
    },
    Direct {
        to: UserId,
        from: UserId,
        name: String,
        data: Value,
        seq: u64,
        ts: u64,
    },
    Broadcast {
        from: UserId,
        name: String,
        data: Value,
        ts: u64,
    },
    MemberJoined {
        room: RoomId,
        user: UserId,
        name: String,
        /// Distinct users in the room afterwards.
        count: usize,
    },
    MemberLeft {
        room: RoomId,
        user: UserId,
        name: String,
        /// Distinct users in the room afterwards.
        count: usize,
    },
    MemberRenamed {
        room: RoomId,
        user: UserId,
        name: String,
    },
    /// Close the user's sessions (but `except`) with `code`: kick policy, API disconnect.
    Kick {
        user: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<String>,
        code: CloseCode,
    },
    /// The user's display name changed; its sessions use the new one from now on.
    Renamed {
        user: UserId,
        name: String,
    },
    GameStarted {
        room: RoomId,
        owner: UserId,
        opponent: UserId,
    },
    GameMessage {
        room: RoomId,
        from: UserId,
        to: GameTarget,
        data: Value,
        seq: u64,
    },
    GameClosed {
        room: RoomId,
        reason: String,
    },
    /// On `Topic::Online`: the user's first session anywhere started.
    UserOnline {
        user: UserId,
        name: String,
    },
    /// On `Topic::Online`: the user's last session anywhere ended.
    UserOffline {
        user: UserId,
    },
    /// On the user's topic: the ranked queue paired this user.
    RankMatched {
        room: RoomId,
        opponent: UserId,
        opponent_rating: i64,
    },
}

impl Event {
    /// The seq of a logged event.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Event::Message { seq, .. }
            | Event::Direct { seq, .. }
            | Event::GameMessage { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// Stores the seq a logged topic assigned.
    pub fn set_seq(&mut self, value: u64) {
        if let Event::Message { seq, .. }
        | Event::Direct { seq, .. }
        | Event::GameMessage { seq, .. } = self
        {
            *seq = value;
        }
    }
}

/// This replica's side of the bus: the backends deliver events through it and ask it
/// what local sessions need, so they never depend on the hub itself.
pub trait EventSink: Send + Sync {
    /// Delivers to local sessions; returns how many received it.
    fn dispatch(&self, topic: &Topic, event: &Event) -> usize;
    /// True while some local session needs `topic`.
    fn has_interest(&self, topic: &Topic) -> bool;
    /// True while the session is registered here (and, with `room`, in that room).
    fn holds(&self, session: &str, room: Option<&RoomId>) -> bool;
    /// What a shared presence store must keep refreshed for this replica.
    fn snapshot(&self) -> LocalSnapshot;
}

/// Local sessions and room memberships at one moment.
#[derive(Debug, Default)]
pub struct LocalSnapshot {
    /// `(user, session, name)`.
    pub sessions: Vec<(UserId, String, Arc<str>)>,
    /// `(room, user, session)`.
    pub memberships: Vec<(RoomId, UserId, String)>,
}

/// One encoded frame on its way to a session, shared by all its recipients.
#[derive(Debug)]
pub struct Delivery {
    pub frame: Encoded,
    /// Position in an ordered stream, so a session can drop what a replay already sent.
    pub order: Option<Ordered>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ordered {
    Room(RoomId, u64),
    Direct(u64),
    Game(RoomId, u64),
    /// The game is over: the session lets go of it after writing this frame.
    GameOver(RoomId),
}

impl Delivery {
    /// Encodes the client frame for an event; `None` for control events.
    pub fn for_event(event: &Event) -> Option<Delivery> {
        let (frame, order) = match event {
            // Control events, and feed changes the hub coalesces before sending.
            Event::Kick { .. }
            | Event::Renamed { .. }
            | Event::UserOnline { .. }
            | Event::UserOffline { .. } => return None,
            Event::GameStarted {
                room,
                owner,
                opponent,
            } => (
                ServerFrame::GameStarted {
                    room: room.as_str(),
                    owner: owner.as_str(),
                    opponent: opponent.as_str(),
                }
                .encode(),
                None,
            ),
            Event::GameMessage {
                room,
                from,
                to,
                data,
                seq,
            } => (
                ServerFrame::GameMessage {
                    room: room.as_str(),
                    from: from.as_str(),
                    to: *to,
                    data,
                    seq: *seq,
                }
                .encode(),
                Some(Ordered::Game(room.clone(), *seq)),
            ),
            Event::GameClosed { room, reason } => (
                ServerFrame::GameClosed {
                    room: room.as_str(),
                    reason,
                }
                .encode(),
                Some(Ordered::GameOver(room.clone())),
            ),
            Event::RankMatched {
                room,
                opponent,
                opponent_rating,
            } => (
                ServerFrame::RankMatched {
                    room: room.as_str(),
                    opponent: opponent.as_str(),
                    opponent_rating: *opponent_rating,
                }
                .encode(),
                None,
            ),
            Event::Message {
                room,
                from,
                name,
                data,
                seq,
                ts,
                ..
            } => (
                ServerFrame::Message {
                    room: room.as_str(),
                    from: from.as_str(),
                    name,
                    data,
                    seq: *seq,
                    ts: *ts,
                }
                .encode(),
                Some(Ordered::Room(room.clone(), *seq)),
            ),
            Event::Direct {
                from,
                name,
                data,
                seq,
                ts,
                ..
            } => (
                ServerFrame::Direct {
                    from: from.as_str(),
                    name,
                    data,
                    seq: *seq,
                    ts: *ts,
                }
                .encode(),
                Some(Ordered::Direct(*seq)),
            ),
            Event::Broadcast {
                from,
                name,
                data,
                ts,
            } => (
                ServerFrame::Broadcast {
                    from: from.as_str(),
                    name,
                    data,
                    ts: *ts,
                }
                .encode(),
                None,
            ),
            Event::MemberJoined {
                room,
                user,
                name,
                count,
            } => (
                ServerFrame::MemberJoined {
                    room: room.as_str(),
                    user: user.as_str(),
                    name,
                    count: *count,
                }
                .encode(),
                None,
            ),
            Event::MemberLeft {
                room,
                user,
                name,
                count,
            } => (
                ServerFrame::MemberLeft {
                    room: room.as_str(),
                    user: user.as_str(),
                    name,
                    count: *count,
                }
                .encode(),
                None,
            ),
            Event::MemberRenamed { room, user, name } => (
                ServerFrame::MemberRenamed {
                    room: room.as_str(),
                    user: user.as_str(),
                    name,
                }
                .encode(),
                None,
            ),
        };
        Some(Delivery { frame, order })
    }
}
