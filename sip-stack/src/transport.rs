//! Transport rules (RFC 3261 section 18, RFC 3581) that do not depend on a socket:
//! where a response goes, what the server writes into the top Via it answers, and
//! when a request must leave UDP for TCP. The drivers own the sockets; these are
//! pure functions so the sans-IO layers and the tests share them.

use std::net::{IpAddr, SocketAddr};

use crate::msg::{Host, Via};
use crate::transaction::Transport;

/// A request larger than this goes over TCP when the target allows it
/// (section 18.1.1: 200 bytes under a 1500-byte path MTU).
pub const UDP_REQUEST_LIMIT: usize = 1300;

/// Where the responses to a request go (section 18.2.2, RFC 3581 section 4):
/// over a reliable transport, back on the connection it came on (its source); over
/// UDP, to the source address, and to the source port when the Via asked for
/// `rport`, else to the Via's sent-by port (5060 when absent).
pub fn response_address(via: &Via<'_>, source: SocketAddr, transport: Transport) -> SocketAddr {
    if transport.reliable() || via.rport().is_some() {
        return source;
    }
    SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
}

/// The top Via value as the server must return it (section 18.2.1, RFC 3581
/// section 4): `received=<source ip>` when the sent-by host is not the source's
/// address (always when `rport` was asked for), and an empty `rport` filled in with
/// the source port. Other parameters are kept as written.
pub fn stamp_via(value: &str, source: SocketAddr) -> String {
    let Ok(via) = Via::parse(value) else {
        return value.to_owned();
    };
    let wants_rport = via.rport() == Some(None);
    let same_host = match via.host {
        Host::V4(ip) => IpAddr::V4(ip) == source.ip(),
        Host::V6(ip) => IpAddr::V6(ip) == source.ip(),
        Host::Name(_) => false,
    };
    let mut out = String::with_capacity(value.len() + 40);
    for (i, part) in value.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        let name = part.trim();
        if wants_rport && name.eq_ignore_ascii_case("rport") {
            out.push_str("rport=");
            out.push_str(&source.port().to_string());
        } else if !name.to_ascii_lowercase().starts_with("received") {
            out.push_str(part);
        } else {
            // An old received parameter is replaced below.
            out.pop();
        }
    }
    if wants_rport || !same_host {
        match source.ip() {
            IpAddr::V4(ip) => out.push_str(&format!(";received={ip}")),
            IpAddr::V6(ip) => out.push_str(&format!(";received=[{ip}]")),
        }
    }
    out
}

/// Whether a request of `len` bytes bound for `target_uri` must go over TCP rather
/// than UDP (section 18.1.1): it is over [`UDP_REQUEST_LIMIT`] and the URI does not
/// insist on UDP with `transport=udp`.
pub fn needs_tcp(len: usize, target_uri: &str) -> bool {
    len > UDP_REQUEST_LIMIT && !target_uri.to_ascii_lowercase().contains("transport=udp")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn rport_is_filled_in_and_received_added_even_for_the_same_host() {
        let out = stamp_via(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport",
            addr("192.0.2.1:40000"),
        );
        assert_eq!(
            out,
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=40000;received=192.0.2.1"
        );
    }

    #[test]
    fn received_only_when_the_host_differs() {
        let v = "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1";
        assert_eq!(stamp_via(v, addr("10.0.0.5:5060")), v);
        assert_eq!(
            stamp_via(v, addr("203.0.113.9:5060")),
            "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.9"
        );
        assert_eq!(
            stamp_via(
                "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1",
                addr("[2001:db8::1]:5060")
            ),
            "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=[2001:db8::1]"
        );
    }

    #[test]
    fn responses_follow_section_18_2_2() {
        let src = addr("203.0.113.9:40000");
        let with_rport =
            Via::parse("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport").expect("via");
        assert_eq!(response_address(&with_rport, src, Transport::Udp), src);
        let plain = Via::parse("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1").expect("via");
        assert_eq!(
            response_address(&plain, src, Transport::Udp),
            addr("203.0.113.9:5062")
        );
        let no_port = Via::parse("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1").expect("via");
        assert_eq!(
            response_address(&no_port, src, Transport::Udp),
            addr("203.0.113.9:5060")
        );
        assert_eq!(response_address(&plain, src, Transport::Tcp), src);
    }

    #[test]
    fn large_requests_leave_udp_unless_the_uri_insists() {
        assert!(!needs_tcp(1300, "sip:a@b"));
        assert!(needs_tcp(1301, "sip:a@b"));
        assert!(!needs_tcp(1301, "sip:a@b;transport=UDP"));
    }
}
