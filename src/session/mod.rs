//! One client connection's life, whatever the transport: first-frame login with a
//! timeout (`login`), registration, one `select!` loop over inbound frames (handled in
//! `dispatch`), the outbound queue (written by `writer`), heartbeat/idle timers and close
//! requests, then clean teardown.

mod dispatch;
mod expiry;
mod login;
mod ranked;
mod ratelimit;
mod writer;

use dispatch::{rebase, reset_notice};
use login::{cursor, login, write_error, write_now, write_reconnect};
use ranked::RankWait;
use writer::Written;

use crate::auth::Identity;
use crate::backend::Replay;
use crate::event::{Advance, Delivery, Epoch, Event, Ordered, Position};
use crate::features::reason;
use crate::gateway::{ConnectionSlot, Gateway, PendingLogin};
use crate::hub::SessionHandle;
use crate::per_ip::IpSlot;
use crate::protocol::close::CloseCode;
use crate::protocol::{
    ClientFrame, Encoded, ErrorCode, GameRole, OkDetail, Reply, Request, RoomId, ServerFrame,
    StreamKind, close, parse_request,
};
use crate::sparse::SmallMap;
use crate::transport::{Inbound, Transport};
use ratelimit::{Rate, TokenBucket};
use serde_json::Value;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

/// Frames written per wake-up of the writer before one flush.
const WRITE_BATCH: usize = 64;
/// Rate-limited frames forgiven per second when judging sustained abuse.
const ABUSE_FORGIVE_PER_S: f64 = 10.0;

/// Runs a connection to its end. `draining` fires when the replica shuts down.
/// `pending` is the connection's place among those not logged in yet, given back once
/// the login is decided; `ip_slot` is its place in its address's count and `counted` its
/// place in the connection count, both held to the end.
///
/// A plain fn returning an `async move` block: an `async fn` would copy `transport`
/// from its parameter into a local, and this future lives as long as the connection.
#[allow(clippy::manual_async_fn)]
pub fn run<T: Transport>(
    gw: Arc<Gateway>,
    mut transport: T,
    draining: CancellationToken,
    pending: PendingLogin,
    ip_slot: Option<IpSlot>,
    counted: ConnectionSlot,
) -> impl Future<Output = ()> + Send {
    async move {
        // Phases that run once are boxed so the long-lived loop state stays small.
        let code = match Box::pin(begin(&gw, &mut transport, &draining, pending)).await {
            Ok(session) => session.await,
            Err(code) => code,
        };
        gw.metrics
            .closes
            .with_label_values(&[&code.to_string()])
            .inc();
        Box::pin(goodbye(&gw, &mut transport, code)).await;
        drop(counted);
        drop(ip_slot);
    }
}

/// Logs in and registers; the session comes back boxed, ready to run. A phase of its
/// own (boxed by the caller) so that the login's result, 160 bytes, is not kept in the
/// connection's future for its whole life. Two boxes: the session's long-lived future
/// then holds the session once, not also the registration's arguments and results.
async fn begin<'a, T: Transport>(
    gw: &'a Arc<Gateway>,
    t: &'a mut T,
    draining: &CancellationToken,
    pending: PendingLogin,
) -> Result<Pin<Box<impl Future<Output = CloseCode> + Send + 'a>>, CloseCode> {
    let login = Box::pin(login(gw, t, draining)).await;
    drop(pending);
    let (identity, dm_since, id) = login?;
    // (The started session goes straight into its box: a match on `start`'s result
    // would keep that result alive beside it.)
    Box::pin(start(gw, t, identity, dm_since, id))
        .await
        .map(|(session, inbox)| Box::pin(session.live(inbox)))
}

/// Longest a close may take: sending the close frame and waiting for the client's side.
const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

/// Sends the close within a short deadline (never the full write timeout: a slow
/// consumer is being cut), then reads and drops what the client still sends until it
/// closes too. Closing a socket with unread input makes the kernel answer with a reset
/// that can destroy the close frame before the client reads it.
async fn goodbye<T: Transport>(gw: &Gateway, t: &mut T, code: CloseCode) {
    let deadline = gw.config.write_timeout.min(CLOSE_DEADLINE);
    let _ = timeout(deadline, async {
        if t.close(code, code.reason()).await.is_ok() {
            while !matches!(t.recv().await, Inbound::Closed) {}
        }
    })
    .await;
}

