//! DTMF: RFC 4733 events in and out, and in-band detection.

pub mod goertzel;
pub mod rfc4733;
