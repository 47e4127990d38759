//! SDP and offer/answer behaviour.
#![allow(clippy::unwrap_used)]

use super::*;

const OFFER: &str = "v=0\r\n\
o=carrier 2890844526 2890844526 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 18 8 0 101\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
m=video 40002 RTP/AVP 96\r\n\
a=rtpmap:96 H264/90000\r\n";

fn local() -> LocalMedia {
    LocalMedia {
        addr: "192.0.2.10".parse().unwrap(),
        port: 10000,
        codecs: vec![PCMU, PCMA],
        ptime: 20,
        session_id: 42,
        session_version: 1,
    }
}

#[test]
fn parses_and_writes_back() {
    let sdp = SessionDescription::parse(OFFER).unwrap();
    assert_eq!(sdp.media.len(), 2);
    let audio = &sdp.media[0];
    assert_eq!(audio.payload_types().collect::<Vec<_>>(), [18, 8, 0, 101]);
    assert_eq!(audio.rtpmap(101).unwrap().encoding, "telephone-event");
    assert_eq!(audio.fmtp(101), Some("0-15"));
    assert_eq!(audio.direction, Some(Direction::SendRecv));
    assert_eq!(sdp.media_addr(audio), Some("198.51.100.7".parse().unwrap()));
    let again = SessionDescription::parse(&sdp.to_string()).unwrap();
    assert_eq!(again, sdp, "written SDP reads back the same");
}

#[test]
fn answers_with_common_codecs_in_offer_order_and_rejects_video() {
    let offer = SessionDescription::parse(OFFER).unwrap();
    let (reply, stream) = answer(&offer, &local()).unwrap();
    assert_eq!(
        (stream.payload_type, stream.codec),
        (8, PCMA),
        "G729 is skipped; PCMA is offered before PCMU"
    );
    assert_eq!(stream.telephone_event, Some(101));
    assert_eq!(
        (stream.remote_addr.to_string(), stream.remote_port),
        ("198.51.100.7".to_owned(), 40000)
    );
    let text = reply.to_string();
    assert!(text.contains("m=audio 10000 RTP/AVP 8 0 101\r\n"), "{text}");
    assert!(text.contains("a=fmtp:101 0-15\r\n"), "{text}");
    assert!(
        text.contains("m=video 0 RTP/AVP 96\r\n"),
        "video rejected with port 0: {text}"
    );
    assert!(text.contains("c=IN IP4 192.0.2.10\r\n"), "{text}");
}

#[test]
fn hold_offers_get_the_mirrored_direction() {
    let held = OFFER.replace("a=sendrecv", "a=sendonly");
    let (held_answer, stream) =
        answer(&SessionDescription::parse(&held).unwrap(), &local()).unwrap();
    assert_eq!(stream.direction, Direction::RecvOnly);
    assert!(held_answer.to_string().contains("a=recvonly"));
    let inactive = OFFER.replace("a=sendrecv", "a=inactive");
    let (_, stream) = answer(&SessionDescription::parse(&inactive).unwrap(), &local()).unwrap();
    assert_eq!(stream.direction, Direction::Inactive);
}

#[test]
fn no_common_codec_is_an_error_naming_the_offer() {
    let g729_only = OFFER.replace(
        "m=audio 40000 RTP/AVP 18 8 0 101",
        "m=audio 40000 RTP/AVP 18 101",
    );
    let err = answer(&SessionDescription::parse(&g729_only).unwrap(), &local()).unwrap_err();
    assert!(err.offered.contains("G729/8000"), "{err}");
    let rejected = OFFER.replace("m=audio 40000", "m=audio 0");
    assert!(
        answer(&SessionDescription::parse(&rejected).unwrap(), &local()).is_err(),
        "a port-0 stream is not media"
    );
}

#[test]
fn late_offer_round_trip() {
    let mut ours = local();
    ours.codecs = vec![OPUS, PCMU];
    let our_offer = offer(&ours, Direction::SendRecv);
    let text = our_offer.to_string();
    assert!(
        text.contains("m=audio 10000 RTP/AVP 111 0 101\r\n"),
        "{text}"
    );
    assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"), "{text}");
    // The peer answers (in the ACK) with PCMU only.
    let peer = "v=0\r\no=peer 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let stream = accept_answer(&our_offer, &SessionDescription::parse(peer).unwrap()).unwrap();
    assert_eq!(
        (stream.payload_type, stream.codec, stream.telephone_event),
        (0, PCMU, Some(101))
    );
    assert_eq!(stream.remote_port, 30000);
}

#[test]
fn malformed_sdp_is_refused() {
    assert_eq!(
        SessionDescription::parse("o=x\r\n").unwrap_err(),
        SdpError::Missing("v=0")
    );
    assert!(SessionDescription::parse("v=0\r\nc=IN IP4 999.1.1.1\r\n").is_err());
    assert!(SessionDescription::parse("v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
    assert!(SessionDescription::parse("v=0\r\nm=audio 4000 RTP/AVP\r\n").is_err());
    assert!(SessionDescription::parse("v=0\r\nthis is not sdp\r\n").is_err());
    let v6 = SessionDescription::parse("v=0\r\nc=IN IP6 2001:db8::1\r\nm=audio 4000 RTP/AVP 0\r\n")
        .unwrap();
    assert_eq!(
        v6.connection.unwrap().addr,
        "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
    );
}

#[test]
fn an_opus_answer_states_our_own_parameters() {
    // baresip's offer: Opus first, asking for stereo.
    let offer = SessionDescription::parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 96 0 101\r\na=rtpmap:96 opus/48000/2\r\n\
         a=fmtp:96 stereo=1;sprop-stereo=1\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n",
    )
    .unwrap();
    let mut ours = local();
    ours.codecs.push(OPUS);
    let (reply, stream) = answer(&offer, &ours).unwrap();
    assert_eq!((stream.payload_type, stream.codec), (96, OPUS));
    let text = reply.to_string();
    assert!(
        text.contains("a=fmtp:96 minptime=10;useinbandfec=1\r\n"),
        "RFC 7587 section 7: our receive parameters, not an echo: {text}"
    );
    assert!(!text.contains("stereo"), "{text}");
}

#[test]
fn telephone_event_keeps_to_the_audio_clock() {
    // A WebRTC-style offer: telephone-event at 48 kHz beside Opus, and at 8 kHz.
    let offer = |first: &str| {
        SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP {first} 101 110\r\na=rtpmap:111 opus/48000/2\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=rtpmap:110 telephone-event/48000\r\n"
        ))
        .unwrap()
    };
    let mut ours = local();
    ours.codecs.push(OPUS);
    let (reply, stream) = answer(&offer("111 0"), &ours).unwrap();
    assert_eq!(
        (stream.payload_type, stream.telephone_event),
        (111, Some(110))
    );
    assert_eq!(stream.telephone_event_rate, 48_000);
    let text = reply.to_string();
    assert!(
        text.contains("a=rtpmap:110 telephone-event/48000\r\n"),
        "{text}"
    );
    assert!(!text.contains("a=rtpmap:101"), "{text}");
    // PCMU first: the 8 kHz events.
    let (reply, stream) = answer(&offer("0 111"), &ours).unwrap();
    assert_eq!(
        (stream.payload_type, stream.telephone_event),
        (0, Some(101))
    );
    assert_eq!(stream.telephone_event_rate, 8000);
    assert!(
        reply
            .to_string()
            .contains("a=rtpmap:101 telephone-event/8000\r\n")
    );
}
