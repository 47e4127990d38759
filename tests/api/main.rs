//! End-to-end tests of the REST API, webhooks and WebSocket against the real
//! `voipbin` binary.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod cli;
mod crud;
mod ops;
mod postgres;
mod security;
mod tenants;
mod webhooks;
mod websocket;
