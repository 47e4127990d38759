//! Load-time validation of a parsed flow: the checks that need the whole flow
//! (jump targets, reachability, endless loops) and the value checks a type cannot
//! express (operators, enumerations, ranges).
//!
//! Errors stop a flow from being stored; warnings are reported and the flow is kept.
//! Jump targets outside the flow are warnings, not errors: a flow pulled in by
//! `fetch_flow` may jump to its caller's actions, as the original allows
//! (reference section 2.4, GetAction searches the return stacks).

use rustc_hash::FxHashMap;

use crate::model::action::{Action, ActionKind};
use crate::model::action_id::target_str;
use crate::model::finding::Finding;

/// The comparison operators of the condition actions.
pub const CONDITION_OPERATORS: &[&str] = &["==", "!=", ">", ">=", "<", "<="];

/// Validates parsed actions; returns every finding, errors and warnings.
pub fn validate(actions: &[Action]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, action) in actions.iter().enumerate() {
        check_values(index, action, &mut findings);
    }
    let graph = Graph::new(actions);
    graph.check_targets(actions, &mut findings);
    let reachable = graph.reachable();
    graph.check_reachable(actions, &reachable, &mut findings);
    graph.check_endless_loops(actions, &reachable, &mut findings);
    findings
}

/// The longest time an option may name: one day.
const MAX_TIME_MS: i64 = 86_400_000;

/// The times in milliseconds an action's option names, by field (`digits_send`'s
/// have ranges of their own, checked below).
fn times(kind: &ActionKind) -> [(&'static str, Option<i64>); 2] {
    const NONE: (&str, Option<i64>) = ("", None);
    match kind {
        ActionKind::Sleep(o) => [("duration", o.duration), NONE],
        ActionKind::AiTalk(o) => [("duration", o.duration), NONE],
        ActionKind::ChatbotTalk(o) => [("duration", o.duration), NONE],
        ActionKind::DigitsReceive(o) => [("duration", o.duration), NONE],
        ActionKind::Echo(o) | ActionKind::StreamEcho(o) => [("duration", o.duration), NONE],
        ActionKind::RecordingStart(o) => [("duration", o.duration), NONE],
        ActionKind::RecordVoice(o) => [
            ("duration", o.duration),
            ("silence_timeout", o.silence_timeout),
        ],
        ActionKind::Amd(o) => [("timeout", o.timeout), NONE],
        ActionKind::Connect(o) => [("ring_timeout", o.ring_timeout), NONE],
        _ => [NONE, NONE],
    }
}

/// Times must be 0 to a day: a negative `sleep` or `timeout` means nothing.
fn check_times(index: usize, action: &Action, out: &mut Vec<Finding>) {
    for (field, value) in times(&action.kind) {
        if let Some(n) = value
            && !(0..=MAX_TIME_MS).contains(&n)
        {
            out.push(Finding::error(
                index,
                Some(action.id.as_str()),
                &format!("option.{field}"),
                &format!("must be 0 to {MAX_TIME_MS} ms (a day), not {n}"),
            ));
        }
    }
}

/// Value checks for one action.
fn check_values(index: usize, action: &Action, out: &mut Vec<Finding>) {
    check_times(index, action, out);
    let id = Some(action.id.as_str());
    let mut err =
        |field: &str, message: String| out.push(Finding::error(index, id, field, &message));
    let anonymous_ok =
        |a: &Option<String>| matches!(a.as_deref(), None | Some("" | "yes" | "no" | "auto"));
    match &action.kind {
        ActionKind::Connect(o) if !anonymous_ok(&o.anonymous) => {
            err("option.anonymous", "must be \"\", yes, no or auto".into());
        }
        ActionKind::Call(o) if !anonymous_ok(&o.anonymous) => {
            err("option.anonymous", "must be \"\", yes, no or auto".into());
        }
        ActionKind::ConditionVariable(o) => {
            check_operator(o.condition.as_deref(), &mut err);
            if let Some(t) = o.value_type.as_deref()
                && !matches!(t, "string" | "number" | "length")
            {
                err(
                    "option.value_type",
                    format!("must be string, number or length, not {t:?}"),
                );
            }
        }
        ActionKind::ConditionDatetime(o) => {
            check_operator(o.condition.as_deref(), &mut err);
            if let Some(days) = &o.weekdays
                && days.iter().any(|d| !(0..=6).contains(d))
            {
                err(
                    "option.weekdays",
                    "weekdays are 0 (Sunday) to 6 (Saturday)".into(),
                );
            }
        }
        ActionKind::DigitsSend(o) => {
            if let Some(d) = &o.digits {
                if d.len() > 100 {
                    err("option.digits", "at most 100 keys".into());
                }
                if let Some(bad) = d
                    .chars()
                    .find(|c| !c.is_ascii_digit() && !"ABCD#*".contains(*c))
                {
                    err(
                        "option.digits",
                        format!("{bad:?} is not a DTMF key (0-9, A-D, #, *)"),
                    );
                }
            }
            if let Some(ms) = o.duration
                && !(100..=1000).contains(&ms)
            {
                err("option.duration", "must be between 100 and 1000 ms".into());
            }
            if let Some(ms) = o.interval
                && !(0..=5000).contains(&ms)
            {
                err("option.interval", "must be between 0 and 5000 ms".into());
            }
        }
        _ => {}
    }
}

fn check_operator(op: Option<&str>, err: &mut impl FnMut(&str, String)) {
    if let Some(op) = op
        && !CONDITION_OPERATORS.contains(&op)
    {
        err(
            "option.condition",
            format!("must be one of ==, !=, >, >=, <, <=, not {op:?}"),
        );
    }
}

/// Where control can go after each action.
struct Graph<'a> {
    index_of: FxHashMap<&'a str, usize>,
    /// Per action, the jumps it names: (field, target).
    named: Vec<Vec<(&'static str, &'a str)>>,
    /// Per action, the actions control can go to next.
    edges: Vec<Vec<usize>>,
}

