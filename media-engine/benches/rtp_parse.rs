//! Chooses the RTP packet crate (issue: media-engine, "choose by your own benchmark"):
//! parse a 172-byte PCMU packet and read the fields the media path uses, and write one
//! into a reused buffer, with `rtp-types` (zero-copy over the slice) and with webrtc-rs's
//! sans-IO `rtc-rtp` (copies into `Bytes`).
//!
//! `cargo bench -p media-engine --bench rtp_parse`
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use rtc_shared::marshal::{Marshal, Unmarshal};

fn packet() -> Vec<u8> {
    rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(0)
        .sequence_number(4711)
        .timestamp(160 * 4711)
        .ssrc(0x1234_5678)
        .payload(&[0xd5u8; 160][..])
        .write_vec()
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let raw = packet();
    let mut group = c.benchmark_group("rtp");
    group.bench_function("parse/rtp-types", |b| {
        b.iter(|| {
            let p = rtp_types::RtpPacket::parse(black_box(&raw[..])).ok();
            p.map(|p| {
                (
                    p.sequence_number(),
                    p.timestamp(),
                    p.ssrc(),
                    p.payload_type(),
                    p.payload().len(),
                )
            })
        })
    });
    group.bench_function("parse/rtc-rtp", |b| {
        b.iter(|| {
            let mut buf = Bytes::copy_from_slice(black_box(&raw[..]));
            let p = rtc_rtp::Packet::unmarshal(&mut buf).ok();
            p.map(|p| {
                (
                    p.header.sequence_number,
                    p.header.timestamp,
                    p.header.ssrc,
                    p.header.payload_type,
                    p.payload.len(),
                )
            })
        })
    });
    let payload = [0xd5u8; 160];
    let mut out = [0u8; 1500];
    group.bench_function("write/rtp-types", |b| {
        b.iter(|| {
            rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(0)
                .sequence_number(black_box(4712))
                .timestamp(160 * 4712)
                .ssrc(0x1234_5678)
                .payload(&payload[..])
                .write_into(&mut out)
                .ok()
        })
    });
    let mut pkt = rtc_rtp::Packet {
        header: rtc_rtp::Header {
            version: 2,
            payload_type: 0,
            ssrc: 0x1234_5678,
            ..Default::default()
        },
        payload: Bytes::copy_from_slice(&payload),
    };
    group.bench_function("write/rtc-rtp", |b| {
        b.iter(|| {
            pkt.header.sequence_number = black_box(4712);
            pkt.header.timestamp = 160 * 4712;
            pkt.marshal_to(&mut out).ok()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
