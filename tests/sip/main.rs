//! Calls into the real `voipbin` binary from real SIP peers: SIPp plays the carrier
//! (the test's own socket is often the media end: the SDP points there, it hears
//! the flow's speech and presses keys with RFC 4733), baresip plays a softphone.
//! Here: the helpers the tests share; `routing` (403, 404, 486, 488, OPTIONS),
//! `flows` (flows carried out in a call), `keys` (SIP INFO and in-band keys),
//! `recordings` (recordings that end by themselves), `live_calls` (the API on a live
//! call, CANCEL, stop, hold, timeouts), `peers` (sip-tester's media, Opus, baresip,
//! linphone).
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use common::{Options, Receiver, Server};
use serde_json::json;

mod amd;
mod barge_in;
mod connect;
mod connect_outcomes;
mod external_media;
mod flows;
mod keys;
mod live_calls;
mod media_stream;
mod outbound;
mod peers;
mod recordings;
mod routing;
mod security;
mod slow_database;
mod tls;

/// Sends an INVITE for `number` from `from_ip` and returns the final response.
fn call(server: SocketAddr, from_ip: &str, number: &str) -> String {
    call_with_offer(server, from_ip, number, "")
}

/// Sends an INVITE for `number` from `from_ip` with `sdp` as its body (none when
/// empty) and returns the final response.
fn call_with_offer(server: SocketAddr, from_ip: &str, number: &str, sdp: &str) -> String {
    let sock = UdpSocket::bind((from_ip, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let branch = format!("z9hG4bK{port}{}", number.len());
    let content_type = if sdp.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    let invite = format!(
        "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {from_ip}:{port};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@{from_ip}>;tag=a1\r\nTo: <sip:{number}@{server}>\r\nCall-ID: {branch}@{from_ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{from_ip}:{port}>\r\n{content_type}Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sock.send_to(invite.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("a response");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            assert!(
                text.contains(&format!("rport={port}")),
                "rport filled in: {text}"
            );
            return text;
        }
    }
}

/// Runs the SIPp carrier scenario against `server` for `number`, its media pointed at
/// `rtp_port`; returns SIPp's exit status and output.
fn sipp_call(server: SocketAddr, number: &str, rtp_port: u16) -> std::process::Child {
    sipp_scenario(server, "uac_flow_call.xml", number, rtp_port)
}

/// Waits (off the async runtime) for SIPp to exit; its exit status.
async fn sipp_done(mut sipp: std::process::Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .expect("the waiting thread")
        .expect("SIPp ran")
}

/// Runs SIPp's `scenario` (in sipp-scenarios/) as the carrier calling `number`,
/// with its media port at `rtp_port`.
fn sipp_scenario(
    server: SocketAddr,
    scenario: &str,
    number: &str,
    rtp_port: u16,
) -> std::process::Child {
    sipp_scenario_with(server, scenario, number, rtp_port, &[])
}

