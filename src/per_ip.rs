//! Per-address limits, so one host cannot exhaust a replica: connections held at once
//! and new connections (each one a login attempt: the first frame must be `login`) per
//! second, per client IP. The address is the socket's peer or, behind a proxy that sets
//! it and only when `SWITCHBOARD_TRUSTED_PROXY_HEADER` names it, the header's client
//! address; a header from anyone else would let a client pick its own address.

use axum::http::HeaderMap;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address holds `max_connections_per_ip` connections already.
    TooMany,
    /// The address opens connections faster than `connect_rate_per_ip`.
    TooFast,
}

impl Refusal {
    /// Label for `switchboard_connections_refused_total{reason}`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::TooMany => "per_ip",
            Refusal::TooFast => "per_ip_rate",
        }
    }

    /// What the client is told (WebSocket: the 503 body; TCP: the error frame).
    pub fn message(self) -> &'static str {
        match self {
            Refusal::TooMany => "too many connections from your address",
            Refusal::TooFast => "connecting too fast from your address",
        }
    }
}

struct Entry {
    open: usize,
    tokens: f64,
    last: Instant,
}

/// Entries kept before idle ones are pruned.
const PRUNE_AT: usize = 4096;

pub struct PerIp {
    max_open: usize,
    rate: f64,
    burst: f64,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

/// One connection counted against its address until dropped.
pub struct IpSlot {
    limits: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut table = self.limits.lock();
        if let Some(entry) = table.get_mut(&self.ip) {
            entry.open = entry.open.saturating_sub(1);
        }
    }
}

impl PerIp {
    /// `max_open` 0 and `rate` 0 each turn their limit off.
    pub fn new(max_open: usize, rate: f64) -> Arc<Self> {
        Arc::new(PerIp {
            max_open,
            rate,
            burst: (rate * 5.0).max(1.0),
            table: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn enabled(&self) -> bool {
        self.max_open > 0 || self.rate > 0.0
    }

    /// Counts a new connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<IpSlot, Refusal> {
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            table.retain(|_, e| {
                e.open > 0 || e.tokens + now.duration_since(e.last).as_secs_f64() * rate < burst
            });
        }
        let entry = table.entry(ip).or_insert(Entry {
            open: 0,
            tokens: self.burst,
            last: now,
        });
        if self.max_open > 0 && entry.open >= self.max_open {
            return Err(Refusal::TooMany);
        }
        if self.rate > 0.0 {
            let refill = now.duration_since(entry.last).as_secs_f64() * self.rate;
            entry.tokens = (entry.tokens + refill).min(self.burst);
            entry.last = now;
            if entry.tokens < 1.0 {
                return Err(Refusal::TooFast);
            }
            entry.tokens -= 1.0;
        }
        entry.open += 1;
        Ok(IpSlot {
            limits: self.clone(),
            ip,
        })
    }
}

/// The client's address: the peer's, or the last address in the trusted header, the one
/// our proxy added (a client can send the header itself, but only ahead of that one).
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted_header: Option<&str>) -> IpAddr {
    trusted_header
        .and_then(|name| headers.get_all(name).iter().next_back())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .unwrap_or_else(|| peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn open_connections_are_capped_per_address_and_released_on_drop() {
        let limits = PerIp::new(2, 0.0);
        let a = limits.admit(ip(1)).expect("first");
        let _b = limits.admit(ip(1)).expect("second");
        assert_eq!(limits.admit(ip(1)).err(), Some(Refusal::TooMany));
        assert!(limits.admit(ip(2)).is_ok(), "other addresses unaffected");
        drop(a);
        assert!(limits.admit(ip(1)).is_ok());
    }

    #[test]
    fn new_connections_are_rate_limited_per_address_after_a_burst() {
        let limits = PerIp::new(0, 2.0);
        let slots: Vec<_> = (0..10).map(|_| limits.admit(ip(1))).collect();
        assert!(slots.iter().all(Result::is_ok), "burst of 5 x rate");
        assert_eq!(limits.admit(ip(1)).err(), Some(Refusal::TooFast));
        assert!(limits.admit(ip(2)).is_ok());
    }

    #[test]
    fn the_proxy_header_counts_only_when_trusted() {
        let peer: SocketAddr = "192.0.2.7:4000".parse().expect("addr");
        let mut headers = HeaderMap::new();
        // The client forged the first entry; the proxy appended the real one.
        headers.insert(
            "x-forwarded-for",
            "10.0.0.1, 203.0.113.9".parse().expect("v"),
        );
        assert_eq!(client_ip(peer, &headers, None), peer.ip());
        assert_eq!(
            client_ip(peer, &headers, Some("x-forwarded-for")),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
        headers.append("x-forwarded-for", "198.51.100.4".parse().expect("v"));
        assert_eq!(
            client_ip(peer, &headers, Some("x-forwarded-for")),
            "198.51.100.4".parse::<IpAddr>().expect("ip"),
            "a second header line, added by the proxy, wins"
        );
        headers.insert("x-forwarded-for", "not an ip".parse().expect("v"));
        assert_eq!(
            client_ip(peer, &headers, Some("x-forwarded-for")),
            peer.ip()
        );
    }
}
