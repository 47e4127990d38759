//! The caller's keys along each path a carrier may send them: SIP INFO
//! (application/dtmf-relay) and tones in the audio of a carrier that offers no
//! telephone-event. RFC 4733 events are in `flows` and `peers`.

use super::*;

/// A menu whose branch says which key the caller pressed: 1 sales, 2 support.
fn menu() -> serde_json::Value {
    json!({"name": "menu", "actions": [
        {"type": "answer"},
        {"type": "talk", "option": {"text": "Press one or two.", "language": "en-US"}},
        {"type": "digits_receive", "option": {"duration": 8000, "length": 1}},
        {"type": "branch", "option": {"target_ids": {"1": "sales", "2": "support"}, "default_target_id": "bye"}},
        {"id": "sales", "type": "talk", "option": {"text": "Sales.", "language": "en-US"}, "next_id": "bye"},
        {"id": "support", "type": "talk", "option": {"text": "Support.", "language": "en-US"}},
        {"id": "bye", "type": "hangup"}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sent_as_sip_info_takes_its_branch() {
    let server = Server::start(Options::default());
    let (yan, _) = customer_with_number(&server, "yan", "+15551230030", menu()).await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sipp = sipp_scenario(
        server.sip,
        "uac_flow_info.xml",
        "+15551230030",
        media.local_addr().unwrap().port(),
    );
    let status = sipp_done(sipp).await;
    assert!(
        status.success(),
        "SIPp: INFO answered 200, then the BYE: {status}"
    );
    let ids = executed_ids(&yan).await;
    assert!(ids.iter().any(|id| id == "sales"), "INFO's 1: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_sent_as_tones_by_a_carrier_without_telephone_event_takes_its_branch() {
    let server = Server::start(Options::default());
    let (zed, _) = customer_with_number(&server, "zed", "+15551230031", menu()).await;
    let media = media_socket();
    let sipp = sipp_scenario(
        server.sip,
        "uac_flow_pcmu.xml",
        "+15551230031",
        media.local_addr().unwrap().port(),
    );
    // The prompt says where the platform sends from; then the caller's audio
    // carries a 2: 120 ms of its two frequencies (ITU-T Q.23), then silence.
    let platform = first_sender(&media);
    let mut tone = media_engine::tone::ToneGenerator::new(
        media_engine::tone::Tone::dtmf('2', 120, 400).unwrap(),
        8000,
    );
    let mut pcm = vec![0i16; 160 * 30];
    tone.fill(&mut pcm);
    talk_pcmu(&media, platform, &pcm).await;
    let status = sipp_done(sipp).await;
    assert!(status.success(), "{status}");
    let ids = executed_ids(&zed).await;
    assert!(
        ids.iter().any(|id| id == "support"),
        "the tones' 2: {ids:?}"
    );
}
