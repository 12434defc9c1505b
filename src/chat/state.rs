//! What the terminal client remembers across reconnects: joined rooms and the last seq
//! seen in each, the current game, the last DM seq, the online watch; and the requests
//! still waiting for a reply.

use super::commands::OnlineWatch;
use crate::protocol::GameRole;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Room history lines shown on a fresh `/join` (the server replays up to its
/// `replay_limit`; older ones are skipped here).
pub(crate) const HISTORY_SHOWN: usize = 20;

#[derive(Debug, Default)]
pub(crate) struct Room {
    /// The highest message seq seen (`None`: none yet, e.g. after a restart clamp).
    pub(crate) seq: Option<u64>,
    /// The epoch of the room's log that `seq` counts in (from the join `ok`).
    pub(crate) epoch: Option<String>,
    /// While a fresh join replays history: the lines held back until its `ok`.
    pub(crate) history: Option<History>,
}

/// Room history held back while a fresh join replays it, printed with the `ok`.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// The newest [`HISTORY_SHOWN`] lines, with their timestamps.
    pub(crate) lines: VecDeque<(Option<u64>, String)>,
    /// How many messages the replay had.
    pub(crate) count: usize,
}

impl History {
    /// Holds one message's lines.
    pub(crate) fn hold(&mut self, lines: Vec<(Option<u64>, String)>) {
        self.count += 1;
        self.lines.extend(lines);
        while self.lines.len() > HISTORY_SHOWN {
            self.lines.pop_front();
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Game {
    pub(crate) room: String,
    pub(crate) role: GameRole,
    /// The highest game seq seen, from `game.message` or our own `game.send` `ok`.
    pub(crate) seq: Option<u64>,
    /// The epoch of the game's log that `seq` counts in.
    pub(crate) epoch: Option<String>,
}

/// What a request was, so its reply can be told.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Join {
        room: String,
        resume: bool,
    },
    Leave {
        room: String,
    },
    Publish,
    Send {
        to: String,
        text: String,
    },
    Broadcast,
    Presence,
    Who,
    Rename,
    Watch(OnlineWatch),
    GameCreate,
    GameJoin {
        room: String,
        watch: bool,
        resume: bool,
    },
    /// `shown`: the line to print on `ok`, for targets that get no echo.
    GameSend {
        room: String,
        shown: Option<String>,
    },
    GameLeave {
        room: String,
    },
    GameClose,
    RankJoin {
        resume: bool,
    },
    RankLeave,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Our user id, from `welcome`.
    pub(crate) me: String,
    /// Joined rooms (and rooms being joined), by name.
    pub(crate) rooms: BTreeMap<String, Room>,
    /// Where plain text goes.
    pub(crate) current: Option<String>,
    pub(crate) game: Option<Game>,
    /// The highest DM seq seen over all connections: the next login's `dm_since`.
    pub(crate) dm_seen: Option<u64>,
    /// The highest DM seq seen on this connection (server seqs may restart lower).
    dm_here: Option<u64>,
    /// The epoch of the DM log that `dm_seen` counts in (from `welcome`).
    pub(crate) dm_epoch: Option<String>,
    pub(crate) online: Option<OnlineWatch>,
    /// This session put us in the ranked queue and no match came yet.
    pub(crate) queued: bool,
    pending: HashMap<String, Pending>,
    next_id: u64,
    /// While resuming after a reconnect: replies still awaited, and the summary so far.
    pub(crate) resume: Option<(usize, Vec<String>)>,
}

impl State {
    /// Registers a request; returns the `id` to send it with.
    pub(crate) fn expect(&mut self, what: Pending) -> String {
        self.next_id += 1;
        let id = format!("c{}", self.next_id);
        self.pending.insert(id.clone(), what);
        id
    }

    /// The request a reply with `id` answers (forgotten once taken).
    pub(crate) fn answered(&mut self, id: &str) -> Option<Pending> {
        self.pending.remove(id)
    }

    pub(crate) fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// A new connection: replies to the old one's requests will never come.
    pub(crate) fn connection_lost(&mut self) -> Vec<Pending> {
        self.dm_here = None;
        self.resume = None;
        for room in self.rooms.values_mut() {
            room.history = None;
        }
        self.pending.drain().map(|(_, p)| p).collect()
    }

    /// Replies overdue: stop waiting for them (a late one is then shown bare).
    pub(crate) fn give_up_replies(&mut self) {
        self.pending.clear();
        self.resume = None;
        for room in self.rooms.values_mut() {
            room.history = None;
        }
    }

    /// Whether a room message is new (and records its seq). Messages for rooms we are
    /// not in are dropped too.
    pub(crate) fn fresh_message(&mut self, room: &str, seq: u64) -> bool {
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        if r.seq.is_some_and(|last| seq <= last) {
            return false;
        }
        r.seq = Some(seq);
        true
    }

    /// Whether a DM is new on this connection (and records its seq).
    pub(crate) fn fresh_direct(&mut self, seq: u64) -> bool {
        if self.dm_here.is_some_and(|last| seq <= last) {
            return false;
        }
        self.dm_here = Some(seq);
        self.dm_seen = Some(self.dm_seen.map_or(seq, |s| s.max(seq)));
        true
    }

