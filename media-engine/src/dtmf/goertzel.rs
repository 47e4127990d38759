//! In-band DTMF detection for carriers that send the tones in the audio: the Goertzel
//! algorithm on the eight DTMF frequencies, with the checks of ITU-T Q.24.
//!
//! Audio is 8 kHz 16-bit PCM, taken in any frame size and cut into blocks of 205
//! samples (25.6 ms; 39 Hz per Goertzel bin). A block holds a digit when:
//! - the strongest row and column tones are loud enough (about -30 dBm0 each);
//! - twist: neither tone is more than 8 dB above the other (Q.24 allows 8 dB normal
//!   and 4 dB reverse twist in North America and more elsewhere; 8 dB both ways keeps
//!   the 5 dB cases of real carriers);
//! - each is at least 8 dB above the other tones of its group (rejects chords and
//!   off-frequency tones);
//! - the two tones carry most of the block's energy, and neither has a strong second
//!   harmonic (voiced speech has; a DTMF tone has none): this rejects speech.
//!
//! Each tone is measured at its nominal frequency and 1.5% either side, the deviation
//! Q.24 requires a detector to accept, and the strongest of the three counts.
//! Q.24 timing: a digit is reported once it held two blocks in a row (more than 40 ms)
//! and ends after two blocks without it; its duration is reported with it.

const RATE: f32 = 8000.0;
const BLOCK: usize = 205;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// 8 dB as a power ratio.
const DB8: f32 = 6.31;
/// The two tones must carry this share of the block's energy.
const TONE_SHARE: f32 = 0.7;
/// A column tone's second harmonic must stay this far below it (20 dB as a power
/// ratio).
const HARMONIC_LIMIT: f32 = 100.0;
/// A row tone's second harmonic limit (10 dB). It is not checked when the harmonic
/// lies next to the detected column tone (2 x 697 = 1394 Hz is 58 Hz from 1336 Hz),
/// whose leakage cannot be told from a harmonic.
const ROW_HARMONIC_LIMIT: f32 = 10.0;
/// Measured at the nominal frequency and this far either side.
const DEVIATIONS: [f32; 3] = [1.0, 0.985, 1.015];
/// Power of a -30 dBm0 tone in a block (amplitude about 1000 of 32768).
const MIN_TONE_POWER: f32 = 1.0e10;

/// `2 cos(2 pi f / rate)`.
fn coefficient(f: f32) -> f32 {
    2.0 * (2.0 * std::f32::consts::PI * f / RATE).cos()
}

/// The Goertzel coefficients of each tone at each deviation, then of the second
/// harmonic of each tone.
#[derive(Debug, Clone, Copy)]
struct Coefficients {
    tones: [[f32; 3]; 8],
    harmonics: [f32; 8],
}

fn coefficients() -> Coefficients {
    let mut tones = [[0.0; 3]; 8];
    let mut harmonics = [0.0; 8];
    for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
        for (j, d) in DEVIATIONS.iter().enumerate() {
            tones[i][j] = coefficient(f * d);
        }
        harmonics[i] = coefficient(2.0 * f);
    }
    Coefficients { tones, harmonics }
}

/// The power of one frequency in a block (Goertzel).
fn goertzel(block: &[i16; BLOCK], c: f32) -> f32 {
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s0 = f32::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}

/// The power at each of the eight frequencies in one block (the best of the three
/// deviations), and the block's total energy scaled to the same units.
fn powers(block: &[i16; BLOCK], coef: &Coefficients) -> ([f32; 8], f32) {
    let mut out = [0.0f32; 8];
    for (k, cs) in coef.tones.iter().enumerate() {
        out[k] = cs.iter().map(|c| goertzel(block, *c)).fold(0.0, f32::max);
    }
    // A pure tone of amplitude a gives a Goertzel power of (a N / 2)^2 and a block
    // energy of a^2 N / 2; scale the energy by N / 2 to compare them.
    let energy: f32 = block
        .iter()
        .map(|&x| f32::from(x) * f32::from(x))
        .sum::<f32>()
        * (BLOCK as f32 / 2.0);
    (out, energy)
}

fn strongest(p: &[f32]) -> (usize, f32, f32) {
    let mut best = 0;
    for i in 1..p.len() {
        if p[i] > p[best] {
            best = i;
        }
    }
    let second = p
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != best)
        .map(|(_, v)| *v)
        .fold(0.0, f32::max);
    (best, p[best], second)
}

/// The digit one block holds, if any.
fn classify(block: &[i16; BLOCK], coef: &Coefficients) -> Option<char> {
    let (p, energy) = powers(block, coef);
    let (row, row_p, row_next) = strongest(&p[..4]);
    let (col, col_p, col_next) = strongest(&p[4..]);
    let loud = row_p > MIN_TONE_POWER && col_p > MIN_TONE_POWER;
    let twist_ok = row_p < col_p * DB8 && col_p < row_p * DB8;
    let clean = row_p > row_next * DB8 && col_p > col_next * DB8;
    let tonal = row_p + col_p > TONE_SHARE * energy;
    if !(loud && twist_ok && clean && tonal) {
        return None;
    }
    let row_checkable = (2.0 * ROWS[row] - COLS[col]).abs() > 100.0;
    let row_pure =
        !row_checkable || goertzel(block, coef.harmonics[row]) * ROW_HARMONIC_LIMIT < row_p;
    let pure = row_pure && goertzel(block, coef.harmonics[4 + col]) * HARMONIC_LIMIT < col_p;
    pure.then_some(KEYS[row][col])
}

