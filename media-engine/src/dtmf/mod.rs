//! DTMF: RFC 4733 events in and out (in-band detection follows).

pub mod rfc4733;
