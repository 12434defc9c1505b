//! Key and channel names under one prefix, hash-tagged so each script's keys share a
//! cluster slot.

use super::*;

/// Key and channel names under one prefix.
pub(super) struct Keys {
    pub(super) prefix: String,
}

impl Keys {
    /// The hash tag shared by a topic's channel and keys (one cluster slot).
    pub(super) fn tag(topic: &Topic) -> String {
        match topic {
            Topic::Room(r) => format!("{{r:{r}}}"),
            Topic::User(u) => format!("{{u:{u}}}"),
            Topic::All => "{all}".to_owned(),
            Topic::Online => "{online-feed}".to_owned(),
            Topic::Game(g) => format!("{{g:{g}}}"),
        }
    }

    pub(super) fn channel(&self, topic: &Topic) -> String {
        format!("{}:{}:ch", self.prefix, Self::tag(topic))
    }

    pub(super) fn topic(&self, channel: &str) -> Option<Topic> {
        let tag = channel
            .strip_prefix(&self.prefix)?
            .strip_prefix(":{")?
            .strip_suffix("}:ch")?;
        match tag {
            "all" => return Some(Topic::All),
            "online-feed" => return Some(Topic::Online),
            _ => {}
        }
        match tag.split_once(':')? {
            ("r", name) => RoomId::new(name).ok().map(Topic::Room),
            ("u", name) => UserId::new(name).ok().map(Topic::User),
            ("g", name) => RoomId::new(name).ok().map(Topic::Game),
            _ => None,
        }
    }

    pub(super) fn probe(&self, replica: &str) -> String {
        format!("{}:{{probe:{replica}}}:ch", self.prefix)
    }

    /// `{position, log}` keys of a logged topic: a hash `{seq, epoch}` and a stream.
    pub(super) fn log(&self, topic: &Topic) -> Vec<String> {
        let tag = Self::tag(topic);
        vec![
            format!("{}:{tag}:pos", self.prefix),
            format!("{}:{tag}:log", self.prefix),
        ]
    }

    /// A client message id logged on `topic` (`key` is `<sender>:<msg_id>`).
    pub(super) fn msg_id(&self, topic: &Topic, key: &str) -> String {
        format!("{}:{}:mid:{key}", self.prefix, Self::tag(topic))
    }

    pub(super) fn user(&self, user: &UserId, what: &str) -> String {
        format!("{}:{{u:{user}}}:{what}", self.prefix)
    }

    pub(super) fn room_user(&self, room: &RoomId, user: &UserId) -> String {
        format!("{}:{{r:{room}}}:u:{user}", self.prefix)
    }

    pub(super) fn room_users(&self, room: &RoomId) -> String {
        format!("{}:{{r:{room}}}:users", self.prefix)
    }

    pub(super) fn online(&self) -> Vec<String> {
        ["exp", "lex", "names"]
            .iter()
            .map(|k| format!("{}:{{online}}:{k}", self.prefix))
            .collect()
    }

    /// The ranked queue's keys. New names (the old queue was `{mm}:queue` +
    /// `{mm}:meta`): a replica of an older version never misreads this layout
    /// (docs/OPERATIONS.md, rolling upgrades).
    pub(super) fn rank(&self) -> RankKeys {
        let key = |what: &str| format!("{}:{{mm}}:{what}", self.prefix);
        RankKeys {
            players: key("players"),
            version: key("version"),
            changes: key("changes"),
            pending: key("pending"),
            matches: key("matches"),
            run: key("run"),
        }
    }
}

/// The ranked queue's keys: players, version, change log, pending, matches, run lease.
pub(super) struct RankKeys {
    pub(super) players: String,
    pub(super) version: String,
    pub(super) changes: String,
    pub(super) pending: String,
    pub(super) matches: String,
    pub(super) run: String,
}
