//! RFC 4475's torture messages and RFC 5118's IPv6 ones
//! (`tests/vectors/torture/{valid,invalid}/`, see the README there): every valid one
//! parses with the values the RFC describes, and every message goes through a user
//! agent whose engine answers whatever reaches it with 2xx, so an invalid request
//! that slipped through would show as a 2xx. Invalid requests get the status the RFC
//! names, with a reason phrase naming the problem; invalid responses are dropped.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use sip_stack::msg::{Host, Message, Method, Scheme, Uri, parse_datagram};
use sip_stack::transaction::Transport;
use sip_stack::ua::{UaConfig, UaEvent, UserAgent};

fn load(name: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/torture")
        .join(format!("{name}.dat"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn parse(name: &str) -> Message {
    parse_datagram(load(name)).unwrap_or_else(|e| panic!("{name} must parse: {e}"))
}

/// The final responses a user agent sends to `name`, with an engine that answers
/// every call and request it sees with 2xx.
fn responses(name: &str) -> Vec<(u16, String)> {
    let local: SocketAddr = "192.0.2.10:5060".parse().unwrap();
    let peer: SocketAddr = "192.0.2.99:5060".parse().unwrap();
    let mut ua = UserAgent::new(UaConfig::new(local));
    let now = Instant::now();
    let raw = load(name);
    match parse_datagram(raw.clone()) {
        Ok(msg) => ua.receive(now, msg, peer, Transport::Udp),
        Err(e) => ua.receive_malformed(&raw, &e, peer, Transport::Udp),
    }
    while let Some(event) = ua.poll_event() {
        match event {
            UaEvent::Incoming { call, .. } => {
                ua.answer(now, call, Some("v=0\r\n")).unwrap();
            }
            UaEvent::Request { tx, .. } => ua.respond(now, tx, 200, &[], None).unwrap(),
            _ => {}
        }
    }
    std::iter::from_fn(|| ua.poll_transmit())
        .map(|t| parse_datagram(t.bytes).unwrap())
        .filter_map(|m| Some((m.status()?, m.reason()?.to_owned())))
        .filter(|(s, _)| *s >= 200)
        .collect()
}

/// Asserts `name` gets exactly one final response with one of `statuses`, and that a
/// 400's reason phrase says more than "Bad Request".
fn refused(name: &str, statuses: &[u16]) {
    let got = responses(name);
    assert_eq!(got.len(), 1, "{name}: {got:?}");
    let (status, reason) = &got[0];
    assert!(
        statuses.contains(status),
        "{name}: got {status} {reason}, want {statuses:?}"
    );
    if *status == 400 {
        assert!(
            reason.len() > "Bad Request".len(),
            "{name}: the reason names nothing: {reason}"
        );
    }
}

/// Asserts nothing is sent for `name` (an invalid response is dropped).
fn dropped(name: &str) {
    assert_eq!(responses(name), [], "{name}");
}

/// Asserts `name` is served: a request (but an ACK, which is never answered) gets a
/// final response, and it is not a refusal for its form. (An empty list used to
/// pass: a valid request left unanswered is a failure too.)
fn served(name: &str) {
    let got = responses(name);
    let msg = parse(name);
    if msg.is_request() && msg.method() != Some(&Method::Ack) {
        assert!(!got.is_empty(), "{name} is valid but got no final response");
    }
    for (status, reason) in got {
        assert!(
            ![400, 416, 505, 513].contains(&status),
            "{name} is valid but got {status} {reason}"
        );
    }
}

// ---------------------------------------------------------------- valid (3.1.1)

#[test]
fn wsinv_short_tortuous_invite() {
    let m = parse("valid/wsinv");
    assert_eq!(m.method(), Some(&Method::Invite));
    let ruri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(
        (ruri.user, ruri.host),
        (Some("vivekg"), Some(Host::Name("chair-dnrc.example.com")))
    );
    assert!(ruri.params.has("unknownparam"));
    let to = m.to().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    assert_eq!(to.uri, "sip:vivekg@chair-dnrc.example.com");
    let from = m.from().unwrap();
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(from.display().as_deref(), Some(r#"J Rosenberg \""#));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, "INVITE"));
    let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport, vias[0].branch()),
        ("UDP", Some("390skdjuw"))
    );
    assert_eq!(vias[0].host, Host::V4("192.0.2.2".parse().unwrap()));
    assert_eq!(
        (vias[1].transport, vias[1].branch()),
        ("TCP", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(vias[1].host, Host::Name("spindle.example.com"));
    assert_eq!(
        (vias[2].transport, vias[2].branch()),
        ("UDP", Some("z9hG4bK30239"))
    );
    assert_eq!(m.header_named("Subject"), Some(""));
    assert_eq!(
        m.header_named("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        m.header_named("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let contact = m.contacts().next().unwrap().unwrap();
    assert_eq!(contact.display().as_deref(), Some(r#"Quoted string """#));
    assert_eq!(contact.params.value("newparam"), Some("newvalue"));
    assert!(contact.params.has("secondparam"));
    assert_eq!(contact.params.value("q"), Some("0.33"));
    assert_eq!(m.body().len(), 150);
    // A To tag names a dialog this user agent does not have: 481, not a refusal.
    assert_eq!(responses("valid/wsinv")[0].0, 481);
}

#[test]
fn intmeth_wide_range_of_valid_characters() {
    let m = parse("valid/intmeth");
    let method = m.method().unwrap().as_str().to_owned();
    assert_eq!(method, "!interesting-Method0123456789_*+`.%indeed'~");
    let ruri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(
        ruri.user,
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        ruri.password,
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(ruri.host, Some(Host::Name("example.com")));
    assert_eq!(m.via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let from = m.from().unwrap();
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(from.display_raw, Some("token1~` token2'+_ token3*%!.-"));
    assert_eq!(
        m.call_id().unwrap(),
        r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#
    );
    assert_eq!(m.cseq().unwrap().seq, 139_122_385);
    assert_eq!(m.max_forwards().unwrap(), Some(255));
    assert_eq!(
        m.header_named("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
    // Endpoints answer an unknown method with 501 and their Allow.
    assert_eq!(responses("valid/intmeth")[0].0, 501);
}

#[test]
fn esc01_escnull_esc02_percent_escapes() {
    let m = parse("valid/esc01");
    assert_eq!(
        Uri::parse(m.request_uri().unwrap()).unwrap().user,
        Some("sips%3Auser%40example.com")
    );
    assert_eq!(m.call_id().unwrap(), "esc01.239409asdfakjkn23onasd0-3234");
    let contact = m.contacts().next().unwrap().unwrap();
    let uri = contact.parsed_uri().unwrap();
    assert_eq!(uri.user, Some("cal%6Cer"));
    assert_eq!(uri.params.value("n%61me"), Some("v%61lue%25%34%31"));
    served("valid/esc01");

    let m = parse("valid/escnull");
    assert_eq!(m.contacts().count(), 2);
    assert_eq!(
        m.to().unwrap().parsed_uri().unwrap().user,
        Some("null-%00-null")
    );
    served("valid/escnull");

    let m = parse("valid/esc02");
    assert_eq!(m.method().unwrap().as_str(), "RE%47IST%45R");
    assert_eq!(
        m.contacts().count(),
        2,
        "C%6Fntact is another header, not Contact"
    );
    assert_eq!(
        m.header_named("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
    assert_eq!(m.via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    assert_eq!(responses("valid/esc02")[0].0, 501);
}

#[test]
fn lwsdisp_longreq_dblreq_semiuri_transports() {
    let m = parse("valid/lwsdisp");
    assert_eq!(m.from().unwrap().display().as_deref(), Some("caller"));
    served("valid/lwsdisp");

    let m = parse("valid/longreq");
    assert_eq!(m.vias().count(), 34);
    let to = m.to().unwrap().parsed_uri().unwrap();
    assert_eq!(to.port, Some(6000));
    assert!(to.params.has(&format!(
        "very{}ParameterNameWithNoValue",
        "long".repeat(25)
    )));
    assert_eq!(m.from().unwrap().tag().map(str::len), Some(2 + 150 + 3));
    assert_eq!(m.body().len(), 150);
    served("valid/longreq");

    let m = parse("valid/dblreq");
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(
        m.body().is_empty(),
        "the INVITE after Content-Length: 0 is ignored"
    );
    served("valid/dblreq");

    let m = parse("valid/semiuri");
    assert_eq!(
        Uri::parse(m.request_uri().unwrap()).unwrap().user,
        Some("user;par=u%40example.net")
    );
    assert_eq!(m.list(sip_stack::msg::HeaderName::Accept).count(), 6);
    served("valid/semiuri");

    let m = parse("valid/transports");
    let transports: Vec<_> = m.vias().map(|v| v.unwrap().transport).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    served("valid/transports");
}

#[test]
fn mpart01_unreason_noreason() {
    let m = parse("valid/mpart01");
    assert_eq!(m.body().len(), 553);
    assert!(m.body().ends_with(b"--7a9cbec02ceef655--\r\n"));
    served("valid/mpart01");

    let m = parse("valid/unreason");
    assert_eq!(m.status(), Some(200));
    assert!(
        m.reason()
            .unwrap()
            .starts_with("= 2**3 * 5**2 но сто девяносто")
    );
    let m = parse("valid/noreason");
    assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
    // Responses to nothing of ours are dropped, not answered.
    dropped("valid/unreason");
    dropped("valid/noreason");
}

// -------------------------------------- valid (3.2, 3.3 and 3.4: semantics)

#[test]
fn valid_semantics_are_served() {
    // badbranch: a branch of the magic cookie alone; unksm2: unknown schemes in
    // To, From and Contact; regaut01: an unknown authorization scheme; zeromf:
    // Max-Forwards 0 at a UAS; cparam01/02, regescrt: Contact parameters and an
    // escaped header; inv2543: an RFC 2543 INVITE without branch, Max-Forwards or
    // Content-Length.
    for name in [
        "badbranch",
        "unksm2",
        "regaut01",
        "zeromf",
        "cparam01",
        "cparam02",
        "regescrt",
        "inv2543",
    ] {
        served(&format!("valid/{name}"));
    }
    let m = parse("valid/unksm2");
    assert_eq!(m.to().unwrap().uri, "isbn:2983792873");
    assert!(
        m.to().unwrap().parsed_uri().is_err(),
        "not a SIP URI, kept as text"
    );
    assert_eq!(m.contacts().next().unwrap().unwrap().uri, "name:John_Smith");
    let m = parse("valid/cparam01");
    let c = m.contacts().next().unwrap().unwrap();
    assert!(
        c.params.has("unknownparam"),
        "a header parameter of an addr-spec Contact"
    );
    assert!(!c.parsed_uri().unwrap().params.has("unknownparam"));
    let m = parse("valid/cparam02");
    let c = m.contacts().next().unwrap().unwrap();
    assert!(c.parsed_uri().unwrap().params.has("unknownparam"));
    let m = parse("valid/inv2543");
    assert_eq!(m.header(sip_stack::msg::HeaderName::ContentLength), None);
    assert!(m.body().starts_with(b"v=0\r\n") && m.body().ends_with(b"RTP/AVP 0\r\n"));
    assert_eq!(responses("valid/inv2543")[0].0, 200);
    let m = parse("valid/zeromf");
    assert_eq!(m.max_forwards().unwrap(), Some(0));
    assert_eq!(responses("valid/zeromf")[0].0, 200);
    dropped("valid/bcast");
}

// ------------------------------------------------------------ RFC 5118 valid

#[test]
fn rfc5118_ipv6() {
    fn host(m: &Message) -> Host<'_> {
        Uri::parse(m.request_uri().unwrap()).unwrap().host.unwrap()
    }
    let v6 = |s: &str| Host::V6(s.parse().unwrap());
    let m = parse("valid/ipv6-good");
    assert_eq!(host(&m), v6("2001:db8::10"));
    assert_eq!(m.via().unwrap().host, v6("2001:db8::9:1"));
    let m = parse("valid/port-ambiguous");
    let u = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!((u.host, u.port), (Some(v6("2001:db8::10:5070")), None));
    let m = parse("valid/port-unambiguous");
    let u = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!((u.host, u.port), (Some(v6("2001:db8::10")), Some(5070)));
    assert_eq!(
        parse("valid/via-received-param-with-delim")
            .via()
            .unwrap()
            .received(),
        Some("[2001:db8::9:255]")
    );
    assert_eq!(
        parse("valid/via-received-param-no-delim")
            .via()
            .unwrap()
            .received(),
        Some("2001:db8::9:255")
    );
    let m = parse("valid/mult-ip-in-header");
    let hosts: Vec<_> = m.vias().map(|v| v.unwrap().host).collect();
    assert_eq!(
        hosts,
        [
            v6("2001:db8::9:1"),
            Host::V4("192.0.2.1".parse().unwrap()),
            v6("2001:db8::9:255")
        ]
    );
    assert_eq!(m.via().unwrap().port, Some(6050));
    let m = parse("valid/ipv4-mapped-ipv6");
    assert_eq!(m.via().unwrap().host, v6("::ffff:192.0.2.10"));
    assert_eq!(
        parse("valid/ipv6-bug-abnf-3-colons")
            .to()
            .unwrap()
            .parsed_uri()
            .unwrap()
            .host,
        Some(v6("2001:db8::192.0.2.1"))
    );
    assert_eq!(
        host(&parse("valid/ipv6-correct-abnf-2-colons")),
        v6("2001:db8::192.0.2.1")
    );
    for name in [
        "ipv6-good",
        "port-ambiguous",
        "port-unambiguous",
        "via-received-param-with-delim",
        "via-received-param-no-delim",
        "ipv6-in-sdp",
        "mult-ip-in-header",
        "mult-ip-in-sdp",
        "ipv4-mapped-ipv6",
        "ipv6-bug-abnf-3-colons",
        "ipv6-correct-abnf-2-colons",
    ] {
        served(&format!("valid/{name}"));
    }
    let sdp = parse("valid/ipv6-in-sdp");
    let sdp = sip_stack::sdp::SessionDescription::parse(std::str::from_utf8(sdp.body()).unwrap())
        .unwrap();
    assert_eq!(
        sdp.media_addr(&sdp.media[0]),
        Some("2001:db8::20".parse().unwrap())
    );
    assert_eq!(
        Scheme::Sip,
        Uri::parse("sip:[2001:db8::10]").unwrap().scheme
    );
}

// ------------------------------------------------------------ invalid

#[test]
fn invalid_requests_get_the_status_the_rfc_names() {
    for (name, statuses) in [
        ("badinv01", &[400][..]),
        ("clerr", &[400]),
        ("ncl", &[400]),
        ("scalar02", &[400]),
        ("quotbal", &[400]),
        ("ltgtruri", &[400]),
        ("lwsruri", &[400]),
        ("escruri", &[400]),
        ("regbadct", &[400]),
        ("badaspec", &[400]),
        ("baddn", &[400]),
        ("badvers", &[505]),
        ("mismatch01", &[400]),
        // 501 is allowed too; the CSeq mismatch is found first.
        ("mismatch02", &[400, 501]),
        ("insuf", &[400]),
        ("unkscm", &[416]),
        ("novelsc", &[416]),
        ("bext01", &[420]),
        ("invut", &[415]),
        ("multi01", &[400]),
        ("mcl01", &[400]),
        ("sdp01", &[406]),
        ("ipv6-bad", &[400]),
    ] {
        refused(&format!("invalid/{name}"), statuses);
    }
}

#[test]
fn invalid_responses_are_dropped() {
    dropped("invalid/scalarlg");
    dropped("invalid/bigcode");
}

/// Where RFC 4475 lets an element be liberal: extra SP in the request line
/// (sections 3.1.2.9 and 3.1.2.10) and a Date that is not GMT (section 3.1.2.12)
/// are ignored and the request is served.
#[test]
fn tolerated_where_the_rfc_allows() {
    for name in ["lwsstart", "trws", "baddate"] {
        let got = responses(&format!("invalid/{name}"));
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        assert_eq!(got[0].0, 200, "{name}: {got:?}");
    }
}

/// Every message on disk is covered by a test above.
#[test]
fn every_vector_is_listed() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/torture");
    let mut count = 0;
    for sub in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(name.ends_with(".dat"), "{name}");
            count += 1;
        }
    }
    assert_eq!(count, 61, "RFC 4475 has 49 messages and RFC 5118 has 12");
    let source = include_str!("torture.rs");
    for sub in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let stem = name.trim_end_matches(".dat");
            assert!(
                source.contains(&format!("\"{stem}\""))
                    || source.contains(&format!("{sub}/{stem}\"")),
                "{sub}/{stem} is not tested"
            );
        }
    }
}
