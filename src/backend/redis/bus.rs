//! The event bus on Redis: publishing (logged messages in one Lua call), replay, the
//! delivery watermark, and the receive path from pub/sub to the local sink, with gaps
//! filled from the logs.

use super::*;

impl RedisBackend {
    /// Forwards every pub/sub message to the local hub.
    pub(super) async fn receive(self: Arc<Self>) {
        let mut rx = self.sub.message_rx();
        loop {
            let message = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return,
                // Inline, so what it dispatches comes before newer live messages.
                _ = self.catch_up_now.notified() => {
                    self.catch_up().await;
                    continue;
                }
                m = rx.recv() => m,
            };
            match message {
                Ok(message) => {
                    let channel: &str = &message.channel;
                    let now = now_ms();
                    let probe = self
                        .probes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(channel)
                        .map(|seen| *seen = now)
                        .is_some();
                    if probe {
                        // The probe carries its send time: its trip is the pub/sub lag.
                        if let Some(sent) = message
                            .value
                            .as_string()
                            .and_then(|s| s.parse::<u64>().ok())
                        {
                            self.metrics
                                .redis_pubsub_lag_seconds
                                .set(now.saturating_sub(sent) as f64 / 1000.0);
                        }
                        continue;
                    }
                    self.deliver(channel, &message.value).await;
                }
                Err(RecvError::Lagged(n)) => {
                    self.metrics.bus_lost_messages.inc_by(n);
                    tracing::warn!(lost = n, "pub/sub receiver lagged; messages dropped");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    pub(super) async fn deliver(self: &Arc<Self>, channel: &str, value: &RedisValue) {
        let Some(topic) = self.keys.topic(channel) else {
            return;
        };
        let Some(payload) = value.as_str() else {
            return;
        };
        let Some((at, json)) = Self::split_payload(&payload) else {
            return;
        };
        let mut event: Event = match serde_json::from_str(json) {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(%channel, cause = %err, "undecodable bus message");
                return;
            }
        };
        if let Some(at) = at {
            self.fill_gap(&topic, &at).await;
            event.set_position(at);
        }
        // Sessions raise the DM watermark themselves once a DM is really written.
        self.hub.dispatch(&topic, &event);
    }

    /// Splits `<seq> <epoch> <json>` (logged) or `0 <json>` (not logged).
    fn split_payload(payload: &str) -> Option<(Option<Position>, &str)> {
        let (seq, rest) = payload.split_once(' ')?;
        let seq: u64 = seq.parse().unwrap_or(0);
        if seq == 0 {
            return Some((None, rest));
        }
        // Tolerates `<seq> <json>` from a replica that predates epochs.
        let (epoch, json) = match rest.split_once(' ') {
            Some((epoch, json)) if !epoch.starts_with('{') => (Epoch::new(epoch), json),
            _ => (Epoch::default(), rest),
        };
        Some((Some(Position { seq, epoch }), json))
    }

    /// Logged topics reach this replica complete and in order (filtering happens later,
    /// in the hub), so a jump in seq means messages were lost on the way: while the
    /// subscriber reconnected, or when the local receiver lagged. They are fetched from
    /// the topic's log and dispatched first. A new epoch means the log started again
    /// (Redis restarted empty): everything before `at` in it is fetched.
    pub(super) async fn fill_gap(&self, topic: &Topic, at: &Position) {
        let from = {
            let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            match seen.insert(topic.clone(), at.clone()) {
                // First message here: sessions that joined read the log themselves.
                None => return,
                Some(last) if last.epoch != at.epoch && at.epoch.is_known() => 1,
                Some(last) if last.seq == 0 || at.seq <= last.seq + 1 => return,
                Some(last) => last.seq + 1,
            }
        };
        if at.seq <= from {
            return;
        }
        let log = self.keys.log(topic).swap_remove(1);
        let range = vec![from.to_string(), (at.seq - 1).to_string()];
        let read = if self.commands_ready().await {
            self.eval::<RedisValue>(&self.scripts.range, vec![log], range)
                .await
        } else {
            Err(unavailable("redis commands unavailable"))
        };
        match read {
            Ok(value) => {
                let events = Self::log_entries(value.into_array(), &at.epoch);
                for event in &events {
                    self.hub.dispatch(topic, event);
                }
                self.metrics
                    .bus_recovered_messages
                    .inc_by(events.len() as u64);
                tracing::info!(
                    ?topic,
                    from,
                    seq = at.seq,
                    epoch = at.epoch.as_str(),
                    recovered = events.len(),
                    "filled a gap from the log"
                );
            }
            Err(err) => {
                // Later messages go on: sessions would drop these if they came after.
                let lost = at.seq - from;
                self.metrics.bus_lost_messages.inc_by(lost);
                tracing::warn!(?topic, lost, cause = %err, "could not fill a gap; messages lost");
            }
        }
    }

    /// After the subscriber (re)connected: whatever logged topics this replica follows
    /// received meanwhile is read from their logs and dispatched, so a message published
    /// while the subscription was down is not held back until the next one shows the
    /// gap (or lost, if none comes). Sessions drop what they already have.
    pub(super) async fn catch_up(&self) {
        let followed: Vec<(Topic, Position)> = self
            .last_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(topic, _)| self.hub.has_interest(topic))
            .map(|(t, p)| (t.clone(), p.clone()))
            .collect();
        if !followed.is_empty() && !self.commands_ready().await {
            // Redone when the command client reconnects.
            self.catch_up_pending.store(true, Ordering::Release);
            tracing::warn!(
                topics = followed.len(),
                "catch-up postponed: redis commands unavailable"
            );
            return;
        }
        let mut recovered = 0usize;
        for chunk in followed.chunks(256) {
            let replays = futures_util::future::join_all(chunk.iter().map(|(topic, last)| {
                let limit = match topic {
                    Topic::User(_) => self.inbox_size,
                    _ => self.history_size,
                };
                Bus::replay(self, topic, last, limit)
            }))
            .await;
            for ((topic, _), replay) in chunk.iter().zip(replays) {
                let replay = match replay {
                    Ok(replay) => replay,
                    Err(err) => {
                        self.catch_up_pending.store(true, Ordering::Release);
                        tracing::warn!(?topic, cause = %err, "catch-up after reconnect failed");
                        continue;
                    }
                };
                if let Some(at) = replay.events.last().and_then(Event::position) {
                    self.last_seen
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(topic.clone(), at);
                }
                for event in &replay.events {
                    self.hub.dispatch(topic, event);
                }
                recovered += replay.events.len();
            }
        }
        self.metrics.bus_recovered_messages.inc_by(recovered as u64);
        tracing::info!(
            topics = followed.len(),
            recovered,
            "caught up with the logs after (re)subscribing"
        );
    }

    /// The replay script: events of `topic` after `cursor`, or, for a user's inbox
    /// without one, after the user's delivery watermark (read by the same script).
    /// Returns the cursor the replay started from.
    async fn replay_from(
        &self,
        topic: &Topic,
        cursor: Option<&Position>,
        limit: usize,
    ) -> Result<(Position, Replay), BackendError> {
        let mut keys = self.keys.log(topic);
        let ttl = match topic {
            Topic::User(user) => {
                keys.push(self.keys.user(user, "dlv"));
                self.inbox_ttl_ms
            }
            _ => self.history_ttl_ms,
        };
        let args = vec![
            cursor.map(|c| c.seq.to_string()).unwrap_or_default(),
            limit.to_string(),
            cursor
                .map(|c| c.epoch.as_str().to_owned())
                .unwrap_or_default(),
            ttl.to_string(),
        ];
        let value: RedisValue = self.eval(&self.scripts.replay, keys, args).await?;
        let mut items = value.into_array().into_iter();
        let int = |v: Option<RedisValue>| v.and_then(|v| v.as_i64()).unwrap_or(0).max(0) as u64;
        let text = |v: Option<RedisValue>| {
            v.and_then(|v| v.as_string())
                .map(|e| Epoch::new(&e))
                .unwrap_or_default()
        };
        let head = int(items.next());
        let epoch = text(items.next());
        let reset = int(items.next()) == 1;
        let after = Position {
            seq: int(items.next()),
            epoch: text(items.next()),
        };
        if self.hub.has_interest(topic) {
            // Where a catch-up after a reconnect starts for a topic with no traffic yet.
            self.last_seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(topic.clone())
                .or_insert_with(|| Position::at(head, &epoch));
        }
        let events = Self::log_entries(items.collect(), &epoch);
        let from = if reset { 0 } else { after.seq };
        let missed = head.saturating_sub(from);
        let replay = Replay {
            complete: !reset && from <= head && events.len() as u64 == missed,
            events,
            head,
            epoch,
            reset,
        };
        Ok((after, replay))
    }

    /// What a subscriber receives for an event published without a log: seq 0, then
    /// the event's JSON (a script publishing an announcement sends the same bytes).
    pub(super) fn unlogged_payload(event: &Event) -> Result<String, BackendError> {
        Ok(format!(
            "0 {}",
            serde_json::to_string(event).map_err(bad_reply)?
        ))
    }

    /// Decodes `{id, event JSON, ...}` entries of the log of `epoch`; the id `<seq>-1`
    /// carries the seq (the JSON was written before its seq existed).
    pub(super) fn log_entries(flat: Vec<RedisValue>, epoch: &Epoch) -> Vec<Event> {
        let mut events = Vec::new();
        for pair in flat.chunks(2) {
            let [id, json] = pair else { continue };
            let seq = id
                .as_str()
                .and_then(|id| id.split('-').next().and_then(|s| s.parse::<u64>().ok()));
            let (Some(seq), Some(json)) = (seq, json.as_str()) else {
                continue;
            };
            match serde_json::from_str::<Event>(&json) {
                Ok(mut event) => {
                    event.set_position(Position::at(seq, epoch));
                    events.push(event);
                }
                Err(err) => tracing::warn!(cause = %err, "undecodable log entry"),
            }
        }
        events
    }
}

#[async_trait]
impl Bus for RedisBackend {
    async fn publish(&self, topic: &Topic, event: Event) -> Result<(), BackendError> {
        let payload = Self::unlogged_payload(&event)?;
        let channel = self.keys.channel(topic);
        if self.sharded {
            self.call(self.cmd.spublish::<i64, _, _>(channel, payload))
                .await?;
        } else {
            self.call(self.cmd.publish::<i64, _, _>(channel, payload))
                .await?;
        }
        Ok(())
    }

