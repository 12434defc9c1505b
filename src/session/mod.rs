//! One client connection's life, whatever the transport: first-frame login with a
//! timeout, registration, one `select!` loop over inbound frames, the outbound queue,
//! heartbeat/idle timers and close requests, then clean teardown.

mod ratelimit;

use crate::auth::Identity;
use crate::backend::{Event, Replay, Topic};
use crate::features::Gateway;
use crate::features::reason;
use crate::hub::{Delivery, Ordered, SessionHandle};
use crate::matchmaking::Waiting;
use crate::protocol::{
    ClientFrame, Encoded, ErrorCode, GameRole, OkDetail, Reply, Request, RoomId, ServerFrame,
    close, parse_request,
};
use crate::transport::{Inbound, Transport};
use ratelimit::TokenBucket;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

/// Frames written per wake-up of the writer before one flush.
const WRITE_BATCH: usize = 64;
/// Rate-limited frames forgiven per second when judging sustained abuse.
const ABUSE_FORGIVE_PER_S: f64 = 10.0;

/// Runs a connection to its end. `draining` fires when the replica shuts down.
pub async fn run<T: Transport>(gw: Arc<Gateway>, mut transport: T, draining: CancellationToken) {
    let gauge = gw.metrics.connections.with_label_values(&[T::KIND]);
    gauge.inc();
    // Phases that run once are boxed so the long-lived loop state stays small.
    let code = match Box::pin(login(&gw, &mut transport, &draining)).await {
        Ok((identity, dm_since, id)) => serve(&gw, &mut transport, identity, dm_since, id).await,
        Err(code) => code,
    };
    gw.metrics
        .closes
        .with_label_values(&[&code.to_string()])
        .inc();
    let _ = timeout(
        gw.config.write_timeout.min(Duration::from_secs(2)),
        transport.close(code, close::reason(code)),
    )
    .await;
    gauge.dec();
}

/// Turns a connection away before any session starts (the replica is at its connection
/// cap): an `unavailable` error, then close 1013 so the client tries again elsewhere.
pub async fn refuse<T: Transport>(gw: Arc<Gateway>, mut transport: T, message: &str) {
    write_error(&gw, &mut transport, None, ErrorCode::Unavailable, message).await;
    let _ = timeout(
        gw.config.write_timeout.min(Duration::from_secs(2)),
        transport.close(close::TRY_LATER, close::reason(close::TRY_LATER)),
    )
    .await;
}

/// Writes one reply frame straight to the transport (bounded by the write timeout).
async fn write_now<T: Transport>(gw: &Gateway, t: &mut T, frame: ServerFrame<'_>) -> bool {
    let encoded = frame.encode();
    gw.metrics
        .frames_out
        .with_label_values(&[encoded.kind()])
        .inc();
    let write = async {
        t.feed(&encoded).await?;
        t.flush().await
    };
    matches!(timeout(gw.config.write_timeout, write).await, Ok(Ok(())))
}

async fn write_error<T: Transport>(
    gw: &Gateway,
    t: &mut T,
    id: Option<&Value>,
    code: ErrorCode,
    message: &str,
) -> bool {
    gw.metrics.errors.with_label_values(&[code.as_str()]).inc();
    write_now(gw, t, ServerFrame::Error { id, code, message }).await
}

/// Tells a client to reconnect elsewhere, after a random delay that spreads the herd.
async fn write_reconnect<T: Transport>(gw: &Gateway, t: &mut T) {
    let frame = ServerFrame::Reconnect {
        reason: "server draining",
        after_ms: rand::random_range(0..=2000),
    };
    write_now(gw, t, frame).await;
}

