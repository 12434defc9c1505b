//! Game rooms on Redis: a hash and a watcher set per game (hash tag `{g:<id>}`), changed
//! by atomic Lua scripts so replicas can race safely (the ranked queue is `matcher`).

use super::{RedisBackend, bad_reply};
use crate::backend::{BackendError, GameRefusal, GameState, Games, Seat, Seated};
use crate::protocol::{RoomId, UserId};
use async_trait::async_trait;
use fred::prelude::*;
use fred::types::Value as RedisValue;
use fred::types::sorted_sets::Ordering;

impl RedisBackend {
    pub(super) fn game_keys(&self, room: &RoomId) -> Vec<String> {
        let p = &self.keys.prefix;
        vec![
            format!("{p}:{{g:{room}}}:state"),
            format!("{p}:{{g:{room}}}:watchers"),
        ]
    }

    /// Pending game checks of all replicas: game id -> when it is due (ms).
    fn checks_key(&self) -> String {
        format!("{}:{{games}}:checks", self.keys.prefix)
    }

    fn game_ttl_ms(&self) -> String {
        self.game_ttl.as_millis().to_string()
    }

    /// Runs a game script returning `{status, owner, opponent, started, starts, watchers}`
    /// on the game's keys (and `extra` ones in its slot).
    async fn game_call(
        &self,
        script: &fred::types::scripts::Script,
        room: &RoomId,
        args: Vec<String>,
        extra: Vec<String>,
    ) -> Result<Result<Seated, GameRefusal>, BackendError> {
        let mut keys = self.game_keys(room);
        keys.extend(extra);
        let value: RedisValue = self.eval(script, keys, args).await?;
        let items = value.into_array();
        let text = |i: usize| items.get(i).and_then(|v| v.as_string()).unwrap_or_default();
        let int = |i: usize| items.get(i).and_then(RedisValue::as_i64).unwrap_or(0);
        let refusal = match text(0).as_str() {
            "ok" => None,
            "not_found" => Some(GameRefusal::NotFound),
            "room_full" => Some(GameRefusal::RoomFull),
            "conflict" => Some(GameRefusal::Conflict),
            other => return Err(BackendError::Reply(format!("game reply {other:?}"))),
        };
        if let Some(refusal) = refusal {
            return Ok(Err(refusal));
        }
        let owner = UserId::new(&text(1)).map_err(bad_reply)?;
        let opponent = match text(2).as_str() {
            "" => None,
            id => Some(UserId::new(id).map_err(bad_reply)?),
        };
        Ok(Ok(Seated {
            state: GameState {
                room: room.clone(),
                owner,
                opponent,
                started: int(3) == 1,
                watchers: int(5).max(0) as usize,
            },
            starts: int(4) == 1,
        }))
    }
}

#[async_trait]
impl Games for RedisBackend {
    async fn create(
        &self,
        room: &RoomId,
        owner: &UserId,
        opponent: Option<&UserId>,
        now_ms: u64,
    ) -> Result<(), BackendError> {
        let args = vec![
            owner.to_string(),
            opponent.map(UserId::to_string).unwrap_or_default(),
            self.game_ttl_ms(),
            now_ms.to_string(),
        ];
        self.eval::<i64>(&self.scripts.game_create, self.game_keys(room), args)
            .await
            .map(|_| ())
    }

    async fn get(&self, room: &RoomId) -> Result<Option<GameState>, BackendError> {
        let args = vec![String::new(), "0".into(), String::new()];
        Ok(self
            .game_call(&self.scripts.game_watch, room, args, Vec::new())
            .await?
            .ok()
            .map(|s| s.state))
    }

