//! Messages outside rooms: direct messages to every device of a user (kept for offline
//! users, with a delivery watermark) and the global broadcast.

use super::dedupe_key;
use crate::backend::{BackendError, Published, Replay};
use crate::event::{Epoch, Event, Position, Topic};
use crate::gateway::Gateway;
use crate::protocol::{MsgId, Reply, UserId};
use serde_json::Value;

impl Gateway {
    /// Leaves out ranked matches older than the reconnect grace: their games were
    /// abandoned by then.
    pub(crate) fn forget_stale_matches(&self, replay: &mut Replay) {
        let oldest = crate::clock::unix_millis()
            .saturating_sub(self.config.game_reconnect_grace.as_millis() as u64);
        replay
            .events
            .retain(|e| !matches!(e, Event::RankMatched { ts, .. } if *ts < oldest));
    }

    /// Sends to every session of `to`; kept in the user's log when nobody is online.
    pub async fn send_direct(
        &self,
        to: &UserId,
        from: &UserId,
        name: &str,
        data: Value,
        msg_id: Option<&MsgId>,
    ) -> Result<Published, Reply> {
        let event = Event::Direct {
            to: to.clone(),
            from: from.clone(),
            name: name.to_owned(),
            data,
            seq: 0,
            epoch: Epoch::default(),
            ts: crate::clock::unix_millis(),
        };
        Ok(self
            .bus
            .publish_logged(
                &Topic::User(to.clone()),
                event,
                dedupe_key(from, msg_id).as_deref(),
            )
            .await?)
    }

    pub async fn broadcast(&self, from: &UserId, name: &str, data: Value) -> Result<(), Reply> {
        let event = Event::Broadcast {
            from: from.clone(),
            name: name.to_owned(),
            data,
            ts: crate::clock::unix_millis(),
        };
        Ok(self.bus.publish(&Topic::All, event).await?)
    }

    /// Records that direct messages up to `upto` reached a session of `user`.
    pub async fn mark_delivered(&self, user: &UserId, upto: &Position) -> Result<(), BackendError> {
        self.bus.mark_delivered(user, upto).await
    }
}