/// Waits for the `login` frame and verifies its token; `Err` carries the close code.
async fn login<T: Transport>(
    gw: &Gateway,
    t: &mut T,
    draining: &CancellationToken,
) -> Result<(Identity, Option<u64>, Option<Value>), u16> {
    let deadline = Instant::now() + gw.config.login_timeout;
    let text = loop {
        let inbound = tokio::select! {
            inbound = t.recv() => inbound,
            _ = sleep_until(deadline) => {
                gw.metrics.logins.with_label_values(&["timeout"]).inc();
                write_error(gw, t, None, ErrorCode::Unauthorized, "login timeout").await;
                return Err(close::LOGIN_TIMEOUT);
            }
            _ = draining.cancelled() => {
                write_reconnect(gw, t).await;
                return Err(close::DRAINING);
            }
        };
        match inbound {
            Inbound::Text(text) => break text,
            Inbound::Activity => continue,
            Inbound::Closed => return Err(close::NORMAL),
            Inbound::TooLarge { .. } | Inbound::InvalidUtf8 => {
                gw.metrics.logins.with_label_values(&["not_login"]).inc();
                write_error(
                    gw,
                    t,
                    None,
                    ErrorCode::Unauthorized,
                    "first frame must be login",
                )
                .await;
                return Err(close::UNAUTHORIZED);
            }
        }
    };
    gw.metrics.frames_in.with_label_values(&["login"]).inc();
    // Logging in during the drain delay (readiness already off): send it elsewhere now.
    if !gw.is_accepting() {
        gw.refused("draining");
        write_reconnect(gw, t).await;
        return Err(close::DRAINING);
    }
    let (id, token, dm_since) = match parse_request(&text) {
        Ok(Request {
            id,
            frame: ClientFrame::Login { token, dm_since },
        }) => (id, token, dm_since),
        Ok(Request { id, .. }) | Err((id, _)) => {
            gw.metrics.logins.with_label_values(&["not_login"]).inc();
            write_error(
                gw,
                t,
                id.as_ref(),
                ErrorCode::Unauthorized,
                "first frame must be login",
            )
            .await;
            return Err(close::UNAUTHORIZED);
        }
    };
    match gw.verifier.verify(&token) {
        Ok(identity) => Ok((identity, dm_since, id)),
        Err(err) => {
            gw.metrics.logins.with_label_values(&["invalid"]).inc();
            tracing::debug!(cause = %err, transport = T::KIND, "login refused");
            write_error(
                gw,
                t,
                id.as_ref(),
                ErrorCode::Unauthorized,
                &err.to_string(),
            )
            .await;
            Err(close::UNAUTHORIZED)
        }
    }
}

/// Outcome of writing queued frames.
enum Written {
    Ok,
    /// The client did not take the bytes in time: a slow consumer.
    TimedOut,
    /// The connection is gone.
    Broken,
}

/// A logged-in session's state inside its loop.
struct Session<'a, T: Transport> {
    gw: &'a Arc<Gateway>,
    t: &'a mut T,
    identity: Identity,
    handle: Arc<SessionHandle>,
    rx: mpsc::Receiver<Arc<Delivery>>,
    /// Joined rooms with the highest message seq written for each (drops replay overlap).
    rooms: HashMap<RoomId, u64>,
    /// Highest direct-message seq written.
    dm_seq: u64,
    /// Highest direct-message seq recorded as delivered in the backend.
    dm_marked: u64,
    /// Games this session takes part in, with its role and the highest game seq written.
    games: HashMap<RoomId, (GameRole, u64)>,
    /// Games that ended (their `game.closed` was written); let go after the write.
    ended_games: Vec<RoomId>,
    /// This session put its user in the ranked queue.
    ranked: bool,
    limiter: TokenBucket,
    abuse: TokenBucket,
    last_seen: Instant,
}

