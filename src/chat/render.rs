//! How server events and replies read in a terminal: one line each, names rather than
//! JSON, and the local time in front unless `--no-time`.

use crate::client::{OkReply, ServerEvent};
use crate::protocol::{GameRole, GameTarget, Member};
use serde_json::Value;

/// Message payloads as text: a string, the `text` of an object, or compact JSON.
/// Control characters (terminal escapes included) never reach the terminal.
pub(crate) fn text_of(data: &Value) -> String {
    let raw = match data {
        Value::String(s) => s.clone(),
        Value::Object(fields) => match fields.get("text") {
            Some(Value::String(s)) if fields.len() == 1 => s.clone(),
            _ => data.to_string(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    };
    clean(&raw)
}

/// Tabs and newlines become spaces; other control characters are dropped.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// A person as `Name (id)`, or just `id` when the name adds nothing.
pub(crate) fn who_is(user: &str, name: &str) -> String {
    if name == user || name.is_empty() {
        clean(user)
    } else {
        format!("{} ({})", clean(name), clean(user))
    }
}

fn members(list: &[Member]) -> String {
    list.iter()
        .map(|m| who_is(m.user.as_str(), &m.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A game id short enough to read: `g-` and 8 hex digits.
pub(crate) fn short_game(room: &str) -> &str {
    room.get(..10).unwrap_or(room)
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The lines for an event that is not a reply to this client (`me` is our user id).
/// Each comes with the server's timestamp when the event has one.
pub(crate) fn event(ev: &ServerEvent, me: &str) -> Vec<(Option<u64>, String)> {
    let line = |text: String| vec![(None, text)];
    match ev {
        ServerEvent::Message {
            room,
            name,
            data,
            ts,
            ..
        } => vec![(
            Some(*ts),
            format!("[{room}] {}: {}", clean(name), text_of(data)),
        )],
        ServerEvent::Direct {
            from,
            name,
            data,
            ts,
            ..
        } => {
            let sender = if from == me { "you" } else { name.as_str() };
            vec![(
                Some(*ts),
                format!("DM from {}: {}", clean(sender), text_of(data)),
            )]
        }
        ServerEvent::Broadcast { name, data, ts, .. } => vec![(
            Some(*ts),
            format!("BROADCAST from {}: {}", clean(name), text_of(data)),
        )],
        ServerEvent::MemberJoined {
            room,
            user,
            name,
            count,
        } => line(format!(
            "* {} joined {room} ({count} here)",
            who_is(user, name)
        )),
        ServerEvent::MemberLeft {
            room,
            user,
            name,
            count,
        } => line(format!(
            "* {} left {room} ({count} here)",
            who_is(user, name)
        )),
        // Our own rename is reported once, by its `ok`.
        ServerEvent::MemberRenamed { user, .. } if user == me => Vec::new(),
        ServerEvent::MemberRenamed { room, user, name } => line(format!(
            "* {} is now known as {} in {room}",
            clean(user),
            clean(name)
        )),
        ServerEvent::OnlineChanges {
            online,
            offline,
            dropped,
        } => {
            let mut lines: Vec<_> = online
                .iter()
                .map(|m| {
                    (
                        None,
                        format!("* {} is online", who_is(m.user.as_str(), &m.name)),
                    )
                })
                .chain(
                    offline
                        .iter()
                        .map(|u| (None, format!("* {} went offline", clean(u)))),
                )
                .collect();
            if *dropped > 0 {
                lines.push((
                    None,
                    format!(
                        "* ...and {} (/who for the full list)",
                        plural(*dropped, "more change")
                    ),
                ));
            }
            lines
        }
        ServerEvent::GameStarted {
            room,
            owner,
            opponent,
        } => line(format!(
            "* game {} started: {} vs {}",
            short_game(room),
            clean(owner),
            clean(opponent)
        )),
        ServerEvent::GameMessage {
            room,
            from,
            to,
            data,
            ..
        } => {
            let to = match to {
                GameTarget::All => String::new(),
                GameTarget::Opponent => " (to opponent)".to_owned(),
                GameTarget::Watchers => " (to watchers)".to_owned(),
            };
            line(format!(
                "[{}] {}{to}: {}",
                short_game(room),
                clean(from),
                text_of(data)
            ))
        }
        ServerEvent::GameClosed { room, reason } => {
            let why = match reason.as_str() {
                "left" => "a player left",
                "closed" => "closed by its owner",
                "abandoned" => "abandoned",
                other => other,
            };
            line(format!(
                "* game {} is over: {}",
                short_game(room),
                clean(why)
            ))
        }
        ServerEvent::RankMatched {
            room,
            opponent,
            opponent_rating,
            ..
        } => line(format!(
            "* ranked match: you vs {} ({opponent_rating}) in game {room}",
            clean(opponent)
        )),
        ServerEvent::StreamReset { stream, room, .. } => {
            let what = match (stream.as_str(), room) {
                ("room", Some(room)) => clean(room),
                ("game", Some(room)) => format!("game {}", short_game(room)),
                _ => "direct messages".to_owned(),
            };
            line(format!(
                "* the server's history of {what} started again; messages sent just before may be missing"
            ))
        }
        ServerEvent::RankWaiting {
            queued,
            window,
            waited_ms,
        } => line(format!(
            "* still looking for a ranked match: {queued} queued, accepting ±{window}, waited {}s",
            waited_ms / 1000
        )),
        ServerEvent::RankTimeout { waited_ms } => line(format!(
            "* no ranked match after {}s: left the queue (/rank to try again)",
            waited_ms / 1000
        )),
        _ => Vec::new(),
    }
}

pub(crate) fn error(code: &str, message: &str) -> String {
    format!("! error {}: {}", clean(code), clean(message))
}

pub(crate) fn presence(room: &str, list: &[Member], count: u64) -> String {
    let more = count.saturating_sub(list.len() as u64);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("* in {room} ({count}): {}{tail}", members(list))
}

pub(crate) fn who(list: &[Member], count: u64) -> String {
    let more = count.saturating_sub(list.len() as u64);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("* online ({count}): {}{tail}", members(list))
}

/// The reply to `game.join` / `game.watch`.
pub(crate) fn game_joined(ok: &OkReply, room: &str) -> String {
    let role = match ok.role {
        Some(GameRole::Watcher) => "watching",
        _ => "playing",
    };
    let owner = ok.owner.as_deref().map(clean).unwrap_or_default();
    let seats = match &ok.opponent {
        Some(opponent) => format!("{owner} vs {}", clean(opponent)),
        None => format!("{owner} vs nobody yet"),
    };
    let state = if ok.started == Some(true) {
        ""
    } else {
        ", not started"
    };
    format!("* {role} game {} ({seats}{state})", short_game(room))
}

/// The summary of a resume join: `lobby: 3 missed messages`.
pub(crate) fn resumed(what: &str, replayed: u64, recovered: bool) -> String {
    let count = match replayed {
        0 => "no missed messages".to_owned(),
        n => plural(n, "missed message"),
    };
    if recovered {
        format!("{what}: {count}")
    } else {
        format!("{what}: {count}, older ones lost")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Frame;
    use serde_json::json;

    fn lines(frame: Value) -> Vec<String> {
        let frame = Frame::parse(frame.to_string()).expect("frame");
        let ev = frame.event().expect("event");
        event(&ev, "alice").into_iter().map(|(_, l)| l).collect()
    }

    #[test]
    fn room_messages_and_members() {
        let m = json!({"type":"message","room":"lobby","from":"alice","name":"Alice",
            "data":{"text":"hi"},"seq":1,"ts":1_767_268_800_123u64});
        let frame = Frame::parse(m.to_string()).expect("frame");
        let ev = frame.event().expect("event");
        assert_eq!(
            event(&ev, "bob"),
            vec![(Some(1_767_268_800_123), "[lobby] Alice: hi".into())]
        );
        assert_eq!(
            lines(
                json!({"type":"member.joined","room":"lobby","user":"bob","name":"Bob","count":2})
            ),
            ["* Bob (bob) joined lobby (2 here)"]
        );
        assert_eq!(
            lines(json!({"type":"member.left","room":"lobby","user":"bob","name":"bob","count":1})),
            ["* bob left lobby (1 here)"]
        );
        assert_eq!(
            lines(json!({"type":"member.renamed","room":"lobby","user":"bob","name":"Bobby"})),
            ["* bob is now known as Bobby in lobby"]
        );
        assert!(
            lines(json!({"type":"member.renamed","room":"lobby","user":"alice","name":"Al"}))
                .is_empty()
        );
    }

    #[test]
    fn direct_broadcast_and_online() {
        assert_eq!(
            lines(json!({"type":"direct","from":"bob","name":"Bob","data":"psst","seq":1,"ts":5})),
            ["DM from Bob: psst"]
        );
        assert_eq!(
            lines(
                json!({"type":"direct","from":"alice","name":"Alice","data":"note","seq":2,"ts":5})
            ),
            ["DM from you: note"]
        );
        assert_eq!(
            lines(
                json!({"type":"broadcast","from":"server","name":"server","data":{"text":"restart at 5"},"ts":5})
            ),
            ["BROADCAST from server: restart at 5"]
        );
        assert_eq!(
            lines(
                json!({"type":"online.changes","online":[{"user":"carol","name":"Carol"}],
                "offline":["bob"],"dropped":3})
            ),
            [
                "* Carol (carol) is online",
                "* bob went offline",
                "* ...and 3 more changes (/who for the full list)"
            ]
        );
    }

    #[test]
    fn games_and_ranked() {
        let room = "g-3f9a0c5be17d4a2c8e6f10b2d4c7a915";
        assert_eq!(
            lines(json!({"type":"game.started","room":room,"owner":"alice","opponent":"bob"})),
            ["* game g-3f9a0c5b started: alice vs bob"]
        );
        assert_eq!(
            lines(
                json!({"type":"game.message","room":room,"from":"bob","to":"all","data":{"text":"e4"},"seq":1})
            ),
            ["[g-3f9a0c5b] bob: e4"]
        );
        assert_eq!(
            lines(
                json!({"type":"game.message","room":room,"from":"bob","to":"opponent","data":{"move":4},"seq":2})
            ),
            [r#"[g-3f9a0c5b] bob (to opponent): {"move":4}"#]
        );
        assert_eq!(
            lines(json!({"type":"game.closed","room":room,"reason":"left"})),
            ["* game g-3f9a0c5b is over: a player left"]
        );
        assert_eq!(
            lines(
                json!({"type":"rank.matched","room":room,"opponent":"carol","opponent_rating":1620})
            ),
            [format!(
                "* ranked match: you vs carol (1620) in game {room}"
            )]
        );
        assert_eq!(
            lines(json!({"type":"rank.waiting","queued":7,"window":250,"waited_ms":3_200})),
            ["* still looking for a ranked match: 7 queued, accepting ±250, waited 3s"]
        );
        assert_eq!(
            lines(json!({"type":"rank.timeout","waited_ms":120_000})),
            ["* no ranked match after 120s: left the queue (/rank to try again)"]
        );
        let ok = OkReply {
            role: Some(GameRole::Watcher),
            owner: Some("alice".into()),
            opponent: None,
            started: Some(false),
            ..OkReply::default()
        };
        assert_eq!(
            game_joined(&ok, room),
            "* watching game g-3f9a0c5b (alice vs nobody yet, not started)"
        );
    }

    #[test]
    fn payloads_names_and_escapes() {
        assert_eq!(text_of(&json!("plain")), "plain");
        assert_eq!(text_of(&json!({"text": "t"})), "t");
        assert_eq!(
            text_of(&json!({"text": "t", "x": 1})),
            r#"{"text":"t","x":1}"#
        );
        assert_eq!(text_of(&json!(null)), "");
        assert_eq!(text_of(&json!([1, 2])), "[1,2]");
        assert_eq!(
            text_of(&json!("two\nlines\x1b[31m red")),
            "two lines[31m red"
        );
        assert_eq!(who_is("bob", "Bob"), "Bob (bob)");
        assert_eq!(who_is("bob", "bob"), "bob");
        assert_eq!(
            error("forbidden", "join the room before publishing"),
            "! error forbidden: join the room before publishing"
        );
        assert_eq!(resumed("lobby", 3, true), "lobby: 3 missed messages");
        assert_eq!(resumed("lobby", 1, true), "lobby: 1 missed message");
        assert_eq!(
            resumed("lobby", 0, false),
            "lobby: no missed messages, older ones lost"
        );
        assert_eq!(short_game("g-1"), "g-1");
    }
}
