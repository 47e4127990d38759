//! `external_media_start` / `external_media_stop` in the core: the options read
//! (a bad one fails the action, naming it), the external media started on the
//! caller's session and listed on the call (`external_media_ids`), the action
//! done once the peer is connected (or, in server mode, once we listen: the
//! address is in `voipbin.external_media.local_address`) or failed with the cause
//! (the flow goes on either way), and every one stopped by `external_media_stop`. They end with the
//! call by themselves: its session's end ends their streams.

use flow_runtime::ActionId;
use flow_runtime::interpreter::{Event, Outcome};

use api::call_store::{Verb, Write};

use super::{CallCore, ExternalMediaCommand, ExternalMediaOptions, ExternalMediaStatus, Output};

impl CallCore {
    /// `external_media_start`: done when [`Self::external_media_status`] hears of it.
    pub(super) fn start_external_media(&mut self, action: ActionId, option: &serde_json::Value) {
        let options = match ExternalMediaOptions::parse(option) {
            Ok(options) => options,
            Err(why) => return self.complete(action, Outcome::Failed(why)),
        };
        let Some(leg) = self.leg.media else {
            return self.complete(
                action,
                Outcome::Failed("the call has no media yet: answer it first".into()),
            );
        };
        let id = uuid::Uuid::now_v7().to_string();
        self.external_media.insert(id.clone(), Some(action));
        self.outputs
            .push_back(Output::ExternalMedia(ExternalMediaCommand::Start {
                id,
                session: leg.id,
                options: Box::new(options),
            }));
    }

    /// `external_media_stop`: every external media of the call stops.
    pub(super) fn stop_external_media(&mut self) {
        let ids: Vec<String> = self.external_media.drain().map(|(id, _)| id).collect();
        if !ids.is_empty() {
            self.outputs
                .push_back(Output::ExternalMedia(ExternalMediaCommand::Stop(ids)));
        }
    }

    /// What became of external media `id`.
    pub(super) fn external_media_status(&mut self, id: String, status: ExternalMediaStatus) {
        match status {
            ExternalMediaStatus::Started { local } => {
                tracing::info!(external_media_id = %id, %local, "external media connected");
                let Some(waiting) = self.external_media.get_mut(&id) else {
                    // Stopped while it connected: the shell stops it.
                    return;
                };
                let action = waiting.take();
                // A server-mode peer learns where to come from these (a
                // webhook_send after the action can carry them).
                self.flow_event(Event::Variables(vec![
                    ("voipbin.external_media.id".into(), id.clone()),
                    (
                        "voipbin.external_media.local_address".into(),
                        local.to_string(),
                    ),
                ]));
                self.row.external_media_ids.push(id);
                self.row.tm_update = Some(self.stamps.now());
                self.outputs.push_back(Output::Write(Write::call(
                    &self.row,
                    false,
                    &[Verb::Updated],
                )));
                if let Some(action) = action {
                    self.complete(action, Outcome::Done);
                }
            }
            ExternalMediaStatus::Failed(why) => {
                if let Some(Some(action)) = self.external_media.remove(&id) {
                    self.complete(action, Outcome::Failed(format!("external media: {why}")));
                }
            }
            ExternalMediaStatus::Ended(why) => {
                tracing::info!(external_media_id = %id, %why, "external media ended");
                self.external_media.remove(&id);
            }
        }
    }
}