/// Registers the session, then runs its loop; returns the close code.
async fn serve<T: Transport>(
    gw: &Arc<Gateway>,
    t: &mut T,
    identity: Identity,
    dm_since: Option<u64>,
    login_id: Option<Value>,
) -> u16 {
    let (tx, rx) = mpsc::channel(gw.config.outbound_queue);
    let registered = match Box::pin(gw.register(&identity, tx, dm_since)).await {
        Ok(r) => r,
        Err(reply) => {
            let (result, code) = match reply.code {
                ErrorCode::Conflict => ("conflict", close::ALREADY_CONNECTED),
                _ if !gw.is_accepting() => ("draining", close::DRAINING),
                _ => ("unavailable", close::TRY_LATER),
            };
            gw.metrics.logins.with_label_values(&[result]).inc();
            write_error(gw, t, login_id.as_ref(), reply.code, &reply.message).await;
            return code;
        }
    };
    gw.metrics.logins.with_label_values(&["ok"]).inc();
    let handle = registered.handle;
    tracing::debug!(session = %handle.id, user = %identity.user, transport = T::KIND, "logged in");
    let mut session = Session {
        gw,
        t,
        identity,
        handle: handle.clone(),
        rx,
        rooms: HashMap::new(),
        dm_seq: registered.dm_after,
        dm_marked: registered.dm_after,
        games: HashMap::new(),
        ended_games: Vec::new(),
        ranked: false,
        limiter: TokenBucket::new(gw.config.rate_limit, gw.config.rate_burst),
        abuse: TokenBucket::new(ABUSE_FORGIVE_PER_S, gw.config.rate_abuse_limit),
        last_seen: Instant::now(),
    };
    let code = session.run().await;
    let games: Vec<(RoomId, GameRole)> = session
        .games
        .iter()
        .map(|(r, (role, _))| (r.clone(), *role))
        .collect();
    let ranked = session.ranked;
    let user = session.identity.user.clone();
    let rooms: Vec<RoomId> = session.rooms.keys().cloned().collect();
    // Frames still queued will never be written: take them off the gauge.
    let pending = session.rx.len();
    session.rx.close();
    gw.metrics.outbound_queued.sub(pending as i64);
    Box::pin(gw.unregister(&handle, &rooms)).await;
    for (room, role) in games {
        match role {
            GameRole::Player => {
                gw.game_player_gone(&room, &user).await;
                gw.game_detach(&handle, &room).await;
            }
            GameRole::Watcher => {
                let _ = gw.game_unwatch(&handle, &room).await;
            }
        }
    }
    if ranked && let Err(err) = gw.rank_leave(&user, Some(&handle.id)).await {
        tracing::debug!(cause = ?err, "leaving the ranked queue on close failed");
    }
    tracing::debug!(session = %handle.id, code, "session closed");
    code
}

