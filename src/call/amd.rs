//! The `amd` action's listener: the caller's audio tapped by a fork, brought to
//! 8 kHz, fed to the sans-IO detectors ([`media_engine::amd`]); what they find
//! goes to the call's core. After a machine's verdict it listens on for the beep
//! (at most [`BEEP_WAIT`]), so a voicemail drop can start after the greeting. It ends by itself, when the call's session ends, or when the
//! core starts another.

use std::sync::Arc;
use std::time::Duration;

use media_engine::amd::{AmdConfig, AmdDetector, Beep, BeepDetector, Detection, FRAME, Verdict};
use media_engine::engine::{Engine, SessionId};
use media_engine::fork::{FORK_FRAME, ForkDirections};
use media_engine::resample::FrameResampler;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::core::Input;

/// How long to listen for the beep after a machine's verdict: a greeting's rest
/// (the flow's own wait is longer, `flow_runtime`'s `AMD_BEEP_WAIT_MS`).
pub const BEEP_WAIT: Duration = Duration::from_secs(15);

// The fork's 20 ms frames at 16 kHz become the detectors' 20 ms at 8 kHz.
const _: () = assert!(FORK_FRAME / 2 == FRAME);

/// Frames the fork keeps for a detector that falls behind (3 s).
const FORK_RING: usize = 150;

/// What the detection heard, told to the call's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The verdict.
    Verdict(Detection),
    /// The machine's beep.
    Beep(Beep),
    /// It stopped listening for a beep that did not come (or the caller's audio
    /// ended first).
    NoBeep,
    /// It could not start: why.
    Failed(String),
}

/// A running detection; dropping it stops it.
#[derive(Debug)]
pub struct Running {
    _stop: oneshot::Sender<()>,
}

/// Starts detection on `session`; reports go to `inputs`.
pub fn start(
    media: &Arc<Engine>,
    session: SessionId,
    config: AmdConfig,
    inputs: mpsc::UnboundedSender<Input>,
) -> Running {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let report = move |r: Report| {
        if inputs.send(Input::Amd(r)).is_err() {
            tracing::debug!("the call ended before its AMD reported");
        }
    };
    let fork = match media.fork(session, ForkDirections::In, FORK_RING) {
        Ok(fork) => fork,
        Err(e) => {
            report(Report::Failed(format!("tapping the call's audio: {e}")));
            return Running { _stop: stop };
        }
    };
    let task = async move {
        let mut down = match FrameResampler::new(16_000, 8000) {
            Ok(down) => down,
            Err(e) => return report(Report::Failed(format!("resampling: {e}"))),
        };
        let mut amd = AmdDetector::new(config);
        let mut beeps = BeepDetector::new();
        let mut narrow = [0i16; FRAME];
        let mut beep_deadline: Option<tokio::time::Instant> = None;
        loop {
            let frame = tokio::select! {
                frame = fork.recv() => frame,
                _ = &mut stopped => return,
                _ = sleep_until(beep_deadline) => return report(Report::NoBeep),
            };
            let Some(frame) = frame else {
                if beep_deadline.is_some() || amd.detection().is_none() {
                    report(Report::NoBeep);
                }
                return;
            };
            if let Err(e) = down.process(&frame.samples, &mut narrow) {
                return report(Report::Failed(format!("resampling: {e}")));
            }
            let samples = &narrow[..];
            if let Some(found) = beeps.feed(samples) {
                tracing::info!(at_ms = found.at_ms, hz = found.freq_hz, "AMD: beep");
                report(Report::Beep(found));
                if amd.detection().is_some() {
                    return;
                }
            }
            if let Some(d) = amd.feed(samples) {
                tracing::info!(
                    verdict = d.verdict.as_str(),
                    cause = d.cause.as_str(),
                    at_ms = d.at_ms,
                    "AMD: verdict"
                );
                report(Report::Verdict(d));
                if d.verdict != Verdict::Machine || beeps.found().is_some() {
                    return;
                }
                beep_deadline = Some(tokio::time::Instant::now() + BEEP_WAIT);
            }
        }
    };
    tokio::spawn(task.instrument(tracing::info_span!("amd")));
    Running { _stop: stop }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
