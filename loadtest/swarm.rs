//! Load generator: opens many logged-in WebSocket clients against a running gateway
//! (`switchboard::client`; a `tcp://host:port` URL gives TCP clients).
//!
//! - `idle`: N clients log in and join a room, then sit idle until Ctrl-C (measure the
//!   gateway's RSS meanwhile).
//! - `fanout`: N clients join one room; `--publishers` publishers (spread over the
//!   gateways, 1 by default) each send at `--rate`/publishers messages/s, or, with
//!   `--rate 0`, as fast as a bounded window of unacknowledged publishes allows
//!   (`flood`); reports deliveries per second and latency, and a `fanout-result {json}`
//!   line.
//! - `connect`, `chat`: see swarm_bench.rs (`connect-result` / `chat-result` lines).
//! - `soak`: N clients spread over the gateways and over `--rooms` rooms (each room split
//!   across the gateways), for `--seconds` in all: every client publishes to its room
//!   (`--rate` messages/s in total), sends direct messages to random users (`--dm-rate`/s
//!   in total) and now and then disconnects and comes back on the next gateway
//!   (`--churn` reconnects/s in total); `--game-pairs` pairs of extra users play friend
//!   games over and over (create, join, moves, close) and `--ranked` extra users queue
//!   for ranked play, play their match and queue again. Prints a `soak ...` status line
//!   every 10 s and a `soak-summary {json}` line at the end. See loadtest/soak.sh.
//!
//! Run: `cargo run --release --example swarm -- --help`

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard::auth::{self, Claims};
use switchboard::client::{Client, Request};
use switchboard::config::JwtAlg;
use tokio::sync::Semaphore;

#[path = "swarm_bench.rs"]
mod bench;
#[path = "swarm_soak.rs"]
mod soak;

