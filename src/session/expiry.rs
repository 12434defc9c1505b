//! The token's lifetime inside a session: the deadline at `exp` (plus leeway), the
//! close with 4011 when it passes, and `refresh` with a newer token of the same user.

use super::*;

/// Longest single sleep towards the deadline; a far `exp` is re-checked after it.
const MAX_SLEEP: Duration = Duration::from_secs(24 * 3600);

/// When a session whose token says `exp` (Unix seconds) must end.
pub(super) fn deadline(exp: u64, leeway: Duration) -> (u64, Instant) {
    let end_ms = exp.saturating_add(leeway.as_secs()).saturating_mul(1000);
    let left = Duration::from_millis(end_ms.saturating_sub(crate::clock::unix_millis()));
    (end_ms, Instant::now() + left.min(MAX_SLEEP))
}

impl<T: Transport> Session<'_, T> {
    /// The expiry timer fired: `Some(code)` when the token really is past its end
    /// (a far deadline is only slept towards in steps).
    pub(super) async fn on_expiry_timer(&mut self) -> Option<CloseCode> {
        let (end_ms, at) = deadline(self.identity.expires, self.gw.config.jwt_leeway);
        if crate::clock::unix_millis() < end_ms {
            self.expires_at = at;
            return None;
        }
        self.gw.metrics.token_expiries.inc();
        tracing::debug!(session = %self.handle.id, user = %self.identity.user, "token expired");
        self.error(
            None,
            ErrorCode::TokenExpired,
            "token expired: send refresh with a new token before exp",
        )
        .await;
        Some(close::TOKEN_EXPIRED)
    }

    /// `refresh {token}`: a valid token of the same user moves the deadline to its `exp`.
    /// Only `exp` is taken; name, permissions and rooms stay those of the login.
    pub(super) async fn refresh(&mut self, id: Option<&Value>, token: &str) -> Result<(), Reply> {
        let fresh = self.gw.verifier.verify(token).map_err(|err| {
            self.gw
                .metrics
                .refreshes
                .with_label_values(&["invalid"])
                .inc();
            Reply::new(ErrorCode::Unauthorized, err.to_string())
        })?;
        if fresh.user != self.identity.user {
            self.gw
                .metrics
                .refreshes
                .with_label_values(&["other_user"])
                .inc();
            return Err(Reply::new(
                ErrorCode::Forbidden,
                "token is for another user",
            ));
        }
        self.gw.metrics.refreshes.with_label_values(&["ok"]).inc();
        self.identity.expires = fresh.expires;
        self.expires_at = deadline(fresh.expires, self.gw.config.jwt_leeway).1;
        self.ok(id, OkDetail::Refreshed { exp: fresh.expires })
            .await;
        Ok(())
    }
}
