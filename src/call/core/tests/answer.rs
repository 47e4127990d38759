//! Answer (with an offer, and a late offer answered in the ACK), talk and play in
//! sequence, 503 when no media port is free, and a flow that cannot run.

use serde_json::json;
use sip_stack::sdp::SessionDescription;
use sip_stack::ua::{CallRef, UaEvent};

use super::super::{Job, MediaCommand, SipCommand};
use super::{Harness, OFFER, SESSION};

#[test]
fn an_offer_is_answered_with_pcmu_after_180_and_the_call_progresses() {
    let h =
        Harness::new(json!([{"type": "answer"}, {"type": "sleep", "option": {"duration": 60000}}]));
    assert_eq!(h.sip[0], SipCommand::Ring(180));
    let SipCommand::Answer { sdp } = &h.sip[1] else {
        panic!("the 200 follows the 180: {:?}", h.sip);
    };
    let answer = SessionDescription::parse(sdp).expect("our answer parses");
    let m = &answer.media[0];
    assert_eq!(m.port, 20_000, "our RTP port");
    assert_eq!(m.formats[0], "0", "PCMU, the offer's first codec");
    assert!(m.formats.iter().any(|f| f == "101"), "telephone-event kept");
    assert_eq!(h.call_verbs(), ["created", "ringing", "progressing"]);
    assert_eq!(h.last_call_row().status, "progressing");
}

#[test]
fn a_late_offer_gets_our_offer_and_the_ack_says_where_media_goes() {
    let mut h = Harness::with_flow(
        json!([{"type": "answer"}, {"type": "sleep", "option": {"duration": 60000}}]),
        None,
    );
    let SipCommand::Answer { sdp } = &h.sip[1] else {
        panic!("answered: {:?}", h.sip);
    };
    let offer = SessionDescription::parse(sdp).expect("our offer parses");
    assert!(
        offer.media[0].formats.len() >= 3,
        "we offer PCMU, PCMA and Opus"
    );
    let answer = OFFER.replace("40000", "41000");
    h.sip_event(UaEvent::Acked {
        call: CallRef(1),
        sdp: Some(answer),
    });
    assert!(h.media_did(|c| matches!(c,
        MediaCommand::SetRemote { session: SESSION, remote } if remote.port() == 41_000)));
}

#[test]
fn talk_then_play_then_hangup_run_in_order_each_waiting_for_its_audio() {
    let mut h = Harness::new(json!([
        {"type": "answer"},
        {"type": "talk", "option": {"text": "Hello", "language": "en-US"}},
        {"type": "play", "option": {"stream_urls": ["prompts/menu.wav"]}},
        {"type": "hangup"}
    ]));
    assert!(matches!(&h.jobs[..], [Job::Speak { .. }]), "{:?}", h.jobs);
    h.source_ready();
    assert!(h.media_did(|c| matches!(c, MediaCommand::Play { .. })));
    assert!(h.jobs.is_empty(), "the play waits for the talk to end");
    h.play_finishes();
    assert!(
        matches!(&h.jobs[..], [Job::Prompt { url, .. }] if url == "prompts/menu.wav"),
        "{:?}",
        h.jobs
    );
    h.source_ready();
    assert!(h.hung_up().is_none(), "still playing");
    h.play_finishes();
    let bye = h.hung_up().expect("the flow's hangup sends a BYE");
    assert_eq!((bye.protocol.as_str(), bye.cause), ("Q.850", 16));
    assert!(h.media_did(|c| matches!(c, MediaCommand::Close(SESSION))));
    h.leg_closes();
    assert!(h.core.is_finished());
    let row = h.last_call_row();
    assert_eq!(row.status, "hangup");
    assert_eq!(
        (row.hangup_reason.as_str(), row.hangup_by.as_str()),
        ("normal", "local")
    );
    assert_eq!(row.rtp_stats.as_ref().map(|s| s.packets_sent), Some(50));
}

#[test]
fn no_free_media_port_refuses_the_invite_with_503_and_retry_after() {
    // The answer comes after a second, once the ports have run out.
    let mut h = Harness {
        ports: false,
        ..Harness::new(json!([{"type": "sleep", "option": {"duration": 1000}}, {"type": "answer"}]))
    };
    h.advance(std::time::Duration::from_secs(1));
    let Some(SipCommand::Reject {
        status,
        headers,
        reason,
    }) = h
        .sip
        .iter()
        .find(|c| matches!(c, SipCommand::Reject { .. }))
    else {
        panic!("refused: {:?}", h.sip);
    };
    assert_eq!(*status, 503);
    assert!(headers.contains(&("Retry-After", "5")));
    assert!(
        reason
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("no media port")
    );
    assert!(h.failures().iter().any(|m| m.contains("no media port")));
    assert_eq!(h.last_call_row().hangup_reason, "failed");
    assert!(h.core.is_finished());
}

#[test]
fn an_offer_with_no_common_codec_gets_488_before_anything_runs() {
    let offer = OFFER
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
    let h = Harness::with_flow(json!([{"type": "answer"}]), Some(&offer));
    assert_eq!(h.rejected().map(|r| r.0), Some(488));
    assert!(h.writes.is_empty(), "no rows for a call that never rang");
    assert!(h.core.is_finished());
}
