//! `GET /v1.0/calls/{id}/media_stream`: a WebSocket client on a SIPp carrier's live
//! call hears the caller's tone, speaks back (the caller's socket decodes it),
//! gets its mark back once its audio has played, cuts its audio with `clear`,
//! sees the caller's key, and leaves without ending the call.

use std::net::UdpSocket;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::*;

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A SIPp caller on a number of a new customer `name` whose flow answers, beeps
/// (which tells where the call's RTP comes from) and waits `wait_ms`: the customer,
/// the caller's media socket, SIPp, our RTP address, and the call once answered.
pub(super) struct BeepingCall {
    pub who: common::Client,
    pub media: UdpSocket,
    pub sipp: std::process::Child,
    pub to: std::net::SocketAddr,
    pub call: serde_json::Value,
}

pub(super) async fn beeping_call(
    server: &Server,
    name: &str,
    number: &str,
    wait_ms: u64,
) -> BeepingCall {
    let (who, _) = customer_with_number(
        server,
        name,
        number,
        json!({"name": name, "actions": [
            {"type": "answer"},
            {"type": "beep"},
            {"type": "sleep", "option": {"duration": wait_ms}}
        ]}),
    )
    .await;
    let media = media_socket();
    let sipp = sipp_call(server.sip, number, media.local_addr().unwrap().port());
    let to = first_sender(&media);
    let call = call_with_status(&who, "progressing").await;
    BeepingCall {
        who,
        media,
        sipp,
        to,
        call,
    }
}

/// The next JSON frame other than `media` (those are counted in `media`), within
/// `within`.
async fn next_event(ws: &mut Ws, within: Duration, media: &mut Vec<Vec<u8>>) -> serde_json::Value {
    next_event_but(ws, within, media, &[]).await
}

/// [`next_event`], passing over the events named in `skip` too.
async fn next_event_but(
    ws: &mut Ws,
    within: Duration,
    media: &mut Vec<Vec<u8>>,
    skip: &[&str],
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no event but {skip:?} within {within:?}"))
            .expect("the socket open")
            .expect("a frame");
        let Message::Text(text) = frame else { continue };
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        if skip.iter().any(|e| value["event"] == *e) {
            continue;
        }
        if value["event"] == "media" {
            let payload = value["media"]["payload"].as_str().expect("a payload");
            media.push(base64_decode(payload));
            continue;
        }
        return value;
    }
}

/// Frames of `media` over `within`, the others dropped.
async fn media_for(ws: &mut Ws, within: Duration) -> Vec<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut media = Vec::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(text) = frame
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
            && value["event"] == "media"
        {
            media.push(base64_decode(
                value["media"]["payload"].as_str().unwrap_or(""),
            ));
        }
    }
    media
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

