//! Rooms: joining and leaving with member events, publishing with a per-room seq, and
//! the replay that lets a client resume a room without a gap.

use super::dedupe_key;
use crate::backend::{Published, Replay};
use crate::event::{Epoch, Event, Position, Topic};
use crate::gateway::Gateway;
use crate::hub::SessionHandle;
use crate::protocol::{MsgId, Reply, RoomId, UserId};
use serde_json::Value;
use std::sync::Arc;

impl Gateway {
    /// Puts a session into a room and announces the user's arrival on first join. The
    /// local state is settled before any announcement, which is best effort.
    pub async fn join(&self, handle: &Arc<SessionHandle>, room: &RoomId) -> Result<(), Reply> {
        let topic = Topic::Room(room.clone());
        if !self.hub.join(room, handle) {
            return Ok(());
        }
        if let Err(err) = self.bus.subscribe(&topic).await {
            self.hub.leave(room, handle);
            return Err(err.into());
        }
        let joined = match self.presence.join(room, &handle.user, &handle.id).await {
            Ok(joined) => joined,
            Err(err) => {
                self.hub.leave(room, handle);
                let _ = self.bus.unsubscribe(&topic).await;
                return Err(err.into());
            }
        };
        if joined.changed && joined.members <= self.config.member_events_limit {
            let event = Event::MemberJoined {
                room: room.clone(),
                user: handle.user.clone(),
                name: handle.name().to_string(),
                count: joined.members,
            };
            self.announce(&topic, event).await;
        }
        Ok(())
    }

    /// Takes a session out of a room and announces the user's departure on last leave.
    /// The local state changes first; a presence entry left behind by an outage is no
    /// longer refreshed and expires.
    pub async fn leave(&self, handle: &Arc<SessionHandle>, room: &RoomId) -> Result<(), Reply> {
        let topic = Topic::Room(room.clone());
        if self.hub.leave(room, handle) {
            let _ = self.bus.unsubscribe(&topic).await;
        }
        let left = self.presence.leave(room, &handle.user, &handle.id).await?;
        if left.changed && left.members < self.config.member_events_limit {
            let event = Event::MemberLeft {
                room: room.clone(),
                user: handle.user.clone(),
                name: handle.name().to_string(),
                count: left.members,
            };
            self.announce(&topic, event).await;
        }
        Ok(())
    }

    /// Publishes an event nobody must wait for; a failure is logged, not returned.
    pub(super) async fn announce(&self, topic: &Topic, event: Event) {
        if let Err(err) = self.bus.publish(topic, event).await {
            tracing::debug!(?topic, cause = %err, "announcement not published");
        }
    }

    /// Room messages the session missed since `after` (limit 0: only head and epoch).
    pub async fn room_replay(
        &self,
        room: &RoomId,
        after: &Position,
        limit: usize,
    ) -> Result<Replay, Reply> {
        Ok(self
            .bus
            .replay(
                &Topic::Room(room.clone()),
                after,
                limit.min(self.config.replay_limit),
            )
            .await?)
    }

    pub async fn publish(
        &self,
        room: &RoomId,
        from: &UserId,
        name: &str,
        data: Value,
        echo: bool,
        msg_id: Option<&MsgId>,
    ) -> Result<Published, Reply> {
        let event = Event::Message {
            room: room.clone(),
            from: from.clone(),
            name: name.to_owned(),
            data,
            seq: 0,
            epoch: Epoch::default(),
            ts: crate::clock::unix_millis(),
            skip: (!echo).then(|| from.clone()),
        };
        Ok(self
            .bus
            .publish_logged(
                &Topic::Room(room.clone()),
                event,
                dedupe_key(from, msg_id).as_deref(),
            )
            .await?)
    }
}
