//! The conference mixer: every 20 ms tick, each participant hears the sum of the
//! others minus itself, with saturating arithmetic, per-participant gain, mute (does
//! not talk), deaf (does not hear), and whisper (a source only one participant hears:
//! call screening, coaching).
//!
//! All buffers are made when a participant joins; a tick allocates nothing. The sum
//! is kept in 32 bits, so no intermediate result overflows before the one saturation
//! into 16 bits per output sample.

/// A participant's handle in a mixer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParticipantId(pub u32);

/// Unity gain in the mixer's fixed point (Q12).
const UNITY: i32 = 1 << 12;

#[derive(Debug, Clone)]
struct Participant {
    id: ParticipantId,
    /// Input gain, Q12 (4096 = 1.0).
    gain: i32,
    muted: bool,
    deaf: bool,
    /// This tick's input, gain applied; zero when muted or silent.
    contribution: Box<[i32]>,
    /// This tick's whisper (heard by this participant only), if any.
    whisper: Box<[i16]>,
    has_whisper: bool,
    has_input: bool,
    /// The mixed output.
    out: Box<[i16]>,
}

/// A mixer of frames of `frame` samples.
#[derive(Debug, Clone)]
pub struct Mixer {
    frame: usize,
    next_id: u32,
    participants: Vec<Participant>,
    sum: Box<[i32]>,
}

impl Mixer {
    /// A mixer for frames of `frame` samples (160 for 20 ms at 8 kHz, 320 at 16 kHz).
    pub fn new(frame: usize) -> Self {
        Self {
            frame,
            next_id: 0,
            participants: Vec::new(),
            sum: vec![0; frame].into_boxed_slice(),
        }
    }

    /// Adds a participant (allocates its buffers).
    pub fn join(&mut self) -> ParticipantId {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let n = self.frame;
        self.participants.push(Participant {
            id,
            gain: UNITY,
            muted: false,
            deaf: false,
            contribution: vec![0; n].into_boxed_slice(),
            whisper: vec![0; n].into_boxed_slice(),
            has_whisper: false,
            has_input: false,
            out: vec![0; n].into_boxed_slice(),
        });
        id
    }

    /// Removes a participant.
    pub fn leave(&mut self, id: ParticipantId) {
        self.participants.retain(|p| p.id != id);
    }

