//! The SDP parser and offer/answer on arbitrary text never panic, and what parses
//! writes back to something that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_stack::sdp::{self, LocalMedia, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(offer) = SessionDescription::parse(text) else { return };
    let again = SessionDescription::parse(&offer.to_string()).expect("written SDP parses");
    assert_eq!(again.media.len(), offer.media.len());
    let local = LocalMedia {
        addr: "192.0.2.1".parse().expect("literal"),
        port: 10000,
        codecs: vec![sdp::PCMU, sdp::PCMA, sdp::OPUS],
        ptime: 20,
        session_id: 1,
        session_version: 1,
    };
    if let Ok((answer, _)) = sdp::answer(&offer, &local) {
        let _ = sdp::accept_answer(&offer, &answer);
    }
});
