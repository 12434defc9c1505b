//! Before a session exists: the first-frame login with its timeout and token check,
//! and the direct writes used before the outbound queue is running.

use super::*;

/// Writes one reply frame straight to the transport (bounded by the write timeout).
pub(super) async fn write_now<T: Transport>(
    gw: &Gateway,
    t: &mut T,
    frame: ServerFrame<'_>,
) -> bool {
    let encoded = frame.encode();
    gw.metrics
        .frames_out
        .with_label_values(&[encoded.kind()])
        .inc();
    let write = async {
        t.feed(&encoded).await?;
        t.flush().await
    };
    matches!(timeout(gw.config.write_timeout, write).await, Ok(Ok(())))
}

pub(super) async fn write_error<T: Transport>(
    gw: &Gateway,
    t: &mut T,
    id: Option<&Value>,
    code: ErrorCode,
    message: &str,
) -> bool {
    gw.metrics.errors.with_label_values(&[code.as_str()]).inc();
    write_now(gw, t, ServerFrame::Error { id, code, message }).await
}

/// Tells a client to reconnect elsewhere, after a random delay that spreads the herd.
pub(super) async fn write_reconnect<T: Transport>(gw: &Gateway, t: &mut T) {
    let frame = ServerFrame::Reconnect {
        reason: "server draining",
        after_ms: rand::random_range(0..=2000),
    };
    write_now(gw, t, frame).await;
}

/// A client's resume cursor: `since` in `epoch` (unknown when it sent none).
pub(super) fn cursor(since: Option<u64>, epoch: Option<String>) -> Option<Position> {
    since.map(|seq| Position {
        seq,
        epoch: epoch.as_deref().map(Epoch::new).unwrap_or_default(),
    })
}

/// Waits for the `login` frame and verifies its token; `Err` carries the close code.
pub(super) async fn login<T: Transport>(
    gw: &Gateway,
    t: &mut T,
    draining: &CancellationToken,
) -> Result<(Identity, Option<Position>, Option<Value>), CloseCode> {
    let deadline = Instant::now() + gw.config.login_timeout;
    // Pings before login are answered by the WebSocket layer: bounded like frames.
    let mut pings = ratelimit::TokenBucket::full(super::frame_rate(gw));
    let text = loop {
        let inbound = tokio::select! {
            inbound = t.recv() => inbound,
            _ = sleep_until(deadline) => {
                gw.metrics.logins.with_label_values(&["timeout"]).inc();
                write_error(gw, t, None, ErrorCode::Unauthorized, "login timeout").await;
                return Err(close::LOGIN_TIMEOUT);
            }
            _ = draining.cancelled() => {
                write_reconnect(gw, t).await;
                return Err(close::DRAINING);
            }
        };
        match inbound {
            Inbound::Text(text) => break text,
            Inbound::Activity => continue,
            Inbound::Control => {
                if pings.try_take(std::time::Instant::now(), super::frame_rate(gw)) {
                    continue;
                }
                gw.metrics.logins.with_label_values(&["not_login"]).inc();
                write_error(
                    gw,
                    t,
                    None,
                    ErrorCode::RateLimited,
                    "ping flood before login",
                )
                .await;
                return Err(close::POLICY);
            }
            Inbound::Closed => return Err(close::NORMAL),
            Inbound::ProtocolViolation => return Err(close::PROTOCOL_ERROR),
            Inbound::TooLarge { .. } | Inbound::InvalidUtf8 { .. } => {
                gw.metrics.logins.with_label_values(&["not_login"]).inc();
                write_error(
                    gw,
                    t,
                    None,
                    ErrorCode::Unauthorized,
                    "first frame must be login",
                )
                .await;
                return Err(close::UNAUTHORIZED);
            }
        }
    };
    gw.metrics.frames_in.with_label_values(&["login"]).inc();
    let (id, token, dm_since) = match parse_request(&text) {
        Ok(Request {
            id,
            frame:
                ClientFrame::Login {
                    token,
                    dm_since,
                    dm_epoch,
                },
        }) => (id, token, cursor(dm_since, dm_epoch)),
        Ok(Request { id, .. }) | Err((id, _)) => {
            gw.metrics.logins.with_label_values(&["not_login"]).inc();
            write_error(
                gw,
                t,
                id.as_ref(),
                ErrorCode::Unauthorized,
                "first frame must be login",
            )
            .await;
            return Err(close::UNAUTHORIZED);
        }
    };
    match gw.verifier.verify(&token) {
        Ok(identity) => Ok((identity, dm_since, id)),
        Err(err) => {
            gw.metrics.logins.with_label_values(&["invalid"]).inc();
            tracing::debug!(cause = %err, transport = T::KIND, "login refused");
            write_error(
                gw,
                t,
                id.as_ref(),
                ErrorCode::Unauthorized,
                &err.to_string(),
            )
            .await;
            Err(close::UNAUTHORIZED)
        }
    }
}