/// The jumps an action can take, with the field that names each. A goto whose
/// `loop_count` never lets it jump is left out (it still names its target; see
/// [`named_targets`]).
fn jumps<'a>(action: &'a Action) -> Vec<(&'static str, &'a str)> {
    let mut out = Vec::new();
    let mut push = |field: &'static str, raw: Option<&'a str>| {
        if let Some(t) = raw.and_then(target_str) {
            out.push((field, t));
        }
    };
    match &action.kind {
        ActionKind::Goto(o) if o.loop_count.unwrap_or(0) > 0 => {
            push("option.target_id", o.target_id.as_deref())
        }
        ActionKind::Branch(o) => {
            push("option.default_target_id", o.default_target_id.as_deref());
            for target in o.target_ids.iter().flat_map(|m| m.values()) {
                push("option.target_ids", Some(target));
            }
        }
        ActionKind::ConditionCallDigits(o) => {
            push("option.false_target_id", o.false_target_id.as_deref())
        }
        ActionKind::ConditionCallStatus(o) => {
            push("option.false_target_id", o.false_target_id.as_deref())
        }
        ActionKind::ConditionDatetime(o) => {
            push("option.false_target_id", o.false_target_id.as_deref())
        }
        ActionKind::ConditionVariable(o) => {
            push("option.false_target_id", o.false_target_id.as_deref())
        }
        ActionKind::Amd(o) => {
            for (field, raw) in [
                ("option.machine_action", &o.machine_action),
                ("option.human_action", &o.human_action),
            ] {
                if !matches!(raw.as_deref(), Some("continue" | "hangup")) {
                    push(field, raw.as_deref());
                }
            }
        }
        _ => {}
    }
    out
}

/// Every target an action names, jumping or not, with its `next_id`.
fn named_targets(action: &Action) -> Vec<(&'static str, &str)> {
    let mut named = jumps(action);
    if let ActionKind::Goto(o) = &action.kind
        && o.loop_count.unwrap_or(0) <= 0
        && let Some(t) = o.target_id.as_deref().and_then(target_str)
    {
        named.push(("option.target_id", t));
    }
    if let Some(n) = &action.next_id {
        named.push(("next_id", n.as_str()));
    }
    named
}

/// Whether control can continue past `action` to the following one.
fn falls_through(action: &Action) -> bool {
    match &action.kind {
        ActionKind::Stop(_) | ActionKind::Hangup(_) | ActionKind::HangupRelay(_) => false,
        // A branch with a default never falls through; without one we go on (see
        // the interpreter's docs: the original stops there, we are kinder).
        ActionKind::Branch(o) => o
            .default_target_id
            .as_deref()
            .and_then(target_str)
            .is_none(),
        _ => true,
    }
}

