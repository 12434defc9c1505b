//! Ranked matcher benchmark (run by loadtest/ranked_bench.sh against a private Redis):
//! fills the ranked queue with N players through the gateway's own Redis backend
//! (ratings roughly normal around 1500, queued over the last 60 s), then calls
//! `take_matches` the way a replica's matcher tick does and reports the Redis time each
//! call cost: the sum of the durations SLOWLOG records for it (the caller sets
//! `slowlog-log-slower-than 0`; commands run inside a script are not logged on their
//! own, so nothing is counted twice), and the replica's wall time.
//!
//! Phases, each `REPS` calls:
//! - `idle_unchanged`: nobody is settled (settle 10 min), nothing changed since the
//!   previous call: nothing to take.
//! - `idle_changed`: the same, but one player joined and one left before each call.
//! - `take`: settle 0, so about N/2 pairs are taken in one call (the queue is refilled
//!   before each).
//!
//! Prints `ranked-bench {json}` on stdout.
//!
//! Run: `cargo run --release --example ranked_bench -- <redis url> [N] [REPS]`

use fred::prelude::*;
use fred::types::config::Config as RedisConfig;
use fred::types::{CustomCommand, Value as RedisValue};
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::backend::{self, Backends, MatchRun};
use switchboard::config::Config;
use switchboard::hub::Hub;
use switchboard::matchmaking::{Rules, Waiting};
use switchboard::metrics::Metrics;
use switchboard::protocol::UserId;

type Fail = Box<dyn std::error::Error>;

/// A small deterministic generator (no shared RNG state across runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn players(n: usize, seed: u64, now_ms: u64, tag: &str) -> Result<Vec<Waiting>, Fail> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            // The sum of four uniforms: roughly normal, 1500 ± 350.
            let rating = (0..4).map(|_| (rng.next() % 1213) as i64).sum::<i64>() - 926;
            Ok(Waiting {
                user: UserId::new(&format!("{tag}{i:05}"))?,
                rating,
                since_ms: now_ms - rng.next() % 60_000,
            })
        })
        .collect()
}

