//! Client transactions: INVITE (RFC 3261 figure 5, with RFC 6026) and non-INVITE
//! (figure 6).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::msg::{HeaderName, Message, MessageBuilder, Method};

use super::{
    Kind, SendError, State, TimerName, Transaction, TransactionLayer, Transport, TxEvent, TxId,
    TxKey,
};

impl TransactionLayer {
    /// Starts a client transaction for `request` (its top Via must carry a fresh
    /// branch) and sends it to `to`. ACKs are not sent this way: an ACK for a 2xx goes
    /// out with [`TransactionLayer::send_stateless`], and the ACK for a non-2xx is
    /// sent by the INVITE's transaction itself.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        to: SocketAddr,
        transport: Transport,
    ) -> Result<TxId, SendError> {
        let key = TxKey::for_response(&request)?;
        if self.find(&key).is_some() {
            return Err(SendError::Duplicate);
        }
        if self.full() {
            return Err(SendError::Full);
        }
        let invite = request.method() == Some(&Method::Invite);
        let id = self.new_id();
        let bytes = request.raw().clone();
        let t1 = self.timers_cfg.t1;
        self.insert(
            id,
            Transaction {
                kind: if invite {
                    Kind::ClientInvite
                } else {
                    Kind::ClientNonInvite
                },
                key,
                state: if invite {
                    State::Calling
                } else {
                    State::Trying
                },
                peer: to,
                transport,
                request: Some(request),
                last_sent: None,
                interval: t1,
                armed: super::timer::Armed::default(),
                acked: false,
                ack_key: None,
            },
        );
        self.transmit(to, transport, bytes);
        let (retransmit, give_up) = if invite {
            (TimerName::A, TimerName::B)
        } else {
            (TimerName::E, TimerName::F)
        };
        if !transport.reliable() {
            self.arm(now, id, retransmit, t1);
        }
        self.arm(now, id, give_up, self.timers_cfg.t1x64());
        Ok(id)
    }

    pub(crate) fn receive_response(&mut self, now: Instant, msg: Message, source: SocketAddr) {
        let Some(status) = msg.status() else { return };
        let Some(id) = TxKey::for_response(&msg).ok().and_then(|k| self.find(&k)) else {
            self.emit(TxEvent::Stray { msg, source });
            return;
        };
        let Some(tx) = self.txs.get(&id) else { return };
        let (kind, state, reliable) = (tx.kind, tx.state, tx.transport.reliable());
        match (kind, state, status) {
            // Figure 5: Calling/Proceeding.
            (Kind::ClientInvite, State::Calling | State::Proceeding, 100..=199) => {
                self.set_state(id, State::Proceeding);
                self.cancel(id, TimerName::A);
                self.emit(TxEvent::Response { tx: id, msg });
            }
            (Kind::ClientInvite, State::Calling | State::Proceeding, 200..=299) => {
                self.set_state(id, State::Accepted);
                self.cancel(id, TimerName::A);
                self.cancel(id, TimerName::B);
                self.arm(now, id, TimerName::M, self.timers_cfg.t1x64());
                self.emit(TxEvent::Response { tx: id, msg });
            }
            (Kind::ClientInvite, State::Calling | State::Proceeding, _) => {
                self.send_ack(id, &msg);
                self.set_state(id, State::Completed);
                self.cancel(id, TimerName::A);
                self.cancel(id, TimerName::B);
                let wait = if reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32)
                };
                self.arm(now, id, TimerName::D, wait);
                self.emit(TxEvent::Response { tx: id, msg });
            }
            // RFC 6026: 2xx retransmissions go up to the user, which ACKs them.
            (Kind::ClientInvite, State::Accepted, 200..=299) => {
                self.emit(TxEvent::Response { tx: id, msg })
            }
            // A retransmitted non-2xx final: ACK it again.
            (Kind::ClientInvite, State::Completed, 300..) => {
                if let Some((peer, transport, ack)) = self
                    .txs
                    .get(&id)
                    .and_then(|t| t.last_sent.clone().map(|a| (t.peer, t.transport, a)))
                {
                    self.transmit(peer, transport, ack);
                }
            }
            // Figure 6.
            (Kind::ClientNonInvite, State::Trying | State::Proceeding, 100..=199) => {
                self.set_state(id, State::Proceeding);
                self.emit(TxEvent::Response { tx: id, msg });
            }
            (Kind::ClientNonInvite, State::Trying | State::Proceeding, _) => {
                self.set_state(id, State::Completed);
                self.cancel(id, TimerName::E);
                self.cancel(id, TimerName::F);
                let wait = if reliable {
                    Duration::ZERO
                } else {
                    self.timers_cfg.t4
                };
                self.arm(now, id, TimerName::K, wait);
                self.emit(TxEvent::Response { tx: id, msg });
            }
            _ => {} // absorbed
        }
    }

    pub(crate) fn client_timer(&mut self, now: Instant, id: TxId, timer: TimerName) {
        let cfg = self.timers_cfg;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        match timer {
            TimerName::A | TimerName::E => {
                // A doubles without a cap; E doubles up to T2, and runs at T2 once
                // a provisional response came (section 17.1.2.2).
                tx.interval = if timer == TimerName::A {
                    tx.interval * 2
                } else if tx.state == State::Proceeding {
                    cfg.t2
                } else {
                    (tx.interval * 2).min(cfg.t2)
                };
                let Some(bytes) = tx.request.as_ref().map(|r| r.raw().clone()) else {
                    return;
                };
                let (peer, transport, next) = (tx.peer, tx.transport, tx.interval);
                self.transmit(peer, transport, bytes);
                self.arm(now, id, timer, next);
            }
            TimerName::B | TimerName::F => {
                self.emit(TxEvent::Timeout { tx: id });
                self.terminate(id);
            }
            _ => self.terminate(id), // D, K, M
        }
    }

    /// Moves to `state`. After a 2xx or a non-INVITE final response the request is
    /// no longer needed (a non-2xx to an INVITE drops it when its ACK is built).
    fn set_state(&mut self, id: TxId, state: State) {
        if let Some(t) = self.txs.get_mut(&id) {
            t.state = state;
            if state == State::Accepted
                || (state == State::Completed && t.kind == Kind::ClientNonInvite)
            {
                t.request = None;
            }
        }
    }

    /// Sends the ACK for a non-2xx final response (section 17.1.1.3): the request's
    /// Request-URI, top Via, Call-ID, From, Route and CSeq number, the response's To.
    fn send_ack(&mut self, id: TxId, response: &Message) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let Some(req) = tx.request.take() else {
            return;
        };
        let req = &req;
        let mut ack = MessageBuilder::request("ACK", req.request_uri().unwrap_or_default());
        if let Some(via) = req.list(HeaderName::Via).next() {
            ack = ack.header("Via", via);
        }
        for (kind, name) in [(HeaderName::From, "From"), (HeaderName::CallId, "Call-ID")] {
            if let Some(v) = req.header(kind) {
                ack = ack.header(name, v);
            }
        }
        if let Some(to) = response.header(HeaderName::To) {
            ack = ack.header("To", to);
        }
        if let Ok(cseq) = req.cseq() {
            ack = ack.header("CSeq", format_args!("{} ACK", cseq.seq));
        }
        for route in req.list(HeaderName::Route) {
            ack = ack.header("Route", route);
        }
        let bytes = ack.header("Max-Forwards", 70).finish();
        tx.last_sent = Some(bytes.clone());
        let (peer, transport) = (tx.peer, tx.transport);
        self.transmit(peer, transport, bytes);
    }
}
