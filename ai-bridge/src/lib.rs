//! ai-bridge: AI voice agents.
//!
//! # What it owns
//! STT, LLM and TTS provider traits and their adapters, and the conversation loop:
//! turns, barge-in and tool calls (connect_call, send_message, stop_media, ...).
//!
//! # What it must not know
//! SIP, flows, SQL.
//!
//! # Run loop
//! The conversation is a sans-IO state machine fed with audio frames, transcripts
//! and provider replies, with the time; drivers own the provider connections.
//!
//! Status: arrives with the AI issues.
