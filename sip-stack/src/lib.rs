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
//! - [`msg`]: the message layer (parse, typed headers, build). Why our own: rsip
//!   0.4 was measured unfit for carrier input (see README.md).
//! - [`transport`]: section 18's rules (response routing, `received`/`rport`,
//!   UDP to TCP over 1300 bytes); [`driver`] owns the UDP and TCP sockets.
//! - [`transaction`]: RFC 3261 section 17 with RFC 6026, every timer on the
//!   caller's clock.
//! - [`dialog`]: section 12 dialogs, PRACK, session timers, Reason, INFO DTMF.
//! - [`auth`]: digest (RFC 8760) as the challenger and as the client.
//! - [`sdp`]: SDP text in and out, and offer/answer.
//! - [`ua`]: the user agent the engine drives, on top of all of the above.
//!
//! # The engine's run loop
//! Incoming calls arrive as [`ua::UaEvent`]s; the engine answers with commands
//! run on the user agent's task through a [`ua::driver::UaHandle`]. Every event
//! carries the message (so routing reads P-Asserted-Identity, Diversion, X-
//! headers) and the source address.
//!
//! ```no_run
//! use sip_stack::ua::{driver, OutgoingCall, UaConfig, UaEvent, UserAgent};
//! use sip_stack::transaction::Transport;
//!
//! # async fn run() -> std::io::Result<()> {
//! let socket = tokio::net::UdpSocket::bind("127.0.0.1:5060").await?;
//! let ua = UserAgent::new(UaConfig::new(socket.local_addr()?));
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! let (handle, mut events, _task) = driver::spawn(sip_stack::driver::Sockets::udp(socket), ua, shutdown);
//!
//! // An outgoing call, through a carrier that may challenge it.
//! let spec = OutgoingCall {
//!     target: "sip:+15551230000@192.0.2.10".into(),
//!     from: "<sip:+15557654321@192.0.2.1>".into(),
//!     to: None,
//!     next_hop: "192.0.2.10:5060".parse().unwrap(),
//!     via_proxy: false,
//!     transport: Transport::Udp,
//!     credentials: None,
//!     sdp: Some("v=0\r\n...".into()),
//!     headers: vec![],
//!     max_forwards: sip_stack::ua::DEFAULT_MAX_FORWARDS,
//!     no_reply_timeout: None,
//! };
//! let _out = handle.with(move |ua, now| ua.call(now, spec)).await;
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         UaEvent::Incoming { call, invite, offer, source, .. } => {
//!             // Route on the number, the source address, any header...
//!             let _pai = invite.header_named("P-Asserted-Identity");
//!             let answer = offer.map(|_| "v=0\r\n...".to_owned()); // from the media engine
//!             let _ = handle
//!                 .with(move |ua, now| {
//!                     ua.ring(now, call, 180, None)?;
//!                     ua.answer(now, call, answer.as_deref())
//!                 })
//!                 .await;
//!         }
//!         UaEvent::Dtmf { digit, .. } => println!("key {}", digit.digit),
//!         UaEvent::Ended { call, by, cause, reason } => {
//!             println!("{call:?} ended by {by:?}: {cause:?} {reason:?}");
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod dialog;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod msg;
pub mod sdp;
pub mod transaction;
pub mod transport;
pub mod ua;
