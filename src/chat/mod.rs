//! `switchboard chat`: a line-oriented terminal client on [`crate::client`].
//!
//! Plain lines are said in the current room, `/commands` do the rest (`/help`). One
//! `select!` loop reads input lines, server frames and the end-of-input timer. A lost
//! connection is retried with backoff (or after the server's `reconnect.after_ms`)
//! unless its close code says not to; the new session logs in with `dm_since` and
//! re-joins rooms and the game with `since`, so nothing said meanwhile is lost.
//!
//! Input is read on a plain thread: tokio's stdin would keep the runtime from shutting
//! down until the user pressed Enter.

mod actions;
mod backoff;
mod commands;
mod frames;
mod out;
mod reconnect;
mod render;
mod state;
mod token;

use crate::cli::ChatArgs;
use crate::client::{Client, ClientError, ServerEvent};
use crate::protocol::close::CloseCode;
use backoff::{Backoff, Retry};
use out::Out;
use reconnect::{ConnectError, connect};
use state::State;
use std::collections::VecDeque;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Longest wait for the `welcome` after connecting.
const LOGIN_WAIT: Duration = Duration::from_secs(10);
/// After the end of input: the longest wait for replies still due.
const REPLY_WAIT: Duration = Duration::from_secs(10);
/// The first reconnect delay, doubled per failed attempt up to `--max-backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// After a failed send: how long to wait for the connection to report its end.
const BROKEN_WAIT: Duration = Duration::from_secs(2);
/// Lines typed while disconnected, sent once the session is back.
const MAX_LATER: usize = 100;

/// Runs `switchboard chat` to the end; the process's exit code.
pub fn main(args: ChatArgs) -> ExitCode {
    // `time` reads the UTC offset only while the process has a single thread, so
    // before the runtime starts. A DST change during the session is not followed.
    let offset = (!args.no_time)
        .then(|| time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchboard chat: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, Out::new(offset)))
}

