//! One groupcall's logic, sans-IO: which destinations to place and when, which
//! calls to hang up when one answers, and the row's life (`progressing` until
//! every call is over, `hangingup` once hung up, then `hangup`).

use std::collections::VecDeque;

use api::call_store::{Verb, Write};
use api::originate::{AnswerMethod, RingMethod};
use api::store::calls::Address;
use api::store::groupcalls::Groupcall;

/// What happened to the groupcall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupInput {
    /// The calls for the destinations last asked for were placed (their ids), or
    /// could not be (why).
    Placed(Result<Vec<String>, String>),
    /// One of its calls answered.
    Answered(String),
    /// One of its calls is over.
    Ended(String),
    /// Hang every call up (the API).
    Hangup,
}

/// What the groupcall asks of the world.
#[derive(Debug, Clone)]
pub enum GroupOutput {
    /// Place a call to each of these destinations (answered with
    /// [`GroupInput::Placed`]).
    Place(Vec<Address>),
    /// Hang these calls up.
    Hangup(Vec<String>),
    /// Write the row and its events.
    Write(Write),
}

/// Where a call of the groupcall is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Ringing,
    Answered,
    Over,
}

/// A groupcall following its calls.
#[derive(Debug)]
pub struct GroupcallCore {
    row: Groupcall,
    ring: RingMethod,
    answer: AnswerMethod,
    calls: Vec<(String, Member)>,
    /// Waiting for a [`GroupInput::Placed`].
    placing: bool,
    /// Hung up: no more calls are placed.
    hanging_up: bool,
    outputs: VecDeque<GroupOutput>,
}

impl GroupcallCore {
    /// A new groupcall: its row is written (`groupcall_created`) and its first
    /// calls asked for (every destination, or the first for `linear`).
    pub fn new(mut row: Groupcall, ring: RingMethod, answer: AnswerMethod) -> Self {
        row.status = "progressing".into();
        row.ring_method = ring.as_str().into();
        row.answer_method = answer.as_str().into();
        let mut core = Self {
            row,
            ring,
            answer,
            calls: Vec::new(),
            placing: false,
            hanging_up: false,
            outputs: VecDeque::new(),
        };
        core.outputs.push_back(GroupOutput::Write(Write::groupcall(
            &core.row,
            true,
            &[Verb::Created],
        )));
        let first = match ring {
            RingMethod::RingAll => core.row.destinations.clone(),
            RingMethod::Linear => core.row.destinations.iter().take(1).cloned().collect(),
        };
        core.place(first);
        core
    }

    /// The row as it stands.
    pub fn row(&self) -> &Groupcall {
        &self.row
    }

    /// Whether it is over (its last row is among the outputs).
    pub fn is_finished(&self) -> bool {
        self.row.status == "hangup"
    }

    /// What to do next.
    pub fn poll_output(&mut self) -> Option<GroupOutput> {
        self.outputs.pop_front()
    }

    fn place(&mut self, destinations: Vec<Address>) {
        if destinations.is_empty() {
            return self.settle();
        }
        self.placing = true;
        self.outputs.push_back(GroupOutput::Place(destinations));
    }

    fn write(&mut self, verbs: &[Verb], now: &str) {
        self.row.call_count = self
            .calls
            .iter()
            .filter(|(_, m)| *m != Member::Over)
            .count() as i64;
        self.row.tm_update = Some(now.to_owned());
        self.outputs.push_back(GroupOutput::Write(Write::groupcall(
            &self.row, false, verbs,
        )));
    }

