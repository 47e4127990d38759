//! Transaction behaviour on a fake clock: every timer is moved, never slept.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::msg::{MessageBuilder, parse_datagram};

const PEER: &str = "198.51.100.7:5060";

fn request(method: &str, branch: &str) -> Message {
    let text = format!(
        "{method} sip:+15551230000@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:+15557654321@198.51.100.7>;tag=abc\r\n\
To: <sip:+15551230000@192.0.2.10>\r\n\
Call-ID: call-1@198.51.100.7\r\n\
CSeq: 1 {}\r\n\
Content-Length: 0\r\n\r\n",
        if method == "ACK" { "INVITE" } else { method }
    );
    let text = if method == "ACK" {
        text.replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
    } else {
        text
    };
    parse_datagram(Bytes::from(text)).unwrap()
}

fn response_to(req: &Message, status: u16) -> Message {
    parse_datagram(MessageBuilder::response_to(req, status, "X", Some("totag")).finish()).unwrap()
}

struct H {
    layer: TransactionLayer,
    t0: Instant,
    peer: SocketAddr,
    transport: Transport,
}

impl H {
    fn new(transport: Transport) -> Self {
        Self {
            layer: TransactionLayer::new(TimerConfig::default(), 1000),
            t0: Instant::now(),
            peer: PEER.parse().unwrap(),
            transport,
        }
    }
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
    fn tick(&mut self, ms: u64) {
        let now = self.at(ms);
        self.layer.handle_timeout(now);
    }
    fn receive(&mut self, ms: u64, msg: Message) {
        let now = self.at(ms);
        self.layer.receive(now, msg, self.peer, self.transport);
    }
    fn sent(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.layer.poll_transmit())
            .map(|t| parse_datagram(t.bytes).unwrap())
            .collect()
    }
    fn events(&mut self) -> Vec<TxEvent> {
        std::iter::from_fn(|| self.layer.poll_event()).collect()
    }
    /// Sends of the request at each tick from 0 to `until_ms` (every 100 ms).
    fn sends_until(&mut self, until_ms: u64) -> Vec<u64> {
        let mut times = Vec::new();
        for ms in (0..=until_ms).step_by(100) {
            self.tick(ms);
            for _ in self.sent() {
                times.push(ms);
            }
        }
        times
    }
}

fn summary(events: &[TxEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            TxEvent::Request { msg, .. } => format!("request {}", msg.method().unwrap()),
            TxEvent::Ack { .. } => "ack".into(),
            TxEvent::Cancelled { .. } => "cancelled".into(),
            TxEvent::Response { msg, .. } => format!("response {}", msg.status().unwrap()),
            TxEvent::Stray { .. } => "stray".into(),
            TxEvent::Timeout { .. } => "timeout".into(),
            TxEvent::Terminated { .. } => "terminated".into(),
        })
        .collect()
}

