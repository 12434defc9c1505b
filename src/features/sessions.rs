//! Logging in and out: the duplicate-login policy, registration in the hub, the
//! user's channel and presence, and closing a user's sessions everywhere.

use super::Registered;
use crate::auth::Identity;
use crate::config::DuplicateLogin;
use crate::event::{Event, Position, Topic};
use crate::gateway::Gateway;
use crate::hub::SessionHandle;
use crate::protocol::{ErrorCode, Reply, RoomId, UserId, close};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Gateway {
    /// Applies the duplicate-login policy and registers the session everywhere.
    pub async fn register(
        &self,
        identity: &Identity,
        dm_since: Option<Position>,
    ) -> Result<Registered, Reply> {
        if !self.is_accepting() {
            return Err(Reply::new(ErrorCode::Unavailable, "server draining"));
        }
        let user = &identity.user;
        if self.config.duplicate_login == DuplicateLogin::Reject
            && self.presence.session_count(user).await? > 0
        {
            return Err(Reply::new(
                ErrorCode::Conflict,
                "user already has a session (duplicate logins are rejected)",
            ));
        }
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        let handle = SessionHandle::with_limits(
            &format!("{}-{n}", self.replica),
            user.clone(),
            &identity.name,
            self.config.outbound_queue,
            self.config.max_outbound_bytes,
        );
        // Every session counts as one unit of interest in its user's channel, and its
        // login waits until that subscription is live: direct messages from then on are
        // queued live, those before are in the inbox read after it, never skipped.
        self.hub.add_session(&handle);
        if let Err(err) = self.bus.subscribe(&Topic::User(user.clone())).await {
            self.hub.remove_session(&handle);
            return Err(err.into());
        }
        // Presence (with the online announcement) and the inbox are independent, so
        // they are sent together: on one Redis, two script calls in one round trip.
        let (connected, inbox) = tokio::join!(
            self.presence
                .connect_announced(&*self.bus, user, &identity.name, &handle.id),
            self.bus
                .inbox(user, dm_since.as_ref(), self.config.inbox_size),
        );
        let (dm_after, mut inbox) = match (connected, inbox) {
            (Ok(_), Ok(inbox)) => inbox,
            (Err(err), _) | (_, Err(err)) => {
                self.unregister(&handle, &[]).await;
                return Err(err.into());
            }
        };
        self.forget_stale_matches(&mut inbox);
        if self.config.duplicate_login == DuplicateLogin::Kick {
            let kick = Event::Kick {
                user: user.clone(),
                except: Some(handle.id.to_string()),
                code: close::REPLACED,
            };
            if let Err(err) = self.bus.publish(&Topic::User(user.clone()), kick).await {
                // Without the kick the policy would not hold: refuse this login.
                self.unregister(&handle, &[]).await;
                return Err(err.into());
            }
        }
        Ok(Registered {
            handle,
            dm_after,
            inbox: Box::new(inbox),
        })
    }

    /// Undoes `register` and leaves every room; best effort when the backend is down
    /// (presence entries nobody refreshes expire on their own).
    pub async fn unregister(&self, handle: &Arc<SessionHandle>, rooms: &[RoomId]) {
        for room in rooms {
            if let Err(err) = self.leave(handle, room).await {
                tracing::debug!(session = %handle.id, %room, cause = %err, "leave on close failed");
            }
        }
        if self.hub.remove_session(handle) {
            let _ = self
                .bus
                .unsubscribe(&Topic::User(handle.user.clone()))
                .await;
        }
        self.online_unwatch(handle).await;
        if let Err(err) = self
            .presence
            .disconnect_announced(&*self.bus, &handle.user, &handle.id)
            .await
        {
            tracing::debug!(session = %handle.id, cause = %err, "presence disconnect failed");
        }
    }

    /// Closes every session of `user` on every replica.
    pub async fn disconnect_user(&self, user: &UserId) -> Result<(), Reply> {
        let event = Event::Kick {
            user: user.clone(),
            except: None,
            code: close::DISCONNECTED,
        };
        Ok(self.bus.publish(&Topic::User(user.clone()), event).await?)
    }
}
