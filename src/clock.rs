//! Wall-clock time as the protocol uses it: seconds for JWT claims, milliseconds for
//! message timestamps and queue times. A clock before 1970 reads as 0, never a panic.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch: JWT `exp`/`nbf`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the epoch: the `ts` of messages.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