/// The row and column frequencies of a key (ITU-T Q.23), for generating its tone.
pub fn key_frequencies(key: char) -> Option<(f32, f32)> {
    let key = key.to_ascii_uppercase();
    KEYS.iter().enumerate().find_map(|(r, row)| {
        row.iter()
            .position(|&k| k == key)
            .map(|c| (ROWS[r], COLS[c]))
    })
}

/// A digit heard in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InbandDigit {
    /// The key.
    pub key: char,
    /// How long it was held, in ms.
    pub duration_ms: u32,
}

/// Detects DTMF in a stream of 8 kHz PCM.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coef: Coefficients,
    block: [i16; BLOCK],
    filled: usize,
    /// The digit of the last block, and how many blocks in a row held it.
    last: (Option<char>, u32),
    /// The digit being held (reported), with its length in blocks.
    active: Option<(char, u32)>,
    /// Blocks without the active digit.
    gap: u32,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    /// A detector with nothing heard yet.
    pub fn new() -> Self {
        Self {
            coef: coefficients(),
            block: [0; BLOCK],
            filled: 0,
            last: (None, 0),
            active: None,
            gap: 0,
        }
    }

    /// Feeds samples; calls `on_digit` for each digit that ends in them (allocates
    /// nothing).
    pub fn feed(&mut self, samples: &[i16], mut on_digit: impl FnMut(InbandDigit)) {
        for &s in samples {
            self.block[self.filled] = s;
            self.filled += 1;
            if self.filled == BLOCK {
                self.filled = 0;
                let d = classify(&self.block, &self.coef);
                self.step(d, &mut on_digit);
            }
        }
    }

    fn step(&mut self, d: Option<char>, on_digit: &mut impl FnMut(InbandDigit)) {
        self.last = if self.last.0 == d {
            (d, self.last.1 + 1)
        } else {
            (d, 1)
        };
        match (self.active, d) {
            (Some((key, n)), Some(k)) if k == key => {
                self.active = Some((key, n + 1));
                self.gap = 0;
            }
            (Some((key, n)), _) => {
                self.gap += 1;
                if self.gap >= 2 {
                    on_digit(InbandDigit {
                        key,
                        duration_ms: n * 1000 * BLOCK as u32 / 8000,
                    });
                    self.active = None;
                    self.gap = 0;
                }
            }
            (None, Some(k)) if self.last.1 >= 2 => {
                self.active = Some((k, self.last.1));
                self.gap = 0;
            }
            (None, _) => {}
        }
    }

    /// Ends the stream: reports a digit still held.
    pub fn finish(&mut self, mut on_digit: impl FnMut(InbandDigit)) {
        if let Some((key, n)) = self.active.take() {
            on_digit(InbandDigit {
                key,
                duration_ms: n * 1000 * BLOCK as u32 / 8000,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freqs: &[(f32, f32)], ms: u32) -> Vec<i16> {
        let n = (ms * 8) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / RATE;
                let v: f32 = freqs
                    .iter()
                    .map(|(f, a)| a * (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum();
                v.clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    fn detect(samples: &[i16]) -> String {
        let mut det = InbandDetector::new();
        let mut out = String::new();
        det.feed(samples, |d| out.push(d.key));
        det.finish(|d| out.push(d.key));
        out
    }

    #[test]
    fn every_key_is_detected() {
        for (r, row) in KEYS.iter().enumerate() {
            for (c, key) in row.iter().enumerate() {
                let mut s = tone(&[(ROWS[r], 8000.0), (COLS[c], 8000.0)], 100);
                s.extend(tone(&[], 100));
                assert_eq!(detect(&s), key.to_string());
            }
        }
    }

    #[test]
    fn short_blips_and_single_tones_are_not_digits() {
        assert_eq!(
            detect(&tone(&[(697.0, 8000.0), (1209.0, 8000.0)], 30)),
            "",
            "30 ms is under Q.24's 40 ms"
        );
        assert_eq!(
            detect(&tone(&[(697.0, 12000.0)], 200)),
            "",
            "one tone alone"
        );
        assert_eq!(
            detect(&tone(
                &[(697.0, 8000.0), (770.0, 8000.0), (1209.0, 8000.0)],
                200
            )),
            "",
            "a chord"
        );
    }

    #[test]
    fn frequency_tolerance() {
        let at = |dev: f32| {
            detect(&tone(
                &[
                    (770.0 * (1.0 + dev), 8000.0),
                    (1336.0 * (1.0 + dev), 8000.0),
                ],
                120,
            ))
        };
        assert_eq!(at(0.015), "5", "+1.5% must be detected (Q.24)");
        assert_eq!(at(-0.015), "5", "-1.5% must be detected");
        assert_eq!(at(0.06), "", "6% off is not DTMF");
    }
}
