//! Mixing: the conference mixer (N participants).

pub mod mixer;

pub use mixer::{Mixer, ParticipantId};
