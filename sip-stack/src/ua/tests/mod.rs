//! The user agent's call flows, scripted between two user agents on a fake clock:
//! Alice's and Bob's datagrams are handed across in memory, so every message and
//! timer is checked without a socket or a sleep. Here the harness; `rfc3665` has the
//! basic call flows (each test names the section it follows; the proxies of those
//! flows are left out), `extensions` the rest.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::auth::Challenger;
use crate::dialog::reason::Reason;
use crate::msg::parse_datagram;

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
const ANSWER: &str = "v=0\r\no=bob 2 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 3456 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn alice_addr() -> SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}
fn bob_addr() -> SocketAddr {
    "192.0.2.2:5060".parse().unwrap()
}

/// Two user agents wired back to back, a clock, and the trace of what crossed.
struct Pair {
    alice: UserAgent,
    bob: UserAgent,
    now: Instant,
    trace: Vec<String>,
    /// Drop the next N datagrams from Alice (to script loss).
    drop_from_alice: usize,
    /// Drop the next N datagrams from Bob.
    drop_from_bob: usize,
    /// Keep Bob deaf: nothing reaches him.
    bob_unreachable: bool,
    alice_events: Vec<UaEvent>,
    bob_events: Vec<UaEvent>,
}

/// A call from Alice to Bob with `sdp` and extra `headers`, straight to Bob.
fn to_bob(sdp: Option<String>, headers: Vec<(String, String)>) -> OutgoingCall {
    OutgoingCall {
        target: "sip:bob@192.0.2.2".into(),
        from: "<sip:alice@192.0.2.1>".into(),
        to: None,
        next_hop: bob_addr(),
        via_proxy: false,
        transport: Transport::Udp,
        credentials: None,
        sdp,
        headers,
        max_forwards: 70,
        no_reply_timeout: None,
    }
}

/// A short line for a message: `INVITE`, `180`, `ACK`...
fn line(msg: &Message) -> String {
    match msg.status() {
        Some(s) => format!(
            "{s} ({})",
            msg.cseq().map(|c| c.method.to_owned()).unwrap_or_default()
        ),
        None => msg
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
    }
}

impl Pair {
    fn new() -> Self {
        Self {
            alice: UserAgent::new(UaConfig::new(alice_addr())),
            bob: UserAgent::new(UaConfig::new(bob_addr())),
            now: Instant::now(),
            trace: Vec::new(),
            drop_from_alice: 0,
            drop_from_bob: 0,
            bob_unreachable: false,
            alice_events: Vec::new(),
            bob_events: Vec::new(),
        }
    }

    /// Moves datagrams both ways until nothing is left in flight.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.alice.poll_transmit() {
                moved = true;
                let msg = parse_datagram(t.bytes).unwrap();
                if self.drop_from_alice > 0 {
                    self.drop_from_alice -= 1;
                    self.trace.push(format!("A->B {} (lost)", line(&msg)));
                    continue;
                }
                if self.bob_unreachable {
                    self.trace.push(format!("A->B {} (unanswered)", line(&msg)));
                    continue;
                }
                self.trace.push(format!("A->B {}", line(&msg)));
                assert_eq!(t.to, bob_addr());
                self.bob.receive(self.now, msg, alice_addr(), t.transport);
            }
            while let Some(t) = self.bob.poll_transmit() {
                moved = true;
                let msg = parse_datagram(t.bytes).unwrap();
                if self.drop_from_bob > 0 {
                    self.drop_from_bob -= 1;
                    self.trace.push(format!("B->A {} (lost)", line(&msg)));
                    continue;
                }
                self.trace.push(format!("B->A {}", line(&msg)));
                assert_eq!(t.to, alice_addr());
                self.alice.receive(self.now, msg, bob_addr(), t.transport);
            }
            self.alice_events
                .extend(std::iter::from_fn(|| self.alice.poll_event()));
            self.bob_events
                .extend(std::iter::from_fn(|| self.bob.poll_event()));
            if !moved {
                return;
            }
        }
        panic!("the two user agents never settled: {:?}", self.trace);
    }

    /// Moves the clock on by `ms`, running every timer on the way (100 ms steps).
    fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            self.now = (self.now + Duration::from_millis(100)).min(end);
            self.alice.handle_timeout(self.now);
            self.bob.handle_timeout(self.now);
            self.settle();
        }
    }

    fn place(&mut self, sdp: Option<&str>) -> CallRef {
        let call = self
            .alice
            .call(
                self.now,
                OutgoingCall {
                    target: "sip:bob@192.0.2.2".into(),
                    from: "Alice <sip:alice@192.0.2.1>".into(),
                    to: Some("Bob <sip:bob@192.0.2.2>".into()),
                    next_hop: bob_addr(),
                    via_proxy: false,
                    transport: Transport::Udp,
                    credentials: Some(Credentials {
                        username: "alice".into(),
                        password: "secret".into(),
                    }),
                    sdp: sdp.map(str::to_owned),
                    max_forwards: 70,
                    no_reply_timeout: None,
                    headers: vec![(
                        "P-Asserted-Identity".into(),
                        "<sip:+15551230000@192.0.2.1>".into(),
                    )],
                },
            )
            .unwrap();
        self.settle();
        call
    }

    /// Bob's latest incoming call.
    fn bob_incoming(&self) -> (CallRef, Message, Option<String>) {
        self.bob_events
            .iter()
            .rev()
            .find_map(|e| match e {
                UaEvent::Incoming {
                    call,
                    invite,
                    offer,
                    ..
                } => Some((*call, invite.clone(), offer.clone())),
                _ => None,
            })
            .expect("Bob got no INVITE")
    }

    fn take_trace(&mut self) -> Vec<String> {
        std::mem::take(&mut self.trace)
    }
}

fn ended(events: &[UaEvent]) -> Vec<(Side, EndCause)> {
    events
        .iter()
        .filter_map(|e| match e {
            UaEvent::Ended { by, cause, .. } => Some((*by, cause.clone())),
            _ => None,
        })
        .collect()
}

mod extensions;
mod rfc3665;
mod screening;
