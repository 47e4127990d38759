//! A call the engine tests set up again and again: two legs, each sending to its own
//! peer socket, bridged to each other.

use std::net::UdpSocket;

use media_engine::engine::{Engine, LegParams, OpenedLeg, SessionId};

/// Opens leg A towards `peer_a` and leg B towards `peer_b` on A's worker, and bridges
/// them.
pub fn bridged_call(
    engine: &Engine,
    peer_a: &UdpSocket,
    peer_b: &UdpSocket,
) -> (OpenedLeg, OpenedLeg) {
    bridged_call_on(engine, None, peer_a, peer_b)
}

/// [`bridged_call`] with leg A on the worker of `worker_of` (a leg id: only its
/// worker counts), or on the next worker in turn.
#[allow(dead_code)] // Not every test binary that shares this module places legs.
pub fn bridged_call_on(
    engine: &Engine,
    worker_of: Option<SessionId>,
    peer_a: &UdpSocket,
    peer_b: &UdpSocket,
) -> (OpenedLeg, OpenedLeg) {
    let addr = |s: &UdpSocket| s.local_addr().expect("a bound peer socket");
    let a = engine
        .open(LegParams {
            remote: Some(addr(peer_a)),
            place_with: worker_of,
            ..LegParams::default()
        })
        .expect("leg A opens");
    let b = engine
        .open(LegParams {
            remote: Some(addr(peer_b)),
            place_with: Some(a.id),
            ..LegParams::default()
        })
        .expect("leg B opens");
    engine.bridge(a.id, b.id).expect("the legs bridge");
    (a, b)
}
