//! The call core on a fake clock: no sockets, no runtime, no binary. A [`Harness`]
//! plays the shell: it answers the first flow load, opens legs (or runs out of
//! ports), finishes jobs when told, and records every SIP command, media command
//! and row the core gives out. Time moves only when a test moves it.

mod amd;
mod answer;
mod connect;
mod ending;
mod external_media;
mod flow_control;
mod in_call;
mod keys_and_recording;
mod outgoing;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::call_store::{Row, Write};
use flow_runtime::ActionId;
use media_engine::engine::{MediaEvent, OpenedLeg, SessionId, SessionStats, Source};
use sip_stack::ua::{CallRef, EndCause, Side, UaEvent};

use super::{CallCore, CoreConfig, Incoming, Input, Job, JobResult, LoadedFlow, MediaCommand};
use super::{FlowPurpose, Output, SipCommand};

/// A G.711 offer with telephone-event, as carriers send it.
pub const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n";

/// The leg the harness opens.
pub const SESSION: SessionId = SessionId(7);

/// The media session the harness opens for dialled leg `leg`.
pub fn callee_session(leg: super::LegId) -> SessionId {
    SessionId(100 + u64::from(leg.0))
}

/// The dialog the harness gives dialled leg `leg`.
pub fn callee_dialog(leg: super::LegId) -> CallRef {
    CallRef(100 + u64::from(leg.0))
}

/// What every test's call core is set up with.
fn config() -> CoreConfig {
    CoreConfig {
        media_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        rtp_timeout: Duration::from_secs(30),
        data_dir: "/srv/vb".into(),
    }
}

/// A call core with its shell played by hand.
pub struct Harness {
    pub core: CallCore,
    pub now: Instant,
    /// SIP commands, in order.
    pub sip: Vec<SipCommand>,
    /// Media commands (but `Open`), in order.
    pub media: Vec<MediaCommand>,
    /// Rows written, in order; the last one included.
    pub writes: Vec<Write>,
    /// Jobs asked for and not answered yet.
    pub jobs: Vec<Job>,
    /// Activeflow renames.
    pub renamed: Vec<(String, String)>,
    /// Whether a leg can be opened (a free media port).
    pub ports: bool,
    /// Dialled legs' INVITEs, in order.
    pub dials: Vec<(super::LegId, super::Dial)>,
    /// Other commands for dialled legs, in order.
    pub callee: Vec<(super::LegId, super::CalleeCommand)>,
    /// What the next dial fails with, if it fails.
    pub dial_error: Option<super::DialError>,
    /// The INVITEs of the call's own leg (a call we place), in order.
    pub own_dials: Vec<super::Dial>,
    /// Calls hung up with this one.
    pub hung_up_calls: Vec<String>,
    /// External media started and stopped, in order.
    pub external_media: Vec<super::ExternalMediaCommand>,
    /// Answering machine detections started (their listening time, ms).
    pub amd: Vec<u32>,
}

impl Harness {
    /// A call with `offer` whose number runs `actions` (and chains to
    /// `on_complete`).
    pub fn with_flow(actions: serde_json::Value, offer: Option<&str>) -> Self {
        Self::chained(actions, offer, None)
    }

    /// A call with the usual offer running `actions`.
    pub fn new(actions: serde_json::Value) -> Self {
        Self::with_flow(actions, Some(OFFER))
    }

    /// As [`Harness::with_flow`], with an `on_complete_flow_id`.
    pub fn chained(
        actions: serde_json::Value,
        offer: Option<&str>,
        on_complete: Option<&str>,
    ) -> Self {
        Self::build(actions, offer, on_complete, None)
    }

    /// A call with the usual offer running `actions`, whose first dial fails with
    /// `error`.
    pub fn dial_fails(actions: serde_json::Value, error: super::DialError) -> Self {
        Self::build(actions, Some(OFFER), None, Some(error))
    }

