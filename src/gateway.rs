//! The gateway's state, shared by every session and API handler: settings, the local
//! hub, the shared stores, metrics and the token verifier, plus start-up, readiness and
//! the accepting/draining switch. The rules that act on it live in `features`.

use crate::auth::Verifier;
use crate::backend::redis::RedisBackend;
use crate::backend::{self, Backends, Bus, ConnectError, Games, Matchmaker, Presence};
use crate::config::Config;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::per_ip::{IpSlot, PerIp, Refusal};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Why the gateway could not start, so the message says what failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid or inconsistent; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The shared backend could not be set up (not: is unreachable, which is retried).
    #[error(transparent)]
    Backend(#[from] ConnectError),
}

impl StartError {
    /// Exit code: 2 for configuration errors (like clap's usage errors), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) | StartError::Backend(ConnectError::Url(_)) => 2,
            StartError::Backend(_) => 1,
        }
    }
}

/// Everything a session or API handler needs, shared by reference.
pub struct Gateway {
    pub config: Config,
    /// Short random id of this process, part of every session id.
    pub replica: String,
    pub hub: Arc<Hub>,
    // The shared stores: reached through the feature methods, never directly.
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) games: Arc<dyn Games>,
    pub(crate) matchmaker: Arc<dyn Matchmaker>,
    /// Players in the ranked queue as this replica's matcher last saw them (for
    /// `rank.queued` and `rank.waiting` without a read per session).
    pub(crate) rank_queued: AtomicUsize,
    pub metrics: Arc<Metrics>,
    pub verifier: Verifier,
    /// Set when running on Redis: readiness and shutdown need it.
    redis: Option<Arc<RedisBackend>>,
    pub(crate) next_session: AtomicU64,
    /// False once draining started: `/readyz` fails and new logins are refused.
    accepting: AtomicBool,
    /// Connections and connection rate per client address.
    pub per_ip: Arc<PerIp>,
    /// Connections upgraded or accepted that have not logged in yet.
    pending_logins: AtomicUsize,
    /// Places for sessions cleaning up in the backend (`SWITCHBOARD_MAX_TEARDOWNS`).
    teardowns: tokio::sync::Semaphore,
}

/// A connection's place among those not logged in yet; given back when dropped.
pub struct PendingLogin(Arc<Gateway>);

impl Drop for PendingLogin {
    fn drop(&mut self) {
        self.0.pending_logins.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.pending_logins.dec();
    }
}

/// Counts one in a gauge for as long as it lives, also when the future holding it is
/// dropped halfway.
pub struct GaugeHold(prometheus::IntGauge);

impl GaugeHold {
    fn count(gauge: prometheus::IntGauge) -> Self {
        gauge.inc();
        GaugeHold(gauge)
    }
}

