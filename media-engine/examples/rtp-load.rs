//! The relay load tool (issue: media-engine): N bridged G.711 calls through the engine
//! on loopback, each leg's peer sending 50 packets/s, for S seconds.
//!
//! `cargo run --release -p media-engine --example rtp-load -- --calls 2000 --seconds 20`
//!
//! The engine runs on its own worker threads, whose CPU time is read per thread (from
//! /proc), so the generator's work is not counted. Loss and delay are measured at the
//! receiving peer sockets from sequence numbers and the send time each packet carries.
//! The last line is `calls=N loss_pct=X jitter_p99_ms=Y relay_cpu_us_per_pkt=Z`, where
//! the jitter is the 99th percentile of each packet's transit time above the fastest
//! one's: what the relay (and the loopback) added.
//!
//! `--bare` relays the same calls with a plain receive-and-send loop over the same
//! kind of sockets and poll (no RTP parsing, no statistics, no rewriting): the
//! kernel's floor on this machine, measured in the same rig, to compare against.
//!
//! `--via rtpengine --ng IP:PORT --relay-pid PID` relays them through a running
//! rtpengine instead (its ng control protocol sets each call up with an offer and
//! an answer, bencoded over UDP), its CPU read from /proc/PID: the same generator,
//! the same receiver, another relay.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use media_engine::engine::{Engine, EngineConfig, LegParams};
use mio::{Events, Interest, Poll, Token};
use rtp_types::{RtpPacket, RtpPacketBuilder};

struct Args {
    calls: usize,
    seconds: u64,
    workers: usize,
    /// Relay with a bare recv/send loop instead of the engine: the kernel's floor on
    /// this machine, measured in the same rig.
    bare: bool,
    /// Relay through rtpengine, set up over its ng protocol at this address.
    rtpengine: Option<SocketAddr>,
    /// The relay process whose CPU is counted (rtpengine's).
    relay_pid: u32,
}

fn args() -> Args {
    let mut a = Args {
        calls: 100,
        seconds: 10,
        workers: 0,
        bare: false,
        rtpengine: None,
        relay_pid: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bare" {
            a.bare = true;
            continue;
        }
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--via" if value == "rtpengine" => continue,
            "--ng" => {
                a.rtpengine = Some(value.parse().expect("--ng IP:PORT"));
                continue;
            }
            _ => {}
        }
        let n: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{flag} needs a number, got {value:?}"));
        match flag.as_str() {
            "--calls" => a.calls = n as usize,
            "--seconds" => a.seconds = n,
            "--workers" => a.workers = n as usize,
            "--relay-pid" => a.relay_pid = n as u32,
            other => {
                panic!(
                    "unknown flag {other}; use --calls N --seconds S [--workers W] [--bare | --via rtpengine --ng IP:PORT --relay-pid PID]"
                )
            }
        }
    }
    a
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// One leg's peer: sends to `to` and receives what the other leg relays.
struct Peer {
    socket: UdpSocket,
    to: SocketAddr,
    ssrc: u32,
}

/// The baseline: pairs of sockets relayed by a plain mio loop per thread (receive,
/// send to the other side's peer; no RTP parsing, no state), for the kernel's floor.
struct BareRelay {
    cpu_files: Vec<Arc<std::sync::OnceLock<std::path::PathBuf>>>,
    stop: Arc<AtomicBool>,
}