    fn build(
        actions: serde_json::Value,
        offer: Option<&str>,
        on_complete: Option<&str>,
        dial_error: Option<super::DialError>,
    ) -> Self {
        let now = Instant::now();
        let core = CallCore::new(
            config(),
            Arc::new(api::clock::Stamps::new(Box::new(api::clock::SystemClock))),
            Incoming {
                call: CallRef(1),
                source: "+15551230000".into(),
                destination: "+15559870000".into(),
                peer: SocketAddr::from(([192, 0, 2, 10], 5060)),
                offer: offer.map(str::to_owned),
                customer_id: "cust".into(),
                flow_id: "flow-1".into(),
                max_forwards: 70,
            },
            now,
            1_700_000_000_000,
        );
        let mut h = Self::around(core, now, dial_error);
        h.pump();
        let first = h.take_job(|j| {
            matches!(
                j,
                Job::LoadFlow {
                    purpose: FlowPurpose::First,
                    ..
                }
            )
        });
        let Some(Job::LoadFlow { purpose, .. }) = first else {
            panic!("the core asks for the number's flow first");
        };
        h.input(Input::JobDone(JobResult::FlowLoaded {
            purpose,
            flow: Ok(Some(LoadedFlow {
                id: "flow-1".into(),
                actions,
                on_complete_flow_id: on_complete.map(str::to_owned),
            })),
        }));
        h
    }

    /// A call we place to `destination` (a `tel` number), running `flow`.
    pub fn placed(
        flow: api::originate::FlowSource,
        destination: &str,
        early_execution: bool,
        dial_error: Option<super::DialError>,
    ) -> Self {
        let now = Instant::now();
        let address = |target: &str| api::store::calls::Address {
            kind: "tel".into(),
            target: target.into(),
            target_name: String::new(),
        };
        let core = CallCore::outgoing(
            config(),
            Arc::new(api::clock::Stamps::new(Box::new(api::clock::SystemClock))),
            super::Outgoing {
                call_id: "call-out".into(),
                customer_id: "cust".into(),
                flow,
                source: address("+15550001111"),
                destination: address(destination),
                anonymous: false,
                variables: vec![("campaign".into(), "summer".into())],
                early_execution,
                master_call_id: String::new(),
                groupcall_id: String::new(),
                ring_timeout: Duration::from_secs(60),
            },
            now,
            1_700_000_000_000,
        );
        let mut h = Self::around(core, now, dial_error);
        h.pump();
        h
    }

    /// A harness around `core`, nothing carried out yet.
    fn around(core: CallCore, now: Instant, dial_error: Option<super::DialError>) -> Self {
        Self {
            core,
            now,
            sip: Vec::new(),
            media: Vec::new(),
            writes: Vec::new(),
            jobs: Vec::new(),
            renamed: Vec::new(),
            ports: true,
            dials: Vec::new(),
            callee: Vec::new(),
            dial_error,
            own_dials: Vec::new(),
            hung_up_calls: Vec::new(),
            external_media: Vec::new(),
            amd: Vec::new(),
        }
    }

    /// Feeds an input at the harness's `now`, then carries out the outputs.
    pub fn input(&mut self, input: Input) {
        self.core.handle(self.now, input);
        self.pump();
    }

    /// A SIP event for the call.
    pub fn sip_event(&mut self, event: UaEvent) {
        self.input(Input::Sip(event));
    }

    /// A media event for the leg.
    pub fn media_event(&mut self, event: MediaEvent) {
        self.input(Input::Media(event));
    }

    /// The user agent's event for dialled leg `leg`.
    pub fn callee_event(&mut self, leg: u32, event: UaEvent) {
        self.input(Input::CalleeSip {
            leg: super::LegId(leg),
            event,
        });
    }

    /// The caller's BYE, or CANCEL (`cause`).
    pub fn caller_ends(&mut self, cause: EndCause) {
        self.sip_event(UaEvent::Ended {
            call: CallRef(1),
            by: Side::Remote,
            cause,
            reason: None,
        });
    }

