//! The outbound side: queued deliveries written in batches with one flush, replay
//! overlap dropped by seq, replies and the delivery watermark for direct messages.

use super::*;

/// Outcome of writing queued frames.
pub(super) enum Written {
    Ok,
    /// The client did not take the bytes in time: a slow consumer.
    TimedOut,
    /// The connection is gone.
    Broken,
}

impl<T: Transport> Session<'_, T> {
    /// Records DMs actually written, so a later login without `dm_since` resumes after
    /// them (queued but unwritten DMs are replayed instead).
    pub(super) async fn mark_dms_delivered(&mut self) {
        if self.dm_seq > self.dm_marked {
            self.dm_marked = self.dm_seq;
            if let Err(err) = self
                .gw
                .mark_delivered(&self.identity.user, self.dm_seq)
                .await
            {
                tracing::debug!(cause = %err, "delivery watermark not saved");
            }
        }
    }

    /// Writes the first queued frame and whatever else is ready, then flushes once.
    pub(super) async fn write_queued(&mut self, first: Arc<Delivery>) -> Written {
        self.gw
            .metrics
            .outbound_queue_depth
            .observe((self.rx.len() + 1) as f64);
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match self.rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        self.gw.metrics.outbound_queued.sub(batch.len() as i64);
        let frames: Vec<&Encoded> = batch
            .iter()
            .filter(|d| self.fresh(d.order.as_ref()))
            .map(|d| &d.frame)
            .collect();
        if frames.is_empty() {
            return Written::Ok;
        }
        let t = &mut *self.t;
        let write = async {
            for frame in frames {
                t.feed(frame).await?;
            }
            t.flush().await
        };
        match timeout(self.gw.config.write_timeout, write).await {
            Ok(Ok(())) => Written::Ok,
            Ok(Err(_)) => Written::Broken,
            Err(_) => Written::TimedOut,
        }
    }

    /// False for a frame already written by a replay or for a room already left.
    pub(super) fn fresh(&mut self, order: Option<&Ordered>) -> bool {
        match order {
            None => true,
            Some(Ordered::Room(room, seq)) => match self.rooms.get_mut(room) {
                Some(last) if *seq > *last => {
                    *last = *seq;
                    true
                }
                _ => false,
            },
            Some(Ordered::Game(room, seq)) => match self.games.get_mut(room) {
                Some((_, last)) if *seq > *last => {
                    *last = *seq;
                    true
                }
                _ => false,
            },
            Some(Ordered::GameOver(room)) => {
                if self.games.remove(room).is_some() {
                    self.ended_games.push(room.clone());
                    true
                } else {
                    false
                }
            }
            Some(Ordered::Direct(seq)) => {
                if *seq > self.dm_seq {
                    self.dm_seq = *seq;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Writes replayed events in order, skipping what this session already has.
    pub(super) async fn write_replay(&mut self, replay: Replay) -> bool {
        let deliveries: Vec<Delivery> = replay
            .events
            .iter()
            .filter_map(Delivery::for_event)
            .collect();
        if deliveries.is_empty() {
            return true;
        }
        let mut frames = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            if self.fresh(d.order.as_ref()) {
                frames.push(&d.frame);
            }
        }
        let t = &mut *self.t;
        let write = async {
            for frame in &frames {
                t.feed(frame).await?;
            }
            t.flush().await
        };
        let ok = matches!(
            timeout(self.gw.config.write_timeout, write).await,
            Ok(Ok(()))
        );
        if ok {
            for frame in &frames {
                self.gw
                    .metrics
                    .frames_out
                    .with_label_values(&[frame.kind()])
                    .inc();
            }
        }
        ok
    }

    /// Writes a reply; a client too slow to take it is closed like any slow consumer.
    pub(super) async fn reply(&mut self, frame: ServerFrame<'_>) {
        if !write_now(self.gw, self.t, frame).await && self.handle.close(close::SLOW_CONSUMER) {
            self.gw.metrics.slow_consumer_closes.inc();
        }
    }

    pub(super) async fn error(&mut self, id: Option<&Value>, code: ErrorCode, message: &str) {
        self.gw
            .metrics
            .errors
            .with_label_values(&[code.as_str()])
            .inc();
        self.reply(ServerFrame::Error { id, code, message }).await;
    }

    pub(super) async fn ok(&mut self, id: Option<&Value>, detail: OkDetail<'_>) {
        self.reply(ServerFrame::Ok { id, detail }).await;
    }
}
