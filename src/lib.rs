//! The voipbin engine: SIP calls carried through flows, with the API beside them.
//!
//! `voipbin serve` ([`serve::run`]) binds the sockets, opens the API (the `api`
//! crate: REST, webhooks, WebSocket events, storage) and starts the SIP user agent
//! (`sip-stack`) and the media engine (`media-engine`). The binary (`src/main.rs`)
//! only reads the command line ([`cli`], [`config`]) and calls in here.
//!
//! # A call's path
//! ```text
//! INVITE --> sip (dispatcher, never waits) --> a task per call:
//!              admission (screen: 403/503)      routing (memory) -> call::shell
//!                                                                     |  runs a
//!                                                                     v  CallCore
//!   SIP commands <- user agent     media commands -> engine     rows -> writer -> storage port
//! ```
//!
//! # The model
//! - A **call** ([`call::core::CallCore`]) owns its legs, its activeflow and its
//!   rows (the call's, the activeflow's, its recordings'). It is sans-IO: inputs
//!   (SIP events, media events, job answers, the API's requests, the time) go in
//!   through `handle(now, input)` and `handle_timeout(now)`; SIP commands, media
//!   commands, rows and jobs come out of `poll_output()`; `poll_timeout()` says when
//!   to wake it. [`call::shell`] is the tokio task that does the IO.
//! - A **leg** is one SIP dialog (the user agent's `CallRef`) and, once answered,
//!   its media session in the engine. An incoming call has one leg; outbound
//!   calls and `connect` add legs to the same call.
//! - A leg is in one place at a time: **in the flow** (the activeflow's talk,
//!   play, record and digits act on it), **in a bridge** (joined to one other leg;
//!   the engine relays their packets, the flow waits), or **in a room** (a
//!   conference's mixer, by [`call::core::RoomId`]). It moves from the flow to a
//!   bridge or a room by a flow action (`connect`, `conference_join`) and back to
//!   the flow when the other side leaves; its dialog and session stay the same,
//!   so the peer sees nothing move.
//! - A call goes `Loading` (its flow is read) -> `Running` -> (`Chaining` to the
//!   next flow) -> `Closing` (legs hung up and closed) -> `Finished` (the last row
//!   is written, and waited for). Its status on the row is a
//!   [`flow_runtime::CallStatus`]; why it ended is a [`call::reason::HangupReason`],
//!   which alone knows the SIP status and Q.850 cause that say it.
//!
//! Where each behaviour lives:
//! - [`admission`]: who may send INVITEs (providers' sources, per-source rate, the
//!   providers' concurrent-call limits), asked before any transaction exists;
//!   [`overload`]: new calls shed with 503 while the runtime lags.
//! - [`routing`]: which customer's flow an admitted INVITE runs, from memory.
//! - [`sip`]: the dispatcher: hands each SIP event to its call's task; never waits.
//! - [`call`]: the call core and its shell, jobs (TTS, prompts, HTTP, flows),
//!   hangup reasons, live calls for the API, the rows' group commit.
//! - Storage is a port (`api::call_store::CallStore`): flows, batches of rows and
//!   events, orphans; the engine holds no SQL.
//! - [`flow_cmd`]: `voipbin flow validate|simulate`, flows without a server.
//!
//! # Threads
//! The SIP user agent runs on a thread of its own (`sip-ua`) and the call tasks run
//! beside it on that thread's runtime (a call's SIP events and commands never cross
//! threads); the media engine runs on its workers, and the API and webhooks on the
//! tokio runtime's workers, which run at a lower priority
//! ([`overload::yield_to_signalling`]): short of CPU, that bulk work waits, not the
//! 503s, 100s, BYEs' 200s and RTP.
//!
//! # Time
//! One clock, injected: the call core, the flow interpreter, the transaction layer
//! and the media engine take `now` as an argument; the shell reads the clock once
//! per turn and passes it on. Tests move a fake `now` (`src/call/core/tests`).
//!
//! See ARCHITECTURE.md ("A call's path") and README.md ("Where things live").

pub mod admission;
pub mod call;
pub mod cli;
pub mod config;
pub mod flow_cmd;
pub mod overload;
pub mod routing;
pub mod serve;
pub mod sip;
pub mod tls;
