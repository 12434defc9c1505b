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
        /// Set with `seq` by the log; never serialized (the log's publisher adds it).
        #[serde(skip)]
        epoch: Epoch,
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
        #[serde(skip)]
        epoch: Epoch,
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
        #[serde(skip)]
        epoch: Epoch,
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
    /// On the user's topic, logged with the direct messages (so it survives a
    /// reconnect and is replayed at login): the ranked queue paired this user.
    RankMatched {
        room: RoomId,
        opponent: UserId,
        opponent_rating: i64,
        #[serde(default)]
        seq: u64,
        #[serde(skip)]
        epoch: Epoch,
        /// When the pair was formed (ms).
        #[serde(default)]
        ts: u64,
    },
}

impl Event {
    /// Where a logged event sits in its topic's log.
    pub fn position(&self) -> Option<Position> {
        match self {
            Event::Message { seq, epoch, .. }
            | Event::Direct { seq, epoch, .. }
            | Event::GameMessage { seq, epoch, .. } => Some(Position::at(*seq, epoch)),
            _ => None,
        }
    }

    /// Stores the position a logged topic assigned.
    pub fn set_position(&mut self, at: Position) {
        if let Event::Message { seq, epoch, .. }
        | Event::Direct { seq, epoch, .. }
        | Event::GameMessage { seq, epoch, .. }
        | Event::RankMatched { seq, epoch, .. } = self
        {
            *seq = at.seq;
            *epoch = at.epoch;
        }
    }
}

/// One incarnation of a topic's log. When a log is lost or starts again (Redis restarted
/// empty, the log expired, an in-memory replica restarted) its seqs restart at 1 under a
/// new epoch, so a cursor from the old log is recognised instead of hiding new messages.
/// Empty means unknown (a log that has no epoch yet, or a client that sent none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Epoch(Arc<str>);

impl Epoch {
    pub fn new(value: &str) -> Epoch {
        Epoch(Arc::from(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_known(&self) -> bool {
        !self.0.is_empty()
    }

    /// The epoch as an optional wire field (absent when unknown).
    pub fn wire(&self) -> Option<&str> {
        self.is_known().then_some(&*self.0)
    }
}

/// Where an event sits in its topic's log: `seq` within `epoch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    pub epoch: Epoch,
}

/// What a session does with a logged frame, given its cursor for the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Advance {
    /// New: write it.
    Fresh,
    /// Already written (replay overlap): drop it.
    Seen,
    /// The stream started again under a new epoch: tell the client, then write it.
    Reset,
}

impl Position {
    pub fn at(seq: u64, epoch: &Epoch) -> Position {
        Position {
            seq,
            epoch: epoch.clone(),
        }
    }

    /// Moves a session's cursor over `at`. A cursor with no epoch yet adopts the
    /// stream's; a different known epoch means the log was reset and the cursor starts
    /// again from `at`.
    pub fn advance(&mut self, at: &Position) -> Advance {
        if at.epoch.is_known() && at.epoch != self.epoch {
            let reset = self.epoch.is_known();
            self.epoch = at.epoch.clone();
            if reset {
                self.seq = at.seq;
                return Advance::Reset;
            }
        }
        if at.seq > self.seq {
            self.seq = at.seq;
            Advance::Fresh
        } else {
            Advance::Seen
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
    Room(RoomId, Position),
    Direct(Position),
    /// A `rank.matched` in the user's stream (positions shared with `Direct`): the
    /// session is no longer queued once it is written.
    Matched(Position),
    Game(RoomId, Position),
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
                epoch,
            } => (
                ServerFrame::GameMessage {
                    room: room.as_str(),
                    from: from.as_str(),
                    to: *to,
                    data,
                    seq: *seq,
                }
                .encode(),
                Some(Ordered::Game(room.clone(), Position::at(*seq, epoch))),
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
                seq,
                epoch,
                ..
            } => (
                ServerFrame::RankMatched {
                    room: room.as_str(),
                    opponent: opponent.as_str(),
                    opponent_rating: *opponent_rating,
                    seq: *seq,
                }
                .encode(),
                Some(Ordered::Matched(Position::at(*seq, epoch))),
            ),
            Event::Message {
                room,
                from,
                name,
                data,
                seq,
                epoch,
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
                Some(Ordered::Room(room.clone(), Position::at(*seq, epoch))),
            ),
            Event::Direct {
                from,
                name,
                data,
                seq,
                epoch,
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
                Some(Ordered::Direct(Position::at(*seq, epoch))),
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
