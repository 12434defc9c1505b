//! What the server sends: every server frame (borrowed, so encoding never clones
//! payloads), the extra fields of `ok` replies, and the encoded bytes shared by every
//! recipient of a fan-out.

use super::close::CloseCode;
use super::{ErrorCode, GameRole, GameTarget, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// A user as shown in presence lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: UserId,
    pub name: String,
}

/// Everything the server sends. Borrowed so that encoding never clones payloads.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        user: &'a str,
        name: &'a str,
        session: &'a str,
        replica: &'a str,
        heartbeat_s: u64,
        /// Epoch of the user's direct-message log: send it back as `dm_epoch`.
        #[serde(skip_serializing_if = "Option::is_none")]
        dm_epoch: Option<&'a str>,
    },
    Message {
        room: &'a str,
        from: &'a str,
        name: &'a str,
        data: &'a Value,
        seq: u64,
        ts: u64,
    },
    Direct {
        from: &'a str,
        name: &'a str,
        data: &'a Value,
        seq: u64,
        ts: u64,
    },
    Broadcast {
        from: &'a str,
        name: &'a str,
        data: &'a Value,
        ts: u64,
    },
    Presence {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        room: &'a str,
        members: &'a [Member],
        count: usize,
    },
    Who {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        users: &'a [Member],
        count: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        next: Option<&'a str>,
    },
    /// Users who came online or went offline since the last such frame (coalesced).
    #[serde(rename = "online.changes")]
    OnlineChanges {
        online: &'a [Member],
        offline: &'a [UserId],
        /// Changes left out because there were too many: refresh with `who`.
        dropped: usize,
    },
    #[serde(rename = "member.joined")]
    MemberJoined {
        room: &'a str,
        user: &'a str,
        name: &'a str,
        /// Distinct users in the room afterwards.
        count: usize,
    },
    #[serde(rename = "member.left")]
    MemberLeft {
        room: &'a str,
        user: &'a str,
        name: &'a str,
        /// Distinct users in the room afterwards.
        count: usize,
    },
    #[serde(rename = "member.renamed")]
    MemberRenamed {
        room: &'a str,
        user: &'a str,
        name: &'a str,
    },
    Ok {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        #[serde(flatten)]
        detail: OkDetail<'a>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        code: ErrorCode,
        message: &'a str,
    },
    Reconnect {
        reason: &'a str,
        after_ms: u64,
    },
    Ping,
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
    #[serde(rename = "game.created")]
    GameCreated {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        room: &'a str,
        owner: &'a str,
        /// The game log's epoch, for resuming with `since`.
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
    },
    #[serde(rename = "game.started")]
    GameStarted {
        room: &'a str,
        owner: &'a str,
        opponent: &'a str,
    },
    #[serde(rename = "game.message")]
    GameMessage {
        room: &'a str,
        from: &'a str,
        to: GameTarget,
        data: &'a Value,
        seq: u64,
    },
    #[serde(rename = "game.closed")]
    GameClosed {
        room: &'a str,
        reason: &'a str,
    },
    #[serde(rename = "rank.queued")]
    RankQueued {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        rating: i64,
        /// Players in the queue, as this replica's matcher last saw it.
        queued: usize,
        /// The player leaves the queue with `rank.timeout` after this long unmatched.
        max_wait_ms: u64,
    },
    /// Sent periodically while the player waits, so no one waits silently.
    #[serde(rename = "rank.waiting")]
    RankWaiting {
        queued: usize,
        /// The rating gap the player accepts now.
        window: u64,
        waited_ms: u64,
    },
    /// The player waited the maximum and was taken out of the queue.
    #[serde(rename = "rank.timeout")]
    RankTimeout {
        waited_ms: u64,
    },
    #[serde(rename = "rank.matched")]
    RankMatched {
        room: &'a str,
        opponent: &'a str,
        opponent_rating: i64,
        /// Its place in the user's stream, shared with `dm` (a cursor for `dm_since`).
        seq: u64,
    },
    /// A stream's log started again under a new epoch (Redis restarted empty, the log
    /// expired): seqs restart at 1 and what was not yet delivered before may be lost.
    /// The client resets its cursor for the stream to `seq 0` of `epoch`.
    #[serde(rename = "stream.reset")]
    StreamReset {
        stream: StreamKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        epoch: &'a str,
    },
    /// Sent over TCP only, which has no close frames of its own.
    Close {
        code: CloseCode,
        reason: &'a str,
    },
}

