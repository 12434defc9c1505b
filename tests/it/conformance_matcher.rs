//! The ranked matcher's conformance suite, on the memory and the Redis backend: a run
//! takes exactly the matches `matchmaking::pair` chooses (same rooms, same seats),
//! pending matches are leased, taken over when the lease runs out and forgotten when
//! finished, and orphaned queue entries are dropped. On Redis also: racing replicas never
//! match anyone twice, the run lease, and a change through another replica is seen.

use crate::conformance::{Backend, memory, redis, user};
use crate::harness::{TestRedis, unique_prefix};
use switchboard::backend::{Match, MatchRun, Taken};
use switchboard::config::Config;
use switchboard::matchmaking::{self, Rules, Waiting};
use switchboard::protocol::UserId;

fn queue(seed: u64, n: usize, now_ms: u64) -> Vec<Waiting> {
    let mut x = seed;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    (0..n)
        .map(|i| Waiting {
            user: user(&format!("p{seed}x{i}")),
            // Coarse steps make equal ratings and equal gaps common.
            rating: 1000 + (next() % 40) as i64 * 25,
            // Some have not settled yet (settle is 1 s below).
            since_ms: now_ms - 1 - (next() % 20_000) * 7 - i as u64,
        })
        .collect()
}

const RULES: Rules = Rules {
    window: 50.0,
    widen_per_s: 20.0,
    max_window: 300.0,
    settle_ms: 1_000,
};
const LEASE: u64 = 5_000;

fn run(now_ms: u64, prefix: &str) -> MatchRun<'_> {
    MatchRun {
        now_ms,
        rules: RULES,
        room_prefix: prefix,
        lease_ms: LEASE,
        drop_before_ms: 0,
        exclusive_ms: 0,
    }
}

/// What `matchmaking::pair` says the run must take.
fn expected(players: &[Waiting], now: u64, prefix: &str) -> Vec<Match> {
    matchmaking::pair(players, now, &RULES)
        .into_iter()
        .enumerate()
        .map(|(k, (a, b))| Match {
            room: crate::conformance::room(&format!("{prefix}{:08x}", k + 1)),
            a: players[a].clone(),
            b: players[b].clone(),
            made_ms: now,
        })
        .collect()
}

async fn take(b: &Backend, run: &MatchRun<'_>) -> Taken {
    b.matchmaker.take_matches(run).await.expect("take")
}

async fn matcher_suite(b: Backend) {
    let now = 10_000_000_000;
    for seed in 1..=8 {
        let players = queue(seed, 41, now);
        for p in &players {
            assert!(b.matchmaker.enqueue(p, "s").await.expect("enqueue"));
        }
        assert!(
            !b.matchmaker
                .enqueue(&players[0], "s2")
                .await
                .expect("again")
        );
        let prefix = format!("g-s{seed}-");
        let want = expected(&players, now, &prefix);
        assert!(!want.is_empty(), "seed {seed} forms no pair");
        let taken = take(&b, &run(now, &prefix)).await;
        assert_eq!(taken.matches, want, "seed {seed}");
        assert_eq!(taken.recovered, 0);
        assert_eq!(taken.queued, players.len() - 2 * want.len(), "seed {seed}");
        assert_eq!(taken.pending, want.len());
        let stats = b.matchmaker.stats(now).await.expect("stats");
        assert_eq!(stats.len, taken.queued);

        // The same moment again: nothing new, nothing expired.
        let again = take(&b, &run(now, "g-again-")).await;
        assert!(
            again.matches.is_empty() && again.recovered == 0,
            "seed {seed}"
        );

        // One match is finished; the others' leases run out and the next run takes them
        // over, unchanged. Later runs take the rest of the queue as the rule says.
        b.matchmaker.finish(&want[0].room).await.expect("finish");
        let later = now + LEASE;
        let left: Vec<Waiting> = players
            .iter()
            .filter(|p| {
                !want
                    .iter()
                    .any(|m| m.a.user == p.user || m.b.user == p.user)
            })
            .cloned()
            .collect();
        let fresh = expected(&left, later, "g-later-");
        let taken = take(&b, &run(later, "g-later-")).await;
        assert_eq!(taken.recovered, want.len() - 1, "seed {seed}");
        let (new, recovered) = taken.matches.split_at(fresh.len());
        assert_eq!(new, fresh, "seed {seed}");
        let mut want_back = want[1..].to_vec();
        want_back.sort_by(|x, y| x.room.cmp(&y.room));
        assert_eq!(recovered, want_back, "seed {seed}: taken over by room");
        assert_eq!(taken.pending, want.len() - 1 + fresh.len());
        // Re-leased: not taken over again before the new lease ends.
        let x = take(&b, &run(later + 1, "g-x-")).await;
        assert_eq!(x.recovered, 0);
        for p in &players {
            b.matchmaker.dequeue(&p.user, None).await.expect("dequeue");
        }
        for m in want.iter().chain(&fresh).chain(&x.matches) {
            b.matchmaker.finish(&m.room).await.expect("finish");
        }
        let done = take(&b, &run(later + 2 * LEASE, "g-y-")).await;
        assert!(done.matches.is_empty() && done.pending == 0 && done.queued == 0);
    }
}

