//! `swarm --mode soak`: steady mixed traffic for a bounded time (loadtest/soak.sh).
//!
//! - Chat clients `u0..u{N-1}`: client `i` is in room `<room>-<i % rooms>` and starts on
//!   gateway `(i + i / rooms) % gateways`, so every room has members on every gateway.
//!   Each publishes (`echo:false`) and sends direct messages to random `u*` users at
//!   random (exponential) intervals that add up to `--rate` and `--dm-rate` per second,
//!   and disconnects now and then (`--churn` per second in all; half with a close frame,
//!   half by dropping the socket), coming back 0-2 s later on the next gateway.
//!   A connection the server ends is reopened the same way.
//! - Friend games: `--game-pairs` pairs `ga<k>`/`gb<k>` (on different gateways) play
//!   back to back: create, join, 6 alternating moves, the owner closes.
//! - Ranked: `--ranked` users `rk<k>` (ratings 10 apart) queue, play the match they get
//!   (join, wait for `game.started`, 3 moves each, the owner leaves once it has the
//!   opponent's 3), queue again.

use super::{Args, now_micros, room_for, sent_micros, token, token_rated};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use switchboard::client::{Client, ClientError, Options, Request};
use switchboard::protocol::GameTarget;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep, sleep_until};

#[derive(Default)]
struct Counters {
    /// Chat clients logged in right now.
    live: AtomicU64,
    connects: AtomicU64,
    connect_failed: AtomicU64,
    /// Disconnects the client chose (churn).
    churned: AtomicU64,
    /// Connections the server ended (or that broke) mid-run.
    dropped: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_max_us: AtomicU64,
    dms_sent: AtomicU64,
    dms_received: AtomicU64,
    acks: AtomicU64,
    /// `error` frames received by chat clients.
    errors: AtomicU64,
    games: AtomicU64,
    game_failures: AtomicU64,
    ranked_queued: AtomicU64,
    ranked_games: AtomicU64,
    ranked_timeouts: AtomicU64,
    ranked_failures: AtomicU64,
}

impl Counters {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    fn line(&self) -> String {
        let g = Self::get;
        format!(
            "live={} connects={} connect_failed={} churned={} dropped={} published={} \
             delivered={} mean_latency_ms={:.2} max_latency_ms={:.1} dms_sent={} \
             dms_received={} acks={} errors={} games={} game_failures={} ranked_queued={} \
             ranked_games={} ranked_timeouts={} ranked_failures={}",
            g(&self.live),
            g(&self.connects),
            g(&self.connect_failed),
            g(&self.churned),
            g(&self.dropped),
            g(&self.published),
            g(&self.delivered),
            g(&self.latency_sum_us) as f64 / g(&self.delivered).max(1) as f64 / 1000.0,
            g(&self.latency_max_us) as f64 / 1000.0,
            g(&self.dms_sent),
            g(&self.dms_received),
            g(&self.acks),
            g(&self.errors),
            g(&self.games),
            g(&self.game_failures),
            g(&self.ranked_queued),
            g(&self.ranked_games),
            g(&self.ranked_timeouts),
            g(&self.ranked_failures),
        )
    }

    fn json(&self) -> Value {
        let g = Self::get;
        json!({
            "connects": g(&self.connects),
            "connect_failed": g(&self.connect_failed),
            "churned": g(&self.churned),
            "dropped": g(&self.dropped),
            "published": g(&self.published),
            "delivered": g(&self.delivered),
            "mean_latency_ms": (g(&self.latency_sum_us) as f64
                / g(&self.delivered).max(1) as f64 / 10.0).round() / 100.0,
            "max_latency_ms": g(&self.latency_max_us) as f64 / 1000.0,
            "dms_sent": g(&self.dms_sent),
            "dms_received": g(&self.dms_received),
            "acks": g(&self.acks),
            "errors": g(&self.errors),
            "games": g(&self.games),
            "game_failures": g(&self.game_failures),
            "ranked_queued": g(&self.ranked_queued),
            "ranked_games": g(&self.ranked_games),
            "ranked_timeouts": g(&self.ranked_timeouts),
            "ranked_failures": g(&self.ranked_failures),
        })
    }
}

struct Ctx {
    args: Arc<Args>,
    stats: Counters,
    gate: Semaphore,
    deadline: Instant,
}

