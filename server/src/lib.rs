//! auditlog-server: the HTTP API and command line around the engine.
//!
//! Data flows one way: HTTP or CLI -> `auditlog_engine::Engine` -> files.
//! This crate holds no storage logic: it parses requests, maps engine
//! results and errors onto HTTP, and runs background tasks.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod alloc;
pub mod api;
pub mod cmd;
pub mod config;
pub mod export;
pub mod live;
pub mod retention;
pub mod settings;
pub mod tokens;
pub mod web;
pub mod workers;
