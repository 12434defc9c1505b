//! The Prometheus registry and every named metric. Shared by reference; no locks.
//! Labels never carry user or room ids, so cardinality stays fixed.

pub mod allocator;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Standard `process_*` metrics (open fds vs limit, memory, CPU), kept unprefixed.
    process: Registry,
    /// Open connections by transport (`ws`, `tcp`), logged in or not.
    pub connections: IntGaugeVec,
    /// Login attempts by result (`ok`, `invalid`, `timeout`, `not_login`, `conflict`, ...).
    pub logins: IntCounterVec,
    /// Inbound client frames by type.
    pub frames_in: IntCounterVec,
    /// Outbound frames by type (each recipient counts once).
    pub frames_out: IntCounterVec,
    /// Frames handed to local sessions' queues by fan-out.
    pub deliveries: IntCounter,
    /// Time to hand one event to all its local recipients.
    pub fanout_seconds: Histogram,
    /// Sessions closed because their outbound queue overflowed or a write timed out.
    pub slow_consumer_closes: IntCounter,
    /// Streams a session found started again under a new epoch, by stream kind.
    pub stream_resets: IntCounterVec,
    /// Inbound frames refused by the rate limiter.
    pub rate_limited: IntCounter,
    /// Frames waiting in all sessions' outbound queues on this replica.
    pub outbound_queued: IntGauge,
    /// Bytes of the frames waiting in all sessions' outbound queues on this replica.
    pub outbound_queued_bytes: IntGauge,
    /// Connections upgraded or accepted but not logged in yet.
    pub pending_logins: IntGauge,
    /// Closed sessions waiting for a place to clean up (`SWITCHBOARD_MAX_TEARDOWNS`).
    pub teardowns_waiting: IntGauge,
    /// Depth of a session's queue each time its writer wakes up.
    pub outbound_queue_depth: Histogram,
    /// Inbound frames answered with `error`, by code.
    pub errors: IntCounterVec,
    /// Sessions closed, by close code.
    pub closes: IntCounterVec,
    /// Entries kept in memory-backend logs (room history and DM inboxes).
    pub log_entries: IntGauge,
    /// In-memory backend: bytes held by logs, and logs dropped to stay under the bound.
    pub log_bytes: IntGauge,
    pub logs_evicted: IntCounter,
    /// HTTP API requests by route and status class.
    pub api_requests: IntCounterVec,
    /// 1 while commands and the pub/sub probe both work.
    pub redis_up: IntGauge,
    /// Latency of Redis commands and scripts.
    pub redis_command_seconds: Histogram,
    /// Redis calls that failed, by kind (`disconnected`, `timeout`, `command`).
    pub redis_errors: IntCounterVec,
    /// Time the last pub/sub probe took from PUBLISH to this replica's subscriber.
    pub redis_pubsub_lag_seconds: Gauge,
    /// Redis (re)connections established.
    pub redis_reconnects: IntCounter,
    /// Channels this replica is subscribed to.
    pub redis_subscribed_channels: IntGauge,
    /// Probe channels readiness waits for: one per Redis Cluster primary, else one.
    pub redis_probe_shards: IntGauge,
    /// Pub/sub messages dropped because the local receiver fell behind.
    pub bus_lost_messages: IntCounter,
    /// Logged messages lost on the way from Redis and fetched back from the log.
    pub bus_recovered_messages: IntCounter,
    /// Game rooms created (friend and ranked).
    pub games_created: IntCounter,
    /// Game rooms closed, by reason.
    pub games_closed: IntCounterVec,
    /// Players waiting in the ranked queue (as last seen by this replica).
    pub rank_queue: IntGauge,
    /// Ranked pairs formed by this replica.
    pub rank_matches: IntCounter,
    /// Time from `rank.join` to a match.
    pub rank_wait_seconds: Histogram,
    /// Ranked matches taken but not yet announced to both players (all replicas).
    pub rank_pending: IntGauge,
    /// Matches this replica took over after another's lease ran out.
    pub rank_recovered: IntCounter,
    /// Players who waited `rank_max_wait` and left the queue with `rank.timeout`.
    pub rank_timeouts: IntCounter,
    /// Connections turned away before a session started, by reason
    /// (`limit`, `draining`).
    pub connections_refused: IntCounterVec,
    /// The configured per-replica connection cap (0: none), for "near the cap" alerts.
    pub connection_limit: IntGauge,
    /// 1 from SIGTERM until exit.
    pub draining: IntGauge,
    /// 1 while `/readyz` answers 200.
    pub ready: IntGauge,
    /// Token key reloads (SIGHUP, key file change) by result (`ok`, `error`).
    pub jwt_key_reloads: IntCounterVec,
    /// Token verification keys in force.
    pub jwt_keys: IntGauge,
    /// 1 while the last key reload failed (the keys in force are older than the files).
    pub jwt_key_reload_failed: IntGauge,
    /// Sessions closed because their token expired (4011).
    pub token_expiries: IntCounter,
    /// `refresh` requests by result (`ok`, `invalid`, `other_user`).
    pub refreshes: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("switchboard".into()), None)
            .unwrap_or_else(|_| Registry::new());
        match allocator::AllocatorCollector::new() {
            Ok(collector) => {
                if let Err(err) = registry.register(Box::new(collector)) {
                    tracing::warn!(cause = %err, "allocator metrics unavailable");
                }
            }
            Err(err) => tracing::warn!(cause = %err, "allocator metrics unavailable"),
        }
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.unwrap_or_else(|e| panic!("metric definition is static: {e}"));
                registry
                    .register(Box::new(m.clone()))
                    .unwrap_or_else(|e| panic!("metric names are unique: {e}"));
                m
            }};
        }
        let latency_buckets = vec![
            0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
        ];
        Metrics {
            connections: reg!(IntGaugeVec::new(
                Opts::new("connections", "Open client connections"),
                &["transport"]
            )),
            logins: reg!(IntCounterVec::new(
                Opts::new("logins_total", "Login attempts by result"),
                &["result"]
            )),
            frames_in: reg!(IntCounterVec::new(
                Opts::new("frames_in_total", "Inbound client frames by type"),
                &["type"]
            )),
            frames_out: reg!(IntCounterVec::new(
                Opts::new("frames_out_total", "Outbound frames by type"),
                &["type"]
            )),
            deliveries: reg!(IntCounter::new(
                "deliveries_total",
                "Frames handed to local session queues by fan-out"
            )),
            fanout_seconds: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "fanout_seconds",
                    "Time to hand one event to all local recipients"
                )
                .buckets(latency_buckets)
            )),
            slow_consumer_closes: reg!(IntCounter::new(
                "slow_consumer_closes_total",
                "Sessions closed because they did not read fast enough"
            )),
            stream_resets: reg!(IntCounterVec::new(
                Opts::new(
                    "stream_resets_total",
                    "Logged streams whose log started again under a new epoch, seen by a session"
                ),
                &["stream"]
            )),
            rate_limited: reg!(IntCounter::new(
                "rate_limited_frames_total",
                "Inbound frames refused by the rate limiter"
            )),
            outbound_queued: reg!(IntGauge::new(
                "outbound_queued_frames",
                "Frames waiting in outbound queues on this replica"
            )),
            outbound_queued_bytes: reg!(IntGauge::new(
                "outbound_queued_bytes",
                "Bytes of the frames waiting in outbound queues on this replica"
            )),
            pending_logins: reg!(IntGauge::new(
                "pending_logins",
                "Connections upgraded or accepted but not logged in yet"
            )),
            teardowns_waiting: reg!(IntGauge::new(
                "teardowns_waiting",
                "Closed sessions waiting for a place to clean up in the backend"
            )),
            outbound_queue_depth: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "outbound_queue_depth",
                    "Session queue depth when its writer wakes"
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0])
            )),
            errors: reg!(IntCounterVec::new(
                Opts::new("errors_total", "Error replies by code"),
                &["code"]
            )),
            closes: reg!(IntCounterVec::new(
                Opts::new("closes_total", "Sessions closed by close code"),
                &["code"]
            )),
            log_entries: reg!(IntGauge::new(
                "memory_log_entries",
                "Entries in in-memory room histories and DM inboxes"
            )),
            log_bytes: reg!(IntGauge::new(
                "memory_log_bytes",
                "Bytes of message data held in in-memory logs"
            )),
            logs_evicted: reg!(IntCounter::new(
                "memory_logs_evicted_total",
                "In-memory logs dropped because they were idle past the history TTL or over the byte bound"
            )),
            api_requests: reg!(IntCounterVec::new(
                Opts::new("api_requests_total", "HTTP API requests"),
                &["route", "status"]
            )),
            redis_up: reg!(IntGauge::new(
                "redis_up",
                "1 while Redis commands and the pub/sub probe work"
            )),
            redis_command_seconds: reg!(Histogram::with_opts(
                HistogramOpts::new("redis_command_seconds", "Redis command latency").buckets(vec![
                    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0
                ])
            )),
            redis_errors: {
                let errors = reg!(IntCounterVec::new(
                    Opts::new("redis_errors_total", "Redis calls that failed, by kind"),
                    &["kind"]
                ));
                // Every kind starts at 0, so rates and alerts have a series from the start.
                for kind in ["disconnected", "timeout", "command"] {
                    errors.with_label_values(&[kind]);
                }
                errors
            },
            redis_pubsub_lag_seconds: reg!(Gauge::new(
                "redis_pubsub_lag_seconds",
                "Pub/sub round trip of the last readiness probe"
            )),
            redis_reconnects: reg!(IntCounter::new(
                "redis_reconnects_total",
                "Redis connections established"
            )),
            redis_subscribed_channels: reg!(IntGauge::new(
                "redis_subscribed_channels",
                "Pub/sub channels this replica subscribes to"
            )),
            redis_probe_shards: reg!(IntGauge::new(
                "redis_probe_shards",
                "Probe channels readiness waits for (one per Redis Cluster primary)"
            )),
            bus_lost_messages: reg!(IntCounter::new(
                "bus_lost_messages_total",
                "Pub/sub messages dropped: the receiver lagged, or a gap could not be read back from the log"
            )),
            bus_recovered_messages: reg!(IntCounter::new(
                "bus_recovered_messages_total",
                "Logged messages lost in pub/sub and fetched back from the log"
            )),
            games_created: reg!(IntCounter::new("games_created_total", "Game rooms created")),
            games_closed: reg!(IntCounterVec::new(
                Opts::new("games_closed_total", "Game rooms closed by reason"),
                &["reason"]
            )),
            rank_queue: reg!(IntGauge::new(
                "rank_queue_length",
                "Players waiting in the ranked queue"
            )),
            rank_matches: reg!(IntCounter::new(
                "rank_matches_total",
                "Ranked pairs formed by this replica"
            )),
            rank_wait_seconds: reg!(Histogram::with_opts(
                HistogramOpts::new("rank_wait_seconds", "Time from rank.join to a match").buckets(
                    vec![0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]
                )
            )),
            rank_pending: reg!(IntGauge::new(
                "rank_pending_matches",
                "Ranked matches taken but not yet announced to both players"
            )),
            rank_recovered: reg!(IntCounter::new(
                "rank_recovered_matches_total",
                "Ranked matches taken over after another replica's lease ran out"
            )),
            rank_timeouts: reg!(IntCounter::new(
                "rank_timeouts_total",
                "Players who left the ranked queue unmatched after the maximum wait"
            )),
            connections_refused: reg!(IntCounterVec::new(
                Opts::new(
                    "connections_refused_total",
                    "Connections refused before a session started, by reason"
                ),
                &["reason"]
            )),
            connection_limit: reg!(IntGauge::new(
                "connection_limit",
                "Most connections this replica accepts (0: no cap)"
            )),
            draining: reg!(IntGauge::new(
                "draining",
                "1 while the replica drains after SIGTERM"
            )),
            ready: reg!(IntGauge::new("ready", "1 while /readyz answers 200")),
            jwt_key_reloads: {
                let reloads = reg!(IntCounterVec::new(
                    Opts::new(
                        "jwt_key_reloads_total",
                        "Token key reloads (SIGHUP, key file change) by result"
                    ),
                    &["result"]
                ));
                for result in ["ok", "error"] {
                    reloads.with_label_values(&[result]);
                }
                reloads
            },
            token_expiries: reg!(IntCounter::new(
                "token_expiries_total",
                "Sessions closed because their token expired"
            )),
            refreshes: reg!(IntCounterVec::new(
                Opts::new("token_refreshes_total", "refresh requests by result"),
                &["result"]
            )),
            jwt_key_reload_failed: reg!(IntGauge::new(
                "jwt_key_reload_failed",
                "1 while the last token key reload failed and older keys stay in force"
            )),
            jwt_keys: reg!(IntGauge::new(
                "jwt_keys",
                "Token verification keys in force"
            )),
            registry,
            process: process_registry(),
        }
    }

    /// Prometheus text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        if let Err(err) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!(cause = %err, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// `process_*` metrics where the platform has them (Linux); empty elsewhere.
fn process_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    if let Err(err) = registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    )) {
        tracing::warn!(cause = %err, "process metrics unavailable");
    }
    registry
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