    /// Moves the clock by `by`, running every timer due on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= end) {
            self.now = at.max(self.now);
            self.core.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    /// Carries out what the core asked: opens legs, records the rest.
    pub fn pump(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Sip(c) => self.sip.push(c),
                Output::Media(MediaCommand::Open(_)) => {
                    let opened = if self.ports {
                        Ok(OpenedLeg {
                            id: SESSION,
                            local_rtp: SocketAddr::from(([192, 0, 2, 1], 20_000)),
                        })
                    } else {
                        Err("no free RTP port in 20000-20001".into())
                    };
                    self.core.handle(self.now, Input::LegOpened(opened));
                }
                Output::Media(c) => self.media.push(c),
                Output::Write(w) | Output::LastWrite(w) => self.writes.push(w),
                Output::Job(j) => self.jobs.push(j),
                Output::Renamed { from, to } => self.renamed.push((from, to)),
                Output::Callee { leg, command } => match command {
                    super::CalleeCommand::Open(_) => {
                        let opened = OpenedLeg {
                            id: callee_session(leg),
                            local_rtp: SocketAddr::from((
                                [192, 0, 2, 1],
                                20_100 + 2 * leg.0 as u16,
                            )),
                        };
                        self.core.handle(
                            self.now,
                            Input::CalleeOpened {
                                leg,
                                result: Ok(opened),
                            },
                        );
                    }
                    super::CalleeCommand::Dial(dial) => {
                        self.dials.push((leg, dial));
                        let result = match self.dial_error.take() {
                            Some(e) => Err(e),
                            None => Ok(callee_dialog(leg)),
                        };
                        self.core.handle(self.now, Input::Dialed { leg, result });
                    }
                    other => self.callee.push((leg, other)),
                },
                Output::Dial(dial) => {
                    self.own_dials.push(dial);
                    let result = match self.dial_error.take() {
                        Some(e) => Err(e),
                        None => Ok(CallRef(1)),
                    };
                    self.core.handle(self.now, Input::LegDialed(result));
                }
                Output::HangupCalls(ids) => self.hung_up_calls.extend(ids),
                Output::ExternalMedia(c) => self.external_media.push(c),
                Output::Amd { config, .. } => self.amd.push(config.total_analysis_ms),
            }
        }
    }

    /// Takes the first job `which` matches.
    pub fn take_job(&mut self, which: impl Fn(&Job) -> bool) -> Option<Job> {
        let i = self.jobs.iter().position(which)?;
        Some(self.jobs.remove(i))
    }

    /// Finishes the next speech or prompt job with a source ready to play.
    pub fn source_ready(&mut self) -> ActionId {
        let job = self
            .take_job(|j| matches!(j, Job::Speak { .. } | Job::Prompt { .. }))
            .expect("a talk or play waits for its source");
        let (action, wait) = match job {
            Job::Speak { action, wait, .. } => (action, wait),
            Job::Prompt { action, .. } => (action, true),
            _ => unreachable!("filtered above"),
        };
        self.input(Input::JobDone(JobResult::SourceReady {
            action: action.clone(),
            source: Ok(Source::Silence),
            wait,
        }));
        action
    }

    /// The number of the last play started.
    pub fn last_play(&self) -> media_engine::engine::PlayId {
        self.media
            .iter()
            .rev()
            .find_map(|c| match c {
                MediaCommand::Play { play, .. } | MediaCommand::PlayMusic { play, .. } => {
                    Some(*play)
                }
                _ => None,
            })
            .expect("something was played")
    }

    /// The last play ends.
    pub fn play_finishes(&mut self) {
        let play = self.last_play();
        self.media_event(MediaEvent::PlayFinished {
            session: SESSION,
            play,
            stopped: false,
        });
    }

    /// The leg reports its end with statistics.
    pub fn leg_closes(&mut self) {
        self.media_event(MediaEvent::Closed {
            session: SESSION,
            stats: SessionStats {
                packets_sent: 50,
                packets_received: 49,
                ..Default::default()
            },
        });
    }

    /// The call's row events, `call_<verb>`, in order.
    pub fn call_verbs(&self) -> Vec<&'static str> {
        self.writes
            .iter()
            .filter(|w| matches!(w.row, Row::Call { .. }))
            .flat_map(|w| w.verbs.iter().map(|v| v.as_str()))
            .collect()
    }

    /// The call's row as last written.
    pub fn last_call_row(&self) -> &api::store::calls::Call {
        self.writes
            .iter()
            .rev()
            .find_map(|w| match &w.row {
                Row::Call { call, .. } => Some(call.as_ref()),
                _ => None,
            })
            .expect("a call row was written")
    }

    /// Messages of `activeflow_action_failed`, in order.
    pub fn failures(&self) -> Vec<String> {
        self.writes
            .iter()
            .filter_map(|w| match &w.row {
                Row::Notice { data, .. } => data["message"].as_str().map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    /// Whether the BYE (or the end of an unanswered call) went out.
    pub fn hung_up(&self) -> Option<&sip_stack::dialog::reason::Reason> {
        self.sip.iter().find_map(|c| match c {
            SipCommand::Hangup { reason } => Some(reason),
            _ => None,
        })
    }

    /// The final error status the INVITE got, with its Reason's text.
    pub fn rejected(&self) -> Option<(u16, String)> {
        self.sip.iter().find_map(|c| match c {
            SipCommand::Reject { status, reason, .. } => {
                Some((*status, reason.text.clone().unwrap_or_default()))
            }
            _ => None,
        })
    }

    /// Whether a media command `which` matches was given.
    pub fn media_did(&self, which: impl Fn(&MediaCommand) -> bool) -> bool {
        self.media.iter().any(which)
    }
}
