//! Wire protocol v1: the client and server frames, identifiers and error codes.
//!
//! This is the only module that knows JSON field names of the client protocol.
//! Frames are JSON objects tagged by `"type"`; over TCP one object per line.

pub mod close;
mod ids;

pub use ids::{RoomId, UserId};

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A frame from a client, with the optional `id` it wants echoed in the reply.
#[derive(Debug, Deserialize)]
pub struct Request {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(flatten)]
    pub frame: ClientFrame,
}

/// Everything a client may ask for. Unknown types and wrong field types fail to parse
/// and are answered with `bad_request`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Login {
        token: String,
        /// Last direct-message seq this device saw; replay starts after it.
        #[serde(default)]
        dm_since: Option<u64>,
    },
    Join {
        room: RoomId,
        /// Resume: replay room messages with a seq greater than this.
        #[serde(default)]
        since: Option<u64>,
    },
    Leave {
        room: RoomId,
    },
    Publish {
        room: RoomId,
        data: Value,
        /// `false` keeps the message from the sender's own sessions.
        #[serde(default = "yes")]
        echo: bool,
    },
    Send {
        to: UserId,
        data: Value,
    },
    Broadcast {
        data: Value,
    },
    Presence {
        room: RoomId,
    },
    Who {
        /// Opaque cursor from a previous `who` reply's `next`.
        #[serde(default)]
        cursor: Option<String>,
        #[serde(default)]
        limit: Option<usize>,
    },
    Rename {
        name: String,
    },
    Ping,
    /// Answer to a server `ping` on transports without protocol-level pings (TCP).
    Pong,
    #[serde(rename = "game.create")]
    GameCreate {},
    /// Take the free player seat, or come back to a game you play in.
    #[serde(rename = "game.join")]
    GameJoin {
        room: RoomId,
        /// Resume: replay game messages with a seq greater than this.
        #[serde(default)]
        since: Option<u64>,
    },
    #[serde(rename = "game.watch")]
    GameWatch {
        room: RoomId,
        #[serde(default)]
        since: Option<u64>,
    },
    #[serde(rename = "game.send")]
    GameSend {
        room: RoomId,
        to: GameTarget,
        data: Value,
    },
    #[serde(rename = "game.leave")]
    GameLeave {
        room: RoomId,
    },
    #[serde(rename = "game.close")]
    GameClose {
        room: RoomId,
    },
    #[serde(rename = "rank.join")]
    RankJoin {},
    #[serde(rename = "rank.leave")]
    RankLeave {},
}

/// Who a `game.send` is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameTarget {
    /// Both players and every watcher.
    All,
    /// The other player only.
    Opponent,
    /// The watchers only.
    Watchers,
}

/// A participant's place in a game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameRole {
    Player,
    Watcher,
}

impl GameTarget {
    /// Whether a game message from `from` to `self` is for `user` in `role`.
    pub fn reaches(self, from: &UserId, role: GameRole, user: &UserId) -> bool {
        match (self, role) {
            (GameTarget::All, _) => true,
            (GameTarget::Opponent, GameRole::Player) => user != from,
            (GameTarget::Watchers, GameRole::Watcher) => true,
            _ => false,
        }
    }
}

fn yes() -> bool {
    true
}

impl ClientFrame {
    /// Stable name used as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Login { .. } => "login",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Publish { .. } => "publish",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Broadcast { .. } => "broadcast",
            ClientFrame::Presence { .. } => "presence",
            ClientFrame::Who { .. } => "who",
            ClientFrame::Rename { .. } => "rename",
            ClientFrame::Ping => "ping",
            ClientFrame::Pong => "pong",
            ClientFrame::GameCreate {} => "game.create",
            ClientFrame::GameJoin { .. } => "game.join",
            ClientFrame::GameWatch { .. } => "game.watch",
            ClientFrame::GameSend { .. } => "game.send",
            ClientFrame::GameLeave { .. } => "game.leave",
            ClientFrame::GameClose { .. } => "game.close",
            ClientFrame::RankJoin {} => "rank.join",
            ClientFrame::RankLeave {} => "rank.leave",
        }
    }
}