    async fn publish_logged(
        &self,
        topic: &Topic,
        event: Event,
        dedupe: Option<&str>,
    ) -> Result<Published, BackendError> {
        let (cap, ttl) = match topic {
            Topic::User(_) => (self.inbox_size, self.inbox_ttl_ms),
            _ => (self.history_size, self.history_ttl_ms),
        };
        let mut keys = self.keys.log(topic);
        keys.push(self.keys.channel(topic));
        keys.push(match dedupe {
            Some(key) => self.keys.msg_id(topic, key),
            None => keys[0].clone(),
        });
        let mut args = vec![
            serde_json::to_string(&event).map_err(bad_reply)?,
            cap.to_string(),
            ttl.to_string(),
            if self.sharded { "SPUBLISH" } else { "PUBLISH" }.to_owned(),
            match dedupe {
                Some(_) => self.msg_id_ttl.as_millis().max(1).to_string(),
                None => "0".to_owned(),
            },
        ];
        if let Topic::Game(room) = topic {
            keys.extend(self.game_keys(room));
            args.push(self.game_ttl.as_millis().to_string());
        }
        let (seq, _epoch, duplicate): (i64, String, i64) =
            self.eval(&self.scripts.publish_logged, keys, args).await?;
        Ok(Published {
            seq: seq.max(0) as u64,
            duplicate: duplicate == 1,
        })
    }

