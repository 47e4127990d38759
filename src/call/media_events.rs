//! The media engine reports on one channel; each call actor wants only its own leg's
//! events. A thread reads the engine's channel and hands each event to the actor that
//! registered the leg.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use media_engine::engine::{MediaEvent, SessionId};
use tokio::sync::mpsc;

/// Routes media events to the call actors, by leg.
#[derive(Clone, Default)]
pub struct MediaEvents {
    routes: Arc<Mutex<HashMap<SessionId, mpsc::UnboundedSender<MediaEvent>>>>,
}

/// The leg an event is about.
pub(crate) fn session_of(event: &MediaEvent) -> Option<SessionId> {
    Some(match event {
        MediaEvent::RtpTimeout { session }
        | MediaEvent::Closed { session, .. }
        | MediaEvent::Failed { session, .. }
        | MediaEvent::DigitsSent { session, .. }
        | MediaEvent::PlayFinished { session, .. }
        | MediaEvent::DtmfReceived { session, .. }
        | MediaEvent::SpeechStarted { session, .. }
        | MediaEvent::SpeechEnded { session, .. }
        | MediaEvent::RecordingFinished { session, .. } => *session,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

impl MediaEvents {
    /// Starts routing the engine's events.
    pub fn start(events: Receiver<MediaEvent>) -> Self {
        let me = Self::default();
        let routes = me.routes.clone();
        std::thread::Builder::new()
            .name("media-events".into())
            .spawn(move || {
                while let Ok(event) = events.recv() {
                    let Some(session) = session_of(&event) else {
                        continue;
                    };
                    let closed = matches!(event, MediaEvent::Closed { .. });
                    let Ok(mut map) = routes.lock() else {
                        return;
                    };
                    if let Some(tx) = map.get(&session)
                        && tx.send(event).is_err()
                    {
                        // The call's task has ended; what its leg reports now
                        // (its closing statistics) has no one to read it.
                        tracing::trace!(%session, "a media event after its call ended");
                    }
                    if closed {
                        map.remove(&session);
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the media event router"));
        me
    }

    /// Sends the events of `session` to `to` from now on, until it closes (a call
    /// gets all its legs' events on one channel).
    pub fn register_to(&self, session: SessionId, to: mpsc::UnboundedSender<MediaEvent>) {
        match self.routes.lock() {
            Ok(mut map) => map.insert(session, to),
            Err(poisoned) => poisoned.into_inner().insert(session, to),
        };
    }
}
