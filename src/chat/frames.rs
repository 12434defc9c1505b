//! Server frames become printed lines and state: events as they come, and the
//! replies to our requests, matched by id to what was asked.

use super::Chat;
use super::commands::OnlineWatch;
use super::render;
use super::state::{Game, Pending};
use crate::client::{Client, Frame, OkReply, Request, ServerEvent};
use crate::protocol::GameRole;
use serde_json::Value;
use tokio::time::Instant;

impl Chat {
    /// Handles one server frame; hands a `reconnect` back to the caller.
    pub(super) async fn on_frame(
        &mut self,
        client: &mut Client,
        frame: &Frame,
    ) -> Option<ServerEvent> {
        let event = match frame.event() {
            Ok(event) => event,
            Err(err) => {
                eprintln!("switchboard chat: ignoring a bad frame: {err}");
                return None;
            }
        };
        let pending = frame
            .id()
            .and_then(Value::as_str)
            .and_then(|id| self.state.answered(id));
        if pending.is_some() {
            self.last_reply = Instant::now();
        }
        match event {
            ServerEvent::Ok(_)
            | ServerEvent::Error { .. }
            | ServerEvent::Presence { .. }
            | ServerEvent::Who { .. }
            | ServerEvent::GameCreated { .. }
            | ServerEvent::RankQueued { .. }
            | ServerEvent::Pong { .. } => self.on_reply(pending, event),
            ServerEvent::Reconnect { .. } => return Some(event),
            ServerEvent::Message {
                ref room, seq, ts, ..
            } => {
                if !self.state.fresh_message(room, seq) {
                    return None;
                }
                let lines = render::event(&event, &self.state.me);
                match self
                    .state
                    .rooms
                    .get_mut(room)
                    .and_then(|r| r.history.as_mut())
                {
                    Some(history) => history.hold(lines),
                    None => {
                        for (_, line) in lines {
                            self.out.line(Some(ts), &line);
                        }
                    }
                }
            }
            ServerEvent::Direct { seq, .. } if !self.state.fresh_direct(seq) => {}
            ServerEvent::GameMessage { ref room, seq, .. }
                if !self.state.fresh_game_message(room, seq) => {}
            // `rank.matched` shares the user's stream (and its seqs) with direct messages.
            ServerEvent::RankMatched { seq, .. } if seq > 0 && !self.state.fresh_direct(seq) => {}
            ServerEvent::RankMatched { ref room, .. } => {
                self.print(&event);
                if std::mem::take(&mut self.state.queued) {
                    let pending = Pending::GameJoin {
                        room: room.clone(),
                        watch: false,
                        resume: false,
                    };
                    self.send(client, Request::game_join(room.clone()), pending)
                        .await;
                }
            }
            ServerEvent::RankTimeout { .. } => {
                self.print(&event);
                self.state.queued = false;
            }
            ServerEvent::GameClosed { ref room, .. } => {
                self.print(&event);
                if self.state.game.as_ref().is_some_and(|g| &g.room == room) {
                    self.state.game = None;
                }
            }
            ServerEvent::StreamReset {
                ref stream,
                ref room,
                ref epoch,
            } => {
                self.state.stream_reset(stream, room.as_deref(), epoch);
                self.print(&event);
            }
            ServerEvent::Unknown(value) => {
                eprintln!("switchboard chat: unknown frame {value}");
            }
            event => self.print(&event),
        }
        None
    }

    fn print(&self, event: &ServerEvent) {
        for (ts, line) in render::event(event, &self.state.me) {
            self.out.line(ts, &line);
        }
    }

    /// A reply: to one of our requests (`pending`), or an error tied to none.
    fn on_reply(&mut self, pending: Option<Pending>, event: ServerEvent) {
        if let ServerEvent::Error { code, message, .. } = &event {
            self.out.now(&render::error(code, message));
            if let Some(pending) = pending {
                self.failed(pending);
            }
            return;
        }
        let Some(pending) = pending else {
            return;
        };
        let ok = match event {
            ServerEvent::Ok(ok) => ok,
            ServerEvent::Presence {
                room,
                members,
                count,
                ..
            } => return self.out.now(&render::presence(&room, &members, count)),
            ServerEvent::Who { users, count, .. } => {
                return self.out.now(&render::who(&users, count));
            }
            ServerEvent::GameCreated { room, epoch, .. } => {
                self.out.now(&format!(
                    "* game created: {room}; others can /game join or /game watch it"
                ));
                self.state.game = Some(Game {
                    room,
                    role: GameRole::Player,
                    seq: None,
                    epoch,
                });
                return;
            }
            ServerEvent::RankQueued { rating, .. } => {
                if matches!(pending, Pending::RankJoin { resume: false }) {
                    self.out
                        .now(&format!("* looking for a ranked match (rating {rating})"));
                }
                return;
            }
            _ => return,
        };
        self.succeeded(pending, ok);
    }

