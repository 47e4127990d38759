//! What the engine reports ([`MediaEvent`]) and how a worker gets each event to its
//! reader: a leg's own [`EventTarget`], or the engine's shared stream with an
//! overflow that never blocks the media path ([`EventSink`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};

use super::{DtmfSource, PlayId, SessionId, SessionStats};

/// What the engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// No RTP came for the leg's timeout (sent once until RTP resumes).
    RtpTimeout {
        /// The leg.
        session: SessionId,
    },
    /// The leg was closed; its final statistics.
    Closed {
        /// The leg.
        session: SessionId,
        /// Its statistics.
        stats: SessionStats,
    },
    /// A playback ended: it ran out (`stopped` false) or was stopped or replaced.
    PlayFinished {
        /// The leg.
        session: SessionId,
        /// The playback.
        play: PlayId,
        /// Whether a stop or a new source ended it.
        stopped: bool,
    },
    /// A key press from the peer.
    DtmfReceived {
        /// The leg.
        session: SessionId,
        /// The key: 0-9, *, #, A-D.
        key: char,
        /// How long it was held.
        duration_ms: u32,
        /// How it came.
        source: DtmfSource,
    },
    /// The peer started speaking (voice activity, the base for barge-in): told as
    /// the first loud G.711 packet arrives, or when the VAD hears speech
    /// ([`crate::onset`]).
    SpeechStarted {
        /// The leg.
        session: SessionId,
        /// When, in ms since the leg opened.
        at_ms: u64,
    },
    /// The peer stopped speaking (after the VAD's hangover), or a start the VAD
    /// did not confirm is taken back.
    SpeechEnded {
        /// The leg.
        session: SessionId,
        /// When, in ms since the leg opened.
        at_ms: u64,
    },
    /// A recording was closed (stopped, or the leg closed); the file is complete.
    RecordingFinished {
        /// The leg.
        session: SessionId,
        /// The file.
        path: std::path::PathBuf,
        /// Why it is incomplete, if it is.
        error: Option<String>,
    },
    /// The key presses of [`Engine::send_digits`](super::Engine::send_digits) have all been sent, or could not
    /// be.
    DigitsSent {
        /// The leg.
        session: SessionId,
        /// Why they were not sent, if they were not.
        error: Option<String>,
    },
    /// A command could not be carried out.
    Failed {
        /// The leg.
        session: SessionId,
        /// What went wrong.
        reason: String,
    },
}

impl MediaEvent {
    /// The leg the event is about.
    pub fn session(&self) -> SessionId {
        match self {
            MediaEvent::RtpTimeout { session }
            | MediaEvent::Closed { session, .. }
            | MediaEvent::PlayFinished { session, .. }
            | MediaEvent::DtmfReceived { session, .. }
            | MediaEvent::SpeechStarted { session, .. }
            | MediaEvent::SpeechEnded { session, .. }
            | MediaEvent::RecordingFinished { session, .. }
            | MediaEvent::DigitsSent { session, .. }
            | MediaEvent::Failed { session, .. } => *session,
        }
    }
}

/// Where one leg's events go ([`Engine::open_to`](super::Engine::open_to)) instead of the engine's shared
/// stream: called on the leg's media worker, in order, until the leg's
/// [`MediaEvent::Closed`]. It must not block (a send on an unbounded channel is
/// right). A call actor gets its legs' events this way with no thread in between.
pub type EventTarget = Box<dyn FnMut(MediaEvent) + Send>;

/// Where a worker reports events. A full queue (a reader that fell behind) never
/// blocks the media path and never loses an event a call waits for (a prompt
/// finished, a key, a timeout): the event waits in the worker's own overflow, in
/// order, and goes out on a later tick ([`EventSink::flush`]); each one that had
/// to wait is counted in [`Engine::events_deferred`](super::Engine::events_deferred). The overflow allocates only
/// while the reader is behind.
///
/// A leg opened with its own [`EventTarget`] gets its events there, directly.
pub(crate) struct EventSink {
    tx: SyncSender<MediaEvent>,
    deferred: Arc<AtomicU64>,
    overflow: std::cell::RefCell<std::collections::VecDeque<MediaEvent>>,
    /// The legs of this worker that have targets of their own.
    targets: std::cell::RefCell<std::collections::HashMap<SessionId, EventTarget>>,
}

impl Clone for EventSink {
    /// Another worker's sink: the same queue, an overflow of its own.
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            deferred: self.deferred.clone(),
            overflow: Default::default(),
            targets: Default::default(),
        }
    }
}

impl EventSink {
    /// A sink onto the shared stream `tx`, counting in `deferred` each event that
    /// had to wait.
    pub(crate) fn new(tx: SyncSender<MediaEvent>, deferred: Arc<AtomicU64>) -> Self {
        Self {
            tx,
            deferred,
            overflow: Default::default(),
            targets: Default::default(),
        }
    }

    /// Sends `session`'s events to `target` until it closes.
    pub(crate) fn route(&self, session: SessionId, target: EventTarget) {
        self.targets.borrow_mut().insert(session, target);
    }

    /// Drops `session`'s target (a leg that never opened).
    pub(crate) fn forget(&self, session: SessionId) {
        self.targets.borrow_mut().remove(&session);
    }

    /// Reports `event`: to its leg's own target, or after any that are waiting.
    pub(crate) fn send(&self, event: MediaEvent) {
        let session = event.session();
        let mut targets = self.targets.borrow_mut();
        if let Some(target) = targets.get_mut(&session) {
            let closed = matches!(event, MediaEvent::Closed { .. });
            target(event);
            if closed {
                targets.remove(&session);
            }
            return;
        }
        drop(targets);
        self.flush();
        let mut overflow = self.overflow.borrow_mut();
        if !overflow.is_empty() {
            self.deferred.fetch_add(1, Ordering::Relaxed);
            overflow.push_back(event);
            return;
        }
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(event)) => {
                self.deferred.fetch_add(1, Ordering::Relaxed);
                overflow.push_back(event);
            }
            // Nobody reads events any more (the engine is being dropped).
            Err(mpsc::TrySendError::Disconnected(_)) => {}
        }
    }

    /// Hands waiting events to the queue while it has room.
    pub(crate) fn flush(&self) {
        let mut overflow = self.overflow.borrow_mut();
        while let Some(event) = overflow.pop_front() {
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::TrySendError::Full(event)) => {
                    overflow.push_front(event);
                    return;
                }
                Err(mpsc::TrySendError::Disconnected(_)) => {
                    overflow.clear();
                    return;
                }
            }
        }
    }
}
