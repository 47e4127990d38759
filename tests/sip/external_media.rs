//! `external_media_start` on a SIPp carrier's call: the caller's audio reaches a
//! local RTP listener and a local WebSocket speaking AudioSocket, what each sends
//! back is heard by the caller, a peer that cannot be reached fails its action
//! with the cause while the flow goes on, the call lists what started, and the
//! call's end ends them (the AudioSocket peer gets its hangup message).

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::media_stream::{heard, rms as ulaw_rms, tone};
use super::*;

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// The caller's loud frames (PCMU from the platform) arriving at `media` over
/// `within`.
async fn caller_hears(media: &UdpSocket, within: Duration) -> usize {
    heard(media, within)
        .await
        .iter()
        .filter(|(_, payload)| ulaw_rms(payload) > 2000.0)
        .count()
}

/// An AudioSocket message (type, 2-byte big-endian length, payload).
fn audiosocket(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A WebSocket server speaking AudioSocket: each message the platform sends comes
/// out of the first channel as (type, payload); bytes put in the second go to
/// the platform as one binary message each.
async fn audiosocket_server(
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<(u8, Vec<u8>)>,
    mpsc::UnboundedSender<Vec<u8>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (got_tx, got) = mpsc::unbounded_channel();
    let (send, mut to_send) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = match tls {
            Some(config) => {
                let secured = tokio_rustls::TlsAcceptor::from(config)
                    .accept(tcp)
                    .await
                    .unwrap();
                tokio_tungstenite::accept_async(Box::new(secured) as Box<dyn Stream>)
                    .await
                    .unwrap()
            }
            None => tokio_tungstenite::accept_async(Box::new(tcp) as Box<dyn Stream>)
                .await
                .unwrap(),
        };
        loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Binary(data))) => {
                        let mut rest = &data[..];
                        while rest.len() >= 3 {
                            let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
                            let end = (3 + len).min(rest.len());
                            if got_tx.send((rest[0], rest[3..end].to_vec())).is_err() {
                                return;
                            }
                            rest = &rest[end..];
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
                bytes = to_send.recv() => match bytes {
                    Some(bytes) => {
                        if ws.send(Message::Binary(bytes.into())).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
            }
        }
    });
    (addr, got, send)
}

/// A customer `name` whose number runs `actions`, called by SIPp with the test's
/// socket as its media: the customer, that socket, SIPp, and where the call's RTP
/// comes from.
async fn called(
    server: &Server,
    name: &str,
    number: &str,
    actions: serde_json::Value,
) -> (common::Client, UdpSocket, std::process::Child, SocketAddr) {
    let flow = json!({"name": name, "actions": actions});
    let (who, _) = customer_with_number(server, name, number, flow).await;
    let media = media_socket();
    let sipp = sipp_call(server.sip, number, media.local_addr().unwrap().port());
    let to = first_sender(&media);
    (who, media, sipp, to)
}

