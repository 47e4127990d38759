//! Stacks of actions and the cursor's moves between them (reference section 2.4).
//!
//! The main stack holds the flow's actions. Nested actions (fetch, fetch_flow, an
//! interrupt, a service) push a stack whose return address is the action that pushed
//! it; when a stack runs out, execution goes on after its return address. Jumps
//! search the current stack, then each stack below it, releasing the stacks they
//! leave. The current stack is therefore always the top one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::action::ActionKind;
use crate::model::action_id::FINISH;
use crate::model::{Action, ActionId};

/// The main stack's id, as the original names it.
pub const MAIN_STACK: &str = "00000000-0000-0000-0000-000000000001";

/// One stack of actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    /// Its id (the main stack's, a service's, or a fresh one).
    pub id: Arc<str>,
    /// Its actions, as loaded; shared, so running one copies nothing.
    pub actions: Vec<Arc<Action>>,
    /// Whether each action's option holds a `${...}` placeholder.
    needs_substitution: Vec<bool>,
    /// Jumps left of each goto, once it has jumped (the original writes the counter
    /// back into the stack's copy of the action; this is that copy's counter).
    loops_left: Vec<Option<i64>>,
    /// The index, in the stack below, of the action that pushed this one.
    pub return_index: Option<usize>,
}

impl Stack {
    fn new(id: String, actions: Vec<Action>, return_index: Option<usize>) -> Self {
        let needs_substitution = actions.iter().map(|a| a.kind.has_placeholder()).collect();
        let loops_left = vec![None; actions.len()];
        let actions = actions.into_iter().map(Arc::new).collect();
        Self {
            id: Arc::from(id),
            actions,
            needs_substitution,
            loops_left,
            return_index,
        }
    }
}

/// Why a jump failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("action {0} is not in this flow or any flow that called it")]
pub struct UnknownTarget(pub ActionId);

/// The stacks of an activeflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stacks(Vec<Stack>);

impl Stacks {
    /// The main stack with the flow's actions.
    pub fn new(actions: Vec<Action>) -> Self {
        Self(vec![Stack::new(MAIN_STACK.to_owned(), actions, None)])
    }

    /// The current (top) stack.
    pub fn top(&self) -> &Stack {
        // The main stack is never popped, so there is always a top.
        self.0.last().expect("the main stack is never popped")
    }

    /// How many stacks are open.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// The action at `index` of the top stack, and whether it needs substitution.
    pub fn action(&self, index: usize) -> Option<(&Arc<Action>, bool)> {
        let top = self.top();
        Some((
            top.actions.get(index)?,
            top.needs_substitution.get(index).copied().unwrap_or(false),
        ))
    }

    /// Takes one jump of the goto at `index` of the top stack: true when it jumps
    /// (it had jumps left), counting it down.
    pub fn take_loop(&mut self, index: usize) -> bool {
        let Some(top) = self.0.last_mut() else {
            return false;
        };
        let initial = match top.actions.get(index).map(|a| &a.kind) {
            Some(ActionKind::Goto(o)) => o.loop_count.unwrap_or(0),
            _ => return false,
        };
        let Some(left) = top.loops_left.get_mut(index) else {
            return false;
        };
        let remaining = left.unwrap_or(initial);
        if remaining <= 0 {
            return false;
        }
        *left = Some(remaining - 1);
        true
    }

    /// Pushes `actions` as a new top stack returning after the action at `from` of the
    /// current top. Returns the new stack's first index, or `None` when `actions` is
    /// empty (nothing is pushed).
    pub fn push(&mut self, id: String, actions: Vec<Action>, from: usize) -> Option<usize> {
        if actions.is_empty() {
            return None;
        }
        self.0.push(Stack::new(id, actions, Some(from)));
        Some(0)
    }

    /// Finds `target` in the top stack, then the stacks below, releasing the stacks
    /// above the one it is in. `Ok(None)` for the reserved finish id.
    pub fn find(&mut self, target: &ActionId) -> Result<Option<usize>, UnknownTarget> {
        if target.as_str() == FINISH {
            return Ok(None);
        }
        for depth in (0..self.0.len()).rev() {
            if let Some(index) = self.0[depth].actions.iter().position(|a| a.id == *target) {
                self.0.truncate(depth + 1);
                return Ok(Some(index));
            }
        }
        Err(UnknownTarget(target.clone()))
    }

    /// The position after the action at `index` of the top stack: its `next_id`, the
    /// following action, or (when the stack runs out) the position after the action
    /// that pushed it. `Ok(None)` when the main stack runs out.
    pub fn next_after(&mut self, index: usize) -> Result<Option<usize>, UnknownTarget> {
        let mut index = index;
        loop {
            let top = self.top();
            if let Some(next) = top.actions.get(index).and_then(|a| a.next_id.clone()) {
                return self.find(&next);
            }
            if index + 1 < top.actions.len() {
                return Ok(Some(index + 1));
            }
            match top.return_index {
                Some(ret) if self.0.len() > 1 => {
                    self.0.pop();
                    index = ret;
                }
                _ => return Ok(None),
            }
        }
    }

    /// The first action of the main stack, `None` for an empty flow.
    pub fn first(&self) -> Option<usize> {
        (!self.top().actions.is_empty()).then_some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_actions;
    use serde_json::json;

    fn stacks(v: serde_json::Value) -> Stacks {
        Stacks::new(parse_actions(&v).expect("valid"))
    }

    #[test]
    fn next_id_wins_over_order() {
        let mut s = stacks(
            json!([{"id": "a", "type": "answer", "next_id": "c"}, {"id": "b", "type": "beep"}, {"id": "c", "type": "beep"}]),
        );
        assert_eq!(s.next_after(0), Ok(Some(2)));
        assert_eq!(s.next_after(2), Ok(None), "the main stack ran out");
    }

    #[test]
    fn a_pushed_stack_returns_after_its_caller() {
        let mut s = stacks(json!([{"id": "a", "type": "answer"}, {"id": "b", "type": "beep"}]));
        let nested = parse_actions(&json!([{"id": "n1", "type": "beep"}])).expect("valid");
        assert_eq!(s.push("svc".into(), nested, 0), Some(0));
        assert_eq!(&*s.top().id, "svc");
        assert_eq!(s.next_after(0), Ok(Some(1)));
        assert_eq!(&*s.top().id, MAIN_STACK, "the exhausted stack was released");
    }

    #[test]
    fn jumps_search_down_and_release() {
        let mut s = stacks(json!([{"id": "a", "type": "answer"}, {"id": "b", "type": "beep"}]));
        let nested = parse_actions(
            &json!([{"id": "n1", "type": "goto", "option": {"target_id": "b", "loop_count": 1}}]),
        )
        .expect("valid");
        s.push("svc".into(), nested, 0);
        assert_eq!(s.find(&ActionId::new("b")), Ok(Some(1)));
        assert_eq!(s.depth(), 1);
        assert_eq!(
            s.find(&ActionId::new("zzz")),
            Err(UnknownTarget(ActionId::new("zzz")))
        );
    }
}
