//! Bounds the in-memory logs as a whole. Past `memory_history_bytes` the least recently
//! used logs go first: rooms and games nobody on this replica follows, then followed
//! ones, DM inboxes last (they hold what offline users have not read). Logs idle past
//! their TTL (`history_ttl`, `inbox_ttl` for inboxes, as on Redis) are dropped by a
//! sweep at most once a minute. A dropped log starts again under a new epoch, so
//! nobody mistakes its new seqs for old ones.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes charged for a log besides its entries (map entry, epoch, counters).
pub(super) const LOG_OVERHEAD: usize = 256;
/// Bytes charged per remembered client message id besides the id itself.
pub(super) const ID_OVERHEAD: usize = 64;
/// Bytes charged per entry besides its JSON.
const ENTRY_OVERHEAD: usize = 160;
/// How often idle logs are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub(super) fn topic_bytes(topic: &Topic) -> usize {
    match topic {
        Topic::Room(r) | Topic::Game(r) => r.as_str().len(),
        Topic::User(u) => u.as_str().len(),
        Topic::All | Topic::Online => 0,
    }
}

/// What an entry costs: its JSON size plus a fixed overhead.
pub(super) fn event_bytes(event: &Event) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing an event cannot fail: every map key is a string.
    let _ = serde_json::to_writer(&mut count, event);
    count.0 + ENTRY_OVERHEAD
}

/// A log dropped by a pass.
pub(super) struct Dropped {
    pub(super) entries: usize,
}

pub(super) struct Retention {
    max_bytes: usize,
    history_ttl: Duration,
    inbox_ttl: Duration,
    total: AtomicUsize,
    last_sweep: Mutex<Instant>,
}

impl Retention {
    pub(super) fn new(config: &Config) -> Self {
        Retention {
            max_bytes: config.memory_history_bytes,
            history_ttl: config.history_ttl,
            inbox_ttl: config.inbox_ttl,
            total: AtomicUsize::new(0),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Applies a change; returns the new total.
    pub(super) fn charge(&self, added: usize, freed: usize) -> usize {
        if added >= freed {
            self.total.fetch_add(added - freed, Ordering::Relaxed) + (added - freed)
        } else {
            let less = freed - added;
            self.total
                .fetch_sub(less, Ordering::Relaxed)
                .saturating_sub(less)
        }
    }

    pub(super) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub(super) fn needs_pass(&self, total: usize) -> bool {
        total > self.max_bytes || lock(&self.last_sweep).elapsed() >= SWEEP_EVERY
    }

    /// Drops idle logs, then least recently used ones until 90% of the bound is free.
    /// Logs in use right now (locked) are skipped.
    pub(super) fn pass(
        &self,
        logs: &RwLock<HashMap<Topic, Arc<Mutex<Log>>>>,
        sink: &dyn EventSink,
    ) -> Vec<Dropped> {
        *lock(&self.last_sweep) = Instant::now();
        let mut logs = logs.write().unwrap_or_else(|e| e.into_inner());
        let mut candidates: Vec<(bool, bool, Instant, Topic)> = Vec::new();
        let mut idle: Vec<Topic> = Vec::new();
        for (topic, log) in logs.iter() {
            let Ok(log) = log.try_lock() else { continue };
            let inbox = matches!(topic, Topic::User(_));
            let ttl = if inbox {
                self.inbox_ttl
            } else {
                self.history_ttl
            };
            let followed = sink.has_interest(topic);
            if !followed && log.touched.elapsed() > ttl {
                idle.push(topic.clone());
            } else {
                candidates.push((inbox, followed, log.touched, topic.clone()));
            }
        }
        let mut dropped = Vec::new();
        for topic in idle {
            dropped.extend(self.drop_log(&mut logs, &topic));
        }
        let target = self.max_bytes / 10 * 9;
        if self.total() > self.max_bytes {
            // Inboxes last, followed logs after the others, oldest use first.
            candidates.sort_unstable_by_key(|(inbox, followed, touched, _)| {
                (*inbox, *followed, *touched)
            });
            for (_, _, _, topic) in candidates {
                if self.total() <= target {
                    break;
                }
                dropped.extend(self.drop_log(&mut logs, &topic));
            }
        }
        if !dropped.is_empty() {
            tracing::info!(
                dropped = dropped.len(),
                bytes = self.total(),
                "in-memory logs dropped (idle, or over SWITCHBOARD_MEMORY_HISTORY_BYTES)"
            );
        }
        dropped
    }

    fn drop_log(
        &self,
        logs: &mut HashMap<Topic, Arc<Mutex<Log>>>,
        topic: &Topic,
    ) -> Option<Dropped> {
        let log = logs.remove(topic)?;
        let mut log = lock(&log);
        log.dropped = true;
        self.charge(0, log.bytes);
        Some(Dropped {
            entries: log.entries.len(),
        })
    }
}
