//! Media forks: a leg's audio (in, out or both) tapped as 16 kHz 20 ms frames for AI
//! and transcription. The media side pushes into a bounded lock-free ring that drops
//! the oldest frame when the reader lags, so it never blocks and never allocates; the
//! reader takes frames as they come, by polling or awaiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use tokio::sync::Notify;

/// Samples in a forked frame: 20 ms at 16 kHz.
pub const FORK_FRAME: usize = 320;

/// Which way the audio went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the peer (what the caller says).
    In,
    /// To the peer (what the caller hears).
    Out,
}

/// Which directions a fork wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkDirections {
    /// Only what the peer sends.
    In,
    /// Only what the peer hears.
    Out,
    /// Both.
    Both,
}

impl ForkDirections {
    fn wants(self, d: Direction) -> bool {
        matches!(
            (self, d),
            (Self::Both, _) | (Self::In, Direction::In) | (Self::Out, Direction::Out)
        )
    }
}

/// One forked frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkFrame {
    /// Its direction.
    pub direction: Direction,
    /// Its place in the leg's stream, in 20 ms frames.
    pub index: u64,
    /// The audio.
    pub samples: [i16; FORK_FRAME],
}

struct Shared {
    ring: ArrayQueue<ForkFrame>,
    notify: Notify,
    dropped: AtomicU64,
    closed: AtomicBool,
}

/// The media side of a fork.
pub struct ForkTap {
    shared: Arc<Shared>,
    directions: ForkDirections,
}

/// The reading side of a fork.
pub struct ForkReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ForkTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkTap")
            .field("directions", &self.directions)
            .finish()
    }
}

impl std::fmt::Debug for ForkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkReader")
            .field("queued", &self.shared.ring.len())
            .finish()
    }
}

/// A fork holding up to `capacity` frames (50 is a second).
pub fn fork(directions: ForkDirections, capacity: usize) -> (ForkTap, ForkReader) {
    let shared = Arc::new(Shared {
        ring: ArrayQueue::new(capacity.max(1)),
        notify: Notify::new(),
        dropped: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    });
    (
        ForkTap {
            shared: shared.clone(),
            directions,
        },
        ForkReader { shared },
    )
}

impl ForkTap {
    /// Offers a frame; never blocks. A full ring drops its oldest frame.
    pub fn push(&self, direction: Direction, index: u64, samples: &[i16; FORK_FRAME]) {
        if !self.directions.wants(direction) {
            return;
        }
        if self
            .shared
            .ring
            .force_push(ForkFrame {
                direction,
                index,
                samples: *samples,
            })
            .is_some()
        {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.notify.notify_one();
    }

    /// Whether the reader is gone (the fork can be removed).
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.shared) < 2
    }
}

impl Drop for ForkTap {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.notify.notify_one();
    }
}

impl ForkReader {
    /// The oldest frame waiting, if any.
    pub fn try_recv(&self) -> Option<ForkFrame> {
        self.shared.ring.pop()
    }

    /// The next frame; `None` once the leg has stopped the fork and the ring is empty.
    pub async fn recv(&self) -> Option<ForkFrame> {
        loop {
            if let Some(f) = self.shared.ring.pop() {
                return Some(f);
            }
            if self.shared.closed.load(Ordering::Acquire) {
                return self.shared.ring.pop();
            }
            self.shared.notify.notified().await;
        }
    }

    /// Frames dropped because the reader lagged.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: i16) -> [i16; FORK_FRAME] {
        [v; FORK_FRAME]
    }

    #[test]
    fn a_lagging_reader_loses_the_oldest_frames_and_is_told() {
        let (tap, reader) = fork(ForkDirections::Both, 3);
        for i in 0..5 {
            tap.push(Direction::In, i, &frame(i as i16));
        }
        assert_eq!(reader.dropped(), 2);
        let got: Vec<u64> = std::iter::from_fn(|| reader.try_recv())
            .map(|f| f.index)
            .collect();
        assert_eq!(got, [2, 3, 4]);
    }

    #[test]
    fn only_the_wanted_direction_is_forked() {
        let (tap, reader) = fork(ForkDirections::In, 8);
        tap.push(Direction::Out, 0, &frame(1));
        tap.push(Direction::In, 1, &frame(2));
        assert_eq!(
            reader.try_recv().map(|f| (f.direction, f.samples[0])),
            Some((Direction::In, 2))
        );
        assert!(reader.try_recv().is_none());
    }

    #[tokio::test]
    async fn an_awaiting_reader_is_woken_and_sees_the_end() {
        let (tap, reader) = fork(ForkDirections::Both, 8);
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Some(f) = reader.recv().await {
                assert_eq!(f.index, n);
                n += 1;
            }
            n
        });
        let media = std::thread::spawn(move || {
            for i in 0..5 {
                tap.push(Direction::Out, i, &frame(0));
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            assert!(!tap.is_abandoned());
        });
        media.join().expect("media thread");
        assert_eq!(task.await.expect("reader"), 5);
    }
}
