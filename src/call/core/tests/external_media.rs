//! `external_media_start` / `external_media_stop`: the action waits for the peer,
//! the call lists what started, a peer that cannot be reached fails the action
//! with the cause and the flow goes on.

use std::net::SocketAddr;

use serde_json::json;

use super::super::{ExternalMediaCommand, ExternalMediaStatus, Input, Job};
use super::{Harness, SESSION};

fn flow(option: serde_json::Value) -> Harness {
    Harness::new(json!([
        {"type": "answer"},
        {"type": "external_media_start", "option": option},
        {"type": "talk", "option": {"text": "after", "language": "en-US"}},
        {"type": "external_media_stop"},
        {"type": "sleep", "option": {"duration": 600000}}
    ]))
}

/// The id of the external media the core asked to start, checking its options.
fn started(h: &Harness) -> String {
    match h.external_media.first() {
        Some(ExternalMediaCommand::Start {
            id,
            session,
            options,
        }) => {
            assert_eq!(*session, SESSION);
            assert_eq!(options.external_host, "127.0.0.1:9000");
            id.clone()
        }
        other => panic!("external media started: {other:?}"),
    }
}

fn speaks(h: &Harness) -> bool {
    h.jobs.iter().any(|j| matches!(j, Job::Speak { .. }))
}

#[test]
fn the_action_waits_for_the_peer_and_the_call_lists_it() {
    let mut h = flow(json!({"external_host": "127.0.0.1:9000"}));
    let id = started(&h);
    assert!(!speaks(&h), "the flow waits until the peer is connected");
    h.input(Input::ExternalMedia {
        id: id.clone(),
        status: ExternalMediaStatus::Started {
            local: SocketAddr::from(([127, 0, 0, 1], 40_000)),
        },
    });
    assert_eq!(h.last_call_row().external_media_ids, vec![id.clone()]);
    assert!(speaks(&h), "the flow goes on once connected");
    h.source_ready();
    h.play_finishes();
    assert!(
        matches!(h.external_media.last(), Some(ExternalMediaCommand::Stop(ids)) if ids == &vec![id]),
        "external_media_stop stops it: {:?}",
        h.external_media
    );
}

#[test]
fn a_peer_that_cannot_be_reached_fails_the_action_and_the_flow_goes_on() {
    let mut h = flow(
        json!({"external_host": "127.0.0.1:9000", "encapsulation": "audiosocket", "transport": "tcp"}),
    );
    let id = started(&h);
    h.input(Input::ExternalMedia {
        id,
        status: ExternalMediaStatus::Failed("127.0.0.1:9000: connection refused".into()),
    });
    let failures = h.failures();
    assert!(
        failures
            .iter()
            .any(|m| m.contains("external media") && m.contains("connection refused")),
        "{failures:?}"
    );
    assert!(speaks(&h), "the flow goes on");
    assert!(h.last_call_row().external_media_ids.is_empty());
}

#[test]
fn a_bad_option_fails_the_action_naming_it() {
    let h = flow(json!({"external_host": "127.0.0.1:9000", "format": "mp3"}));
    assert!(h.external_media.is_empty(), "nothing starts");
    let failures = h.failures();
    assert!(
        failures.iter().any(|m| m.contains("format")),
        "{failures:?}"
    );
    assert!(speaks(&h), "the flow goes on");
}
