//! WebSocket close codes, each with the reconnect rule a client should follow.

/// Login failed (bad, expired or missing token). Do not retry with the same token.
pub const UNAUTHORIZED: u16 = 4001;
/// No login frame within the login timeout. Retry at once.
pub const LOGIN_TIMEOUT: u16 = 4002;
/// A newer login of the same user replaced this session (`kick` policy). Do not retry.
pub const REPLACED: u16 = 4003;
/// Login refused because the user is already connected (`reject` policy). Do not retry
/// automatically.
pub const ALREADY_CONNECTED: u16 = 4005;
/// The backend asked the gateway to disconnect this user. Retry after a back-off.
pub const DISCONNECTED: u16 = 4004;
/// Policy violation: sustained rate-limit abuse. Retry after a back-off.
pub const POLICY: u16 = 4008;
/// The client did not read fast enough and its outbound queue overflowed. Retry, resume.
pub const SLOW_CONSUMER: u16 = 4009;
/// Idle timeout: nothing received for too long. Retry at once.
pub const IDLE: u16 = 4010;
/// Frame larger than the transport can accept at all.
pub const TOO_BIG: u16 = 1009;
/// The replica is draining; reconnect (to any replica) after `after_ms`.
pub const DRAINING: u16 = 1012;
/// A shared service is unavailable; retry after a back-off.
pub const TRY_LATER: u16 = 1013;
/// Normal closure.
pub const NORMAL: u16 = 1000;

/// Short reason text sent with the close frame.
pub fn reason(code: u16) -> &'static str {
    match code {
        UNAUTHORIZED => "unauthorized",
        LOGIN_TIMEOUT => "login timeout",
        REPLACED => "replaced by a newer login",
        ALREADY_CONNECTED => "already connected",
        TRY_LATER => "try again later",
        DISCONNECTED => "disconnected by server",
        POLICY => "policy violation",
        SLOW_CONSUMER => "slow consumer",
        IDLE => "idle timeout",
        TOO_BIG => "frame too large",
        DRAINING => "server draining",
        _ => "bye",
    }
}
