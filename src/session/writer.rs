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
    /// The session was asked to close while writing.
    Interrupted,
}

impl<T: Transport> Session<'_, T> {
    /// Records DMs actually written, so a later login without `dm_since` resumes after
    /// them (queued but unwritten DMs are replayed instead).
    pub(super) async fn mark_dms_delivered(&mut self) {
        if self.dm != self.dm_marked {
            self.dm_marked = self.dm.clone();
            if let Err(err) = self
                .gw
                .mark_delivered(&self.identity.user, &self.dm_marked)
                .await
            {
                tracing::debug!(cause = %err, "delivery watermark not saved");
            }
        }
    }

    /// Writes what is queued (up to a batch), then flushes once.
    pub(super) async fn write_queued(&mut self) -> Written {
        let mut batch = Vec::new();
        let taken = self.handle.outbox.take(&mut batch, WRITE_BATCH);
        if batch.is_empty() {
            return Written::Ok;
        }
        self.gw
            .metrics
            .outbound_queue_depth
            .observe(taken.depth as f64);
        self.gw.metrics.outbound_queued.sub(batch.len() as i64);
        self.gw
            .metrics
            .outbound_queued_bytes
            .sub(taken.bytes as i64);
        let mut frames = Vec::with_capacity(batch.len());
        for d in &batch {
            self.admit(d, &mut frames);
        }
        if frames.is_empty() {
            return Written::Ok;
        }
        // Not boxed, though its timer and select (~370 bytes) are part of every
        // session's long-lived future: an allocation per write wake-up cost the fan-out
        // about 0.5 ms of p99 (loadtest/RESULTS.md, "Idle memory: size classes").
        match self.write_frames(&frames).await {
            Ok(()) => Written::Ok,
            Err(written) => written,
        }
    }

    /// Feeds frames and flushes once, within the write timeout.
    async fn write_frames(&mut self, frames: &[Encoded]) -> Result<(), Written> {
        let t = &mut *self.t;
        let write = async {
            for frame in frames {
                t.feed(frame).await?;
            }
            t.flush().await
        };
        // A close requested meanwhile (the queue overflowed while this write waited on
        // a client that does not read) cuts the write short: what was fed stays
        // buffered, and the close frame goes out after it with its own short deadline.
        tokio::select! {
            written = timeout(self.gw.config.write_timeout, write) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Written::Broken),
                Err(_) => Err(Written::TimedOut),
            },
            _ = self.handle.closed() => Err(Written::Interrupted),
        }
    }

    /// Adds what a delivery needs written to `out`: nothing when a replay already wrote
    /// it or the room was left, the frame, or a `stream.reset` first when its log
    /// started again under a new epoch.
    pub(super) fn admit(&mut self, d: &Delivery, out: &mut Vec<Encoded>) {
        let (advance, stream) = match d.order.as_ref() {
            None => (Advance::Fresh, None),
            Some(Ordered::Room(room, at)) => match self.rooms.get_mut(room) {
                Some(cursor) => (cursor.advance(at), Some((StreamKind::Room, Some(room), at))),
                None => (Advance::Seen, None),
            },
            Some(Ordered::Game(room, at)) => match self.games.get_mut(room) {
                Some((_, cursor)) => (cursor.advance(at), Some((StreamKind::Game, Some(room), at))),
                None => (Advance::Seen, None),
            },
            Some(Ordered::GameOver(room)) => {
                if self.games.remove(room).is_some() {
                    self.ended_games.push(room.clone());
                    (Advance::Fresh, None)
                } else {
                    (Advance::Seen, None)
                }
            }
            Some(Ordered::Direct(at)) => (self.dm.advance(at), Some((StreamKind::Dm, None, at))),
            Some(Ordered::Matched(at)) => {
                // Seq 0: published unlogged by an older replica (a rolling upgrade).
                let advance = if at.seq == 0 {
                    Advance::Fresh
                } else {
                    self.dm.advance(at)
                };
                if advance != Advance::Seen {
                    // Matched (from here or another device): no longer waiting.
                    self.ranked = None;
                }
                (advance, Some((StreamKind::Dm, None, at)))
            }
        };
        match advance {
            Advance::Seen => {}
            Advance::Fresh => out.push(d.frame.clone()),
            Advance::Reset => {
                if let Some((kind, room, at)) = stream {
                    tracing::info!(
                        session = %self.handle.id,
                        stream = ?kind,
                        room = room.map(|r| r.as_str()),
                        epoch = at.epoch.as_str(),
                        "stream log started again; client told to reset its cursor"
                    );
                    self.gw
                        .metrics
                        .stream_resets
                        .with_label_values(&[kind.as_str()])
                        .inc();
                    out.push(dispatch::reset_notice(kind, room, &at.epoch));
                }
                out.push(d.frame.clone());
            }
        }
    }

    /// Writes replayed events in order, after `notice` (a `stream.reset`) if any,
    /// skipping what this session already has.
    pub(super) async fn write_replay(&mut self, events: &[Event], notice: Option<Encoded>) -> bool {
        let deliveries: Vec<Delivery> = events.iter().filter_map(Delivery::for_event).collect();
        let mut frames: Vec<Encoded> = notice.into_iter().collect();
        for d in &deliveries {
            self.admit(d, &mut frames);
        }
        if frames.is_empty() {
            return true;
        }
        let ok = self.write_frames(&frames).await.is_ok();
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