pub(super) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// RMS of mu-law audio.
pub(super) fn rms(ulaw: &[u8]) -> f64 {
    let mut pcm = vec![0i16; ulaw.len()];
    media_engine::codec::G711::Ulaw.decode(ulaw, &mut pcm);
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// `ms` of a `freq` Hz tone at 8 kHz.
pub(super) fn tone(freq: f64, ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

/// The PCMU payloads arriving at `media` over `within`, each with when it came.
pub(super) async fn heard(
    media: &UdpSocket,
    within: Duration,
) -> Vec<(std::time::Instant, Vec<u8>)> {
    let sock = media.try_clone().unwrap();
    tokio::task::spawn_blocking(move || {
        let until = std::time::Instant::now() + within;
        let mut buf = [0u8; 1500];
        let mut out = Vec::new();
        while std::time::Instant::now() < until {
            if let Ok(n) = sock.recv(&mut buf)
                && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
                && p.payload_type() == 0
            {
                out.push((std::time::Instant::now(), p.payload().to_vec()));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Sends the client's audio (mu-law) in uneven chunks, as a client would.
pub(super) async fn speak(ws: &mut Ws, pcm: &[i16]) {
    let mut ulaw = vec![0u8; pcm.len()];
    media_engine::codec::G711::Ulaw.encode(pcm, &mut ulaw);
    for chunk in ulaw.chunks(333) {
        let frame = json!({"event": "media", "media": {"payload": base64_encode(chunk)}});
        ws.send(Message::text(frame.to_string())).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_hears_the_caller_speaks_back_marks_clears_and_leaves() {
    let server = Server::start(Options::default());
    let BeepingCall {
        who: mo,
        media,
        sipp,
        to,
        call,
    } = beeping_call(&server, "mo", "+15550002222", 30000).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let id = call["id"].as_str().unwrap();

    // Another customer's client is not let in (404), nor a bad format (400).
    let (_, other) = server.admin().new_customer("nosy").await;
    let status = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
            Ok(_) => 101,
            Err(e) => panic!("{e}"),
        }
    };
    let ws_url = |key: &str, format: &str| {
        format!(
            "ws://{}/v1.0/calls/{id}/media_stream?token={key}{format}",
            server.http
        )
    };
    assert_eq!(status(ws_url(&other.key, "")).await, 404);
    assert_eq!(status(ws_url(&mo.key, "&format=mp3")).await, 400);

    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&mo.key, ""))
        .await
        .expect("the media stream");
    let mut from_caller = Vec::new();
    let start = next_event(&mut ws, Duration::from_secs(5), &mut from_caller).await;
    assert_eq!(start["event"], "start", "{start}");
    assert_eq!(start["start"]["call_id"], id);
    assert_eq!(start["start"]["media_format"]["encoding"], "ulaw");
    assert_eq!(start["start"]["media_format"]["sample_rate"], 8000);

    // The caller speaks (a 1 kHz tone for 1.5 s): the client hears it.
    let caller_tone = tone(1000.0, 1500);
    let (_, got) = tokio::join!(
        talk_pcmu(&media, to, &caller_tone),
        media_for(&mut ws, Duration::from_millis(1700))
    );
    let loud = got
        .iter()
        .filter(|f| f.len() == 160 && rms(f) > 2000.0)
        .count();
    assert!(
        loud >= 50,
        "{loud} loud frames of {} from the caller",
        got.len()
    );

    // The client speaks 1 s (a 500 Hz tone, in uneven chunks) and marks its end:
    // the caller hears it, and the mark comes back once it has played.
    let sent_at = std::time::Instant::now();
    speak(&mut ws, &tone(500.0, 1000)).await;
    ws.send(Message::text(
        json!({"event": "mark", "mark": {"name": "greeting"}}).to_string(),
    ))
    .await
    .unwrap();
    let speech = ["speech_started", "speech_ended"];
    let (caller_heard, mark) = tokio::join!(heard(&media, Duration::from_millis(1500)), async {
        let mut ignored = Vec::new();
        let mark = next_event_but(&mut ws, Duration::from_secs(3), &mut ignored, &speech).await;
        (mark, sent_at.elapsed())
    });
    let loud = caller_heard.iter().filter(|(_, p)| rms(p) > 2000.0).count();
    assert!(
        loud >= 45,
        "the caller heard {loud} loud frames of the client's second ({} frames)",
        caller_heard.len()
    );
    assert_eq!(mark.0["event"], "mark", "{}", mark.0);
    assert_eq!(mark.0["mark"]["name"], "greeting");
    assert!(
        mark.1 >= Duration::from_millis(900) && mark.1 < Duration::from_millis(2000),
        "the mark came back after {:?}, not once its 1 s of audio had played",
        mark.1
    );

    // 5 s of audio, cut by clear after 0.5 s: the caller's audio stops, and the
    // mark waiting behind it comes back at once.
    speak(&mut ws, &tone(500.0, 5000)).await;
    ws.send(Message::text(
        json!({"event": "mark", "mark": {"name": "long"}}).to_string(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cleared_at = std::time::Instant::now();
    ws.send(Message::text(json!({"event": "clear"}).to_string()))
        .await
        .unwrap();
    let (after, mark) = tokio::join!(heard(&media, Duration::from_millis(1000)), async {
        let mut ignored = Vec::new();
        let mark = next_event_but(&mut ws, Duration::from_secs(2), &mut ignored, &speech).await;
        (mark, cleared_at.elapsed())
    });
    assert_eq!(mark.0["mark"]["name"], "long", "{}", mark.0);
    assert!(
        mark.1 < Duration::from_millis(300),
        "the cleared mark took {:?}",
        mark.1
    );
    let late_loud: Vec<Duration> = after
        .iter()
        .filter(|(_, p)| rms(p) > 2000.0)
        .map(|(at, _)| at.duration_since(cleared_at))
        .collect();
    assert!(
        late_loud.iter().all(|d| *d < Duration::from_millis(100)),
        "the caller still heard the client's audio after clear: {late_loud:?}"
    );

    // The caller presses 5: the client sees it.
    press(&media, to, '5');
    let mut ignored = Vec::new();
    let dtmf = next_event_but(&mut ws, Duration::from_secs(3), &mut ignored, &speech).await;
    assert_eq!(dtmf["dtmf"]["digit"], "5", "{dtmf}");

    // The client leaves: the call goes on.
    ws.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, row) = mo.get(&format!("/calls/{id}")).await;
    assert_eq!(
        row["status"], "progressing",
        "the call outlives its stream: {row}"
    );
    let (status, _) = mo.post(&format!("/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200);
    let sipp = sipp_done(sipp).await;
    assert!(sipp.success(), "SIPp: {sipp}\n{}", server.printed());
}