    /// How many participants there are.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    fn get(&mut self, id: ParticipantId) -> Option<&mut Participant> {
        self.participants.iter_mut().find(|p| p.id == id)
    }

    /// Sets a participant's input gain in dB (clamped to -40..=+12).
    pub fn set_gain_db(&mut self, id: ParticipantId, db: f32) {
        if let Some(p) = self.get(id) {
            p.gain = (UNITY as f32 * 10f32.powf(db.clamp(-40.0, 12.0) / 20.0)).round() as i32;
        }
    }

    /// Mutes (the others do not hear it) or unmutes a participant.
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) {
        if let Some(p) = self.get(id) {
            p.muted = muted;
        }
    }

    /// Makes a participant deaf (hears nothing, whispers included) or not.
    pub fn set_deaf(&mut self, id: ParticipantId, deaf: bool) {
        if let Some(p) = self.get(id) {
            p.deaf = deaf;
        }
    }

    /// Gives a participant's input for this tick (shorter frames are zero-padded).
    pub fn put(&mut self, id: ParticipantId, frame: &[i16]) {
        if let Some(p) = self.get(id) {
            let gain = p.gain;
            for (c, s) in p
                .contribution
                .iter_mut()
                .zip(frame.iter().chain(std::iter::repeat(&0)))
            {
                *c = (i32::from(*s) * gain) >> 12;
            }
            p.has_input = true;
        }
    }

    /// Gives a source that only this participant hears this tick.
    pub fn whisper(&mut self, id: ParticipantId, frame: &[i16]) {
        if let Some(p) = self.get(id) {
            for (w, s) in p
                .whisper
                .iter_mut()
                .zip(frame.iter().chain(std::iter::repeat(&0)))
            {
                *w = *s;
            }
            p.has_whisper = true;
        }
    }

    /// Mixes this tick: each participant's output is the others' sum (minus its own
    /// contribution) plus its whisper; inputs and whispers are then cleared for the
    /// next tick. Read the outputs with [`Mixer::output`].
    pub fn mix(&mut self) {
        self.sum.fill(0);
        for p in &self.participants {
            if p.has_input && !p.muted {
                for (s, c) in self.sum.iter_mut().zip(p.contribution.iter()) {
                    *s += c;
                }
            }
        }
        for p in &mut self.participants {
            if p.deaf {
                p.out.fill(0);
            } else {
                let own = p.has_input && !p.muted;
                for i in 0..p.out.len() {
                    let mut v = self.sum[i];
                    if own {
                        v -= p.contribution[i];
                    }
                    if p.has_whisper {
                        v += i32::from(p.whisper[i]);
                    }
                    p.out[i] = v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                }
            }
            p.has_input = false;
            p.has_whisper = false;
        }
    }

    /// What a participant hears after the last [`Mixer::mix`].
    pub fn output(&self, id: ParticipantId) -> Option<&[i16]> {
        self.participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| &p.out[..])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn constant(v: i16) -> Vec<i16> {
        vec![v; 160]
    }

    #[test]
    fn each_hears_the_others_minus_itself() {
        let mut m = Mixer::new(160);
        let (a, b, c) = (m.join(), m.join(), m.join());
        m.put(a, &constant(100));
        m.put(b, &constant(20));
        m.put(c, &constant(3));
        m.mix();
        assert_eq!(m.output(a).unwrap()[0], 23);
        assert_eq!(m.output(b).unwrap()[0], 103);
        assert_eq!(m.output(c).unwrap()[0], 120);
        // Nobody talks in the next tick: silence.
        m.mix();
        assert_eq!(m.output(a).unwrap()[0], 0);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let mut m = Mixer::new(160);
        let ids: Vec<_> = (0..4).map(|_| m.join()).collect();
        for id in &ids {
            m.put(*id, &constant(20_000));
        }
        m.mix();
        assert_eq!(m.output(ids[0]).unwrap()[5], i16::MAX, "60000 saturates");
        for id in &ids {
            m.put(*id, &constant(-20_000));
        }
        m.mix();
        assert_eq!(m.output(ids[0]).unwrap()[5], i16::MIN);
    }

    #[test]
    fn mute_deaf_gain_and_whisper() {
        let mut m = Mixer::new(160);
        let (caller, agent, supervisor) = (m.join(), m.join(), m.join());
        m.set_muted(supervisor, true);
        m.set_deaf(caller, true);
        m.set_gain_db(agent, -6.0);
        m.put(caller, &constant(1000));
        m.put(agent, &constant(1000));
        m.put(supervisor, &constant(777));
        m.whisper(agent, &constant(50));
        m.mix();
        assert_eq!(m.output(caller).unwrap()[0], 0, "deaf");
        assert_eq!(
            m.output(agent).unwrap()[0],
            1050,
            "the caller, not the muted supervisor, plus the whisper"
        );
        assert_eq!(
            m.output(supervisor).unwrap()[0],
            1000 + 501,
            "the caller and the agent at -6 dB"
        );
        m.leave(caller);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn known_signals_sum_sample_by_sample() {
        let mut m = Mixer::new(160);
        let (a, b, c) = (m.join(), m.join(), m.join());
        let ramp: Vec<i16> = (0..160).map(|i| i as i16 * 10).collect();
        let square: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 500 } else { -500 })
            .collect();
        m.put(a, &ramp);
        m.put(b, &square);
        m.mix();
        let heard = m.output(c).unwrap();
        for i in 0..160 {
            assert_eq!(heard[i], ramp[i] + square[i]);
        }
        assert_eq!(m.output(a).unwrap(), &square[..]);
        assert_eq!(m.output(b).unwrap(), &ramp[..]);
    }
}
