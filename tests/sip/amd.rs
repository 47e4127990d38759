//! `amd` on SIPp carrier calls whose callers play calls of the labelled set
//! (tests/amd/): a machine's greeting with `machine_handle: hangup` is hung up
//! with reason `amd`; a person's "hello?" goes on to the flow's next action (the
//! caller hears it); with `delay` the message after `amd` starts only after the
//! machine's beep.

use super::media_stream::{heard, rms};
use super::*;

/// Silence the caller plays before the call of the set, ms.
const LEAD_IN_MS: u64 = 300;

/// A call of the labelled set: its G.711 audio and its beep's start (ms).
fn labelled(name: &str) -> (Vec<u8>, Option<u64>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/amd");
    let audio = std::fs::read(dir.join("set").join(name)).unwrap();
    let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let beep = labels
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(',').next())
        .and_then(|b| b.parse::<u64>().ok());
    (audio, beep)
}

/// When loud PCMU frames reached `media` within `within`.
async fn loud_frames(media: &UdpSocket, within: Duration) -> Vec<std::time::Instant> {
    heard(media, within)
        .await
        .into_iter()
        .filter(|(_, payload)| rms(payload) > 1000.0)
        .map(|(at, _)| at)
        .collect()
}

/// One caller: a customer whose number runs answer, amd (`option`), a talk and
/// a hangup; the caller plays `file`. Returns the customer, the call's final row,
/// when the caller started playing and when it heard loud audio.
async fn amd_call(
    server: &Server,
    receiver: &Receiver,
    name: &str,
    number: &str,
    option: serde_json::Value,
    file: &str,
) -> (
    common::Client,
    serde_json::Value,
    std::time::Instant,
    Vec<std::time::Instant>,
) {
    let hooks = receiver.url();
    let (who, flow) = customer_with_number(
        server,
        name,
        number,
        json!({"name": name, "actions": [
            {"type": "answer"},
            {"type": "beep"},
            {"type": "amd", "option": option},
            {"type": "webhook_send", "option": {"sync": true, "uri": hooks,
                "data": "{\"type\":\"amd_variables\",\"result\":\"${voipbin.amd.result}\",\"beep_ms\":\"${voipbin.amd.beep_ms}\"}"}},
            {"type": "talk", "option": {"text": "Hello, this is a message for you. Goodbye.", "language": "en-US"}},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let (status, _) = who
        .put(
            "/customer",
            json!({"webhook_uri": hooks, "webhook_method": "POST"}),
        )
        .await;
    assert_eq!(status, 200);
    let media = media_socket();
    let sipp = sipp_call(server.sip, number, media.local_addr().unwrap().port());
    let to = first_sender(&media);
    // The answer starts once detection listens (the activeflow is at `amd`), after
    // a little silence, as a person or machine picking up would.
    receiver
        .wait_for(Duration::from_secs(10), |got| {
            Receiver::of_type(got, "activeflow_updated")
                .iter()
                .any(|r| {
                    let j = r.json();
                    j["data"]["flow_id"] == flow["id"]
                        && j["data"]["current_action"]["type"] == "amd"
                })
        })
        .await;
    let (answer, _) = labelled(file);
    let audio = [vec![0xffu8; LEAD_IN_MS as usize * 8], answer].concat();
    let (started, heard) = tokio::join!(
        play_pcmu(&media, to, &audio),
        // Speech synthesis on a loaded machine may take seconds.
        loud_frames(&media, Duration::from_millis(audio.len() as u64 / 8 + 8000))
    );
    let status = sipp_done(sipp).await;
    assert!(
        status.success(),
        "{name}: SIPp {status}\n{}",
        server.printed()
    );
    let row = call_with_status(&who, "hangup").await;
    (who, row, started, heard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_is_hung_up_a_person_hears_the_flow_and_delay_waits_for_the_beep() {
    let server = Server::start(Options::default());
    let receiver = Receiver::start().await;
    let (machine, person, delayed) = tokio::join!(
        amd_call(
            &server,
            &receiver,
            "amd-machine",
            "+15550004441",
            json!({"machine_handle": "hangup"}),
            "machine-01.ul"
        ),
        amd_call(
            &server,
            &receiver,
            "amd-person",
            "+15550004442",
            json!({"machine_handle": "hangup"}),
            "human-01.ul"
        ),
        amd_call(
            &server,
            &receiver,
            "amd-delay",
            "+15550004443",
            json!({"machine_handle": "delay"}),
            "machine-02.ul"
        ),
    );
    let got = receiver
        .wait_for(Duration::from_secs(10), |g| {
            Receiver::of_type(g, "call_amd_detected").len() >= 3
                && !Receiver::of_type(g, "call_amd_beep").is_empty()
                && Receiver::of_type(g, "amd_variables").len() >= 2
        })
        .await;
    let verdict_of = |row: &serde_json::Value| {
        Receiver::of_type(&got, "call_amd_detected")
            .iter()
            .map(|r| r.json())
            .find(|j| j["data"]["call_id"] == row["id"])
            .map(|j| j["data"]["result"].clone())
    };

    // The machine: hung up with reason amd, before the message.
    let (_, row, _, _) = machine;
    assert_eq!(row["hangup_reason"], "amd", "{row}");
    assert_eq!(verdict_of(&row), Some(json!("machine")), "{row}");

    // The person: the flow went on (its variables set), the caller heard the
    // message, the call ended normally.
    let (_, row, started, heard) = person;
    assert_eq!(row["hangup_reason"], "normal", "{row}");
    assert_eq!(verdict_of(&row), Some(json!("human")));
    let message = heard
        .iter()
        .filter(|at| at.duration_since(started) > Duration::from_millis(LEAD_IN_MS + 1000))
        .count();
    assert!(
        message >= 10,
        "the person heard {message} loud frames of the message"
    );

    // With delay: the message came after the machine's beep.
    let (_, row, started, heard) = delayed;
    assert_eq!(verdict_of(&row), Some(json!("machine")));
    let variables: Vec<serde_json::Value> = Receiver::of_type(&got, "amd_variables")
        .iter()
        .map(|r| r.json())
        .collect();
    assert!(
        variables.iter().any(|v| v["result"] == "machine"
            && v["beep_ms"]
                .as_str()
                .is_some_and(|b| b.parse::<u64>().is_ok())),
        "the flow after delay sees the verdict and the beep: {variables:?}"
    );
    assert!(
        variables.iter().any(|v| v["result"] == "human"),
        "{variables:?}"
    );
    let (_, beep) = labelled("machine-02.ul");
    let beep = Duration::from_millis(LEAD_IN_MS + beep.unwrap());
    let message: Vec<Duration> = heard
        .iter()
        .map(|at| at.duration_since(started))
        .filter(|d| *d > Duration::from_millis(LEAD_IN_MS + 1000))
        .collect();
    assert!(message.len() >= 10, "the message was heard: {message:?}");
    assert!(
        message[0] > beep,
        "the message began {:?} into the greeting, before its beep at {beep:?}",
        message[0]
    );
}
