//! `switchboard chat`, the real binary driven through pipes against real gateways:
//! transcripts of rooms, DMs, who/presence, renames, errors, the online feed, games,
//! ranked play, dev tokens and the end of input; `drain` resumes across a gateway drain.

use crate::harness::*;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

mod drain;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A command with no SWITCHBOARD_* variables from the caller's environment.
fn switchboard() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("SWITCHBOARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.kill_on_drop(true);
    cmd
}

/// A token for `user` with display name `name`.
fn named(user: &str, name: &str) -> String {
    let mut c = claims(user);
    c.name = Some(name.into());
    sign(&c)
}

/// One `switchboard chat` process: lines go to its stdin, its stdout is read line by
/// line. Killed when dropped.
struct Chat {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Chat {
    fn spawn(url: &str, args: &[&str]) -> Chat {
        let mut child = switchboard()
            .args(["chat", "--url", url, "--no-time"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn switchboard chat");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel(1000);
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let stdin = child.stdin.take();
        Chat {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Logged in with `--token`.
    async fn login(url: &str, token: &str, args: &[&str]) -> Chat {
        let mut c = Chat::spawn(url, &[&["--token", token], args].concat());
        c.expect_with("the login line", |l| l.starts_with("* logged in as "))
            .await;
        c
    }

    async fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to chat");
        stdin.flush().await.expect("flush");
    }

    fn failure(&self, what: &str) -> String {
        let err = self.stderr.lock().map(|e| e.clone()).unwrap_or_default();
        format!("{what}\nstdout so far: {:#?}\nstderr: {err}", self.seen)
    }

    /// Reads lines until one satisfies `want` (within `WAIT`); returns it.
    async fn expect_with(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Ok(None) => panic!("{}", self.failure(&format!("chat ended before {what}"))),
                Err(_) => panic!("{}", self.failure(&format!("no {what} in time"))),
            }
        }
    }

    async fn expect(&mut self, line: &str) {
        self.expect_with(&format!("{line:?}"), |l| l == line).await;
    }

    /// Ends the input, waits (bounded) for the process to exit; returns its status and
    /// the whole transcript.
    async fn finish(mut self) -> (ExitStatus, Vec<String>) {
        self.stdin.take();
        self.wait_exit().await
    }

    async fn wait_exit(&mut self) -> (ExitStatus, Vec<String>) {
        let status = match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("{}", self.failure("chat did not exit in time")),
        };
        while let Ok(Some(line)) = tokio::time::timeout(WAIT, self.lines.recv()).await {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

fn ws_url(s: &TestServer) -> String {
    format!("ws://{}/ws", s.http)
}

fn tcp_url(s: &TestServer) -> String {
    format!("tcp://{}", s.tcp)
}

#[tokio::test]
async fn chat_rooms_dms_who_rename_and_errors() {
    let s = TestServer::spawn().await;
    let mut alice = Chat::login(&ws_url(&s), &named("alice", "Alice"), &[]).await;
    alice.say("/join lobby").await;
    alice.expect("* you joined lobby").await;
    alice.say("first!").await;
    alice.expect("[lobby] Alice: first!").await;

    // Bob on TCP gets the history first.
    let mut bob = Chat::login(&tcp_url(&s), &named("bob", "Bob"), &[]).await;
    bob.say("/join lobby").await;
    bob.expect("* you joined lobby").await;
    alice.expect("* Bob (bob) joined lobby (2 here)").await;

    alice.say("hi bob").await;
    bob.expect("[lobby] Alice: hi bob").await;
    bob.say("hello alice").await;
    alice.expect("[lobby] Bob: hello alice").await;
    bob.say("/msg alice psst").await;
    bob.expect("DM to alice: psst").await;
    alice.expect("DM from Bob: psst").await;

    alice.say("/who").await;
    alice.expect("* online (2): Alice (alice), Bob (bob)").await;
    alice.say("/presence").await;
    alice
        .expect("* in lobby (2): Alice (alice), Bob (bob)")
        .await;

    bob.say("/name Bobby").await;
    bob.expect("* you are now Bobby").await;
    alice.expect("* bob is now known as Bobby in lobby").await;
    bob.say("/leave").await;
    bob.expect("* you left lobby").await;
    alice.expect("* Bobby (bob) left lobby (1 here)").await;

    for line in [
        "/leave lobby",
        "still there?",
        "/frobnicate",
        "/game join g-nope",
        "/msg",
        "/rooms",
    ] {
        bob.say(line).await;
    }
    bob.expect("* not in any room").await;
    let (status, bob_lines) = bob.finish().await;
    assert!(status.success(), "bob exited with {status}");
    assert_eq!(
        bob_lines,
        [
            "* logged in as Bob (bob)",
            "[lobby] Alice: first!",
            "* you joined lobby",
            "[lobby] Alice: hi bob",
            "[lobby] Bob: hello alice",
            "DM to alice: psst",
            "* you are now Bobby",
            "* you left lobby",
            "! error not_found: not in that room",
            "! not in a room: /join ROOM first",
            "! unknown command /frobnicate (/help lists them)",
            "! error not_found: no such game",
            "! usage: /msg USER TEXT",
            "* not in any room",
        ]
    );

    alice.say("/quit").await;
    let (status, alice_lines) = alice.wait_exit().await;
    assert!(status.success(), "alice exited with {status}");
    assert_eq!(
        alice_lines,
        [
            "* logged in as Alice (alice)",
            "* you joined lobby",
            "[lobby] Alice: first!",
            "* Bob (bob) joined lobby (2 here)",
            "[lobby] Alice: hi bob",
            "[lobby] Bob: hello alice",
            "DM from Bob: psst",
            "* online (2): Alice (alice), Bob (bob)",
            "* in lobby (2): Alice (alice), Bob (bob)",
            "* bob is now known as Bobby in lobby",
            "* Bobby (bob) left lobby (1 here)",
        ]
    );
}

#[tokio::test]
async fn chat_online_feed_and_a_game_with_a_watcher() {
    let s = TestServer::with(|c| c.online_feed_interval = Duration::from_millis(100)).await;
    let mut carol = Chat::login(&ws_url(&s), &named("carol", "Carol"), &[]).await;
    let mut alice = Chat::login(&ws_url(&s), &named("alice", "Alice"), &[]).await;
    alice.say("/online all").await;
    alice.expect("* watching who comes online: everyone").await;
    let mut bob = Chat::login(&tcp_url(&s), &named("bob", "Bob"), &[]).await;
    alice.expect("* Bob (bob) is online").await;

    alice.say("/game create").await;
    let created = alice
        .expect_with("the game id", |l| l.starts_with("* game created: g-"))
        .await;
    let id = created
        .trim_start_matches("* game created: ")
        .split(';')
        .next()
        .expect("id")
        .to_owned();
    let short = &id[..10];
    bob.say(&format!("/game join {id}")).await;
    bob.expect(&format!("* playing game {short} (alice vs bob)"))
        .await;
    let started = format!("* game {short} started: alice vs bob");
    bob.expect(&started).await;
    alice.expect(&started).await;
    carol.say(&format!("/game watch {id}")).await;
    carol
        .expect(&format!("* watching game {short} (alice vs bob)"))
        .await;

    alice.say("/game say e4").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect(&format!("[{short}] alice: e4")).await;
    }
    bob.say("/game say opponent good luck").await;
    bob.expect(&format!("[{short}] you (to opponent): good luck"))
        .await;
    alice
        .expect(&format!("[{short}] bob (to opponent): good luck"))
        .await;
    alice.say("/game say watchers king's pawn").await;
    alice
        .expect(&format!("[{short}] you (to watchers): king's pawn"))
        .await;
    carol
        .expect(&format!("[{short}] alice (to watchers): king's pawn"))
        .await;
    carol.say("/game say me too").await;
    carol
        .expect("! error forbidden: watchers cannot send")
        .await;

    bob.say("/game leave").await;
    let over = format!("* game {short} is over: a player left");
    bob.expect(&over).await;
    carol.expect(&over).await;
    let (status, _) = bob.finish().await;
    assert!(status.success(), "bob exited with {status}");
    alice.expect("* bob went offline").await;
    let (status, alice_lines) = alice.finish().await;
    assert!(status.success(), "alice exited with {status}");
    assert_eq!(
        alice_lines,
        [
            "* logged in as Alice (alice)".to_owned(),
            "* watching who comes online: everyone".to_owned(),
            "* Bob (bob) is online".to_owned(),
            created,
            started,
            format!("[{short}] alice: e4"),
            format!("[{short}] bob (to opponent): good luck"),
            format!("[{short}] you (to watchers): king's pawn"),
            over,
            "* bob went offline".to_owned(),
        ]
    );
    let (status, _) = carol.finish().await;
    assert!(status.success(), "carol exited with {status}");
}

#[tokio::test]
async fn chat_rank_matches_and_joins_the_game() {
    let s = TestServer::spawn().await;
    let mut dave = Chat::login(&ws_url(&s), &named("dave", "Dave"), &[]).await;
    let mut erin = Chat::login(&tcp_url(&s), &named("erin", "Erin"), &[]).await;
    dave.say("/rank").await;
    dave.expect("* looking for a ranked match (rating 1500)")
        .await;
    erin.say("/rank").await;
    let mut games = Vec::new();
    for (c, other) in [(&mut dave, "erin"), (&mut erin, "dave")] {
        let prefix = format!("* ranked match: you vs {other} (1500) in game g-");
        let matched = c.expect_with("the match", |l| l.starts_with(&prefix)).await;
        let room = matched.rsplit(' ').next().expect("room").to_owned();
        // The client joins the game by itself. Equal ratings: the owner is whoever
        // the queue holds as first, which this test does not pin down.
        let playing = format!("* playing game {} (", &room[..10]);
        let joined = c
            .expect_with("the game join", |l| l.starts_with(&playing))
            .await;
        let seats = joined[playing.len()..]
            .split([',', ')'])
            .next()
            .expect("seats")
            .to_owned();
        assert!(
            seats == "dave vs erin" || seats == "erin vs dave",
            "{joined}"
        );
        games.push((room, seats));
    }
    assert_eq!(games[0], games[1]);
    let (room, seats) = &games[0];
    let started = format!("* game {} started: {seats}", &room[..10]);
    dave.expect(&started).await;
    erin.expect(&started).await;
    erin.say("/game say gg").await;
    dave.expect(&format!("[{}] erin: gg", &room[..10])).await;
    for c in [dave, erin] {
        let (status, _) = c.finish().await;
        assert!(status.success());
    }
}

#[tokio::test]
async fn chat_scripts_dev_tokens_and_refused_logins() {
    let s = TestServer::with(|c| c.dev = true).await;
    // A whole script at once, then the end of input: every reply still prints.
    let mut carol = Chat::spawn(
        &ws_url(&s),
        &[
            "--dev-user",
            "carol",
            "--name",
            "Carol",
            "--linger",
            "200ms",
        ],
    );
    carol.say("/join lobby\nhello\n/presence\n/help").await;
    let (status, lines) = carol.finish().await;
    assert!(status.success(), "exit {status}");
    assert_eq!(
        lines[..4],
        [
            "* logged in as Carol (carol)",
            "* you joined lobby",
            "[lobby] Carol: hello",
            "* in lobby (1): Carol (carol)",
        ]
    );
    assert!(lines[4].starts_with("text "), "help follows: {lines:?}");
    assert!(
        lines.last().is_some_and(|l| l.starts_with("/quit")),
        "{lines:?}"
    );

    // TCP has no HTTP base to ask for a dev token.
    let mut c = Chat::spawn(&tcp_url(&s), &["--dev-user", "dan"]);
    let (status, lines) = c.wait_exit().await;
    assert_eq!(status.code(), Some(2));
    assert!(lines.is_empty());
    assert!(c.stderr().contains("--http"), "{}", c.stderr());
    let http = format!("http://{}", s.http);
    let mut dan = Chat::spawn(&tcp_url(&s), &["--dev-user", "dan", "--http", &http]);
    dan.expect("* logged in as dan").await;
    dan.say("/quit").await;
    assert!(dan.wait_exit().await.0.success());

    // A refused login ends with a failure and says why.
    for url in [ws_url(&s), tcp_url(&s)] {
        let mut c = Chat::spawn(&url, &["--token", "not-a-jwt"]);
        let (status, lines) = c.wait_exit().await;
        assert_eq!(status.code(), Some(1), "{url}");
        assert!(lines.is_empty(), "{lines:?}");
        let err = c.stderr();
        assert!(err.contains("login refused: unauthorized"), "{url}: {err}");
    }
}