/// Nobody settled means no match, though pairs are planned; orphans are dropped.
async fn settle_and_orphans(b: Backend) {
    let now = 20_000_000_000;
    let w = |name: &str, rating: i64, since_ms: u64| Waiting {
        user: user(name),
        rating,
        since_ms,
    };
    let players = [
        w("fresh-a", 1500, now - 10),
        w("fresh-b", 1510, now - 20),
        w("old", 1400, now - 600_000),
    ];
    for p in &players {
        b.matchmaker.enqueue(p, "s").await.expect("enqueue");
    }
    let mut r = run(now, "g-o-");
    r.drop_before_ms = now - 300_000;
    let taken = take(&b, &r).await;
    assert!(taken.matches.is_empty(), "{:?}", taken.matches);
    assert_eq!(taken.queued, 2, "the orphan was dropped");
    let later = now + RULES.settle_ms;
    let taken = take(&b, &run(later, "g-p-")).await;
    assert_eq!(taken.matches.len(), 1);
    assert_eq!(
        (
            taken.matches[0].a.user.as_str(),
            taken.matches[0].b.user.as_str()
        ),
        ("fresh-a", "fresh-b")
    );
}

#[tokio::test]
async fn memory_matcher() {
    matcher_suite(memory().await).await;
    settle_and_orphans(memory().await).await;
}

#[tokio::test]
async fn redis_matcher_matches_the_rust_rule() {
    matcher_suite(redis().await).await;
    settle_and_orphans(redis().await).await;
}

/// Two Redis matcher backends on one queue, as two replicas.
async fn two_replicas() -> (TestRedis, Backend, Backend) {
    let server = TestRedis::start().await;
    let c = Config {
        redis_url: Some(server.url()),
        redis_prefix: unique_prefix(),
        ..crate::conformance::config()
    };
    let a = crate::conformance::connect(c.clone(), None).await;
    let b = crate::conformance::connect(c, None).await;
    (server, a, b)
}

fn live_run(prefix: &str, rules: Rules, exclusive_ms: u64) -> MatchRun<'_> {
    let now_ms = switchboard::clock::unix_millis();
    MatchRun {
        now_ms,
        rules,
        room_prefix: prefix,
        lease_ms: LEASE,
        drop_before_ms: 0,
        exclusive_ms,
    }
}

/// Queues `n` new players `race<k>` through `b`, spread over 600 rating points and 3 s.
async fn join(b: &Backend, n: usize, joined: &mut usize, next: &mut impl FnMut(u64) -> u64) {
    for _ in 0..n {
        let p = Waiting {
            user: user(&format!("race{joined}")),
            rating: 1000 + next(600) as i64,
            since_ms: switchboard::clock::unix_millis() - next(3_000),
        };
        assert!(b.matchmaker.enqueue(&p, "s").await.expect("enqueue"));
        *joined += 1;
    }
}