/// Parses one inbound text frame. On failure returns the `id` (if it could be read)
/// together with a human-readable reason.
pub fn parse_request(text: &str) -> Result<Request, (Option<Value>, String)> {
    serde_json::from_str::<Request>(text).map_err(|err| {
        #[derive(Deserialize)]
        struct IdOnly {
            #[serde(default)]
            id: Option<Value>,
        }
        let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|f| f.id);
        (id, err.to_string())
    })
}

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
    },
    #[serde(rename = "rank.matched")]
    RankMatched {
        room: &'a str,
        opponent: &'a str,
        opponent_rating: i64,
    },
    /// Sent over TCP only, which has no close frames of its own.
    Close {
        code: close::CloseCode,
        reason: &'a str,
    },
}

/// Extra fields of an `ok` reply, depending on what it answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum OkDetail<'a> {
    None {},
    Seq {
        seq: u64,
    },
    Joined {
        room: &'a str,
        /// False when `since` was older than the retained history: refetch state.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        replayed: Option<usize>,
    },
    Left {
        room: &'a str,
    },
    Renamed {
        name: &'a str,
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
    },
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
            ServerFrame::MemberJoined { .. } => "member.joined",
            ServerFrame::MemberLeft { .. } => "member.left",
            ServerFrame::MemberRenamed { .. } => "member.renamed",
            ServerFrame::Ok { .. } => "ok",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Reconnect { .. } => "reconnect",
            ServerFrame::Ping => "ping",
            ServerFrame::Pong { .. } => "pong",
            ServerFrame::Close { .. } => "close",
            ServerFrame::GameCreated { .. } => "game.created",
            ServerFrame::GameStarted { .. } => "game.started",
            ServerFrame::GameMessage { .. } => "game.message",
            ServerFrame::GameClosed { .. } => "game.closed",
            ServerFrame::RankQueued { .. } => "rank.queued",
            ServerFrame::RankMatched { .. } => "rank.matched",
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

    pub fn to_ws_text(&self) -> Utf8Bytes {
        self.text.clone()
    }
}

/// Stable error codes sent in `error` frames and HTTP API error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    BadRequest,
    TooLarge,
    RateLimited,
    Forbidden,
    NotFound,
    RoomFull,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error answered to one request; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Reply {
    pub code: ErrorCode,
    pub message: String,
}

impl Reply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_with_ids() {
        let r = parse_request(r#"{"type":"publish","id":7,"room":"lobby","data":{"x":1}}"#)
            .expect("valid");
        assert_eq!(r.id, Some(Value::from(7)));
        match r.frame {
            ClientFrame::Publish { room, echo, .. } => {
                assert_eq!(room.as_str(), "lobby");
                assert!(echo);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_unknown_type_but_keeps_id() {
        let (id, msg) = parse_request(r#"{"type":"nope","id":"a"}"#).expect_err("invalid");
        assert_eq!(id, Some(Value::from("a")));
        assert!(msg.contains("unknown variant"), "{msg}");
    }

    #[test]
    fn rejects_bad_room_names() {
        assert!(parse_request(r#"{"type":"join","room":""}"#).is_err());
        assert!(parse_request(r#"{"type":"join","room":"a{b}"}"#).is_err());
        assert!(parse_request(r#"{"type":"join","room":5}"#).is_err());
    }

    #[test]
    fn golden_server_frames() {
        let data = serde_json::json!({"t":"hi"});
        let f = ServerFrame::Message {
            room: "lobby",
            from: "alice",
            name: "Alice",
            data: &data,
            seq: 3,
            ts: 1000,
        };
        assert_eq!(
            f.encode().as_str(),
            r#"{"type":"message","room":"lobby","from":"alice","name":"Alice","data":{"t":"hi"},"seq":3,"ts":1000}"#
        );
        let id = Value::from(1);
        let ok = ServerFrame::Ok {
            id: Some(&id),
            detail: OkDetail::Seq { seq: 9 },
        };
        assert_eq!(ok.encode().as_str(), r#"{"type":"ok","id":1,"seq":9}"#);
        let ok = ServerFrame::Ok {
            id: None,
            detail: OkDetail::None {},
        };
        assert_eq!(ok.encode().as_str(), r#"{"type":"ok"}"#);
        let err = ServerFrame::Error {
            id: None,
            code: ErrorCode::RateLimited,
            message: "slow down",
        };
        assert_eq!(
            err.encode().as_str(),
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#
        );
    }
}