impl BareRelay {
    /// Relays `legs`: (socket, where its packets go) pairs, leg i to leg i^1's peer.
    fn start(legs: Vec<(UdpSocket, SocketAddr)>, threads: usize) -> (Self, Vec<SocketAddr>) {
        let stop = Arc::new(AtomicBool::new(false));
        let addrs = legs.iter().map(|(s, _)| s.local_addr().unwrap()).collect();
        let mut per_thread: Vec<Vec<(UdpSocket, SocketAddr)>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (i, leg) in legs.into_iter().enumerate() {
            per_thread[(i / 2) % threads].push(leg);
        }
        let mut cpu_files = Vec::new();
        for (n, legs) in per_thread.into_iter().enumerate() {
            let cpu = Arc::new(std::sync::OnceLock::new());
            cpu_files.push(cpu.clone());
            let stop = stop.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("bare-{n}"))
                .spawn(move || {
                    if let Ok(link) = std::fs::read_link("/proc/thread-self") {
                        // Set once, here, by this thread: it cannot be set already.
                        cpu.set(std::path::Path::new("/proc").join(link).join("schedstat"))
                            .ok();
                    }
                    let mut poll = Poll::new().unwrap();
                    let mut sockets: Vec<(mio::net::UdpSocket, SocketAddr)> = legs
                        .into_iter()
                        .map(|(s, to)| {
                            s.set_nonblocking(true).unwrap();
                            (mio::net::UdpSocket::from_std(s), to)
                        })
                        .collect();
                    for (i, (s, _)) in sockets.iter_mut().enumerate() {
                        poll.registry()
                            .register(s, Token(i), Interest::READABLE)
                            .unwrap();
                    }
                    let mut events = Events::with_capacity(1024);
                    let mut buf = [0u8; 2048];
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(50)))
                            && e.kind() != std::io::ErrorKind::Interrupted
                        {
                            panic!("the bare relay's poll failed: {e}");
                        }
                        for ev in &events {
                            let i = ev.token().0;
                            while let Ok(n) = sockets[i].0.recv(&mut buf) {
                                let (out, to) = &sockets[i ^ 1];
                                // A packet that could not be sent is counted as lost
                                // at the receiving peer, as for the other relays.
                                out.send_to(&buf[..n], *to).ok();
                            }
                        }
                    }
                });
            spawned.expect("a bare relay thread starts");
        }
        (Self { cpu_files, stop }, addrs)
    }

    fn cpu(&self) -> Duration {
        self.cpu_files
            .iter()
            .filter_map(|f| f.get())
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| t.split_whitespace().next()?.parse::<u64>().ok())
            .map(Duration::from_nanos)
            .sum()
    }
}

/// What relays the calls: the engine, the bare baseline, or another process.
enum Relay {
    Engine(Engine),
    Bare(BareRelay),
    /// A relay process (rtpengine), by pid.
    Process(u32),
}

impl Relay {
    /// CPU time the relaying threads have used.
    fn cpu(&self) -> Duration {
        match self {
            Relay::Engine(e) => e.worker_cpu_time(),
            Relay::Bare(b) => b.cpu(),
            Relay::Process(pid) => process_cpu(*pid),
        }
    }
}

/// User and system CPU time of process `pid`, all its threads (from /proc).
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 14th field.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    // Linux's USER_HZ is 100 on every platform it runs on here.
    Duration::from_millis(ticks * 10)
}

/// A bencoded dictionary of strings (the ng protocol's requests).
fn bencode(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(format!("{}:{k}{}:", k.len(), v.len()).as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'e');
    out
}

/// The audio port in the SDP of an ng answer (`m=audio PORT ...`).
fn ng_port(reply: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(reply);
    let Some(at) = text.find("m=audio ") else {
        panic!("rtpengine answered without SDP: {text}");
    };
    text[at + 8..]
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in m=audio")
}

