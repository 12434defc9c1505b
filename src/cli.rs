//! The command line: the gateway's settings (`config::Config`) plus subcommands such as
//! `switchboard token` and `switchboard chat`.

use crate::config::{Config, JwtAlg};
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

/// Horizontally scaled real-time gateway: WebSocket and TCP clients, rooms, direct
/// messages, presence and broadcast, with an HTTP API for backends.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a signed HS* token for trying things out.
    Token(TokenArgs),
    /// Chat from a terminal (or a script): rooms, DMs, games, ranked play.
    Chat(ChatArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// User id (`sub` claim).
    #[arg(long)]
    pub sub: String,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// HMAC secret the gateway is configured with.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    #[arg(long, value_enum, default_value = "hs256")]
    pub alg: JwtAlg,
    /// Ranked-play rating claim.
    #[arg(long)]
    pub rating: Option<i64>,
    /// Permission to grant (repeatable), e.g. `broadcast`.
    #[arg(long = "perm")]
    pub perms: Vec<String>,
    /// Room glob the user may join (repeatable); no `--room` means any room.
    #[arg(long = "room")]
    pub rooms: Vec<String>,
    /// Lifetime of the token.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    #[arg(long)]
    pub issuer: Option<String>,
    #[arg(long)]
    pub audience: Option<String>,
}

/// `switchboard chat`: a line-oriented client (`/help` lists its commands).
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Gateway address: `ws://host:port/ws` or `tcp://host:port`.
    #[arg(
        long,
        env = "SWITCHBOARD_URL",
        default_value = "ws://127.0.0.1:8080/ws"
    )]
    pub url: String,
    /// JWT to log in with.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Dev-mode servers: log in as this user, with a token from `GET /dev/token`
    /// (takes precedence over `--token`).
    #[arg(long, value_name = "USER")]
    pub dev_user: Option<String>,
    /// Display name for `--dev-user`.
    #[arg(long, requires = "dev_user")]
    pub name: Option<String>,
    /// HTTP base of the gateway for `/dev/token`, e.g. `http://host:8080`; derived from
    /// a `ws://` URL, needed with `tcp://` and `--dev-user`.
    #[arg(long, value_name = "URL")]
    pub http: Option<String>,
    /// Room to join once logged in (repeatable); the last one becomes current.
    #[arg(long = "join", value_name = "ROOM")]
    pub rooms: Vec<String>,
    /// Print lines without the `HH:MM:SS` prefix (stable transcripts for scripts).
    #[arg(long)]
    pub no_time: bool,
    /// After the end of input: how long to wait for the replies and the events they
    /// cause before quitting.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,
    /// Longest pause between reconnect attempts.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_backoff: Duration,
    /// Give up after this many failed reconnect attempts in a row (0: never).
    #[arg(long, default_value_t = 0)]
    pub max_retries: u32,
}