#[test]
fn client_invite_timer_a_doubles_and_timer_b_gives_up() {
    let mut h = H::new(Transport::Udp);
    let tx = h
        .layer
        .send_request(
            h.at(0),
            request("INVITE", "z9hG4bK1"),
            h.peer,
            Transport::Udp,
        )
        .unwrap();
    assert_eq!(h.sent().len(), 1);
    // Retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (A = T1, doubling).
    assert_eq!(h.sends_until(31_900), [500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(h.layer.state(tx), Some(State::Calling));
    h.tick(32_000); // B = 64 * T1
    assert_eq!(summary(&h.events()), ["timeout", "terminated"]);
    assert!(h.layer.is_empty());
}

#[test]
fn client_invite_provisional_stops_retransmissions_and_non2xx_is_acked() {
    let mut h = H::new(Transport::Udp);
    let req = request("INVITE", "z9hG4bK2");
    let tx = h
        .layer
        .send_request(h.at(0), req.clone(), h.peer, Transport::Udp)
        .unwrap();
    h.sent();
    h.receive(100, response_to(&req, 180));
    assert_eq!(h.layer.state(tx), Some(State::Proceeding));
    assert!(
        h.sends_until(10_000).is_empty(),
        "no retransmission after a 1xx"
    );
    h.receive(10_000, response_to(&req, 486));
    let acks = h.sent();
    assert_eq!(acks.len(), 1);
    let ack = &acks[0];
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.to().unwrap().tag(), Some("totag"), "the response's To");
    assert_eq!(
        ack.via().unwrap().branch(),
        Some("z9hG4bK2"),
        "the same branch"
    );
    // A retransmitted 486 is ACKed again and not passed up twice.
    h.receive(10_100, response_to(&req, 486));
    assert_eq!(h.sent().len(), 1);
    assert_eq!(summary(&h.events()), ["response 180", "response 486"]);
    h.tick(10_000 + 31_999);
    assert_eq!(h.layer.state(tx), Some(State::Completed));
    h.tick(42_000); // D = 32 s on UDP
    assert_eq!(summary(&h.events()), ["terminated"]);
}

#[test]
fn client_invite_2xx_goes_to_accepted_and_retransmissions_go_up() {
    let mut h = H::new(Transport::Udp);
    let req = request("INVITE", "z9hG4bK3");
    let tx = h
        .layer
        .send_request(h.at(0), req.clone(), h.peer, Transport::Udp)
        .unwrap();
    h.sent();
    h.receive(200, response_to(&req, 200));
    assert_eq!(h.layer.state(tx), Some(State::Accepted));
    h.receive(700, response_to(&req, 200));
    assert!(h.sent().is_empty(), "the transaction does not ACK a 2xx");
    assert_eq!(summary(&h.events()), ["response 200", "response 200"]);
    h.tick(200 + 32_000); // M
    assert_eq!(summary(&h.events()), ["terminated"]);
}

#[test]
fn client_non_invite_timer_e_caps_at_t2_and_f_gives_up() {
    let mut h = H::new(Transport::Udp);
    h.layer
        .send_request(
            h.at(0),
            request("OPTIONS", "z9hG4bK4"),
            h.peer,
            Transport::Udp,
        )
        .unwrap();
    h.sent();
    // E: 0.5, 1.5, 3.5, 7.5, then every T2 = 4 s.
    assert_eq!(
        h.sends_until(20_000),
        [500, 1500, 3500, 7500, 11500, 15500, 19500]
    );
    h.tick(32_000);
    assert_eq!(summary(&h.events()), ["timeout", "terminated"]);
}

#[test]
fn client_non_invite_final_response_then_timer_k() {
    let mut h = H::new(Transport::Udp);
    let req = request("BYE", "z9hG4bK5");
    let tx = h
        .layer
        .send_request(h.at(0), req.clone(), h.peer, Transport::Udp)
        .unwrap();
    h.sent();
    h.receive(50, response_to(&req, 200));
    h.receive(60, response_to(&req, 200));
    assert_eq!(
        summary(&h.events()),
        ["response 200"],
        "the retransmission is absorbed"
    );
    assert_eq!(h.layer.state(tx), Some(State::Completed));
    h.tick(5_050); // K = T4
    assert_eq!(summary(&h.events()), ["terminated"]);
}

#[test]
fn tcp_has_no_retransmissions_and_zero_wait_timers() {
    let mut h = H::new(Transport::Tcp);
    let req = request("INVITE", "z9hG4bK6");
    h.layer
        .send_request(h.at(0), req.clone(), h.peer, Transport::Tcp)
        .unwrap();
    h.sent();
    assert!(h.sends_until(20_000).is_empty());
    h.receive(20_000, response_to(&req, 404));
    assert_eq!(h.sent().len(), 1, "the ACK");
    h.tick(20_000); // D = 0 on TCP
    assert_eq!(summary(&h.events()), ["response 404", "terminated"]);
}

#[test]
fn a_connection_that_cannot_open_fails_its_waiting_requests_at_once() {
    // Section 17.1.4: a transport error ends the client transaction, and the TU is
    // told; only transactions to that peer, over that transport, with no response.
    let mut h = H::new(Transport::Tls);
    let other: SocketAddr = "192.0.2.99:5061".parse().unwrap();
    let invite = h
        .layer
        .send_request(
            h.at(0),
            request("INVITE", "z9hG4bK7"),
            h.peer,
            Transport::Tls,
        )
        .unwrap();
    let elsewhere = h
        .layer
        .send_request(
            h.at(0),
            request("OPTIONS", "z9hG4bK8"),
            other,
            Transport::Tls,
        )
        .unwrap();
    let over_udp = h
        .layer
        .send_request(
            h.at(0),
            request("OPTIONS", "z9hG4bK9"),
            h.peer,
            Transport::Udp,
        )
        .unwrap();
    h.sent();
    h.layer.transport_failed(h.at(100), h.peer, Transport::Tls);
    assert_eq!(summary(&h.events()), ["timeout", "terminated"]);
    assert_eq!(h.layer.state(invite), None);
    assert!(h.layer.state(elsewhere).is_some());
    assert!(h.layer.state(over_udp).is_some());
}

#[test]
fn server_invite_sends_100_and_absorbs_retransmissions() {
    let mut h = H::new(Transport::Udp);
    let inv = request("INVITE", "z9hG4bK7");
    h.receive(0, inv.clone());
    let sent = h.sent();
    assert_eq!(
        sent.iter().map(|m| m.status().unwrap()).collect::<Vec<_>>(),
        [100]
    );
    let TxEvent::Request { tx, .. } = h.events().remove(0) else {
        panic!("a request")
    };
    h.receive(500, inv.clone());
    assert_eq!(
        h.sent()[0].status(),
        Some(100),
        "a retransmission gets the last provisional again"
    );
    assert!(h.events().is_empty(), "and is not passed up");
    h.layer
        .send_response(
            h.at(600),
            tx,
            MessageBuilder::response_to(&inv, 180, "Ringing", Some("t")).finish(),
        )
        .unwrap();
    h.sent();
    h.receive(900, inv.clone());
    assert_eq!(h.sent()[0].status(), Some(180));
}

#[test]
fn server_invite_non2xx_timer_g_until_ack_then_timer_i() {
    let mut h = H::new(Transport::Udp);
    let inv = request("INVITE", "z9hG4bK8");
    h.receive(0, inv.clone());
    h.sent();
    let TxEvent::Request { tx, .. } = h.events().remove(0) else {
        panic!("a request")
    };
    h.layer
        .send_response(
            h.at(0),
            tx,
            MessageBuilder::response_to(&inv, 486, "Busy Here", Some("t")).finish(),
        )
        .unwrap();
    h.sent();
    // G: 0.5, 1.5, 3.5, 7.5, then every T2.
    assert_eq!(h.sends_until(12_000), [500, 1500, 3500, 7500, 11500]);
    h.receive(12_000, request("ACK", "z9hG4bK8"));
    assert_eq!(h.layer.state(tx), Some(State::Confirmed));
    assert!(
        h.sends_until(16_000).is_empty(),
        "no retransmission after the ACK"
    );
    h.tick(12_000 + 5_000); // I = T4
    assert_eq!(summary(&h.events()), ["terminated"]);
}

#[test]
fn server_invite_without_ack_times_out_with_timer_h() {
    let mut h = H::new(Transport::Udp);
    let inv = request("INVITE", "z9hG4bK9");
    h.receive(0, inv.clone());
    let TxEvent::Request { tx, .. } = h.events().remove(0) else {
        panic!("a request")
    };
    h.layer
        .send_response(
            h.at(0),
            tx,
            MessageBuilder::response_to(&inv, 503, "Unavailable", Some("t")).finish(),
        )
        .unwrap();
    h.tick(32_000);
    assert_eq!(summary(&h.events()), ["timeout", "terminated"]);
}

#[test]
fn server_invite_2xx_is_retransmitted_until_its_ack() {
    let mut h = H::new(Transport::Udp);
    let inv = request("INVITE", "z9hG4bK10");
    h.receive(0, inv.clone());
    h.sent();
    let TxEvent::Request { tx, .. } = h.events().remove(0) else {
        panic!("a request")
    };
    h.layer
        .send_response(
            h.at(0),
            tx,
            MessageBuilder::response_to(&inv, 200, "OK", Some("t")).finish(),
        )
        .unwrap();
    assert_eq!(h.sent()[0].status(), Some(200));
    assert_eq!(h.sends_until(1_600), [500, 1500]);
    // The ACK for a 2xx has a new branch in real life; one with the INVITE's branch
    // (RFC 2543 style) is also taken as the ACK.
    h.receive(1_600, request("ACK", "z9hG4bK10"));
    assert_eq!(summary(&h.events()), ["ack"]);
    assert!(h.sends_until(10_000).is_empty());
    h.tick(32_000); // L
    assert_eq!(summary(&h.events()), ["terminated"]);
}

#[test]
fn ack_for_2xx_with_its_own_branch_goes_to_the_dialog() {
    let mut h = H::new(Transport::Udp);
    h.receive(0, request("ACK", "z9hG4bKnew"));
    assert_eq!(summary(&h.events()), ["ack"]);
    assert!(h.sent().is_empty());
}

#[test]
fn cancel_gets_200_and_reports_the_invite() {
    let mut h = H::new(Transport::Udp);
    let inv = request("INVITE", "z9hG4bK11");
    h.receive(0, inv.clone());
    h.sent();
    let TxEvent::Request { tx, .. } = h.events().remove(0) else {
        panic!("a request")
    };
    h.receive(300, request("CANCEL", "z9hG4bK11"));
    let sent = h.sent();
    assert_eq!(
        (sent[0].status(), sent[0].cseq().unwrap().method),
        (Some(200), "CANCEL")
    );
    let events = h.events();
    assert!(matches!(events[0], TxEvent::Cancelled { tx: t } if t == tx));
    // The user answers the INVITE with 487; the ACK closes it.
    h.layer
        .send_response(
            h.at(310),
            tx,
            MessageBuilder::response_to(&inv, 487, "Request Terminated", Some("t")).finish(),
        )
        .unwrap();
    assert_eq!(h.sent()[0].status(), Some(487));
    h.receive(400, request("ACK", "z9hG4bK11"));
    assert_eq!(h.layer.state(tx), Some(State::Confirmed));
}

#[test]
fn cancel_without_invite_gets_481() {
    let mut h = H::new(Transport::Udp);
    h.receive(0, request("CANCEL", "z9hG4bKnothing"));
    assert_eq!(h.sent()[0].status(), Some(481));
}

#[test]
fn server_non_invite_re_answers_retransmissions_until_timer_j() {
    let mut h = H::new(Transport::Udp);
    let opt = request("OPTIONS", "z9hG4bK12");
    h.receive(0, opt.clone());
    let TxEvent::Request { tx, .. } = h.events().remove(0) else {
        panic!("a request")
    };
    h.receive(100, opt.clone());
    assert!(h.sent().is_empty(), "Trying absorbs a retransmission");
    h.layer
        .send_response(
            h.at(200),
            tx,
            MessageBuilder::response_to(&opt, 200, "OK", Some("t")).finish(),
        )
        .unwrap();
    h.sent();
    h.receive(1_000, opt.clone());
    assert_eq!(h.sent()[0].status(), Some(200));
    h.tick(200 + 32_000); // J = 64 * T1 on UDP
    assert_eq!(summary(&h.events()), ["terminated"]);
}

#[test]
fn malformed_requests_are_refused_statelessly() {
    let mut h = H::new(Transport::Udp);
    let text = String::from_utf8(request("INVITE", "z9hG4bK13").raw().to_vec())
        .unwrap()
        .replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    h.receive(0, parse_datagram(Bytes::from(text)).unwrap());
    let sent = h.sent();
    assert_eq!(sent[0].status(), Some(400));
    assert!(
        sent[0].reason().unwrap().contains("CSeq method BYE"),
        "{:?}",
        sent[0].reason()
    );
    assert!(h.events().is_empty());
    assert!(h.layer.is_empty(), "no transaction for a refused request");
}

#[test]
fn a_full_table_answers_503_with_retry_after() {
    let mut h = H::new(Transport::Udp);
    h.layer = TransactionLayer::new(TimerConfig::default(), 1);
    h.receive(0, request("OPTIONS", "z9hG4bKa"));
    h.receive(0, request("OPTIONS", "z9hG4bKb"));
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].status(), Some(503));
    assert_eq!(
        sent[0].header(crate::msg::HeaderName::RetryAfter),
        Some("5")
    );
}

