//! The ranked burst stress test, in its own test binary so that the CPU contention it
//! creates does not slow down the other integration tests (test binaries run one after
//! another): hundreds of players, evenly spaced ratings, queued in bursts across two
//! replicas sharing one Redis while busy threads compete for the CPUs; every player must
//! be matched exactly once, with a rating neighbour, within the harness's WAIT.

#![allow(unreachable_pub)] // the harness is shared with tests/it

#[allow(dead_code)]
#[path = "it/harness.rs"]
mod harness;

use harness::*;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn rated(user: &str, rating: i64) -> String {
    let mut c = claims(user);
    c.rating = Some(rating);
    sign(&c)
}

/// Threads that keep CPUs busy until dropped.
struct Contention {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Contention {
    fn start(threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) ^ 1);
                        }
                    }
                })
            })
            .collect();
        Contention { stop, threads }
    }
}

impl Drop for Contention {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

const PLAYERS: usize = 240;
const SPACING: i64 = 37;
const BURSTS: usize = 6;
const RUNS: u64 = 3;

/// A deterministic shuffle of `0..n`, different per seed.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_over_two_replicas_pairs_neighbours_exactly_once() {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let r1 = TestServer::with(on_redis(&redis, &prefix)).await;
    let r2 = TestServer::with(on_redis(&redis, &prefix)).await;
    let mut players = Vec::with_capacity(PLAYERS);
    for i in 0..PLAYERS {
        let server = if i % 2 == 0 { &r1 } else { &r2 };
        let mut c = server.ws_raw().await;
        c.login(&rated(&format!("b{i:03}"), 1000 + SPACING * i as i64))
            .await;
        players.push(Some(c));
    }
    let _busy = Contention::start(2);
    for run in 1..=RUNS {
        // Bursts of joins, each from both replicas, in a shuffled rating order.
        let order = shuffled(PLAYERS, run);
        let started = Instant::now();
        for burst in order.chunks(PLAYERS / BURSTS) {
            for &i in burst {
                let c = players[i].as_mut().expect("client");
                c.send(json!({"type": "rank.join"})).await;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        let sent = started.elapsed();
        // Every player reads its own `rank.matched`, timed as it arrives; each read fails
        // the test after WAIT (5 s). With SWITCHBOARD_RANK_SETTLE=0 this fails: players
        // whose neighbours were paired before they arrived wait out a widening window.
        let mut tasks = Vec::new();
        for (i, slot) in players.iter_mut().enumerate() {
            let mut c = slot.take().expect("client");
            tasks.push(tokio::spawn(async move {
                let m = c.recv_type("rank.matched").await;
                (i, c, m, started.elapsed())
            }));
        }
        let mut opponent: HashMap<usize, (String, usize)> = HashMap::new();
        let mut last = Duration::ZERO;
        for task in tasks {
            let (i, c, m, at) = task.await.expect("every player matched within WAIT");
            last = last.max(at);
            let other: usize = m["opponent"].as_str().expect("opponent")[1..]
                .parse()
                .expect("index");
            assert_eq!(
                m["opponent_rating"].as_i64(),
                Some(1000 + SPACING * other as i64)
            );
            opponent.insert(i, (m["room"].as_str().expect("room").to_owned(), other));
            players[i] = Some(c);
        }
        let mut rooms = HashSet::new();
        let mut worst = 0;
        for (me, (room, other)) in &opponent {
            assert_ne!(me, other);
            assert_eq!(opponent[other], (room.clone(), *me), "pairs agree");
            worst = worst.max((*me as i64 - *other as i64).abs() * SPACING);
            rooms.insert(room.clone());
        }
        assert_eq!(rooms.len(), PLAYERS / 2, "one game per pair");
        eprintln!(
            "ranked burst run {run}: {PLAYERS} players over 2 replicas, joins sent in {sent:?}, \
             all matched after {last:?}, worst gap {worst} (spacing {SPACING})"
        );
        assert!(
            worst <= 2 * SPACING,
            "run {run}: a pair {worst} apart; neighbours are {SPACING} apart"
        );
    }
    // Nobody was matched a second time.
    for c in players.iter_mut().flatten() {
        if let Some(Seen::Frame(f)) = c.next_within(Duration::from_millis(5)).await {
            assert_ne!(f["type"], "rank.matched", "matched twice: {f}");
        }
    }
}
