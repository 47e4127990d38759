//! Dialog behaviour (RFC 3261 section 12).
#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use super::*;
use crate::msg::parse_datagram;

fn msg(text: &str) -> Message {
    parse_datagram(Bytes::copy_from_slice(
        text.replace('\n', "\r\n").as_bytes(),
    ))
    .unwrap()
}

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 1 INVITE
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>
Contact: <sip:alice@client.atlanta.example.com>
Content-Length: 0

";

#[test]
fn uas_dialog_from_invite() {
    let d = Dialog::uas(&msg(INVITE), "8321234356", DialogState::Confirmed).unwrap();
    assert_eq!(d.id.remote_tag, "9fxced76sl");
    assert_eq!(d.remote_target, "sip:alice@client.atlanta.example.com");
    assert_eq!(
        d.route_set,
        ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"],
        "in order at the UAS"
    );
    assert_eq!(d.remote_seq, Some(1));
}

#[test]
fn uac_dialog_reverses_the_route_set_and_builds_requests() {
    let ok = msg("SIP/2.0 200 OK
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356
Call-ID: 3848276298220188511@atlanta.example.com
CSeq: 1 INVITE
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>
Contact: <sip:bob@192.0.2.4>
Content-Length: 0

");
    let mut d = Dialog::uac(&msg(INVITE), &ok).unwrap();
    assert_eq!(d.state, DialogState::Confirmed);
    assert_eq!(
        d.route_set,
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"],
        "reversed at the UAC"
    );
    let bye = parse_datagram(
        d.request(
            "BYE",
            "client.atlanta.example.com:5060",
            "UDP",
            "z9hG4bKnashds7",
        )
        .finish(),
    )
    .unwrap();
    assert_eq!(
        bye.request_uri(),
        Some("sip:bob@192.0.2.4"),
        "loose routing: the remote target"
    );
    assert_eq!(
        bye.list(HeaderName::Route).collect::<Vec<_>>(),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(bye.cseq().unwrap().seq, 2);
    assert_eq!(bye.to().unwrap().tag(), Some("8321234356"));
    assert_eq!(bye.from().unwrap().tag(), Some("9fxced76sl"));
    let ack = parse_datagram(d.request("ACK", "h", "UDP", "z9hG4bKa").finish()).unwrap();
    assert_eq!(
        ack.cseq().unwrap().seq,
        2,
        "an ACK does not take a new number"
    );
}

#[test]
fn strict_routing_puts_the_first_route_in_the_request_uri() {
    let invite = INVITE.replace(
        "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>",
        "Record-Route: <sip:strict.example.com>",
    );
    let mut d = Dialog::uas(&msg(&invite), "t", DialogState::Confirmed).unwrap();
    let bye = parse_datagram(d.request("BYE", "h", "UDP", "z9hG4bKb").finish()).unwrap();
    assert_eq!(bye.request_uri(), Some("sip:strict.example.com"));
    assert_eq!(
        bye.list(HeaderName::Route).collect::<Vec<_>>(),
        ["<sip:alice@client.atlanta.example.com>"]
    );
}

#[test]
fn in_dialog_requests_must_raise_the_cseq_and_refresh_the_target() {
    let mut d = Dialog::uas(&msg(INVITE), "t", DialogState::Confirmed).unwrap();
    let reinvite = |seq: u32, contact: &str| {
        msg(&INVITE
            .replace(
                "To: Bob <sip:bob@biloxi.example.com>",
                "To: Bob <sip:bob@biloxi.example.com>;tag=t",
            )
            .replace("CSeq: 1 INVITE", &format!("CSeq: {seq} INVITE"))
            .replace("<sip:alice@client.atlanta.example.com>", contact))
    };
    assert_eq!(
        d.on_request(&reinvite(1, "<sip:a@x>")),
        Err(DialogError::OutOfOrder { last: 1, got: 1 })
    );
    d.on_request(&reinvite(2, "<sip:alice@192.0.2.99:5070>"))
        .unwrap();
    assert_eq!(d.remote_target, "sip:alice@192.0.2.99:5070");
    assert_eq!(
        DialogId::of_request(&reinvite(3, "<sip:a@x>")).unwrap(),
        d.id
    );
}
