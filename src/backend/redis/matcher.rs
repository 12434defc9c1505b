//! The ranked queue on Redis and its matcher. The queue is one hash (`{mm}:players`,
//! user -> "<rating> <since ms> <session>") and a version counter every change bumps. A
//! matcher run costs Redis one small script when the queue did not change (the replica
//! keeps its last read), one HGETALL when it did, and a checked take only when there is
//! something to take: the replica chooses the pairs with `matchmaking::pair` and
//! `rank_take.lua` re-verifies each one, so replicas can race. With `MatchRun::exclusive_ms`
//! one replica runs per tick (a short run lease); the others only read the counts.

use super::rank_queue::Quiet;
use super::{RedisBackend, bad_reply};
use crate::backend::{
    BackendError, Match, MatchRun, Matchmaker, QueueStats, RECLAIM_PER_RUN, Taken,
};
use crate::matchmaking::{self, Waiting};
use crate::protocol::{RoomId, UserId};
use async_trait::async_trait;
use fred::prelude::*;
use fred::types::Value as RedisValue;

/// Most pairs one take script call takes (6–8 ms of Redis on a 2-core machine), so no
/// call holds Redis long even when thousands of pairs form at once.
const TAKE_CHUNK: usize = 1_000;

#[async_trait]
impl Matchmaker for RedisBackend {
    async fn enqueue(&self, player: &Waiting, session: &str) -> Result<bool, BackendError> {
        let k = self.keys.rank();
        let args = vec![
            player.user.to_string(),
            player.rating.to_string(),
            player.since_ms.to_string(),
            session.to_owned(),
        ];
        let keys = vec![k.players, k.version, k.changes];
        Ok(self
            .eval::<i64>(&self.scripts.rank_enqueue, keys, args)
            .await?
            == 1)
    }

    async fn dequeue(&self, user: &UserId, session: Option<&str>) -> Result<bool, BackendError> {
        let k = self.keys.rank();
        let args = vec![user.to_string(), session.unwrap_or("").to_owned()];
        let keys = vec![k.players, k.version, k.changes];
        Ok(self
            .eval::<i64>(&self.scripts.rank_dequeue, keys, args)
            .await?
            == 1)
    }

