//! `swarm --mode connect` and `swarm --mode chat` (loadtest/run.sh), and the percentile
//! summary every benchmark mode prints in its `<mode>-result {json}` line.
//!
//! - `connect`: a storm of `--conns` clients, at most `--connect-parallel` connecting
//!   at once, each timed from the start of its TCP connect to its `welcome`; the rate is
//!   the clients logged in over the wall time from the first connect to the last
//!   welcome. Clients stay open until the storm is over, then all close.
//! - `chat`: `--conns` clients spread over the gateways and `--rooms` rooms connect
//!   first; then, for `--seconds`, they publish to their room (`--rate`/s in all), send
//!   direct messages to random other clients (`--dm-rate`/s in all) and ask for the
//!   online list or their room's presence, alternately (`--who-rate`/s in all). Room
//!   and direct deliveries are timed from the sender's stamp, `who`/`presence` from the
//!   request (its id carries the stamp).

use super::{Args, now_micros, room_for, sent_micros, token};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchboard::client::{Client, Options, Request};
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until};

/// Latency samples in µs.
#[derive(Default)]
pub(super) struct Samples(Mutex<Vec<u32>>);

impl Samples {
    pub(super) fn push(&self, micros: u64) {
        if let Ok(mut v) = self.0.lock() {
            v.push(micros.min(u32::MAX as u64) as u32);
        }
    }

    /// `{count, p50_ms, p90_ms, p99_ms, p999_ms, max_ms, mean_ms}` (ms, 2 decimals).
    pub(super) fn summary(&self) -> Value {
        let mut v = self.0.lock().map(|v| v.clone()).unwrap_or_default();
        summary(&mut v)
    }
}

/// Percentiles of `v` (µs) in ms, rounded to 2 decimals.
pub(super) fn summary(v: &mut [u32]) -> Value {
    v.sort_unstable();
    let ms = |us: f64| (us / 10.0).round() / 100.0;
    let pct = |p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .map_or(0.0, |x| ms(*x as f64))
    };
    let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len().max(1) as f64;
    json!({
        "count": v.len(),
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": v.last().map_or(0.0, |x| ms(*x as f64)),
        "mean_ms": ms(mean),
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn options() -> Options {
    Options::default().timeout(Some(Duration::from_secs(30)))
}

/// Connect + login storm.
pub(super) async fn connect_storm(args: Arc<Args>) {
    let gate = Arc::new(Semaphore::new(args.connect_parallel.max(1)));
    let samples = Arc::new(Samples::default());
    let failed = Arc::new(AtomicU64::new(0));
    // Every client holds its connection until `done` is closed.
    let done = Arc::new(Semaphore::new(0));
    let t0 = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.conns {
        let (args, gate, samples, failed, done) = (
            args.clone(),
            gate.clone(),
            samples.clone(),
            failed.clone(),
            done.clone(),
        );
        tasks.spawn(async move {
            let tok = token(&args.secret, &format!("c{i}"));
            let url = &args.urls[i % args.urls.len()];
            let permit = gate.acquire().await;
            let start = std::time::Instant::now();
            let client = async {
                let mut client = Client::connect_with(url, options()).await?;
                client.login(&tok).await?;
                Ok::<_, switchboard::client::ClientError>(client)
            }
            .await;
            let end = std::time::Instant::now();
            drop(permit);
            match client {
                Ok(mut client) => {
                    samples.push(end.duration_since(start).as_micros() as u64);
                    let _ = done.acquire().await;
                    let _ = client.close().await;
                    Some((start, end))
                }
                Err(err) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("connect failed: {err}");
                    }
                    None
                }
            }
        });
    }
    // Wait until every client is in (or failed), then release them all.
    loop {
        let in_or_failed =
            samples.0.lock().map(|v| v.len()).unwrap_or(0) as u64 + failed.load(Ordering::Relaxed);
        if in_or_failed >= args.conns as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done.close();
    // From the first connect to the last welcome.
    let (mut first, mut last) = (None::<std::time::Instant>, t0);
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some((start, end))) = joined {
            first = Some(first.map_or(start, |f| f.min(start)));
            last = last.max(end);
        }
    }
    let wall = last.duration_since(first.unwrap_or(t0)).as_secs_f64();
    let ok = samples.0.lock().map(|v| v.len()).unwrap_or(0);
    let mut result = samples.summary();
    if let Some(fields) = result.as_object_mut() {
        fields.remove("count");
        fields.insert("clients".into(), json!(args.conns));
        fields.insert("parallel".into(), json!(args.connect_parallel));
        fields.insert("logged_in".into(), json!(ok));
        fields.insert("failures".into(), json!(failed.load(Ordering::Relaxed)));
        fields.insert("wall_s".into(), json!(round2(wall)));
        fields.insert(
            "conns_per_s".into(),
            json!((ok as f64 / wall.max(1e-9)).round()),
        );
    }
    println!("connect-result {result}");
}

