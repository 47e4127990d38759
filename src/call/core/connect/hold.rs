//! Hold across the bridge: when one side of a connected call holds (its offer says
//! it sends nothing: `a=sendonly` or `a=inactive`, RFC 3264 section 8.4), the other
//! side is told with a re-INVITE offering `a=sendonly`, and with `a=sendrecv` when
//! it resumes, so each phone shows what the other did (RFC 6337 section 5.3).

use super::*;

/// Which side of the bridge holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::call::core) enum Holder {
    /// The caller.
    Caller,
    /// The connected callee.
    Callee,
}

impl CallCore {
    /// One side's offer said whether it holds (`holding`): the other side hears
    /// of it once per change.
    pub(in crate::call::core) fn relay_hold(&mut self, from: Holder, holding: bool) {
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        let Some(winner) = connect.winner else {
            return;
        };
        let was = connect.held_by.contains(&from);
        if was == holding {
            return;
        }
        if holding {
            connect.held_by.push(from);
        } else {
            connect.held_by.retain(|h| *h != from);
        }
        let direction = if holding {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        match from {
            Holder::Caller => {
                let Some(callee) = connect.leg_mut(winner) else {
                    return;
                };
                if callee.state != CalleeState::Up {
                    return;
                }
                let Some(local) = callee.local.as_mut() else {
                    return;
                };
                let sdp = super::super::media::next_offer(local, direction);
                self.outputs.push_back(Output::Callee {
                    leg: winner,
                    command: CalleeCommand::Sip(SipCommand::Reinvite { sdp }),
                });
            }
            Holder::Callee => {
                if self.up && self.status == CallStatus::Progressing {
                    self.reoffer(direction);
                }
            }
        }
    }
}

/// Whether the stream agreed from a peer's offer says the peer holds: our side
/// of it (the answer's direction) only receives, or nothing flows.
pub(in crate::call::core) fn holds(stream: &sdp::AudioStream) -> bool {
    matches!(stream.direction, Direction::RecvOnly | Direction::Inactive)
}
