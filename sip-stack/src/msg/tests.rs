//! Message layer behaviour.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;

use super::*;

const INVITE: &str = "INVITE sip:+15551230000@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---2d8e;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Carrier\" <sip:+15557654321@198.51.100.7>;tag=as5f8e1a2b\r\n\
To: <sip:+15551230000@192.0.2.10>\r\n\
Call-ID: 3c26700b27ba-7f0a@198.51.100.7\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+15557654321@198.51.100.7:5060>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n\
Supported: replaces, timer\r\n\
P-Asserted-Identity: <sip:+15557654321@carrier.example>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 133\r\n\
\r\n\
v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn parse(text: &str) -> Result<Message, ParseError> {
    parse_datagram(Bytes::copy_from_slice(text.as_bytes()))
}

#[test]
fn parses_a_carrier_invite() {
    let m = parse(INVITE).unwrap();
    assert_eq!(m.method(), Some(&Method::Invite));
    assert_eq!(m.request_uri(), Some("sip:+15551230000@192.0.2.10:5060"));
    let via = m.via().unwrap();
    assert_eq!(
        (via.transport, via.port, via.branch()),
        ("UDP", Some(5060), Some("z9hG4bK-524287-1---2d8e"))
    );
    assert_eq!(m.from().unwrap().tag(), Some("as5f8e1a2b"));
    assert_eq!(m.from().unwrap().display().as_deref(), Some("Carrier"));
    assert_eq!(m.to().unwrap().tag(), None);
    assert_eq!(m.call_id().unwrap(), "3c26700b27ba-7f0a@198.51.100.7");
    assert_eq!(
        m.cseq().unwrap(),
        CSeq {
            seq: 102,
            method: "INVITE"
        }
    );
    assert_eq!(m.contacts().count(), 1);
    assert_eq!(
        m.list(HeaderName::Allow).collect::<Vec<_>>(),
        ["INVITE", "ACK", "CANCEL", "OPTIONS", "BYE"]
    );
    assert_eq!(
        m.header_named("p-asserted-identity"),
        Some("<sip:+15557654321@carrier.example>")
    );
    assert_eq!(m.body().len(), 133);
    assert!(m.body().starts_with(b"v=0"));
    check_request(&m).unwrap();
}

#[test]
fn compact_forms_folding_and_spaced_colons() {
    let text = "OPTIONS sip:a@b SIP/2.0\r\n\
v: SIP/2.0/TCP host.example;branch=z9hG4bKa\r\n\
Via  : SIP/2.0/UDP 10.0.0.1\r\n ;branch=z9hG4bKb\r\n\
f: <sip:x@y>;tag=1\r\n\
t: sip:a@b\r\n\
i: abc\r\n\
CSeq: 1 OPTIONS\r\n\
Subject: I know you're there,\r\n\
\tpick up the phone\r\n\
l: 0\r\n\r\n";
    let m = parse(text).unwrap();
    let vias: Vec<_> = m
        .vias()
        .map(|v| v.unwrap().branch().unwrap().to_owned())
        .collect();
    assert_eq!(vias, ["z9hG4bKa", "z9hG4bKb"]);
    assert_eq!(
        m.header(HeaderName::Subject),
        Some("I know you're there, pick up the phone")
    );
    assert_eq!(m.call_id().unwrap(), "abc");
    let names: Vec<&str> = m.headers().map(|h| h.name).collect();
    assert_eq!(names[0], "v", "names keep their spelling");
    check_request(&m).unwrap();
}

#[test]
fn ipv6_request_uri_and_via() {
    let text = "REGISTER sip:[2001:db8::10] SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111\r\n\
Max-Forwards: 70\r\n\
From: <sip:user@example.com>;tag=268923\r\n\
To: <sip:user@example.com>\r\n\
Call-ID: ipv6-reg\r\n\
CSeq: 1 REGISTER\r\n\
Contact: \"Caller\" <sip:caller@[2001:db8::1]>\r\n\
Content-Length: 0\r\n\r\n";
    let m = parse(text).unwrap();
    assert_eq!(
        m.via().unwrap().host,
        Host::V6("2001:db8::9:1".parse().unwrap())
    );
    let uri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(uri.host, Some(Host::V6("2001:db8::10".parse().unwrap())));
    check_request(&m).unwrap();
}

