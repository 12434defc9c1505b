//! `login_bench`: what a login costs the gateway itself, on one core and without sockets
//! or a load generator sharing the CPU. One current-thread runtime (so the figures are
//! per core) runs, over distinct users with tokens minted up front:
//!
//! - `verify`: the JWT check alone (HS256);
//! - `login`: verify + `register` (user-channel subscription, presence, the DM inbox
//!   the welcome sends, the online announcement) + `unregister`: everything a login and a logout ask of the gateway and its backend
//!   except the WebSocket handshake and the frames, `--parallel` at once.
//!
//! Against the in-memory backend by default, or a Redis with `--redis URL` (its round
//! trips are then part of the wall time; the CPU figure is this process's alone).
//! Prints a `login-result {json}` line. `loadtest/run.sh login` runs both.
//!
//! Run: `cargo run --release --example login_bench -- --n 20000 [--redis redis://...]`

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard::auth::{self, Claims};
use switchboard::config::{Config, JwtAlg};
use switchboard::gateway::Gateway;

const SECRET: &str = "login-bench-secret";

struct Args {
    n: usize,
    parallel: usize,
    redis: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        n: 20_000,
        parallel: 64,
        redis: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--n" => a.n = val().parse().unwrap_or(a.n),
            "--parallel" => a.parallel = val().parse().unwrap_or(a.parallel).max(1),
            "--redis" => a.redis = Some(val()),
            _ => {
                eprintln!("usage: login_bench [--n N] [--parallel P] [--redis URL]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of stat(5), counted from the state (field 3); 100 ticks a second.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Rate and cost of `n` operations that took `wall` and `cpu`.
fn figures(n: usize, wall: Duration, cpu: Duration) -> serde_json::Value {
    json!({
        "ops": n,
        "per_s": (n as f64 / wall.as_secs_f64()).round(),
        "wall_us_per_op": wall.as_secs_f64() * 1e6 / n as f64,
        "cpu_us_per_op": cpu.as_secs_f64() * 1e6 / n as f64,
        "per_core_s": (n as f64 / cpu.as_secs_f64().max(1e-9)).round(),
    })
}

fn token(user: &str) -> String {
    let claims = Claims {
        sub: user.into(),
        exp: switchboard::clock::unix_now() + 3600,
        name: None,
        rating: None,
        perms: Vec::new(),
        rooms: None,
        iss: None,
        aud: None,
    };
    auth::sign_hmac(JwtAlg::Hs256, SECRET.as_bytes(), &claims).unwrap_or_default()
}

/// One login and logout, as a session does them (without the transport).
async fn login_once(gw: &Gateway, token: &str) -> Result<(), String> {
    let identity = gw.verifier.verify(token).map_err(|e| e.to_string())?;
    let registered = gw.register(&identity, None).await.map_err(|r| r.message)?;
    // As a session ends: nothing queued meanwhile stays on the gauges.
    registered.handle.outbox.close();
    gw.unregister(&registered.handle, &[]).await;
    Ok(())
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    let config = Config {
        jwt_secret: Some(SECRET.into()),
        redis_url: args.redis.clone(),
        ..Config::default()
    };
    let gw = Gateway::start(config).await.map_err(|e| e.to_string())?;
    let tokens: Vec<String> = (0..args.n).map(|i| token(&format!("b{i}"))).collect();

    let (t0, c0) = (Instant::now(), cpu_time());
    for t in &tokens {
        gw.verifier.verify(t).map_err(|e| e.to_string())?;
    }
    let verify = figures(args.n, t0.elapsed(), cpu_time() - c0);

    // Warm-up (script loading, connection pools), not counted.
    for t in tokens.iter().take(100) {
        login_once(&gw, t).await?;
    }
    let (t0, c0) = (Instant::now(), cpu_time());
    let mut pending = FuturesUnordered::new();
    let mut failures = 0usize;
    for t in &tokens {
        if pending.len() >= args.parallel
            && let Some(done) = pending.next().await
        {
            failures += usize::from(Result::is_err(&done));
        }
        pending.push(login_once(&gw, t));
    }
    while let Some(done) = pending.next().await {
        failures += usize::from(Result::is_err(&done));
    }
    let login = figures(args.n, t0.elapsed(), cpu_time() - c0);
    gw.close().await;
    Ok(json!({
        "backend": if args.redis.is_some() { "redis" } else { "memory" },
        "parallel": args.parallel,
        "verify": verify,
        "login": login,
        "failures": failures,
    }))
}

fn main() {
    let args = args();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("login_bench: no runtime: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(result) => println!("login-result {result}"),
        Err(e) => {
            eprintln!("login_bench: {e}");
            std::process::exit(1);
        }
    }
}
