//! The ranked matching rule, written once: who may play whom, and which pairs form. The
//! backends keep the queue and both run this rule (the Redis one in the replica, over its
//! last read of the queue, taking the pairs with a checked script); `quiet_until` says how
//! long an unchanged queue stays without a pair to take.
//!
//! The rule pairs the whole queue at once, as if everybody had arrived together: in
//! rating order, the most pairs whose gap fits both players' windows, then the smallest
//! total gap, then the longest total wait. A pair is only taken once both players have
//! waited `settle_ms`, so that a burst of arrivals is seen whole before anyone's
//! neighbours are taken; until then the newcomer still counts as a neighbour, which keeps
//! the others from pairing across it and leaving it stranded behind a wide gap.

use crate::protocol::UserId;
use std::cmp::Ordering;

/// A player in the ranked queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub user: UserId,
    pub rating: i64,
    /// When the player joined the queue (ms since the epoch).
    pub since_ms: u64,
}

/// How far apart two ratings may be, growing with waiting time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Window for a player who just joined.
    pub window: f64,
    /// Growth of the window per second of waiting.
    pub widen_per_s: f64,
    /// The window never grows beyond this.
    pub max_window: f64,
    /// A player is not taken into a pair before waiting this long (ms).
    pub settle_ms: u64,
}

impl Rules {
    /// The rating gap a player accepts after waiting `waited_ms`.
    pub fn window(&self, waited_ms: u64) -> f64 {
        (self.window + self.widen_per_s * waited_ms as f64 / 1000.0).min(self.max_window)
    }

    /// True when both players accept each other's rating.
    pub fn fits(&self, a: &Waiting, b: &Waiting, now_ms: u64) -> bool {
        let gap = (a.rating - b.rating).unsigned_abs() as f64;
        gap <= self.window(now_ms.saturating_sub(a.since_ms))
            && gap <= self.window(now_ms.saturating_sub(b.since_ms))
    }

    /// From when (ms, possibly a little early) both players accept each other's rating;
    /// None if never (the gap is over the maximum window, or windows do not widen).
    pub fn fits_from(&self, a: &Waiting, b: &Waiting) -> Option<u64> {
        let gap = (a.rating - b.rating).unsigned_abs() as f64;
        if gap > self.max_window {
            return None;
        }
        let wait = if gap <= self.window {
            0
        } else if self.widen_per_s > 0.0 {
            // One ms early against rounding in the division.
            (((gap - self.window) * 1000.0 / self.widen_per_s).floor() as u64).saturating_sub(1)
        } else {
            return None;
        };
        Some(a.since_ms.max(b.since_ms).saturating_add(wait))
    }

    /// True once the player may be taken into a pair.
    pub fn settled(&self, player: &Waiting, now_ms: u64) -> bool {
        now_ms.saturating_sub(player.since_ms) >= self.settle_ms
    }
}

/// How good a set of pairs over a prefix of the queue is; larger is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Score {
    pairs: u64,
    gaps: u64,
    waited: u64,
}

impl Score {
    /// More pairs, then a smaller total gap, then a longer total wait.
    fn better_than(&self, other: &Score) -> bool {
        self.pairs
            .cmp(&other.pairs)
            .then(other.gaps.cmp(&self.gaps))
            .then(self.waited.cmp(&other.waited))
            == Ordering::Greater
    }
}

/// The queue in the matcher's order: rating, then user id (bytewise), which is the
/// order of the Redis sorted set the script reads.
pub fn rating_order(queue: &[Waiting]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..queue.len()).collect();
    order.sort_by(|&i, &j| {
        (queue[i].rating, queue[i].user.as_str().as_bytes())
            .cmp(&(queue[j].rating, queue[j].user.as_str().as_bytes()))
    });
    order
}

