//! Other real peers' media: sip-tester's own RTP and DTMF captures, a softphone's
//! Opus, baresip calling in (G.711 and Opus), and linphone hearing our RFC 4733 digits.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_presses_one_from_a_pcap_while_talking_and_hears_the_prompt() {
    // Our RTP ports, so tcpdump captures what we send to SIPp.
    let base = 42_000 + (std::process::id() % 100) as u16 * 100;
    let ports = format!("{base}-{}", base + 99);
    let server = Server::start(Options {
        args: vec!["--rtp-ports".into(), ports.clone()],
        ..Options::default()
    });
    let (kim, _) = customer_with_number(&server, "kim", "+15551230014", json!({"name": "menu", "actions": [
                {"type": "answer"},
                {"type": "talk", "option": {"text": "Welcome to the test line. Press one for sales.", "language": "en-US"}},
                {"type": "digits_receive", "option": {"duration": 10000, "length": 1}},
                {"type": "branch", "option": {"target_ids": {"1": "sales"}, "default_target_id": "bye"}},
                {"id": "sales", "type": "talk", "option": {"text": "Sales.", "language": "en-US"}},
                {"id": "bye", "type": "hangup"}
            ]})).await;

    let dir = tempfile::tempdir().unwrap();
    let caller: Vec<u8> = (0..8000 * 3)
        .map(|i| {
            let s = (f64::from(i) * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 6000.0;
            media_engine::codec::G711::Ulaw.encode_sample(s as i16)
        })
        .collect();
    std::fs::write(dir.path().join("caller.ul"), caller).unwrap();
    let capture = dir.path().join("heard.pcap");
    let mut tcpdump = std::process::Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-n", "-w"])
        .arg(&capture)
        .args(["udp and src portrange", &ports])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpdump (scripts/test installs it)");
    let mut err = std::io::BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert!(line.contains("listening"), "tcpdump: {line}");

    let (sip, cwd) = (server.sip.to_string(), dir.path().to_owned());
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sipp")
            .arg(sip)
            .arg("-sf")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/sipp-scenarios/uac_flow_dtmf.xml"
            ))
            .args(["-s", "+15551230014", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", "0", "-m", "1", "-nostdin", "-timeout", "40s"])
            .current_dir(cwd)
            .stdout(std::process::Stdio::null())
            .status()
    })
    .await
    .unwrap()
    .expect("sipp runs");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    assert!(
        status.success(),
        "SIPp got the BYE: {status}; {}",
        server.printed()
    );

    let call = call_with_status(&kim, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "{call}");
    assert_eq!(call["hangup_by"], "local", "{call}");
    let received = call["rtp_stats"]["packets_received"].as_u64().unwrap_or(0);
    assert!(received > 100, "SIPp's audio arrived: {call}");
    let (_, flows) = kim.get("/activeflows").await;
    let executed = &flows["result"][0]["executed_actions"];
    assert!(
        executed
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["id"] == "sales")),
        "the 1 took the sales branch: {executed}"
    );
    let heard = pcap_pcmu(&std::fs::read(&capture).unwrap());
    assert!(heard.len() > 100, "{} packets captured", heard.len());
    assert!(
        level(&heard) > 1e5,
        "speech reached SIPp: {}",
        level(&heard)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_softphone_offering_opus_hears_the_flow_in_opus() {
    let server = Server::start(Options::default());
    let (ned, _) = customer_with_number(&server, "ned", "+15551230017", json!({"name": "hello", "actions": [
                {"type": "answer"},
                {"type": "talk", "option": {"text": "Hello from the platform, in Opus.", "language": "en-US"}},
                {"type": "hangup"}
            ]})).await;
    let media = media_socket();
    let port = media.local_addr().unwrap().port();
    let mut sipp = sipp_scenario(server.sip, "uac_flow_opus.xml", "+15551230017", port);
    let mut decoder = media_engine::codec::opus::OpusCodec::new(48_000, 0).unwrap();
    let (mut opus, mut other, mut sum, mut n) = (0, 0, 0.0f64, 0.0f64);
    let mut frame = [0i16; 960];
    let mut buf = [0u8; 1500];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(len) = media.recv(&mut buf)
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..len])
        {
            if p.payload_type() != 111 {
                other += 1;
                continue;
            }
            opus += 1;
            let got = decoder.decode(p.payload(), &mut frame).unwrap();
            for s in &frame[..got] {
                sum += f64::from(*s).powi(2);
                n += 1.0;
            }
        }
        if let Ok(Some(_)) = sipp.try_wait() {
            break;
        }
    }
    assert!(sipp.wait().unwrap().success(), "{}", server.printed());
    assert_eq!(other, 0, "every packet is Opus");
    assert!(opus > 50, "{opus} Opus packets");
    assert!(sum / n.max(1.0) > 1e5, "speech, not silence: {}", sum / n);
    let call = call_with_status(&ned, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "{call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_in_hears_the_menu_and_presses_one() {
    let out = baresip_menu_call(false).await;
    assert!(out.contains("PCMU"), "G.711 was used: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_offering_opus_is_answered_in_opus() {
    let out = baresip_menu_call(true).await;
    assert!(out.contains("opus"), "Opus was used: {out}");
}

/// baresip calls a menu, presses 1 a second into the welcome, and must hear speech
/// and take the sales branch; returns what baresip printed about its audio codecs.
async fn baresip_menu_call(opus: bool) -> String {
    let server = Server::start(Options::default());
    let (quinn, _) = customer_with_number(
        &server,
        "quinn",
        "+15551230020",
        json!({"name": "menu", "actions": [
            {"type": "answer"},
            {"type": "talk", "option": {"text": "Welcome. Press one for sales.", "language": "en-US"}},
            {"type": "digits_receive", "option": {"duration": 10000, "length": 1}},
            {"type": "branch", "option": {"target_ids": {"1": "sales"}, "default_target_id": "bye"}},
            {"id": "sales", "type": "talk", "option": {"text": "Thank you for calling sales.", "language": "en-US"}},
            {"id": "bye", "type": "hangup"}
        ]}),
    )
    .await;
    let (sip_port, cons_port) = (free_udp_port(), free_udp_port());
    let dir = baresip_dir(sip_port, cons_port, opus, false);
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let mut baresip = std::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-e", &format!("/dial sip:+15551230020@{}", server.sip)])
        .args(["-t", "40"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("baresip (Debian's baresip-core; scripts/test installs it)");
    let call = call_with_status(&quinn, "progressing").await;
    // A second into the welcome, press 1 on baresip's console (\x04 lets the key go).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let console = UdpSocket::bind("127.0.0.1:0").unwrap();
    console.send_to(b"1\x04", ("127.0.0.1", cons_port)).unwrap();
    let ended = call_with_status(&quinn, "hangup").await;
    let _ = baresip.kill();
    let _ = baresip.wait();
    assert_eq!(ended["hangup_by"], "local", "the flow hung up: {ended}");
    assert_eq!(ended["id"], call["id"]);
    let ids = executed_ids(&quinn).await;
    assert!(
        ids.iter().any(|id| id == "sales"),
        "baresip's 1 took the sales branch: {ids:?}"
    );
    // What baresip heard: the dump of the decoded audio holds speech.
    assert_speech_in(&baresip_heard(dir.path()), "baresip");
    std::fs::read_to_string(dir.path().join("out.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("audio") || l.contains("codec"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// linphonec (Debian's linphone-cli) calls a flow that speaks and then sends RFC 4733
/// digits: it must print each digit once, in order, and record speech. linphonec puts
/// the host's default-route address in its SDP (TESTING.md), so the test runs itself
/// again in a network namespace of its own, where loopback is the only interface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphone_calls_in_hears_speech_and_our_digits() {
    const INSIDE: &str = "VOIPBIN_TEST_IN_NETNS";
    if std::env::var_os(INSIDE).is_none() {
        let out = std::process::Command::new("unshare")
            .args(["--map-root-user", "--net", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "peers::linphone_calls_in_hears_speech_and_our_digits",
                "--nocapture",
            ])
            .env(INSIDE, "1")
            .output()
            .expect("unshare (util-linux)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The filter must have found this test: "0 passed" would prove nothing.
        assert!(
            out.status.success() && text.contains("1 passed"),
            "in its own network namespace: {text}"
        );
        return;
    }
    let up = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip (iproute2)");
    assert!(up.success(), "loopback up in the namespace");

    let server = Server::start(Options::default());
    let (lee, _) = customer_with_number(
        &server,
        "lee",
        "+15551230023",
        json!({"name": "digits", "actions": [
            {"type": "answer"},
            {"type": "talk", "option": {"text": "Hello from the test line.", "language": "en-US"}},
            {"type": "digits_send", "option": {"digits": "159#", "duration": 100, "interval": 200}},
            {"type": "sleep", "option": {"duration": 500}},
            {"type": "hangup"}
        ]}),
    )
    .await;

    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".local/share/linphone")).unwrap();
    let rc = home.path().join("linphonerc");
    std::fs::write(
        &rc,
        format!(
            "[sip]\nsip_port={}\nsip_tcp_port=-1\n[rtp]\naudio_rtp_port={}\n",
            free_udp_port(),
            free_udp_port() & !1
        ),
    )
    .unwrap();
    let heard = home.path().join("heard.wav");
    let log = home.path().join("out.log");
    let mut linphone = std::process::Command::new("linphonec")
        .arg("-c")
        .arg(&rc)
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("linphonec (Debian's linphone-cli; scripts/test installs it)");
    let mut stdin = linphone.stdin.take().unwrap();
    use std::io::Write as _;
    writeln!(stdin, "soundcard use files").unwrap();
    writeln!(stdin, "record {}", heard.display()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    writeln!(stdin, "call sip:+15551230023@{}", server.sip).unwrap();
    let call = call_with_status(&lee, "progressing").await;
    let ended = call_with_status(&lee, "hangup").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = writeln!(stdin, "quit");
    drop(stdin);
    for _ in 0..50 {
        if linphone.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = linphone.kill();
    let _ = linphone.wait();

    assert_eq!(ended["id"], call["id"]);
    assert_eq!(ended["hangup_reason"], "normal", "{ended}");
    assert_eq!(ended["hangup_by"], "local", "{ended}");
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let tones: String = out
        .lines()
        .filter_map(|l| l.strip_prefix("Receiving tone ")?.chars().next())
        .collect();
    assert_eq!(tones, "159#", "each digit once, in order: {out}");
    // What linphone recorded of the call (16-bit mono WAV) holds the speech.
    assert_speech_in(&heard, "linphone");
}

/// A UDP port free on loopback just now.
pub(crate) fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The WAV baresip dumped of the audio it decoded (its `rec/` folder, `-dec.wav`).
pub(crate) fn baresip_heard(home: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(home.join("rec"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip dumped what it heard")
}

/// Checks that a softphone's 16-bit mono WAV of what it heard holds speech, not
/// silence (at least a second of it, loud on average).
pub(crate) fn assert_speech_in(wav: &std::path::Path, who: &str) {
    let bytes = std::fs::read(wav).unwrap_or_else(|e| panic!("{who} wrote {wav:?}: {e}"));
    let pcm: Vec<i16> = bytes[44.min(bytes.len())..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(pcm.len() > 8000, "{} samples heard by {who}", pcm.len());
    let level = pcm.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / pcm.len() as f64;
    assert!(level > 1e5, "speech reached {who}: {level}");
}
