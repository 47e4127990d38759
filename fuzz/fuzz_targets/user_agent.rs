//! The user agent fed scripts of datagrams (mutated call messages or raw bytes),
//! engine commands and clock jumps: nothing panics, the transaction table stays
//! under its cap, and once the engine hangs up everything and time runs on, no call
//! and no transaction is left behind.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip_stack::msg::parse_datagram;
use sip_stack::transaction::Transport;
use sip_stack::ua::{CallRef, OutgoingCall, UaConfig, UaEvent, UserAgent};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

fn template(kind: u8, branch: u8, tag: bool) -> String {
    let to_tag = if tag { ";tag=T" } else { "" };
    let (method, cseq) = match kind % 8 {
        0 => ("INVITE", "1 INVITE"),
        1 => ("ACK", "1 ACK"),
        2 => ("CANCEL", "1 CANCEL"),
        3 => ("BYE", "2 BYE"),
        4 => ("INFO", "3 INFO"),
        5 => ("UPDATE", "4 UPDATE"),
        6 => ("PRACK", "5 PRACK"),
        _ => ("INVITE", "6 INVITE"),
    };
    format!(
        "{method} sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch};rport\r\nFrom: <sip:x@y>;tag=F\r\nTo: <sip:a@b>{to_tag}\r\nCall-ID: C{}\r\nCSeq: {cseq}\r\nContact: <sip:x@127.0.0.1:5070>\r\nRequire: 100rel\r\nRAck: 1 1 INVITE\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 10\r\n\r\nSignal=5\r\n",
        branch % 2
    )
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let local = "127.0.0.1:5060".parse().expect("literal");
    let peer = "127.0.0.1:5070".parse().expect("literal");
    let mut cfg = UaConfig::new(local);
    cfg.max_transactions = 16;
    let mut ua = UserAgent::new(cfg);
    let mut calls: Vec<CallRef> = Vec::new();
    for chunk in data.chunks(8) {
        let op = chunk.first().copied().unwrap_or(0);
        let arg = chunk.get(1).copied().unwrap_or(0);
        let pick = calls.get(usize::from(arg) % calls.len().max(1)).copied();
        match op % 9 {
            0 => now += Duration::from_millis(u64::from(arg) * 200),
            1 => {
                let mut text = template(arg, chunk.get(2).copied().unwrap_or(0) % 4, arg & 0x80 != 0);
                if let (Some(&pos), Some(&b)) = (chunk.get(3), chunk.get(4))
                    && b.is_ascii()
                {
                    let i = usize::from(pos) % text.len();
                    text.replace_range(i..i + 1, &(b as char).to_string());
                }
                match parse_datagram(Bytes::from(text.clone())) {
                    Ok(msg) => ua.receive(now, msg, peer, Transport::Udp),
                    Err(e) => ua.receive_malformed(text.as_bytes(), &e, peer, Transport::Udp),
                }
            }
            2 => match parse_datagram(Bytes::copy_from_slice(chunk)) {
                Ok(msg) => ua.receive(now, msg, peer, Transport::Udp),
                Err(e) => ua.receive_malformed(chunk, &e, peer, Transport::Udp),
            },
            3 => {
                if let Some(c) = pick {
                    let _ = ua.ring(now, c, 180 + u16::from(arg % 4), (arg & 1 == 1).then_some(SDP));
                }
            }
            4 => {
                if let Some(c) = pick {
                    let _ = ua.answer(now, c, Some(SDP));
                }
            }
            5 => {
                if let Some(c) = pick {
                    let _ = ua.reject(now, c, 300 + u16::from(arg), None, &[]);
                }
            }
            6 => {
                if let Some(c) = pick {
                    let _ = ua.hangup(now, c, None);
                }
            }
            7 => {
                if let Some(c) = pick {
                    let _ = ua.request(now, c, ["INFO", "INVITE", "UPDATE"][usize::from(arg) % 3], &[], None);
                }
            }
            _ => {
                let spec = OutgoingCall {
                    target: "sip:b@127.0.0.1:5070".into(),
                    from: "<sip:a@127.0.0.1>".into(),
                    to: None,
                    next_hop: peer,
                    via_proxy: arg & 1 == 1,
                    transport: Transport::Udp,
                    credentials: None,
                    sdp: (arg & 2 == 2).then(|| SDP.to_owned()),
                    headers: vec![],
                };
                if let Ok(c) = ua.call(now, spec) {
                    calls.push(c);
                }
            }
        }
        ua.handle_timeout(now);
        while let Some(ev) = ua.poll_event() {
            match ev {
                UaEvent::Incoming { call, .. } => calls.push(call),
                UaEvent::Request { tx, .. } => {
                    let _ = ua.respond(now, tx, 200, &[], None);
                }
                UaEvent::Answered { call, sdp: Some(_), .. } => {
                    let _ = ua.ack(now, call, Some(SDP));
                }
                _ => {}
            }
        }
        while ua.poll_transmit().is_some() {}
        assert!(ua.transactions() <= 16 + 8, "the table stays near its cap");
    }
    // The engine hangs up everything; time runs on; nothing is left.
    for c in calls {
        let _ = ua.hangup(now, c, None);
    }
    for hours in [1, 2, 24, 48] {
        ua.handle_timeout(t0 + Duration::from_secs(3600 * hours));
        while let Some(ev) = ua.poll_event() {
            if let UaEvent::Request { tx, .. } = ev {
                let _ = ua.respond(now, tx, 200, &[], None);
            }
        }
        while ua.poll_transmit().is_some() {}
    }
    assert_eq!(ua.calls(), 0, "every call ends");
    assert_eq!(ua.transactions(), 0, "every transaction ends");
});