/// Hangs up `who`'s live call; its SIPp caller must end well.
async fn hang_up(server: &Server, who: &common::Client, sipp: std::process::Child) {
    let call = call_with_status(who, "progressing").await;
    let id = call["id"].as_str().unwrap();
    let (status, _) = who.post(&format!("/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200);
    let sipp = sipp_done(sipp).await;
    assert!(sipp.success(), "SIPp: {sipp}\n{}", server.printed());
}

/// The loud 20 ms frames among the AudioSocket messages the platform sends within
/// `within` (every one of them 8 kHz signed linear audio).
async fn loud_slin(
    from_platform: &mut mpsc::UnboundedReceiver<(u8, Vec<u8>)>,
    within: Duration,
) -> usize {
    let mut loud = 0;
    let until = tokio::time::Instant::now() + within;
    while let Ok(Some((kind, payload))) = tokio::time::timeout_at(until, from_platform.recv()).await
    {
        assert_eq!(kind, 0x10, "8 kHz signed linear");
        if payload.len() == 320 && rms(&slin(&payload)) > 2000.0 {
            loud += 1;
        }
    }
    loud
}

/// `ms` of a `freq` Hz tone as 8 kHz signed linear little-endian bytes.
fn slin_tone(freq: f64, ms: usize) -> Vec<u8> {
    tone(freq, ms)
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect()
}

/// A byte stream the test's WebSocket server runs on (TCP or TLS).
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// Signed linear little-endian as samples.
fn slin(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_audio_goes_out_over_rtp_and_audiosocket_and_their_audio_comes_back() {
    let server = Server::start(Options::default());
    let rtp_peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (ws_addr, mut from_platform, to_platform) = audiosocket_server(None).await;
    // A port nobody listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (em, media, sipp, to) = called(
        &server,
        "em",
        "+15550003333",
        json!([
            {"type": "answer"},
            {"type": "beep"},
            {"type": "external_media_start", "option": {
                "external_host": closed.to_string(), "encapsulation": "audiosocket"}},
            {"type": "external_media_start", "option": {
                "external_host": rtp_peer.local_addr().unwrap().to_string(),
                "direction_listen": "in", "direction_speak": "out"}},
            {"type": "external_media_start", "option": {
                "external_host": ws_addr.to_string(), "encapsulation": "audiosocket",
                "transport": "websocket", "transport_data": "bot?lang=en",
                "format": "slin", "direction_listen": "in", "direction_speak": "out"}},
            {"type": "sleep", "option": {"duration": 30000}}
        ]),
    )
    .await;

    // Both peers connected: the call lists two, not the one that failed.
    let mut call = serde_json::Value::Null;
    for _ in 0..50 {
        call = call_with_status(&em, "progressing").await;
        if call["external_media_ids"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        call["external_media_ids"].as_array().map(Vec::len),
        Some(2),
        "{call}"
    );
    let id = call["id"].as_str().unwrap().to_owned();

    // AudioSocket opens with the stream's UUID, one of the call's.
    let (kind, uuid) = from_platform.recv().await.unwrap();
    assert_eq!((kind, uuid.len()), (0x01, 16));
    let uuid = uuid::Uuid::from_slice(&uuid).unwrap().to_string();
    assert!(
        call["external_media_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == &uuid),
        "{uuid} in {call}"
    );

    // The caller speaks a 1 kHz tone for 1.5 s: both peers hear it.
    let rtp_heard = async {
        let mut buf = [0u8; 1500];
        let (mut loud, mut from) = (0, None);
        let until = tokio::time::Instant::now() + Duration::from_millis(1700);
        while let Ok(Ok((n, peer))) =
            tokio::time::timeout_at(until, rtp_peer.recv_from(&mut buf)).await
        {
            let p = rtp_types::RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.payload_type(), 0, "ulaw as PCMU");
            from = Some(peer);
            if ulaw_rms(p.payload()) > 2000.0 {
                loud += 1;
            }
        }
        (loud, from)
    };
    let ws_heard = loud_slin(&mut from_platform, Duration::from_millis(1700));
    let caller_tone = tone(1000.0, 1500);
    let (_, (rtp_loud, rtp_from), ws_loud) =
        tokio::join!(talk_pcmu(&media, to, &caller_tone), rtp_heard, ws_heard);
    assert!(rtp_loud >= 50, "the RTP peer heard {rtp_loud} loud frames");
    assert!(
        ws_loud >= 50,
        "the AudioSocket peer heard {ws_loud} loud frames"
    );

    // The RTP peer speaks 1 s back (to where its packets came from): the caller
    // hears it.
    let rtp_from = rtp_from.expect("packets from the platform");
    let speak_rtp = async {
        let mut payload = [0u8; 160];
        for (k, frame) in tone(500.0, 1000).chunks_exact(160).enumerate() {
            media_engine::codec::G711::Ulaw.encode(frame, &mut payload);
            let raw = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(0)
                .ssrc(0x4444)
                .sequence_number(k as u16)
                .timestamp(k as u32 * 160)
                .payload(&payload[..])
                .write_vec()
                .unwrap();
            rtp_peer.send_to(&raw, rtp_from).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (_, loud) = tokio::join!(speak_rtp, caller_hears(&media, Duration::from_millis(1500)));
    assert!(
        loud >= 40,
        "the caller heard {loud} loud frames from the RTP peer"
    );

    // The AudioSocket peer sends 1 s at once, in uneven messages: the caller hears
    // it, paced.
    let pcm = slin_tone(700.0, 1000);
    for chunk in pcm.chunks(500) {
        to_platform.send(audiosocket(0x10, chunk)).unwrap();
    }
    let loud = caller_hears(&media, Duration::from_millis(1500)).await;
    assert!(
        loud >= 40,
        "the caller heard {loud} loud frames from the AudioSocket peer"
    );

    // The peer that could not be reached failed its action, naming why; the flow
    // went on to the next ones (above).
    let (_, flow) = em
        .get(&format!(
            "/activeflows/{}",
            call["activeflow_id"].as_str().unwrap()
        ))
        .await;
    assert!(
        flow["executed_actions"].as_array().unwrap().len() >= 5,
        "{flow}"
    );
    let printed = server.printed();
    assert!(
        printed.contains("external media") && printed.contains(&closed.to_string()),
        "the failure names the peer: {printed}"
    );

    // The call ends: the AudioSocket peer is told (a hangup message).
    let (status, _) = em.post(&format!("/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200);
    let hangup = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some((kind, _)) = from_platform.recv().await {
            if kind == 0x00 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(hangup, Ok(true), "the AudioSocket peer got its hangup");
    let sipp = sipp_done(sipp).await;
    assert!(sipp.success(), "SIPp: {sipp}\n{}", server.printed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_server_mode_the_named_peer_connects_and_strangers_are_turned_away() {
    let server = Server::start(Options::default());
    let receiver = Receiver::start().await;
    let (em, media, sipp, to) = called(
        &server,
        "em-server",
        "+15550003334",
        json!([
            {"type": "answer"},
            {"type": "beep"},
            {"type": "external_media_start", "option": {
                "external_host": "127.0.0.1", "connection_type": "server",
                "encapsulation": "audiosocket", "transport": "websocket",
                "format": "slin", "direction_listen": "in", "direction_speak": "out"}},
            {"type": "webhook_send", "option": {"sync": true, "uri": receiver.url(),
                "data": "{\"type\":\"come\",\"address\":\"${voipbin.external_media.local_address}\",\"id\":\"${voipbin.external_media.id}\"}"}},
            {"type": "sleep", "option": {"duration": 30000}}
        ]),
    )
    .await;
    let got = receiver
        .wait_for(Duration::from_secs(10), |g| {
            !common::Receiver::of_type(g, "come").is_empty()
        })
        .await;
    let come = common::Receiver::of_type(&got, "come")[0].json();
    let address: SocketAddr = come["address"].as_str().unwrap().parse().unwrap();

    // A stranger (another loopback address than the one named) is turned away.
    let stranger = tokio::net::TcpSocket::new_v4().unwrap();
    stranger.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = stranger.connect(address).await.unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_tungstenite::client_async(format!("ws://{address}/"), tcp),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a stranger's WebSocket was let in"
    );

    // The named peer comes: it gets the stream's UUID, then the caller's tone.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/"))
        .await
        .expect("the peer is let in");
    let first = ws.next().await.unwrap().unwrap().into_data();
    assert_eq!((first[0], first.len()), (0x01, 3 + 16));
    assert_eq!(
        uuid::Uuid::from_slice(&first[3..]).unwrap().to_string(),
        come["id"].as_str().unwrap()
    );
    let caller_tone = tone(1000.0, 1000);
    let listen = async {
        let mut loud = 0;
        let until = tokio::time::Instant::now() + Duration::from_millis(1200);
        while let Ok(Some(Ok(Message::Binary(data)))) =
            tokio::time::timeout_at(until, ws.next()).await
        {
            if data[0] == 0x10 && rms(&slin(&data[3..])) > 2000.0 {
                loud += 1;
            }
        }
        loud
    };
    let (_, loud) = tokio::join!(talk_pcmu(&media, to, &caller_tone), listen);
    assert!(loud >= 30, "the peer heard {loud} loud frames");

    // What it sends back reaches the caller.
    let pcm = slin_tone(700.0, 1000);
    for chunk in pcm.chunks(640) {
        ws.send(Message::Binary(audiosocket(0x10, chunk).into()))
            .await
            .unwrap();
    }
    let loud = caller_hears(&media, Duration::from_millis(1500)).await;
    assert!(
        loud >= 40,
        "the caller heard {loud} loud frames from the peer"
    );

    hang_up(&server, &em, sipp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wss_peer_is_reached_over_tls_with_its_certificate_checked() {
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, cert, key) = super::tls::certificates(dir.path());
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let (addr, mut from_platform, _to_platform) =
        audiosocket_server(Some(std::sync::Arc::new(tls))).await;
    let mut options = Options::default();
    options
        .args
        .extend(["--sip-tls-ca".to_owned(), ca.display().to_string()]);
    let server = Server::start(options);
    let (em, media, sipp, to) = called(
        &server,
        "em-wss",
        "+15550003335",
        json!([
            {"type": "answer"},
            {"type": "beep"},
            {"type": "external_media_start", "option": {
                "external_host": format!("wss://127.0.0.1:{}/bot", addr.port()),
                "encapsulation": "audiosocket", "transport": "websocket",
                "direction_listen": "in", "direction_speak": "out"}},
            {"type": "sleep", "option": {"duration": 30000}}
        ]),
    )
    .await;
    let (kind, _) = tokio::time::timeout(Duration::from_secs(5), from_platform.recv())
        .await
        .expect("the platform connected over TLS")
        .unwrap();
    assert_eq!(kind, 0x01, "the stream's UUID first");
    let caller_tone = tone(1000.0, 1000);
    let listen = loud_slin(&mut from_platform, Duration::from_millis(1200));
    let (_, loud) = tokio::join!(talk_pcmu(&media, to, &caller_tone), listen);
    assert!(loud >= 30, "the wss peer heard {loud} loud frames");
    hang_up(&server, &em, sipp).await;
}
