//! A small UAS on the stack, for SIPp scenarios and load tests.
//!
//! `cargo run --release -p sip-stack --example uas -- --listen 127.0.0.1:5080 [--ring-ms N] [--auth user:pass]`
//!
//! With `--auth`, a new INVITE or REGISTER without valid digest credentials gets 401
//! with MD5 and SHA-256 challenges (RFC 8760). With `--100rel`, an INVITE that
//! supports it gets a reliable 180 (RFC 3262), retransmitted until its PRACK, and the
//! 200 after the PRACK.
//!
//! It answers every INVITE with SDP (after a 180 and N ms with `--ring-ms`), waits
//! for the caller's BYE, answers OPTIONS and REGISTER with 200, re-INVITEs in a
//! dialog with a mirrored SDP (hold and unhold), CANCEL with 200 and 487, a method it
//! knows but does not serve with 405, and an unknown method with 501. It prints one
//! line at start and nothing per call.
#![allow(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sip_stack::auth::Challenger;
use sip_stack::dialog::prack::{self, ReliableProvisional, Retransmit};
use sip_stack::driver::{Handler, Outbox, Sockets, run};
use sip_stack::msg::{HeaderName, Message, MessageBuilder, Method};
use sip_stack::sdp::{self, Direction, LocalMedia, SessionDescription};
use sip_stack::transaction::{TimerConfig, TransactionLayer, TxEvent, TxId};

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE";

struct Uas {
    addr: SocketAddr,
    ring: Duration,
    next_tag: u64,
    /// Call-IDs of answered dialogs, until their BYE.
    dialogs: HashSet<String>,
    /// INVITEs not answered finally yet: their request and our To tag.
    ringing: HashMap<TxId, (Message, String)>,
    /// 200s to send when their ring time is up.
    due: Vec<(Instant, TxId)>,
    /// `--auth user:pass`: the challenger and the one account.
    auth: Option<(Challenger, String, String)>,
    /// `--100rel`: send the 180 reliably when the caller supports it (RFC 3262).
    reliable_180: bool,
    /// Reliable 180s waiting for their PRACK, by INVITE transaction.
    reliable: HashMap<TxId, (ReliableProvisional, String)>,
}

impl Uas {
    fn local_media(&self) -> LocalMedia {
        LocalMedia {
            addr: self.addr.ip(),
            port: 40_000,
            codecs: vec![sdp::PCMU, sdp::PCMA],
            ptime: 20,
            session_id: self.next_tag,
            session_version: 1,
        }
    }

    /// The SDP for a 200: an answer to the offer, or an offer (late-offer INVITE).
    fn sdp_for(&self, req: &Message) -> Option<String> {
        if req.body().is_empty() {
            return Some(sdp::offer(&self.local_media(), Direction::SendRecv).to_string());
        }
        let offer = SessionDescription::parse(std::str::from_utf8(req.body()).ok()?).ok()?;
        sdp::answer(&offer, &self.local_media())
            .ok()
            .map(|(a, _)| a.to_string())
    }

    fn answer(&mut self, tx: TxId, out: &mut Outbox<'_>) {
        let Some((req, tag)) = self.ringing.remove(&tx) else {
            return;
        };
        let contact = format!("<sip:uas@{}>", self.addr);
        let reply = match self.sdp_for(&req) {
            Some(body) => MessageBuilder::response_to(&req, 200, "OK", Some(&tag))
                .header("Contact", contact)
                .header("Allow", ALLOW)
                .body("application/sdp", body.as_bytes()),
            None => {
                MessageBuilder::response_to(&req, 488, "Not Acceptable Here", Some(&tag)).finish()
            }
        };
        if out.respond(tx, reply).is_ok()
            && let Ok(id) = req.call_id()
        {
            self.dialogs.insert(id.to_owned());
        }
    }

