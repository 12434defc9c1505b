//! Checks between settings that clap cannot express, and the dev-mode rule: a bad
//! combination fails at startup naming the setting.

use super::Config;
use std::net::SocketAddr;
use std::time::Duration;

/// Settings that were renamed or split: `(old, what replaced it)`.
const RENAMED: [(&str, &str); 1] = [(
    "SWITCHBOARD_IO_BUFFER_BYTES",
    "SWITCHBOARD_READ_BUFFER_BYTES and SWITCHBOARD_WRITE_BUFFER_BYTES",
)];

/// Refuses an environment that still sets a renamed setting (`is_set` says whether a
/// variable is set): it would otherwise be ignored without a word.
pub fn refuse_renamed(is_set: impl Fn(&str) -> bool) -> Result<(), String> {
    match RENAMED.iter().find(|(old, _)| is_set(old)) {
        Some((old, new)) => Err(format!("{old} is no longer read: set {new} instead")),
        None => Ok(()),
    }
}

impl Config {
    /// Checks relations between settings that clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("SWITCHBOARD_LOGIN_TIMEOUT", self.login_timeout),
            ("SWITCHBOARD_HTTP_HEADER_TIMEOUT", self.http_header_timeout),
            ("SWITCHBOARD_API_TIMEOUT", self.api_timeout),
            ("SWITCHBOARD_HEARTBEAT", self.heartbeat),
            ("SWITCHBOARD_IDLE_TIMEOUT", self.idle_timeout),
            ("SWITCHBOARD_WRITE_TIMEOUT", self.write_timeout),
            ("SWITCHBOARD_REDIS_TIMEOUT", self.redis_timeout),
            (
                "SWITCHBOARD_REDIS_PROBE_INTERVAL",
                self.redis_probe_interval,
            ),
            ("SWITCHBOARD_HISTORY_TTL", self.history_ttl),
            ("SWITCHBOARD_INBOX_TTL", self.inbox_ttl),
            ("SWITCHBOARD_MSG_ID_TTL", self.msg_id_ttl),
            ("SWITCHBOARD_GAME_TTL", self.game_ttl),
            ("SWITCHBOARD_RANK_INTERVAL", self.rank_interval),
            ("SWITCHBOARD_RANK_MAX_WAIT", self.rank_max_wait),
            (
                "SWITCHBOARD_RANK_STATUS_INTERVAL",
                self.rank_status_interval,
            ),
            (
                "SWITCHBOARD_ONLINE_FEED_INTERVAL",
                self.online_feed_interval,
            ),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        let counts = [
            ("SWITCHBOARD_MAX_FRAME_BYTES", self.max_frame_bytes),
            ("SWITCHBOARD_API_MAX_BODY_BYTES", self.api_max_body_bytes),
            ("SWITCHBOARD_READ_BUFFER_BYTES", self.read_buffer_bytes),
            ("SWITCHBOARD_WRITE_BUFFER_BYTES", self.write_buffer_bytes),
            (
                "SWITCHBOARD_MEMORY_HISTORY_BYTES",
                self.memory_history_bytes,
            ),
            ("SWITCHBOARD_OUTBOUND_QUEUE", self.outbound_queue),
            ("SWITCHBOARD_MAX_OUTBOUND_BYTES", self.max_outbound_bytes),
            ("SWITCHBOARD_MAX_PENDING_LOGINS", self.max_pending_logins),
            (
                "SWITCHBOARD_MAX_ROOMS_PER_SESSION",
                self.max_rooms_per_session,
            ),
            ("SWITCHBOARD_WHO_PAGE", self.who_page),
            ("SWITCHBOARD_MAX_NAME_CHARS", self.max_name_chars),
            ("SWITCHBOARD_ONLINE_FEED_BATCH", self.online_feed_batch),
            ("SWITCHBOARD_ONLINE_WATCH_LIMIT", self.online_watch_limit),
        ];
        for (name, n) in counts {
            if n == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if !(1..=65_535).contains(&self.listen_backlog) {
            return Err("SWITCHBOARD_LISTEN_BACKLOG must be between 1 and 65535".into());
        }
        if !(1..=tokio::sync::Semaphore::MAX_PERMITS).contains(&self.max_teardowns) {
            return Err(format!(
                "SWITCHBOARD_MAX_TEARDOWNS must be between 1 and {}",
                tokio::sync::Semaphore::MAX_PERMITS
            ));
        }
        let rates = [
            ("SWITCHBOARD_RATE_LIMIT", self.rate_limit),
            ("SWITCHBOARD_RATE_BURST", self.rate_burst),
            ("SWITCHBOARD_JOIN_RATE", self.join_rate),
            ("SWITCHBOARD_RATE_ABUSE_LIMIT", self.rate_abuse_limit),
            ("SWITCHBOARD_RANK_WINDOW", self.rank_window),
            ("SWITCHBOARD_RANK_MAX_WINDOW", self.rank_max_window),
        ];
        for (name, r) in rates {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!("{name} must be a positive number"));
            }
        }
        if !(self.rank_widen_per_s.is_finite() && self.rank_widen_per_s >= 0.0) {
            return Err("SWITCHBOARD_RANK_WIDEN_PER_S must be zero or more".to_owned());
        }
        if self.presence_ttl < Duration::from_secs(3) {
            return Err("SWITCHBOARD_PRESENCE_TTL must be at least 3s".to_owned());
        }
        if self.idle_timeout <= self.heartbeat {
            return Err(
                "SWITCHBOARD_IDLE_TIMEOUT must be longer than SWITCHBOARD_HEARTBEAT".to_owned(),
            );
        }
        if self.jwt_secret.is_some() && self.jwt_public_key_file.is_some() {
            return Err(
                "set only one of SWITCHBOARD_JWT_SECRET and SWITCHBOARD_JWT_PUBLIC_KEY_FILE"
                    .to_owned(),
            );
        }
        if self.jwt_secret.as_deref().is_some_and(str::is_empty) {
            return Err("SWITCHBOARD_JWT_SECRET must not be empty".to_owned());
        }
        if self.jwt_secret.is_some() && !self.jwt_alg.is_hmac() {
            return Err(
                "SWITCHBOARD_JWT_ALG must be HS256/HS384/HS512 with SWITCHBOARD_JWT_SECRET"
                    .to_owned(),
            );
        }
        if self.jwt_public_key_file.is_some() && self.jwt_alg.is_hmac() {
            return Err(
                "SWITCHBOARD_JWT_ALG must be an asymmetric algorithm with SWITCHBOARD_JWT_PUBLIC_KEY_FILE"
                    .to_owned(),
            );
        }
        if let Some(list) = &self.jwt_secrets {
            crate::auth::parse_named_secrets(list)?;
        }
        if self.api_key.as_deref().is_some_and(str::is_empty) {
            return Err("SWITCHBOARD_API_KEY must not be empty".to_owned());
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(['{', '}', ' ']) {
            return Err("SWITCHBOARD_REDIS_PREFIX must be non-empty without spaces or {}".into());
        }
        if let Some(url) = &self.redis_url {
            let scheme = url.split_once("://").map(|(s, _)| s);
            if !matches!(
                scheme,
                Some("redis" | "rediss" | "redis-cluster" | "rediss-cluster")
            ) {
                return Err(format!(
                    "SWITCHBOARD_REDIS_URL must start with redis://, rediss:// or redis-cluster:// (got {:?})",
                    scheme.unwrap_or(url.as_str())
                ));
            }
        }
        if self.admin_listen.is_some() && self.admin_listen == self.listen {
            return Err("SWITCHBOARD_ADMIN_LISTEN must differ from SWITCHBOARD_LISTEN".to_owned());
        }
        self.validate_mode()
    }

    /// Dev mode must be asked for: a configuration that looks like production but has no
    /// JWT key would otherwise mint tokens for anyone, with a secret per replica.
    fn validate_mode(&self) -> Result<(), String> {
        let has_key = self.has_jwt_key();
        if self.dev {
            if self.jwt_public_key_file.is_some() || !self.jwt_alg.is_hmac() {
                return Err(
                    "SWITCHBOARD_DEV mints HS* tokens: use SWITCHBOARD_JWT_SECRET with \
                     SWITCHBOARD_JWT_ALG HS256/HS384/HS512, or turn dev mode off"
                        .to_owned(),
                );
            }
            if self.redis_url.is_some() && self.jwt_secret.is_none() {
                return Err(
                    "SWITCHBOARD_DEV with SWITCHBOARD_REDIS_URL needs SWITCHBOARD_JWT_SECRET: \
                     without it every replica picks its own random secret and rejects the \
                     others' tokens"
                        .to_owned(),
                );
            }
            return Ok(());
        }
        let production = self.production_settings();
        if !has_key && !production.is_empty() {
            return Err(format!(
                "no SWITCHBOARD_JWT_SECRET or SWITCHBOARD_JWT_PUBLIC_KEY_FILE, but {} set as for \
                 production: set the JWT key, or SWITCHBOARD_DEV=1 to run in dev mode anyway",
                production.join(", ")
            ));
        }
        Ok(())
    }

    /// Settings that only make sense in production, by name.
    fn production_settings(&self) -> Vec<&'static str> {
        let public = |addr: Option<SocketAddr>| addr.is_some_and(|a| !a.ip().is_loopback());
        [
            (
                "SWITCHBOARD_LISTEN (not a loopback address)",
                public(self.listen),
            ),
            ("SWITCHBOARD_API_KEY", self.api_key.is_some()),
            ("SWITCHBOARD_REDIS_URL", self.redis_url.is_some()),
            ("SWITCHBOARD_JWT_ALG", !self.jwt_alg.is_hmac()),
            ("SWITCHBOARD_JWT_ISSUER", self.jwt_issuer.is_some()),
            ("SWITCHBOARD_JWT_AUDIENCE", self.jwt_audience.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    /// Dev mode: asked for, or nothing configured at all. `/dev/token` mints tokens.
    pub fn dev_mode(&self) -> bool {
        self.dev || !self.has_jwt_key()
    }

    /// Some token key is configured (a default key, named secrets or a JWKS file).
    pub fn has_jwt_key(&self) -> bool {
        self.jwt_secret.is_some()
            || self.jwt_public_key_file.is_some()
            || self.jwt_secrets.is_some()
            || self.jwt_jwks_file.is_some()
    }

    /// The HTTP address: loopback-only in dev mode unless set.
    pub fn listen_addr(&self) -> SocketAddr {
        let default = if self.dev_mode() {
            [127, 0, 0, 1]
        } else {
            [0, 0, 0, 0]
        };
        self.listen
            .unwrap_or_else(|| SocketAddr::from((default, 8080)))
    }

    /// How long listeners stay open after SIGTERM with readiness off.
    pub fn drain_delay(&self) -> Duration {
        self.drain_delay.unwrap_or(if self.dev_mode() {
            Duration::ZERO
        } else {
            Duration::from_secs(5)
        })
    }
}
