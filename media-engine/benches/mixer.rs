//! Mixer speed (issue: media-engine): at least 2,000 participants mixed per core in
//! real time, as 100 rooms of 20 at 20 ms (8 kHz, 160 samples). One tick of all 100
//! rooms must take well under 20 ms.
//!
//! `cargo bench -p media-engine --bench mixer`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use media_engine::mix::Mixer;

fn bench(c: &mut Criterion) {
    let frame: Vec<i16> = (0..160)
        .map(|i| ((i as f32 * 0.2).sin() * 3000.0) as i16)
        .collect();
    let mut rooms: Vec<(Mixer, Vec<_>)> = (0..100)
        .map(|_| {
            let mut m = Mixer::new(160);
            let ids: Vec<_> = (0..20).map(|_| m.join()).collect();
            (m, ids)
        })
        .collect();
    let mut group = c.benchmark_group("mixer");
    group.throughput(Throughput::Elements(2000));
    group.bench_function("100_rooms_of_20_one_tick", |b| {
        b.iter(|| {
            for (m, ids) in &mut rooms {
                for id in ids.iter() {
                    m.put(*id, black_box(&frame));
                }
                m.mix();
                black_box(m.output(ids[0]));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
