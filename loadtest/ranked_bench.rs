//! Ranked matcher benchmark (run by loadtest/ranked_bench.sh against a private Redis):
//! fills the ranked queue with N players through the gateway's own Redis backend
//! (ratings roughly normal around 1500, queued over the last 60 s), then calls
//! `take_matches` the way a replica's matcher tick does and reports the Redis time each
//! call cost: the sum of the durations SLOWLOG records for it (the caller sets
//! `slowlog-log-slower-than 0`; Redis 7 also logs the commands a script runs, with the
//! client `?:0`: those are shown inside their script's entry, not added to it), the CPU
//! time Redis used meanwhile (INFO cpu: on a busy machine the SLOWLOG durations include
//! time Redis waited for a core), and the replica's wall time.
//!
//! Phases, each `REPS` calls:
//! - `idle_unchanged`: nobody is settled (settle 10 min), nothing changed since the
//!   previous call: nothing to take.
//! - `idle_changed`: the same, but one player joined and one left before each call.
//! - `take`: settle 0, so about N/2 pairs are taken in one call (the queue is refilled
//!   before each).
//! - `steady`: the gateway's rules on a simulated 200 ms tick, with as many joins per
//!   tick (queued at the tick's time) as keep about N players queued: each tick takes
//!   the pairs that settled since the last. 4 × REPS ticks.
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

/// `n` players queued over the `spread_ms` before `now_ms`.
fn players(
    n: usize,
    seed: u64,
    now_ms: u64,
    spread_ms: u64,
    tag: &str,
) -> Result<Vec<Waiting>, Fail> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            // The sum of four uniforms: roughly normal, 1500 ± 350.
            let rating = (0..4).map(|_| (rng.next() % 1213) as i64).sum::<i64>() - 926;
            Ok(Waiting {
                user: UserId::new(&format!("{tag}{i:05}"))?,
                rating,
                since_ms: now_ms - rng.next() % spread_ms,
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

/// Redis's CPU time so far (µs, user + system, from INFO cpu): unlike SLOWLOG's wall
/// time it does not count the time Redis waited for a core on a busy machine.
async fn redis_cpu_us(redis: &Client) -> Result<u64, Fail> {
    let info = command(redis, "INFO", vec!["cpu"]).await?;
    let text = info.as_string().unwrap_or_default();
    let mut total = 0.0;
    for line in text.lines() {
        if let Some((key, value)) = line.trim().split_once(':')
            && (key == "used_cpu_user" || key == "used_cpu_sys")
        {
            total += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    Ok((total * 1e6) as u64)
}

struct Phase {
    /// CPU time Redis spent during each call (µs).
    cpu_us: Vec<u64>,
    redis_us: Vec<u64>,
    wall_us: Vec<u64>,
    taken: Vec<usize>,
    commands: Vec<String>,
    /// Players left queued after each call.
    queued: Vec<usize>,
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
            "redis_cpu_ms_median": median(&self.cpu_us) as f64 / 1000.0,
            "redis_cpu_ms_max": self.cpu_us.iter().max().copied().unwrap_or(0) as f64 / 1000.0,
            "redis_ms_max": self.redis_us.iter().max().copied().unwrap_or(0) as f64 / 1000.0,
            "replica_ms_median": median(&self.wall_us) as f64 / 1000.0,
            "pairs_taken": self.taken,
            "queued_after": self.queued,
            "commands": self.commands.first(),
        })
    }
}

async fn run_phase(
    b: &Backends,
    redis: &Client,
    rules: Rules,
    reps: usize,
    mut before: impl AsyncFnMut(usize) -> Result<u64, Fail>,
) -> Result<Phase, Fail> {
    let mut phase = Phase {
        redis_us: Vec::new(),
        wall_us: Vec::new(),
        taken: Vec::new(),
        commands: Vec::new(),
        queued: Vec::new(),
        cpu_us: Vec::new(),
    };
    for rep in 0..reps {
        let now_ms = before(rep).await?;
        slowlog(redis).await?;
        let prefix = format!("g-bench{rep:04}-");
        let run = MatchRun {
            now_ms,
            rules,
            room_prefix: &prefix,
            // Long: the bench never announces, and no lease should run out mid-phase.
            lease_ms: 3_600_000,
            drop_before_ms: now_ms - 600_000,
            exclusive_ms: 0,
        };
        let cpu = redis_cpu_us(redis).await?;
        let started = Instant::now();
        let taken = b.matchmaker.take_matches(&run).await?;
        phase.wall_us.push(started.elapsed().as_micros() as u64);
        phase
            .cpu_us
            .push(redis_cpu_us(redis).await?.saturating_sub(cpu));
        let log = slowlog(redis).await?;
        let top = log.iter().filter(|l| !l.in_script);
        phase.redis_us.push(top.map(|l| l.usec).sum());
        phase.taken.push(taken.matches.len());
        phase.queued.push(taken.queued);
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

    let config = Config {
        redis_url: Some(url.clone()),
        redis_prefix: "bench".into(),
        redis_timeout: Duration::from_secs(10),
        ..Config::default()
    };
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
    let queue = players(n, 1, now, 60_000, "p")?;
    let started = Instant::now();
    fill(&b, &queue).await?;
    eprintln!("queued {n} players in {:?}", started.elapsed());

    let wall = || Ok(switchboard::clock::unix_millis());
    let idle_unchanged = run_phase(&b, &redis, unsettled, reps, async |_| wall()).await?;
    let extra = players(reps, 2, now, 60_000, "x")?;
    let idle_changed = run_phase(&b, &redis, unsettled, reps, async |rep| {
        b.matchmaker.enqueue(&extra[rep], "bench-session").await?;
        b.matchmaker.dequeue(&queue[rep].user, None).await?;
        wall()
    })
    .await?;
    let take_rules = Rules {
        settle_ms: 0,
        ..base
    };
    let take = run_phase(&b, &redis, take_rules, reps, async |rep| {
        command(&redis, "FLUSHALL", vec![]).await?;
        let fresh = players(
            n,
            10 + rep as u64,
            switchboard::clock::unix_millis(),
            60_000,
            "t",
        )?;
        fill(&b, &fresh).await?;
        wall()
    })
    .await?;
    // Steady state with the gateway's rules: a tick every 200 ms (simulated clock), and
    // as many joins per tick as keep about N queued (each waits the settle time and a
    // bit): the matcher takes what settled since the last tick.
    command(&redis, "FLUSHALL", vec![]).await?;
    let start = switchboard::clock::unix_millis();
    let per_tick = n * 200 / (base.settle_ms as usize + 100).max(1);
    let ticks = (base.settle_ms / 200 + 1) as usize;
    let mut k = 0u64;
    for t in 0..ticks {
        let tick_now = start + 200 * t as u64;
        fill(
            &b,
            &players(per_tick, 1000 + k, tick_now, 200, &format!("s{k}-"))?,
        )
        .await?;
        k += 1;
    }
    let first = start + 200 * ticks as u64;
    let steady = run_phase(&b, &redis, base, 4 * reps, async |rep| {
        let tick_now = first + 200 * rep as u64;
        fill(
            &b,
            &players(
                per_tick,
                1000 + k + rep as u64,
                tick_now,
                200,
                &format!("s{}-", k + rep as u64),
            )?,
        )
        .await?;
        Ok(tick_now)
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
            "steady": steady.json(),
            "steady_joins_per_tick": per_tick,
        })
    );
    Ok(())
}
