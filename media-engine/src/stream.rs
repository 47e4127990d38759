//! Raw PCM streams for TTS and AI audio: a producer (a provider's task) writes samples
//! at the leg's rate; the media tick takes a frame at a time. The two meet in a
//! bounded lock-free queue of 80-sample chunks (every frame length, 160, 320 or 960,
//! is a multiple), so the media side never waits. A stop (barge-in) takes effect at the
//! next frame: the queued audio is dropped there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

/// Samples per queued chunk.
pub const CHUNK: usize = 80;

struct Shared {
    queue: ArrayQueue<[i16; CHUNK]>,
    stopped: AtomicBool,
    finished: AtomicBool,
    /// Chunks the media side has played.
    played: AtomicU64,
}

/// The writing end of a stream.
pub struct StreamWriter {
    shared: Arc<Shared>,
    partial: [i16; CHUNK],
    filled: usize,
    /// Chunks queued so far.
    queued: u64,
}

/// The media end of a stream.
pub struct StreamSource {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("queued_chunks", &self.shared.queue.len())
            .finish()
    }
}

impl std::fmt::Debug for StreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSource")
            .field("queued_chunks", &self.shared.queue.len())
            .finish()
    }
}

/// What a frame got from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFill {
    /// A full frame of audio.
    Audio,
    /// Not enough audio yet: the frame is silence where it ran out.
    Underrun,
    /// The writer finished and everything was played.
    Finished,
    /// Stopped: the frame is silence and the stream is over.
    Stopped,
}

/// A stream that holds up to `capacity_samples` of audio ahead of playback.
pub fn pcm_stream(capacity_samples: usize) -> (StreamWriter, StreamSource) {
    let shared = Arc::new(Shared {
        queue: ArrayQueue::new(capacity_samples.div_ceil(CHUNK).max(1)),
        stopped: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        played: AtomicU64::new(0),
    });
    (
        StreamWriter {
            shared: shared.clone(),
            partial: [0; CHUNK],
            filled: 0,
            queued: 0,
        },
        StreamSource { shared },
    )
}

impl StreamWriter {
    /// Queues as many of `samples` as fit; returns how many were taken (the rest is
    /// for later: the queue is full, which is the producer's backpressure).
    pub fn write(&mut self, samples: &[i16]) -> usize {
        let mut taken = 0;
        for &s in samples {
            if self.filled == CHUNK {
                if self.shared.queue.push(self.partial).is_err() {
                    return taken;
                }
                self.queued += 1;
                self.filled = 0;
            }
            self.partial[self.filled] = s;
            self.filled += 1;
            taken += 1;
        }
        // A chunk that is full goes now, not with the next sample: the last of the
        // audio must not wait for more to play (a full queue keeps it for later).
        if self.filled == CHUNK && self.shared.queue.push(self.partial).is_ok() {
            self.queued += 1;
            self.filled = 0;
        }
        taken
    }

    /// Queues the last partial chunk now, padded with silence (under 10 ms at 8
    /// kHz), so that everything written so far can play; false when the queue is
    /// full.
    pub fn flush(&mut self) -> bool {
        if self.filled > 0 {
            self.partial[self.filled..].fill(0);
            if self.shared.queue.push(self.partial).is_err() {
                return false;
            }
            self.queued += 1;
            self.filled = 0;
        }
        true
    }

    /// Chunks queued so far (each [`CHUNK`] samples).
    pub fn queued_chunks(&self) -> u64 {
        self.queued
    }

    /// Chunks the media side has played so far: audio queued before a point has
    /// been heard once this reaches the [`StreamWriter::queued_chunks`] of then.
    pub fn played_chunks(&self) -> u64 {
        self.shared.played.load(Ordering::Acquire)
    }

    /// Whether the media side stopped the stream (the producer can give up).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Ends the stream: the last partial chunk (padded with silence) is queued, and the
    /// source reports Finished once it is played. False if the queue is still full.
    pub fn finish(&mut self) -> bool {
        if !self.flush() {
            return false;
        }
        self.shared.finished.store(true, Ordering::Release);
        true
    }
}

