//! The open-file limit: every connection is a file descriptor, so the gateway raises its
//! soft `RLIMIT_NOFILE` to the hard limit at start (many systems default to a soft 1024
//! or even 256 while allowing far more) and says when even that is short.

/// The limit before and after raising it, and the hard ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub after: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit.
pub fn raise() -> std::io::Result<FdLimit> {
    let (before, hard) = rlimit::Resource::NOFILE.get()?;
    let after = rlimit::increase_nofile_limit(hard)?;
    Ok(FdLimit {
        before,
        after,
        hard,
    })
}

/// Descriptors the gateway needs besides its client connections: listeners, Redis
/// connections, the runtime, logs, plus connections still in the HTTP header phase.
pub const RESERVE: u64 = 256;

/// What `max_connections` and `max_pending_logins` need in all; 0 connections = no cap.
pub fn needed(max_connections: usize, max_pending_logins: usize) -> Option<u64> {
    (max_connections > 0).then(|| max_connections as u64 + max_pending_logins as u64 + RESERVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        let limit = raise().expect("getrlimit");
        assert!(limit.after >= limit.before);
        let (soft, hard) = rlimit::Resource::NOFILE.get().expect("getrlimit");
        assert_eq!(soft, limit.after);
        assert_eq!(hard, limit.hard);
        // Linux caps at nr_open even when the hard limit says "infinity".
        assert!(soft == hard || hard == rlimit::INFINITY, "{soft} < {hard}");
    }

    #[test]
    fn need_counts_connections_pending_logins_and_a_reserve() {
        assert_eq!(needed(1000, 24), Some(1000 + 24 + RESERVE));
        assert_eq!(needed(0, 24), None);
    }
}
