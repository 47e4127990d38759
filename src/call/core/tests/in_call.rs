//! Hold both ways (ours through the API, the caller's by re-INVITE), mute, and
//! music on hold.

use std::net::SocketAddr;

use bytes::Bytes;
use serde_json::json;
use sip_stack::transaction::TxId;
use sip_stack::ua::{CallRef, UaEvent};

use super::super::{Input, MediaCommand, SipCommand};
use super::{Harness, OFFER, SESSION};

fn answered() -> Harness {
    Harness::new(json!([{"type": "answer"}, {"type": "sleep", "option": {"duration": 600000}}]))
}

pub(super) fn reinvite(sdp: &str) -> sip_stack::msg::Message {
    let text = format!(
        "INVITE sip:us@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:us@192.0.2.1>;tag=2\r\nCall-ID: c\r\nCSeq: 2 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sip_stack::msg::parse_datagram(Bytes::from(text)).expect("a re-INVITE parses")
}

#[test]
fn our_hold_is_a_sendonly_reoffer_that_mutes_and_stops_expecting_rtp() {
    let mut h = answered();
    h.input(Input::Control(super::super::super::Control::Media(
        api::CallMedia::Hold(true),
    )));
    let Some(SipCommand::Reinvite { sdp }) = h.sip.last() else {
        panic!("a re-INVITE: {:?}", h.sip);
    };
    assert!(sdp.contains("a=sendonly"), "{sdp}");
    assert!(h.media_did(|c| matches!(
        c,
        MediaCommand::Mute {
            session: SESSION,
            inbound: true,
            ..
        }
    )));
    assert!(h.media_did(|c| matches!(
        c,
        MediaCommand::ExpectRtp {
            session: SESSION,
            on: false
        }
    )));
    let before = h.sip.len();
    h.input(Input::Control(super::super::super::Control::Media(
        api::CallMedia::Hold(true),
    )));
    assert_eq!(h.sip.len(), before, "holding twice sends nothing more");
    h.input(Input::Control(super::super::super::Control::Media(
        api::CallMedia::Hold(false),
    )));
    let Some(SipCommand::Reinvite { sdp }) = h.sip.last() else {
        panic!("a re-INVITE to resume");
    };
    assert!(sdp.contains("a=sendrecv"), "{sdp}");
}

#[test]
fn the_callers_hold_is_answered_and_rtp_is_not_expected_from_a_silent_caller() {
    let mut h = answered();
    // sendonly (the caller plays its own music): we answer recvonly and stop sending.
    let held = OFFER.replace("a=ptime:20\r\n", "a=ptime:20\r\na=sendonly\r\n");
    h.sip_event(UaEvent::Request {
        call: Some(CallRef(1)),
        tx: TxId(9),
        msg: reinvite(&held),
        source: SocketAddr::from(([192, 0, 2, 10], 5060)),
    });
    let Some(SipCommand::Respond {
        tx: TxId(9),
        status: 200,
        sdp: Some(sdp),
    }) = h.sip.last()
    else {
        panic!("a 200 with our answer: {:?}", h.sip.last());
    };
    assert!(sdp.contains("a=recvonly"), "{sdp}");
    assert!(h.media_did(|c| matches!(c, MediaCommand::SendRtp { on: false, .. })));
    assert!(
        matches!(
            h.media.last(),
            Some(MediaCommand::ExpectRtp { on: true, .. })
        ),
        "its music still comes"
    );
    // inactive: nothing either way, and the RTP timeout waits.
    let inactive = OFFER.replace("a=ptime:20\r\n", "a=ptime:20\r\na=inactive\r\n");
    h.sip_event(UaEvent::Request {
        call: Some(CallRef(1)),
        tx: TxId(11),
        msg: reinvite(&inactive),
        source: SocketAddr::from(([192, 0, 2, 10], 5060)),
    });
    assert!(matches!(
        h.media.last(),
        Some(MediaCommand::ExpectRtp { on: false, .. })
    ));
    // Taken off hold: RTP is expected again.
    h.sip_event(UaEvent::Request {
        call: Some(CallRef(1)),
        tx: TxId(10),
        msg: reinvite(OFFER),
        source: SocketAddr::from(([192, 0, 2, 10], 5060)),
    });
    assert!(matches!(
        h.media.last(),
        Some(MediaCommand::ExpectRtp { on: true, .. })
    ));
}

#[test]
fn mute_is_written_on_the_row_and_music_plays_while_the_flow_plays_nothing() {
    let mut h = answered();
    h.input(Input::Control(super::super::super::Control::Media(
        api::CallMedia::Mute {
            inbound: true,
            outbound: false,
            on: true,
        },
    )));
    assert_eq!(h.last_call_row().mute_direction, "in");
    h.input(Input::Control(super::super::super::Control::Media(
        api::CallMedia::Moh(true),
    )));
    assert!(h.media_did(|c| matches!(c, MediaCommand::PlayMusic { .. })));
    // The music ending is not the flow's business; it plays on when asked again.
    h.play_finishes();
    assert!(!h.core.is_finished());
}
