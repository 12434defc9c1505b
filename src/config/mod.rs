//! Every gateway setting, from command-line flags and `SWITCHBOARD_*` environment
//! variables, checked once at startup so a bad value fails fast with the setting's name.

use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory, FromArgMatches, Parser, ValueEnum};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// JWT signature algorithms the gateway accepts (exactly one is configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlg {
    #[value(name = "HS256", alias = "hs256")]
    Hs256,
    #[value(name = "HS384", alias = "hs384")]
    Hs384,
    #[value(name = "HS512", alias = "hs512")]
    Hs512,
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
    #[value(name = "RS384", alias = "rs384")]
    Rs384,
    #[value(name = "RS512", alias = "rs512")]
    Rs512,
    #[value(name = "PS256", alias = "ps256")]
    Ps256,
    #[value(name = "PS384", alias = "ps384")]
    Ps384,
    #[value(name = "PS512", alias = "ps512")]
    Ps512,
    #[value(name = "ES256", alias = "es256")]
    Es256,
    #[value(name = "ES384", alias = "es384")]
    Es384,
    #[value(name = "EdDSA", alias = "eddsa")]
    EdDsa,
}

impl JwtAlg {
    pub fn is_hmac(self) -> bool {
        matches!(self, JwtAlg::Hs256 | JwtAlg::Hs384 | JwtAlg::Hs512)
    }
}