/// The `"sent"` stamp (µs) of a load-test message, by a cheap field scan instead of a
/// full parse: the client must keep up.
fn sent_micros(text: &str) -> Option<u64> {
    let pos = text.find("\"sent\":")?;
    let digits: String = text[pos + 7..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

struct Args {
    /// Gateways to spread clients over (comma separated); the publisher uses the first.
    urls: Vec<String>,
    secret: String,
    mode: String,
    conns: usize,
    room: String,
    seconds: u64,
    window: usize,
    payload: usize,
    connect_parallel: usize,
    /// Clients are spread over this many rooms (`<room>-<i % rooms>`); 1 = one room.
    rooms: usize,
    /// Fixed publish rate (messages/s); 0 = as fast as the window allows.
    /// In `soak`: the total chat rate over all clients (0 = no chat).
    rate: f64,
    /// `soak`: direct messages per second over all clients.
    dm_rate: f64,
    /// `soak`: disconnect + reconnect cycles per second over all clients.
    churn: f64,
    /// `soak`: pairs of users playing friend games back to back.
    game_pairs: usize,
    /// `soak`: users cycling through the ranked queue.
    ranked: usize,
    /// `chat`: `who` / `presence` requests per second over all clients.
    who_rate: f64,
    /// `fanout`: publishing clients (each with its own window).
    publishers: usize,
    /// `fanout`: seconds to wait, idle, between `ready` and `settled` (0: no wait).
    settle: f64,
    /// `idle`, `fanout`: user names are `<prefix><i>`, so several swarm processes on one
    /// backend (one per replica when a process's open files run short) do not share users.
    user_prefix: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        urls: vec!["ws://127.0.0.1:8080/ws".into()],
        secret: String::new(),
        mode: "fanout".into(),
        conns: 1000,
        room: "bench".into(),
        seconds: 10,
        window: 64,
        payload: 64,
        connect_parallel: 200,
        rooms: 1,
        rate: 0.0,
        dm_rate: 0.0,
        churn: 0.0,
        game_pairs: 0,
        ranked: 0,
        who_rate: 0.0,
        publishers: 1,
        settle: 0.0,
        user_prefix: "u".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.urls = val().split(',').map(str::to_owned).collect(),
            "--rate" => a.rate = val().parse().unwrap_or(a.rate),
            "--secret" => a.secret = val(),
            "--mode" => a.mode = val(),
            "--conns" => a.conns = val().parse().unwrap_or(a.conns),
            "--room" => a.room = val(),
            "--seconds" => a.seconds = val().parse().unwrap_or(a.seconds),
            "--window" => a.window = val().parse().unwrap_or(a.window),
            "--payload" => a.payload = val().parse().unwrap_or(a.payload),
            "--rooms" => a.rooms = val().parse().unwrap_or(a.rooms).max(1),
            "--dm-rate" => a.dm_rate = val().parse().unwrap_or(a.dm_rate),
            "--churn" => a.churn = val().parse().unwrap_or(a.churn),
            "--game-pairs" => a.game_pairs = val().parse().unwrap_or(a.game_pairs),
            "--ranked" => a.ranked = val().parse().unwrap_or(a.ranked),
            "--settle" => a.settle = val().parse().unwrap_or(a.settle),
            "--user-prefix" => a.user_prefix = val(),
            "--who-rate" => a.who_rate = val().parse().unwrap_or(a.who_rate),
            "--publishers" => a.publishers = val().parse().unwrap_or(a.publishers).max(1),
            "--connect-parallel" => {
                a.connect_parallel = val().parse().unwrap_or(a.connect_parallel)
            }
            _ => {
                eprintln!(
                    "usage: swarm --secret S [--url ws://127.0.0.1:8080/ws[,...]] \
                     [--mode idle|fanout|connect|chat|soak] [--conns 1000] [--room bench] [--rooms 1] \
                     [--seconds 10] [--window 64] [--payload 64] [--rate 0] \
                     [--connect-parallel 200] [--dm-rate 0] [--churn 0] [--game-pairs 0] \
                     [--ranked 0] [--who-rate 0] [--publishers 1] [--settle 0] [--user-prefix u]"
                );
                std::process::exit(2);
            }
        }
    }
    if a.secret.is_empty() {
        eprintln!("--secret is required (the gateway's SWITCHBOARD_JWT_SECRET)");
        std::process::exit(2);
    }
    a
}

fn token(secret: &str, user: &str) -> String {
    token_rated(secret, user, None)
}

fn token_rated(secret: &str, user: &str, rating: Option<i64>) -> String {
    let claims = Claims {
        sub: user.into(),
        exp: switchboard::clock::unix_now() + 24 * 3600,
        name: None,
        rating,
        perms: Vec::new(),
        rooms: None,
        iss: None,
        aud: None,
    };
    auth::sign_hmac(JwtAlg::Hs256, secret.as_bytes(), &claims).unwrap_or_default()
}

