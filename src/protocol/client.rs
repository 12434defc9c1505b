//! What clients send: the request envelope with its optional `id`, every client frame,
//! and the one parser that turns inbound text into them.

use super::{GameTarget, MsgId, RoomId, UserId};
use serde::Deserialize;
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
        /// The epoch `dm_since` belongs to (from `welcome` or `stream.reset`).
        #[serde(default)]
        dm_epoch: Option<String>,
    },
    /// A newer token for the same user, before the current one expires.
    Refresh {
        token: String,
    },
    Join {
        room: RoomId,
        /// Resume: replay room messages with a seq greater than this.
        #[serde(default)]
        since: Option<u64>,
        /// The epoch `since` belongs to; another epoch replays the room's log from its
        /// start after a `stream.reset`.
        #[serde(default)]
        epoch: Option<String>,
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
        /// Makes a retry safe: the same id from the same user is stored once.
        #[serde(default)]
        msg_id: Option<MsgId>,
    },
    Send {
        to: UserId,
        data: Value,
        #[serde(default)]
        msg_id: Option<MsgId>,
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
        #[serde(default)]
        epoch: Option<String>,
    },
    #[serde(rename = "game.watch")]
    GameWatch {
        room: RoomId,
        #[serde(default)]
        since: Option<u64>,
        #[serde(default)]
        epoch: Option<String>,
    },
    #[serde(rename = "game.send")]
    GameSend {
        room: RoomId,
        to: GameTarget,
        data: Value,
        #[serde(default)]
        msg_id: Option<MsgId>,
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
    /// Hear when users come online or go offline: everyone (`all`) or listed users.
    #[serde(rename = "online.watch")]
    OnlineWatch {
        #[serde(default)]
        users: Vec<UserId>,
        #[serde(default)]
        all: bool,
    },
    #[serde(rename = "online.unwatch")]
    OnlineUnwatch {},
}

fn yes() -> bool {
    true
}

impl ClientFrame {
    /// Stable name used as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Login { .. } => "login",
            ClientFrame::Refresh { .. } => "refresh",
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
            ClientFrame::OnlineWatch { .. } => "online.watch",
            ClientFrame::OnlineUnwatch {} => "online.unwatch",
        }
    }
}

/// Parses one inbound text frame. On failure returns the `id` (if it could be read)
/// together with a human-readable reason.
pub fn parse_request(text: &str) -> Result<Request, (Option<Value>, String)> {
    let id_of = || {
        #[derive(Deserialize)]
        struct IdOnly {
            #[serde(default)]
            id: Option<Value>,
        }
        serde_json::from_str::<IdOnly>(text).ok().and_then(|f| f.id)
    };
    let request =
        serde_json::from_str::<Request>(text).map_err(|err| (id_of(), err.to_string()))?;
    // serde reads an integer tag as a variant index (`"type":7` would be `who`): only
    // the names are the protocol. Checked by a second parse only when the text could
    // hold such a tag, so ordinary frames are parsed once.
    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow)]
        _ty: std::borrow::Cow<'a, str>,
    }
    if may_have_numeric_tag(text) && serde_json::from_str::<Tag<'_>>(text).is_err() {
        return Err((request.id, "`type` must be a string".to_owned()));
    }
    Ok(request)
}

/// True when some `"type"` key (at any depth) is followed by a number, or when keys
/// could be spelled with escapes (`"typ\u0065"`): a superset of frames whose tag is not
/// a string, found without parsing.
fn may_have_numeric_tag(text: &str) -> bool {
    if text.contains("\\u") {
        return true;
    }
    text.match_indices("\"type\"").any(|(at, key)| {
        let rest = text[at + key.len()..].trim_start();
        rest.strip_prefix(':').is_some_and(|v| {
            v.trim_start()
                .starts_with(|c: char| c.is_ascii_digit() || c == '-')
        })
    })
}