    fn succeeded(&mut self, pending: Pending, ok: OkReply) {
        if let Pending::Join { room, .. } = &pending
            && let Some(r) = self.state.rooms.get_mut(room)
        {
            r.epoch = ok.epoch.clone();
        }
        match pending {
            Pending::Join {
                room,
                resume: false,
            } => {
                let history = self
                    .state
                    .rooms
                    .get_mut(&room)
                    .and_then(|r| r.history.take());
                let history = history.unwrap_or_default();
                for (ts, line) in &history.lines {
                    self.out.line(*ts, line);
                }
                self.state.current = Some(room.clone());
                if history.count > history.lines.len() {
                    self.out.now(&format!(
                        "* you joined {room} (showing the last {} of {} messages)",
                        history.lines.len(),
                        history.count
                    ));
                } else {
                    self.out.now(&format!("* you joined {room}"));
                }
            }
            Pending::Join { room, resume: true } => {
                let replayed = ok.replayed.unwrap_or(0);
                let recovered = ok.recovered.unwrap_or(true);
                if !recovered && replayed == 0 {
                    self.state.history_lost(&room);
                }
                self.resumed(Some(render::resumed(&room, replayed, recovered)));
            }
            Pending::Leave { room } => {
                self.state.rooms.remove(&room);
                let current = self.state.current.clone();
                self.state.pick_current(current.as_deref());
                self.out.now(&format!("* you left {room}"));
            }
            Pending::Send { to, text } => self
                .out
                .now(&format!("DM to {to}: {}", render::clean(&text))),
            Pending::Rename => {
                let name = ok.name.unwrap_or_default();
                self.out
                    .now(&format!("* you are now {}", render::clean(&name)));
            }
            Pending::Watch(watch) => {
                let line = match &watch {
                    OnlineWatch::All => "* watching who comes online: everyone".to_owned(),
                    OnlineWatch::Users(users) => {
                        format!("* watching who comes online: {}", users.join(", "))
                    }
                    OnlineWatch::Off => "* no longer watching who comes online".to_owned(),
                };
                let resumed = self.state.online.as_ref() == Some(&watch);
                self.state.online = (watch != OnlineWatch::Off).then_some(watch);
                if !resumed {
                    self.out.now(&line);
                }
            }
            Pending::GameJoin {
                room,
                watch,
                resume,
            } => {
                let role = ok.role.unwrap_or(if watch {
                    GameRole::Watcher
                } else {
                    GameRole::Player
                });
                let seq = match &self.state.game {
                    Some(g) if g.room == room && g.epoch == ok.epoch => g.seq,
                    _ => None,
                };
                let epoch = ok.epoch.clone();
                if resume {
                    let what = format!("game {}", render::short_game(&room));
                    let part = render::resumed(
                        &what,
                        ok.replayed.unwrap_or(0),
                        ok.recovered.unwrap_or(true),
                    );
                    self.resumed(Some(part));
                } else {
                    self.out.now(&render::game_joined(&ok, &room));
                }
                self.state.game = Some(Game {
                    room,
                    role,
                    seq,
                    epoch,
                });
            }
            Pending::GameSend { room, shown } => {
                if let Some(line) = shown {
                    // Not echoed: this seq is ours to remember.
                    if let (Some(seq), Some(g)) = (ok.seq, self.state.game.as_mut())
                        && g.room == room
                    {
                        g.seq = Some(g.seq.map_or(seq, |s| s.max(seq)));
                    }
                    self.out.now(&render::clean(&line));
                }
            }
            Pending::GameLeave { room } => {
                self.out
                    .now(&format!("* you left game {}", render::short_game(&room)));
                if self.state.game.as_ref().is_some_and(|g| g.room == room) {
                    self.state.game = None;
                }
            }
            Pending::RankLeave => {
                self.state.queued = false;
                self.out.now("* left the ranked queue");
            }
            Pending::Publish
            | Pending::Broadcast
            | Pending::Presence
            | Pending::Who
            | Pending::GameCreate
            | Pending::GameClose
            | Pending::RankJoin { .. } => {}
        }
    }

    fn failed(&mut self, pending: Pending) {
        match pending {
            Pending::Join { room, resume } => {
                self.state.rooms.remove(&room);
                let current = self.state.current.clone();
                self.state.pick_current(current.as_deref());
                if resume {
                    self.resumed(Some(format!("{room}: not rejoined")));
                }
            }
            Pending::GameJoin { room, resume, .. } => {
                if self.state.game.as_ref().is_some_and(|g| g.room == room) && resume {
                    self.state.game = None;
                }
                if resume {
                    let what = render::short_game(&room).to_owned();
                    self.resumed(Some(format!("game {what}: not rejoined")));
                }
            }
            Pending::RankJoin { .. } => self.state.queued = false,
            _ => {}
        }
    }

    /// One resume reply is in; prints the summary after the last.
    fn resumed(&mut self, part: Option<String>) {
        if let Some(parts) = self.state.resumed(part) {
            if parts.is_empty() {
                self.out.now("* reconnected");
            } else {
                self.out
                    .now(&format!("* reconnected (resumed {})", parts.join("; ")));
            }
        }
    }
}