/// Which kind of logged stream a `stream.reset` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    Room,
    Game,
    Dm,
}

impl StreamKind {
    /// Stable name used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Room => "room",
            StreamKind::Game => "game",
            StreamKind::Dm => "dm",
        }
    }
}

/// Extra fields of an `ok` reply, depending on what it answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OkDetail<'a> {
    None {},
    Seq {
        seq: u64,
        /// The `msg_id` was seen before: nothing new was stored, `seq` is the first one.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        duplicate: bool,
    },
    Joined {
        room: &'a str,
        /// False when `since` was older than the retained history: refetch state.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        replayed: Option<usize>,
        /// The room log's epoch: send it back with `since` when resuming.
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
    },
    Left {
        room: &'a str,
    },
    Renamed {
        name: &'a str,
    },
    /// Answer to `refresh`: the session now lasts until this `exp` (Unix seconds).
    Refreshed {
        exp: u64,
    },
    /// Answer to `game.join` / `game.watch`: where the caller stands in the game.
    Game {
        room: &'a str,
        role: GameRole,
        owner: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        opponent: Option<&'a str>,
        started: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        replayed: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
    },
}

impl From<crate::backend::Published> for OkDetail<'_> {
    fn from(p: crate::backend::Published) -> Self {
        OkDetail::Seq {
            seq: p.seq,
            duplicate: p.duplicate,
        }
    }
}

impl ServerFrame<'_> {
    /// Stable name used as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Welcome { .. } => "welcome",
            ServerFrame::Message { .. } => "message",
            ServerFrame::Direct { .. } => "direct",
            ServerFrame::Broadcast { .. } => "broadcast",
            ServerFrame::Presence { .. } => "presence",
            ServerFrame::Who { .. } => "who",
            ServerFrame::OnlineChanges { .. } => "online.changes",
            ServerFrame::MemberJoined { .. } => "member.joined",
            ServerFrame::MemberLeft { .. } => "member.left",
            ServerFrame::MemberRenamed { .. } => "member.renamed",
            ServerFrame::Ok { .. } => "ok",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Reconnect { .. } => "reconnect",
            ServerFrame::Ping => "ping",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Close { .. } => "close",
            ServerFrame::StreamReset { .. } => "stream.reset",
            ServerFrame::GameCreated { .. } => "game.created",
            ServerFrame::GameStarted { .. } => "game.started",
            ServerFrame::GameMessage { .. } => "game.message",
            ServerFrame::GameClosed { .. } => "game.closed",
            ServerFrame::RankQueued { .. } => "rank.queued",
            ServerFrame::RankMatched { .. } => "rank.matched",
            ServerFrame::RankWaiting { .. } => "rank.waiting",
            ServerFrame::RankTimeout { .. } => "rank.timeout",
        }
    }

    /// Serializes once; the result is shared by every recipient.
    pub fn encode(&self) -> Encoded {
        // Serializing these borrowed structs cannot fail: every map key is a string.
        let text = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"encode failed"}"#.to_owned()
        });
        Encoded {
            text: Utf8Bytes::from(text),
            kind: self.kind(),
        }
    }
}

/// An encoded server frame: cheap to clone (reference counted bytes), valid UTF-8 JSON.
#[derive(Debug, Clone)]
pub struct Encoded {
    text: Utf8Bytes,
    kind: &'static str,
}

impl Encoded {
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Size in bytes, what a queued frame costs (the outbound byte cap).
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn to_ws_text(&self) -> Utf8Bytes {
        self.text.clone()
    }
}
