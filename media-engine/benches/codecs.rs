//! Codec speed (issue: media-engine): G.711 encode plus decode of one 20 ms frame
//! (160 samples): goal under 200 ns.
//!
//! `cargo bench -p media-engine --bench codecs`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use media_engine::codec::G711;

fn bench(c: &mut Criterion) {
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i as f32 * 0.3).sin() * 12_000.0) as i16)
        .collect();
    let mut coded = [0u8; 160];
    let mut back = [0i16; 160];
    for law in [G711::Ulaw, G711::Alaw] {
        law.encode(&pcm, &mut coded); // builds the tables before timing
        c.bench_function(&format!("g711_{law:?}_encode_decode_160"), |b| {
            b.iter(|| {
                law.encode(black_box(&pcm), &mut coded);
                law.decode(black_box(&coded), &mut back);
                black_box(&back);
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
