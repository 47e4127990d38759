//! The AMD detector on the labelled set in tests/amd/ (100 calls: people
//! answering, answering machines with their beeps; made by tests/amd/make-set.sh).
//! Prints the confusion matrix, the time to a verdict and the beep's lateness, and
//! holds the goals: at least 90% right, notsure under 10%, every beep
//! found within 300 ms of its start. `benches/amd-accuracy.sh` prints the same with
//! the detector's cost per frame.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use media_engine::amd::{AmdConfig, AmdDetector, BeepDetector, FRAME, Verdict};
use media_engine::codec::G711;

struct Case {
    file: String,
    label: Verdict,
    beep_ms: Option<u32>,
}

fn set_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/amd")
}

fn cases() -> Vec<Case> {
    let labels = std::fs::read_to_string(set_dir().join("labels.csv")).unwrap();
    labels
        .lines()
        .skip(1)
        .map(|line| {
            let mut f = line.split(',');
            let file = f.next().unwrap().to_owned();
            let label = match f.next().unwrap() {
                "human" => Verdict::Human,
                "machine" => Verdict::Machine,
                other => panic!("label {other}"),
            };
            let beep: i64 = f.next().unwrap().parse().unwrap();
            Case {
                file,
                label,
                beep_ms: u32::try_from(beep).ok(),
            }
        })
        .collect()
}

/// What the detectors made of one call: the verdict and when, the beep and when.
struct Outcome {
    verdict: Option<(Verdict, u32)>,
    beep_ms: Option<u32>,
}

fn run(case: &Case) -> Outcome {
    let ulaw = std::fs::read(set_dir().join("set").join(&case.file)).unwrap();
    let mut pcm = vec![0i16; ulaw.len()];
    G711::Ulaw.decode(&ulaw, &mut pcm);
    let mut amd = AmdDetector::new(AmdConfig::default());
    let mut beep = BeepDetector::new();
    for frame in pcm.chunks_exact(FRAME) {
        amd.feed(frame);
        beep.feed(frame);
    }
    Outcome {
        verdict: amd.detection().map(|d| (d.verdict, d.at_ms)),
        beep_ms: beep.found().map(|b| b.detected_ms),
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn the_labelled_set_is_told_apart_and_every_beep_is_found_in_time() {
    let cases = cases();
    assert!(cases.len() >= 100, "{} calls in the set", cases.len());
    let names = [Verdict::Human, Verdict::Machine, Verdict::NotSure];
    let mut matrix = [[0u32; 3]; 2];
    let (mut right, mut notsure) = (0, 0);
    let mut times = Vec::new();
    let mut late = Vec::new();
    let mut wrong = Vec::new();
    let mut missed_beeps = Vec::new();
    for case in &cases {
        let out = run(case);
        let (verdict, at) = out.verdict.unwrap_or((Verdict::NotSure, 0));
        let row = usize::from(case.label == Verdict::Machine);
        let col = names.iter().position(|n| *n == verdict).unwrap();
        matrix[row][col] += 1;
        times.push(at);
        if verdict == case.label {
            right += 1;
        } else {
            wrong.push(format!("{} ({:?} at {at} ms)", case.file, verdict));
        }
        if verdict == Verdict::NotSure {
            notsure += 1;
        }
        if let Some(start) = case.beep_ms {
            match out.beep_ms {
                Some(found) if found >= start => late.push(found.saturating_sub(start)),
                other => missed_beeps.push(format!("{}: {other:?} for {start}", case.file)),
            }
        } else if let Some(found) = out.beep_ms {
            missed_beeps.push(format!(
                "{}: a beep at {found} ms in a person's answer",
                case.file
            ));
        }
    }
    times.sort_unstable();
    late.sort_unstable();
    let n = cases.len() as f64;
    println!(
        "AMD on {} labelled calls (tests/amd/labels.csv)",
        cases.len()
    );
    println!("               human  machine  notsure");
    println!(
        "  is human     {:5}  {:7}  {:7}",
        matrix[0][0], matrix[0][1], matrix[0][2]
    );
    println!(
        "  is machine   {:5}  {:7}  {:7}",
        matrix[1][0], matrix[1][1], matrix[1][2]
    );
    println!(
        "  correct {:.1}%  notsure {:.1}%",
        100.0 * f64::from(right) / n,
        100.0 * f64::from(notsure) / n
    );
    println!(
        "  time to verdict (ms of audio): p50 {}  p95 {}  max {}",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times.last().copied().unwrap_or(0)
    );
    println!(
        "  beep recognised after its start (ms): p50 {}  p95 {}  max {}  ({} of {} beeps)",
        percentile(&late, 0.5),
        percentile(&late, 0.95),
        late.last().copied().unwrap_or(0),
        late.len(),
        cases.iter().filter(|c| c.beep_ms.is_some()).count()
    );
    if !wrong.is_empty() {
        println!("  wrong: {}", wrong.join(", "));
    }
    assert!(
        f64::from(right) / n >= 0.90,
        "{right} right of {n}: {wrong:?}"
    );
    assert!(f64::from(notsure) / n < 0.10, "{notsure} notsure of {n}");
    assert!(missed_beeps.is_empty(), "beeps: {missed_beeps:?}");
    assert!(
        late.last().is_none_or(|l| *l <= 300),
        "a beep found {late:?} ms late"
    );
}