/// Sets the calls up in rtpengine over its ng protocol: for each call an offer
/// (peer A's address: the port returned is where B sends) and an answer (peer B's:
/// the port returned is where A sends).
fn through_rtpengine(args: &Args, ng: SocketAddr) -> (Relay, Vec<Peer>) {
    let control = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    control
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ask = |cookie: usize, pairs: &[(&str, &str)]| -> u16 {
        let mut request = format!("{cookie} ").into_bytes();
        request.extend(bencode(pairs));
        control.send_to(&request, ng).unwrap();
        let mut buf = [0u8; 4096];
        let n = control
            .recv(&mut buf)
            .expect("rtpengine answers on its ng port");
        ng_port(&buf[..n])
    };
    let sdp = |port: u16| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
    };
    let mut peers = Vec::with_capacity(args.calls * 2);
    for call in 0..args.calls {
        let (pa, pb) = peer_pair();
        let id = format!("load-{call}");
        let to_a = ask(
            call * 2,
            &[
                ("command", "offer"),
                ("call-id", &id),
                ("from-tag", "a"),
                ("sdp", &sdp(pa.local_addr().unwrap().port())),
            ],
        );
        let to_b = ask(
            call * 2 + 1,
            &[
                ("command", "answer"),
                ("call-id", &id),
                ("from-tag", "a"),
                ("to-tag", "b"),
                ("sdp", &sdp(pb.local_addr().unwrap().port())),
            ],
        );
        peers.push(Peer {
            socket: pa,
            to: SocketAddr::from((Ipv4Addr::LOCALHOST, to_b)),
            ssrc: call as u32 * 2,
        });
        peers.push(Peer {
            socket: pb,
            to: SocketAddr::from((Ipv4Addr::LOCALHOST, to_a)),
            ssrc: call as u32 * 2 + 1,
        });
    }
    (Relay::Process(args.relay_pid), peers)
}

/// Two peer sockets for one call.
fn peer_pair() -> (UdpSocket, UdpSocket) {
    let bind = || UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("peer binds");
    (bind(), bind())
}

/// Bridges the calls through the engine.
fn through_engine(args: &Args) -> (Relay, Vec<Peer>) {
    let legs = args.calls * 2;
    let (engine, _events) = Engine::start(EngineConfig {
        ip: Ipv4Addr::LOCALHOST.into(),
        rtp_ports: 20_000..=(20_000 + (legs as u32 * 2 + 100).min(40_000) as u16),
        workers: args.workers,
        event_queue: 65_536,
    })
    .expect("engine starts");
    let mut peers = Vec::with_capacity(legs);
    for call in 0..args.calls {
        let (pa, pb) = peer_pair();
        let a = engine
            .open(LegParams {
                remote: Some(pa.local_addr().unwrap()),
                ..LegParams::default()
            })
            .expect("leg opens");
        let b = engine
            .open(LegParams {
                remote: Some(pb.local_addr().unwrap()),
                place_with: Some(a.id),
                ..LegParams::default()
            })
            .expect("leg opens");
        engine.bridge(a.id, b.id).expect("bridges");
        peers.push(Peer {
            socket: pa,
            to: a.local_rtp,
            ssrc: call as u32 * 2,
        });
        peers.push(Peer {
            socket: pb,
            to: b.local_rtp,
            ssrc: call as u32 * 2 + 1,
        });
    }
    (Relay::Engine(engine), peers)
}

/// Relays the calls with the bare baseline.
fn through_bare(args: &Args) -> (Relay, Vec<Peer>) {
    let mut relay_legs = Vec::with_capacity(args.calls * 2);
    let mut sockets = Vec::with_capacity(args.calls * 2);
    for _ in 0..args.calls {
        let (pa, pb) = peer_pair();
        let (la, lb) = peer_pair();
        // Leg A's packets go out of leg B to peer B, and the other way round.
        relay_legs.push((la, pb.local_addr().unwrap()));
        relay_legs.push((lb, pa.local_addr().unwrap()));
        sockets.push(pa);
        sockets.push(pb);
    }
    let threads = if args.workers == 0 { 2 } else { args.workers };
    let (relay, addrs) = BareRelay::start(relay_legs, threads);
    let peers = sockets
        .into_iter()
        .zip(addrs)
        .enumerate()
        .map(|(i, (socket, to))| Peer {
            socket,
            to,
            ssrc: i as u32,
        })
        .collect();
    (Relay::Bare(relay), peers)
}

