//! Keys from the three DTMF paths (RFC 4733, SIP INFO, in-band) reaching the flow,
//! and a recording ending by its duration, a key, or silence.

use std::time::Duration;

use media_engine::engine::{DtmfSource, MediaEvent};
use serde_json::json;
use sip_stack::dialog::info::InfoDigit;
use sip_stack::ua::{CallRef, UaEvent};

use super::super::{Job, MediaCommand};
use super::{Harness, SESSION};

/// Answers, waits for one key; "1" goes to a talk, anything else hangs up.
fn menu() -> Harness {
    Harness::new(json!([
        {"type": "answer"},
        {"type": "digits_receive", "option": {"duration": 8000, "length": 1}},
        {"type": "branch", "option": {"target_ids": {"1": "sales"}, "default_target_id": "bye"}},
        {"id": "sales", "type": "talk", "option": {"text": "Sales.", "language": "en-US"}},
        {"id": "bye", "type": "hangup"}
    ]))
}

fn sales_ran(h: &Harness) -> bool {
    h.jobs
        .iter()
        .any(|j| matches!(j, Job::Speak { speech, .. } if speech.text == "Sales."))
}

#[test]
fn a_key_by_rfc_4733_reaches_the_flow() {
    let mut h = menu();
    h.media_event(MediaEvent::DtmfReceived {
        session: SESSION,
        key: '1',
        duration_ms: 100,
        source: DtmfSource::Rfc4733,
    });
    assert!(sales_ran(&h));
}

#[test]
fn a_key_by_sip_info_reaches_the_flow() {
    let mut h = menu();
    h.sip_event(UaEvent::Dtmf {
        call: CallRef(1),
        digit: InfoDigit {
            digit: '1',
            duration_ms: Some(100),
        },
    });
    assert!(sales_ran(&h));
}

#[test]
fn an_inband_key_reaches_the_flow() {
    let mut h = menu();
    h.media_event(MediaEvent::DtmfReceived {
        session: SESSION,
        key: '1',
        duration_ms: 100,
        source: DtmfSource::Inband,
    });
    assert!(sales_ran(&h));
}

#[test]
fn no_key_in_time_takes_the_default_branch() {
    let mut h = menu();
    h.advance(Duration::from_millis(7999));
    assert!(h.hung_up().is_none());
    h.advance(Duration::from_millis(1));
    assert!(!sales_ran(&h));
    assert!(h.hung_up().is_some(), "the default branch hangs up");
}

fn recording(option: serde_json::Value) -> Harness {
    Harness::new(json!([
        {"type": "answer"},
        {"type": "recording_start", "option": option},
        {"type": "sleep", "option": {"duration": 600000}}
    ]))
}

fn record_stops(h: &Harness) -> usize {
    h.media
        .iter()
        .filter(|c| matches!(c, MediaCommand::RecordStop(SESSION)))
        .count()
}

#[test]
fn a_recording_ends_after_its_duration() {
    let mut h = recording(json!({"duration": 2}));
    assert!(h.media_did(|c| matches!(c, MediaCommand::RecordStart { .. })));
    h.advance(Duration::from_millis(1999));
    assert_eq!(record_stops(&h), 0);
    h.advance(Duration::from_millis(1));
    assert_eq!(record_stops(&h), 1);
    h.media_event(MediaEvent::RecordingFinished {
        session: SESSION,
        path: "/srv/vb/recordings/x.wav".into(),
        error: None,
    });
    let verbs: Vec<_> = h
        .writes
        .iter()
        .filter(|w| matches!(w.row, api::call_store::Row::Recording { .. }))
        .flat_map(|w| w.verbs.iter().map(|v| v.as_str()))
        .collect();
    assert_eq!(verbs, ["started", "finished"]);
}

#[test]
fn a_recording_ends_on_its_key_and_not_on_others() {
    let mut h = recording(json!({"end_of_key": "#", "duration": 20}));
    let key = |h: &mut Harness, k| {
        h.media_event(MediaEvent::DtmfReceived {
            session: SESSION,
            key: k,
            duration_ms: 100,
            source: DtmfSource::Rfc4733,
        })
    };
    key(&mut h, '5');
    assert_eq!(record_stops(&h), 0);
    key(&mut h, '#');
    assert_eq!(record_stops(&h), 1);
}

#[test]
fn a_recording_ends_after_silence_counted_from_the_end_of_speech() {
    let mut h = recording(json!({"end_of_silence": 3, "duration": 60}));
    assert!(h.media_did(|c| matches!(c, MediaCommand::Vad { on: true, .. })));
    h.advance(Duration::from_secs(1));
    h.media_event(MediaEvent::SpeechStarted {
        session: SESSION,
        at_ms: 1000,
    });
    h.advance(Duration::from_secs(10));
    assert_eq!(record_stops(&h), 0, "no end while the caller speaks");
    h.media_event(MediaEvent::SpeechEnded {
        session: SESSION,
        at_ms: 11000,
    });
    h.advance(Duration::from_millis(2999));
    assert_eq!(record_stops(&h), 0);
    h.advance(Duration::from_millis(1));
    assert_eq!(record_stops(&h), 1);
    assert!(h.media_did(|c| matches!(c, MediaCommand::Vad { on: false, .. })));
}