/// [`sipp_scenario`] with more SIPp arguments (`-t t1` for TCP, ...).
fn sipp_scenario_with(
    server: SocketAddr,
    scenario: &str,
    number: &str,
    rtp_port: u16,
    extra: &[&str],
) -> std::process::Child {
    let dir = std::env::temp_dir();
    std::process::Command::new("sipp")
        .arg(server.to_string())
        .arg("-sf")
        .arg(format!(
            "{}/sipp-scenarios/{scenario}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([
            "-s",
            number,
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-m",
            "1",
            "-nostdin",
        ])
        .args(["-set", "rtpport", &rtp_port.to_string(), "-timeout", "40s"])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sipp (Debian's sip-tester; scripts/test installs it)")
}

/// A socket on loopback for a call's media, waiting at most 200 ms per read.
fn media_socket() -> UdpSocket {
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    media
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    media
}

/// Waits for the first packet on `media`; where the platform sends from.
fn first_sender(media: &UdpSocket) -> SocketAddr {
    let mut buf = [0u8; 1500];
    loop {
        if let Ok((_, from)) = media.recv_from(&mut buf) {
            return from;
        }
    }
}

/// Sends 8 kHz `pcm` from `media` to `to` as PCMU RTP, a frame every 20 ms in real
/// time.
async fn talk_pcmu(media: &UdpSocket, to: SocketAddr, pcm: &[i16]) {
    let mut ulaw = vec![0u8; pcm.len()];
    media_engine::codec::G711::Ulaw.encode(pcm, &mut ulaw);
    play_pcmu(media, to, &ulaw).await;
}

/// Sends mu-law `audio` from `media` to `to` as PCMU RTP, a frame every 20 ms in
/// real time; returns when it started.
async fn play_pcmu(media: &UdpSocket, to: SocketAddr, audio: &[u8]) -> std::time::Instant {
    let started = std::time::Instant::now();
    for (k, frame) in audio.chunks_exact(160).enumerate() {
        let raw = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .ssrc(0x3333)
            .sequence_number(k as u16)
            .timestamp(k as u32 * 160)
            .payload(frame)
            .write_vec()
            .unwrap();
        media.send_to(&raw, to).expect("sending RTP");
        let due = started + Duration::from_millis(20 * (k as u64 + 1));
        tokio::time::sleep(due.saturating_duration_since(std::time::Instant::now())).await;
    }
    started
}

/// The ids of the actions the caller's newest call's activeflow ran.
async fn executed_ids(who: &common::Client) -> Vec<String> {
    let call = call_with_status(who, "hangup").await;
    let (_, flow) = who
        .get(&format!(
            "/activeflows/{}",
            call["activeflow_id"].as_str().unwrap()
        ))
        .await;
    flow["executed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect()
}

/// Seconds of stereo 16-bit 8 kHz audio in the recording `id` (a JSON string).
fn recording_seconds(server: &Server, id: &serde_json::Value) -> f64 {
    let path = server
        .data_dir
        .path()
        .join("recordings")
        .join(format!("{}.wav", id.as_str().unwrap()));
    std::fs::metadata(&path).unwrap().len().saturating_sub(44) as f64 / (8000.0 * 4.0)
}

/// Presses `key` (RFC 4733, 160 ms, payload type 101) from `media` to `to`.
fn press(media: &UdpSocket, to: SocketAddr, key: char) {
    for (i, pkt) in media_engine::dtmf::rfc4733::send_packets(key, 160, 20, 8000)
        .iter()
        .enumerate()
    {
        let raw = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(101)
            .marker_bit(pkt.marker)
            .ssrc(0x5151)
            .sequence_number(i as u16)
            .timestamp(48_000)
            .payload(&pkt.payload[..])
            .write_vec()
            .unwrap();
        media.send_to(&raw, to).unwrap();
    }
}

/// Points the first start's `local` provider (127.0.0.1, which admits the test's
/// SIPp callers) at `fields` for calls out (`{"port": N}` and any other provider
/// field); returns its id.
async fn local_carrier(server: &Server, fields: serde_json::Value) -> String {
    let admin = server.admin();
    let (_, list) = admin.get("/providers").await;
    let local = list["result"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = admin.put(&format!("/providers/{local}"), fields).await;
    assert_eq!(status, 200, "{body}");
    local
}

/// A customer `name` whose number `number` runs the flow `flow` (a POST /flows
/// body); returns the customer's client and the flow.
async fn customer_with_number(
    server: &Server,
    name: &str,
    number: &str,
    flow: serde_json::Value,
) -> (common::Client, serde_json::Value) {
    let (_, client) = server.admin().new_customer(name).await;
    let (status, flow) = client.post("/flows", flow).await;
    assert_eq!(status, 200, "{flow}");
    let (status, body) = client
        .post(
            "/numbers",
            json!({"number": number, "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (client, flow)
}

/// The mean square of PCMU frames decoded (speech is loud; silence is near 0).
fn level(frames: &[Vec<u8>]) -> f64 {
    let mut pcm = [0i16; 160];
    let mut sum = 0.0;
    let mut n: f64 = 0.0;
    for f in frames {
        media_engine::codec::G711::Ulaw
            .decode(&f[..160.min(f.len())], &mut pcm[..160.min(f.len())]);
        for s in &pcm[..160.min(f.len())] {
            sum += f64::from(*s) * f64::from(*s);
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

/// A WAV file of `ms` of a `freq` Hz tone at 16 kHz (another rate than the call's).
fn tone_wav(freq: f64, ms: u32) -> Vec<u8> {
    let rate = 16_000u32;
    let n = rate * ms / 1000;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + n * 2).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let s = ((f64::from(i) * freq * std::f64::consts::TAU / f64::from(rate)).sin() * 10_000.0)
            as i16;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Waits until `who`'s newest call has `status`; returns it.
async fn call_with_status(who: &common::Client, status: &str) -> serde_json::Value {
    for _ in 0..100 {
        let (_, calls) = who.get("/calls").await;
        if let Some(c) = calls["result"].as_array().and_then(|a| a.first())
            && c["status"] == status
        {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no call reached {status}");
}

/// PCMU payloads and when they arrived.
type Timed = Vec<(std::time::Instant, Vec<u8>)>;

/// The RTP a test's media socket receives, timestamped, gathered by a thread.
struct Heard {
    packets: std::sync::Arc<std::sync::Mutex<Timed>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Heard {
    fn start(socket: UdpSocket) -> Self {
        let packets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (packets.clone(), stop.clone());
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf)
                    && let Ok(r) = rtp_types::RtpPacket::parse(&buf[..n])
                    && r.payload_type() == 0
                {
                    p.lock()
                        .unwrap()
                        .push((std::time::Instant::now(), r.payload().to_vec()));
                }
            }
        });
        Heard { packets, stop }
    }

    /// Waits `ms`, then returns the PCMU payloads of the last `window` ms.
    async fn after(&self, ms: u64, window: u64) -> Vec<Vec<u8>> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let since = std::time::Instant::now() - Duration::from_millis(window);
        self.packets
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl Drop for Heard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The RTP payloads of PCMU packets in a pcap file written by tcpdump on `lo`.
fn pcap_pcmu(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(link) = bytes.get(20..24) else {
        return out;
    };
    // LINKTYPE_EN10MB (lo as Ethernet), LINUX_SLL, LINUX_SLL2.
    let link_len = match u32::from_le_bytes(link.try_into().unwrap()) {
        1 => 14,
        113 => 16,
        276 => 20,
        other => panic!("link type {other}"),
    };
    let mut at = 24;
    while let Some(header) = bytes.get(at..at + 16) {
        let len = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + len) else {
            break;
        };
        at += 16 + len;
        let Some(ip) = frame.get(link_len..) else {
            continue;
        };
        let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
        if let Some(udp) = ip.get(ihl..)
            && let Some(rtp) = udp.get(8..)
            && let Ok(p) = rtp_types::RtpPacket::parse(rtp)
            && p.payload_type() == 0
        {
            out.push(p.payload().to_vec());
        }
    }
    out
}

/// A baresip 1.0 config dir (TESTING.md's recipe): G.711 (Opus first with `opus`),
/// a WAV source, received audio dumped under `rec/`, commands on a UDP console.
/// With `auto_answer` it answers calls at once (`;answermode=auto`).
fn baresip_dir(sip_port: u16, cons_port: u16, opus: bool, auto_answer: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    // aufile wants the codec's own rate and channels (baresip's Opus is stereo).
    let (rate, channels) = if opus { ("48000", "2") } else { ("8000", "1") };
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", rate, "-c", channels, "-b", "16"])
        .arg(path.join("src.wav"))
        .args(["synth", "40", "sine", "300", "vol", "0.1"])
        .status()
        .expect("sox");
    assert!(status.success());
    std::fs::create_dir_all(path.join("rec")).unwrap();
    let config = format!(
        "module_path /usr/lib/baresip/modules\npoll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
         audio_player alsa,null\naudio_alert alsa,null\naudio_source aufile,{src}\n\
         {opus}module g711.so\nmodule aufile.so\nmodule sndfile.so\nmodule alsa.so\nmodule cons.so\n\
         module_tmp account.so\nmodule_app menu.so\ncons_listen 127.0.0.1:{cons_port}\n\
         snd_path {rec}\n",
        src = path.join("src.wav").display(),
        rec = path.join("rec").display(),
        opus = if opus { "module opus.so\n" } else { "" },
    );
    std::fs::write(path.join("config"), config).unwrap();
    let answer = if auto_answer { ";answermode=auto" } else { "" };
    std::fs::write(
        path.join("accounts"),
        format!("<sip:alice@127.0.0.1>;regint=0{answer}\n"),
    )
    .unwrap();
    std::fs::write(path.join("contacts"), "").unwrap();
    dir
}

/// SIPp calls `number` with the media to a socket of the test's; returns SIPp's exit
/// status and the PCMU the platform sent, decoded, until SIPp ended (15 s at most).
fn hear_call(server: &Server, number: &str) -> (std::process::ExitStatus, Vec<i16>) {
    let media = media_socket();
    let mut sipp = sipp_call(server.sip, number, media.local_addr().unwrap().port());
    let mut pcm = Vec::new();
    let mut buf = [0u8; 1500];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Ok(n) = media.recv(&mut buf)
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
            && p.payload_type() == 0
        {
            let mut frame = [0i16; 160];
            media_engine::codec::G711::Ulaw.decode(p.payload(), &mut frame);
            pcm.extend_from_slice(&frame);
        }
        if let Ok(Some(_)) = sipp.try_wait() {
            break;
        }
    }
    (sipp.wait().unwrap(), pcm)
}