async fn fill(b: &Backends, queue: &[Waiting]) -> Result<(), Fail> {
    let results: Vec<_> = futures_util::stream::iter(queue)
        .map(|p| b.matchmaker.enqueue(p, "bench-session"))
        .buffer_unordered(64)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

async fn command(redis: &Client, name: &'static str, args: Vec<&str>) -> Result<RedisValue, Fail> {
    let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    Ok(redis
        .custom(CustomCommand::new_static(name, None, false), args)
        .await?)
}

/// A command SLOWLOG recorded: name, µs, and whether a script ran it (its time is also
/// in the script's own entry).
struct Logged {
    name: String,
    usec: u64,
    in_script: bool,
}

/// The commands since the last SLOWLOG RESET, oldest first, then resets it.
async fn slowlog(redis: &Client) -> Result<Vec<Logged>, Fail> {
    let entries = command(redis, "SLOWLOG", vec!["GET", "-1"]).await?;
    command(redis, "SLOWLOG", vec!["RESET"]).await?;
    let mut out = Vec::new();
    for entry in entries.into_array() {
        let fields = entry.into_array();
        let usec = fields.get(2).and_then(RedisValue::as_u64).unwrap_or(0);
        let args = fields.get(3).cloned().map(RedisValue::into_array);
        let name = args
            .and_then(|a| a.first().and_then(RedisValue::as_string))
            .unwrap_or_default()
            .to_lowercase();
        if name == "slowlog" {
            continue;
        }
        // Redis 7 logs the commands a script runs too, with the client "?:0".
        let client = fields.get(4).and_then(RedisValue::as_string);
        out.push(Logged {
            name,
            usec,
            in_script: client.as_deref() == Some("?:0"),
        });
    }
    out.reverse();
    Ok(out)
}

struct Phase {
    redis_us: Vec<u64>,
    wall_us: Vec<u64>,
    taken: Vec<usize>,
    commands: Vec<String>,
}

impl Phase {
    fn json(&self) -> serde_json::Value {
        let median = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        json!({
            "redis_ms_median": median(&self.redis_us) as f64 / 1000.0,
            "redis_ms_max": self.redis_us.iter().max().copied().unwrap_or(0) as f64 / 1000.0,
            "replica_ms_median": median(&self.wall_us) as f64 / 1000.0,
            "pairs_taken": self.taken,
            "commands": self.commands.first(),
        })
    }
}

async fn run_phase(
    b: &Backends,
    redis: &Client,
    rules: Rules,
    reps: usize,
    mut before: impl AsyncFnMut(usize) -> Result<(), Fail>,
) -> Result<Phase, Fail> {
    let mut phase = Phase {
        redis_us: Vec::new(),
        wall_us: Vec::new(),
        taken: Vec::new(),
        commands: Vec::new(),
    };
    for rep in 0..reps {
        before(rep).await?;
        slowlog(redis).await?;
        let now_ms = switchboard::clock::unix_millis();
        let prefix = format!("g-bench{rep:04}-");
        let run = MatchRun {
            now_ms,
            rules,
            room_prefix: &prefix,
            lease_ms: 5_000,
            drop_before_ms: now_ms - 600_000,
            exclusive_ms: 0,
        };
        let started = Instant::now();
        let taken = b.matchmaker.take_matches(&run).await?;
        phase.wall_us.push(started.elapsed().as_micros() as u64);
        let log = slowlog(redis).await?;
        let top = log.iter().filter(|l| !l.in_script);
        phase.redis_us.push(top.map(|l| l.usec).sum());
        phase.taken.push(taken.matches.len());
        // Each top-level command, with what its script ran inside it (same names summed).
        let mut text = Vec::new();
        let mut inner: Vec<(String, u64, usize)> = Vec::new();
        for l in &log {
            if l.in_script {
                match inner.iter_mut().find(|(n, _, _)| *n == l.name) {
                    Some((_, us, calls)) => {
                        *us += l.usec;
                        *calls += 1;
                    }
                    None => inner.push((l.name.clone(), l.usec, 1)),
                }
                continue;
            }
            let within: Vec<String> = inner
                .drain(..)
                .map(|(n, us, calls)| format!("{n} x{calls} {us}us"))
                .collect();
            text.push(match within.is_empty() {
                true => format!("{} {}us", l.name, l.usec),
                false => format!("{} {}us [{}]", l.name, l.usec, within.join(", ")),
            });
        }
        phase.commands.push(text.join("; "));
    }
    Ok(phase)
}

#[tokio::main]
async fn main() -> Result<(), Fail> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: ranked_bench <redis url> [N] [REPS]")?;
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let reps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);

    let mut config = Config::default();
    config.redis_url = Some(url.clone());
    config.redis_prefix = "bench".into();
    config.redis_timeout = Duration::from_secs(10);
    let metrics = Arc::new(Metrics::new());
    let hub = Arc::new(Hub::new(metrics.clone(), 100));
    let b = backend::connect(&config, hub, metrics, "bench").await?;
    let redis = Client::new(RedisConfig::from_url(&url)?, None, None, None);
    redis.init().await?;
    command(&redis, "FLUSHALL", vec![]).await?;

    let base = Rules {
        window: config.rank_window,
        widen_per_s: config.rank_widen_per_s,
        max_window: config.rank_max_window,
        settle_ms: config.rank_settle.as_millis() as u64,
    };
    let unsettled = Rules {
        settle_ms: 600_000,
        ..base
    };
    let now = switchboard::clock::unix_millis();
    let queue = players(n, 1, now, "p")?;
    let started = Instant::now();
    fill(&b, &queue).await?;
    eprintln!("queued {n} players in {:?}", started.elapsed());

    let idle_unchanged = run_phase(&b, &redis, unsettled, reps, async |_| Ok(())).await?;
    let extra = players(reps, 2, now, "x")?;
    let idle_changed = run_phase(&b, &redis, unsettled, reps, async |rep| {
        b.matchmaker.enqueue(&extra[rep], "bench-session").await?;
        b.matchmaker.dequeue(&queue[rep].user, None).await?;
        Ok(())
    })
    .await?;
    let take_rules = Rules {
        settle_ms: 0,
        ..base
    };
    let take = run_phase(&b, &redis, take_rules, reps, async |rep| {
        command(&redis, "FLUSHALL", vec![]).await?;
        let fresh = players(n, 10 + rep as u64, switchboard::clock::unix_millis(), "t")?;
        fill(&b, &fresh).await?;
        Ok(())
    })
    .await?;
    println!(
        "ranked-bench {}",
        json!({
            "queued": n,
            "reps": reps,
            "rules": {"window": base.window, "widen_per_s": base.widen_per_s,
                      "max_window": base.max_window},
            "idle_unchanged": idle_unchanged.json(),
            "idle_changed": idle_changed.json(),
            "take": take.json(),
        })
    );
    Ok(())
}
