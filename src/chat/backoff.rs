//! When to reconnect: which close codes allow it, and exponential backoff with jitter.

use std::time::Duration;

/// What a lost connection calls for (PROTOCOL.md §8, close codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reconnect after the usual backoff (or the server's `after_ms`).
    Backoff,
    /// Reconnect at once: nothing is wrong with the server.
    Now,
    /// Do not reconnect: it would be refused the same way, or it would push another
    /// session out.
    Never(&'static str),
}

/// The rule for a close code; `None` (no code) is a broken connection.
pub(crate) fn rule(code: Option<u16>) -> Retry {
    match code {
        Some(4001) => Retry::Never("the token was refused (4001): get a new one"),
        Some(4003) => Retry::Never("replaced by a newer login of the same user (4003)"),
        Some(4005) => {
            Retry::Never("already connected elsewhere (4005): close the other session first")
        }
        Some(4002) | Some(4010) => Retry::Now,
        _ => Retry::Backoff,
    }
}

/// Exponential backoff with "equal jitter": attempt n waits a random time between half
/// and all of `min(first × 2ⁿ, cap)`, so a crowd of clients spreads out but nobody
/// hammers the server.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap: cap.max(first),
            attempt: 0,
        }
    }

    /// Failed attempts since the last success.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The wait before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// A session got going again: start over from `first`.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_decide() {
        for code in [4001, 4003, 4005] {
            assert!(matches!(rule(Some(code)), Retry::Never(_)), "{code}");
        }
        assert_eq!(rule(Some(1012)), Retry::Backoff);
        assert_eq!(rule(Some(1013)), Retry::Backoff);
        assert_eq!(rule(Some(4009)), Retry::Backoff);
        assert_eq!(rule(None), Retry::Backoff);
        assert_eq!(rule(Some(4010)), Retry::Now);
    }

    #[test]
    fn grows_with_jitter_up_to_the_cap() {
        let first = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        let mut b = Backoff::new(first, cap);
        for n in 0..12u32 {
            let ceiling = (first * 2u32.pow(n)).min(cap);
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "attempt {n}: {d:?} vs {ceiling:?}"
            );
        }
        assert_eq!(b.attempts(), 12);
        for _ in 0..100 {
            assert!(b.next_delay() <= cap);
        }
        b.reset();
        assert!(b.next_delay() <= first);
    }
}