/// A random wait with mean `mean` (exponential); "never" for a zero rate.
fn exp_wait(mean: Option<f64>) -> Duration {
    match mean {
        Some(mean) => {
            let u: f64 = rand::random::<f64>();
            Duration::from_secs_f64((-mean * (1.0 - u).ln()).min(86_400.0))
        }
        None => Duration::from_secs(86_400),
    }
}

/// Mean interval per client for a total `rate` over `n` clients.
fn mean_interval(rate: f64, n: usize) -> Option<f64> {
    (rate > 0.0).then(|| n as f64 / rate)
}

/// Connects and logs in, through the shared connect gate.
async fn open(ctx: &Ctx, url: &str, token: &str) -> Result<Client, ClientError> {
    let _permit = ctx.gate.acquire().await;
    let options = Options::default().timeout(Some(Duration::from_secs(15)));
    let mut client = Client::connect_with(url, options).await?;
    client.login(token).await?;
    Ok(client)
}

fn note_failure(counter: &AtomicU64, what: &str, err: &dyn std::fmt::Display) {
    if counter.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("soak: {what}: {err}");
    }
}

pub(super) async fn run(args: Arc<Args>) {
    let gateways = args.urls.len();
    let ctx = Arc::new(Ctx {
        stats: Counters::default(),
        gate: Semaphore::new(args.connect_parallel.max(1)),
        deadline: Instant::now() + Duration::from_secs(args.seconds),
        args,
    });
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ctx.args.conns {
        tasks.spawn(chat_client(ctx.clone(), i));
    }
    for k in 0..ctx.args.game_pairs {
        tasks.spawn(game_pair(ctx.clone(), k));
    }
    for k in 0..ctx.args.ranked {
        tasks.spawn(ranked_player(ctx.clone(), k));
    }
    println!(
        "soak: {} chat clients over {gateways} gateways in {} rooms, {} game pairs, {} ranked \
         players, chat {}/s, dm {}/s, churn {}/s, for {}s",
        ctx.args.conns,
        ctx.args.rooms,
        ctx.args.game_pairs,
        ctx.args.ranked,
        ctx.args.rate,
        ctx.args.dm_rate,
        ctx.args.churn,
        ctx.args.seconds
    );
    let mut all_in = false;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                println!("soak t={} {}", started.elapsed().as_secs(), ctx.stats.line());
            }
            _ = sleep(Duration::from_millis(100)), if !all_in => {
                if Counters::get(&ctx.stats.live) >= ctx.args.conns as u64 {
                    all_in = true;
                    println!(
                        "soak: all {} chat clients logged in after {:.1}s",
                        ctx.args.conns,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            joined = tasks.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
        }
    }
    println!(
        "soak t={} {}",
        started.elapsed().as_secs(),
        ctx.stats.line()
    );
    println!("soak-summary {}", ctx.stats.json());
}

/// Counts one inbound frame of a chat client.
fn count_frame(stats: &Counters, frame: &switchboard::client::Frame) {
    match frame.kind() {
        "message" => {
            if let Some(sent) = sent_micros(frame.text()) {
                let lat = now_micros().saturating_sub(sent);
                stats.latency_sum_us.fetch_add(lat, Ordering::Relaxed);
                stats.latency_max_us.fetch_max(lat, Ordering::Relaxed);
            }
            stats.delivered.fetch_add(1, Ordering::Relaxed);
        }
        "direct" => {
            stats.dms_received.fetch_add(1, Ordering::Relaxed);
        }
        "ok" => {
            stats.acks.fetch_add(1, Ordering::Relaxed);
        }
        "error" => {
            let seen = stats.errors.fetch_add(1, Ordering::Relaxed);
            if seen < 5 {
                eprintln!("soak: error frame: {}", frame.text());
            }
        }
        _ => {}
    }
}

enum Ended {
    /// The run is over.
    Done,
    /// This client hung up (churn).
    Churn,
    /// The server ended the connection, or it broke.
    Dropped,
}

