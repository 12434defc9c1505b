//! WebSocket close codes as a type, each with the reconnect rule a client should follow.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A close code sent to a client (WebSocket close frame, or the TCP `close` frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CloseCode(u16);

/// Login failed (bad, expired or missing token). Do not retry with the same token.
pub const UNAUTHORIZED: CloseCode = CloseCode(4001);
/// No login frame within the login timeout. Retry at once.
pub const LOGIN_TIMEOUT: CloseCode = CloseCode(4002);
/// A newer login of the same user replaced this session (`kick` policy). Do not retry.
pub const REPLACED: CloseCode = CloseCode(4003);
/// Login refused because the user is already connected (`reject` policy). Do not retry
/// automatically.
pub const ALREADY_CONNECTED: CloseCode = CloseCode(4005);
/// The backend asked the gateway to disconnect this user. Retry after a back-off.
pub const DISCONNECTED: CloseCode = CloseCode(4004);
/// Policy violation: sustained rate-limit abuse. Retry after a back-off.
pub const POLICY: CloseCode = CloseCode(4008);
/// The client did not read fast enough and its outbound queue overflowed. Retry, resume.
pub const SLOW_CONSUMER: CloseCode = CloseCode(4009);
/// Idle timeout: nothing received for too long. Retry at once.
pub const IDLE: CloseCode = CloseCode(4010);
/// The login token's `exp` passed and no `refresh` brought a newer one. Get a new
/// token, then reconnect and resume.
pub const TOKEN_EXPIRED: CloseCode = CloseCode(4011);
/// The client broke the WebSocket framing rules (RFC 6455 §7.4.1). Fix the client.
pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
/// A WebSocket text message that is not UTF-8 (RFC 6455 §8.1). Fix the client.
pub const INVALID_DATA: CloseCode = CloseCode(1007);
/// Frame larger than the transport can accept at all.
pub const TOO_BIG: CloseCode = CloseCode(1009);
/// The replica is draining; reconnect (to any replica) after `after_ms`.
pub const DRAINING: CloseCode = CloseCode(1012);
/// A shared service is unavailable; retry after a back-off.
pub const TRY_LATER: CloseCode = CloseCode(1013);
/// Normal closure.
pub const NORMAL: CloseCode = CloseCode(1000);

impl CloseCode {
    /// A code as it appears on the wire (e.g. a stored one); unknown codes are kept.
    pub const fn from_u16(code: u16) -> Self {
        CloseCode(code)
    }

    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// Short reason text sent with the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            UNAUTHORIZED => "unauthorized",
            LOGIN_TIMEOUT => "login timeout",
            REPLACED => "replaced by a newer login",
            ALREADY_CONNECTED => "already connected",
            TRY_LATER => "try again later",
            DISCONNECTED => "disconnected by server",
            POLICY => "policy violation",
            SLOW_CONSUMER => "slow consumer",
            IDLE => "idle timeout",
            TOKEN_EXPIRED => "token expired",
            TOO_BIG => "frame too large",
            PROTOCOL_ERROR => "protocol error",
            INVALID_DATA => "invalid utf-8",
            DRAINING => "server draining",
            _ => "bye",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_travel_as_plain_numbers() {
        assert_eq!(
            serde_json::to_string(&DRAINING).ok().as_deref(),
            Some("1012")
        );
        let back: CloseCode = serde_json::from_str("4003").unwrap_or(NORMAL);
        assert_eq!(back, REPLACED);
        assert_eq!(back.reason(), "replaced by a newer login");
        assert_eq!(CloseCode::from_u16(4999).reason(), "bye");
    }
}
