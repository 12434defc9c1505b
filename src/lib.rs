//! Switchboard: a horizontally scaled real-time gateway.
//!
//! Clients connect over WebSocket (`/ws`) or raw TCP (newline-delimited JSON), log in
//! with a JWT in their first frame, then join rooms, publish, send direct messages and
//! watch presence. Backends push through an HTTP API. Replicas share nothing but the
//! backend (in-memory for a single node, Redis for many).
//!
//! # Layout
//! - [`config`]: every setting, from flags and `SWITCHBOARD_*` variables.
//! - [`protocol`]: wire frames, ids, error and close codes.
//! - [`auth`]: JWT verification and the resulting `Identity`.
//! - [`transport`]: WebSocket and TCP front ends behind one `Transport` trait.
//! - [`session`]: one connection's life: login, select loop, limits, teardown.
//! - [`hub`]: this replica's sessions by user and room; encode-once fan-out.
//! - [`backend`]: what replicas share (`Bus`, `Presence`), with a memory implementation.
//! - [`features`]: the rules (rooms, DMs, broadcast, presence), shared by sessions and API.
//! - [`api`]: HTTP routes: `/ws`, `/api/v1`, `/metrics`, probes.
//! - [`matchmaking`]: the ranked matching rule.
//! - [`metrics`]: the Prometheus registry.
//! - [`app`]: wiring, listeners and graceful drain.
//! - [`client`]: a typed client (WebSocket or TCP) for tests, load tests and tools.

pub mod api;
pub mod app;
pub mod auth;
pub mod backend;
pub mod client;
pub mod config;
pub mod features;
pub mod hub;
pub mod matchmaking;
pub mod metrics;
pub mod protocol;
pub mod session;
pub mod transport;