    /// Takes what happened; `now` stamps the row.
    pub fn handle(&mut self, input: GroupInput, now: &str) {
        if self.is_finished() {
            return;
        }
        match input {
            GroupInput::Placed(result) => {
                self.placing = false;
                match result {
                    Ok(ids) => {
                        self.row.call_ids.extend(ids.iter().cloned());
                        self.calls
                            .extend(ids.iter().map(|id| (id.clone(), Member::Ringing)));
                        self.write(&[Verb::Updated], now);
                        if self.hanging_up {
                            self.outputs.push_back(GroupOutput::Hangup(ids));
                        }
                    }
                    Err(why) => {
                        tracing::info!(%why, "a groupcall's destination could not be placed");
                        self.next_linear();
                    }
                }
            }
            GroupInput::Answered(id) => self.answered(&id, now),
            GroupInput::Ended(id) => {
                let was_answer = self.row.answer_call_id == id;
                if let Some((_, m)) = self.calls.iter_mut().find(|(c, _)| *c == id) {
                    *m = Member::Over;
                }
                self.write(&[Verb::Updated], now);
                if !was_answer && self.row.answer_call_id.is_empty() {
                    self.next_linear();
                }
            }
            GroupInput::Hangup => {
                self.hanging_up = true;
                self.row.status = "hangingup".into();
                self.write(&[Verb::Updated], now);
                let live = self.live(None);
                if !live.is_empty() {
                    self.outputs.push_back(GroupOutput::Hangup(live));
                }
            }
        }
        self.settle_at(now);
    }

    fn answered(&mut self, id: &str, now: &str) {
        if let Some((_, m)) = self.calls.iter_mut().find(|(c, _)| c == id) {
            *m = Member::Answered;
        }
        if !self.row.answer_call_id.is_empty() {
            if self.answer == AnswerMethod::HangupOthers {
                // Answered after another: not wanted.
                self.outputs
                    .push_back(GroupOutput::Hangup(vec![id.to_owned()]));
            }
            return;
        }
        self.row.answer_call_id = id.to_owned();
        self.write(&[Verb::Progressing], now);
        if self.answer == AnswerMethod::HangupOthers {
            let others = self.live(Some(id));
            if !others.is_empty() {
                self.outputs.push_back(GroupOutput::Hangup(others));
            }
        }
    }

    /// `linear`: the next destination, once the one ringing has failed.
    fn next_linear(&mut self) {
        if self.ring != RingMethod::Linear || self.hanging_up || self.placing {
            return;
        }
        if self.calls.iter().any(|(_, m)| *m != Member::Over) {
            return;
        }
        let next = self.row.dial_index as usize + 1;
        if let Some(d) = self.row.destinations.get(next).cloned() {
            self.row.dial_index = next as i64;
            self.place(vec![d]);
        }
    }

    /// The calls not over, but `except`.
    fn live(&self, except: Option<&str>) -> Vec<String> {
        self.calls
            .iter()
            .filter(|(c, m)| *m != Member::Over && Some(c.as_str()) != except)
            .map(|(c, _)| c.clone())
            .collect()
    }

    fn settle(&mut self) {
        let now = self.row.tm_update.clone().unwrap_or_default();
        self.settle_at(&now);
    }

