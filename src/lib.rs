//! The `voipbin` package: the workspace root and the server binary that wires the
//! crates together (`src/main.rs`).
//!
//! The engine lives in the binary's modules: `serve` starts the API, the SIP
//! transport and the media engine; `sip` accepts calls and routes them
//! (`routing`: provider by source address, number -> customer and flow); `call` is
//! one actor per call owning its dialog, media session and activeflow. See
//! ARCHITECTURE.md ("A call's path") and README.md ("Where things live").