fn main() {
    let args = args();
    let legs = args.calls * 2;
    let rss_before = rss_kib();
    let (relay, peers) = if args.bare {
        through_bare(&args)
    } else if let Some(ng) = args.rtpengine {
        through_rtpengine(&args, ng)
    } else {
        through_engine(&args)
    };
    std::thread::sleep(Duration::from_millis(200));
    let rss_after = rss_kib();

    // The receiver: every peer socket in one poll set; delays into 10 µs buckets.
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut poll = Poll::new().unwrap();
    let mut receivers: Vec<mio::net::UdpSocket> = peers
        .iter()
        .map(|p| {
            let s = p.socket.try_clone().unwrap();
            s.set_nonblocking(true).unwrap();
            mio::net::UdpSocket::from_std(s)
        })
        .collect();
    for (i, r) in receivers.iter_mut().enumerate() {
        poll.registry()
            .register(r, Token(i), Interest::READABLE)
            .unwrap();
    }
    let receiver = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut histogram = vec![0u64; 100_000];
            let mut received = 0u64;
            let mut events = Events::with_capacity(4096);
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                poll.poll(&mut events, Some(Duration::from_millis(50)))
                    .unwrap();
                for ev in &events {
                    let socket = &receivers[ev.token().0];
                    while let Ok(n) = socket.recv(&mut buf) {
                        let now = start.elapsed().as_micros() as u64;
                        // RTCP reports reach a peer too (port + 1 may be another peer's): skip them.
                        let Ok(p) = RtpPacket::parse(&buf[..n]) else {
                            continue;
                        };
                        if p.payload_type() != 0 || p.payload().len() != 160 {
                            continue;
                        }
                        let sent = u64::from_be_bytes(p.payload()[..8].try_into().unwrap());
                        let delay = now.saturating_sub(sent) / 10;
                        let last = histogram.len() - 1;
                        histogram[(delay as usize).min(last)] += 1;
                        received += 1;
                    }
                }
            }
            (received, histogram)
        })
    };

    // The sender: every leg's peer, 50 packets/s, spread over the 20 ms in 10 slices.
    let cpu_start = relay.cpu();
    let ticks = args.seconds * 50;
    let mut sent = 0u64;
    let mut payload = [0xffu8; 160];
    let slices = 10usize;
    let per_slice = peers.len().div_ceil(slices);
    for tick in 0..ticks {
        for slice in 0..slices {
            let due = start + Duration::from_micros(tick * 20_000 + slice as u64 * 2_000);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            for peer in peers.iter().skip(slice * per_slice).take(per_slice) {
                payload[..8].copy_from_slice(&(start.elapsed().as_micros() as u64).to_be_bytes());
                let packet = RtpPacketBuilder::<&[u8], &[u8]>::new()
                    .payload_type(0)
                    .ssrc(peer.ssrc)
                    .sequence_number(tick as u16)
                    .timestamp(tick as u32 * 160)
                    .payload(&payload[..]);
                let mut out = [0u8; 200];
                let n = packet.write_into(&mut out).unwrap();
                if peer.socket.send_to(&out[..n], peer.to).is_ok() {
                    sent += 1;
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let cpu = relay.cpu() - cpu_start;
    if let Relay::Bare(b) = &relay {
        b.stop.store(true, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    let (received, histogram) = receiver.join().unwrap();

    let loss_pct = if sent == 0 {
        0.0
    } else {
        (sent.saturating_sub(received)) as f64 * 100.0 / sent as f64
    };
    let min_bucket = histogram.iter().position(|&c| c > 0).unwrap_or(0);
    let p99_target = (received as f64 * 0.99).ceil() as u64;
    let mut acc = 0;
    let p99_bucket = histogram.iter().position(|&c| {
        acc += c;
        acc >= p99_target
    });
    let jitter_p99_ms = p99_bucket.map_or(0.0, |b| (b - min_bucket) as f64 * 0.01);
    let us_per_pkt = if received == 0 {
        0.0
    } else {
        cpu.as_secs_f64() * 1e6 / received as f64
    };
    println!(
        "sent={sent} received={received} worker_cpu_s={:.2} over {} s",
        cpu.as_secs_f64(),
        args.seconds
    );
    println!(
        "memory: {} KiB RSS for {legs} legs ({:.1} KiB per leg, incl. the generator's socket)",
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) as f64 / legs as f64
    );
    println!(
        "calls={} loss_pct={loss_pct:.3} jitter_p99_ms={jitter_p99_ms:.2} relay_cpu_us_per_pkt={us_per_pkt:.2}",
        args.calls
    );
}