impl<T: Transport> Session<'_, T> {
    /// Welcome, then direct messages the user missed.
    async fn greet(&mut self) -> Result<(), u16> {
        let welcome = ServerFrame::Welcome {
            user: self.identity.user.as_str(),
            name: &self.identity.name,
            session: &self.handle.id,
            replica: &self.gw.replica,
            heartbeat_s: self.gw.config.heartbeat.as_secs(),
        };
        if !write_now(self.gw, self.t, welcome).await {
            return Err(close::NORMAL);
        }
        match self.gw.dm_replay(&self.identity.user, self.dm_seq).await {
            Ok(replay) => {
                // A cursor from before a log reset would hide every new message.
                self.dm_seq = self.dm_seq.min(replay.head);
                if !self.write_replay(replay).await {
                    return Err(close::SLOW_CONSUMER);
                }
                self.mark_dms_delivered().await;
            }
            Err(reply) => {
                write_error(
                    self.gw,
                    self.t,
                    None,
                    reply.code,
                    "direct messages not replayed",
                )
                .await;
            }
        }
        Ok(())
    }

    async fn run(&mut self) -> u16 {
        // Boxed: runs once, and should not enlarge the long-lived loop state.
        if let Err(code) = Box::pin(self.greet()).await {
            return code;
        }
        let heartbeat = self.gw.config.heartbeat;
        let idle = self.gw.config.idle_timeout;
        let mut next_ping = Instant::now() + heartbeat;
        let handle = self.handle.clone();
        loop {
            let wake = next_ping.min(self.last_seen + idle);
            tokio::select! {
                biased;
                _ = handle.closed() => return Box::pin(self.closing(handle.close_code())).await,
                Some(first) = self.rx.recv() => {
                    match self.write_queued(first).await {
                        Written::Ok => {
                            for room in std::mem::take(&mut self.ended_games) {
                                self.gw.game_detach(&self.handle, &room).await;
                            }
                            self.mark_dms_delivered().await;
                        }
                        Written::TimedOut => {
                            if self.handle.close(close::SLOW_CONSUMER) {
                                self.gw.metrics.slow_consumer_closes.inc();
                                tracing::info!(session = %self.handle.id, "slow consumer: write timed out");
                            }
                            return self.handle.close_code();
                        }
                        Written::Broken => return close::NORMAL,
                    }
                }
                inbound = self.t.recv() => {
                    self.last_seen = Instant::now();
                    match inbound {
                        Inbound::Text(text) => {
                            // Boxed: frame handling is a large state machine that an idle
                            // connection should not carry inline.
                            if let Some(code) = Box::pin(self.on_text(&text)).await {
                                return code;
                            }
                        }
                        Inbound::Activity => {}
                        Inbound::TooLarge { fatal } => {
                            self.error(None, ErrorCode::TooLarge, "frame too large").await;
                            if fatal {
                                return close::TOO_BIG;
                            }
                        }
                        Inbound::InvalidUtf8 => {
                            self.error(None, ErrorCode::BadRequest, "frame is not valid UTF-8").await;
                        }
                        Inbound::Closed => return close::NORMAL,
                    }
                }
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= self.last_seen + idle {
                        return close::IDLE;
                    }
                    if now >= next_ping {
                        let ping = timeout(self.gw.config.write_timeout, self.t.ping()).await;
                        if !matches!(ping, Ok(Ok(()))) {
                            return close::NORMAL;
                        }
                        next_ping = now + heartbeat;
                    }
                }
            }
        }
    }

    /// Records DMs actually written, so a later login without `dm_since` resumes after
    /// them (queued but unwritten DMs are replayed instead).
    async fn mark_dms_delivered(&mut self) {
        if self.dm_seq > self.dm_marked {
            self.dm_marked = self.dm_seq;
            if let Err(err) = self
                .gw
                .bus
                .mark_delivered(&self.identity.user, self.dm_seq)
                .await
            {
                tracing::debug!(cause = %err, "delivery watermark not saved");
            }
        }
    }

    /// Last words before a requested close.
    async fn closing(&mut self, code: u16) -> u16 {
        if code == close::DRAINING {
            write_reconnect(self.gw, self.t).await;
        }
        code
    }

    /// Writes the first queued frame and whatever else is ready, then flushes once.
    async fn write_queued(&mut self, first: Arc<Delivery>) -> Written {
        self.gw
            .metrics
            .outbound_queue_depth
            .observe((self.rx.len() + 1) as f64);
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match self.rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        self.gw.metrics.outbound_queued.sub(batch.len() as i64);
        let frames: Vec<&Encoded> = batch
            .iter()
            .filter(|d| self.fresh(d.order.as_ref()))
            .map(|d| &d.frame)
            .collect();
        if frames.is_empty() {
            return Written::Ok;
        }
        let t = &mut *self.t;
        let write = async {
            for frame in frames {
                t.feed(frame).await?;
            }
            t.flush().await
        };
        match timeout(self.gw.config.write_timeout, write).await {
            Ok(Ok(())) => Written::Ok,
            Ok(Err(_)) => Written::Broken,
            Err(_) => Written::TimedOut,
        }
    }

    /// False for a frame already written by a replay or for a room already left.
    fn fresh(&mut self, order: Option<&Ordered>) -> bool {
        match order {
            None => true,
            Some(Ordered::Room(room, seq)) => match self.rooms.get_mut(room) {
                Some(last) if *seq > *last => {
                    *last = *seq;
                    true
                }
                _ => false,
            },
            Some(Ordered::Game(room, seq)) => match self.games.get_mut(room) {
                Some((_, last)) if *seq > *last => {
                    *last = *seq;
                    true
                }
                _ => false,
            },
            Some(Ordered::GameOver(room)) => {
                if self.games.remove(room).is_some() {
                    self.ended_games.push(room.clone());
                    true
                } else {
                    false
                }
            }
            Some(Ordered::Direct(seq)) => {
                if *seq > self.dm_seq {
                    self.dm_seq = *seq;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Writes replayed events in order, skipping what this session already has.
    async fn write_replay(&mut self, replay: Replay) -> bool {
        let deliveries: Vec<Delivery> = replay
            .events
            .iter()
            .filter_map(Delivery::for_event)
            .collect();
        if deliveries.is_empty() {
            return true;
        }
        let mut frames = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            if self.fresh(d.order.as_ref()) {
                frames.push(&d.frame);
            }
        }
        let t = &mut *self.t;
        let write = async {
            for frame in &frames {
                t.feed(frame).await?;
            }
            t.flush().await
        };
        let ok = matches!(
            timeout(self.gw.config.write_timeout, write).await,
            Ok(Ok(()))
        );
        if ok {
            for frame in &frames {
                self.gw
                    .metrics
                    .frames_out
                    .with_label_values(&[frame.kind()])
                    .inc();
            }
        }
        ok
    }

    /// Writes a reply; a client too slow to take it is closed like any slow consumer.
    async fn reply(&mut self, frame: ServerFrame<'_>) {
        if !write_now(self.gw, self.t, frame).await && self.handle.close(close::SLOW_CONSUMER) {
            self.gw.metrics.slow_consumer_closes.inc();
        }
    }

    async fn error(&mut self, id: Option<&Value>, code: ErrorCode, message: &str) {
        self.gw
            .metrics
            .errors
            .with_label_values(&[code.as_str()])
            .inc();
        self.reply(ServerFrame::Error { id, code, message }).await;
    }

    async fn ok(&mut self, id: Option<&Value>, detail: OkDetail<'_>) {
        self.reply(ServerFrame::Ok { id, detail }).await;
    }

    /// Handles one inbound text frame; `Some(code)` ends the session.
    async fn on_text(&mut self, text: &str) -> Option<u16> {
        let now = std::time::Instant::now();
        if !self.limiter.try_take(now) {
            self.gw.metrics.rate_limited.inc();
            if !self.abuse.try_take(now) {
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

    async fn handle_frame(&mut self, id: Option<&Value>, frame: ClientFrame) -> Result<(), Reply> {
        let gw = self.gw;
        match frame {
            ClientFrame::Login { .. } => {
                return Err(Reply::new(ErrorCode::BadRequest, "already logged in"));
            }
            ClientFrame::Join { room, since } => return self.join(id, room, since).await,
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
            ClientFrame::Publish { room, data, echo } => {
                if !self.rooms.contains_key(&room) {
                    return Err(Reply::new(
                        ErrorCode::Forbidden,
                        "join the room before publishing",
                    ));
                }
                let name = self.handle.name();
                let seq = gw
                    .publish(&room, &self.identity.user, &name, data, echo)
                    .await?;
                self.ok(id, OkDetail::Seq { seq }).await;
            }
            ClientFrame::Send { to, data } => {
                let name = self.handle.name();
                let seq = gw
                    .send_direct(&to, &self.identity.user, &name, data)
                    .await?;
                self.ok(id, OkDetail::Seq { seq }).await;
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
            ClientFrame::Ping => {
                self.reply(ServerFrame::Pong { id }).await;
            }
            ClientFrame::Pong => {}
            ClientFrame::GameCreate {} => {
                let room = gw.game_create(&self.handle).await?;
                self.games.insert(room.clone(), (GameRole::Player, 0));
                let owner = self.identity.user.clone();
                let frame = ServerFrame::GameCreated {
                    id,
                    room: room.as_str(),
                    owner: owner.as_str(),
                };
                self.reply(frame).await;
            }
            ClientFrame::GameJoin { room, since } => {
                let state = gw.game_join(&self.handle, &room).await?;
                self.games
                    .insert(room.clone(), (GameRole::Player, since.unwrap_or(0)));
                self.game_seated(id, &room, GameRole::Player, &state, since)
                    .await?;
            }
            ClientFrame::GameWatch { room, since } => {
                if self.games.contains_key(&room) {
                    return Err(Reply::new(ErrorCode::Conflict, "already in this game"));
                }
                let state = gw.game_watch(&self.handle, &room).await?;
                self.games
                    .insert(room.clone(), (GameRole::Watcher, since.unwrap_or(0)));
                self.game_seated(id, &room, GameRole::Watcher, &state, since)
                    .await?;
            }
            ClientFrame::GameSend { room, to, data } => {
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
                let seq = gw.game_send(&room, &self.identity.user, to, data).await?;
                self.ok(id, OkDetail::Seq { seq }).await;
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
                let Some(state) = gw.games.get(&room).await? else {
                    return Err(Reply::new(ErrorCode::NotFound, "no such game"));
                };
                if state.owner != self.identity.user {
                    return Err(Reply::new(ErrorCode::Forbidden, "only the owner can close"));
                }
                gw.game_end(&room, reason::CLOSED).await?;
                self.ok(
                    id,
                    OkDetail::Left {
                        room: room.as_str(),
                    },
                )
                .await;
            }
            ClientFrame::RankJoin {} => {
                let player = Waiting {
                    user: self.identity.user.clone(),
                    rating: self.identity.rating,
                    since_ms: crate::auth::unix_millis(),
                };
                gw.rank_join(&player, &self.handle.id).await?;
                self.ranked = true;
                let frame = ServerFrame::RankQueued {
                    id,
                    rating: self.identity.rating,
                };
                self.reply(frame).await;
            }
            ClientFrame::RankLeave {} => {
                gw.rank_leave(&self.identity.user, None).await?;
                self.ranked = false;
                self.ok(id, OkDetail::None {}).await;
            }
        }
        Ok(())
    }

    /// After `game.join` / `game.watch`: replays what was missed, then answers `ok` with
    /// where the caller stands.
    async fn game_seated(
        &mut self,
        id: Option<&Value>,
        room: &RoomId,
        role: GameRole,
        state: &crate::backend::GameState,
        since: Option<u64>,
    ) -> Result<(), Reply> {
        let (recovered, replayed) = self.game_replay(room, role, since).await?;
        let detail = OkDetail::Game {
            room: room.as_str(),
            role,
            owner: state.owner.as_str(),
            opponent: state.opponent.as_ref().map(|u| u.as_str()),
            started: state.started,
            recovered,
            replayed,
        };
        self.ok(id, detail).await;
        Ok(())
    }

    /// Replays a game's messages after `since` that this participant may see.
    async fn game_replay(
        &mut self,
        room: &RoomId,
        role: GameRole,
        since: Option<u64>,
    ) -> Result<(Option<bool>, Option<usize>), Reply> {
        let Some(since) = since else {
            return Ok((None, None));
        };
        let replay = self
            .gw
            .bus
            .replay(
                &Topic::Game(room.clone()),
                since,
                self.gw.config.replay_limit,
            )
            .await?;
        if let Some((_, last)) = self.games.get_mut(room) {
            *last = (*last).min(replay.head);
        }
        let user = self.identity.user.clone();
        let events: Vec<Event> = replay
            .events
            .into_iter()
            .filter(|e| match e {
                Event::GameMessage { from, to, .. } => to.reaches(from, role, &user),
                _ => true,
            })
            .collect();
        let count = events.len();
        let visible = Replay {
            events,
            complete: replay.complete,
            head: replay.head,
        };
        if !self.write_replay(visible).await {
            return Err(Reply::new(ErrorCode::Internal, "replay write failed"));
        }
        Ok((Some(replay.complete), Some(count)))
    }

    async fn join(
        &mut self,
        id: Option<&Value>,
        room: RoomId,
        since: Option<u64>,
    ) -> Result<(), Reply> {
        if !self.identity.may_join(room.as_str()) {
            return Err(Reply::new(
                ErrorCode::Forbidden,
                "token does not allow this room",
            ));
        }
        let newly = !self.rooms.contains_key(&room);
        if newly {
            if self.rooms.len() >= self.gw.config.max_rooms_per_session {
                return Err(Reply::new(
                    ErrorCode::Forbidden,
                    "too many rooms for one session",
                ));
            }
            self.gw.join(&self.handle, &room).await?;
            self.rooms.insert(room.clone(), since.unwrap_or(0));
        }
        let (recovered, replayed) = match since {
            Some(since) => {
                if let Some(last) = self.rooms.get_mut(&room) {
                    *last = (*last).min(since);
                }
                let replay = self.gw.room_replay(&room, since).await?;
                if let Some(last) = self.rooms.get_mut(&room) {
                    // A cursor from before a log reset would hide every new message.
                    *last = (*last).min(replay.head);
                }
                let complete = replay.complete;
                let count = replay.events.len();
                if !self.write_replay(replay).await {
                    return Err(Reply::new(ErrorCode::Internal, "replay write failed"));
                }
                (Some(complete), Some(count))
            }
            None => (None, None),
        };
        let detail = OkDetail::Joined {
            room: room.as_str(),
            recovered,
            replayed,
        };
        self.ok(id, detail).await;
        Ok(())
    }
}
