//! The transaction core fed sequences of messages and time steps: a script of
//! datagrams (arbitrary bytes, or mutations of valid requests and responses), sends
//! and responses from the user, and clock jumps never panic, and the table never
//! holds more transactions than its cap.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_stack::msg::{MessageBuilder, parse_datagram};
use sip_stack::transaction::{TimerConfig, TransactionLayer, Transport, TxEvent};

const TEMPLATES: [&str; 4] = [
    "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKB\r\nFrom: <sip:x@y>;tag=F\r\nTo: <sip:a@b>\r\nCall-ID: C\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
    "ACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKB\r\nFrom: <sip:x@y>;tag=F\r\nTo: <sip:a@b>;tag=T\r\nCall-ID: C\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
    "CANCEL sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKB\r\nFrom: <sip:x@y>;tag=F\r\nTo: <sip:a@b>\r\nCall-ID: C\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKB\r\nFrom: <sip:x@y>;tag=F\r\nTo: <sip:a@b>;tag=T\r\nCall-ID: C\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
];

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut layer = TransactionLayer::new(TimerConfig::default(), 8);
    let peer = "127.0.0.1:5060".parse().expect("literal");
    let mut chunks = data.chunks(16);
    while let Some(chunk) = chunks.next() {
        let op = chunk.first().copied().unwrap_or(0);
        let arg = chunk.get(1).copied().unwrap_or(0);
        match op % 5 {
            0 => now += Duration::from_millis(u64::from(arg) * 250),
            1 => {
                // A template with a byte changed, and a branch picked by `arg`.
                let mut text = TEMPLATES[usize::from(arg) % TEMPLATES.len()].replace("z9hG4bKB", &format!("z9hG4bK{}", arg % 3));
                if let Some(&pos) = chunk.get(2) {
                    let i = usize::from(pos) % text.len();
                    let b = chunk.get(3).copied().unwrap_or(b'x');
                    if b.is_ascii() && text.is_char_boundary(i) && text.is_char_boundary(i + 1) {
                        text.replace_range(i..i + 1, &(b as char).to_string());
                    }
                }
                if let Ok(msg) = parse_datagram(Bytes::from(text)) {
                    layer.receive(now, msg, peer, if arg & 1 == 0 { Transport::Udp } else { Transport::Tcp });
                }
            }
            2 => {
                if let Ok(msg) = parse_datagram(Bytes::copy_from_slice(chunk)) {
                    layer.receive(now, msg, peer, Transport::Udp);
                }
            }
            3 => {
                if let Ok(req) = parse_datagram(Bytes::from(TEMPLATES[usize::from(arg) % 3].replace("z9hG4bKB", &format!("z9hG4bKc{arg}")))) {
                    let _ = layer.send_request(now, req, peer, Transport::Udp);
                }
            }
            _ => {}
        }
        layer.handle_timeout(now);
        while let Some(ev) = layer.poll_event() {
            if let TxEvent::Request { tx, msg, .. } = ev {
                // A user always ends what it is given: a provisional, then a final.
                if arg & 1 == 1 {
                    let _ = layer.send_response(now, tx, MessageBuilder::response_to(&msg, 180, "X", Some("t")).finish());
                }
                let status = [200u16, 404, 487, 486, 603][usize::from(arg) % 5];
                let _ = layer.send_response(now, tx, MessageBuilder::response_to(&msg, status, "X", Some("t")).finish());
            }
        }
        while layer.poll_transmit().is_some() {}
        assert!(layer.len() <= 8, "the table holds at most its cap");
    }
    // Every transaction ends once time runs on.
    layer.handle_timeout(t0 + Duration::from_secs(3600 * 24));
    layer.handle_timeout(t0 + Duration::from_secs(3600 * 48));
    assert!(layer.is_empty(), "all transactions end");
});