#[test]
fn responses_parse_and_bad_ones_are_errors() {
    let m = parse(
        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!((m.status(), m.reason()), (Some(180), Some("Ringing")));
    let m = parse("SIP/2.0 200\r\nl: 0\r\n\r\n").unwrap();
    assert_eq!(m.reason(), Some(""), "an empty reason phrase is legal");
    assert!(parse("SIP/2.0 99 Low\r\n\r\n").is_err());
    assert!(parse("SIP/2.0 2000 OK\r\n\r\n").is_err());
}

#[test]
fn hostile_input_is_refused_with_the_right_status() {
    let with = |extra: &str| INVITE.replacen("Max-Forwards: 70\r\n", extra, 1);
    let err = parse(&INVITE.replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1)).unwrap_err();
    assert_eq!(
        (err.status(), err.reason().as_str()),
        (505, "Version Not Supported")
    );
    assert_eq!(
        parse(&with("Max-Forwards: 70\r\nX-Nul: a\0b\r\n")).unwrap_err(),
        ParseError::ControlCharacter
    );
    let long = format!("X-Long: {}\r\n", "a".repeat(MAX_LINE + 1));
    assert_eq!(
        parse(&with(&long)).unwrap_err(),
        ParseError::LineTooLong(MAX_LINE)
    );
    let huge = format!("{INVITE}{}", "x".repeat(MAX_MESSAGE));
    assert_eq!(parse(&huge).unwrap_err().status(), 513);
    let short = INVITE.replace("Content-Length: 133", "Content-Length: 9999");
    assert!(matches!(
        parse(&short).unwrap_err(),
        ParseError::BodyTooShort { declared: 9999, .. }
    ));
    assert!(matches!(
        parse(&with("Max-Forwards 70\r\n")).unwrap_err(),
        ParseError::HeaderLine(_)
    ));
    assert_eq!(parse("garbage\r\n\r\n").unwrap_err().status(), 400);
    assert_eq!(parse("").unwrap_err(), ParseError::Incomplete);
    assert_eq!(parse(&INVITE[..200]).unwrap_err(), ParseError::Incomplete);
    let bad_utf8 = parse_datagram(Bytes::from_static(
        b"OPTIONS sip:a@b SIP/2.0\r\nX: \xff\r\n\r\n",
    ))
    .unwrap_err();
    assert_eq!(bad_utf8, ParseError::NotUtf8);
}

#[test]
fn request_checks_name_the_problem() {
    let m = parse(&INVITE.replace("CSeq: 102 INVITE", "CSeq: 102 BYE")).unwrap();
    let err = check_request(&m).unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.reason()
            .contains("CSeq method BYE does not match request method INVITE"),
        "{}",
        err.reason()
    );
    let m = parse(&INVITE.replace("Call-ID: 3c26700b27ba-7f0a@198.51.100.7\r\n", "")).unwrap();
    assert_eq!(
        check_request(&m).unwrap_err(),
        ParseError::MissingHeader("Call-ID")
    );
    let m = parse(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: many")).unwrap();
    assert!(check_request(&m).is_err());
    let m = parse(&INVITE.replace(
        "Call-ID: 3c26700b27ba-7f0a@198.51.100.7\r\n",
        "Call-ID: a\r\ni: b\r\n",
    ))
    .unwrap();
    assert!(check_request(&m).is_err(), "two Call-IDs");
}

#[test]
fn stream_framing_and_keepalives() {
    assert_eq!(
        frame(b"\r\n\r\n").unwrap(),
        Frame::KeepAlive {
            consume: 4,
            pong: true
        }
    );
    assert_eq!(
        frame(b"\r\n").unwrap(),
        Frame::KeepAlive {
            consume: 2,
            pong: false
        }
    );
    assert_eq!(frame(b"").unwrap(), Frame::NeedMore);
    let two = format!("{INVITE}{INVITE}");
    let Frame::Message { skip, len } = frame(two.as_bytes()).unwrap() else {
        panic!("a message")
    };
    assert_eq!((skip, len), (0, INVITE.len()));
    let m = parse_framed(Bytes::copy_from_slice(&two.as_bytes()[skip..skip + len])).unwrap();
    assert_eq!(m.body().len(), 133);
    assert_eq!(
        frame(&INVITE.as_bytes()[..INVITE.len() - 1]).unwrap(),
        Frame::NeedMore
    );
    let no_length = INVITE.replace("Content-Length: 133\r\n", "");
    assert_eq!(
        frame(no_length.as_bytes()).unwrap_err(),
        ParseError::MissingHeader("Content-Length")
    );
    let with_crlf = format!("\r\n{INVITE}");
    assert_eq!(
        frame(with_crlf.as_bytes()).unwrap(),
        Frame::Message {
            skip: 2,
            len: INVITE.len()
        }
    );
}

#[test]
fn response_to_copies_the_dialog_headers_and_tags_to() {
    let req = parse(INVITE).unwrap();
    let out = MessageBuilder::response_to(&req, 200, "OK", Some("b2bua1"))
        .header("Contact", "<sip:192.0.2.10>")
        .finish();
    let resp = parse_datagram(out).unwrap();
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.via().unwrap().branch(), req.via().unwrap().branch());
    assert_eq!(resp.to().unwrap().tag(), Some("b2bua1"));
    assert_eq!(resp.from().unwrap().tag(), Some("as5f8e1a2b"));
    assert_eq!(resp.call_id().unwrap(), req.call_id().unwrap());
    assert_eq!(resp.cseq().unwrap(), req.cseq().unwrap());
    assert_eq!(resp.body().len(), 0);
}

/// Found by the fuzzer: a multi-byte character where "SIP/" was looked for.
#[test]
fn multibyte_start_line_is_an_error_not_a_panic() {
    let input = [
        91u8, 120, 13, 220, 152, 220, 152, 10, 10, 112, 91, 120, 13, 112, 10, 10,
    ];
    assert!(parse_datagram(Bytes::copy_from_slice(&input)).is_err());
    assert!(parse("INVITE sip:a@b SIP/2.\u{718}\r\n\r\n").is_err());
}
