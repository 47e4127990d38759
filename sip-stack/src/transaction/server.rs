//! Server transactions: INVITE (RFC 3261 figure 7, with RFC 6026) and non-INVITE
//! (figure 8), and CANCEL (section 9.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::msg::{Message, MessageBuilder, Method, parse_datagram};

use super::{
    AckKey, Kind, SendError, State, TimerName, Transaction, TransactionLayer, Transport, TxEvent,
    TxId, TxKey,
};

impl TransactionLayer {
    pub(crate) fn receive_request(
        &mut self,
        now: Instant,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        let key = match TxKey::for_request(&msg) {
            Ok(k) => k,
            Err(e) => return self.reject_stateless(&msg, source, transport, &e),
        };
        let is_ack = msg.method() == Some(&Method::Ack);
        if let Some(id) = self.find(&key) {
            return self.retransmission(now, id, is_ack, msg, source);
        }
        if is_ack {
            // An ACK for a 2xx has its own branch: it ends that INVITE's 2xx
            // retransmissions (section 13.3.1.4), and goes to the dialog.
            if let Some(id) = AckKey::of(&msg).and_then(|k| self.by_ack.get(&k).copied()) {
                return self.retransmission(now, id, true, msg, source);
            }
            return self.emit(TxEvent::Ack { msg, source });
        }
        if let Err(e) = Self::check(&msg) {
            return self.reject_stateless(&msg, source, transport, &e);
        }
        if self.full() {
            return self.reject_full(&msg, source, transport);
        }
        let invite = msg.method() == Some(&Method::Invite);
        let cancel = msg.method() == Some(&Method::Cancel);
        let id = self.new_id();
        let peer = msg.via().map_or(source, |via| {
            crate::transport::response_address(&via, source, transport)
        });
        self.insert(
            id,
            Transaction {
                kind: if invite {
                    Kind::ServerInvite
                } else {
                    Kind::ServerNonInvite
                },
                key: key.clone(),
                state: if invite {
                    State::Proceeding
                } else {
                    State::Trying
                },
                peer,
                transport,
                request: None,
                last_sent: None,
                interval: self.timers_cfg.t1,
                armed: super::timer::Armed::default(),
                acked: false,
                ack_key: if invite { AckKey::of(&msg) } else { None },
            },
        );
        if invite {
            // 100 Trying at once, well within the 200 ms of section 17.2.1.
            let trying = MessageBuilder::reply(&msg, source, 100, "Trying", None).finish();
            self.record_and_send(id, trying);
        }
        if cancel {
            return self.handle_cancel(now, id, &key, &msg);
        }
        self.emit(TxEvent::Request {
            tx: id,
            msg,
            source,
            transport,
        });
    }

    /// A request for an open transaction: a retransmission, or the ACK of a non-2xx.
    fn retransmission(
        &mut self,
        now: Instant,
        id: TxId,
        is_ack: bool,
        msg: Message,
        source: SocketAddr,
    ) {
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        match (tx.kind, tx.state, is_ack) {
            (Kind::ServerInvite, State::Completed, true) => {
                tx.state = State::Confirmed;
                let reliable = tx.transport.reliable();
                self.cancel(id, TimerName::G);
                self.cancel(id, TimerName::H);
                let wait = if reliable {
                    Duration::ZERO
                } else {
                    self.timers_cfg.t4
                };
                self.arm(now, id, TimerName::I, wait);
            }
            // The ACK for our 2xx: stop retransmitting it, and pass it up.
            (Kind::ServerInvite, State::Accepted, true) if !tx.acked => {
                tx.acked = true;
                // Accepted only absorbs retransmissions from now on (RFC 6026): the
                // 2xx is not sent again, so its bytes can go.
                tx.last_sent = None;
                self.cancel(id, TimerName::G);
                self.emit(TxEvent::Ack { msg, source });
            }
            (_, State::Proceeding | State::Completed, false) => {
                if let Some(last) = tx.last_sent.clone() {
                    let (peer, transport) = (tx.peer, tx.transport);
                    self.transmit(peer, transport, last);
                }
            }
            _ => {} // absorbed: Trying, Accepted, Confirmed
        }
    }