impl<'a> Graph<'a> {
    fn new(actions: &'a [Action]) -> Self {
        let index_of: FxHashMap<&str, usize> = actions
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.as_str(), i))
            .collect();
        let named: Vec<_> = actions.iter().map(named_targets).collect();
        let edges = actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut next: Vec<usize> = jumps(a)
                    .iter()
                    .filter_map(|(_, t)| index_of.get(t).copied())
                    .collect();
                if falls_through(a) {
                    match &a.next_id {
                        Some(n) => next.extend(index_of.get(n.as_str()).copied()),
                        None if i + 1 < actions.len() => next.push(i + 1),
                        None => {}
                    }
                }
                next
            })
            .collect();
        Self {
            index_of,
            named,
            edges,
        }
    }

    fn check_targets(&self, actions: &[Action], out: &mut Vec<Finding>) {
        for (index, (action, named)) in actions.iter().zip(&self.named).enumerate() {
            for (field, target) in named {
                if !self.index_of.contains_key(target) {
                    out.push(Finding::warning(
                        index,
                        Some(action.id.as_str()),
                        field,
                        &format!("target {target} is not in this flow; at run time it must be found in a calling flow, or the activeflow ends"),
                    ));
                }
            }
        }
    }

    fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.edges.len()];
        let mut stack = if self.edges.is_empty() {
            vec![]
        } else {
            vec![0]
        };
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(self.edges[i].iter().copied().filter(|&j| !seen[j]));
            }
        }
        seen
    }

    fn check_reachable(&self, actions: &[Action], reachable: &[bool], out: &mut Vec<Finding>) {
        for (index, seen) in reachable.iter().enumerate() {
            if !seen {
                let id = Some(actions[index].id.as_str());
                out.push(Finding::warning(
                    index,
                    id,
                    "id",
                    "unreachable: no action leads here",
                ));
            }
        }
    }

    /// A cycle with no edge leaving it and no goto `loop_count` to break it runs until
    /// the execution limits stop it.
    fn check_endless_loops(&self, actions: &[Action], reachable: &[bool], out: &mut Vec<Finding>) {
        for component in self.strongly_connected() {
            let cyclic = component.len() > 1 || self.edges[component[0]].contains(&component[0]);
            if !cyclic || !reachable[component[0]] {
                continue;
            }
            let inside = |j: &usize| component.contains(j);
            let has_exit = component.iter().any(|&i| {
                self.edges[i].iter().any(|j| !inside(j))
                    || (falls_through(&actions[i])
                        && actions[i].next_id.is_none()
                        && i + 1 == actions.len())
                    || matches!(actions[i].kind, ActionKind::Goto(_))
            });
            if !has_exit {
                let first = component.iter().copied().min().unwrap_or(0);
                out.push(Finding::warning(
                    first,
                    Some(actions[first].id.as_str()),
                    "next_id",
                    "endless loop: no action leaves it and no goto loop_count bounds it",
                ));
            }
        }
    }

    /// Strongly connected components (Kosaraju), each as a list of indices.
    fn strongly_connected(&self) -> Vec<Vec<usize>> {
        let n = self.edges.len();
        let mut order = Vec::with_capacity(n);
        let mut visited = vec![false; n];
        for start in 0..n {
            if visited[start] {
                continue;
            }
            // Iterative post-order DFS.
            let mut stack = vec![(start, 0usize)];
            visited[start] = true;
            while let Some((node, child)) = stack.pop() {
                if let Some(&next) = self.edges[node].get(child) {
                    stack.push((node, child + 1));
                    if !visited[next] {
                        visited[next] = true;
                        stack.push((next, 0));
                    }
                } else {
                    order.push(node);
                }
            }
        }
        let mut reverse = vec![Vec::new(); n];
        for (from, tos) in self.edges.iter().enumerate() {
            for &to in tos {
                reverse[to].push(from);
            }
        }
        let mut assigned = vec![false; n];
        let mut components = Vec::new();
        for &root in order.iter().rev() {
            if assigned[root] {
                continue;
            }
            let mut component = Vec::new();
            let mut stack = vec![root];
            assigned[root] = true;
            while let Some(node) = stack.pop() {
                component.push(node);
                for &prev in &reverse[node] {
                    if !assigned[prev] {
                        assigned[prev] = true;
                        stack.push(prev);
                    }
                }
            }
            components.push(component);
        }
        components
    }
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn negative_and_absurd_times_are_errors_naming_the_field() {
        let flow = serde_json::json!([
            {"type": "sleep", "option": {"duration": -5000}},
            {"type": "digits_receive", "option": {"duration": 99_999_999_999i64, "length": 1}},
            {"type": "sleep", "option": {"duration": 0}},
            {"type": "hangup"}
        ]);
        let findings = crate::parse_flow(&flow).expect_err("bad times");
        let fields: Vec<(usize, &str)> = findings
            .iter()
            .filter(|f| f.severity == crate::model::finding::Severity::Error)
            .map(|f| (f.index, f.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![(0, "option.duration"), (1, "option.duration")],
            "{findings:?}"
        );
    }
}