impl StreamSource {
    /// Stops playback at the next frame (barge-in, a stop command).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
    }

    /// A handle that stops this stream from elsewhere (the session's control side).
    pub fn stopper(&self) -> StreamStopper {
        StreamStopper {
            shared: self.shared.clone(),
        }
    }

    /// Fills one frame (a multiple of [`CHUNK`] samples).
    pub fn fill(&mut self, frame: &mut [i16]) -> StreamFill {
        if self.shared.stopped.load(Ordering::Acquire) {
            while self.shared.queue.pop().is_some() {}
            frame.fill(0);
            return StreamFill::Stopped;
        }
        let finished = self.shared.finished.load(Ordering::Acquire);
        let mut got = 0;
        for chunk in frame.chunks_mut(CHUNK) {
            match self.shared.queue.pop() {
                Some(c) => {
                    chunk.copy_from_slice(&c[..chunk.len()]);
                    got += 1;
                    self.shared.played.fetch_add(1, Ordering::Release);
                }
                None => chunk.fill(0),
            }
        }
        match (got * CHUNK >= frame.len(), got == 0 && finished) {
            (_, true) => StreamFill::Finished,
            (true, _) => StreamFill::Audio,
            _ => StreamFill::Underrun,
        }
    }
}

/// Stops a stream from another thread.
#[derive(Clone)]
pub struct StreamStopper {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StreamStopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamStopper")
    }
}

impl StreamStopper {
    /// Stops the stream at its next frame.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_chunks_are_queued_at_once_and_counted_as_they_play() {
        let (mut w, mut src) = pcm_stream(8000);
        assert_eq!(w.write(&[7i16; 160]), 160);
        assert_eq!(w.queued_chunks(), 2, "no chunk waits for a next sample");
        assert_eq!(w.played_chunks(), 0);
        let mut frame = [0i16; 160];
        assert_eq!(src.fill(&mut frame), StreamFill::Audio);
        assert_eq!(w.played_chunks(), 2);
        assert_eq!(w.write(&[1i16; 10]), 10);
        assert!(w.flush());
        assert_eq!(w.queued_chunks(), 3, "the partial chunk, padded");
    }

    #[test]
    fn audio_flows_in_order_then_finishes() {
        let (mut w, mut src) = pcm_stream(8000);
        let samples: Vec<i16> = (0..400).collect();
        assert_eq!(w.write(&samples), 400);
        assert!(w.finish());
        let mut frame = [0i16; 160];
        assert_eq!(src.fill(&mut frame), StreamFill::Audio);
        assert_eq!(frame[0], 0);
        assert_eq!(frame[159], 159);
        assert_eq!(src.fill(&mut frame), StreamFill::Audio);
        // 80 samples left, then silence: a partial last frame.
        assert_eq!(src.fill(&mut frame), StreamFill::Underrun);
        assert_eq!(frame[79], 399);
        assert_eq!(frame[80], 0);
        assert_eq!(src.fill(&mut frame), StreamFill::Finished);
    }

    #[test]
    fn a_full_queue_pushes_back_on_the_producer() {
        let (mut w, _src) = pcm_stream(160);
        let taken = w.write(&[1; 1000]);
        // Two chunks queued and one being filled.
        assert_eq!(taken, 240);
    }

    #[test]
    fn stop_takes_effect_at_the_next_frame_from_another_thread() {
        let (mut w, mut src) = pcm_stream(48_000);
        w.write(&[1000; 16_000]);
        let mut frame = [0i16; 320];
        assert_eq!(src.fill(&mut frame), StreamFill::Audio);
        let stopper = src.stopper();
        std::thread::spawn(move || stopper.stop())
            .join()
            .expect("stopper thread");
        assert_eq!(src.fill(&mut frame), StreamFill::Stopped);
        assert!(frame.iter().all(|s| *s == 0));
        assert!(w.is_stopped());
        assert_eq!(src.fill(&mut frame), StreamFill::Stopped);
    }
}
