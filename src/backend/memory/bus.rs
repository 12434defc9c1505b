//! The in-memory bus: events loop straight back to the local sink; room, user and game
//! topics keep bounded logs for resume and offline delivery. Logs are bounded each (by
//! count) and together (by bytes, see `retention`), so fresh room names cost memory
//! only until it is needed.

mod retention;

use super::*;

/// An ordered, bounded log of one topic.
struct Log {
    last_seq: u64,
    /// Distinct for every log this process creates, and for every process: a client
    /// resuming after a restart (or after the log was dropped) sees the reset.
    epoch: Epoch,
    entries: VecDeque<Event>,
    /// What each entry was charged (measured once, when appended).
    sizes: VecDeque<usize>,
    /// For user topics: highest seq handed to a session.
    delivered: u64,
    /// Dedupe keys logged within `msg_id_ttl`, with their seq, oldest first.
    recent_ids: VecDeque<(Instant, String)>,
    seen_ids: HashMap<String, u64>,
    /// Bytes charged for this log (its entries and itself), and its last use.
    bytes: usize,
    touched: Instant,
    /// Taken out of the map by `retention`: a writer that still holds it gets a new one.
    dropped: bool,
}

/// Dedupe keys remembered per log at most (the oldest are forgotten first).
const MAX_REMEMBERED_IDS: usize = 10_000;

impl Log {
    /// The seq already logged under `key`, forgetting keys older than `ttl`.
    fn seen(&mut self, key: &str, ttl: Duration) -> Option<u64> {
        let now = Instant::now();
        while let Some((at, old)) = self.recent_ids.front() {
            if now.duration_since(*at) < ttl && self.recent_ids.len() < MAX_REMEMBERED_IDS {
                break;
            }
            self.seen_ids.remove(old);
            self.recent_ids.pop_front();
        }
        self.seen_ids.get(key).copied()
    }

    fn remember(&mut self, key: &str, seq: u64) {
        self.recent_ids.push_back((Instant::now(), key.to_owned()));
        self.seen_ids.insert(key.to_owned(), seq);
    }
}

pub struct MemoryBus {
    sink: Arc<dyn EventSink>,
    logs: RwLock<HashMap<Topic, Arc<Mutex<Log>>>>,
    history_size: usize,
    inbox_size: usize,
    msg_id_ttl: Duration,
    metrics: Arc<Metrics>,
    retention: retention::Retention,
    /// This process's start (µs since the Unix epoch): the first part of every epoch.
    started_us: u128,
    /// Logs created so far: the second part.
    created: std::sync::atomic::AtomicU64,
}