impl Drop for GaugeHold {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A connection counted in `switchboard_connections` (and against
/// `SWITCHBOARD_MAX_CONNECTIONS`) from its admission, before a WebSocket upgrade is even
/// answered, to its end: the next request sees it at once. Given back when dropped, also
/// when an upgrade never completes.
pub type ConnectionSlot = GaugeHold;

impl Gateway {
    /// Builds the gateway: the Redis backend when `redis_url` is set, else in-memory.
    pub async fn start(config: Config) -> Result<Arc<Self>, StartError> {
        config.validate().map_err(StartError::Config)?;
        let verifier = Verifier::from_config(&config).map_err(StartError::Config)?;
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(metrics.clone(), config.online_feed_batch));
        let replica = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let Backends {
            bus,
            presence,
            games,
            matchmaker,
            redis,
        } = backend::connect(&config, hub.clone(), metrics.clone(), &replica).await?;
        metrics.connection_limit.set(config.max_connections as i64);
        let per_ip = PerIp::new(config.max_connections_per_ip, config.connect_rate_per_ip);
        Ok(Arc::new(Gateway {
            replica,
            hub,
            bus,
            presence,
            games,
            matchmaker,
            rank_queued: AtomicUsize::new(0),
            metrics,
            verifier,
            redis,
            next_session: AtomicU64::new(1),
            accepting: AtomicBool::new(true),
            per_ip,
            pending_logins: AtomicUsize::new(0),
            teardowns: tokio::sync::Semaphore::new(config.max_teardowns),
            config,
        }))
    }

    /// Ready for traffic: not draining, and the shared backend (if any) works end to end.
    pub fn is_ready(&self) -> bool {
        self.is_accepting() && self.redis.as_ref().is_none_or(|r| r.healthy())
    }

    /// Stops backend background work after the drain.
    pub async fn close(&self) {
        if let Some(redis) = &self.redis {
            redis.close().await;
        }
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
        self.metrics.draining.set(1);
    }

    /// Open connections (logged in or not) on this replica, all transports.
    pub fn connection_count(&self) -> usize {
        ["ws", "tcp"]
            .iter()
            .map(|t| self.metrics.connections.with_label_values(&[*t]).get())
            .sum::<i64>()
            .max(0) as usize
    }

    /// Counts an admitted connection over transport `T` until the slot is dropped.
    pub fn count_connection<T: crate::transport::Transport>(&self) -> ConnectionSlot {
        GaugeHold::count(self.metrics.connections.with_label_values(&[T::KIND]))
    }

    /// True when `SWITCHBOARD_MAX_CONNECTIONS` is set and reached. A soft cap: upgrades
    /// racing each other may pass it by a few.
    pub fn at_connection_limit(&self) -> bool {
        let cap = self.config.max_connections;
        cap > 0 && self.connection_count() >= cap
    }

    /// Counts a connection from `ip` against its address's limits; `None` (counted as
    /// refused) when over them.
    pub fn admit_ip(&self, ip: IpAddr) -> Result<Option<IpSlot>, Refusal> {
        if !self.per_ip.enabled() {
            return Ok(None);
        }
        match self.per_ip.admit(ip) {
            Ok(slot) => Ok(Some(slot)),
            Err(refusal) => {
                self.refused(refusal.reason());
                tracing::debug!(%ip, reason = refusal.reason(), "connection refused by the per-address limit");
                Err(refusal)
            }
        }
    }

    /// A place for a connection that has yet to log in, or `None` when
    /// `SWITCHBOARD_MAX_PENDING_LOGINS` are already waiting: sockets that upgrade and
    /// then say nothing cannot crowd out real clients (each is bounded by the login
    /// timeout, but many at once would still take every file descriptor).
    pub fn pending_login(self: &Arc<Self>) -> Option<PendingLogin> {
        let before = self.pending_logins.fetch_add(1, Ordering::AcqRel);
        if before >= self.config.max_pending_logins {
            self.pending_logins.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.metrics.pending_logins.inc();
        Some(PendingLogin(self.clone()))
    }

    /// Waits for a place to clean up a closed session in the backend, counted in
    /// `switchboard_teardowns_waiting` meanwhile: a mass disconnect then holds at most
    /// `SWITCHBOARD_MAX_TEARDOWNS` clean-ups' Redis calls in memory at once. Only while
    /// Redis answers: then the queue costs no time (Redis serves the calls in turn
    /// anyway, and in order the first sessions finish first), but in an outage every
    /// clean-up takes its full timeouts, and a closed session must not wait minutes for
    /// its close frame. `None` (go ahead) on the memory backend or when Redis is down.
    pub async fn teardown_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let redis = self.redis.as_ref()?;
        if let Ok(permit) = self.teardowns.try_acquire() {
            return Some(permit);
        }
        let _waiting = GaugeHold::count(self.metrics.teardowns_waiting.clone());
        // One acquire for the whole wait: it keeps this session's place in the queue
        // across the health checks.
        let acquire = self.teardowns.acquire();
        tokio::pin!(acquire);
        loop {
            match tokio::time::timeout(self.config.redis_timeout, &mut acquire).await {
                Ok(permit) => return permit.ok(),
                Err(_) if !redis.healthy() => return None,
                Err(_) => {}
            }
        }
    }

    /// Counts a connection turned away before its session started.
    pub fn refused(&self, reason: &str) {
        self.metrics
            .connections_refused
            .with_label_values(&[reason])
            .inc();
    }
}