async fn chat_client(ctx: Arc<Ctx>, i: usize) {
    let args = &ctx.args;
    let user = format!("u{i}");
    let room = room_for(args, i);
    let tok = token(&args.secret, &user);
    let mut gw = (i + i / args.rooms) % args.urls.len();
    let pub_mean = mean_interval(args.rate, args.conns);
    let dm_mean = mean_interval(args.dm_rate, args.conns);
    let churn_mean = mean_interval(args.churn, args.conns);
    let pad = "x".repeat(args.payload);
    while Instant::now() < ctx.deadline {
        let mut client = match open(&ctx, &args.urls[gw], &tok).await {
            Ok(client) => client,
            Err(err) => {
                note_failure(&ctx.stats.connect_failed, "connect", &err);
                sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(err) = client.request_ok(Request::join(room.clone())).await {
            note_failure(&ctx.stats.connect_failed, "join", &err);
            sleep(Duration::from_secs(1)).await;
            continue;
        }
        ctx.stats.connects.fetch_add(1, Ordering::Relaxed);
        ctx.stats.live.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut next_pub = now + exp_wait(pub_mean);
        let mut next_dm = now + exp_wait(dm_mean);
        let churn_at = now + exp_wait(churn_mean);
        let ended = loop {
            tokio::select! {
                frame = client.recv_timeout(Duration::from_secs(3600)) => match frame {
                    Ok(frame) => count_frame(&ctx.stats, &frame),
                    Err(_) if client.is_closed() => break Ended::Dropped,
                    Err(ClientError::Timeout) => {}
                    Err(_) => {}
                },
                () = sleep_until(next_pub) => {
                    next_pub += exp_wait(pub_mean);
                    let publish = Request::Publish {
                        room: room.clone(),
                        data: json!({"sent": now_micros(), "pad": pad}),
                        echo: false,
                        msg_id: None,
                    };
                    if client.send(publish).await.is_err() {
                        break Ended::Dropped;
                    }
                    ctx.stats.published.fetch_add(1, Ordering::Relaxed);
                }
                () = sleep_until(next_dm) => {
                    next_dm += exp_wait(dm_mean);
                    let to = format!("u{}", rand::random_range(0..args.conns));
                    if client.send(Request::direct(to, json!({"hi": i}))).await.is_err() {
                        break Ended::Dropped;
                    }
                    ctx.stats.dms_sent.fetch_add(1, Ordering::Relaxed);
                }
                () = sleep_until(churn_at) => break Ended::Churn,
                () = sleep_until(ctx.deadline) => break Ended::Done,
            }
        };
        ctx.stats.live.fetch_sub(1, Ordering::Relaxed);
        match ended {
            Ended::Done => {
                let _ = client.close().await;
                return;
            }
            Ended::Churn => {
                ctx.stats.churned.fetch_add(1, Ordering::Relaxed);
                if rand::random::<bool>() {
                    let _ = client.close().await;
                }
                drop(client);
                sleep(Duration::from_millis(rand::random_range(0..2000))).await;
            }
            Ended::Dropped => {
                ctx.stats.dropped.fetch_add(1, Ordering::Relaxed);
                sleep(Duration::from_secs(1)).await;
            }
        }
        gw = (gw + 1) % args.urls.len();
    }
}

/// The `room` field of a frame.
fn room_of(frame: &switchboard::client::Frame) -> Result<String, ClientError> {
    frame
        .value()?
        .get("room")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Protocol(format!("no room in {}", frame.text())))
}

fn expect(
    frame: switchboard::client::Frame,
    kind: &str,
) -> Result<switchboard::client::Frame, ClientError> {
    if frame.kind() == kind {
        Ok(frame)
    } else {
        Err(ClientError::Protocol(format!(
            "expected {kind}, got {}",
            frame.text()
        )))
    }
}

async fn game_pair(ctx: Arc<Ctx>, k: usize) {
    let args = &ctx.args;
    let n = args.urls.len();
    let (ua, ub) = (format!("ga{k}"), format!("gb{k}"));
    let (ta, tb) = (token(&args.secret, &ua), token(&args.secret, &ub));
    let mut pair: Option<(Client, Client)> = None;
    while Instant::now() < ctx.deadline {
        let (a, b) = match pair.as_mut() {
            Some((a, b)) => (a, b),
            None => {
                let a = open(&ctx, &args.urls[k % n], &ta).await;
                let b = open(&ctx, &args.urls[(k + 1) % n], &tb).await;
                match (a, b) {
                    (Ok(a), Ok(b)) => {
                        let (a, b) = pair.insert((a, b));
                        (a, b)
                    }
                    (Err(err), _) | (_, Err(err)) => {
                        note_failure(&ctx.stats.game_failures, "game connect", &err);
                        sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
        };
        match play_friend_game(a, b).await {
            Ok(()) => {
                ctx.stats.games.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                note_failure(&ctx.stats.game_failures, "friend game", &err);
                pair = None;
            }
        }
        sleep(Duration::from_millis(rand::random_range(500..2000))).await;
    }
    if let Some((mut a, mut b)) = pair {
        let _ = a.close().await;
        let _ = b.close().await;
    }
}

async fn play_friend_game(a: &mut Client, b: &mut Client) -> Result<(), ClientError> {
    let created = expect(a.request(Request::GameCreate).await?, "game.created")?;
    let room = room_of(&created)?;
    b.request_ok(Request::game_join(room.clone())).await?;
    for m in 0..6 {
        let (from, to) = if m % 2 == 0 {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        from.request_ok(Request::game_send(
            room.clone(),
            GameTarget::Opponent,
            json!({"move": m}),
        ))
        .await?;
        to.recv_type("game.message").await?;
        sleep(Duration::from_millis(rand::random_range(100..400))).await;
    }
    a.request_ok(Request::game_close(room)).await?;
    a.recv_type("game.closed").await?;
    b.recv_type("game.closed").await?;
    Ok(())
}

async fn ranked_player(ctx: Arc<Ctx>, k: usize) {
    let args = &ctx.args;
    let user = format!("rk{k}");
    let rating = 1500 + (k as i64 - args.ranked as i64 / 2) * 10;
    let tok = token_rated(&args.secret, &user, Some(rating));
    let mut gw = k % args.urls.len();
    let mut client: Option<Client> = None;
    while Instant::now() < ctx.deadline {
        let c = match client.as_mut() {
            Some(c) => c,
            None => match open(&ctx, &args.urls[gw], &tok).await {
                Ok(c) => client.insert(c),
                Err(err) => {
                    note_failure(&ctx.stats.ranked_failures, "ranked connect", &err);
                    sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        match play_ranked(&ctx, c, &user).await {
            Ok(true) => {
                ctx.stats.ranked_games.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            // A match made as the run ended: the other player may have stopped already.
            Err(_) if Instant::now() >= ctx.deadline => return,
            Err(err) => {
                note_failure(&ctx.stats.ranked_failures, "ranked", &err);
                client = None;
                gw = (gw + 1) % args.urls.len();
            }
        }
        sleep(Duration::from_millis(rand::random_range(200..1500))).await;
    }
    if let Some(mut c) = client {
        let _ = c.request(Request::RankLeave).await;
        let _ = c.close().await;
    }
}

/// One round: queue, play the match. `Ok(false)`: timed out in the queue, or the run
/// ended while queued.
async fn play_ranked(ctx: &Ctx, c: &mut Client, me: &str) -> Result<bool, ClientError> {
    let mut stage = "queue";
    let round = ranked_round(ctx, c, me, &mut stage).await;
    round.map_err(|err| ClientError::Protocol(format!("{stage}: {err}")))
}

async fn ranked_round(
    ctx: &Ctx,
    c: &mut Client,
    me: &str,
    stage: &mut &'static str,
) -> Result<bool, ClientError> {
    expect(c.request(Request::RankJoin).await?, "rank.queued")?;
    ctx.stats.ranked_queued.fetch_add(1, Ordering::Relaxed);
    let room = loop {
        if Instant::now() >= ctx.deadline {
            return Ok(false);
        }
        let frame = match c.recv_timeout(Duration::from_secs(1)).await {
            Ok(frame) => frame,
            Err(ClientError::Timeout) => continue,
            Err(err) => return Err(err),
        };
        match frame.kind() {
            "rank.matched" => break room_of(&frame)?,
            "rank.timeout" => {
                ctx.stats.ranked_timeouts.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
            _ => {}
        }
    };
    *stage = "game.join";
    let joined = c.request_ok(Request::game_join(room.clone())).await?;
    let owner = joined
        .value()?
        .get("owner")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_default();
    // Moves sent before the other player joined would not reach them (no `since`).
    *stage = "wait game.started";
    if let Err(err) = c.recv_type("game.started").await {
        // Say what the join answered (`started`, `owner`) to tell the cases apart.
        return Err(ClientError::Protocol(format!(
            "{err}; I am {me}, the join answered {}",
            joined.text()
        )));
    }
    *stage = "moves";
    for m in 0..3 {
        c.request_ok(Request::game_send(
            room.clone(),
            GameTarget::Opponent,
            json!({"move": m}),
        ))
        .await?;
        sleep(Duration::from_millis(rand::random_range(100..400))).await;
    }
    if owner == me {
        *stage = "owner: wait for the opponent's moves";
        for _ in 0..3 {
            c.recv_type("game.message").await?;
        }
        c.request_ok(Request::game_leave(room)).await?;
    }
    *stage = "wait game.closed";
    c.recv_type("game.closed").await?;
    Ok(true)
}