#[derive(Default)]
struct ChatStats {
    published: AtomicU64,
    /// Room deliveries expected: for each publish, the other members of the room.
    room_expected: AtomicU64,
    dms_sent: AtomicU64,
    who_sent: AtomicU64,
    presence_sent: AtomicU64,
    acks: AtomicU64,
    errors: AtomicU64,
    room: Samples,
    dm: Samples,
    who: Samples,
    presence: Samples,
}

/// Rooms, DMs and presence at modest rates.
pub(super) async fn chat(args: Arc<Args>) {
    let stats = Arc::new(ChatStats::default());
    let gate = Arc::new(Semaphore::new(args.connect_parallel.max(1)));
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..args.conns {
        let (args, gate) = (args.clone(), gate.clone());
        connecting.spawn(async move {
            let _permit = gate.acquire().await;
            let url = &args.urls[i % args.urls.len()];
            let mut client = Client::connect_with(url, options()).await?;
            client.login(&token(&args.secret, &format!("u{i}"))).await?;
            client.request_ok(Request::join(room_for(&args, i))).await?;
            Ok::<_, switchboard::client::ClientError>((i, client))
        });
    }
    let mut clients = Vec::new();
    let mut connect_failed = 0u64;
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok(Ok(pair)) => clients.push(pair),
            Ok(Err(err)) => {
                connect_failed += 1;
                if connect_failed <= 5 {
                    eprintln!("chat: connect failed: {err}");
                }
            }
            Err(err) => eprintln!("chat: connect task failed: {err}"),
        }
    }
    println!(
        "connected {} clients ({connect_failed} failed)",
        clients.len()
    );
    let mut room_sizes = vec![0u64; args.rooms];
    for (i, _) in &clients {
        room_sizes[i % args.rooms] += 1;
    }
    let room_sizes = Arc::new(room_sizes);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, client) in clients {
        tasks.spawn(chat_client(
            args.clone(),
            stats.clone(),
            room_sizes.clone(),
            i,
            client,
            deadline,
        ));
    }
    while tasks.join_next().await.is_some() {}
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let room = stats.room.summary();
    let dm = stats.dm.summary();
    let lost =
        |expected: u64, got: &Value| expected.saturating_sub(got["count"].as_u64().unwrap_or(0));
    let result = json!({
        "clients": args.conns,
        "connect_failed": connect_failed,
        "rooms": args.rooms,
        "seconds": args.seconds,
        "published": g(&stats.published),
        "room_expected": g(&stats.room_expected),
        "room_lost": lost(g(&stats.room_expected), &room),
        "dms_sent": g(&stats.dms_sent),
        "dm_lost": lost(g(&stats.dms_sent), &dm),
        "who_sent": g(&stats.who_sent),
        "presence_sent": g(&stats.presence_sent),
        "acks": g(&stats.acks),
        "error_frames": g(&stats.errors),
        "room": room,
        "dm": dm,
        "who": stats.who.summary(),
        "presence": stats.presence.summary(),
    });
    println!("chat-result {result}");
}

/// A random wait with mean `mean_s` seconds (exponential); "never" for `None`.
fn exp_wait(mean_s: Option<f64>) -> Duration {
    match mean_s {
        Some(mean) => {
            let u: f64 = rand::random::<f64>();
            Duration::from_secs_f64((-mean * (1.0 - u).ln()).min(86_400.0))
        }
        None => Duration::from_secs(86_400),
    }
}

