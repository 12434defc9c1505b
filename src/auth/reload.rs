//! Key rotation without a restart: reloads the key set on SIGHUP and when a key file
//! changes (its modification time or size, polled), keeping the old keys when the new
//! ones do not load. Sessions are not touched.

use super::Verifier;
use crate::metrics::Metrics;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// What a file looked like at the last check (`None`: unreadable).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads now, logging and counting the result.
pub fn reload_keys(verifier: &Verifier, metrics: &Metrics, why: &str) {
    match verifier.reload() {
        Ok(keys) => {
            metrics.jwt_key_reloads.with_label_values(&["ok"]).inc();
            metrics.jwt_keys.set(keys as i64);
            metrics.jwt_key_reload_failed.set(0);
            tracing::info!(keys, trigger = why, "token keys reloaded");
        }
        Err(err) => {
            metrics.jwt_key_reloads.with_label_values(&["error"]).inc();
            metrics.jwt_key_reload_failed.set(1);
            tracing::error!(cause = %err, trigger = why, "token key reload failed, keeping the old keys");
        }
    }
}

/// Runs until `stop`: SIGHUP (Unix) and, every `interval` (zero: never), a look at the
/// key files.
pub async fn watch_keys(
    verifier: &Verifier,
    metrics: &Metrics,
    interval: Duration,
    stop: CancellationToken,
) {
    metrics.jwt_keys.set(verifier.key_count() as i64);
    let files = verifier.files();
    let mut stamps: Vec<Stamp> = files.iter().map(stamp).collect();
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hup) => Some(hup),
        Err(err) => {
            tracing::warn!(cause = %err, "cannot listen for SIGHUP: keys reload on file change only");
            None
        }
    };
    let poll = !interval.is_zero() && !files.is_empty();
    let mut tick = tokio::time::interval(if poll {
        interval
    } else {
        Duration::from_secs(3600)
    });
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(hup) => hup.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hangup => {
                stamps = files.iter().map(stamp).collect();
                reload_keys(verifier, metrics, "SIGHUP");
            }
            _ = tick.tick(), if poll => {
                let now: Vec<Stamp> = files.iter().map(stamp).collect();
                if now != stamps {
                    stamps = now;
                    reload_keys(verifier, metrics, "key file changed");
                }
            }
        }
    }
}