    async fn take_matches(&self, run: &MatchRun<'_>) -> Result<Taken, BackendError> {
        let k = self.keys.rank();
        let peek: Vec<i64> = self
            .eval(
                &self.scripts.rank_peek,
                vec![
                    k.players.clone(),
                    k.version.clone(),
                    k.pending.clone(),
                    k.run.clone(),
                ],
                vec![self.replica.clone(), run.exclusive_ms.to_string()],
            )
            .await?;
        let [claimed, version, queued, pending, due] = peek[..] else {
            return Err(BackendError::Reply(format!("matcher peek {peek:?}")));
        };
        let mut taken = Taken {
            queued: queued.max(0) as usize,
            pending: pending.max(0) as usize,
            ..Taken::default()
        };
        if claimed == 0 {
            return Ok(taken);
        }
        let now = run.now_ms;
        let orphan_ms = now.saturating_sub(run.drop_before_ms);
        let reclaim_due = due >= 0 && due as u64 <= now;
        let quiet = {
            let cache = self.rank_cache();
            cache.version == Some(version)
                && cache.quiet.is_some_and(|q| {
                    q.rules == run.rules
                        && q.orphan_ms == orphan_ms
                        && (q.from..q.until).contains(&now)
                })
        };
        if quiet && !reclaim_due {
            return Ok(taken);
        }
        let (queue, version) = self.queue_at(version, &k).await?;
        // Orphans (queued before `drop_before`) are dropped, not matched.
        let orphan = |i: usize| queue.players[i].since_ms < run.drop_before_ms;
        // At most a chunk of them per run (each is checked on its own); more go next run.
        let drops: Vec<usize> = (0..queue.players.len())
            .filter(|&i| orphan(i))
            .take(TAKE_CHUNK)
            .collect();
        let pairs: Vec<(usize, usize)> = if drops.is_empty() {
            matchmaking::pair(&queue.players, now, &run.rules)
        } else {
            let live: Vec<usize> = (0..queue.players.len()).filter(|&i| !orphan(i)).collect();
            let players: Vec<Waiting> = live.iter().map(|&i| queue.players[i].clone()).collect();
            matchmaking::pair(&players, now, &run.rules)
                .into_iter()
                .map(|(a, b)| (live[a], live[b]))
                .collect()
        };
        if pairs.is_empty() && drops.is_empty() {
            let until = matchmaking::quiet_until(&queue.players, now, &run.rules);
            let drop_at = queue.players.iter().map(|p| p.since_ms + orphan_ms).min();
            let until = drop_at.map_or(until, |d| until.min(d));
            let mut cache = self.rank_cache();
            if cache.version == Some(version) {
                cache.quiet = Some(Quiet {
                    from: now,
                    until,
                    rules: run.rules,
                    orphan_ms,
                });
            }
            if !reclaim_due {
                return Ok(taken);
            }
        }

        // The pairs go in chunks, so no one script call holds Redis for long; each chunk
        // after the first carries the version our previous chunk left, when that is known.
        let mut label = version;
        let (mut new_matches, mut recovered) = (Vec::new(), Vec::new());
        let deadline = (now + run.lease_ms).to_string();
        let mut chunks = pairs.chunks(TAKE_CHUNK).enumerate().peekable();
        let mut first = true;
        while first || chunks.peek().is_some() {
            let (c, chunk) = chunks.next().unwrap_or((0, &[]));
            let mut args = vec![
                now.to_string(),
                deadline.clone(),
                run.drop_before_ms.to_string(),
                if first { RECLAIM_PER_RUN } else { 0 }.to_string(),
                label.to_string(),
            ];
            let drops: &[usize] = if first { &drops } else { &[] };
            args.push(drops.len().to_string());
            args.reserve(2 * drops.len() + 6 * chunk.len());
            for &i in drops {
                args.push(queue.players[i].user.to_string());
                args.push(queue.entries[i].clone());
            }
            let mut found = Vec::with_capacity(chunk.len());
            for (j, &(a, b)) in chunk.iter().enumerate() {
                let (a, b) = (&queue.players[a], &queue.players[b]);
                let room = format!("{}{:08x}", run.room_prefix, c * TAKE_CHUNK + j + 1);
                let found_match = Match {
                    room: RoomId::new(&room).map_err(bad_reply)?,
                    a: a.clone(),
                    b: b.clone(),
                    made_ms: now,
                };
                let record = format!(
                    "{room} {} {} {} {} {} {} {now}",
                    a.user, a.rating, a.since_ms, b.user, b.rating, b.since_ms
                );
                args.push(room);
                args.push(a.user.to_string());
                args.push(queue.entries[chunk[j].0].clone());
                args.push(b.user.to_string());
                args.push(queue.entries[chunk[j].1].clone());
                args.push(record);
                found.push(found_match);
            }
            let keys = vec![
                k.players.clone(),
                k.version.clone(),
                k.pending.clone(),
                k.matches.clone(),
                k.changes.clone(),
            ];
            let value: RedisValue = self.eval(&self.scripts.rank_take, keys, args).await?;
            let items = value.into_array();
            let int = |i: usize| items.get(i).and_then(RedisValue::as_i64).unwrap_or(0);
            let flags = items
                .get(2)
                .and_then(RedisValue::as_string)
                .unwrap_or_default();
            let after = int(3);
            taken.queued = int(0).max(0) as usize;
            taken.pending = int(1).max(0) as usize;
            let all = flags.len() == found.len() && flags.bytes().all(|f| f == b'1');
            let mine: Vec<Match> = found
                .into_iter()
                .zip(flags.bytes())
                .filter(|(_, f)| *f == b'1')
                .map(|(m, _)| m)
                .collect();
            let removed = drops.len() + 2 * mine.len();
            new_matches.extend(mine);
            for v in items.iter().skip(4) {
                let record = v
                    .as_str()
                    .ok_or_else(|| BackendError::Reply("match record is not text".into()))?;
                recovered.push(parse_match(&record)?);
            }
            // Our own step is the only change since `label` when the version moved by one
            // (or not at all, with nothing removed) and every pair went through.
            let exact = label >= 0 && all && after == label + i64::from(removed > 0);
            label = if exact { after } else { -1 };
            first = false;
        }
        if label >= 0 && label != version {
            let pairs = pairs.iter().flat_map(|&(a, b)| [a, b]);
            self.after_take(version, label, &queue, drops.iter().copied().chain(pairs));
        }
        taken.recovered = recovered.len();
        taken.matches = new_matches;
        taken.matches.extend(recovered);
        Ok(taken)
    }

    async fn finish(&self, room: &RoomId) -> Result<(), BackendError> {
        let k = self.keys.rank();
        // The record first: a lease left without a record is dropped by the next run.
        self.call(self.cmd.hdel::<i64, _, _>(k.matches, room.as_str()))
            .await?;
        self.call(self.cmd.zrem::<i64, _, _>(k.pending, room.as_str()))
            .await?;
        Ok(())
    }

    async fn stats(&self, now_ms: u64) -> Result<QueueStats, BackendError> {
        let entries: Vec<String> = self.call(self.cmd.hvals(self.keys.rank().players)).await?;
        let waits_ms: Vec<u64> = entries
            .iter()
            .filter_map(|m| m.split(' ').nth(1)?.parse::<u64>().ok())
            .map(|since| now_ms.saturating_sub(since))
            .collect();
        Ok(QueueStats {
            len: waits_ms.len(),
            waits_ms,
        })
    }
}

/// Decodes "<room> <a> <a rating> <a since> <b> <b rating> <b since> <made ms>".
fn parse_match(record: &str) -> Result<Match, BackendError> {
    let bad = || BackendError::Reply(format!("match record {record:?}"));
    let fields: Vec<&str> = record.split(' ').collect();
    let [room, a, a_rating, a_since, b, b_rating, b_since, made] = fields[..] else {
        return Err(bad());
    };
    let number = |s: &str| s.parse::<f64>().map_err(|_| bad());
    let player = |user: &str, rating: &str, since: &str| -> Result<Waiting, BackendError> {
        Ok(Waiting {
            user: UserId::new(user).map_err(bad_reply)?,
            rating: number(rating)? as i64,
            since_ms: number(since)? as u64,
        })
    };
    Ok(Match {
        room: RoomId::new(room).map_err(bad_reply)?,
        a: player(a, a_rating, a_since)?,
        b: player(b, b_rating, b_since)?,
        made_ms: number(made)? as u64,
    })
}
