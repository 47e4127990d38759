//! Resampling speed (issue: media-engine): one 20 ms frame from 8 to 16 kHz must take
//! under 5 us; the other common conversions are shown beside it.
//!
//! `cargo bench -p media-engine --bench resample`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use media_engine::resample::FrameResampler;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample_20ms_frame");
    for (from, to) in [
        (8000u32, 16_000u32),
        (16_000, 8000),
        (8000, 48_000),
        (48_000, 16_000),
    ] {
        let Ok(mut r) = FrameResampler::new(from, to) else {
            continue;
        };
        let input: Vec<i16> = (0..r.input_len())
            .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
            .collect();
        let mut output = vec![0i16; r.output_len()];
        group.bench_function(format!("{from}_to_{to}"), |b| {
            b.iter(|| r.process(black_box(&input), &mut output).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