    /// Whether a game message is new (and records its seq).
    pub(crate) fn fresh_game_message(&mut self, room: &str, seq: u64) -> bool {
        match &mut self.game {
            Some(g) if g.room == room => {
                if g.seq.is_some_and(|last| seq <= last) {
                    return false;
                }
                g.seq = Some(seq);
                true
            }
            // A game we are not following (yet): show it, nothing to resume.
            _ => true,
        }
    }

    /// A resume join came back `recovered: false` with nothing replayed: the server
    /// holds less than we saw (it restarted with in-memory history). Its next seqs
    /// start below our cursor, so forget the cursor.
    pub(crate) fn history_lost(&mut self, room: &str) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.seq = None;
        }
    }

    /// A stream's log started again under `epoch` (`stream.reset`): its seqs restart, so
    /// the cursor does too.
    pub(crate) fn stream_reset(&mut self, stream: &str, room: Option<&str>, epoch: &str) {
        let epoch = Some(epoch.to_owned());
        match (stream, room) {
            ("room", Some(room)) => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.seq = None;
                    r.epoch = epoch;
                }
            }
            ("game", Some(room)) => {
                if let Some(g) = self.game.as_mut().filter(|g| g.room == room) {
                    g.seq = None;
                    g.epoch = epoch;
                }
            }
            ("dm", _) => {
                self.dm_seen = None;
                self.dm_here = None;
                self.dm_epoch = epoch;
            }
            _ => {}
        }
    }

    /// Makes `room` current if joined; otherwise another joined room (or none).
    pub(crate) fn pick_current(&mut self, room: Option<&str>) {
        self.current = match room {
            Some(r) if self.rooms.contains_key(r) => Some(r.to_owned()),
            _ => self.rooms.keys().next_back().cloned(),
        };
    }

    /// One resume reply is in; returns the full summary once the last one is.
    pub(crate) fn resumed(&mut self, part: Option<String>) -> Option<Vec<String>> {
        let (left, parts) = self.resume.as_mut()?;
        if let Some(part) = part {
            parts.push(part);
        }
        *left = left.saturating_sub(1);
        if *left == 0 {
            return self.resume.take().map(|(_, parts)| parts);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_messages_are_deduplicated_by_seq() {
        let mut s = State::default();
        assert!(!s.fresh_message("lobby", 1), "not joined");
        s.rooms.insert("lobby".into(), Room::default());
        assert!(s.fresh_message("lobby", 1));
        assert!(s.fresh_message("lobby", 3));
        assert!(!s.fresh_message("lobby", 3));
        assert!(!s.fresh_message("lobby", 2));
        assert_eq!(s.rooms["lobby"].seq, Some(3));
        s.history_lost("lobby");
        assert!(s.fresh_message("lobby", 1), "after a restart clamp");
    }

    #[test]
    fn join_history_keeps_the_newest_lines() {
        let mut h = History::default();
        for i in 0..HISTORY_SHOWN + 5 {
            h.hold(vec![(Some(i as u64), format!("m{i}"))]);
        }
        assert_eq!(h.count, HISTORY_SHOWN + 5);
        assert_eq!(h.lines.len(), HISTORY_SHOWN);
        assert_eq!(h.lines.front().map(|l| l.1.as_str()), Some("m5"));
    }

    #[test]
    fn dms_dedupe_per_connection_and_keep_the_highest_seq() {
        let mut s = State::default();
        assert!(s.fresh_direct(4));
        assert!(!s.fresh_direct(4));
        assert_eq!(s.dm_seen, Some(4));
        s.connection_lost();
        // A restarted single node numbers from 1 again; those are new DMs.
        assert!(s.fresh_direct(1));
        assert_eq!(s.dm_seen, Some(4));
    }

    #[test]
    fn game_seq_and_pending_requests() {
        let mut s = State::default();
        assert!(s.fresh_game_message("g-1", 1), "not our game: shown");
        s.game = Some(Game {
            room: "g-1".into(),
            role: GameRole::Player,
            seq: Some(2),
            epoch: None,
        });
        assert!(!s.fresh_game_message("g-1", 2));
        assert!(s.fresh_game_message("g-1", 5));
        let id = s.expect(Pending::Who);
        let other = s.expect(Pending::Publish);
        assert_ne!(id, other);
        assert!(matches!(s.answered(&id), Some(Pending::Who)));
        assert!(s.answered(&id).is_none());
        assert_eq!(s.connection_lost().len(), 1);
        assert_eq!(s.waiting(), 0);
    }

    #[test]
    fn current_room_and_resume_summary() {
        let mut s = State::default();
        for r in ["b", "a"] {
            s.rooms.insert(r.into(), Room::default());
        }
        s.pick_current(Some("a"));
        assert_eq!(s.current.as_deref(), Some("a"));
        s.rooms.remove("a");
        s.pick_current(None);
        assert_eq!(s.current.as_deref(), Some("b"));
        s.resume = Some((2, Vec::new()));
        assert_eq!(s.resumed(Some("a: 1".into())), None);
        assert_eq!(s.resumed(None), Some(vec!["a: 1".to_owned()]));
        assert!(s.resume.is_none());
    }
}