impl MemoryBus {
    pub fn new(sink: Arc<dyn EventSink>, config: &Config, metrics: Arc<Metrics>) -> Self {
        MemoryBus {
            sink,
            logs: RwLock::default(),
            history_size: config.history_size,
            inbox_size: config.inbox_size,
            msg_id_ttl: config.msg_id_ttl,
            metrics,
            retention: retention::Retention::new(config),
            started_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0),
            created: Default::default(),
        }
    }

    fn new_log(&self) -> Log {
        let n = self
            .created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Log {
            last_seq: 0,
            epoch: Epoch::new(&format!("{}.{n}", self.started_us)),
            entries: VecDeque::new(),
            sizes: VecDeque::new(),
            delivered: 0,
            recent_ids: VecDeque::new(),
            seen_ids: HashMap::new(),
            bytes: 0,
            touched: Instant::now(),
            dropped: false,
        }
    }

    fn log(&self, topic: &Topic) -> Arc<Mutex<Log>> {
        if let Some(log) = self
            .logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
        {
            return log.clone();
        }
        let (log, created) = {
            let mut logs = self.logs.write().unwrap_or_else(|e| e.into_inner());
            match logs.get(topic) {
                Some(log) => (log.clone(), None),
                None => {
                    let mut log = self.new_log();
                    log.bytes = retention::LOG_OVERHEAD + retention::topic_bytes(topic);
                    let charged = log.bytes;
                    let log = Arc::new(Mutex::new(log));
                    logs.insert(topic.clone(), log.clone());
                    (log, Some(charged))
                }
            }
        };
        if let Some(bytes) = created {
            self.charge(bytes, 0);
        }
        log
    }

    /// Accounts for bytes added to and freed from logs; past the bound, or when the
    /// idle sweep is due, drops logs (see `retention`).
    fn charge(&self, added: usize, freed: usize) {
        let total = self.retention.charge(added, freed);
        self.metrics.log_bytes.set(total as i64);
        if self.retention.needs_pass(total) {
            let dropped = self.retention.pass(&self.logs, self.sink.as_ref());
            for log in &dropped {
                self.metrics.log_entries.sub(log.entries as i64);
            }
            self.metrics.logs_evicted.inc_by(dropped.len() as u64);
            self.metrics.log_bytes.set(self.retention.total() as i64);
        }
    }

    fn existing_log(&self, topic: &Topic) -> Option<Arc<Mutex<Log>>> {
        self.logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .cloned()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &Topic, event: Event) -> Result<(), BackendError> {
        self.sink.dispatch(topic, &event);
        Ok(())
    }

    async fn publish_logged(
        &self,
        topic: &Topic,
        mut event: Event,
        dedupe: Option<&str>,
    ) -> Result<Published, BackendError> {
        let cap = match topic {
            Topic::User(_) => self.inbox_size,
            _ => self.history_size,
        };
        // Dispatch under the topic lock so local delivery order equals seq order.
        let arc = self.log(topic);
        let fresh;
        let mut log = lock(&arc);
        if log.dropped {
            // Retention dropped it between lookup and lock: write to its successor.
            drop(log);
            fresh = self.log(topic);
            log = lock(&fresh);
        }
        if let Some(key) = dedupe
            && let Some(seq) = log.seen(key, self.msg_id_ttl)
        {
            return Ok(Published {
                seq,
                duplicate: true,
            });
        }
        log.last_seq += 1;
        log.touched = Instant::now();
        let seq = log.last_seq;
        event.set_position(Position::at(seq, &log.epoch));
        // Sessions raise the DM watermark themselves once a DM is really written.
        self.sink.dispatch(topic, &event);
        let (mut added, mut freed) = (0, 0);
        if cap > 0 {
            let size = retention::event_bytes(&event);
            added += size;
            log.entries.push_back(event);
            log.sizes.push_back(size);
            self.metrics.log_entries.inc();
            while log.entries.len() > cap {
                log.entries.pop_front();
                freed += log.sizes.pop_front().unwrap_or(0);
                self.metrics.log_entries.dec();
            }
        }
        if let Some(key) = dedupe {
            added += key.len() + retention::ID_OVERHEAD;
            log.remember(key, seq);
        }
        log.bytes = (log.bytes + added).saturating_sub(freed);
        drop(log);
        self.charge(added, freed);
        Ok(Published {
            seq,
            duplicate: false,
        })
    }

    async fn replay(
        &self,
        topic: &Topic,
        after: &Position,
        limit: usize,
    ) -> Result<Replay, BackendError> {
        let log = self.log(topic);
        let mut log = lock(&log);
        log.touched = Instant::now();
        let reset = after.epoch.is_known() && after.epoch != log.epoch;
        let after = if reset { 0 } else { after.seq };
        let head = log.last_seq;
        if after >= head || limit == 0 {
            return Ok(Replay {
                events: Vec::new(),
                complete: !reset && after == head,
                head,
                epoch: log.epoch.clone(),
                reset,
            });
        }
        let first_kept = head + 1 - log.entries.len() as u64;
        let missed = head - after;
        let skip = log.entries.len().saturating_sub(missed as usize);
        let newer: Vec<Event> = log.entries.iter().skip(skip).cloned().collect();
        let take_from = newer.len().saturating_sub(limit);
        Ok(Replay {
            complete: !reset && after + 1 >= first_kept && take_from == 0,
            events: newer.into_iter().skip(take_from).collect(),
            head,
            epoch: log.epoch.clone(),
            reset,
        })
    }

    async fn delivered(&self, user: &UserId) -> Result<Position, BackendError> {
        Ok(self
            .existing_log(&Topic::User(user.clone()))
            .map(|log| {
                let log = lock(&log);
                Position::at(log.delivered, &log.epoch)
            })
            .unwrap_or_default())
    }

    async fn mark_delivered(&self, user: &UserId, upto: &Position) -> Result<(), BackendError> {
        if let Some(log) = self.existing_log(&Topic::User(user.clone())) {
            let mut log = lock(&log);
            if !upto.epoch.is_known() || upto.epoch == log.epoch {
                log.delivered = log.delivered.max(upto.seq.min(log.last_seq));
            }
        }
        Ok(())
    }

    async fn subscribe(&self, _topic: &Topic) -> Result<(), BackendError> {
        Ok(())
    }

    async fn unsubscribe(&self, _topic: &Topic) -> Result<(), BackendError> {
        Ok(())
    }
}