/// Turns a connection away before any session starts (the replica is at its connection
/// cap): an `unavailable` error, then close 1013 so the client tries again elsewhere.
pub async fn refuse<T: Transport>(gw: Arc<Gateway>, mut transport: T, message: &str) {
    write_error(&gw, &mut transport, None, ErrorCode::Unavailable, message).await;
    goodbye(&gw, &mut transport, close::TRY_LATER).await;
}
/// A logged-in session's state inside its loop.
struct Session<'a, T: Transport> {
    gw: &'a Arc<Gateway>,
    t: &'a mut T,
    identity: Identity,
    handle: Arc<SessionHandle>,
    /// Joined rooms with the position of the last message written for each (drops
    /// replay overlap, notices a log that started again).
    rooms: SmallMap<RoomId, Position>,
    /// Last direct message written.
    dm: Position,
    /// Last direct message recorded as delivered in the backend.
    dm_marked: Position,
    /// Games this session takes part in, with its role and the last game message written.
    games: SmallMap<RoomId, (GameRole, Position)>,
    /// Games that ended (their `game.closed` was written); let go after the write.
    ended_games: Vec<RoomId>,
    /// Set while this session's user waits in the ranked queue (joined from here).
    /// Boxed: rarely set, and the session is part of every connection's memory.
    ranked: Option<Box<RankWait>>,
    limiter: TokenBucket,
    /// Joins of rooms the session is not in (room churn costs memory and Redis keys).
    joins: TokenBucket,
    abuse: TokenBucket,
    last_seen: Instant,
    /// When the token runs out (`exp` + leeway) unless `refresh` moves it.
    expires_at: Instant,
}

/// Registers the session; on refusal, tells the client why and returns the close code.
/// The session comes back with the inbox its welcome carries.
async fn start<'a, T: Transport>(
    gw: &'a Arc<Gateway>,
    t: &'a mut T,
    identity: Identity,
    dm_since: Option<Position>,
    login_id: Option<Value>,
) -> Result<(Session<'a, T>, Box<Replay>), CloseCode> {
    let registered = match Box::pin(gw.register(&identity, dm_since)).await {
        Ok(r) => r,
        // Refused because the replica drains (the drain delay): sent elsewhere at once.
        Err(_) if !gw.is_accepting() => {
            gw.metrics.logins.with_label_values(&["draining"]).inc();
            gw.refused("draining");
            write_reconnect(gw, t).await;
            return Err(close::DRAINING);
        }
        Err(reply) => {
            let (result, code) = match reply.code {
                ErrorCode::Conflict => ("conflict", close::ALREADY_CONNECTED),
                _ => ("unavailable", close::TRY_LATER),
            };
            gw.metrics.logins.with_label_values(&[result]).inc();
            write_error(gw, t, login_id.as_ref(), reply.code, &reply.message).await;
            return Err(code);
        }
    };
    gw.metrics.logins.with_label_values(&["ok"]).inc();
    let handle = registered.handle;
    let expires_at = expiry::deadline(identity.expires, gw.config.jwt_leeway).1;
    tracing::debug!(session = %handle.id, user = %identity.user, transport = T::KIND, "logged in");
    let session = Session {
        gw,
        t,
        identity,
        handle,
        rooms: SmallMap::default(),
        dm: registered.dm_after.clone(),
        dm_marked: registered.dm_after,
        games: SmallMap::default(),
        ended_games: Vec::new(),
        ranked: None,
        limiter: TokenBucket::full(frame_rate(gw)),
        joins: TokenBucket::full(join_rate(gw)),
        abuse: TokenBucket::full(abuse_rate(gw)),
        last_seen: Instant::now(),
        expires_at,
    };
    Ok((session, registered.inbox))
}

/// Inbound frames per second (and burst) a session may send.
fn frame_rate(gw: &Gateway) -> Rate {
    Rate {
        per_s: gw.config.rate_limit,
        burst: gw.config.rate_burst,
    }
}

/// Refused frames, net of those forgiven per second, before the session is closed.
fn abuse_rate(gw: &Gateway) -> Rate {
    Rate {
        per_s: ABUSE_FORGIVE_PER_S,
        burst: gw.config.rate_abuse_limit,
    }
}

/// New rooms per second a session may join (room churn costs memory and Redis keys).
fn join_rate(gw: &Gateway) -> Rate {
    Rate {
        per_s: gw.config.join_rate,
        burst: gw.config.max_rooms_per_session as f64,
    }
}

