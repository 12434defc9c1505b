//! Presence on Redis: sessions and room memberships as expiring entries that this
//! replica keeps refreshing, member lists, the online list and renames.

use super::*;

impl RedisBackend {
    /// Re-asserts this replica's sessions and memberships before they expire, so a
    /// crashed replica's users vanish within `presence_ttl` without any cleanup.
    pub(super) async fn presence_loop(self: Arc<Self>) {
        let this = &*self;
        let mut tick = tokio::time::interval(this.presence_ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = this.stop.cancelled() => return,
                _ = tick.tick() => {}
                _ = this.refresh_now.notified() => {}
            }
            if !this.cmd.is_connected() {
                continue;
            }
            // Forget gap tracking for topics nobody here listens to any more.
            {
                let mut seen = this.last_seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.retain(|topic, _| this.hub.has_interest(topic));
                crate::sparse::shrink_when_sparse(&mut seen);
            }
            let LocalSnapshot {
                sessions,
                memberships,
            } = this.hub.snapshot();
            let expiry = (now_ms() + this.presence_ttl.as_millis() as u64).to_string();
            let now = now_ms().to_string();
            let ttl = (this.presence_ttl.as_millis() as u64 * 2).to_string();
            let mut failures = 0usize;
            if !this.sharded {
                failures += this.refresh_batched(&sessions, &memberships).await;
            } else {
                for chunk in sessions.chunks(256) {
                    // Re-check each entry: a session that closed since the snapshot must not
                    // be brought back to life for another presence_ttl.
                    let live = chunk
                        .iter()
                        .filter(|(_, session, _)| this.hub.holds(session, None));
                    let calls = live.map(|(user, session, name)| {
                        let keys = this.keys.user(user, "sess");
                        let online = this.keys.online();
                        let args = vec![session.clone(), now.clone(), expiry.clone(), ttl.clone()];
                        let touch = vec![
                            user.to_string(),
                            expiry.clone(),
                            name.to_string(),
                            "0".into(),
                        ];
                        async move {
                            this.eval::<i64>(&this.scripts.session_add, vec![keys], args)
                                .await?;
                            this.eval::<i64>(&this.scripts.online_touch, online, touch)
                                .await
                        }
                    });
                    failures += failed(calls).await;
                }
                for chunk in memberships.chunks(256) {
                    let live = chunk
                        .iter()
                        .filter(|(room, _, session)| this.hub.holds(session, Some(room)));
                    let calls = live.map(|(room, user, session)| async move {
                        this.room_join_script(room, user, session).await?;
                        this.remember_room(user, room).await
                    });
                    failures += failed(calls).await;
                }
            }
            if failures > 0 {
                tracing::warn!(failures, "presence refresh incomplete");
            }
            if let Err(err) = this.expire_online().await {
                tracing::debug!(cause = %err, "online expiry sweep failed");
            }
        }
    }

    /// The presence refresh on a single Redis: one script call per chunk of 256 sessions
    /// or memberships instead of two or three calls for each. Returns the entries whose
    /// chunk failed.
    async fn refresh_batched(
        &self,
        sessions: &[(UserId, String, Arc<str>)],
        memberships: &[(RoomId, UserId, String)],
    ) -> usize {
        let now = now_ms();
        let head = || {
            vec![
                now.to_string(),
                (now + self.presence_ttl.as_millis() as u64).to_string(),
                (self.presence_ttl.as_millis() as u64 * 2).to_string(),
                self.history_ttl_ms.to_string(),
            ]
        };
        let mut calls = Vec::new();
        for chunk in sessions.chunks(256) {
            // A session that closed since the snapshot must not come back to life.
            let live: Vec<_> = chunk
                .iter()
                .filter(|(_, session, _)| self.hub.holds(session, None))
                .collect();
            let mut keys = self.keys.online();
            let mut args = head();
            args.push(live.len().to_string());
            for (user, session, name) in &live {
                keys.push(self.keys.user(user, "sess"));
                args.extend([session.clone(), user.to_string(), name.to_string()]);
            }
            calls.push((live.len(), keys, args));
        }
        for chunk in memberships.chunks(256) {
            let live: Vec<_> = chunk
                .iter()
                .filter(|(room, _, session)| self.hub.holds(session, Some(room)))
                .collect();
            let mut keys = self.keys.online();
            let mut args = head();
            args.push("0".into());
            for (room, user, session) in &live {
                keys.push(self.keys.room_user(room, user));
                keys.push(self.keys.room_users(room));
                keys.push(self.keys.log(&Topic::Room(room.clone())).swap_remove(0));
                keys.push(self.keys.user(user, "rooms"));
                args.extend([session.clone(), user.to_string(), room.to_string()]);
            }
            calls.push((live.len(), keys, args));
        }
        let mut failures = 0;
        for (entries, keys, args) in calls {
            if entries == 0 {
                continue;
            }
            if self
                .eval::<i64>(&self.scripts.presence_refresh, keys, args)
                .await
                .is_err()
            {
                failures += entries;
            }
        }
        failures
    }

    /// Takes users of crashed replicas off the online list and announces them offline
    /// (only the caller whose script removed a user announces it).
    pub(super) async fn expire_online(&self) -> Result<(), BackendError> {
        let expired: Vec<String> = self
            .eval(
                &self.scripts.online_expire,
                self.keys.online(),
                vec![now_ms().to_string()],
            )
            .await?;
        for user in expired.iter().filter_map(|u| UserId::new(u).ok()) {
            tracing::info!(%user, "user's replica stopped refreshing it: announced offline");
            Bus::publish(self, &Topic::Online, Event::UserOffline { user }).await?;
        }
        Ok(())
    }

    /// Adds the room to the user's room set (read by `rename`) and keeps the set alive.
    pub(super) async fn remember_room(
        &self,
        user: &UserId,
        room: &RoomId,
    ) -> Result<i64, BackendError> {
        let rooms = self.keys.user(user, "rooms");
        let ttl_ms = self.presence_ttl.as_millis() as i64 * 2;
        self.call(async {
            self.cmd.sadd::<i64, _, _>(&rooms, room.as_str()).await?;
            self.cmd.pexpire::<i64, _>(&rooms, ttl_ms, None).await
        })
        .await
    }

    /// Runs `room_join.lua`: adds or refreshes a session's membership with a fresh expiry.
    pub(super) async fn room_join_script(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let now = now_ms();
        let presence_ms = self.presence_ttl.as_millis() as u64;
        let keys = vec![
            self.keys.room_user(room, user),
            self.keys.room_users(room),
            self.keys.log(&Topic::Room(room.clone())).swap_remove(0),
        ];
        let args = vec![
            session.to_owned(),
            user.to_string(),
            now.to_string(),
            (now + presence_ms).to_string(),
            (presence_ms * 2).to_string(),
            self.history_ttl_ms.to_string(),
        ];
        Ok(Self::membership(
            self.eval(&self.scripts.room_join, keys, args).await?,
        ))
    }

    /// `{changed (0/1), members}` from the room scripts.
    pub(super) fn membership(value: RedisValue) -> Membership {
        let r = Self::ints(value);
        Membership {
            changed: r.first().copied().unwrap_or(0) == 1,
            members: r.get(1).copied().unwrap_or(0).max(0) as usize,
        }
    }

    pub(super) fn ints(value: RedisValue) -> Vec<i64> {
        value
            .into_array()
            .into_iter()
            .map(|v| v.as_i64().unwrap_or(0))
            .collect()
    }

    pub(super) async fn names(&self, users: &[UserId]) -> Result<Vec<Member>, BackendError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let names_key = self.keys.online().swap_remove(2);
        let args = users.iter().map(UserId::to_string).collect();
        let names: Vec<String> = self
            .eval(&self.scripts.names, vec![names_key], args)
            .await?;
        Ok(users
            .iter()
            .zip(names)
            .map(|(user, name)| Member {
                user: user.clone(),
                name,
            })
            .collect())
    }
}

