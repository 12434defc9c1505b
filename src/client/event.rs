//! Typed server frames: an owned mirror of `protocol::ServerFrame` that a client can
//! deserialize, with a fallback for frame types this client does not know.

use crate::protocol::{GameRole, GameTarget, Member};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Every `type` the server sends today (PROTOCOL.md §4).
pub(super) const KINDS: &[&str] = &[
    "welcome",
    "message",
    "direct",
    "broadcast",
    "presence",
    "who",
    "member.joined",
    "member.left",
    "member.renamed",
    "online.changes",
    "ok",
    "error",
    "reconnect",
    "ping",
    "pong",
    "close",
    "game.created",
    "game.started",
    "game.message",
    "game.closed",
    "rank.queued",
    "rank.waiting",
    "rank.timeout",
    "rank.matched",
    "stream.reset",
];

/// Everything the server sends, owned. Field meanings are in PROTOCOL.md §4.
///
/// Unknown extra fields are ignored and an unknown `type` becomes
/// [`Unknown`](ServerEvent::Unknown), so a newer server does not break this client.
/// Get one from [`Frame::event`](super::Frame::event) or through the `Deserialize`
/// trait; the inherent `ServerEvent::deserialize` that serde generates for the
/// `remote = "Self"` trick is the strict form without that fallback.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Welcome(Welcome),
    /// A room message, live or replayed.
    Message {
        room: String,
        from: String,
        name: String,
        data: Value,
        seq: u64,
        ts: u64,
    },
    /// A direct message, live or replayed; `seq` counts in the recipient's sequence.
    Direct {
        from: String,
        name: String,
        data: Value,
        seq: u64,
        ts: u64,
    },
    Broadcast {
        from: String,
        name: String,
        data: Value,
        ts: u64,
    },
    Presence {
        id: Option<Value>,
        room: String,
        members: Vec<Member>,
        count: u64,
    },
    Who {
        id: Option<Value>,
        users: Vec<Member>,
        count: u64,
        /// Cursor for the next page; `None` on the last page.
        next: Option<String>,
    },
    #[serde(rename = "member.joined")]
    MemberJoined {
        room: String,
        user: String,
        name: String,
        count: u64,
    },
    #[serde(rename = "member.left")]
    MemberLeft {
        room: String,
        user: String,
        name: String,
        count: u64,
    },
    #[serde(rename = "member.renamed")]
    MemberRenamed {
        room: String,
        user: String,
        name: String,
    },
    /// Users who came online or went offline (after `online.watch`), coalesced.
    #[serde(rename = "online.changes")]
    OnlineChanges {
        online: Vec<Member>,
        offline: Vec<String>,
        dropped: u64,
    },
    Ok(OkReply),
    Error {
        id: Option<Value>,
        code: String,
        message: String,
    },
    /// The replica is draining: reconnect after `after_ms`.
    Reconnect {
        reason: String,
        after_ms: u64,
    },
    /// A TCP heartbeat; the client answers it and does not hand it out.
    Ping {},
    Pong {
        id: Option<Value>,
    },
    /// The TCP goodbye line; the client reports it as [`ClientError::Closed`](super::ClientError::Closed).
    Close {
        code: u16,
        #[serde(default)]
        reason: String,
    },
    #[serde(rename = "game.created")]
    GameCreated {
        id: Option<Value>,
        room: String,
        owner: String,
        #[serde(default)]
        epoch: Option<String>,
    },
    #[serde(rename = "game.started")]
    GameStarted {
        room: String,
        owner: String,
        opponent: String,
    },
    #[serde(rename = "game.message")]
    GameMessage {
        room: String,
        from: String,
        to: GameTarget,
        data: Value,
        seq: u64,
    },
    #[serde(rename = "game.closed")]
    GameClosed {
        room: String,
        /// `left`, `closed` or `abandoned`.
        reason: String,
    },
    #[serde(rename = "rank.queued")]
    RankQueued {
        id: Option<Value>,
        rating: i64,
        #[serde(default)]
        queued: usize,
        #[serde(default)]
        max_wait_ms: u64,
    },
    #[serde(rename = "rank.waiting")]
    RankWaiting {
        queued: usize,
        window: u64,
        waited_ms: u64,
    },
    #[serde(rename = "rank.timeout")]
    RankTimeout {
        waited_ms: u64,
    },
    #[serde(rename = "rank.matched")]
    RankMatched {
        room: String,
        opponent: String,
        opponent_rating: i64,
        /// Place in the user's stream (shared with `direct`): a `dm_since` cursor.
        #[serde(default)]
        seq: u64,
    },
    /// The log of a stream started again (`stream` is `room`, `game` or `dm`): seqs
    /// restart at 1 under `epoch`, so reset the cursor for it to 0 of `epoch`.
    #[serde(rename = "stream.reset")]
    StreamReset {
        stream: String,
        #[serde(default)]
        room: Option<String>,
        epoch: String,
    },
    /// A frame of a type this client does not know, kept whole.
    #[serde(skip)]
    Unknown(Value),
}

