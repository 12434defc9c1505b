//! The gateway's rules, written once against the backend traits and shared by client
//! sessions and the HTTP API, one file per rule: logging in and out (`sessions`),
//! `rooms`, `direct` messages and broadcast, `presence`, `games` and the `ranked` queue.

mod direct;
mod games;
mod presence;
mod ranked;
mod rooms;
mod sessions;

pub use games::reason;

use crate::backend::{BackendError, Replay};
use crate::event::Position;
use crate::hub::SessionHandle;
use crate::protocol::{ErrorCode, MsgId, Reply, UserId};
use std::sync::Arc;

impl From<BackendError> for Reply {
    fn from(err: BackendError) -> Self {
        tracing::warn!(cause = %err, "backend call failed");
        Reply::new(ErrorCode::Unavailable, "backend unavailable, try again")
    }
}

/// The dedupe key of a client's message id: ids are the sender's own, so two users
/// may pick the same one.
pub(crate) fn dedupe_key(from: &UserId, msg_id: Option<&MsgId>) -> Option<String> {
    msg_id.map(|id| format!("{from}:{id}"))
}

/// A registered session and where its direct-message replay starts.
pub struct Registered {
    pub handle: Arc<SessionHandle>,
    pub dm_after: Position,
    /// The direct messages after `dm_after`, read at login (the welcome sends them).
    /// Boxed: the session's long-lived future holds only a pointer until then.
    pub inbox: Box<Replay>,
}