impl RedisBackend {
    /// Adds a session. On one Redis the same script call also marks the user online
    /// and, with `announce`, publishes `user_online` for a first session; in Cluster the
    /// online list sits in another slot, so those are calls of their own.
    async fn add_session(
        &self,
        user: &UserId,
        name: &str,
        session: &str,
        announce: bool,
    ) -> Result<usize, BackendError> {
        let now = now_ms();
        let expiry = (now + self.presence_ttl.as_millis() as u64).to_string();
        let ttl = (self.presence_ttl.as_millis() as u64 * 2).to_string();
        let online = || Event::UserOnline {
            user: user.clone(),
            name: name.to_owned(),
        };
        let mut keys = vec![self.keys.user(user, "sess")];
        let mut args = vec![session.to_owned(), now.to_string(), expiry.clone(), ttl];
        if !self.sharded {
            keys.extend(self.keys.online());
            args.extend([user.to_string(), name.to_owned()]);
            if announce {
                args.push(self.keys.channel(&Topic::Online));
                args.push(Self::unlogged_payload(&online())?);
            }
        }
        let before: i64 = self.eval(&self.scripts.session_add, keys, args).await?;
        if self.sharded {
            let overwrite = if before == 0 { "1" } else { "0" };
            self.eval::<i64>(
                &self.scripts.online_touch,
                self.keys.online(),
                vec![user.to_string(), expiry, name.to_owned(), overwrite.into()],
            )
            .await?;
            if announce && before == 0 {
                crate::backend::announce(self, online()).await;
            }
        }
        Ok(before.max(0) as usize)
    }