/// Connects to `url`, logs in and joins `room`; returns once the join is acknowledged.
async fn connect(args: &Args, url: &str, user: &str, room: &str) -> Result<Client, String> {
    let mut client = Client::connect(url).await.map_err(|e| e.to_string())?;
    client
        .login(&token(&args.secret, user))
        .await
        .map_err(|e| e.to_string())?;
    client
        .request_ok(Request::join(room))
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Counters shared by all client tasks.
#[derive(Default)]
struct Stats {
    connected: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    latency_sum: AtomicU64,
    latency_max: AtomicU64,
    closed: AtomicU64,
    /// Every delivery's latency in µs, for percentiles.
    samples: std::sync::Mutex<Vec<u32>>,
}

fn room_for(args: &Args, i: usize) -> String {
    if args.rooms == 1 {
        args.room.clone()
    } else {
        format!("{}-{}", args.room, i % args.rooms)
    }
}

/// Reads until the connection ends, counting benchmark messages as they arrive.
async fn read_all(mut client: Client, stats: &Stats) {
    loop {
        let frame = match client.recv().await {
            Ok(frame) => frame,
            Err(_) if client.is_closed() => break,
            Err(_) => continue,
        };
        if let Some(sent) = sent_micros(frame.text()) {
            let lat = now_micros().saturating_sub(sent);
            stats.latency_sum.fetch_add(lat, Ordering::Relaxed);
            stats.latency_max.fetch_max(lat, Ordering::Relaxed);
            if let Ok(mut samples) = stats.samples.lock() {
                samples.push(lat.min(u32::MAX as u64) as u32);
            }
            stats.received.fetch_add(1, Ordering::Relaxed);
        }
    }
    stats.closed.fetch_add(1, Ordering::Relaxed);
}

/// Counts the `ok` replies among the publisher's inbound frames; false once it closed.
async fn read_ack(publisher: &mut Client, acked: &AtomicU64) -> bool {
    match publisher.recv().await {
        Ok(frame) => {
            if frame.kind() == "ok" {
                acked.fetch_add(1, Ordering::Relaxed);
            }
            true
        }
        Err(_) => !publisher.is_closed(),
    }
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    match args.mode.as_str() {
        "soak" => return soak::run(args).await,
        "connect" => return bench::connect_storm(args).await,
        "chat" => return bench::chat(args).await,
        _ => {}
    }
    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_parallel));
    for i in 0..args.conns {
        let args = args.clone();
        let gate = gate.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let url = args.urls[i % args.urls.len()].clone();
            match connect(
                &args,
                &url,
                &format!("{}{i}", args.user_prefix),
                &room_for(&args, i),
            )
            .await
            {
                Ok(client) => {
                    drop(permit);
                    stats.connected.fetch_add(1, Ordering::Relaxed);
                    read_all(client, &stats).await;
                }
                Err(e) => {
                    if stats.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("connect failed: {e}");
                    }
                }
            }
        });
    }
    while stats.connected.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed)
        < args.conns as u64
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "connected {} clients ({} failed, {} closed) in {:.1}s",
        stats.connected.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        stats.closed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    match args.mode.as_str() {
        "idle" => {
            println!("idle: holding connections for {}s", args.seconds);
            tokio::time::sleep(Duration::from_secs(args.seconds)).await;
            println!(
                "idle: done, {} closed meanwhile",
                stats.closed.load(Ordering::Relaxed)
            );
        }
        _ => fanout(&args, &stats).await,
    }
}

