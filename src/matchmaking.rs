//! The ranked matching rule, written once: who may play whom, and in which order pairs
//! are formed. Backends keep the queue; the Redis matcher's Lua script mirrors this.

use crate::protocol::UserId;

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
}

/// Forms pairs from `queue` (indices into it): closest ratings first, ties to whoever
/// waited longest, each player at most once. Closest pairs are always neighbours in
/// rating order, so each round only looks at neighbours; rounds repeat until no pair
/// fits, because taking a pair makes new neighbours.
pub fn pair(queue: &[Waiting], now_ms: u64, rules: &Rules) -> Vec<(usize, usize)> {
    let mut left: Vec<usize> = (0..queue.len()).collect();
    left.sort_by_key(|&i| (queue[i].rating, queue[i].since_ms));
    let mut pairs = Vec::new();
    loop {
        let mut candidates: Vec<(u64, u64, usize)> = left
            .windows(2)
            .enumerate()
            .filter(|(_, w)| rules.fits(&queue[w[0]], &queue[w[1]], now_ms))
            .map(|(pos, w)| {
                let gap = (queue[w[0]].rating - queue[w[1]].rating).unsigned_abs();
                let oldest = queue[w[0]].since_ms.min(queue[w[1]].since_ms);
                (gap, oldest, pos)
            })
            .collect();
        if candidates.is_empty() {
            return pairs;
        }
        candidates.sort_unstable();
        let mut used = vec![false; left.len()];
        for (_, _, pos) in candidates {
            if !used[pos] && !used[pos + 1] {
                used[pos] = true;
                used[pos + 1] = true;
                pairs.push((left[pos], left[pos + 1]));
            }
        }
        left = left
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(i, _)| *i)
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        window: 100.0,
        widen_per_s: 50.0,
        max_window: 400.0,
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
    fn closest_ratings_pair_first() {
        let q = [
            w("a", 1500, 0),
            w("b", 1590, 0),
            w("c", 1600, 0),
            w("d", 1700, 0),
        ];
        // b-c (10) beats a-b (90) and c-d (100); then a and d are neighbours but 200 apart.
        assert_eq!(names(&q, &pair(&q, 0, &RULES)), [("b".into(), "c".into())]);
        // After 2 s both a and d accept 200.
        let q2 = [w("a", 1500, 0), w("d", 1700, 0)];
        assert_eq!(
            names(&q2, &pair(&q2, 2_000, &RULES)),
            [("a".into(), "d".into())]
        );
    }

    #[test]
    fn taking_a_pair_makes_new_neighbours() {
        let q = [
            w("a", 1000, 0),
            w("b", 1010, 0),
            w("c", 1015, 0),
            w("d", 1090, 0),
        ];
        // b-c first (5); a and d are then neighbours, 90 apart: also a pair.
        let got = names(&q, &pair(&q, 0, &RULES));
        assert_eq!(got, [("a".into(), "d".into()), ("b".into(), "c".into())]);
    }

    #[test]
    fn nobody_is_matched_twice_and_odd_one_waits() {
        let q: Vec<Waiting> = (0..101).map(|i| w(&format!("p{i}"), 1500 + i, 0)).collect();
        let pairs = pair(&q, 0, &RULES);
        assert_eq!(pairs.len(), 50);
        let mut seen = std::collections::HashSet::new();
        for (a, b) in pairs {
            assert!(seen.insert(a) && seen.insert(b), "double match");
            assert!((q[a].rating - q[b].rating).abs() <= 100);
        }
    }

    #[test]
    fn ties_go_to_who_waited_longest() {
        // a-b and b-c are both 50 apart; a has waited longest, so a-b wins.
        let q = [w("a", 1500, 0), w("b", 1550, 4_000), w("c", 1600, 4_000)];
        assert_eq!(
            names(&q, &pair(&q, 4_000, &RULES)),
            [("a".into(), "b".into())]
        );
    }
}