#[test]
fn stray_responses_are_reported() {
    let mut h = H::new(Transport::Udp);
    h.receive(0, response_to(&request("INVITE", "z9hG4bKgone"), 200));
    assert_eq!(summary(&h.events()), ["stray"]);
}

#[test]
fn an_ack_with_its_own_branch_stops_the_2xx_retransmissions() {
    let mut h = H::new(Transport::Udp);
    let inv = request("INVITE", "z9hG4bK14");
    h.receive(0, inv.clone());
    h.sent();
    let TxEvent::Request { tx, .. } = h.events().remove(0) else {
        panic!("a request")
    };
    h.layer
        .send_response(
            h.at(0),
            tx,
            MessageBuilder::response_to(&inv, 200, "OK", Some("t")).finish(),
        )
        .unwrap();
    h.sent();
    // RFC 3261 section 13.2.2.4: the ACK for a 2xx has a new branch, the same
    // Call-ID, CSeq number and From tag.
    h.receive(100, request("ACK", "z9hG4bKdifferent"));
    assert_eq!(summary(&h.events()), ["ack"]);
    assert!(
        h.sends_until(20_000).is_empty(),
        "no 2xx retransmission after its ACK"
    );
    h.tick(32_000);
    assert_eq!(
        summary(&h.events()),
        ["terminated"],
        "and no timeout either"
    );
}