impl<'de> Deserialize<'de> for ServerEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let known = value
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|kind| KINDS.contains(&kind));
        if !known {
            return Ok(ServerEvent::Unknown(value));
        }
        // The inherent `deserialize` generated by `remote = "Self"`.
        ServerEvent::deserialize(value).map_err(serde::de::Error::custom)
    }
}

/// The first frame after a successful login.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Welcome {
    pub user: String,
    pub name: String,
    /// `<replica>-<n>`, unique across replicas.
    pub session: String,
    pub replica: String,
    /// The server's heartbeat interval.
    pub heartbeat_s: u64,
    /// The epoch of the user's direct-message log (send it back as `dm_epoch`).
    #[serde(default)]
    pub dm_epoch: Option<String>,
}

/// An `ok` reply. Which fields are present depends on the request (PROTOCOL.md §3).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct OkReply {
    pub id: Option<Value>,
    /// `join`, `leave`, `game.*`.
    pub room: Option<String>,
    /// `publish`, `send`, `game.send`.
    pub seq: Option<u64>,
    /// `rename`: the cleaned name.
    pub name: Option<String>,
    pub role: Option<GameRole>,
    pub owner: Option<String>,
    pub opponent: Option<String>,
    pub started: Option<bool>,
    /// With `since`: false when the gap could not be filled from history.
    pub recovered: Option<bool>,
    pub replayed: Option<u64>,
    /// `join`, `game.join`, `game.watch`: the log's epoch, for resuming with `since`.
    pub epoch: Option<String>,
    /// `refresh`: the session's new end (the token's `exp`, Unix seconds).
    pub exp: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Frame;
    use crate::protocol::{ErrorCode, OkDetail, ServerFrame, UserId};
    use serde_json::json;

    fn event(frame: &ServerFrame<'_>) -> ServerEvent {
        let encoded = frame.encode();
        let parsed = Frame::parse(encoded.as_str()).expect("frame");
        assert_eq!(parsed.kind(), frame.kind());
        parsed.event().expect("event")
    }

    #[test]
    fn every_server_frame_parses_as_its_event() {
        let data = json!({"t": 1});
        let id = json!(7);
        let members = [Member {
            user: UserId::new("bob").expect("id"),
            name: "Bob".into(),
        }];
        let offline = [UserId::new("carol").expect("id")];
        let frames = [
            ServerFrame::Welcome {
                user: "alice",
                name: "Alice",
                session: "abc123-1",
                replica: "abc123",
                heartbeat_s: 25,
                dm_epoch: Some("1764447030123456"),
            },
            ServerFrame::Message {
                room: "lobby",
                from: "alice",
                name: "Alice",
                data: &data,
                seq: 3,
                ts: 9,
            },
            ServerFrame::Direct {
                from: "bob",
                name: "Bob",
                data: &data,
                seq: 1,
                ts: 9,
            },
            ServerFrame::Broadcast {
                from: "server",
                name: "server",
                data: &data,
                ts: 9,
            },
            ServerFrame::Presence {
                id: Some(&id),
                room: "lobby",
                members: &members,
                count: 1,
            },
            ServerFrame::Who {
                id: None,
                users: &members,
                count: 2,
                next: Some("bob"),
            },
            ServerFrame::MemberJoined {
                room: "lobby",
                user: "bob",
                name: "Bob",
                count: 2,
            },
            ServerFrame::MemberLeft {
                room: "lobby",
                user: "bob",
                name: "Bob",
                count: 1,
            },
            ServerFrame::MemberRenamed {
                room: "lobby",
                user: "bob",
                name: "Bobby",
            },
            ServerFrame::OnlineChanges {
                online: &members,
                offline: &offline,
                dropped: 0,
            },
            ServerFrame::Ok {
                id: Some(&id),
                detail: OkDetail::None {},
            },
            ServerFrame::Error {
                id: Some(&id),
                code: ErrorCode::Forbidden,
                message: "no",
            },
            ServerFrame::Reconnect {
                reason: "server draining",
                after_ms: 1377,
            },
            ServerFrame::Ping,
            ServerFrame::Pong { id: Some(&id) },
            ServerFrame::Close {
                code: crate::protocol::close::UNAUTHORIZED,
                reason: "unauthorized",
            },
            ServerFrame::GameCreated {
                id: Some(&id),
                room: "g-1",
                owner: "alice",
                epoch: Some("17.3"),
            },
            ServerFrame::GameStarted {
                room: "g-1",
                owner: "alice",
                opponent: "bob",
            },
            ServerFrame::GameMessage {
                room: "g-1",
                from: "alice",
                to: GameTarget::Watchers,
                data: &data,
                seq: 2,
            },
            ServerFrame::GameClosed {
                room: "g-1",
                reason: "left",
            },
            ServerFrame::RankQueued {
                id: None,
                rating: 1500,
                queued: 3,
                max_wait_ms: 120_000,
            },
            ServerFrame::RankWaiting {
                queued: 3,
                window: 150,
                waited_ms: 1_000,
            },
            ServerFrame::RankTimeout { waited_ms: 120_000 },
            ServerFrame::RankMatched {
                room: "g-1",
                opponent: "bob",
                opponent_rating: 1620,
                seq: 4,
            },
            ServerFrame::StreamReset {
                stream: crate::protocol::StreamKind::Room,
                room: Some("lobby"),
                epoch: "17.3",
            },
        ];
        assert_eq!(frames.len(), KINDS.len(), "one sample per known type");
        for frame in &frames {
            let parsed = event(frame);
            assert!(
                !matches!(parsed, ServerEvent::Unknown(_)),
                "{}",
                frame.kind()
            );
        }
        assert_eq!(
            event(&frames[0]),
            ServerEvent::Welcome(Welcome {
                user: "alice".into(),
                name: "Alice".into(),
                session: "abc123-1".into(),
                replica: "abc123".into(),
                heartbeat_s: 25,
                dm_epoch: Some("1764447030123456".into()),
            })
        );
        assert_eq!(
            event(&frames[11]),
            ServerEvent::Error {
                id: Some(json!(7)),
                code: "forbidden".into(),
                message: "no".into(),
            }
        );
        assert!(matches!(
            event(&frames[18]),
            ServerEvent::GameMessage {
                to: GameTarget::Watchers,
                seq: 2,
                ..
            }
        ));
    }

    #[test]
    fn ok_replies_keep_their_optional_fields() {
        let id = json!("g");
        let ok = ServerFrame::Ok {
            id: Some(&id),
            detail: OkDetail::Game {
                room: "g-1",
                role: GameRole::Watcher,
                owner: "alice",
                opponent: None,
                started: false,
                recovered: Some(true),
                replayed: Some(0),
                epoch: Some("17.3"),
            },
        };
        let ServerEvent::Ok(reply) = event(&ok) else {
            panic!("not ok");
        };
        assert_eq!(
            reply,
            OkReply {
                id: Some(id),
                room: Some("g-1".into()),
                role: Some(GameRole::Watcher),
                owner: Some("alice".into()),
                started: Some(false),
                recovered: Some(true),
                replayed: Some(0),
                epoch: Some("17.3".into()),
                ..OkReply::default()
            }
        );
        let seq = ServerFrame::Ok {
            id: None,
            detail: OkDetail::Seq {
                seq: 17,
                duplicate: false,
            },
        };
        assert!(matches!(
            event(&seq),
            ServerEvent::Ok(OkReply { seq: Some(17), .. })
        ));
    }
}
