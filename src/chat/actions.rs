//! Input lines become requests: each `/command` (or plain text) is checked against
//! what the client knows (current room, current game) and sent with an id to await.

use super::Chat;
use super::commands::{self, Action, GameAction, OnlineWatch};
use super::render;
use super::state::{History, Pending, Room};
use crate::client::{Client, Request};
use crate::protocol::GameTarget;
use serde_json::{Value, json};
use tokio::time::Instant;

/// What to do after a line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Go,
    Quit,
    /// The connection failed while sending: keep the line for the next session.
    Unsent,
}

const NO_ROOM: &str = "! not in a room: /join ROOM first";
const NO_GAME: &str = "! not in a game: /game create, /game join ID or /game watch ID";

pub(super) fn watch_request(watch: &OnlineWatch) -> Request {
    match watch {
        OnlineWatch::All => Request::watch_all(),
        OnlineWatch::Users(users) => Request::watch_users(users.iter().cloned()),
        OnlineWatch::Off => Request::OnlineUnwatch,
    }
}

fn text(t: &str) -> Value {
    json!({ "text": t })
}

impl Chat {
    /// Sends `req` with a fresh id, remembering what it was; `false` when the
    /// connection failed (the request is forgotten).
    pub(super) async fn send(&mut self, client: &mut Client, req: Request, what: Pending) -> bool {
        let id = self.state.expect(what);
        self.sent_at = Instant::now();
        let mut frame = match serde_json::to_value(&req) {
            Ok(frame) => frame,
            Err(err) => {
                self.state.answered(&id);
                eprintln!("switchboard chat: cannot encode {req:?}: {err}");
                return true;
            }
        };
        if let Some(fields) = frame.as_object_mut() {
            fields.insert("id".into(), Value::from(id.clone()));
        }
        match client.send(&frame).await {
            Ok(()) => true,
            Err(err) => {
                self.state.answered(&id);
                eprintln!("switchboard chat: send failed: {err}");
                false
            }
        }
    }

    /// Handles one input line.
    pub(super) async fn on_line(&mut self, client: &mut Client, line: &str) -> Flow {
        let action = match commands::parse(line) {
            Ok(action) => action,
            Err(err) => {
                self.out.now(&format!("! {err}"));
                return Flow::Go;
            }
        };
        let (req, what) = match action {
            Action::Nothing => return Flow::Go,
            Action::Quit => return Flow::Quit,
            Action::Help => {
                self.help();
                return Flow::Go;
            }
            Action::Rooms => {
                self.rooms();
                return Flow::Go;
            }
            Action::Say(t) => match &self.state.current {
                Some(room) => (Request::publish(room.clone(), text(&t)), Pending::Publish),
                None => return self.complain(NO_ROOM),
            },
            Action::Join(room) => {
                if self
                    .state
                    .rooms
                    .get(&room)
                    .is_some_and(|r| r.history.is_none())
                {
                    self.state.current = Some(room.clone());
                    self.out.now(&format!("* talking in {room}"));
                    return Flow::Go;
                }
                self.state
                    .rooms
                    .entry(room.clone())
                    .or_insert_with(|| Room {
                        seq: None,
                        epoch: None,
                        history: Some(History::default()),
                    });
                let pending = Pending::Join {
                    room: room.clone(),
                    resume: false,
                };
                (Request::join_since(room, 0), pending)
            }
            Action::Leave(room) => match room.or_else(|| self.state.current.clone()) {
                Some(room) => (Request::leave(room.clone()), Pending::Leave { room }),
                None => return self.complain(NO_ROOM),
            },
            Action::Msg { to, text: t } => (
                Request::direct(to.clone(), text(&t)),
                Pending::Send { to, text: t },
            ),
            Action::Who => (Request::who(), Pending::Who),
            Action::Presence(room) => match room.or_else(|| self.state.current.clone()) {
                Some(room) => (Request::presence(room), Pending::Presence),
                None => return self.complain(NO_ROOM),
            },
            Action::Name(name) => (Request::rename(name), Pending::Rename),
            Action::Broadcast(t) => (Request::broadcast(text(&t)), Pending::Broadcast),
            Action::Rank(true) => {
                self.state.queued = true;
                (Request::RankJoin, Pending::RankJoin { resume: false })
            }
            Action::Rank(false) => (Request::RankLeave, Pending::RankLeave),
            Action::Online(watch) => (watch_request(&watch), Pending::Watch(watch)),
            Action::Game(game) => match self.game_request(game) {
                Some(request) => request,
                None => return self.complain(NO_GAME),
            },
        };
        if self.send(client, req, what).await {
            Flow::Go
        } else {
            Flow::Unsent
        }
    }

    /// The request for a `/game` command; `None` when it needs a game and there is none.
    fn game_request(&self, game: GameAction) -> Option<(Request, Pending)> {
        let current = self.state.game.as_ref().map(|g| g.room.clone());
        Some(match game {
            GameAction::Create => (Request::GameCreate, Pending::GameCreate),
            GameAction::Join(room) => (
                Request::game_join(room.clone()),
                Pending::GameJoin {
                    room,
                    watch: false,
                    resume: false,
                },
            ),
            GameAction::Watch(room) => (
                Request::game_watch(room.clone()),
                Pending::GameJoin {
                    room,
                    watch: true,
                    resume: false,
                },
            ),
            GameAction::Say { to, text: t } => {
                let room = current?;
                // Only `all` is echoed back to the sender.
                let shown = match to {
                    GameTarget::All => None,
                    GameTarget::Opponent => Some(format!(
                        "[{}] you (to opponent): {t}",
                        render::short_game(&room)
                    )),
                    GameTarget::Watchers => Some(format!(
                        "[{}] you (to watchers): {t}",
                        render::short_game(&room)
                    )),
                };
                let pending = Pending::GameSend {
                    room: room.clone(),
                    shown,
                };
                (Request::game_send(room, to, text(&t)), pending)
            }
            GameAction::Leave => {
                let room = current?;
                (
                    Request::game_leave(room.clone()),
                    Pending::GameLeave { room },
                )
            }
            GameAction::Close => {
                let room = current?;
                (Request::game_close(room), Pending::GameClose)
            }
        })
    }

    fn complain(&self, text: &str) -> Flow {
        self.out.now(text);
        Flow::Go
    }

    fn rooms(&self) {
        if self.state.rooms.is_empty() {
            self.out.now("* not in any room");
            return;
        }
        let list: Vec<String> = self
            .state
            .rooms
            .keys()
            .map(|room| match &self.state.current {
                Some(current) if current == room => format!("{room} (current)"),
                _ => room.clone(),
            })
            .collect();
        self.out.now(&format!("* rooms: {}", list.join(", ")));
    }
}
