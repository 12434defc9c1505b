//! Game vocabulary shared by client and server frames: targets of `game.send` and the
//! roles of participants.

use super::UserId;
use serde::{Deserialize, Serialize};

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
