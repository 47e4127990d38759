//! Simple measurements on audio frames: a pure tone's frequency and a signal's
//! level, for tests, level meters and sanity checks of what a leg hears.

/// Zero crossings per second / 2: the frequency of a pure tone.
pub fn frequency(x: &[i16], rate: u32) -> f64 {
    let crossings = x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (x.len() as f64 / f64::from(rate))
}

/// The mean of the squared samples (the signal's power).
pub fn mean_square(x: &[i16]) -> f64 {
    x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64
}

/// The root mean square level.
pub fn rms(x: &[i16]) -> f64 {
    mean_square(x).sqrt()
}