/// The pairs to take now, as indices into `queue`, in rating order, each with the first
/// seat first (the lower rating, then who queued first). Only neighbours in
/// rating order pair (a pair across a third player would leave that player behind a wider
/// gap); one pass of dynamic programming over the order finds the best set, so a run is
/// O(n log n) for the sort and O(n) after it. Pairs with a player still settling are
/// planned but not taken: they wait for the next run.
pub fn pair(queue: &[Waiting], now_ms: u64, rules: &Rules) -> Vec<(usize, usize)> {
    let order = rating_order(queue);
    let mut pairs = Vec::new();
    for (a, b) in plan(queue, &order, now_ms, rules) {
        if rules.settled(&queue[a], now_ms) && rules.settled(&queue[b], now_ms) {
            // The first seat: the lower rating, then who queued first.
            let first = queue[a].rating < queue[b].rating || queue[a].since_ms <= queue[b].since_ms;
            pairs.push(if first { (a, b) } else { (b, a) });
        }
    }
    pairs
}

/// The best set of neighbour pairs over `order`, settled or not, in rating order.
fn plan(queue: &[Waiting], order: &[usize], now_ms: u64, rules: &Rules) -> Vec<(usize, usize)> {
    let n = order.len();
    let waited = |i: usize| now_ms.saturating_sub(queue[order[i]].since_ms);
    // best[k]: the best score over the first k players; paired[k]: whether it pairs the
    // (k-1)th and kth, else it leaves the kth alone.
    let mut best = vec![Score::default(); n + 1];
    let mut paired = vec![false; n + 1];
    for k in 2..=n {
        best[k] = best[k - 1];
        let (a, b) = (&queue[order[k - 2]], &queue[order[k - 1]]);
        if rules.fits(a, b, now_ms) {
            let take = Score {
                pairs: best[k - 2].pairs + 1,
                gaps: best[k - 2].gaps + (a.rating - b.rating).unsigned_abs(),
                waited: best[k - 2].waited + waited(k - 2) + waited(k - 1),
            };
            if take.better_than(&best[k]) {
                best[k] = take;
                paired[k] = true;
            }
        }
    }
    let mut pairs = Vec::new();
    let mut k = n;
    while k >= 2 {
        if paired[k] {
            pairs.push((order[k - 2], order[k - 1]));
            k -= 2;
        } else {
            k -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// When `pair` takes nothing at `now_ms`, the earliest time (ms) it might take a pair
/// from this same queue: a planned pair's player settles, a neighbour pair's gap comes to
/// fit both windows (only that changes the plan: between such moments the total waits of
/// two candidate sets with as many pairs differ by a constant), or a player queued in the
/// future (a replica's clock ahead) starts to wait. `u64::MAX` if never. It may be early,
/// never late: a matcher can skip the run over an unchanged queue until then.
pub fn quiet_until(queue: &[Waiting], now_ms: u64, rules: &Rules) -> u64 {
    let order = rating_order(queue);
    let mut until = u64::MAX;
    for (a, b) in plan(queue, &order, now_ms, rules) {
        for p in [&queue[a], &queue[b]] {
            let settles = p.since_ms.saturating_add(rules.settle_ms);
            if settles > now_ms {
                until = until.min(settles);
            }
        }
    }
    for p in queue.iter().filter(|p| p.since_ms > now_ms) {
        until = until.min(p.since_ms);
    }
    for w in order.windows(2) {
        let (a, b) = (&queue[w[0]], &queue[w[1]]);
        if !rules.fits(a, b, now_ms)
            && let Some(at) = rules.fits_from(a, b)
        {
            until = until.min(at.max(now_ms + 1));
        }
    }
    until
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        window: 100.0,
        widen_per_s: 50.0,
        max_window: 400.0,
        settle_ms: 0,
    };

    fn w(user: &str, rating: i64, since_ms: u64) -> Waiting {
        Waiting {
            user: UserId::new(user).expect("id"),
            rating,
            since_ms,
        }
    }

    fn names(queue: &[Waiting], pairs: &[(usize, usize)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = pairs
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (queue[a].user.to_string(), queue[b].user.to_string());
                if a < b { (a, b) } else { (b, a) }
            })
            .collect();
        out.sort();
        out
    }

    fn pairs_of(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn window_widens_with_waiting_and_is_capped() {
        assert_eq!(RULES.window(0), 100.0);
        assert_eq!(RULES.window(2_000), 200.0);
        assert_eq!(RULES.window(60_000), 400.0);
    }

    #[test]
    fn gap_must_fit_both_windows() {
        let now = 10_000;
        let fresh = w("a", 1500, now);
        let patient = w("b", 1650, now - 4_000); // window 300
        assert!(
            !RULES.fits(&fresh, &patient, now),
            "the fresh player only accepts 100"
        );
        let both = w("c", 1500, now - 1_000); // window 150
        assert!(RULES.fits(&both, &patient, now));
    }

    #[test]
    fn most_pairs_first_so_nobody_is_stranded() {
        // b-c is the closest pair, but taking it would strand a and d 200 apart.
        let q = [
            w("a", 1500, 0),
            w("b", 1590, 0),
            w("c", 1600, 0),
            w("d", 1690, 0),
        ];
        assert_eq!(
            names(&q, &pair(&q, 0, &RULES)),
            pairs_of(&[("a", "b"), ("c", "d")])
        );
    }

    #[test]
    fn smallest_total_gap_among_equal_counts() {
        // One pair either way: b-c (10) beats a-b (90); a waits.
        let q = [w("a", 1500, 0), w("b", 1590, 0), w("c", 1600, 0)];
        assert_eq!(names(&q, &pair(&q, 0, &RULES)), pairs_of(&[("b", "c")]));
        // After 2 s a accepts 200 but has nobody left; with d it pairs.
        let q2 = [w("a", 1500, 0), w("d", 1700, 0)];
        assert_eq!(
            names(&q2, &pair(&q2, 2_000, &RULES)),
            pairs_of(&[("a", "d")])
        );
    }

    #[test]
    fn a_burst_pairs_every_player_with_a_neighbour() {
        // 40 players 37 apart arrive in a shuffled order over 300 ms; 500 ms settle.
        let rules = Rules {
            settle_ms: 500,
            ..RULES
        };
        let mut q: Vec<Waiting> = (0..40)
            .map(|i| w(&format!("p{i:02}"), 1000 + 37 * i, (i as u64 * 7919) % 300))
            .collect();
        q.reverse();
        let mut left = q.clone();
        let mut all = Vec::new();
        for now in (0..2_000).step_by(100) {
            // Only who has arrived by now is in the queue.
            let queue: Vec<Waiting> = left.iter().filter(|p| p.since_ms <= now).cloned().collect();
            let mut taken = std::collections::HashSet::new();
            for (a, b) in pair(&queue, now, &rules) {
                assert!(rules.settled(&queue[a], now) && rules.settled(&queue[b], now));
                all.push((queue[a].rating - queue[b].rating).abs());
                taken.extend([queue[a].user.clone(), queue[b].user.clone()]);
            }
            left.retain(|p| !taken.contains(&p.user));
        }
        assert!(left.is_empty(), "stranded: {left:?}");
        assert_eq!(all, vec![37; 20]);
    }

    #[test]
    fn a_settling_player_blocks_pairs_across_it() {
        let rules = Rules {
            settle_ms: 500,
            ..RULES
        };
        // a and c have waited 2 s (window 200) and are 60 apart; b just arrived between.
        let q = [w("a", 1500, 0), w("b", 1530, 1_900), w("c", 1560, 0)];
        assert!(
            pair(&q, 2_000, &rules).is_empty(),
            "b is planned in, not skipped"
        );
        // Once b settles it pairs with a (ties in gap go to the longer wait: a waited
        // as long as c, so the first in rating order).
        let got = names(&q, &pair(&q, 2_400, &rules));
        assert_eq!(got, pairs_of(&[("a", "b")]));
    }

    #[test]
    fn nobody_is_matched_twice_and_odd_one_waits() {
        let q: Vec<Waiting> = (0..101).map(|i| w(&format!("p{i}"), 1500 + i, 0)).collect();
        let pairs = pair(&q, 0, &RULES);
        assert_eq!(pairs.len(), 50);
        let mut seen = std::collections::HashSet::new();
        for (a, b) in pairs {
            assert!(seen.insert(a) && seen.insert(b), "double match");
            assert!((q[a].rating - q[b].rating).abs() <= 1);
        }
    }

    #[test]
    fn ties_go_to_who_waited_longest() {
        // a-b and b-c are both 50 apart; c has waited longest, so b-c wins.
        let q = [w("a", 1500, 4_000), w("b", 1550, 4_000), w("c", 1600, 0)];
        assert_eq!(names(&q, &pair(&q, 4_000, &RULES)), pairs_of(&[("b", "c")]));
    }

    #[test]
    fn equal_ratings_order_by_user_id() {
        let q = [w("b", 1500, 0), w("a", 1500, 0), w("c", 1500, 0)];
        assert_eq!(rating_order(&q), vec![1, 0, 2]);
        assert_eq!(names(&q, &pair(&q, 0, &RULES)), pairs_of(&[("a", "b")]));
    }

    #[test]
    fn the_first_seat_is_the_lower_rating_then_who_queued_first() {
        let q = [
            w("a", 1500, 200),
            w("b", 1500, 100),
            w("c", 1400, 300),
            w("d", 1450, 0),
        ];
        let pairs = pair(&q, 1_000, &RULES);
        let seats: Vec<(&str, &str)> = pairs
            .iter()
            .map(|&(x, y)| (q[x].user.as_str(), q[y].user.as_str()))
            .collect();
        assert_eq!(seats, [("c", "d"), ("b", "a")]);
    }

    #[test]
    fn fits_from_is_when_the_later_player_has_waited_enough() {
        let (a, b) = (w("a", 1500, 1_000), w("b", 1700, 3_000));
        // 200 apart: a window of 200 takes 2 s of waiting, counted from b's 3 s.
        let at = RULES.fits_from(&a, &b).expect("fits later");
        assert!((4_990..=5_000).contains(&at), "{at}");
        assert!(!RULES.fits(&a, &b, at - 10) && RULES.fits(&a, &b, 5_000));
        assert_eq!(RULES.fits_from(&a, &w("c", 2000, 0)), None, "over the cap");
    }

    #[test]
    fn quiet_until_is_never_late() {
        let rules = Rules {
            settle_ms: 700,
            ..RULES
        };
        let mut x: u64 = 7;
        let mut next = move |m: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % m
        };
        let mut checked = 0;
        for round in 0..1_000 {
            let n = 2 + next(12) as usize;
            let now = 50_000;
            let q: Vec<Waiting> = (0..n)
                .map(|i| {
                    let since = now + 2_000 - next(12_000);
                    w(&format!("p{round}-{i}"), 1000 + 10 * next(80) as i64, since)
                })
                .collect();
            if !pair(&q, now, &rules).is_empty() {
                continue;
            }
            let until = quiet_until(&q, now, &rules);
            assert!(until > now);
            let end = until.min(now + 30_000);
            for t in (now..end)
                .step_by(29)
                .chain([end - 2, end - 1].map(|t| t.max(now)))
            {
                assert!(
                    pair(&q, t, &rules).is_empty(),
                    "round {round}: pair at {t} < {until}"
                );
            }
            checked += 1;
        }
        assert!(checked > 100, "only {checked} quiet queues");
    }

    #[test]
    fn quiet_until_points_at_the_next_fit_or_settle() {
        let rules = Rules {
            settle_ms: 1_000,
            ..RULES
        };
        // 300 apart, both waiting since 0: they fit after 4 s.
        let q = [w("a", 1500, 0), w("b", 1800, 0)];
        let until = quiet_until(&q, 1_000, &rules);
        assert!((3_990..=4_000).contains(&until), "{until}");
        // Fitting but b arrived at 900: taken once b settles at 1,900.
        let q = [w("a", 1500, 0), w("b", 1510, 900)];
        assert!(pair(&q, 1_000, &rules).is_empty());
        assert_eq!(quiet_until(&q, 1_000, &rules), 1_900);
        assert_eq!(pair(&q, 1_900, &rules).len(), 1);
        // Never: over the maximum window.
        assert_eq!(
            quiet_until(&[w("a", 0, 0), w("b", 900, 0)], 1_000, &rules),
            u64::MAX
        );
    }

    #[test]
    fn ten_thousand_players_pair_in_one_linear_pass() {
        let q: Vec<Waiting> = (0..10_000)
            .map(|i| w(&format!("p{i}"), (i * 7919) % 30_000, (i as u64) % 5_000))
            .collect();
        let started = std::time::Instant::now();
        let pairs = pair(&q, 10_000, &RULES);
        assert!(pairs.len() > 4_000, "{}", pairs.len());
        // Generous for a debug build on a busy machine; the point is no quadratic blowup.
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
