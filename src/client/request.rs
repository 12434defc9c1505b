//! Typed client frames. Each serialises to the JSON the server parses as
//! `protocol::ClientFrame`; [`Client::request`](super::Client::request) adds the `id`.

use crate::protocol::GameTarget;
use serde::Serialize;
use serde_json::Value;

/// A frame a client sends (PROTOCOL.md §3), without its `id`.
///
/// Build one with the constructors (`Request::join("lobby")`) or the variants, and pass
/// it to `send` or `request`. Raw `serde_json::Value` frames work there too.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Login {
        token: String,
        /// The last direct-message seq this device saw; the server replays after it.
        #[serde(skip_serializing_if = "Option::is_none")]
        dm_since: Option<u64>,
        /// The epoch `dm_since` belongs to (`welcome.dm_epoch` or a `stream.reset`).
        #[serde(skip_serializing_if = "Option::is_none")]
        dm_epoch: Option<String>,
    },
    /// A newer token for the same user, sent before the current one expires (else
    /// the server closes with 4011).
    Refresh {
        token: String,
    },
    Join {
        room: String,
        /// Resume: replay room messages after this seq before the `ok`.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// The epoch `since` belongs to (the join `ok` or a `stream.reset`).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    Leave {
        room: String,
    },
    Publish {
        room: String,
        data: Value,
        /// `false` keeps the message from every session of the sender.
        echo: bool,
        /// Makes a retry safe: the server stores one message per id (and sender).
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    /// A direct message to a user (online or not).
    Send {
        to: String,
        data: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    Broadcast {
        data: Value,
    },
    Presence {
        room: String,
    },
    Who {
        /// The `next` of the previous page.
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    Rename {
        name: String,
    },
    Ping,
    /// The answer to a TCP `ping`; the client sends it by itself unless told not to.
    Pong,
    #[serde(rename = "game.create")]
    GameCreate,
    #[serde(rename = "game.join")]
    GameJoin {
        room: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    #[serde(rename = "game.watch")]
    GameWatch {
        room: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
    },
    #[serde(rename = "game.send")]
    GameSend {
        room: String,
        to: GameTarget,
        data: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_id: Option<String>,
    },
    #[serde(rename = "game.leave")]
    GameLeave {
        room: String,
    },
    #[serde(rename = "game.close")]
    GameClose {
        room: String,
    },
    #[serde(rename = "rank.join")]
    RankJoin,
    #[serde(rename = "rank.leave")]
    RankLeave,
    /// Hear about users coming online: everyone (`all`) or the listed ones.
    #[serde(rename = "online.watch")]
    OnlineWatch {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        users: Vec<String>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        all: bool,
    },
    #[serde(rename = "online.unwatch")]
    OnlineUnwatch,
}

impl Request {
    /// `online.watch` for everyone.
    pub fn watch_all() -> Self {
        Request::OnlineWatch {
            users: Vec::new(),
            all: true,
        }
    }

    /// `online.watch` for a list of users (a friends list).
    pub fn watch_users(users: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Request::OnlineWatch {
            users: users.into_iter().map(Into::into).collect(),
            all: false,
        }
    }

    pub fn login(token: impl Into<String>) -> Self {
        Request::Login {
            token: token.into(),
            dm_since: None,
            dm_epoch: None,
        }
    }

    pub fn refresh(token: impl Into<String>) -> Self {
        Request::Refresh {
            token: token.into(),
        }
    }

    pub fn join(room: impl Into<String>) -> Self {
        Request::Join {
            room: room.into(),
            since: None,
            epoch: None,
        }
    }

    /// Joins and replays what came after `since` (0: everything retained).
    pub fn join_since(room: impl Into<String>, since: u64) -> Self {
        Request::Join {
            room: room.into(),
            since: Some(since),
            epoch: None,
        }
    }

    /// Resumes a room after `since` of `epoch`: the server replays from the start of
    /// the log, after a `stream.reset`, if the log's epoch is another one.
    pub fn join_resume(room: impl Into<String>, since: u64, epoch: impl Into<String>) -> Self {
        Request::Join {
            room: room.into(),
            since: Some(since),
            epoch: Some(epoch.into()),
        }
    }

    pub fn leave(room: impl Into<String>) -> Self {
        Request::Leave { room: room.into() }
    }

    /// Publishes with echo to the sender's own sessions, the server's default.
    pub fn publish(room: impl Into<String>, data: impl Into<Value>) -> Self {
        Request::Publish {
            room: room.into(),
            data: data.into(),
            echo: true,
            msg_id: None,
        }
    }

    /// A direct message (`send` on the wire).
    pub fn direct(to: impl Into<String>, data: impl Into<Value>) -> Self {
        Request::Send {
            to: to.into(),
            data: data.into(),
            msg_id: None,
        }
    }

    pub fn broadcast(data: impl Into<Value>) -> Self {
        Request::Broadcast { data: data.into() }
    }

    pub fn presence(room: impl Into<String>) -> Self {
        Request::Presence { room: room.into() }
    }

    /// The first page of online users.
    pub fn who() -> Self {
        Request::Who {
            cursor: None,
            limit: None,
        }
    }

    pub fn rename(name: impl Into<String>) -> Self {
        Request::Rename { name: name.into() }
    }

    pub fn game_join(room: impl Into<String>) -> Self {
        Request::GameJoin {
            room: room.into(),
            since: None,
            epoch: None,
        }
    }

    pub fn game_watch(room: impl Into<String>) -> Self {
        Request::GameWatch {
            room: room.into(),
            since: None,
            epoch: None,
        }
    }

    pub fn game_send(room: impl Into<String>, to: GameTarget, data: impl Into<Value>) -> Self {
        Request::GameSend {
            room: room.into(),
            to,
            data: data.into(),
            msg_id: None,
        }
    }

    pub fn game_leave(room: impl Into<String>) -> Self {
        Request::GameLeave { room: room.into() }
    }

    pub fn game_close(room: impl Into<String>) -> Self {
        Request::GameClose { room: room.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ClientFrame, parse_request};
    use serde_json::json;

    /// What the server makes of a request.
    fn parsed(req: &Request) -> ClientFrame {
        let text = serde_json::to_string(req).expect("serialize");
        match parse_request(&text) {
            Ok(r) => r.frame,
            Err((_, err)) => panic!("server refuses {text}: {err}"),
        }
    }

    #[test]
    fn every_request_parses_on_the_server() {
        let cases = [
            (Request::login("t"), "login"),
            (Request::join("lobby"), "join"),
            (Request::join_since("lobby", 4), "join"),
            (Request::leave("lobby"), "leave"),
            (Request::publish("lobby", json!({"x": 1})), "publish"),
            (Request::direct("bob", "hi"), "send"),
            (Request::broadcast(json!(null)), "broadcast"),
            (Request::presence("lobby"), "presence"),
            (Request::who(), "who"),
            (
                Request::Who {
                    cursor: Some("bob".into()),
                    limit: Some(10),
                },
                "who",
            ),
            (Request::rename("Al"), "rename"),
            (Request::Ping, "ping"),
            (Request::Pong, "pong"),
            (Request::GameCreate, "game.create"),
            (Request::game_join("g-1"), "game.join"),
            (Request::game_watch("g-1"), "game.watch"),
            (
                Request::GameWatch {
                    room: "g-1".into(),
                    since: Some(0),
                    epoch: Some("17.3".into()),
                },
                "game.watch",
            ),
            (
                Request::game_send("g-1", GameTarget::Opponent, json!({"move": "e4"})),
                "game.send",
            ),
            (Request::game_leave("g-1"), "game.leave"),
            (Request::game_close("g-1"), "game.close"),
            (Request::RankJoin, "rank.join"),
            (Request::RankLeave, "rank.leave"),
            (Request::watch_all(), "online.watch"),
            (Request::watch_users(["bob"]), "online.watch"),
            (Request::OnlineUnwatch, "online.unwatch"),
        ];
        for (req, kind) in cases {
            assert_eq!(parsed(&req).kind(), kind, "{req:?}");
        }
    }

    #[test]
    fn golden_request_json() {
        let text = |r: &Request| serde_json::to_string(r).expect("serialize");
        assert_eq!(
            text(&Request::join("lobby")),
            r#"{"type":"join","room":"lobby"}"#
        );
        assert_eq!(
            text(&Request::join_since("lobby", 41)),
            r#"{"type":"join","room":"lobby","since":41}"#
        );
        assert_eq!(text(&Request::GameCreate), r#"{"type":"game.create"}"#);
        let quiet = Request::Publish {
            room: "lobby".into(),
            data: json!(1),
            echo: false,
            msg_id: Some("m-1".into()),
        };
        match parsed(&quiet) {
            ClientFrame::Publish { echo, .. } => assert!(!echo),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            text(&Request::game_send("g", GameTarget::All, json!(null))),
            r#"{"type":"game.send","room":"g","to":"all","data":null}"#
        );
    }
}
