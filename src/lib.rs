//! The voipbin engine: SIP calls carried through flows, with the API beside them.
//!
//! `voipbin serve` ([`serve::run`]) binds the sockets, opens the API (the `api`
//! crate: REST, webhooks, WebSocket events, storage) and starts the SIP user agent
//! (`sip-stack`) and the media engine (`media-engine`). The binary (`src/main.rs`)
//! only reads the command line ([`cli`], [`config`]) and calls in here.
//!
//! # A call's path
//! ```text
//! INVITE --> sip (dispatcher) --admission--> routing (memory) --> call::run (one task)
//!                                                                  |  owns: the SIP dialog,
//!                                                                  |  the media leg, the
//!                                                                  v  activeflow
//!              rows + events <-- call::writer (group commit) <-- flow commands
//! ```
//! Where each behaviour lives:
//! - [`admission`]: who may send INVITEs (providers' sources, per-source rate, the
//!   providers' concurrent-call limits), asked before any transaction exists.
//! - [`overload`]: new calls refused with 503 while the runtime lags behind.
//! - [`routing`]: which customer's flow an admitted INVITE runs, from memory.
//! - [`sip`]: the dispatcher: hands each SIP event to its call's task; never waits.
//! - [`call`]: one task per call carrying out the flow's commands (answer, talk,
//!   play, record, digits, HTTP), hold and mute, hangup and its rows.
//! - [`flow_cmd`]: `voipbin flow validate|simulate`, flows without a server.
//!
//! # Time
//! The flow interpreter, the transaction layer and the media engine take `now` as an
//! argument; the call task reads the clock once per turn and passes it on.
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
