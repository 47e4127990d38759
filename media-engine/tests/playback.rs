//! The 20 ms media tick on real sockets: a leg plays a tone, a prompt or its peer's
//! own audio back; hears RFC 4733 and in-band key presses; sends key presses; and
//! records what it hears. A plain UDP socket is the peer; what it receives is decoded
//! and measured.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod bridged;
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{engine, peer, receive_rtp};
use media_engine::analysis::frequency;
use media_engine::codec::G711;
use media_engine::dtmf::rfc4733::{TelephoneEvent, key_of, send_packets};
use media_engine::engine::{DtmfSource, Engine, LegParams, MediaEvent, OpenedLeg, Source};
use media_engine::tone::{Segment, Tone, ToneGenerator};
use media_engine::wav::{Prompt, RecordLayout};
use rtp_types::RtpPacketBuilder;

fn leg(engine: &Engine, peer: &UdpSocket, inband: bool) -> OpenedLeg {
    engine
        .open(LegParams {
            remote: Some(peer.local_addr().unwrap()),
            inband_dtmf: inband,
            ..LegParams::default()
        })
        .expect("leg opens")
}

/// Sends `samples` to `to` as PCMU packets, 20 ms apart.
fn send_audio(peer: &UdpSocket, to: SocketAddr, samples: &[i16], ssrc: u32) {
    let mut payload = [0u8; 160];
    for (i, frame) in samples.chunks_exact(160).enumerate() {
        G711::Ulaw.encode(frame, &mut payload);
        let p = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .ssrc(ssrc)
            .sequence_number(i as u16)
            .timestamp(i as u32 * 160)
            .payload(&payload[..])
            .write_vec()
            .unwrap();
        peer.send_to(&p, to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tone(freq: f32, ms: u32) -> Tone {
    Tone::custom(
        &[Segment {
            freqs: [freq, 0.0],
            ms,
        }],
        false,
    )
}

fn samples_of(tone: Tone, ms: usize) -> Vec<i16> {
    let mut out = vec![0i16; ms * 8];
    ToneGenerator::new(tone, 8000).fill(&mut out);
    out
}

fn wait_for(events: &Receiver<MediaEvent>, what: impl Fn(&MediaEvent) -> bool) -> MediaEvent {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(100))
            && what(&e)
        {
            return e;
        }
    }
    panic!("the event never came");
}

#[test]
fn a_peer_taking_no_media_gets_none_while_the_source_keeps_its_time() {
    let (engine, events) = engine(39_400);
    let p = peer();
    let l = leg(&engine, &p, false);
    engine.send_rtp(l.id, false).unwrap();
    let play = engine.play(l.id, Source::Tone(tone(1000.0, 300))).unwrap();
    let audio = receive_rtp(&p, 500)
        .into_iter()
        .filter(|(pt, ..)| *pt == 0)
        .count();
    assert_eq!(audio, 0, "nothing sent while the peer is inactive");
    // The tone ran its 300 ms all the same.
    let finished = std::iter::from_fn(|| events.recv_timeout(Duration::from_millis(200)).ok()).any(
        |e| matches!(e, MediaEvent::PlayFinished { play: p, stopped: false, .. } if p == play),
    );
    assert!(finished, "the tone played out unheard");
    engine.send_rtp(l.id, true).unwrap();
    engine.play(l.id, Source::Tone(tone(1000.0, 200))).unwrap();
    let audio: Vec<_> = receive_rtp(&p, 400)
        .into_iter()
        .filter(|(pt, ..)| *pt == 0)
        .collect();
    assert!(
        audio.len() >= 8,
        "{} packets once sending again",
        audio.len()
    );
    assert!(audio[0].1, "a new talk spurt: the marker");
}

#[test]
fn a_played_tone_reaches_the_peer_at_its_pitch_then_play_finishes() {
    let (engine, events) = engine(30_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    let play = engine.play(l.id, Source::Tone(tone(1000.0, 400))).unwrap();
    let packets = receive_rtp(&p, 700);
    let audio: Vec<_> = packets.iter().filter(|(pt, ..)| *pt == 0).collect();
    assert!(
        (18..=22).contains(&audio.len()),
        "{} packets for 400 ms",
        audio.len()
    );
    assert!(audio[0].1, "the first packet of the source has the marker");
    for w in audio.windows(2) {
        assert_eq!(
            w[1].2.wrapping_sub(w[0].2),
            160,
            "timestamps step by a frame"
        );
    }
    let mut pcm = vec![0i16; audio.len() * 160];
    for (i, (.., payload)) in audio.iter().enumerate() {
        G711::Ulaw.decode(payload, &mut pcm[i * 160..(i + 1) * 160]);
    }
    let f = frequency(&pcm[160..pcm.len() - 320], 8000);
    assert!((f - 1000.0).abs() < 20.0, "{f} Hz");
    let e = wait_for(&events, |e| matches!(e, MediaEvent::PlayFinished { .. }));
    assert_eq!(
        e,
        MediaEvent::PlayFinished {
            session: l.id,
            play,
            stopped: false
        }
    );
}

#[test]
fn a_prompt_at_another_rate_loops_and_stop_ends_it_within_a_frame() {
    let (engine, events) = engine(31_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    // 300 ms of 500 Hz at 22,050 Hz, looped forever.
    let mut g = ToneGenerator::new(tone(500.0, 300), 22_050);
    let mut samples = vec![0i16; 22_050 * 3 / 10];
    g.fill(&mut samples);
    let prompt = Arc::new(Prompt {
        rate: 22_050,
        samples: samples.into(),
    });
    let play = engine
        .play(l.id, Source::Prompt { prompt, times: 0 })
        .unwrap();
    let packets = receive_rtp(&p, 1000);
    assert!(
        packets.len() >= 45,
        "a looping prompt keeps playing: {}",
        packets.len()
    );
    let mut pcm = vec![0i16; 160];
    G711::Ulaw.decode(&packets[20].3, &mut pcm);
    let f = frequency(&pcm, 8000);
    assert!((f - 500.0).abs() < 60.0, "{f} Hz");
    let stop = Instant::now();
    engine.stop(l.id).unwrap();
    let e = wait_for(&events, |e| matches!(e, MediaEvent::PlayFinished { .. }));
    assert_eq!(
        e,
        MediaEvent::PlayFinished {
            session: l.id,
            play,
            stopped: true
        }
    );
    assert!(stop.elapsed() < Duration::from_millis(100));
    let after = receive_rtp(&p, 200);
    assert!(after.len() <= 2, "{} packets after the stop", after.len());
}

#[test]
fn rfc4733_key_presses_are_reported_once_each() {
    let (engine, events) = engine(32_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    let mut seq = 0u16;
    for (i, key) in ['5', '#'].into_iter().enumerate() {
        let ts = 10_000 + i as u32 * 8000;
        for pkt in send_packets(key, 120, 20, 8000) {
            let raw = RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(101)
                .marker_bit(pkt.marker)
                .ssrc(7)
                .sequence_number(seq)
                .timestamp(ts)
                .payload(&pkt.payload[..])
                .write_vec()
                .unwrap();
            seq += 1;
            p.send_to(&raw, l.local_rtp).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_millis(800);
    while Instant::now() < end {
        if let Ok(MediaEvent::DtmfReceived {
            key,
            duration_ms,
            source,
            ..
        }) = events.recv_timeout(Duration::from_millis(50))
        {
            got.push((key, duration_ms, source));
        }
    }
    assert_eq!(
        got,
        [
            ('5', 120, DtmfSource::Rfc4733),
            ('#', 120, DtmfSource::Rfc4733)
        ],
        "one event per key, the end packets' redundancy ignored"
    );
}

#[test]
fn digits_to_a_peer_without_telephone_event_go_as_tones_in_the_audio() {
    // Leg x (no telephone-event) sends to leg y, which listens for tones.
    let (engine, events) = engine(39_000);
    let x = engine
        .open(LegParams {
            event_pt: None,
            ..LegParams::default()
        })
        .expect("leg opens");
    let y = engine
        .open(LegParams {
            remote: Some(x.local_rtp),
            inband_dtmf: true,
            place_with: Some(x.id),
            ..LegParams::default()
        })
        .expect("leg opens");
    engine.set_remote(x.id, y.local_rtp).unwrap();
    engine.send_digits(x.id, "94", 100, 100).unwrap();
    let mut keys = Vec::new();
    let mut sent = false;
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end && !(sent && keys.len() == 2) {
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(MediaEvent::DtmfReceived {
                session,
                key,
                source,
                ..
            }) if session == y.id => {
                assert_eq!(source, DtmfSource::Inband);
                keys.push(key);
            }
            Ok(MediaEvent::DigitsSent { session, error }) if session == x.id => {
                assert_eq!(error, None);
                sent = true;
            }
            _ => {}
        }
    }
    assert!(sent, "DigitsSent after the tones");
    assert_eq!(keys, ['9', '4']);
}

#[test]
fn inband_tones_are_heard_when_asked_for() {
    let (engine, events) = engine(33_000);
    let p = peer();
    let l = leg(&engine, &p, true);
    let mut audio = samples_of(Tone::dtmf('7', 100, 0).unwrap(), 100);
    audio.extend(vec![0i16; 160 * 10]);
    audio.extend(samples_of(Tone::dtmf('1', 100, 0).unwrap(), 100));
    audio.extend(vec![0i16; 160 * 10]);
    send_audio(&p, l.local_rtp, &audio, 9);
    let mut keys = Vec::new();
    let end = Instant::now() + Duration::from_millis(600);
    while Instant::now() < end {
        if let Ok(MediaEvent::DtmfReceived { key, source, .. }) =
            events.recv_timeout(Duration::from_millis(50))
        {
            assert_eq!(source, DtmfSource::Inband);
            keys.push(key);
        }
    }
    assert_eq!(keys, ['7', '1']);
}

#[test]
fn sent_digits_are_rfc4733_events_with_three_end_packets_and_their_interval() {
    let (engine, _events) = engine(34_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    engine.send_digits(l.id, "42", 100, 200).unwrap();
    let packets = receive_rtp(&p, 800);
    let events: Vec<(bool, u32, TelephoneEvent)> = packets
        .iter()
        .filter(|(pt, ..)| *pt == 101)
        .map(|(_, m, ts, payload)| (*m, *ts, TelephoneEvent::parse(payload).unwrap()))
        .collect();
    let keys: Vec<char> = events
        .iter()
        .filter(|(.., e)| e.end)
        .map(|(.., e)| key_of(e.event).unwrap())
        .collect();
    assert_eq!(
        keys,
        ['4', '4', '4', '2', '2', '2'],
        "each key ends with three end packets"
    );
    let first_ts = events[0].1;
    assert!(events[0].0, "the first packet of an event has the marker");
    assert!(
        events
            .iter()
            .filter(|(.., e)| key_of(e.event) == Some('4'))
            .all(|(_, ts, _)| *ts == first_ts)
    );
    let end = events.iter().find(|(.., e)| e.end).unwrap();
    assert_eq!(end.2.duration, 800, "100 ms at 8 kHz");
    // The second key starts 100 ms of key and 200 ms of interval after the first.
    let second_ts = events
        .iter()
        .find(|(.., e)| key_of(e.event) == Some('2'))
        .unwrap()
        .1;
    let apart = second_ts.wrapping_sub(first_ts);
    assert!((2_400..=2_600).contains(&apart), "{apart} samples apart");
}

#[test]
fn sending_digits_ends_with_an_event_after_the_last_key() {
    let (engine, events) = engine(34_100);
    let p = peer();
    let l = leg(&engine, &p, false);
    let started = Instant::now();
    engine.send_digits(l.id, "123", 100, 100).unwrap();
    let sent = loop {
        match events.recv_timeout(Duration::from_secs(2)) {
            Ok(MediaEvent::DigitsSent { session, error }) if session == l.id => {
                assert_eq!(error, None);
                break started.elapsed();
            }
            Ok(_) => {}
            Err(e) => panic!("no DigitsSent: {e}"),
        }
    };
    // Three keys of 100 ms with two intervals of 100 ms between them: 500 ms.
    assert!(
        sent >= Duration::from_millis(480) && sent < Duration::from_millis(800),
        "{sent:?}"
    );
}

#[test]
fn a_recording_holds_what_the_peer_sent_on_the_left() {
    let (engine, events) = engine(35_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    engine
        .record_start(l.id, &path, RecordLayout::Stereo)
        .unwrap();
    send_audio(&p, l.local_rtp, &samples_of(tone(800.0, 1000), 1000), 3);
    std::thread::sleep(Duration::from_millis(100));
    engine.record_stop(l.id).unwrap();
    let e = wait_for(&events, |e| {
        matches!(e, MediaEvent::RecordingFinished { .. })
    });
    assert_eq!(
        e,
        MediaEvent::RecordingFinished {
            session: l.id,
            path: path.clone(),
            error: None
        }
    );
    let mut reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(reader.spec().channels, 2);
    let all: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = all.iter().step_by(2).copied().collect();
    let right: Vec<i16> = all.iter().skip(1).step_by(2).copied().collect();
    assert!(left.len() >= 7000, "{} samples", left.len());
    let loud: Vec<i16> = left
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 1000)
        .take(4000)
        .collect();
    let f = frequency(&loud, 8000);
    assert!((f - 800.0).abs() < 20.0, "{f} Hz on the left");
    assert!(
        right.iter().all(|s| *s == 0),
        "nothing was sent to the peer"
    );
}

#[test]
fn echo_sends_the_peer_its_own_audio() {
    let (engine, _events) = engine(36_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    engine.play(l.id, Source::Echo).unwrap();
    let sender = p.try_clone().unwrap();
    let to = l.local_rtp;
    let t =
        std::thread::spawn(move || send_audio(&sender, to, &samples_of(tone(600.0, 800), 800), 5));
    let packets = receive_rtp(&p, 1000);
    t.join().unwrap();
    let pcm: Vec<i16> = packets
        .iter()
        .flat_map(|(.., payload)| {
            let mut f = [0i16; 160];
            G711::Ulaw.decode(payload, &mut f);
            f
        })
        .collect();
    let loud: Vec<i16> = pcm
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 1000)
        .take(2400)
        .collect();
    assert!(loud.len() >= 2000, "the echo came back");
    let f = frequency(&loud, 8000);
    assert!((f - 600.0).abs() < 20.0, "{f} Hz");
}

#[test]
fn voice_activity_and_a_fork_on_a_live_leg() {
    use media_engine::fork::{Direction, ForkDirections};
    let (engine, events) = engine(37_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    engine.vad(l.id, true).unwrap();
    let fork = engine.fork(l.id, ForkDirections::Both, 512).unwrap();
    let mut audio = vec![0i16; 8000 / 2];
    audio.extend(common::espeak("Hello, thank you for calling.", 8000));
    audio.extend(vec![0i16; 8000]);
    audio.truncate(audio.len() / 160 * 160);
    send_audio(&p, l.local_rtp, &audio, 11);
    std::thread::sleep(Duration::from_millis(200));
    let mut speech = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            MediaEvent::SpeechStarted { at_ms, .. } => speech.push(("start", at_ms)),
            MediaEvent::SpeechEnded { at_ms, .. } => speech.push(("end", at_ms)),
            _ => {}
        }
    }
    assert_eq!(speech.len(), 2, "{speech:?}");
    assert_eq!((speech[0].0, speech[1].0), ("start", "end"));
    assert!(
        (300..900).contains(&speech[0].1),
        "speech starts near 500 ms: {speech:?}"
    );
    let (mut inbound, mut outbound, mut loudest) = (0, 0, 0i16);
    while let Some(frame) = fork.try_recv() {
        match frame.direction {
            Direction::In => {
                inbound += 1;
                loudest = loudest.max(
                    frame
                        .samples
                        .iter()
                        .map(|s| s.saturating_abs())
                        .max()
                        .unwrap(),
                );
            }
            Direction::Out => {
                outbound += 1;
                assert!(
                    frame.samples.iter().all(|s| *s == 0),
                    "the leg sent nothing"
                );
            }
        }
    }
    assert!(inbound >= audio.len() / 160 - 10, "{inbound} frames in");
    assert_eq!(inbound, outbound);
    assert!(
        loudest > 2000,
        "the speech came through the fork: peak {loudest}"
    );
}

/// The power of `x` at `freq` (one DFT bin).
fn power_at(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let (mut re, mut im) = (0.0, 0.0);
    for (n, s) in x.iter().enumerate() {
        re += f64::from(*s) * (w * n as f64).cos();
        im += f64::from(*s) * (w * n as f64).sin();
    }
    (re * re + im * im) / (x.len() as f64).powi(2)
}

fn decode_all(packets: &[(u8, bool, u32, Vec<u8>)]) -> Vec<i16> {
    packets
        .iter()
        .filter(|(pt, ..)| *pt == 0)
        .flat_map(|(.., payload)| {
            let mut f = [0i16; 160];
            G711::Ulaw.decode(payload, &mut f);
            f
        })
        .collect()
}

#[test]
fn a_conference_mixes_the_others_minus_self_and_whispers_to_one() {
    let (engine, _events) = engine(38_000);
    let (pa, pb, pc) = (peer(), peer(), peer());
    let a = leg(&engine, &pa, false);
    let open_with = |p: &UdpSocket| {
        engine
            .open(LegParams {
                remote: Some(p.local_addr().unwrap()),
                place_with: Some(a.id),
                ..LegParams::default()
            })
            .unwrap()
    };
    let (b, c) = (open_with(&pb), open_with(&pc));
    for l in [a, b, c] {
        engine.join(l.id, 42).unwrap();
    }
    // C alone hears a 2 kHz whisper.
    engine.play(c.id, Source::Tone(tone(2000.0, 3000))).unwrap();
    let sa = pa.try_clone().unwrap();
    let sb = pb.try_clone().unwrap();
    let ta = std::thread::spawn(move || {
        send_audio(&sa, a.local_rtp, &samples_of(tone(500.0, 1500), 1500), 1)
    });
    let tb = std::thread::spawn(move || {
        send_audio(&sb, b.local_rtp, &samples_of(tone(1300.0, 1500), 1500), 2)
    });
    let rc = std::thread::spawn(move || receive_rtp(&pc, 1400));
    let heard_a = decode_all(&receive_rtp(&pa, 1400));
    let heard_c = decode_all(&rc.join().unwrap());
    ta.join().unwrap();
    tb.join().unwrap();
    let window = |x: &[i16]| x[x.len() / 3..x.len() * 2 / 3].to_vec();
    let (ha, hc) = (window(&heard_a), window(&heard_c));
    let loud = 1e5;
    assert!(power_at(&ha, 1300.0) > loud, "A hears B");
    assert!(
        power_at(&ha, 500.0) < loud / 100.0,
        "A does not hear itself"
    );
    assert!(
        power_at(&ha, 2000.0) < loud / 100.0,
        "A does not hear C's whisper"
    );
    for f in [500.0, 1300.0, 2000.0] {
        assert!(power_at(&hc, f) > loud, "C hears {f} Hz");
    }
}

#[test]
fn a_muted_leg_sends_silence_and_records_the_peer_as_silence() {
    let (engine, events) = engine(37_000);
    let p = peer();
    let l = leg(&engine, &p, false);
    engine.play(l.id, Source::Tone(tone(1000.0, 5000))).unwrap();
    engine.mute(l.id, false, true).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let muted = decode_all(&receive_rtp(&p, 400));
    assert!(muted.len() >= 160 * 15, "packets keep flowing while muted");
    assert!(
        muted.iter().all(|s| s.abs() < 64),
        "the peer hears silence while muted out"
    );
    engine.mute(l.id, false, false).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let heard = decode_all(&receive_rtp(&p, 400));
    let f = frequency(&heard, 8000);
    assert!((f - 1000.0).abs() < 20.0, "{f} Hz once unmuted");

    // Muted in: what the peer says is recorded as silence.
    engine.stop(l.id).unwrap();
    engine.mute(l.id, true, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muted.wav");
    engine
        .record_start(l.id, &path, RecordLayout::Stereo)
        .unwrap();
    send_audio(&p, l.local_rtp, &samples_of(tone(800.0, 600), 600), 9);
    engine.record_stop(l.id).unwrap();
    wait_for(&events, |e| {
        matches!(e, MediaEvent::RecordingFinished { .. })
    });
    let all: Vec<i16> = hound::WavReader::open(&path)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let left: Vec<i16> = all.iter().step_by(2).copied().collect();
    assert!(left.len() >= 3200, "{} samples recorded", left.len());
    assert!(
        left.iter().all(|s| *s == 0),
        "the muted peer is recorded as silence"
    );
}

/// Two bridged legs that only relay are passed by on the tick, and the relay does
/// not look into their media; what changes that (a key whose end packets were all
/// lost, a mute, a recording, a prompt) must still be done.
#[test]
fn a_relaying_bridge_still_ends_lost_keys_mutes_records_and_plays() {
    let (engine, events) = engine(36_500);
    let (pa, pb) = (peer(), peer());
    let (a, b) = bridged::bridged_call(&engine, &pa, &pb);
    // A few ticks of relaying only.
    send_audio(&pa, a.local_rtp, &samples_of(tone(500.0, 100), 100), 1);
    assert!(
        !receive_rtp(&pb, 100).is_empty(),
        "A's peer's audio is relayed to B's peer"
    );

    // A key press from A's peer whose end packets never come: only the tick's
    // timeout (RFC 4733 section 2.5.2) reports it.
    for (seq, pkt) in send_packets('7', 100, 20, 8000)
        .into_iter()
        .filter(|p| !TelephoneEvent::parse(&p.payload).unwrap().end)
        .enumerate()
    {
        let raw = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(101)
            .marker_bit(pkt.marker)
            .ssrc(1)
            .sequence_number(100 + seq as u16)
            .timestamp(40_000)
            .payload(&pkt.payload[..])
            .write_vec()
            .unwrap();
        pa.send_to(&raw, a.local_rtp).unwrap();
    }
    let e = wait_for(&events, |e| matches!(e, MediaEvent::DtmfReceived { .. }));
    assert!(
        matches!(e, MediaEvent::DtmfReceived { session, key: '7', .. } if session == a.id),
        "{e:?}"
    );

    // A leg muted in relays silence; unmuted, the audio again.
    let relayed = |freq: f32| {
        receive_rtp(&pb, 60);
        send_audio(&pa, a.local_rtp, &samples_of(tone(freq, 200), 200), 1);
        decode_all(&receive_rtp(&pb, 100))
    };
    engine.mute(a.id, true, false).unwrap();
    let muted = relayed(500.0);
    assert!(muted.len() >= 160 * 8, "packets keep flowing while muted");
    assert!(muted.iter().all(|s| s.abs() < 64), "B's peer hears silence");
    engine.mute(a.id, false, false).unwrap();
    let heard = relayed(500.0);
    let f = frequency(&heard[160..], 8000);
    assert!((f - 500.0).abs() < 20.0, "{f} Hz once unmuted");

    // A recording on A hears both peers: B's leg must decode again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.wav");
    engine
        .record_start(a.id, &path, RecordLayout::Stereo)
        .unwrap();
    let to_b = b.local_rtp;
    let b_side = std::thread::spawn(move || {
        send_audio(&pb, to_b, &samples_of(tone(600.0, 600), 600), 2);
        pb
    });
    send_audio(&pa, a.local_rtp, &samples_of(tone(800.0, 600), 600), 1);
    let pb = b_side.join().unwrap();
    engine.record_stop(a.id).unwrap();
    wait_for(&events, |e| {
        matches!(e, MediaEvent::RecordingFinished { error: None, .. })
    });
    let mut reader = hound::WavReader::open(&path).unwrap();
    let all: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let channel = |skip: usize| -> Vec<i16> {
        all.iter()
            .skip(skip)
            .step_by(2)
            .copied()
            .skip_while(|s| s.abs() < 1000)
            .take(2400)
            .collect()
    };
    let (left, right) = (channel(0), channel(1));
    assert_eq!(left.len(), 2400, "A's peer is on the left");
    assert_eq!(right.len(), 2400, "B's peer is on the right");
    let (fl, fr) = (frequency(&left, 8000), frequency(&right, 8000));
    assert!((fl - 800.0).abs() < 20.0, "{fl} Hz on the left");
    assert!((fr - 600.0).abs() < 20.0, "{fr} Hz on the right");

    // A prompt on B reaches B's peer in place of the relayed audio.
    receive_rtp(&pb, 100);
    engine.play(b.id, Source::Tone(tone(1000.0, 300))).unwrap();
    let audio: Vec<_> = receive_rtp(&pb, 300)
        .into_iter()
        .filter(|(pt, ..)| *pt == 0)
        .collect();
    assert!(audio.len() >= 10, "{} packets of the prompt", audio.len());
    let mut pcm = vec![0i16; audio.len() * 160];
    for (i, (.., payload)) in audio.iter().enumerate() {
        G711::Ulaw.decode(payload, &mut pcm[i * 160..(i + 1) * 160]);
    }
    let f = frequency(&pcm[160..pcm.len() - 160], 8000);
    assert!((f - 1000.0).abs() < 20.0, "{f} Hz at B's peer");
}
