//! Single-node backend: the bus loops events straight back to the local hub, logs and
//! presence, games and the ranked queue live in process memory, one file per trait.
//! The default for `cargo run` and most tests.

mod bus;
mod games;
mod matchmaker;
mod presence;

pub use bus::MemoryBus;
pub use games::MemoryGames;
pub use matchmaker::MemoryMatchmaker;
pub use presence::MemoryPresence;

use super::{
    BackendError, Bus, GameRefusal, GameState, Games, Matchmaker, Membership, OnlinePage, Presence,
    Published, QueueStats, Replay, Seat, Seated,
};
use crate::config::Config;
use crate::event::{Epoch, Event, EventSink, Position, Topic};
use crate::matchmaking::{self, Waiting};
use crate::metrics::Metrics;
use crate::protocol::{Member, RoomId, UserId};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// Locks a mutex even if a panicking thread poisoned it: the data are plain maps
/// whose invariants hold between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
