#!/usr/bin/env python3
"""Reads a pcap of SIP over UDP (tcpdump -w on lo) and prints, for each kind of first
answer to an INVITE (180, 200, 503), how long after the INVITE it left the server, as
the kernel timestamped both on the wire: p50, p99 and max. Unlike SIPp's own response
times this leaves out how late SIPp's event loop read the answer.

    sip_wire_latency.py capture.pcap SIP_PORT
"""
import struct
import sys


def packets(path):
    """Yields (time, payload) of each UDP datagram in a classic pcap file."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        if magic == 0xA1B2C3D4:
            order, scale = "<", 1e-6
        elif magic == 0xA1B23C4D:
            order, scale = "<", 1e-9
        else:
            sys.exit("not a little-endian pcap file: %s" % path)
        link = struct.unpack(order + "I", head[20:24])[0]
        skip = {1: 14, 113: 16, 276: 20}.get(link)
        if skip is None:
            sys.exit("link type %d not supported" % link)
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, caplen, _ = struct.unpack(order + "IIII", rec)
            data = f.read(caplen)
            ip = data[skip:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 15) * 4
            udp = ip[ihl:]
            yield sec + frac * scale, struct.unpack(">HH", udp[:4]), udp[8:]


def call_id(payload):
    for line in payload.split(b"\r\n"):
        low = line.lower()
        if low.startswith(b"call-id:") or low.startswith(b"i:"):
            return line.split(b":", 1)[1].strip()
        if not line:
            return None
    return None


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    invites = {}
    answered = {}
    for t, (sport, dport), payload in packets(path):
        first = payload.split(b"\r\n", 1)[0]
        cid = call_id(payload)
        if cid is None:
            continue
        if dport == port and first.startswith(b"INVITE ") and cid not in invites:
            invites[cid] = t
        elif sport == port and first.startswith(b"SIP/2.0 "):
            code = first[8:11].decode()
            if code in ("180", "200", "503") and (cid, code) not in answered and cid in invites:
                answered[(cid, code)] = (t - invites[cid]) * 1000
    for code, name in (("180", "INVITE->180"), ("200", "INVITE->200"), ("503", "INVITE->503 (refused)")):
        t = sorted(v for (_, c), v in answered.items() if c == code)
        if not t:
            continue
        pick = lambda q: t[min(len(t) - 1, int(len(t) * q))]
        print("  on the wire %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d calls)"
              % (name, pick(0.5), pick(0.99), t[-1], len(t)))


main()