/// Two replicas run the matcher at the same moment, over and over, while players join
/// and leave: both read the same queue and choose the same pairs, and the checked take
/// lets only one of them have each pair. Nobody is matched twice, nobody who left is
/// matched, every pair fits, and every player is accounted for exactly once.
#[tokio::test]
async fn racing_redis_matchers_never_match_anyone_twice() {
    let (_server, r1, r2) = two_replicas().await;
    let rules = Rules {
        window: 40.0,
        widen_per_s: 400.0,
        max_window: 300.0,
        settle_ms: 0,
    };
    let mut x: u64 = 99;
    let mut next = move |m: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % m
    };
    let mut joined = 0usize;
    join(&r1, 300, &mut joined, &mut next).await;
    let mut matched: std::collections::HashMap<UserId, String> = Default::default();
    let mut left = std::collections::HashSet::new();
    let (mut won1, mut won2) = (0, 0);
    for round in 0..40 {
        let (p1, p2) = (format!("g-a{round}-"), format!("g-b{round}-"));
        let leaver = user(&format!("race{}", next(joined as u64)));
        let (run1, run2) = (live_run(&p1, rules, 0), live_run(&p2, rules, 0));
        let (t1, t2, gone) = tokio::join!(
            r1.matchmaker.take_matches(&run1),
            r2.matchmaker.take_matches(&run2),
            r2.matchmaker.dequeue(&leaver, None),
        );
        if gone.expect("dequeue") {
            assert!(
                !matched.contains_key(&leaver),
                "{leaver} left after a match"
            );
            left.insert(leaver);
        }
        for (t, won) in [
            (t1.expect("take 1"), &mut won1),
            (t2.expect("take 2"), &mut won2),
        ] {
            *won += t.matches.len();
            for m in t.matches {
                assert!(rules.fits(&m.a, &m.b, m.made_ms), "{m:?}");
                for p in [&m.a, &m.b] {
                    assert!(!left.contains(&p.user), "{} matched after leaving", p.user);
                    let again = matched.insert(p.user.clone(), m.room.to_string());
                    assert!(
                        again.is_none(),
                        "{} matched twice: {again:?} and {m:?}",
                        p.user
                    );
                }
            }
        }
        if round % 4 == 0 {
            let via = if round % 8 == 0 { &r1 } else { &r2 };
            join(via, 30, &mut joined, &mut next).await;
        }
    }
    let queued = r1.matchmaker.stats(0).await.expect("stats").len;
    assert_eq!(
        matched.len() + left.len() + queued,
        joined,
        "every player accounted for"
    );
    // Which replica wins a round is up to timing; the loser's take then finds every
    // pair gone (its checked path).
    assert!(won1 + won2 > 100, "pairs taken: {won1} and {won2}");
    // Each replica's copy of the queue (caught up from the change log) holds everyone
    // left: with any gap accepted, the queue drains to at most one player.
    let anyone = Rules {
        window: 10_000.0,
        max_window: 10_000.0,
        ..rules
    };
    for (i, b) in [&r1, &r2, &r1].into_iter().enumerate() {
        let prefix = format!("g-drain{i}-");
        let t = take(b, &live_run(&prefix, anyone, 0)).await;
        for m in t.matches {
            for p in [&m.a, &m.b] {
                assert!(!left.contains(&p.user), "{} matched after leaving", p.user);
                assert!(matched.insert(p.user.clone(), m.room.to_string()).is_none());
            }
        }
    }
    let rest = r2.matchmaker.stats(0).await.expect("stats").len;
    assert!(
        rest <= 1,
        "{rest} never matched: a replica's copy missed them"
    );
    eprintln!(
        "racing matchers: {joined} joined, {} matched ({won1} + {won2} pairs), {} left, {queued} queued",
        matched.len(),
        left.len()
    );
}

/// With a run lease only one replica runs the matcher until the lease ends; the other
/// still gets the queue and pending counts.
#[tokio::test]
async fn the_run_lease_lets_one_replica_match_per_tick() {
    let (_server, r1, r2) = two_replicas().await;
    let rules = Rules {
        settle_ms: 0,
        ..RULES
    };
    let now = switchboard::clock::unix_millis();
    for (name, rating) in [("l1", 1500), ("l2", 1510), ("l3", 1800), ("l4", 1810)] {
        let p = Waiting {
            user: user(name),
            rating,
            since_ms: now - 100,
        };
        r1.matchmaker.enqueue(&p, "s").await.expect("enqueue");
    }
    let first = take(&r1, &live_run("g-l1-", rules, 60_000)).await;
    assert_eq!(first.matches.len(), 2);
    for p in [("l5", 1500), ("l6", 1501)] {
        let p = Waiting {
            user: user(p.0),
            rating: p.1,
            since_ms: now - 100,
        };
        r2.matchmaker.enqueue(&p, "s").await.expect("enqueue");
    }
    for b in [&r2, &r1] {
        let refused = take(b, &live_run("g-l2-", rules, 60_000)).await;
        assert!(refused.matches.is_empty(), "{refused:?}");
        assert_eq!((refused.queued, refused.pending), (2, 2));
    }
    let unleased = take(&r2, &live_run("g-l3-", rules, 0)).await;
    assert_eq!(unleased.matches.len(), 1);
}

/// A replica keeps its last read of the queue while the version stands still; a change
/// made through another replica (a player leaving and coming back with another rating)
/// moves the version, and the next run reads the queue again.
#[tokio::test]
async fn a_change_on_another_replica_is_seen_by_the_next_run() {
    let (_server, r1, r2) = two_replicas().await;
    let now = 30_000_000_000;
    let w = |name: &str, rating: i64| Waiting {
        user: user(name),
        rating,
        since_ms: now - 5_000,
    };
    r1.matchmaker
        .enqueue(&w("c1", 1500), "s")
        .await
        .expect("enqueue");
    r1.matchmaker
        .enqueue(&w("c2", 2000), "s")
        .await
        .expect("enqueue");
    // 500 apart: over the maximum window, no pair ever (a quiet queue for r1).
    let none = take(&r1, &run(now, "g-c1-")).await;
    assert!(none.matches.is_empty() && none.queued == 2);
    assert!(take(&r1, &run(now + 10, "g-c2-")).await.matches.is_empty());
    assert!(
        r2.matchmaker
            .dequeue(&user("c2"), Some("s"))
            .await
            .expect("leave")
    );
    r2.matchmaker
        .enqueue(&w("c2", 1520), "s2")
        .await
        .expect("back");
    let got = take(&r1, &run(now + 20, "g-c3-")).await;
    assert_eq!(got.matches.len(), 1, "{got:?}");
    assert_eq!(
        (got.matches[0].b.user.as_str(), got.matches[0].b.rating),
        ("c2", 1520)
    );
}