async fn run(args: ChatArgs, out: Out) -> ExitCode {
    let token = match token::resolve(&args).await {
        Ok(token) => token,
        Err(err) => {
            eprintln!("switchboard chat: {err}");
            return ExitCode::from(2);
        }
    };
    let later = args.rooms.iter().map(|r| format!("/join {r}")).collect();
    let mut chat = Chat {
        backoff: Backoff::new(FIRST_BACKOFF, args.max_backoff),
        args,
        token,
        out,
        state: State::default(),
        input: Input::spawn(),
        later,
        eof_at: None,
        last_reply: Instant::now(),
        sent_at: Instant::now(),
    };
    match chat.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchboard chat: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Stdin lines, read on their own thread.
struct Input {
    lines: mpsc::Receiver<String>,
    eof: bool,
}

impl Input {
    fn spawn() -> Input {
        let (tx, lines) = mpsc::channel(64);
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stdin.lock().read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if tx.blocking_send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Input { lines, eof: false }
    }

    /// The next line; `None` once input has ended (and from then on).
    async fn next(&mut self) -> Option<String> {
        if self.eof {
            return None;
        }
        let line = self.lines.recv().await;
        self.eof = line.is_none();
        line
    }
}

/// How a connected session ended.
enum End {
    Quit,
    Lost {
        code: Option<u16>,
        reason: String,
        /// From the server's `reconnect` frame.
        after: Option<Duration>,
    },
}

struct Chat {
    args: ChatArgs,
    token: String,
    out: Out,
    state: State,
    input: Input,
    /// Lines to handle once connected: `--join` rooms, lines typed while disconnected.
    later: VecDeque<String>,
    backoff: Backoff,
    eof_at: Option<Instant>,
    /// When the last reply to one of our requests arrived.
    last_reply: Instant,
    /// When the last request was sent.
    sent_at: Instant,
}

impl Chat {
    async fn run(&mut self) -> Result<(), String> {
        let (mut client, welcome) = match connect(&self.args.url, &self.token, None).await {
            Ok(connected) => connected,
            Err(ConnectError::Retry(err) | ConnectError::Fatal(err)) => return Err(err),
        };
        self.state.me = welcome.user.clone();
        self.state.dm_epoch = welcome.dm_epoch.clone();
        self.out.now(&format!(
            "* logged in as {}",
            render::who_is(&welcome.user, &welcome.name)
        ));
        loop {
            match self.session(&mut client).await? {
                End::Quit => {
                    let _ = client.close().await;
                    return Ok(());
                }
                End::Lost {
                    code,
                    reason,
                    after,
                } => {
                    self.state.connection_lost();
                    let why = match code {
                        Some(code) => CloseCode::from_u16(code).reason(),
                        None => "connection lost",
                    };
                    let first = match backoff::rule(code) {
                        Retry::Never(why) => return Err(format!("disconnected: {why}")),
                        Retry::Now => Duration::ZERO,
                        Retry::Backoff => after.unwrap_or_else(|| self.backoff.next_delay()),
                    };
                    self.out
                        .now(&format!("* disconnected ({why}); reconnecting"));
                    eprintln!("switchboard chat: connection closed (code {code:?}, {reason:?})");
                    match self.reconnect(first).await? {
                        Some(next) => client = next,
                        None => return Ok(()),
                    }
                }
            }
        }
    }

    /// One connected session, until it is lost or we quit.
    ///
    /// Input is taken one request at a time, so a script's lines act in order and each
    /// one's reply prints before the next line runs (unless the reply is overdue).
    async fn session(&mut self, client: &mut Client) -> Result<End, String> {
        let mut after = None;
        // Set when a send failed: the connection is ending; wait that long for the end.
        let mut broken: Option<Instant> = None;
        loop {
            let ready = broken.is_none() && self.state.waiting() == 0;
            if ready && let Some(line) = self.later.pop_front() {
                if let Some(end) = self.act(client, line, &mut broken).await {
                    return Ok(end);
                }
                continue;
            }
            let deadline = self.quit_deadline();
            let overdue =
                (broken.is_none() && self.state.waiting() > 0).then(|| self.sent_at + REPLY_WAIT);
            tokio::select! {
                line = self.input.next(), if ready && !self.input.eof => match line {
                    Some(line) => if let Some(end) = self.act(client, line, &mut broken).await {
                        return Ok(end);
                    },
                    None => self.eof_at = Some(Instant::now()),
                },
                frame = client.recv() => match frame {
                    Ok(frame) => {
                        if let Some(ServerEvent::Reconnect { after_ms, reason }) = self.on_frame(client, &frame).await {
                            eprintln!("switchboard chat: server asks to reconnect in {after_ms} ms ({reason})");
                            after = Some(Duration::from_millis(after_ms));
                        }
                    }
                    Err(err) if client.is_closed() => {
                        let code = err.close_code();
                        let reason = match &err {
                            ClientError::Closed { reason, .. } => reason.clone(),
                            other => other.to_string(),
                        };
                        return Ok(End::Lost { code, reason, after });
                    }
                    Err(err) => eprintln!("switchboard chat: ignoring a bad frame: {err}"),
                },
                () = sleep_until(overdue), if overdue.is_some() => {
                    eprintln!("switchboard chat: no reply from the server in time; reading on");
                    self.state.give_up_replies();
                }
                () = sleep_until(broken), if broken.is_some() => {
                    let reason = "sending failed".to_owned();
                    return Ok(End::Lost { code: None, reason, after });
                }
                () = sleep_until(deadline), if deadline.is_some() => return Ok(End::Quit),
            }
        }
    }

    /// Handles one input line; `Some` when the session should end.
    async fn act(
        &mut self,
        client: &mut Client,
        line: String,
        broken: &mut Option<Instant>,
    ) -> Option<End> {
        match self.on_line(client, &line).await {
            actions::Flow::Go => None,
            actions::Flow::Quit => Some(End::Quit),
            actions::Flow::Unsent => {
                self.later.push_front(line);
                *broken = Some(Instant::now() + BROKEN_WAIT);
                None
            }
        }
    }

    /// After the end of input: quit once every reply is in and `--linger` has passed
    /// since the last one (or the input ended), or when replies are overdue.
    fn quit_deadline(&self) -> Option<Instant> {
        let eof_at = self.eof_at?;
        if !self.later.is_empty() {
            return None;
        }
        if self.state.waiting() > 0 {
            return Some(eof_at + self.args.linger + REPLY_WAIT);
        }
        Some(eof_at.max(self.last_reply) + self.args.linger)
    }

    fn help(&self) {
        for line in commands::HELP.lines() {
            self.out.raw(line);
        }
    }
}

/// Sleeps until `at`; never wakes when there is none (the `select!` branch is off then).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
