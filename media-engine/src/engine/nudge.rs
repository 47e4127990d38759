//! Waking a worker for its urgent commands (`Command::urgent`; the others wait for
//! its tick) once per batch: each wake is a system call (an eventfd write) on the
//! sender's side and a wake-up on the worker's. A command sent while an earlier wake
//! is still outstanding rides on it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::Waker;

/// The sending side: wakes the worker unless a wake is already on its way.
#[derive(Debug)]
pub(crate) struct Nudge {
    waker: Waker,
    pending: Arc<AtomicBool>,
}

/// The worker's side: says the wake arrived, before the commands are read.
#[derive(Debug)]
pub(crate) struct Nudged(Arc<AtomicBool>);

impl Nudge {
    /// A nudge for `waker` and the worker's half of it.
    pub fn new(waker: Waker) -> (Self, Nudged) {
        let pending = Arc::new(AtomicBool::new(false));
        let nudge = Self {
            waker,
            pending: pending.clone(),
        };
        (nudge, Nudged(pending))
    }

    /// Called after a command was queued: wakes the worker unless a wake it has not
    /// taken yet will find the command anyway.
    pub fn wake(&self) -> io::Result<()> {
        // Acquire-release: the command queued before is visible to the worker that
        // takes this flag down (Nudged::arrived) and then reads the queue.
        if self.pending.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.waker.wake()
    }
}

impl Nudged {
    /// The worker woke for commands: every command queued before this returns is
    /// read by the reading that follows; later ones wake the worker again.
    pub fn arrived(&self) {
        self.0.swap(false, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    fn woken(poll: &mut Poll) -> usize {
        let mut events = Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .expect("poll");
        events.iter().count()
    }

    #[test]
    fn one_wake_until_the_worker_takes_it_then_the_next_one_wakes_again() {
        let mut poll = Poll::new().expect("poll");
        let waker = Waker::new(poll.registry(), Token(0)).expect("waker");
        let (nudge, nudged) = Nudge::new(waker);
        nudge.wake().expect("wake");
        nudge.wake().expect("rides on the first");
        assert_eq!(woken(&mut poll), 1);
        nudged.arrived();
        assert_eq!(woken(&mut poll), 0, "nothing new");
        nudge.wake().expect("wake");
        assert_eq!(
            woken(&mut poll),
            1,
            "a command after the worker took the wake"
        );
    }
}
