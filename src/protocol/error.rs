//! Stable error codes of `error` frames and HTTP API errors, and the per-request error.

use serde::Serialize;

/// Stable error codes sent in `error` frames and HTTP API error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    /// The session's token expired (then close 4011).
    TokenExpired,
    BadRequest,
    TooLarge,
    RateLimited,
    Forbidden,
    NotFound,
    RoomFull,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error answered to one request; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Reply {
    pub code: ErrorCode,
    pub message: String,
}

impl Reply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply {
            code,
            message: message.into(),
        }
    }
}
