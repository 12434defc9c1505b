//! The ranked matcher's conformance suite, on the memory and the Redis backend: the
//! Redis Lua script takes exactly the matches `matchmaking::pair` chooses (same rooms,
//! same seats), pending matches are leased, taken over when the lease runs out and
//! forgotten when finished, and orphaned queue entries are dropped.

use crate::conformance::{Backend, memory, redis, user};
use switchboard::backend::{Match, MatchRun, Taken};
use switchboard::matchmaking::{self, Rules, Waiting};

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