/// What happens when a user who already has a session logs in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DuplicateLogin {
    /// Keep all sessions (several devices).
    Multi,
    /// Refuse the new login with `conflict`.
    Reject,
    /// Close the older sessions with 4003.
    Kick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Gateway settings. Defaults work on a laptop.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Dev mode: tokens minted at `GET /dev/token` (signed with SWITCHBOARD_JWT_SECRET, or a
    /// random secret when none is set) and a loopback-only default listen address. Implied
    /// when nothing production-like is configured; never run it where others can reach.
    #[arg(long, env = "SWITCHBOARD_DEV", value_parser = BoolishValueParser::new())]
    pub dev: bool,
    /// HTTP address: WebSocket endpoint `/ws`, API, probes (and metrics unless
    /// SWITCHBOARD_ADMIN_LISTEN is set). Default 0.0.0.0:8080; 127.0.0.1:8080 in dev mode.
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin address for `/metrics` (and `/healthz`, `/readyz`); when set, `/metrics` is
    /// served only here, keeping it off the public path.
    #[arg(long, env = "SWITCHBOARD_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Raw TCP transport address (newline-delimited JSON); off when unset.
    #[arg(long, env = "SWITCHBOARD_TCP_LISTEN")]
    pub tcp_listen: Option<SocketAddr>,
    /// Connections the kernel completes and queues for each listener before the gateway
    /// accepts them (`listen(2)` backlog; the kernel caps it at `net.core.somaxconn`).
    /// A reconnect storm after a replica loss arrives all at once: past the queue,
    /// clients wait for SYN retries (1 s, 3 s, ...).
    #[arg(long, env = "SWITCHBOARD_LISTEN_BACKLOG", default_value_t = 4096)]
    pub listen_backlog: u32,

    /// HMAC secret for HS256/384/512 tokens (in dev mode it also signs `/dev/token`).
    /// Without a secret or public key the gateway refuses to start unless it is in dev
    /// mode (SWITCHBOARD_DEV, or nothing production-like configured).
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key for RS*/PS*/ES*/EdDSA tokens.
    #[arg(long, env = "SWITCHBOARD_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// The one accepted token algorithm.
    #[arg(long, env = "SWITCHBOARD_JWT_ALG", value_enum, default_value = "HS256")]
    pub jwt_alg: JwtAlg,
    /// Required `iss` claim.
    #[arg(long, env = "SWITCHBOARD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "SWITCHBOARD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf` (also added to `exp` before a connected
    /// session is closed as expired).
    #[arg(long, env = "SWITCHBOARD_JWT_LEEWAY", default_value = "30s", value_parser = humantime::parse_duration)]
    pub jwt_leeway: Duration,
    /// More HMAC secrets chosen by the token header's `kid`, as `kid1:secret1,kid2:secret2`
    /// (key rotation). They verify SWITCHBOARD_JWT_ALG when it is HS*, else HS256.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRETS", hide_env_values = true)]
    pub jwt_secrets: Option<String>,
    /// JSON Web Key Set file (`{"keys":[...]}`) with RSA, EC, OKP (Ed25519) and `oct`
    /// keys, each chosen by its `kid`; re-read on SIGHUP and when the file changes.
    #[arg(long, env = "SWITCHBOARD_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// How often the key files (SWITCHBOARD_JWT_PUBLIC_KEY_FILE, SWITCHBOARD_JWT_JWKS_FILE)
    /// are checked for changes; a changed file reloads every key (0s: only on SIGHUP).
    #[arg(long, env = "SWITCHBOARD_JWT_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub jwt_reload_interval: Duration,

    /// Bearer key for the HTTP API under /api/v1; the API answers 503 without one.
    #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Largest request body the HTTP API accepts (bytes); larger ones get 413 `too_large`.
    #[arg(long, env = "SWITCHBOARD_API_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub api_max_body_bytes: usize,
    /// Longest time one HTTP API request may take; past it the caller gets 503
    /// `unavailable` (the work may still complete).
    #[arg(long, env = "SWITCHBOARD_API_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub api_timeout: Duration,
    /// Browser origins allowed to open WebSockets (comma separated, `*` for any).
    /// Empty: same origin as the Host header only. Non-browser clients send no Origin.
    #[arg(long, env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Redis URL (`redis://`, `rediss://`); the in-memory single-node backend when unset.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Namespace for every Redis key and channel.
    #[arg(long, env = "SWITCHBOARD_REDIS_PREFIX", default_value = "sb")]
    pub redis_prefix: String,

    /// Use Redis Cluster (also implied by a `redis-cluster://` URL).
    #[arg(long, env = "SWITCHBOARD_REDIS_CLUSTER", value_parser = BoolishValueParser::new())]
    pub redis_cluster: bool,
    /// Longest wait for one Redis command; past it the client gets `unavailable`.
    #[arg(long, env = "SWITCHBOARD_REDIS_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub redis_timeout: Duration,
    /// How often a replica checks its pub/sub path end to end (readiness).
    #[arg(long, env = "SWITCHBOARD_REDIS_PROBE_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub redis_probe_interval: Duration,
    /// A replica that stops refreshing (crash) disappears from presence after this long.
    #[arg(long, env = "SWITCHBOARD_PRESENCE_TTL", default_value = "45s", value_parser = humantime::parse_duration)]
    pub presence_ttl: Duration,
    /// How long room history is kept after the last message (Redis).
    #[arg(long, env = "SWITCHBOARD_HISTORY_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub history_ttl: Duration,
    /// How long direct messages are kept for offline users (Redis).
    #[arg(long, env = "SWITCHBOARD_INBOX_TTL", default_value = "7days", value_parser = humantime::parse_duration)]
    pub inbox_ttl: Duration,
    /// How long a message's `msg_id` is remembered, so a client's retry within it is
    /// not stored twice.
    #[arg(long, env = "SWITCHBOARD_MSG_ID_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub msg_id_ttl: Duration,

    /// Time an HTTP connection has to send a complete request head (upgrades included);
    /// slower or silent connections are closed, so they cannot pile up (slowloris).
    #[arg(long, env = "SWITCHBOARD_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,
    /// Time a new connection has to send its `login` frame.
    #[arg(long, env = "SWITCHBOARD_LOGIN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub login_timeout: Duration,
    /// Interval of server pings (WebSocket ping, `{"type":"ping"}` over TCP).
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT", default_value = "25s", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// A write to a client that takes longer closes it as a slow consumer.
    #[arg(long, env = "SWITCHBOARD_WRITE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,
    /// Largest accepted inbound frame (bytes); larger ones get `too_large`.
    #[arg(long, env = "SWITCHBOARD_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// In-memory backend: bytes of room, game and DM history kept in all (message data
    /// counted); past it the least recently used logs nobody here follows go first.
    #[arg(long, env = "SWITCHBOARD_MEMORY_HISTORY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub memory_history_bytes: usize,
    /// Per-connection read buffer (bytes), kept for the connection's life: client frames
    /// are small, so a small one keeps idle connections cheap (larger frames take several
    /// reads).
    #[arg(long, env = "SWITCHBOARD_READ_BUFFER_BYTES", default_value_t = 512)]
    pub read_buffer_bytes: usize,
    /// WebSocket frames are gathered up to this many bytes per socket write: fewer
    /// syscalls when a session has a batch to write.
    #[arg(long, env = "SWITCHBOARD_WRITE_BUFFER_BYTES", default_value_t = 2048)]
    pub write_buffer_bytes: usize,
    /// Outbound frames queued per session before it is closed as a slow consumer (4009).
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,
    /// Outbound bytes queued per session before it is closed as a slow consumer (4009):
    /// bounds what a client that never reads can pin, however large the frames.
    #[arg(long, env = "SWITCHBOARD_MAX_OUTBOUND_BYTES", default_value_t = 1024 * 1024)]
    pub max_outbound_bytes: usize,
    /// Sustained inbound frames per second per connection.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT", default_value_t = 50.0)]
    pub rate_limit: f64,
    /// Inbound frames a connection may send in a burst.
    #[arg(long, env = "SWITCHBOARD_RATE_BURST", default_value_t = 100.0)]
    pub rate_burst: f64,
    /// Rate-limited frames (net of a 10/s allowance) after which the connection is closed (4008).
    #[arg(long, env = "SWITCHBOARD_RATE_ABUSE_LIMIT", default_value_t = 200.0)]
    pub rate_abuse_limit: f64,

    /// Policy for a second login of the same user.
    #[arg(
        long,
        env = "SWITCHBOARD_DUPLICATE_LOGIN",
        value_enum,
        default_value = "multi"
    )]
    pub duplicate_login: DuplicateLogin,
    /// Rooms one session may be in at once.
    #[arg(long, env = "SWITCHBOARD_MAX_ROOMS_PER_SESSION", default_value_t = 100)]
    pub max_rooms_per_session: usize,
    /// Sustained joins of new rooms per second per session, after a burst of
    /// `SWITCHBOARD_MAX_ROOMS_PER_SESSION`: churning through fresh room names is slow.
    #[arg(long, env = "SWITCHBOARD_JOIN_RATE", default_value_t = 2.0)]
    pub join_rate: f64,
    /// Room messages kept per room for resume (`join` with `since`).
    #[arg(long, env = "SWITCHBOARD_HISTORY_SIZE", default_value_t = 100)]
    pub history_size: usize,
    /// Most messages replayed for one `join` with `since`.
    #[arg(long, env = "SWITCHBOARD_REPLAY_LIMIT", default_value_t = 100)]
    pub replay_limit: usize,
    /// Direct messages kept per user for offline delivery.
    #[arg(long, env = "SWITCHBOARD_INBOX_SIZE", default_value_t = 100)]
    pub inbox_size: usize,
    /// Rooms with more members than this stop announcing joins and leaves: those
    /// events cost O(members) each, O(members²) while a big room fills up.
    #[arg(long, env = "SWITCHBOARD_MEMBER_EVENTS_LIMIT", default_value_t = 1000)]
    pub member_events_limit: usize,
    /// Members listed in a `presence` reply (the count is always exact).
    #[arg(long, env = "SWITCHBOARD_PRESENCE_LIMIT", default_value_t = 1000)]
    pub presence_limit: usize,
    /// Default and largest page of a `who` reply.
    #[arg(long, env = "SWITCHBOARD_WHO_PAGE", default_value_t = 100)]
    pub who_page: usize,
    /// Longest display name, in characters.
    #[arg(long, env = "SWITCHBOARD_MAX_NAME_CHARS", default_value_t = 64)]
    pub max_name_chars: usize,

    /// A player who disconnects has this long to come back before the game closes.
    #[arg(long, env = "SWITCHBOARD_GAME_RECONNECT_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub game_reconnect_grace: Duration,
    /// Watchers allowed per game.
    #[arg(long, env = "SWITCHBOARD_GAME_WATCHERS", default_value_t = 1000)]
    pub game_watchers: usize,
    /// A game without any join, watch or message for this long expires.
    #[arg(long, env = "SWITCHBOARD_GAME_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub game_ttl: Duration,
    /// Rating gap accepted by a player who just joined the ranked queue.
    #[arg(long, env = "SWITCHBOARD_RANK_WINDOW", default_value_t = 100.0)]
    pub rank_window: f64,
    /// Growth of the accepted gap per second of waiting.
    #[arg(long, env = "SWITCHBOARD_RANK_WIDEN_PER_S", default_value_t = 50.0)]
    pub rank_widen_per_s: f64,
    /// The accepted gap never grows beyond this.
    #[arg(long, env = "SWITCHBOARD_RANK_MAX_WINDOW", default_value_t = 1000.0)]
    pub rank_max_window: f64,
    /// How often the matcher runs over the whole queue (each tick by one replica, the
    /// first to claim it).
    #[arg(long, env = "SWITCHBOARD_RANK_INTERVAL", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub rank_interval: Duration,
    /// A queued player is not paired before waiting this long: a burst is paired whole.
    #[arg(long, env = "SWITCHBOARD_RANK_SETTLE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub rank_settle: Duration,
    /// A player still unmatched after this long leaves the queue with `rank.timeout`.
    #[arg(long, env = "SWITCHBOARD_RANK_MAX_WAIT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub rank_max_wait: Duration,
    /// How often a waiting player gets `rank.waiting` (queue size, window, wait so far).
    #[arg(long, env = "SWITCHBOARD_RANK_STATUS_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub rank_status_interval: Duration,

    /// Connections this replica holds at most (0: no cap); past it WebSocket upgrades get
    /// 503 and TCP connections are closed, so a load balancer can try another replica.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,
    /// Connections one client address may hold on this replica (0: no cap). Off by
    /// default: behind a load balancer every client shares its address unless
    /// `SWITCHBOARD_TRUSTED_PROXY_HEADER` names where the real one is.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: usize,
    /// New connections (each a login attempt) per second one client address may open,
    /// after a burst of five times as many (0: no limit; off by default, as above).
    #[arg(long, env = "SWITCHBOARD_CONNECT_RATE_PER_IP", default_value_t = 0.0)]
    pub connect_rate_per_ip: f64,
    /// The request header a trusted proxy puts the client's address in (its last entry
    /// counts), e.g. `X-Forwarded-For`. Unset: the socket's peer address. Set it only
    /// when every connection comes through that proxy: clients can send it too.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXY_HEADER")]
    pub trusted_proxy_header: Option<String>,
    /// Connections that are upgraded (WebSocket) or accepted (TCP) but not logged in
    /// yet; past it upgrades get 503 and TCP connections close 1013 (slowloris guard).
    #[arg(long, env = "SWITCHBOARD_MAX_PENDING_LOGINS", default_value_t = 1024)]
    pub max_pending_logins: usize,
    /// Closed sessions cleaning up in Redis at once (presence, memberships,
    /// subscriptions); the rest wait their turn, while Redis answers. Bounds the memory
    /// of a mass disconnect (each clean-up holds ~14 KiB of Redis calls while it runs).
    /// Each clean-up makes its calls one after another, so with a distant Redis or many
    /// rooms per session a higher value drains a storm faster.
    #[arg(long, env = "SWITCHBOARD_MAX_TEARDOWNS", default_value_t = 256)]
    pub max_teardowns: usize,
    /// How often `online.watch` feeds are flushed: at most one `online.changes` frame
    /// per watcher per interval, however many users come and go.
    #[arg(long, env = "SWITCHBOARD_ONLINE_FEED_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub online_feed_interval: Duration,
    /// Most users one `online.changes` frame lists; the rest are counted as `dropped`.
    #[arg(long, env = "SWITCHBOARD_ONLINE_FEED_BATCH", default_value_t = 1000)]
    pub online_feed_batch: usize,
    /// Most users one session may watch by id with `online.watch`.
    #[arg(long, env = "SWITCHBOARD_ONLINE_WATCH_LIMIT", default_value_t = 1000)]
    pub online_watch_limit: usize,

    /// On SIGTERM, `/readyz` fails at once but the listeners stay open this long (new
    /// upgrades answered 503 + Retry-After) so load balancers notice before the drain.
    /// Default 5s; 0s in dev mode.
    #[arg(long, env = "SWITCHBOARD_DRAIN_DELAY", value_parser = humantime::parse_duration)]
    pub drain_delay: Option<Duration>,
    /// After the delay, clients are told to reconnect and closed spread over this period.
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Serve the browser app from this directory instead of the copy built into the
    /// binary (for developing the app without rebuilding); the repository's `web/`.
    #[arg(long, env = "SWITCHBOARD_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Log output format.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Parses a `Config` alone, for the built-in defaults.
#[derive(Parser)]
#[command(name = "switchboard")]
struct ConfigOnly {
    #[command(flatten)]
    config: Config,
}

/// The settings' parser with every `env = ...` source removed.
fn hermetic_command() -> clap::Command {
    ConfigOnly::command().mut_args(|arg| arg.env(None))
}

impl Default for Config {
    /// The built-in defaults, as if started with no flags and no `SWITCHBOARD_*`
    /// variables: the caller's environment is ignored, so tests are hermetic.
    fn default() -> Self {
        hermetic_command()
            .try_get_matches_from(["switchboard"])
            .and_then(|matches| ConfigOnly::from_arg_matches(&matches))
            .map(|parsed| parsed.config)
            .unwrap_or_else(|err| panic!("built-in defaults must parse: {err}"))
    }
}

mod validate;
pub use validate::refuse_renamed;

#[cfg(test)]
mod tests;
