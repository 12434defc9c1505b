//! Integration tests: real gateways on ephemeral ports, real sockets.
#![allow(unreachable_pub)] // test modules share helpers; nothing here is a public API

mod api;
mod api_limits;
mod chat;
mod chat_cli;
mod conformance;
mod conformance_matcher;
mod deploy;
mod expiry;
mod game_faults;
mod games;
mod harness;
mod hostile;
mod keys;
mod limits;
mod login;
mod online;
mod per_ip;
mod process;
mod ranked;
mod replicas;
mod retention;
mod retries;
mod shutdown;
mod streams;