    /// Over once no call is live and none is being placed or will be.
    fn settle_at(&mut self, now: &str) {
        if self.placing || self.is_finished() || !self.live(None).is_empty() {
            return;
        }
        let more = self.ring == RingMethod::Linear
            && !self.hanging_up
            && self.row.answer_call_id.is_empty()
            && (self.row.dial_index as usize + 1) < self.row.destinations.len();
        if more {
            return;
        }
        self.row.status = "hangup".into();
        self.write(&[Verb::Hangup], now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destinations(n: usize) -> Vec<Address> {
        (0..n)
            .map(|i| Address {
                kind: "tel".into(),
                target: format!("+1555000000{i}"),
                target_name: String::new(),
            })
            .collect()
    }

    fn core(ring: RingMethod, answer: AnswerMethod, n: usize) -> GroupcallCore {
        GroupcallCore::new(
            Groupcall {
                id: "g".into(),
                customer_id: "c".into(),
                destinations: destinations(n),
                ..Groupcall::default()
            },
            ring,
            answer,
        )
    }

    fn drain(core: &mut GroupcallCore) -> Vec<GroupOutput> {
        std::iter::from_fn(|| core.poll_output()).collect()
    }

    fn hung_up(outputs: &[GroupOutput], ids: &[&str]) -> bool {
        outputs
            .iter()
            .any(|o| matches!(o, GroupOutput::Hangup(h) if h.iter().map(String::as_str).eq(ids.iter().copied())))
    }

    fn verbs(outputs: &[GroupOutput]) -> Vec<&'static str> {
        outputs
            .iter()
            .filter_map(|o| match o {
                GroupOutput::Write(w) => Some(w.verbs.iter().map(|v| v.as_str())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn ring_all_places_every_destination_and_the_first_answer_hangs_up_the_others() {
        let mut g = core(RingMethod::RingAll, AnswerMethod::HangupOthers, 3);
        let out = drain(&mut g);
        assert_eq!(verbs(&out), ["created"]);
        assert!(matches!(&out[1], GroupOutput::Place(d) if d.len() == 3));
        g.handle(
            GroupInput::Placed(Ok(vec!["a".into(), "b".into(), "c".into()])),
            "t1",
        );
        drain(&mut g);
        g.handle(GroupInput::Answered("b".into()), "t2");
        let out = drain(&mut g);
        assert_eq!(verbs(&out), ["progressing"]);
        assert!(hung_up(&out, &["a", "c"]));
        assert_eq!(g.row().answer_call_id, "b");
        for id in ["a", "c"] {
            g.handle(GroupInput::Ended(id.into()), "t3");
        }
        assert!(!g.is_finished(), "the answered call is up");
        g.handle(GroupInput::Ended("b".into()), "t4");
        let out = drain(&mut g);
        assert!(g.is_finished());
        assert_eq!(verbs(&out).last(), Some(&"hangup"));
        assert_eq!(g.row().call_count, 0);
    }

    #[test]
    fn linear_rings_the_next_destination_when_one_does_not_answer() {
        let mut g = core(RingMethod::Linear, AnswerMethod::HangupOthers, 3);
        let out = drain(&mut g);
        assert!(
            matches!(&out[1], GroupOutput::Place(d) if d.len() == 1 && d[0].target.ends_with('0'))
        );
        g.handle(GroupInput::Placed(Ok(vec!["a".into()])), "t1");
        g.handle(GroupInput::Ended("a".into()), "t2");
        let out = drain(&mut g);
        assert!(
            out.iter()
                .any(|o| matches!(o, GroupOutput::Place(d) if d[0].target.ends_with('1'))),
            "{out:?}"
        );
        assert_eq!(g.row().dial_index, 1);
        g.handle(GroupInput::Placed(Ok(vec!["b".into()])), "t3");
        g.handle(GroupInput::Answered("b".into()), "t4");
        g.handle(GroupInput::Ended("b".into()), "t5");
        let out = drain(&mut g);
        assert!(
            g.is_finished(),
            "answered and over: the third is never rung"
        );
        assert!(!out.iter().any(|o| matches!(o, GroupOutput::Place(_))));
        assert_eq!(g.row().call_ids, ["a", "b"]);
    }

    #[test]
    fn linear_ends_when_the_last_destination_fails() {
        let mut g = core(RingMethod::Linear, AnswerMethod::HangupOthers, 2);
        g.handle(GroupInput::Placed(Ok(vec!["a".into()])), "t1");
        g.handle(GroupInput::Ended("a".into()), "t2");
        g.handle(GroupInput::Placed(Err("no route".into())), "t3");
        assert!(g.is_finished());
    }

    #[test]
    fn a_hangup_ends_every_call_and_places_no_more() {
        let mut g = core(RingMethod::Linear, AnswerMethod::HangupOthers, 3);
        g.handle(GroupInput::Placed(Ok(vec!["a".into()])), "t1");
        drain(&mut g);
        g.handle(GroupInput::Hangup, "t2");
        let out = drain(&mut g);
        assert_eq!(g.row().status, "hangingup");
        assert!(hung_up(&out, &["a"]));
        g.handle(GroupInput::Ended("a".into()), "t3");
        let out = drain(&mut g);
        assert!(g.is_finished());
        assert!(!out.iter().any(|o| matches!(o, GroupOutput::Place(_))));
    }

    #[test]
    fn without_hangup_others_the_others_ring_on() {
        let mut g = core(RingMethod::RingAll, AnswerMethod::None, 2);
        g.handle(GroupInput::Placed(Ok(vec!["a".into(), "b".into()])), "t1");
        drain(&mut g);
        g.handle(GroupInput::Answered("a".into()), "t2");
        let out = drain(&mut g);
        assert!(!out.iter().any(|o| matches!(o, GroupOutput::Hangup(_))));
    }
}