    async fn replay(
        &self,
        topic: &Topic,
        after: &Position,
        limit: usize,
    ) -> Result<Replay, BackendError> {
        Ok(self.replay_from(topic, Some(after), limit).await?.1)
    }

    async fn inbox(
        &self,
        user: &UserId,
        cursor: Option<&Position>,
        limit: usize,
    ) -> Result<(Position, Replay), BackendError> {
        self.replay_from(&Topic::User(user.clone()), cursor, limit)
            .await
    }

    async fn delivered(&self, user: &UserId) -> Result<Position, BackendError> {
        let key = self.keys.user(user, "dlv");
        let value: Option<String> = self.call(self.cmd.get(key)).await?;
        // `<seq> <epoch>`; a bare seq predates epochs.
        Ok(value
            .map(|v| match v.split_once(' ') {
                Some((seq, epoch)) => Position {
                    seq: seq.parse().unwrap_or(0),
                    epoch: Epoch::new(epoch),
                },
                None => Position {
                    seq: v.parse().unwrap_or(0),
                    epoch: Epoch::default(),
                },
            })
            .unwrap_or_default())
    }

    async fn mark_delivered(&self, user: &UserId, upto: &Position) -> Result<(), BackendError> {
        let keys = vec![
            self.keys.user(user, "dlv"),
            self.keys.log(&Topic::User(user.clone())).swap_remove(0),
        ];
        let args = vec![
            upto.seq.to_string(),
            self.inbox_ttl_ms.to_string(),
            upto.epoch.as_str().to_owned(),
        ];
        self.eval::<i64>(&self.scripts.mark_delivered, keys, args)
            .await
            .map(|_| ())
    }

    async fn subscribe(&self, topic: &Topic) -> Result<(), BackendError> {
        self.subs.change(self.keys.channel(topic), 1).await
    }

    async fn unsubscribe(&self, topic: &Topic) -> Result<(), BackendError> {
        if !self.hub.has_interest(topic) {
            // A later subscription starts afresh: no "gap" back to this point.
            let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.remove(topic);
            crate::sparse::shrink_when_sparse(&mut seen);
        }
        self.subs.change(self.keys.channel(topic), -1).await
    }
}
