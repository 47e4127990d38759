//! Live calls by id, so the API can reach their actors: hang up, stop or resume the
//! activeflow, interrupt with actions, change the media.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

/// What the API asks of a live call.
#[derive(Debug)]
pub enum Control {
    /// Hang it up (`POST /calls/{id}/hangup`).
    Hangup,
    /// Stop or resume its activeflow.
    Flow(api::FlowControl),
    /// Run these actions now, ahead of the flow's current one.
    Interrupt(serde_json::Value),
    /// Change its media (mute, hold, music on hold).
    Media(api::CallMedia),
    /// A media stream asks for the call's media session (the shell answers it,
    /// not the core).
    MediaStream(super::media_stream::Attach),
}

/// Live calls and their activeflows by id, so the API can reach their actors.
#[derive(Clone, Default)]
pub struct Registry {
    live: Arc<std::sync::Mutex<HashMap<String, mpsc::UnboundedSender<Control>>>>,
}

impl Registry {
    /// Registers a call's actor under the call's and its activeflow's ids.
    pub(super) fn add(
        &self,
        call_id: &str,
        activeflow_id: &str,
    ) -> mpsc::UnboundedReceiver<Control> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut m) = self.live.lock() {
            m.insert(call_id.to_owned(), tx.clone());
            m.insert(activeflow_id.to_owned(), tx);
            live_gauge(m.len());
        }
        rx
    }

    /// The call's actor now runs activeflow `to` in place of `from` (a chained
    /// flow): the API reaches it under the new id.
    pub(super) fn rename(&self, from: &str, to: &str) {
        if let Ok(mut m) = self.live.lock()
            && let Some(tx) = m.remove(from)
        {
            m.insert(to.to_owned(), tx);
        }
    }

    pub(super) fn remove(&self, ids: &[&str]) {
        if let Ok(mut m) = self.live.lock() {
            for id in ids {
                m.remove(*id);
            }
            live_gauge(m.len());
        }
    }

    /// Hangs up every live call (a shutdown), and waits up to `within` for their
    /// actors to finish, so each call gets its BYE and its final row.
    pub async fn hangup_all(&self, within: Duration) {
        let senders: Vec<mpsc::UnboundedSender<Control>> = self
            .live
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for tx in &senders {
            if tx.send(Control::Hangup).is_err() {
                // That call's task is finishing on its own.
                tracing::debug!("a call ended while the shutdown hung it up");
            }
        }
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.live.lock().map(|m| m.is_empty()).unwrap_or(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Hangs up the calls `ids` (a `call` action's chained calls, a groupcall's);
    /// one already over is passed by. `whose` names them in the log.
    pub(super) fn hangup_calls(&self, ids: Vec<String>, whose: &'static str) {
        for id in ids {
            if !self.send(&id, Control::Hangup) {
                tracing::debug!(call = %id, whose, "a call to hang up had ended already");
            }
        }
    }

    /// Asks the live call `call_id` for its media session, for a media stream.
    pub(super) fn attach_stream(&self, call_id: &str, attach: super::media_stream::Attach) -> bool {
        self.send(call_id, Control::MediaStream(attach))
    }

    fn send(&self, id: &str, what: Control) -> bool {
        self.live
            .lock()
            .ok()
            .and_then(|m| m.get(id).map(|tx| tx.send(what).is_ok()))
            .unwrap_or(false)
    }
}

impl api::CallControl for Registry {
    fn hangup(&self, call_id: &str) -> bool {
        self.send(call_id, Control::Hangup)
    }

    fn activeflow(&self, activeflow_id: &str, what: api::FlowControl) -> bool {
        self.send(activeflow_id, Control::Flow(what))
    }

    fn interrupt(&self, call_id: &str, actions: serde_json::Value) -> bool {
        self.send(call_id, Control::Interrupt(actions))
    }

    fn media(&self, call_id: &str, what: api::CallMedia) -> bool {
        self.send(call_id, Control::Media(what))
    }
}

/// `voipbin_calls_live` on /metrics: calls with a running actor (each is under two
/// ids, the call's and its activeflow's).
fn live_gauge(entries: usize) {
    metrics::gauge!("voipbin_calls_live").set((entries / 2) as f64);
}