    /// CANCEL (section 9.2): 200 when it matches an INVITE transaction, 481 when not;
    /// an INVITE still without a final response is reported as cancelled.
    fn handle_cancel(&mut self, now: Instant, id: TxId, key: &TxKey, msg: &Message) {
        let invite_key = key.with_method("INVITE");
        let invite = self.find(&invite_key);
        let (status, reason) = if invite.is_some() {
            (200, "OK")
        } else {
            (481, "Call/Transaction Does Not Exist")
        };
        let reply = MessageBuilder::response_to(msg, status, reason, Some("cancel")).finish();
        // The transaction's own state machine sends it (and re-sends it).
        if let Err(e) = self.send_response(now, id, reply) {
            // The CANCEL's own transaction was just made: only a bug gets here.
            tracing::error!(error = %e, "answering a CANCEL failed");
        }
        if let Some(inv) = invite
            && self
                .txs
                .get(&inv)
                .is_some_and(|t| t.state == State::Proceeding)
        {
            self.emit(TxEvent::Cancelled { tx: inv });
        }
    }

    /// Sends a response on a server transaction (bytes built with
    /// [`MessageBuilder::response_to`]).
    pub fn send_response(
        &mut self,
        now: Instant,
        id: TxId,
        response: Bytes,
    ) -> Result<(), SendError> {
        let msg = parse_datagram(response.clone())?;
        let status = msg.status().ok_or(SendError::NoTransaction(id))?;
        let tx = self.txs.get(&id).ok_or(SendError::NoTransaction(id))?;
        let (kind, state, reliable) = (tx.kind, tx.state, tx.transport.reliable());
        let cfg = self.timers_cfg;
        match (kind, state, status) {
            (Kind::ServerInvite, State::Proceeding, 100..=199) => {
                self.record_and_send(id, response)
            }
            (Kind::ServerInvite, State::Proceeding, 200..=299) => {
                self.set_server_state(id, State::Accepted);
                self.record_and_send(id, response);
                // Retransmit the 2xx until the ACK (section 13.3.1.4), for 64*T1.
                if !reliable {
                    self.arm(now, id, TimerName::G, cfg.t1);
                }
                self.arm(now, id, TimerName::L, cfg.t1x64());
            }
            (Kind::ServerInvite, State::Proceeding, _) => {
                self.set_server_state(id, State::Completed);
                self.record_and_send(id, response);
                if !reliable {
                    self.arm(now, id, TimerName::G, cfg.t1);
                }
                self.arm(now, id, TimerName::H, cfg.t1x64());
            }
            (Kind::ServerNonInvite, State::Trying | State::Proceeding, 100..=199) => {
                self.set_server_state(id, State::Proceeding);
                self.record_and_send(id, response);
            }
            (Kind::ServerNonInvite, State::Trying | State::Proceeding, _) => {
                self.set_server_state(id, State::Completed);
                self.record_and_send(id, response);
                let wait = if reliable {
                    Duration::ZERO
                } else {
                    cfg.t1x64()
                };
                self.arm(now, id, TimerName::J, wait);
            }
            _ => return Err(SendError::NoTransaction(id)),
        }
        Ok(())
    }

    pub(crate) fn server_timer(&mut self, now: Instant, id: TxId, timer: TimerName) {
        let cfg = self.timers_cfg;
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        match timer {
            TimerName::G => {
                tx.interval = (tx.interval * 2).min(cfg.t2);
                let next = tx.interval;
                if let Some(last) = tx.last_sent.clone() {
                    let (peer, transport) = (tx.peer, tx.transport);
                    self.transmit(peer, transport, last);
                }
                self.arm(now, id, TimerName::G, next);
            }
            TimerName::H => {
                self.emit(TxEvent::Timeout { tx: id });
                self.terminate(id);
            }
            TimerName::L => {
                if !tx.acked {
                    self.emit(TxEvent::Timeout { tx: id });
                }
                self.terminate(id);
            }
            _ => self.terminate(id), // I, J
        }
    }

    fn record_and_send(&mut self, id: TxId, bytes: Bytes) {
        if let Some(t) = self.txs.get_mut(&id) {
            t.last_sent = Some(bytes.clone());
            let (peer, transport) = (t.peer, t.transport);
            self.transmit(peer, transport, bytes);
        }
    }

    fn set_server_state(&mut self, id: TxId, state: State) {
        if let Some(t) = self.txs.get_mut(&id) {
            t.state = state;
        }
    }
}
