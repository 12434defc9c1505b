//! Getting a session back: connect and log in (with `dm_since`), wait out the backoff
//! while still reading input, then re-join rooms and the game with `since`.

use super::backoff::{self, Retry};
use super::{Chat, LOGIN_WAIT, MAX_LATER, REPLY_WAIT, actions, commands, sleep_until, state};
use crate::client::{Client, ClientError, Options, Request, ServerEvent, Welcome};
use std::time::Duration;
use tokio::time::Instant;

/// Why connecting and logging in failed.
pub(super) enum ConnectError {
    /// Try again later.
    Retry(String),
    /// Trying again would fail the same way.
    Fatal(String),
}

impl Chat {
    /// Reconnects after `delay`, with backoff between failed attempts; `None` when the
    /// user quit (or the input ended) meanwhile.
    pub(super) async fn reconnect(
        &mut self,
        mut delay: Duration,
    ) -> Result<Option<Client>, String> {
        loop {
            eprintln!("switchboard chat: reconnecting in {} ms", delay.as_millis());
            let wake = Instant::now() + delay;
            while Instant::now() < wake {
                if !self.wait_for_input(Some(wake)).await? {
                    return Ok(None);
                }
            }
            let (url, token) = (self.args.url.clone(), self.token.clone());
            let dm_since = self
                .state
                .dm_seen
                .map(|seq| (seq, self.state.dm_epoch.clone()));
            let attempt = connect(&url, &token, dm_since);
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    more = self.wait_for_input(None) => if !more? { return Ok(None) },
                }
            };
            match result {
                Ok((mut client, welcome)) => {
                    self.backoff.reset();
                    self.state.me = welcome.user;
                    self.state.dm_epoch = welcome.dm_epoch;
                    self.resume(&mut client).await;
                    return Ok(Some(client));
                }
                Err(ConnectError::Fatal(err)) => return Err(err),
                Err(ConnectError::Retry(err)) => {
                    eprintln!("switchboard chat: {err}");
                    let max = self.args.max_retries;
                    if max > 0 && self.backoff.attempts() >= max {
                        return Err(format!("gave up after {max} attempts: {err}"));
                    }
                    delay = self.backoff.next_delay();
                }
            }
        }
    }

    /// While disconnected: takes one input line (or the timer); `false` to quit.
    pub(super) async fn wait_for_input(&mut self, until: Option<Instant>) -> Result<bool, String> {
        let hard_stop = self.eof_at.map(|at| at + self.args.linger + REPLY_WAIT);
        if let Some(at) = self.eof_at {
            if self.later.is_empty() {
                return Ok(false);
            }
            if Instant::now() >= at + self.args.linger + REPLY_WAIT {
                return Err(format!(
                    "input ended while disconnected; {} lines not sent",
                    self.later.len()
                ));
            }
        }
        let until = match (until, hard_stop) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            line = self.input.next(), if !self.input.eof => match line {
                Some(line) => match commands::parse(&line) {
                    Ok(commands::Action::Quit) => return Ok(false),
                    Ok(commands::Action::Help) => self.help(),
                    _ if self.later.len() >= MAX_LATER => {
                        self.out.now("! not connected: line dropped");
                    }
                    _ => self.later.push_back(line),
                },
                None => self.eof_at = Some(Instant::now()),
            },
            () = sleep_until(until), if until.is_some() => {}
        }
        Ok(true)
    }

    /// Re-joins what the old session was in; the replies complete the resume.
    pub(super) async fn resume(&mut self, client: &mut Client) {
        let rooms: Vec<_> = self
            .state
            .rooms
            .iter()
            .map(|(room, r)| (room.clone(), r.seq.unwrap_or(0), r.epoch.clone()))
            .collect();
        let game = self.state.game.clone();
        let parts = rooms.len() + usize::from(game.is_some());
        self.state.resume = (parts > 0).then(|| (parts, Vec::new()));
        for (room, since, epoch) in rooms {
            let pending = state::Pending::Join {
                room: room.clone(),
                resume: true,
            };
            let join = Request::Join {
                room,
                since: Some(since),
                epoch,
            };
            self.send(client, join, pending).await;
        }
        if let Some(game) = game {
            let watch = game.role == crate::protocol::GameRole::Watcher;
            let since = Some(game.seq.unwrap_or(0));
            let (room, epoch) = (game.room.clone(), game.epoch.clone());
            let req = if watch {
                Request::GameWatch { room, since, epoch }
            } else {
                Request::GameJoin { room, since, epoch }
            };
            let pending = state::Pending::GameJoin {
                room: game.room,
                watch,
                resume: true,
            };
            self.send(client, req, pending).await;
        }
        if let Some(watch) = self.state.online.clone() {
            let req = actions::watch_request(&watch);
            self.send(client, req, state::Pending::Watch(watch)).await;
        }
        if self.state.queued {
            self.send(
                client,
                Request::RankJoin,
                state::Pending::RankJoin { resume: true },
            )
            .await;
        }
        if parts == 0 {
            self.out.now("* reconnected");
        }
    }
}

/// Connects and logs in.
pub(super) async fn connect(
    url: &str,
    token: &str,
    dm_since: Option<(u64, Option<String>)>,
) -> Result<(Client, Welcome), ConnectError> {
    let mut client = Client::connect_with(url, Options::default())
        .await
        .map_err(|err| match err {
            ClientError::Address(_) => ConnectError::Fatal(err.to_string()),
            err => ConnectError::Retry(err.to_string()),
        })?;
    let (dm_since, dm_epoch) = dm_since.unzip();
    let login = Request::Login {
        token: token.to_owned(),
        dm_since,
        dm_epoch: dm_epoch.flatten(),
    };
    let welcome = match tokio::time::timeout(LOGIN_WAIT, client.login_with(login)).await {
        Err(_) => {
            return Err(ConnectError::Retry(
                "no welcome from the server in time".into(),
            ));
        }
        Ok(Ok(frame)) => frame.event(),
        Ok(Err(ClientError::Rejected { code, message })) => {
            let err = format!("login refused: {code}: {message}");
            return Err(if code == "unavailable" {
                ConnectError::Retry(err)
            } else {
                ConnectError::Fatal(err)
            });
        }
        Ok(Err(err)) => {
            let text = format!("login failed: {err}");
            return Err(match backoff::rule(err.close_code()) {
                Retry::Never(_) => ConnectError::Fatal(text),
                _ => ConnectError::Retry(text),
            });
        }
    };
    match welcome {
        Ok(ServerEvent::Welcome(welcome)) => Ok((client, welcome)),
        Ok(other) => Err(ConnectError::Fatal(format!(
            "expected welcome, got {other:?}"
        ))),
        Err(err) => Err(ConnectError::Fatal(format!("bad welcome: {err}"))),
    }
}
