//! The command line: the gateway's settings (`config::Config`) plus subcommands such as
//! `switchboard token`.

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
