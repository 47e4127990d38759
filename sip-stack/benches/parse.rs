//! Message layer speed (issue: sip-stack): parse a typical carrier INVITE (12 headers
//! and SDP) and read Via, From, To, Call-ID, CSeq and Contact: goal at least 300,000
//! per second on one core. Serialize a 200 OK to it: at least as fast.
//!
//! `cargo bench -p sip-stack --bench parse`
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sip_stack::msg::{MessageBuilder, parse_datagram};

const INVITE: &[u8] = b"INVITE sip:+15551230000@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---2d8e;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Carrier\" <sip:+15557654321@198.51.100.7>;tag=as5f8e1a2b\r\n\
To: <sip:+15551230000@192.0.2.10>\r\n\
Call-ID: 3c26700b27ba-7f0a@198.51.100.7\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+15557654321@198.51.100.7:5060>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n\
Supported: replaces, timer\r\n\
User-Agent: carrier-sbc/4.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 133\r\n\
\r\n\
v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn bench(c: &mut Criterion) {
    let raw = Bytes::from_static(INVITE);
    let mut group = c.benchmark_group("sip");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_invite_and_read_6_headers", |b| {
        b.iter(|| {
            let m = parse_datagram(black_box(raw.clone())).unwrap();
            let via = m.via().unwrap();
            let from = m.from().unwrap();
            let to = m.to().unwrap();
            let call_id = m.call_id().unwrap();
            let cseq = m.cseq().unwrap();
            let contact = m.contacts().next().unwrap().unwrap();
            black_box((
                via.branch(),
                from.tag(),
                to.uri,
                call_id,
                cseq.seq,
                contact.uri,
            ));
        })
    });
    let request = parse_datagram(raw.clone()).unwrap();
    group.bench_function("serialize_200_ok", |b| {
        b.iter(|| {
            black_box(
                MessageBuilder::response_to(black_box(&request), 200, "OK", Some("8f2a1c"))
                    .header("Contact", "<sip:192.0.2.10:5060>")
                    .body("application/sdp", b"v=0\r\n"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