impl<'a, T: Transport> Session<'a, T> {
    /// Greets, runs the loop, then lets go of everything the session held; returns the
    /// close code. Owns the session: this future lives as long as the connection. A
    /// plain fn returning an `async move` block, as `run` above: an `async fn` would
    /// hold the session twice (the parameter and its local copy).
    #[allow(clippy::manual_async_fn)]
    fn live(mut self, inbox: Box<Replay>) -> impl Future<Output = CloseCode> + Send + 'a {
        async move {
            // Boxed: runs once, and should not enlarge the long-lived loop state.
            let code = match Box::pin(self.greet(inbox)).await {
                Ok(()) => self.run().await,
                Err(code) => code,
            };
            Box::pin(self.finish(code)).await
        }
    }

    /// Unregisters the session, leaves its games and the ranked queue.
    async fn finish(self, code: CloseCode) -> CloseCode {
        let (gw, handle) = (self.gw, &self.handle);
        // Frames still queued will never be written: take them off the gauges (closed
        // first, so nothing arrives while they are counted).
        let (frames, bytes) = handle.outbox.close();
        gw.metrics.outbound_queued.sub(frames as i64);
        gw.metrics.outbound_queued_bytes.sub(bytes as i64);
        let _place = gw.teardown_permit().await;
        let rooms: Vec<RoomId> = self.rooms.keys().cloned().collect();
        Box::pin(gw.unregister(handle, &rooms)).await;
        let user = &self.identity.user;
        for (room, (role, _)) in &self.games {
            match role {
                GameRole::Player => {
                    // Detached first: the seat stays only if another local device plays.
                    gw.game_detach(handle, room).await;
                    gw.game_player_gone(room, user).await;
                }
                GameRole::Watcher => {
                    let _ = gw.game_unwatch(handle, room).await;
                }
            }
        }
        if self.ranked.is_some()
            && let Err(err) = gw.rank_leave(user, Some(&handle.id)).await
        {
            tracing::debug!(cause = ?err, "leaving the ranked queue on close failed");
        }
        tracing::debug!(session = %handle.id, %code, "session closed");
        code
    }
}

impl<T: Transport> Session<'_, T> {
    /// Welcome, then the direct messages the user missed (read at registration).
    async fn greet(&mut self, inbox: Box<Replay>) -> Result<(), CloseCode> {
        rebase(&mut self.dm, &inbox);
        let welcome = ServerFrame::Welcome {
            user: self.identity.user.as_str(),
            name: &self.identity.name,
            session: &self.handle.id,
            replica: &self.gw.replica,
            heartbeat_s: self.gw.config.heartbeat.as_secs(),
            dm_epoch: self.dm.epoch.wire(),
        };
        if !write_now(self.gw, self.t, welcome).await {
            return Err(close::NORMAL);
        }
        let notice = inbox
            .reset
            .then(|| reset_notice(StreamKind::Dm, None, &inbox.epoch));
        if !self.write_replay(&inbox.events, notice).await {
            return Err(close::SLOW_CONSUMER);
        }
        self.mark_dms_delivered().await;
        Ok(())
    }

    async fn run(&mut self) -> CloseCode {
        let heartbeat = self.gw.config.heartbeat;
        let idle = self.gw.config.idle_timeout;
        let mut next_ping = Instant::now() + heartbeat;
        let handle = self.handle.clone();
        loop {
            // One timer for heartbeat, idle, token expiry and the ranked queue.
            let mut wake = next_ping.min(self.last_seen + idle).min(self.expires_at);
            if let Some(rank) = &self.ranked {
                wake = wake.min(rank.next_wake());
            }
            tokio::select! {
                biased;
                _ = handle.closed() => return Box::pin(self.closing(handle.close_code())).await,
                _ = handle.outbox.ready() => {
                    match self.write_queued().await {
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
                        Written::Interrupted => {
                            return Box::pin(self.closing(handle.close_code())).await;
                        }
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
                        // Rare paths below are boxed too: the loop's future is as large as
                        // its largest inline await, for the connection's whole life.
                        Inbound::Control => {
                            if let Some(code) = Box::pin(self.on_control()).await {
                                return code;
                            }
                        }
                        Inbound::TooLarge { fatal } => {
                            Box::pin(self.error(None, ErrorCode::TooLarge, "frame too large")).await;
                            if fatal {
                                return close::TOO_BIG;
                            }
                        }
                        Inbound::InvalidUtf8 { fatal } => {
                            let error = self.error(None, ErrorCode::BadRequest, "frame is not valid UTF-8");
                            Box::pin(error).await;
                            if fatal {
                                return close::INVALID_DATA;
                            }
                        }
                        Inbound::ProtocolViolation => return close::PROTOCOL_ERROR,
                        Inbound::Closed => return close::NORMAL,
                    }
                }
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= self.expires_at
                        && let Some(code) = Box::pin(self.on_expiry_timer()).await
                    {
                        return code;
                    }
                    if self.ranked.as_ref().is_some_and(|r| now >= r.next_wake()) {
                        Box::pin(self.rank_tick(now)).await;
                    }
                    if now >= self.last_seen + idle {
                        return close::IDLE;
                    }
                    if now >= next_ping {
                        let ping = Box::pin(timeout(self.gw.config.write_timeout, self.t.ping())).await;
                        if !matches!(ping, Ok(Ok(()))) {
                            return close::NORMAL;
                        }
                        next_ping = now + heartbeat;
                    }
                }
            }
        }
    }

    /// Last words before a requested close.
    async fn closing(&mut self, code: CloseCode) -> CloseCode {
        if code == close::DRAINING {
            write_reconnect(self.gw, self.t).await;
        }
        code
    }
}
