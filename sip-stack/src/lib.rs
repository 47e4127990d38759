//! sip-stack: our own SIP user agent core (RFC 3261), sans-IO.
//!
//! # What it owns
//! SIP messages (a zero-copy `msg` layer: rsip was measured unfit for carrier
//! input, see DEPENDENCIES.md), transports (UDP, TCP; TLS and WebSocket later),
//! RFC 3261 transactions and timers, dialogs, digest auth, registrar bindings, and
//! SDP text in and out.
//!
//! # What it must not know
//! RTP, codecs, flows, HTTP, SQL.
//!
//! # Run loop
//! Protocol state machines take input and the current time and return what to do:
//! `handle_*(now, input)`, then drain `poll_transmit()`, `poll_event()`,
//! `poll_timeout()`. They never read the clock, spawn, sleep or touch a socket; a
//! thin tokio driver owns the sockets and timers.
//!
//! # Layers
//! - [`sdp`]: SDP text in and out, and offer/answer.
//! - [`msg`]: the message layer (parse, typed headers, build). Why our own: rsip
//!   0.4 was measured unfit for carrier input (see README.md).
//!
//! Status: the message layer is here; transports, transactions, dialogs, digest
//! auth and SDP follow (the sip-stack issue).

pub mod auth;
pub mod dialog;
pub mod driver;
pub mod msg;
pub mod sdp;
pub mod transaction;
pub mod transport;
pub mod ua;
