//! Recordings that end by themselves: on a key, at their duration, after silence
//! (the engine's VAD hearing espeak-ng's voice sent as PCMU).

use super::*;

/// recording_start's options: a beep first, then a recording that a `#` ends (a
/// second in, while the flow sleeps on for five), and one that its `duration` ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_ends_on_its_key_or_its_duration() {
    let server = Server::start(Options::default());
    let (xia, _) = customer_with_number(
        &server,
        "xia",
        "+15551230029",
        json!({"name": "voicemail", "actions": [
            {"type": "answer"},
            {"type": "recording_start", "option": {"beep_start": true, "end_of_key": "#", "duration": 20}},
            {"type": "sleep", "option": {"duration": 5000}},
            {"type": "recording_start", "option": {"duration": 2}},
            {"type": "sleep", "option": {"duration": 4000}},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let media = media_socket();
    let sipp = sipp_call(
        server.sip,
        "+15551230029",
        media.local_addr().unwrap().port(),
    );
    // The beep says where the platform sends from; a second later, press #.
    let platform = first_sender(&media);
    tokio::time::sleep(Duration::from_secs(1)).await;
    press(&media, platform, '#');
    let status = sipp_done(sipp).await;
    assert!(status.success());
    let call = call_with_status(&xia, "hangup").await;
    let ids = call["recording_ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2, "{call}");
    let by_key = recording_seconds(&server, &ids[0]);
    assert!((0.5..3.0).contains(&by_key), "ended by the #: {by_key} s");
    let by_duration = recording_seconds(&server, &ids[1]);
    assert!(
        (1.5..2.8).contains(&by_duration),
        "ended at 2 s: {by_duration} s"
    );
}

/// recording_start with `end_of_silence`: the caller speaks (espeak-ng's voice,
/// sent as PCMU) and falls silent; the engine's VAD ends the recording a second
/// after the speech, long before the flow's own end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_ends_after_its_silence() {
    let dir = tempfile::tempdir().unwrap();
    let (wide, narrow) = (dir.path().join("wide.wav"), dir.path().join("narrow.wav"));
    let spoke = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&wide)
        .arg("Please leave your message after the tone, and thank you for calling.")
        .status()
        .expect("espeak-ng (scripts/test installs it)");
    assert!(spoke.success());
    let converted = std::process::Command::new("sox")
        .arg(&wide)
        .args(["-r", "8000", "-c", "1", "-b", "16"])
        .arg(&narrow)
        .status()
        .expect("sox (scripts/test installs it)");
    assert!(converted.success());
    let bytes = std::fs::read(&narrow).unwrap();
    let speech: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();

    let server = Server::start(Options::default());
    let (amy, _) = customer_with_number(
        &server,
        "amy",
        "+15551230032",
        json!({"name": "voicemail", "actions": [
            {"type": "answer"},
            {"type": "recording_start", "option": {"beep_start": true, "end_of_silence": 1, "duration": 20}},
            {"type": "sleep", "option": {"duration": 9000}},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let media = media_socket();
    let sipp = sipp_call(
        server.sip,
        "+15551230032",
        media.local_addr().unwrap().port(),
    );
    let platform = first_sender(&media);
    // The message, in real time; then nothing.
    let started = std::time::Instant::now();
    talk_pcmu(&media, platform, &speech).await;
    let spoken = started.elapsed().as_secs_f64();
    assert!(sipp_done(sipp).await.success());
    let call = call_with_status(&amy, "hangup").await;
    let seconds = recording_seconds(&server, &call["recording_ids"][0]);
    assert!(
        seconds > spoken && seconds < spoken + 3.0,
        "the recording ({seconds:.2} s) ends about a second after the {spoken:.2} s of speech"
    );
}
