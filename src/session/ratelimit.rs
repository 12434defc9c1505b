//! Token bucket used for per-connection rate limits.

use std::time::Instant;

/// A refill rate and the most tokens a bucket holds. Kept in the settings, not in each
/// bucket: a session has three buckets, and sessions are most of a replica's memory.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate {
    pub per_s: f64,
    pub burst: f64,
}

#[derive(Debug)]
pub(super) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket that starts full.
    pub(super) fn full(rate: Rate) -> Self {
        TokenBucket {
            tokens: rate.burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if available, after refilling at `rate` since the last call.
    pub(super) fn try_take(&mut self, now: Instant, rate: Rate) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate.per_s).min(rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_burst_then_rate() {
        let start = Instant::now();
        let rate = Rate {
            per_s: 10.0,
            burst: 5.0,
        };
        let mut b = TokenBucket::full(rate);
        for _ in 0..5 {
            assert!(b.try_take(start, rate));
        }
        assert!(!b.try_take(start, rate));
        assert!(b.try_take(start + Duration::from_millis(100), rate));
        assert!(!b.try_take(start + Duration::from_millis(100), rate));
        // Refill never exceeds the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(b.try_take(later, rate));
        }
        assert!(!b.try_take(later, rate));
    }
}