    async fn join(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Result<Seated, GameRefusal>, BackendError> {
        let args = vec![user.to_string(), self.game_ttl_ms()];
        self.game_call(&self.scripts.game_join, room, args, Vec::new())
            .await
    }

    async fn watch(
        &self,
        room: &RoomId,
        user: &UserId,
        limit: usize,
    ) -> Result<Result<GameState, GameRefusal>, BackendError> {
        let args = vec![user.to_string(), limit.to_string(), self.game_ttl_ms()];
        Ok(self
            .game_call(&self.scripts.game_watch, room, args, Vec::new())
            .await?
            .map(|s| s.state))
    }

    async fn unwatch(&self, room: &RoomId, user: &UserId) -> Result<(), BackendError> {
        let key = self.game_keys(room).swap_remove(1);
        self.call(self.cmd.srem::<i64, _, _>(key, user.as_str()))
            .await
            .map(|_| ())
    }

    async fn away(&self, room: &RoomId, user: &UserId, mark: u64) -> Result<(), BackendError> {
        let key = self.game_keys(room).swap_remove(0);
        let args = vec!["away".into(), user.to_string(), mark.to_string()];
        self.eval::<RedisValue>(&self.scripts.game_seat, vec![key], args)
            .await
            .map(|_| ())
    }

    async fn lease(&self, seats: &[(RoomId, UserId)], until_ms: u64) -> Result<(), BackendError> {
        let until = until_ms.to_string();
        let calls = seats.iter().map(|(room, user)| {
            let key = self.game_keys(room).swap_remove(0);
            let args = vec!["lease".into(), user.to_string(), until.clone()];
            self.eval::<RedisValue>(&self.scripts.game_seat, vec![key], args)
        });
        match super::failed(calls).await {
            0 => Ok(()),
            _ => Err(BackendError::Unavailable(
                "some seat leases were not renewed",
            )),
        }
    }

    async fn seats(&self, room: &RoomId) -> Result<Option<Vec<Seat>>, BackendError> {
        let key = self.game_keys(room).swap_remove(0);
        let args = vec!["seats".into()];
        let value: RedisValue = self.eval(&self.scripts.game_seat, vec![key], args).await?;
        let items: Vec<String> = value
            .into_array()
            .into_iter()
            .map(|v| v.as_string().unwrap_or_default())
            .collect();
        if items.len() < 6 {
            return Ok(None);
        }
        let mut seats = Vec::with_capacity(2);
        for seat in items.chunks(3) {
            if seat[0].is_empty() {
                continue;
            }
            seats.push(Seat {
                user: UserId::new(&seat[0]).map_err(bad_reply)?,
                away: seat[1].parse().unwrap_or(0),
                lease: seat[2].parse().unwrap_or(0),
            });
        }
        Ok(Some(seats))
    }

    async fn schedule(&self, room: &RoomId, due_ms: u64) -> Result<(), BackendError> {
        let key = self.checks_key();
        self.call(self.cmd.zadd::<i64, _, _>(
            key,
            None,
            Some(Ordering::LessThan),
            false,
            false,
            (due_ms as f64, room.as_str()),
        ))
        .await
        .map(|_| ())
    }

    async fn reschedule(&self, room: &RoomId, due_ms: Option<u64>) -> Result<(), BackendError> {
        let key = self.checks_key();
        match due_ms {
            Some(due) => self
                .call(self.cmd.zadd::<i64, _, _>(
                    key,
                    None,
                    None,
                    false,
                    false,
                    (due as f64, room.as_str()),
                ))
                .await
                .map(|_| ()),
            None => self
                .call(self.cmd.zrem::<i64, _, _>(key, room.as_str()))
                .await
                .map(|_| ()),
        }
    }

    async fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<RoomId>, BackendError> {
        let key = self.checks_key();
        let rooms: Vec<String> = self
            .call(self.cmd.zrangebyscore(
                key,
                "-inf",
                now_ms as f64,
                false,
                Some((0, limit as i64)),
            ))
            .await?;
        Ok(rooms.iter().filter_map(|r| RoomId::new(r).ok()).collect())
    }

    /// Game traffic already refreshes the TTL inside `publish_logged`.
    async fn touch(&self, _room: &RoomId) -> Result<(), BackendError> {
        Ok(())
    }

    async fn close(&self, room: &RoomId) -> Result<Option<GameState>, BackendError> {
        Ok(self
            .game_call(
                &self.scripts.game_close,
                room,
                Vec::new(),
                // The game's log goes with it: kept, it would outlive the game by
                // history_ttl (24 h) for nobody.
                self.keys.log(&crate::event::Topic::Game(room.clone())),
            )
            .await?
            .ok()
            .map(|s| s.state))
    }
}
