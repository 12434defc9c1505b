//! Switchboard: a horizontally scaled real-time gateway.
//!
//! Clients connect over WebSocket (`/ws`) or raw TCP (newline-delimited JSON), log in
//! with a JWT in their first frame, then join rooms, publish, send direct messages and
//! watch presence. Backends push through an HTTP API. Replicas share nothing but the
//! backend (in-memory for a single node, Redis for many).
//!
//! # Layout
//! - [`cli`]: the command line and its subcommands.
//! - [`clock`]: wall-clock seconds and milliseconds as the protocol uses them.
//! - [`config`]: every setting, from flags and `SWITCHBOARD_*` variables.
//! - [`protocol`]: wire frames, ids, error and close codes.
//! - [`auth`]: JWT verification and the resulting `Identity`.
//! - [`transport`]: WebSocket and TCP front ends behind one `Transport` trait.
//! - [`session`]: one connection's life: login, select loop, limits, teardown.
//! - [`event`]: what travels between replicas, the `EventSink` seam, encode-once frames.
//! - [`hub`]: this replica's sessions by user, room and game; fan-out of shared frames;
//!   the coalesced "who comes online" feed (`hub::feed`).
//! - [`backend`]: what replicas share (`Bus`, `Presence`, `Games`, `Matchmaker`), in
//!   memory for one node or in Redis for many.
//! - [`gateway`]: the shared state (settings, hub, stores, metrics), start-up, readiness.
//! - [`features`]: the rules (logins, rooms, DMs, broadcast, presence, games, ranked),
//!   one file each, shared by sessions and the API.
//! - [`api`]: HTTP routes: `/ws`, `/api/v1`, probes; the admin router with `/metrics`.
//! - [`matchmaking`]: the ranked matching rule.
//! - [`metrics`]: the Prometheus registry (and jemalloc's counters).
//! - [`sparse`]: maps that shrink once mostly empty (memory back after a disconnect).
//! - [`accept`]: accepting sockets for every listener (Nagle off, backoff on errors).
//! - [`http`]: the HTTP server loop (header deadline, graceful stop).
//! - [`app`]: wiring, listeners and graceful drain.
//! - [`client`]: a typed client (WebSocket or TCP) for tests, load tests and tools.
//! - [`chat`]: `switchboard chat`, the terminal client built on [`client`].

pub mod accept;
pub mod api;
pub mod app;
pub mod auth;
pub mod backend;
pub mod chat;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod event;
pub mod fdlimit;
pub mod features;
pub mod gateway;
pub mod http;
pub mod hub;
pub mod matchmaking;
pub mod metrics;
pub mod per_ip;
pub mod protocol;
pub mod session;
pub mod sparse;
pub mod transport;
