//! Who is where: room member lists, the paginated online list, and renames that every
//! room of the user hears about.

use crate::backend::OnlinePage;
use crate::event::{Event, Topic};
use crate::gateway::Gateway;
use crate::hub::SessionHandle;
use crate::hub::feed::Watch;
use crate::protocol::{ErrorCode, Member, Reply, RoomId, UserId};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

impl Gateway {
    /// `online.watch`: from now on the session hears when the users it names (or all
    /// users) come online or go offline, coalesced every `online_feed_interval`.
    pub async fn online_watch(
        &self,
        handle: &Arc<SessionHandle>,
        users: Vec<UserId>,
        all: bool,
    ) -> Result<(), Reply> {
        let watch = match (all, users.len()) {
            (true, 0) => Watch::All,
            (true, _) => {
                return Err(Reply::new(
                    ErrorCode::BadRequest,
                    "give either `all` or `users`",
                ));
            }
            (false, 0) => {
                return Err(Reply::new(
                    ErrorCode::BadRequest,
                    "`users` must list at least one user (or set `all`)",
                ));
            }
            (false, n) if n > self.config.online_watch_limit => {
                return Err(Reply::new(
                    ErrorCode::TooLarge,
                    format!(
                        "watch at most {} users (SWITCHBOARD_ONLINE_WATCH_LIMIT)",
                        self.config.online_watch_limit
                    ),
                ));
            }
            (false, _) => Watch::Users(users.into_iter().collect()),
        };
        // One unit of interest in the feed topic per watching session.
        if self.hub.online.watch(handle, watch)
            && let Err(err) = self.bus.subscribe(&Topic::Online).await
        {
            self.hub.online.unwatch(&handle.id);
            return Err(err.into());
        }
        Ok(())
    }

    /// `online.unwatch`, and on session end.
    pub async fn online_unwatch(&self, handle: &SessionHandle) {
        if self.hub.online.unwatch(&handle.id) {
            let _ = self.bus.unsubscribe(&Topic::Online).await;
        }
    }

    /// Flushes the online feed every `online_feed_interval` until `stop`.
    pub async fn run_online_feed(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.online_feed_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.hub.flush_online_feed();
        }
    }

    pub async fn presence(&self, room: &RoomId) -> Result<(Vec<Member>, usize), Reply> {
        Ok(self
            .presence
            .members(room, self.config.presence_limit)
            .await?)
    }

    pub async fn who(
        &self,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<OnlinePage, Reply> {
        let limit = limit
            .unwrap_or(self.config.who_page)
            .clamp(1, self.config.who_page);
        Ok(self.presence.online(cursor, limit).await?)
    }

    /// Changes a user's display name everywhere and tells the rooms it is in.
    pub async fn rename(&self, user: &UserId, name: &str) -> Result<String, Reply> {
        let name = crate::protocol::clean_name(name, self.config.max_name_chars);
        if name.is_empty() {
            return Err(Reply::new(ErrorCode::BadRequest, "name must not be empty"));
        }
        let rooms = self.presence.rename(user, &name).await?;
        let renamed = Event::Renamed {
            user: user.clone(),
            name: name.clone(),
        };
        self.bus
            .publish(&Topic::User(user.clone()), renamed)
            .await?;
        for room in rooms {
            let event = Event::MemberRenamed {
                room: room.clone(),
                user: user.clone(),
                name: name.clone(),
            };
            self.bus.publish(&Topic::Room(room), event).await?;
        }
        Ok(name)
    }
}