async fn chat_client(
    args: Arc<Args>,
    stats: Arc<ChatStats>,
    room_sizes: Arc<Vec<u64>>,
    i: usize,
    mut client: Client,
    deadline: Instant,
) {
    let n = args.conns.max(1);
    let mean = |rate: f64| (rate > 0.0).then(|| n as f64 / rate);
    let (pub_mean, dm_mean, who_mean) = (mean(args.rate), mean(args.dm_rate), mean(args.who_rate));
    let room = room_for(&args, i);
    let others = room_sizes[i % args.rooms].saturating_sub(1);
    let pad = "x".repeat(args.payload);
    let now = Instant::now();
    let (mut next_pub, mut next_dm, mut next_who) = (
        now + exp_wait(pub_mean),
        now + exp_wait(dm_mean),
        now + exp_wait(who_mean),
    );
    let mut asks = 0u64;
    // Sends stop at the deadline; deliveries still in flight are read for 2 s more.
    let drain_until = deadline + Duration::from_secs(2);
    loop {
        let sending = Instant::now() < deadline;
        let sent = tokio::select! {
            frame = client.recv_timeout(Duration::from_secs(3600)) => match frame {
                Ok(frame) => {
                    count_chat_frame(&stats, &frame);
                    Ok(())
                }
                Err(_) if client.is_closed() => break,
                Err(_) => Ok(()),
            },
            () = sleep_until(next_pub), if sending => {
                next_pub += exp_wait(pub_mean);
                stats.published.fetch_add(1, Ordering::Relaxed);
                stats.room_expected.fetch_add(others, Ordering::Relaxed);
                client.send(Request::Publish {
                    room: room.clone(),
                    data: json!({"sent": now_micros(), "pad": pad}),
                    echo: false,
                    msg_id: None,
                }).await
            }
            () = sleep_until(next_dm), if sending => {
                next_dm += exp_wait(dm_mean);
                // Another client than this one (a DM to oneself would echo back).
                let to = (i + 1 + rand::random_range(0..n.saturating_sub(1).max(1))) % n;
                stats.dms_sent.fetch_add(1, Ordering::Relaxed);
                client.send(Request::direct(format!("u{to}"), json!({"sent": now_micros()}))).await
            }
            () = sleep_until(next_who), if sending => {
                next_who += exp_wait(who_mean);
                asks += 1;
                // The id carries the stamp: `w:<µs>` / `p:<µs>`.
                let (kind, counter) = if asks % 2 == 1 {
                    ("who", &stats.who_sent)
                } else {
                    ("presence", &stats.presence_sent)
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let id = format!("{}:{}", &kind[..1], now_micros());
                let frame = if kind == "who" {
                    json!({"type": "who", "id": id})
                } else {
                    json!({"type": "presence", "room": room, "id": id})
                };
                client.send(frame).await
            }
            () = sleep_until(drain_until) => break,
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = client.close().await;
}

/// The µs stamp in a `w:<µs>` / `p:<µs>` request id.
fn id_stamp(frame: &switchboard::client::Frame) -> Option<u64> {
    frame.id()?.as_str()?.get(2..)?.parse().ok()
}

fn count_chat_frame(stats: &ChatStats, frame: &switchboard::client::Frame) {
    let since = |sent: u64| now_micros().saturating_sub(sent);
    match frame.kind() {
        "message" => {
            if let Some(sent) = sent_micros(frame.text()) {
                stats.room.push(since(sent));
            }
        }
        "direct" => {
            if let Some(sent) = sent_micros(frame.text()) {
                stats.dm.push(since(sent));
            }
        }
        "who" => {
            if let Some(sent) = id_stamp(frame) {
                stats.who.push(since(sent));
            }
        }
        "presence" => {
            if let Some(sent) = id_stamp(frame) {
                stats.presence.push(since(sent));
            }
        }
        "ok" => {
            stats.acks.fetch_add(1, Ordering::Relaxed);
        }
        "error" => {
            let seen = stats.errors.fetch_add(1, Ordering::Relaxed);
            if seen < 5 {
                eprintln!("chat: error frame: {}", frame.text());
            }
        }
        _ => {}
    }
}