async fn fanout(args: &Args, stats: &Stats) {
    let members = stats.connected.load(Ordering::Relaxed);
    let room = room_for(args, 0);
    let mut publishers = Vec::new();
    for p in 0..args.publishers {
        let name = if p == 0 {
            "publisher".to_owned()
        } else {
            format!("publisher{p}")
        };
        match connect(args, &args.urls[p % args.urls.len()], &name, &room).await {
            Ok(client) => publishers.push(client),
            Err(e) => {
                eprintln!("publisher failed: {e}");
                return;
            }
        }
    }
    let receivers = if args.rooms == 1 {
        members
    } else {
        (0..args.conns).filter(|i| i % args.rooms == 0).count() as u64
    };
    // With `--settle S`: `ready`, S seconds idle, `settled`, 0.5 s, then publishing, so
    // a script can read the server's counters while idle, right before publishing and
    // at the `fanout-result` line (the clients stay a moment after it).
    if args.settle > 0.0 {
        println!(
            "ready: {members} members and {} publishers in",
            publishers.len()
        );
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        println!("settled: publishing in 0.5s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let acked = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let rate = args.rate / publishers.len() as f64;
    let mut tasks = tokio::task::JoinSet::new();
    for publisher in publishers {
        tasks.spawn(publish(
            publisher,
            room.clone(),
            rate,
            args.window,
            args.payload,
            Duration::from_secs(args.seconds),
            acked.clone(),
        ));
    }
    let mut sent = 0;
    while let Some(joined) = tasks.join_next().await {
        sent += joined.unwrap_or(0);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // Let in-flight deliveries land.
    let mut last = stats.received.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = stats.received.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let got = stats.received.load(Ordering::Relaxed);
    let mut samples = stats.samples.lock().map(|s| s.clone()).unwrap_or_default();
    let latency = bench::summary(&mut samples);
    let ms = |key: &str| latency[key].as_f64().unwrap_or(0.0);
    println!(
        "latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms over {} deliveries",
        ms("p50_ms"),
        ms("p90_ms"),
        ms("p99_ms"),
        ms("p999_ms"),
        samples.len()
    );
    println!(
        "fanout: {receivers} receivers, published {sent} ({:.0}/s, acked {}), deliveries {got} \
         ({:.0}/s over {:.1}s), expected {}, mean latency {:.1} ms, max {:.1} ms, clients closed {}",
        sent as f64 / elapsed,
        acked.load(Ordering::Relaxed),
        got as f64 / elapsed,
        elapsed,
        sent * receivers,
        stats.latency_sum.load(Ordering::Relaxed) as f64 / got.max(1) as f64 / 1000.0,
        stats.latency_max.load(Ordering::Relaxed) as f64 / 1000.0,
        stats.closed.load(Ordering::Relaxed),
    );
    let result = json!({
        "receivers": receivers,
        "connect_failed": stats.failed.load(Ordering::Relaxed),
        "publishers": args.publishers,
        "published": sent,
        "acked": acked.load(Ordering::Relaxed),
        "publish_per_s": (sent as f64 / elapsed).round(),
        "expected": sent * receivers,
        "deliveries": got,
        "lost": (sent * receivers).saturating_sub(got),
        "deliveries_per_s": (got as f64 / elapsed).round(),
        "elapsed_s": (elapsed * 100.0).round() / 100.0,
        "p50_ms": ms("p50_ms"),
        "p90_ms": ms("p90_ms"),
        "p99_ms": ms("p99_ms"),
        "p999_ms": ms("p999_ms"),
        "max_ms": ms("max_ms"),
        "mean_ms": ms("mean_ms"),
        "clients_closed": stats.closed.load(Ordering::Relaxed),
    });
    println!("fanout-result {result}");
    // With `--settle`: stay connected a moment, so counters read at the result line do
    // not include the clean-up of the disconnects.
    if args.settle > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(args.settle.min(2.0))).await;
    }
}

/// One publisher: at `rate` messages/s (0: as fast as `window` unacknowledged
/// publishes allow) for `run_for`; returns how many it sent. Its acks are counted in
/// `acked` until it closes.
async fn publish(
    mut publisher: Client,
    room: String,
    rate: f64,
    window: usize,
    payload: usize,
    run_for: Duration,
    acked: Arc<AtomicU64>,
) -> u64 {
    let pad = "x".repeat(payload);
    let mine = AtomicU64::new(0);
    let t0 = Instant::now();
    let mut sent = 0u64;
    // Publishes not acknowledged yet; at most `window`.
    let mut unacked = 0u64;
    while t0.elapsed() < run_for {
        let pace = async {
            if rate > 0.0 {
                let due = t0 + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
        };
        tokio::select! {
            open = read_ack(&mut publisher, &mine) => {
                if !open {
                    break;
                }
                unacked = sent.saturating_sub(mine.load(Ordering::Relaxed));
            }
            () = pace, if unacked < window as u64 => {
                let publish = Request::Publish {
                    room: room.clone(),
                    data: json!({"sent": now_micros(), "pad": pad}),
                    echo: false,
                    msg_id: None,
                };
                if publisher.send(publish).await.is_err() {
                    break;
                }
                sent += 1;
                unacked += 1;
            }
        }
    }
    acked.fetch_add(mine.load(Ordering::Relaxed), Ordering::Relaxed);
    // Acks still in flight are counted while the deliveries land.
    tokio::spawn(async move {
        let fresh = AtomicU64::new(0);
        while read_ack(&mut publisher, &fresh).await {
            acked.fetch_add(fresh.swap(0, Ordering::Relaxed), Ordering::Relaxed);
        }
    });
    sent
}
