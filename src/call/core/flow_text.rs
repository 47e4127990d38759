//! What of the running flow its activeflow row shows (the current action and the
//! latest executed ones), kept as JSON text: each action is written out once, when
//! it becomes current or is executed, and a snapshot of the row shares that text
//! instead of copying a tree of JSON values.

use std::collections::VecDeque;

use api::store::json::JsonText;
use flow_runtime::ActionId;
use flow_runtime::interpreter::{Activeflow, MAX_EXECUTED_KEPT};
use serde_json::value::RawValue;

use super::ActiveflowRow;

/// The flow's actions as the row last showed them.
#[derive(Default)]
pub(super) struct FlowText {
    /// How many of the flow's executed actions have been written out.
    written: u64,
    /// The latest executed actions (at most [`MAX_EXECUTED_KEPT`]), oldest first.
    executed: VecDeque<Box<RawValue>>,
    /// The action the row shows as current.
    current: Option<ActionId>,
}

impl FlowText {
    /// Starts over for a new activeflow (a chained flow lists its own actions).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Brings `row`'s current and executed actions up to `flow`.
    pub fn update(&mut self, flow: &Activeflow, row: &mut ActiveflowRow) {
        let current = flow.current_action();
        if current.map(|a| &a.id) != self.current.as_ref() {
            row.current_action =
                current.map_or_else(JsonText::empty_object, |a| JsonText::of(&a.to_json()));
            self.current = current.map(|a| a.id.clone());
        }
        // Only the actions executed since the last write are written out; the flow
        // itself keeps the latest MAX_EXECUTED_KEPT, and so does the row.
        let count = flow.executed_count();
        let kept = flow.executed_actions().len();
        let new = usize::try_from(count.saturating_sub(self.written)).map_or(kept, |n| n.min(kept));
        if new == 0 {
            // The row's list (empty for a new activeflow) is up to date.
            return;
        }
        for action in flow.executed_actions().skip(kept - new) {
            match serde_json::value::to_raw_value(&action.to_json()) {
                Ok(raw) => self.executed.push_back(raw),
                Err(e) => tracing::warn!(error = %e, "an executed action could not be written"),
            }
        }
        let excess = self.executed.len().saturating_sub(MAX_EXECUTED_KEPT);
        self.executed.drain(..excess);
        self.written = count;
        row.executed_actions = JsonText::of(&self.executed);
    }
}
