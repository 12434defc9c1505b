//! The replica's copy of the ranked queue, for the matcher (`matcher`): the queue as read
//! at some version, caught up from the queue's change log (`XRANGE` of the changes since)
//! when only a few changed, read whole (`HGETALL`) otherwise.

use super::keys::RankKeys;
use super::{BackendError, RedisBackend};
use crate::matchmaking::{self, Waiting};
use crate::protocol::UserId;
use fred::prelude::*;
use fred::types::Value as RedisValue;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

/// Most changes a replica catches up with from the log; past that it reads the queue
/// whole, which then costs about as much (the log keeps about 20,000).
const MAX_CATCH_UP: i64 = 5_000;

/// The queue as this replica last read it.
#[derive(Default)]
pub(super) struct QueueCache {
    /// The queue version the copy is at (None: nothing read yet). After a whole read it
    /// is the version seen just before, and the copy may hold a few later changes too:
    /// replaying those from the log again is harmless (each sets or deletes one entry).
    pub(super) version: Option<i64>,
    pub(super) queue: Arc<Snapshot>,
    /// The last run over this copy found nothing to do, and nothing can change before
    /// `until` ms (see `matchmaking::quiet_until`) unless the version moves.
    pub(super) quiet: Option<Quiet>,
}

#[derive(Default)]
pub(super) struct Snapshot {
    pub(super) players: Vec<Waiting>,
    /// Each player's entry exactly as stored, for the take's check.
    pub(super) entries: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) struct Quiet {
    pub(super) from: u64,
    pub(super) until: u64,
    pub(super) rules: matchmaking::Rules,
    /// `now - drop_before` of the run that found it quiet.
    pub(super) orphan_ms: u64,
}

impl RedisBackend {
    pub(super) fn rank_cache(&self) -> std::sync::MutexGuard<'_, QueueCache> {
        self.rank_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The queue at `version` (read just now by the caller) or later: the cached copy if
    /// the version has not moved, caught up from the change log if it moved a little,
    /// else one HGETALL. Returns the copy and its version.
    pub(super) async fn queue_at(
        &self,
        version: i64,
        k: &RankKeys,
    ) -> Result<(Arc<Snapshot>, i64), BackendError> {
        let (had, base) = {
            let cache = self.rank_cache();
            (cache.version, cache.queue.clone())
        };
        if had == Some(version) {
            return Ok((base, version));
        }
        let caught_up = match had {
            Some(had) if version > had && version - had <= MAX_CATCH_UP => {
                self.queue_catch_up(had, version, &base, &k.changes).await?
            }
            _ => None,
        };
        let (queue, at) = match caught_up {
            Some(found) => found,
            None => (self.read_queue(&k.players).await?, version),
        };
        let queue = Arc::new(queue);
        let mut cache = self.rank_cache();
        if cache.version == had {
            *cache = QueueCache {
                version: Some(at),
                queue: queue.clone(),
                quiet: None,
            };
        }
        Ok((queue, at))
    }

    async fn read_queue(&self, key: &str) -> Result<Snapshot, BackendError> {
        let raw: HashMap<String, String> = self.call(self.cmd.hgetall(key)).await?;
        Ok(snapshot(raw.into_iter()))
    }

    /// The copy at version `had` plus the logged changes since (at least up to `version`),
    /// with the version of the last; None if the log does not have them all (trimmed, or
    /// restarted).
    async fn queue_catch_up(
        &self,
        had: i64,
        version: i64,
        base: &Snapshot,
        key: &str,
    ) -> Result<Option<(Snapshot, i64)>, BackendError> {
        let start = format!("{}-1", had + 1);
        let count = Some(2 * MAX_CATCH_UP as u64);
        let log: RedisValue = self
            .call(self.cmd.xrange(key, start.as_str(), "+", count))
            .await?;
        // user -> its last change: Some(entry) queued, None gone.
        let mut last: HashMap<String, Option<String>> = HashMap::new();
        let mut at = had;
        for item in log.into_array() {
            let mut item = item.into_array().into_iter();
            let id = item.next().and_then(|v| v.as_string()).unwrap_or_default();
            let version = id.strip_suffix("-1").and_then(|v| v.parse::<i64>().ok());
            if version != Some(at + 1) {
                return Ok(None);
            }
            at += 1;
            let fields = item.next().map(RedisValue::into_array).unwrap_or_default();
            let change = fields.get(1).and_then(RedisValue::as_string);
            let Some(change) = change else {
                return Ok(None);
            };
            if let Some(added) = change.strip_prefix('+') {
                let Some((user, entry)) = added.split_once(' ') else {
                    return Ok(None);
                };
                last.insert(user.to_owned(), Some(entry.to_owned()));
            } else if let Some(removed) = change.strip_prefix('-') {
                for user in removed.split(' ') {
                    last.insert(user.to_owned(), None);
                }
            } else {
                return Ok(None);
            }
        }
        if at < version {
            return Ok(None);
        }
        let mut queue = Snapshot::default();
        for (p, e) in base.players.iter().zip(&base.entries) {
            if !last.contains_key(p.user.as_str()) {
                queue.players.push(p.clone());
                queue.entries.push(e.clone());
            }
        }
        let added = snapshot(
            last.into_iter()
                .filter_map(|(user, entry)| Some((user, entry?))),
        );
        queue.players.extend(added.players);
        queue.entries.extend(added.entries);
        Ok(Some((queue, at)))
    }

    /// Keeps the cached copy current after our own take, when it was the only change to
    /// the queue since the read (the version moved by exactly our steps, every pair went
    /// through): the queue is the read minus the pairs and drops, now at version `after`.
    /// Otherwise the next run catches up from the log.
    pub(super) fn after_take(
        &self,
        read: i64,
        after: i64,
        queue: &Snapshot,
        gone: impl Iterator<Item = usize>,
    ) {
        let mut cache = self.rank_cache();
        if cache.version != Some(read) {
            return;
        }
        let mut left = vec![true; queue.players.len()];
        for i in gone {
            left[i] = false;
        }
        let keep: Vec<usize> = (0..left.len()).filter(|&i| left[i]).collect();
        *cache = QueueCache {
            version: Some(after),
            queue: Arc::new(Snapshot {
                players: keep.iter().map(|&i| queue.players[i].clone()).collect(),
                entries: keep.iter().map(|&i| queue.entries[i].clone()).collect(),
            }),
            quiet: None,
        };
    }
}

fn snapshot(entries: impl Iterator<Item = (String, String)>) -> Snapshot {
    let mut queue = Snapshot::default();
    for (user, entry) in entries {
        // An entry we cannot read is left alone (and never matched).
        let Some(player) = parse_entry(&user, &entry) else {
            tracing::warn!(%user, %entry, "unreadable ranked queue entry");
            continue;
        };
        queue.players.push(player);
        queue.entries.push(entry);
    }
    queue
}

/// Reads "<rating> <since ms> <session>".
fn parse_entry(user: &str, entry: &str) -> Option<Waiting> {
    let mut fields = entry.splitn(3, ' ');
    let rating = fields.next()?.parse().ok()?;
    let since_ms = fields.next()?.parse().ok()?;
    Some(Waiting {
        user: UserId::new(user).ok()?,
        rating,
        since_ms,
    })
}
