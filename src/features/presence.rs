//! Who is where: room member lists, the paginated online list, and renames that every
//! room of the user hears about.

use crate::backend::OnlinePage;
use crate::event::{Event, Topic};
use crate::gateway::Gateway;
use crate::protocol::{ErrorCode, Member, Reply, RoomId, UserId};

impl Gateway {
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
        let name = crate::auth::clean_name(name, self.config.max_name_chars);
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
