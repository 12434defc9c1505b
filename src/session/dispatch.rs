//! Inbound frames: parsing, the rate limit, and one handler per client frame type,
//! each delegating the rule to `features` through the gateway.

use super::*;

impl<T: Transport> Session<'_, T> {
    /// Handles one inbound text frame; `Some(code)` ends the session.
    pub(super) async fn on_text(&mut self, text: &str) -> Option<CloseCode> {
        let now = std::time::Instant::now();
        if !self.limiter.try_take(now, frame_rate(self.gw)) {
            self.gw.metrics.rate_limited.inc();
            if !self.abuse.try_take(now, abuse_rate(self.gw)) {
                self.error(None, ErrorCode::RateLimited, "sustained flooding, closing")
                    .await;
                return Some(close::POLICY);
            }
            self.error(None, ErrorCode::RateLimited, "too many frames, slow down")
                .await;
            return None;
        }
        let request = match parse_request(text) {
            Ok(request) => request,
            Err((id, message)) => {
                self.gw
                    .metrics
                    .frames_in
                    .with_label_values(&["invalid"])
                    .inc();
                self.error(id.as_ref(), ErrorCode::BadRequest, &message)
                    .await;
                return None;
            }
        };
        self.gw
            .metrics
            .frames_in
            .with_label_values(&[request.frame.kind()])
            .inc();
        let id = request.id;
        if let Err(reply) = self.handle_frame(id.as_ref(), request.frame).await {
            self.error(id.as_ref(), reply.code, &reply.message).await;
        }
        None
    }

    /// A WebSocket ping or pong: free for the client while under the rate limit (the
    /// WebSocket layer already answered it), but a flood ends like a frame flood, with
    /// 4008. No error frame per refused ping: that would double the flood's traffic.
    pub(super) async fn on_control(&mut self) -> Option<CloseCode> {
        let now = std::time::Instant::now();
        if self.limiter.try_take(now, frame_rate(self.gw)) {
            return None;
        }
        self.gw.metrics.rate_limited.inc();
        if self.abuse.try_take(now, abuse_rate(self.gw)) {
            return None;
        }
        self.error(None, ErrorCode::RateLimited, "sustained flooding, closing")
            .await;
        Some(close::POLICY)
    }

    pub(super) async fn handle_frame(
        &mut self,
        id: Option<&Value>,
        frame: ClientFrame,
    ) -> Result<(), Reply> {
        let gw = self.gw;
        match frame {
            ClientFrame::Login { .. } => {
                return Err(Reply::new(ErrorCode::BadRequest, "already logged in"));
            }
            ClientFrame::Refresh { token } => return self.refresh(id, &token).await,
            ClientFrame::Join { room, since, epoch } => {
                return self.join(id, room, cursor(since, epoch)).await;
            }
            ClientFrame::Leave { room } => {
                if self.rooms.remove(&room).is_none() {
                    return Err(Reply::new(ErrorCode::NotFound, "not in that room"));
                }
                gw.leave(&self.handle, &room).await?;
                self.ok(
                    id,
                    OkDetail::Left {
                        room: room.as_str(),
                    },
                )
                .await;
            }
            ClientFrame::Publish {
                room,
                data,
                echo,
                msg_id,
            } => {
                if !self.rooms.contains_key(&room) {
                    return Err(Reply::new(
                        ErrorCode::Forbidden,
                        "join the room before publishing",
                    ));
                }
                let name = self.handle.name();
                let published = gw
                    .publish(
                        &room,
                        &self.identity.user,
                        &name,
                        data,
                        echo,
                        msg_id.as_ref(),
                    )
                    .await?;
                self.ok(id, published.into()).await;
            }
            ClientFrame::Send { to, data, msg_id } => {
                let name = self.handle.name();
                let published = gw
                    .send_direct(&to, &self.identity.user, &name, data, msg_id.as_ref())
                    .await?;
                self.ok(id, published.into()).await;
            }
            ClientFrame::Broadcast { data } => {
                if !self.identity.may("broadcast") {
                    return Err(Reply::new(
                        ErrorCode::Forbidden,
                        "needs the broadcast permission",
                    ));
                }
                let name = self.handle.name();
                gw.broadcast(&self.identity.user, &name, data).await?;
                self.ok(id, OkDetail::None {}).await;
            }
            ClientFrame::Presence { room } => {
                if !self.identity.may_join(room.as_str()) {
                    return Err(Reply::new(
                        ErrorCode::Forbidden,
                        "token does not allow this room",
                    ));
                }
                let (members, count) = gw.presence(&room).await?;
                let frame = ServerFrame::Presence {
                    id,
                    room: room.as_str(),
                    members: &members,
                    count,
                };
                self.reply(frame).await;
            }
            ClientFrame::Who { cursor, limit } => {
                let page = gw.who(cursor.as_deref(), limit).await?;
                let frame = ServerFrame::Who {
                    id,
                    users: &page.users,
                    count: page.count,
                    next: page.next.as_deref(),
                };
                self.reply(frame).await;
            }
            ClientFrame::Rename { name } => {
                let name = gw.rename(&self.identity.user, &name).await?;
                self.ok(id, OkDetail::Renamed { name: &name }).await;
            }
            ClientFrame::OnlineWatch { users, all } => {
                gw.online_watch(&self.handle, users, all).await?;
                self.ok(id, OkDetail::None {}).await;
            }
            ClientFrame::OnlineUnwatch {} => {
                gw.online_unwatch(&self.handle).await;
                self.ok(id, OkDetail::None {}).await;
            }
            ClientFrame::Ping => {
                self.reply(ServerFrame::Pong { id }).await;
            }
            ClientFrame::Pong => {}
            ClientFrame::GameCreate {} => {
                let room = gw.game_create(&self.handle).await?;
                self.games
                    .insert(room.clone(), (GameRole::Player, Position::default()));
                // The creator resumes like any player, so it learns the log's epoch too.
                let (_, _, epoch) = self
                    .game_replay(&room, GameRole::Player, None)
                    .await
                    .unwrap_or_default();
                let owner = self.identity.user.clone();
                let frame = ServerFrame::GameCreated {
                    id,
                    room: room.as_str(),
                    owner: owner.as_str(),
                    epoch: epoch.wire(),
                };
                self.reply(frame).await;
            }
            ClientFrame::GameJoin { room, since, epoch } => {
                if self.games.contains_key(&room) {
                    return Err(Reply::new(ErrorCode::Conflict, "already in this game"));
                }
                let since = cursor(since, epoch);
                let state = gw.game_join(&self.handle, &room).await?;
                self.games.insert(
                    room.clone(),
                    (GameRole::Player, since.clone().unwrap_or_default()),
                );
                self.game_seated(id, &room, GameRole::Player, &state, since)
                    .await?;
            }
            ClientFrame::GameWatch { room, since, epoch } => {
                if self.games.contains_key(&room) {
                    return Err(Reply::new(ErrorCode::Conflict, "already in this game"));
                }
                let since = cursor(since, epoch);
                let state = gw.game_watch(&self.handle, &room).await?;
                self.games.insert(
                    room.clone(),
                    (GameRole::Watcher, since.clone().unwrap_or_default()),
                );
                self.game_seated(id, &room, GameRole::Watcher, &state, since)
                    .await?;
            }
            ClientFrame::GameSend {
                room,
                to,
                data,
                msg_id,
            } => {
                match self.games.get(&room) {
                    Some((GameRole::Player, _)) => {}
                    Some((GameRole::Watcher, _)) => {
                        return Err(Reply::new(ErrorCode::Forbidden, "watchers cannot send"));
                    }
                    None => {
                        return Err(Reply::new(
                            ErrorCode::Forbidden,
                            "not a player in this game",
                        ));
                    }
                }
                let published = gw
                    .game_send(&room, &self.identity.user, to, data, msg_id.as_ref())
                    .await?;
                self.ok(id, published.into()).await;
            }
            ClientFrame::GameLeave { room } => {
                match self.games.get(&room) {
                    // A player leaving ends the game for everyone (this session too
                    // gets `game.closed`).
                    Some((GameRole::Player, _)) => gw.game_end(&room, reason::LEFT).await?,
                    Some((GameRole::Watcher, _)) => {
                        self.games.remove(&room);
                        gw.game_unwatch(&self.handle, &room).await?;
                    }
                    None => return Err(Reply::new(ErrorCode::NotFound, "not in that game")),
                }
                self.ok(
                    id,
                    OkDetail::Left {
                        room: room.as_str(),
                    },
                )
                .await;
            }
            ClientFrame::GameClose { room } => {
                gw.game_close_by(&self.identity.user, &room).await?;
                self.ok(
                    id,
                    OkDetail::Left {
                        room: room.as_str(),
                    },
                )
                .await;
            }
            ClientFrame::RankJoin {} => self.rank_join(id).await?,
            ClientFrame::RankLeave {} => {
                gw.rank_leave(&self.identity.user, None).await?;
                self.ranked = None;
                self.ok(id, OkDetail::None {}).await;
            }
        }
        Ok(())
    }

    /// After `game.join` / `game.watch`: replays what was missed, then answers `ok` with
    /// where the caller stands.
    pub(super) async fn game_seated(
        &mut self,
        id: Option<&Value>,
        room: &RoomId,
        role: GameRole,
        state: &crate::backend::GameState,
        since: Option<Position>,
    ) -> Result<(), Reply> {
        let (recovered, replayed, epoch) = self.game_replay(room, role, since).await?;
        let detail = OkDetail::Game {
            room: room.as_str(),
            role,
            owner: state.owner.as_str(),
            opponent: state.opponent.as_ref().map(|u| u.as_str()),
            started: state.started,
            recovered,
            replayed,
            epoch: epoch.wire(),
        };
        self.ok(id, detail).await;
        Ok(())
    }

    /// Replays a game's messages after `since` that this participant may see; without
    /// `since`, only learns the log's epoch.
    pub(super) async fn game_replay(
        &mut self,
        room: &RoomId,
        role: GameRole,
        since: Option<Position>,
    ) -> Result<(Option<bool>, Option<usize>, Epoch), Reply> {
        let resuming = since.is_some();
        let since = since.unwrap_or_default();
        let limit = if resuming { usize::MAX } else { 0 };
        let replay = self.gw.game_replay(room, &since, limit).await?;
        if let Some((_, cursor)) = self.games.get_mut(room) {
            rebase(cursor, &replay);
        }
        let epoch = replay.epoch.clone();
        if !resuming {
            return Ok((None, None, epoch));
        }
        let user = self.identity.user.clone();
        let complete = replay.complete;
        let notice = replay
            .reset
            .then(|| reset_notice(StreamKind::Game, Some(room), &replay.epoch));
        let events: Vec<Event> = replay
            .events
            .into_iter()
            .filter(|e| match e {
                Event::GameMessage { from, to, .. } => to.reaches(from, role, &user),
                _ => true,
            })
            .collect();
        let count = events.len();
        if !self.write_replay(&events, notice).await {
            return Err(Reply::new(ErrorCode::Internal, "replay write failed"));
        }
        Ok((Some(complete), Some(count), epoch))
    }

    pub(super) async fn join(
        &mut self,
        id: Option<&Value>,
        room: RoomId,
        since: Option<Position>,
    ) -> Result<(), Reply> {
        if !self.identity.may_join(room.as_str()) {
            return Err(Reply::new(
                ErrorCode::Forbidden,
                "token does not allow this room",
            ));
        }
        if !self.rooms.contains_key(&room) {
            if self.rooms.len() >= self.gw.config.max_rooms_per_session {
                return Err(Reply::new(
                    ErrorCode::Forbidden,
                    "too many rooms for one session",
                ));
            }
            if !self
                .joins
                .try_take(std::time::Instant::now(), join_rate(self.gw))
            {
                self.gw.metrics.rate_limited.inc();
                return Err(Reply::new(
                    ErrorCode::RateLimited,
                    "joining new rooms too fast, slow down",
                ));
            }
            self.gw.join(&self.handle, &room).await?;
            self.rooms.insert(room.clone(), Position::default());
        }
        let resuming = since.is_some();
        if let (Some(since), Some(cursor)) = (&since, self.rooms.get_mut(&room)) {
            // Replay from the client's cursor even if this session wrote past it.
            if since.epoch != cursor.epoch || since.seq < cursor.seq {
                *cursor = since.clone();
            }
        }
        let since = since.unwrap_or_default();
        let limit = if resuming { usize::MAX } else { 0 };
        let replay = match self.gw.room_replay(&room, &since, limit).await {
            Ok(replay) => replay,
            // Joined already; the epoch is learned from the first message instead.
            Err(_) if !resuming => Replay::default(),
            Err(reply) => return Err(reply),
        };
        if let Some(cursor) = self.rooms.get_mut(&room) {
            rebase(cursor, &replay);
        }
        let (recovered, replayed) = if resuming {
            let notice = replay
                .reset
                .then(|| reset_notice(StreamKind::Room, Some(&room), &replay.epoch));
            if !self.write_replay(&replay.events, notice).await {
                return Err(Reply::new(ErrorCode::Internal, "replay write failed"));
            }
            (Some(replay.complete), Some(replay.events.len()))
        } else {
            (None, None)
        };
        let detail = OkDetail::Joined {
            room: room.as_str(),
            recovered,
            replayed,
            epoch: replay.epoch.wire(),
        };
        self.ok(id, detail).await;
        Ok(())
    }
}

/// Points a session's cursor at the log as it is now: a log reset (the client's epoch
/// or the session's is not the log's) starts it over at seq 0 of the new epoch; a cursor
/// with no epoch (an old client) is clamped to the head so new messages are not hidden.
pub(super) fn rebase(cursor: &mut Position, replay: &Replay) {
    if !replay.epoch.is_known() {
        return;
    }
    if replay.reset || (cursor.epoch.is_known() && cursor.epoch != replay.epoch) {
        *cursor = Position::at(0, &replay.epoch);
    } else {
        cursor.epoch = replay.epoch.clone();
        cursor.seq = cursor.seq.min(replay.head);
    }
}

/// The `stream.reset` frame telling a client its cursor for a stream starts over.
pub(super) fn reset_notice(stream: StreamKind, room: Option<&RoomId>, epoch: &Epoch) -> Encoded {
    ServerFrame::StreamReset {
        stream,
        room: room.map(|r| r.as_str()),
        epoch: epoch.as_str(),
    }
    .encode()
}
