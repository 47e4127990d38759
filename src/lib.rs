//! The engine: one actor per call wiring a SIP dialog, a media session and an
//! activeflow, plus routing (trunk, number, extension -> flow), conferences, queues,
//! agents and campaigns.
//!
//! It is built issue by issue; today the binary (`src/main.rs`) serves the REST API
//! from the `api` crate and validates flows with `flow-runtime`. See
//! ARCHITECTURE.md ("A call's path") for where each part goes.