    /// Removes a session; like `add_session`, one script call on one Redis that also
    /// takes the user off the online list and, with `announce`, publishes
    /// `user_offline` when no live session is left.
    async fn remove_session(
        &self,
        user: &UserId,
        session: &str,
        announce: bool,
    ) -> Result<usize, BackendError> {
        let offline = || Event::UserOffline { user: user.clone() };
        let mut keys = vec![self.keys.user(user, "sess")];
        let mut args = vec![session.to_owned(), now_ms().to_string()];
        if !self.sharded {
            keys.extend(self.keys.online());
            args.push(user.to_string());
            if announce {
                args.push(self.keys.channel(&Topic::Online));
                args.push(Self::unlogged_payload(&offline())?);
            }
        }
        let left = Self::ints(self.eval(&self.scripts.session_remove, keys, args).await?);
        let left = left.get(1).copied().unwrap_or(0).max(0) as usize;
        if left == 0 && self.sharded {
            self.eval::<i64>(
                &self.scripts.online_remove,
                self.keys.online(),
                vec![user.to_string()],
            )
            .await?;
            if announce {
                crate::backend::announce(self, offline()).await;
            }
        }
        Ok(left)
    }
}

#[async_trait]
impl Presence for RedisBackend {
    async fn connect(
        &self,
        user: &UserId,
        name: &str,
        session: &str,
    ) -> Result<usize, BackendError> {
        self.add_session(user, name, session, false).await
    }

    async fn disconnect(&self, user: &UserId, session: &str) -> Result<usize, BackendError> {
        self.remove_session(user, session, false).await
    }

    /// Announces through this backend's own bus (`_bus` is this backend).
    async fn connect_announced(
        &self,
        _bus: &dyn Bus,
        user: &UserId,
        name: &str,
        session: &str,
    ) -> Result<usize, BackendError> {
        self.add_session(user, name, session, true).await
    }

    async fn disconnect_announced(
        &self,
        _bus: &dyn Bus,
        user: &UserId,
        session: &str,
    ) -> Result<usize, BackendError> {
        self.remove_session(user, session, true).await
    }

    async fn session_count(&self, user: &UserId) -> Result<usize, BackendError> {
        let key = self.keys.user(user, "sess");
        let count: i64 = self
            .call(self.cmd.zcount(key, now_ms() as f64, f64::INFINITY))
            .await?;
        Ok(count.max(0) as usize)
    }

    async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let joined = self.room_join_script(room, user, session).await?;
        if joined.changed {
            // Best effort: only `rename` reads this set.
            let _ = self.remember_room(user, room).await;
        }
        Ok(joined)
    }

    async fn leave(
        &self,
        room: &RoomId,
        user: &UserId,
        session: &str,
    ) -> Result<Membership, BackendError> {
        let keys = vec![self.keys.room_user(room, user), self.keys.room_users(room)];
        let args = vec![session.to_owned(), user.to_string(), now_ms().to_string()];
        let left = Self::membership(self.eval(&self.scripts.room_leave, keys, args).await?);
        if left.changed {
            let rooms = self.keys.user(user, "rooms");
            let _ = self
                .call(self.cmd.srem::<i64, _, _>(rooms, room.as_str()))
                .await;
        }
        Ok(left)
    }

    async fn members(
        &self,
        room: &RoomId,
        limit: usize,
    ) -> Result<(Vec<Member>, usize), BackendError> {
        let value: RedisValue = self
            .eval(
                &self.scripts.room_members,
                vec![self.keys.room_users(room)],
                vec![now_ms().to_string(), limit.to_string()],
            )
            .await?;
        let mut items = value.into_array().into_iter();
        let count = items.next().and_then(|v| v.as_i64()).unwrap_or(0).max(0) as usize;
        let users: Vec<UserId> = items
            .filter_map(|v| v.as_str().and_then(|s| UserId::new(&s).ok()))
            .collect();
        Ok((self.names(&users).await?, count))
    }

    async fn online(&self, cursor: Option<&str>, limit: usize) -> Result<OnlinePage, BackendError> {
        self.expire_online().await?;
        let value: RedisValue = self
            .eval(
                &self.scripts.online_page,
                self.keys.online(),
                vec![
                    now_ms().to_string(),
                    cursor.unwrap_or("").to_owned(),
                    (limit + 1).to_string(),
                ],
            )
            .await?;
        let mut items = value.into_array().into_iter();
        let count = items.next().and_then(|v| v.as_i64()).unwrap_or(0).max(0) as usize;
        let rest: Vec<String> = items.filter_map(|v| v.as_string()).collect();
        let mut users: Vec<Member> = rest
            .chunks(2)
            .filter_map(|pair| match pair {
                [user, name] => UserId::new(user).ok().map(|user| Member {
                    user,
                    name: name.clone(),
                }),
                _ => None,
            })
            .collect();
        let next = if users.len() > limit {
            users.truncate(limit);
            users.last().map(|m| m.user.to_string())
        } else {
            None
        };
        Ok(OnlinePage { users, count, next })
    }

    async fn rename(&self, user: &UserId, name: &str) -> Result<Vec<RoomId>, BackendError> {
        let expiry = (now_ms() + self.presence_ttl.as_millis() as u64).to_string();
        self.eval::<i64>(
            &self.scripts.online_touch,
            self.keys.online(),
            vec![user.to_string(), expiry, name.to_owned(), "1".into()],
        )
        .await?;
        let rooms: Vec<String> = self
            .call(self.cmd.smembers(self.keys.user(user, "rooms")))
            .await?;
        Ok(rooms.iter().filter_map(|r| RoomId::new(r).ok()).collect())
    }
}
