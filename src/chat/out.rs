//! Where lines go: stdout, each stamped with the local time `HH:MM:SS` unless
//! `--no-time`. Diagnostics go to stderr, never here.

use std::io::Write;
use time::{OffsetDateTime, UtcOffset};

/// Prints lines to stdout, each prefixed with the local time `HH:MM:SS` (or not).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    /// `None`: no time prefix.
    offset: Option<UtcOffset>,
}

impl Out {
    pub(crate) fn new(offset: Option<UtcOffset>) -> Self {
        Out { offset }
    }

    /// Prints `text` stamped with `ts_ms` (Unix milliseconds), or with now.
    pub(crate) fn line(&self, ts_ms: Option<u64>, text: &str) {
        let line = match self.offset {
            Some(offset) => format!("{} {text}", clock(ts_ms, offset)),
            None => text.to_owned(),
        };
        // A closed stdout is no reason to stop chatting (or to panic like println!).
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    pub(crate) fn now(&self, text: &str) {
        self.line(None, text);
    }

    /// Prints `text` as it is, without a time.
    pub(crate) fn raw(&self, text: &str) {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}

/// `HH:MM:SS` of `ts_ms` (or now) at `offset`.
pub(crate) fn clock(ts_ms: Option<u64>, offset: UtcOffset) -> String {
    let at = ts_ms
        .and_then(|ms| i128::from(ms).checked_mul(1_000_000))
        .and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
        .unwrap_or_else(OffsetDateTime::now_utc)
        .to_offset(offset);
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_local_wall_time() {
        let ts = 1_767_268_801_456; // 2026-01-01 12:00:01.456 UTC
        assert_eq!(clock(Some(ts), UtcOffset::UTC), "12:00:01");
        let cet = UtcOffset::from_hms(1, 0, 0).expect("offset");
        assert_eq!(clock(Some(ts), cet), "13:00:01");
        assert_eq!(clock(None, UtcOffset::UTC).len(), 8);
    }
}
