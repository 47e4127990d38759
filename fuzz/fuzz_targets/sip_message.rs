//! The message parser on arbitrary bytes: datagrams, stream framing, typed access and
//! request checks never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_stack::msg::{Frame, check_request, frame, parse_datagram, parse_framed};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_datagram(Bytes::copy_from_slice(data));
    if let Err(e) = &parsed {
        // A refusal is built from what can still be read, and is itself a message.
        if let Some(reply) = sip_stack::msg::salvage::reply_to_unparsable(data, e) {
            assert!(parse_datagram(reply).is_ok(), "a salvaged reply parses");
        }
    }
    if let Ok(msg) = parsed {
        if let Ok(via) = msg.via() {
            let _ = via;
        }
        for v in msg.list(sip_stack::msg::HeaderName::Via) {
            let _ = sip_stack::transport::stamp_via(v, "192.0.2.1:5060".parse().expect("literal"));
        }
        let _ = check_request(&msg);
        let _ = msg.via();
        let _ = msg.vias().count();
        let _ = msg.from().map(|f| (f.tag(), f.display(), f.parsed_uri()));
        let _ = msg.to();
        let _ = msg.cseq();
        let _ = msg.contacts().count();
        let _ = msg.max_forwards();
        for h in msg.headers() {
            let _ = (h.name, h.value);
        }
        if let Some(uri) = msg.request_uri() {
            let _ = sip_stack::msg::Uri::parse(uri);
        }
    }
    if let Ok(Frame::Message { skip, len }) = frame(data) {
        let _ = parse_framed(Bytes::copy_from_slice(&data[skip..skip + len]));
    }
});