    /// With `--auth`: `Some(401)` for a new INVITE or REGISTER without valid
    /// credentials.
    fn challenge(&self, req: &Message, method: &Method) -> Option<bytes::Bytes> {
        let (challenger, user, pass) = self.auth.as_ref()?;
        let new_dialog = req.to().ok().and_then(|t| t.tag()).is_none();
        if !new_dialog || !matches!(method, Method::Invite | Method::Register) {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let creds = req.header(HeaderName::Authorization);
        let result = challenger.verify(now, method.as_str(), creds, |u| {
            (u == user).then(|| pass.clone())
        });
        let stale = match result {
            Ok(_) => return None,
            Err(sip_stack::auth::AuthError::Stale) => true,
            Err(_) => false,
        };
        let mut b = MessageBuilder::response_to(req, 401, "Unauthorized", Some("uas"));
        for c in challenger.challenges(now, stale) {
            b = b.header("WWW-Authenticate", c);
        }
        Some(b.finish())
    }

    fn on_request(&mut self, tx: TxId, req: Message, out: &mut Outbox<'_>) {
        let Some(method) = req.method().cloned() else {
            return;
        };
        if let Some(reply) = self.challenge(&req, &method) {
            let _ = out.respond(tx, reply);
            return;
        }
        let call_id = req.call_id().unwrap_or_default().to_owned();
        let in_dialog = req.to().ok().and_then(|t| t.tag()).is_some();
        let simple = |status: u16, reason: &str| {
            MessageBuilder::response_to(&req, status, reason, Some("uas"))
        };
        let reply = match method {
            Method::Invite if in_dialog && !self.dialogs.contains(&call_id) => {
                simple(481, "Call/Transaction Does Not Exist").finish()
            }
            Method::Invite => {
                self.next_tag += 1;
                let tag = if in_dialog {
                    "uas".to_owned()
                } else {
                    format!("uas{}", self.next_tag)
                };
                self.ringing.insert(tx, (req.clone(), tag.clone()));
                if self.reliable_180 && !in_dialog && prack::wants_100rel(&req) {
                    // 180 with Require: 100rel and an RSeq; the 200 waits for its PRACK.
                    let rseq = u32::try_from(self.next_tag % 1_000_000).unwrap_or(1) + 1;
                    let ringing = MessageBuilder::response_to(&req, 180, "Ringing", Some(&tag))
                        .header("Require", "100rel")
                        .header("RSeq", rseq)
                        .header("Contact", format_args!("<sip:uas@{}>", self.addr))
                        .finish();
                    let cseq = req.cseq().map(|c| c.seq).unwrap_or(1);
                    let pending = ReliableProvisional::new(
                        out.now(),
                        TimerConfig::default().t1,
                        rseq,
                        cseq,
                        ringing.clone(),
                    );
                    self.reliable.insert(tx, (pending, call_id));
                    let _ = out.respond(tx, ringing);
                } else if self.ring.is_zero() || in_dialog {
                    self.answer(tx, out);
                } else {
                    let ringing =
                        MessageBuilder::response_to(&req, 180, "Ringing", Some(&tag)).finish();
                    let _ = out.respond(tx, ringing);
                    self.due.push((out.now() + self.ring, tx));
                }
                return;
            }
            Method::Prack => {
                let invite = self
                    .reliable
                    .iter_mut()
                    .find_map(|(tx, (r, id))| (*id == call_id && r.on_prack(&req)).then_some(*tx));
                let Some(invite) = invite else {
                    let _ =
                        out.respond(tx, simple(481, "Call/Transaction Does Not Exist").finish());
                    return;
                };
                self.reliable.remove(&invite);
                let _ = out.respond(tx, simple(200, "OK").finish());
                // The PRACK came: answer now, or when the ring time is up.
                self.due.push((out.now() + self.ring, invite));
                return;
            }
            Method::Bye if self.dialogs.remove(&call_id) => simple(200, "OK").finish(),
            Method::Bye => simple(481, "Call/Transaction Does Not Exist").finish(),
            Method::Options => simple(200, "OK")
                .header("Allow", ALLOW)
                .header("Accept", "application/sdp")
                .header("Supported", "timer")
                .finish(),
            Method::Register => {
                let mut b = simple(200, "OK");
                for c in req.list(HeaderName::Contact) {
                    b = b.header("Contact", c);
                }
                b.header("Expires", 3600).finish()
            }
            Method::Info | Method::Update if self.dialogs.contains(&call_id) => {
                simple(200, "OK").finish()
            }
            Method::Extension(_) => simple(501, "Not Implemented").finish(),
            _ => simple(405, "Method Not Allowed")
                .header("Allow", ALLOW)
                .finish(),
        };
        let _ = out.respond(tx, reply);
    }
}

impl Handler for Uas {
    fn on_event(&mut self, event: TxEvent, out: &mut Outbox<'_>) {
        match event {
            TxEvent::Request { tx, msg, .. } => self.on_request(tx, msg, out),
            TxEvent::Cancelled { tx } => {
                if let Some((req, tag)) = self.ringing.remove(&tx) {
                    self.due.retain(|(_, t)| *t != tx);
                    let _ = out.respond(
                        tx,
                        MessageBuilder::response_to(&req, 487, "Request Terminated", Some(&tag))
                            .finish(),
                    );
                }
            }
            TxEvent::Terminated { tx } | TxEvent::Timeout { tx } => {
                self.ringing.remove(&tx);
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let reliable = self.reliable.values().filter_map(|(r, _)| r.poll_timeout());
        self.due.iter().map(|(at, _)| *at).chain(reliable).min()
    }

    fn on_timeout(&mut self, out: &mut Outbox<'_>) {
        let now = out.now();
        let mut gave_up = Vec::new();
        for (tx, (r, _)) in &mut self.reliable {
            match r.on_timeout(now) {
                Some(Retransmit::Send(bytes)) => {
                    let _ = out.respond(*tx, bytes);
                }
                Some(Retransmit::GiveUp) => gave_up.push(*tx),
                None => {}
            }
        }
        for tx in gave_up {
            // RFC 3262 section 3: no PRACK within 64*T1: reject with a 5xx.
            self.reliable.remove(&tx);
            if let Some((req, tag)) = self.ringing.remove(&tx) {
                let _ = out.respond(
                    tx,
                    MessageBuilder::response_to(&req, 504, "No PRACK", Some(&tag)).finish(),
                );
            }
        }
        let (ready, later): (Vec<_>, Vec<_>) = self.due.drain(..).partition(|(at, _)| *at <= now);
        self.due = later;
        for (_, tx) in ready {
            self.answer(tx, out);
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: uas --listen IP:PORT [--ring-ms N] [--auth USER:PASS] [--100rel] [--max-transactions N]"
    );
    std::process::exit(2);
}

fn main() -> std::io::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:5080".parse().unwrap_or_else(|_| usage());
    let mut ring = Duration::ZERO;
    // At 8,000 calls/s the RFC's 32 s absorb windows (timers L and J) keep about
    // 512,000 transactions open.
    let mut max_transactions = 1_000_000;
    let mut auth = None;
    let mut reliable_180 = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--max-transactions" => {
                max_transactions = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--100rel" => reliable_180 = true,
            "--auth" => {
                let pair = args.next().unwrap_or_else(|| usage());
                let (user, pass) = pair.split_once(':').unwrap_or_else(|| usage());
                auth = Some((
                    Challenger::new("voipbin", 300),
                    user.to_owned(),
                    pass.to_owned(),
                ));
            }
            "--ring-ms" => {
                ring = Duration::from_millis(
                    args.next()
                        .and_then(|a| a.parse().ok())
                        .unwrap_or_else(|| usage()),
                )
            }
            _ => usage(),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let socket = sip_stack::driver::bind_udp(listen)?;
        let addr = socket.local_addr()?;
        // TCP on the same port (RFC 3261 section 18.2.1: a server listens on both).
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let ip: IpAddr = addr.ip();
        eprintln!("uas listening on udp:{addr} and tcp:{addr} ({ip})");
        let mut uas = Uas {
            addr,
            ring,
            next_tag: 0,
            dialogs: HashSet::new(),
            ringing: HashMap::new(),
            due: Vec::new(),
            auth,
            reliable_180,
            reliable: HashMap::new(),
        };
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let layer = TransactionLayer::new(TimerConfig::default(), max_transactions);
        run(
            Sockets::udp(socket).with_tcp(listener),
            layer,
            &mut uas,
            shutdown,
        )
        .await
        .map(|_| ())
    })
}
