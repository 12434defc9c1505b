//! The in-memory bus: events loop straight back to the local sink; room, user and game
//! topics keep bounded logs for resume and offline delivery.

use super::*;

/// An ordered, bounded log of one topic.
#[derive(Default)]
struct Log {
    last_seq: u64,
    entries: VecDeque<Event>,
    /// For user topics: highest seq handed to a session.
    delivered: u64,
}

pub struct MemoryBus {
    sink: Arc<dyn EventSink>,
    logs: RwLock<HashMap<Topic, Arc<Mutex<Log>>>>,
    history_size: usize,
    inbox_size: usize,
    metrics: Arc<Metrics>,
}

impl MemoryBus {
    pub fn new(
        sink: Arc<dyn EventSink>,
        history_size: usize,
        inbox_size: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        MemoryBus {
            sink,
            logs: RwLock::default(),
            history_size,
            inbox_size,
            metrics,
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
        self.logs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(topic.clone())
            .or_default()
            .clone()
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

    async fn publish_logged(&self, topic: &Topic, mut event: Event) -> Result<u64, BackendError> {
        let cap = match topic {
            Topic::User(_) => self.inbox_size,
            _ => self.history_size,
        };
        let log = self.log(topic);
        // Dispatch under the topic lock so local delivery order equals seq order.
        let mut log = lock(&log);
        log.last_seq += 1;
        let seq = log.last_seq;
        event.set_seq(seq);
        // Sessions raise the DM watermark themselves once a DM is really written.
        self.sink.dispatch(topic, &event);
        if cap > 0 {
            log.entries.push_back(event);
            self.metrics.log_entries.inc();
            while log.entries.len() > cap {
                log.entries.pop_front();
                self.metrics.log_entries.dec();
            }
        }
        Ok(seq)
    }

    async fn replay(
        &self,
        topic: &Topic,
        after: u64,
        limit: usize,
    ) -> Result<Replay, BackendError> {
        let Some(log) = self.existing_log(topic) else {
            return Ok(Replay {
                events: Vec::new(),
                complete: after == 0,
                head: 0,
            });
        };
        let log = lock(&log);
        if after >= log.last_seq {
            return Ok(Replay {
                events: Vec::new(),
                complete: after == log.last_seq,
                head: log.last_seq,
            });
        }
        let first_kept = log.last_seq + 1 - log.entries.len() as u64;
        let missed = log.last_seq - after;
        let skip = log.entries.len().saturating_sub(missed as usize);
        let newer: Vec<Event> = log.entries.iter().skip(skip).cloned().collect();
        let take_from = newer.len().saturating_sub(limit);
        Ok(Replay {
            complete: after + 1 >= first_kept && take_from == 0,
            events: newer.into_iter().skip(take_from).collect(),
            head: log.last_seq,
        })
    }

    async fn delivered(&self, user: &UserId) -> Result<u64, BackendError> {
        Ok(self
            .existing_log(&Topic::User(user.clone()))
            .map(|log| lock(&log).delivered)
            .unwrap_or(0))
    }

    async fn mark_delivered(&self, user: &UserId, seq: u64) -> Result<(), BackendError> {
        if let Some(log) = self.existing_log(&Topic::User(user.clone())) {
            let mut log = lock(&log);
            log.delivered = log.delivered.max(seq);
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
