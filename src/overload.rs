//! Load shedding: offered more calls than the box can carry, new INVITEs get 503
//! with Retry-After at once (RFC 3261 section 21.5.4), before a transaction, a
//! media port or a flow exists, so the calls already admitted keep their CPU and
//! complete, and the carrier sends the rest elsewhere.
//!
//! The signal is measured, not configured: how late the runtime runs a task that
//! asked to wake up (event-loop lag), or, when larger, how long new calls wait for
//! their flow or rows wait to be written (a database that cannot keep up). An idle or busy-but-keeping-up server wakes it
//! within a millisecond or two; one that has more work than CPU queues it behind
//! the backlog. [`LagMeter`] smooths the samples (so one slow moment does not turn
//! calls away) and turns them into the share of new calls to refuse, rising from 0
//! at [`LagMeter::calm`] to all at [`LagMeter::saturated`]; [`Shedder`] refuses that
//! share evenly (every other call at one half, not in bursts). Both are sans-IO;
//! [`run_probe`] is the thin tokio loop that feeds them.
//!
//! Signalling before bulk work: the call tasks run beside the SIP user agent on its
//! thread's single-threaded runtime (so a call's SIP events and commands never cross
//! threads), and the probe runs there too, so the lag it measures is how late calls
//! and the user agent run. The runtime's workers (the API, webhooks, provider
//! health pings) run at a lower scheduling priority ([`yield_to_signalling`]) than
//! that thread and the media engine's, so when the box is short of CPU the 503s,
//! 100s and RTP still go out on time and the bulk work is what waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How often the probe measures the lag.
pub const PROBE_PERIOD: Duration = Duration::from_millis(10);

/// The share of new calls to refuse now, in thousandths, shared between the probe
/// (which writes it) and the SIP screen (which reads it).
#[derive(Debug, Default)]
pub struct LoadGauge {
    shed_permille: AtomicU32,
    /// The longest a new call waited for its flow since the probe last looked, in
    /// microseconds.
    setup_us: std::sync::atomic::AtomicU64,
}

impl LoadGauge {
    /// The share to refuse, 0 to 1000.
    pub fn shed_permille(&self) -> u32 {
        self.shed_permille.load(Ordering::Relaxed)
    }

    fn set(&self, permille: u32) {
        self.shed_permille
            .store(permille.min(1000), Ordering::Relaxed);
    }

    /// A new call waited `waited` for its flow (the storage it needs was busy): the
    /// probe counts the longest of these as lag, so a database that cannot keep up
    /// sheds calls as a busy CPU does.
    /// Storage waits count at a quarter: a commit that takes a few hundred ms now and
    /// then (a WAL checkpoint) is normal; a queue that grows by seconds is not.
    pub fn storage_waited(&self, waited: Duration) {
        let us = u64::try_from(waited.as_micros() / 4).unwrap_or(u64::MAX);
        self.setup_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The longest setup wait since the last call, and starts counting again.
    fn take_setup(&self) -> Duration {
        Duration::from_micros(self.setup_us.swap(0, Ordering::Relaxed))
    }
}

/// Load shedding as configured: the gauge the SIP screen reads, and the meter its
/// probe ([`run_probe`]) feeds it from.
#[derive(Debug)]
pub struct Shedding {
    /// The share of new calls to refuse.
    pub gauge: Arc<LoadGauge>,
    /// Turns measured lag into that share.
    pub meter: LagMeter,
}

/// Smooths lag samples and maps them to a share of calls to refuse.
#[derive(Debug, Clone)]
pub struct LagMeter {
    calm: Duration,
    saturated: Duration,
    /// The smoothed lag, in microseconds.
    smoothed_us: f64,
}

impl LagMeter {
    /// Refuses nothing below `calm` of smoothed lag and everything from
    /// `saturated` on, in proportion between.
    pub fn new(calm: Duration, saturated: Duration) -> Self {
        Self {
            calm,
            saturated: saturated.max(calm + Duration::from_millis(1)),
            smoothed_us: 0.0,
        }
    }

    /// The lag below which no call is refused.
    pub fn calm(&self) -> Duration {
        self.calm
    }

    /// The lag from which every new call is refused.
    pub fn saturated(&self) -> Duration {
        self.saturated
    }

    /// Takes one sample: how late a wake-up asked for ran. A rise counts at once
    /// for a third, a fall for a tenth: shedding starts within a few samples and
    /// stops only once the backlog is gone.
    pub fn sample(&mut self, lag: Duration) {
        let lag_us = lag.as_secs_f64() * 1e6;
        let weight = if lag_us > self.smoothed_us {
            1.0 / 3.0
        } else {
            0.1
        };
        self.smoothed_us += (lag_us - self.smoothed_us) * weight;
    }

    /// The smoothed lag.
    pub fn lag(&self) -> Duration {
        Duration::from_secs_f64(self.smoothed_us / 1e6)
    }

    /// The share of new calls to refuse now, in thousandths.
    pub fn shed_permille(&self) -> u32 {
        let calm = self.calm.as_secs_f64() * 1e6;
        let full = self.saturated.as_secs_f64() * 1e6;
        if self.smoothed_us <= calm {
            return 0;
        }
        let share = ((self.smoothed_us - calm) / (full - calm)).min(1.0);
        (share * 1000.0).round() as u32
    }
}

/// Refuses a given share of new calls, evenly spread.
#[derive(Debug, Default, Clone)]
pub struct Shedder {
    /// Admissions owed, in thousandths of a call.
    credit: u32,
}

impl Shedder {
    /// Whether to take the next call when `shed_permille` of calls are to be refused.
    pub fn admit(&mut self, shed_permille: u32) -> bool {
        if shed_permille == 0 {
            self.credit = 0;
            return true;
        }
        self.credit += 1000 - shed_permille.min(1000);
        if self.credit >= 1000 {
            self.credit -= 1000;
            true
        } else {
            false
        }
    }
}

/// Measures the runtime's lag every [`PROBE_PERIOD`] and publishes the share to
/// refuse on `gauge`, for as long as the runtime runs.
pub async fn run_probe(mut meter: LagMeter, gauge: Arc<LoadGauge>) {
    let mut shedding = false;
    loop {
        let asked = tokio::time::Instant::now() + PROBE_PERIOD;
        tokio::time::sleep_until(asked).await;
        let lag = tokio::time::Instant::now().saturating_duration_since(asked);
        meter.sample(lag.max(gauge.take_setup()));
        let permille = meter.shed_permille();
        gauge.set(permille);
        metrics::gauge!("voipbin_event_loop_lag_seconds").set(meter.lag().as_secs_f64());
        if (permille > 0) != shedding {
            shedding = permille > 0;
            if shedding {
                tracing::warn!(
                    lag_ms = meter.lag().as_millis() as u64,
                    "overloaded: refusing a share of new calls with 503"
                );
            } else {
                tracing::info!("load is back to normal: taking every new call");
            }
        }
    }
}

/// How much lower than the process's signalling and media threads the runtime's
/// workers are scheduled (a nice value: each step is about a quarter less CPU share
/// when they compete).
pub const WORKER_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority by [`WORKER_NICENESS`]: for the
/// runtime's worker and blocking threads (`on_thread_start`). Linux keeps nice per
/// thread, so the SIP and media threads keep theirs. A failure costs only the
/// priority, so it is logged, not fatal.
pub fn yield_to_signalling() {
    let me = rustix::thread::gettid();
    let result = rustix::process::getpriority_process(Some(me))
        .and_then(|now| rustix::process::setpriority_process(Some(me), now + WORKER_NICENESS));
    if let Err(e) = result {
        tracing::debug!(error = %e, "cannot lower a worker thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn meter() -> LagMeter {
        LagMeter::new(MS * 20, MS * 100)
    }

    #[test]
    fn a_server_that_keeps_up_refuses_nothing() {
        let mut m = meter();
        for _ in 0..1000 {
            m.sample(MS * 2);
        }
        assert_eq!(m.shed_permille(), 0);
    }

    #[test]
    fn one_slow_moment_does_not_turn_calls_away() {
        let mut m = meter();
        m.sample(MS * 50);
        assert_eq!(m.shed_permille(), 0, "a third of 50 ms is under 20 ms");
        for _ in 0..20 {
            m.sample(MS);
        }
        assert_eq!(m.shed_permille(), 0);
    }

    #[test]
    fn a_backlog_sheds_within_a_few_samples_in_proportion() {
        let mut m = meter();
        for _ in 0..3 {
            m.sample(MS * 60);
        }
        // 60 * (1 - (2/3)^3) = 42 ms: (42 - 20) / 80 of calls.
        let share = m.shed_permille();
        assert!((250..300).contains(&share), "{share}");
        for _ in 0..30 {
            m.sample(MS * 60);
        }
        assert_eq!(m.shed_permille(), 500, "60 ms is halfway from 20 to 100");
        for _ in 0..30 {
            m.sample(MS * 400);
        }
        assert_eq!(m.shed_permille(), 1000, "past saturated: everything");
    }

    #[test]
    fn shedding_stops_once_the_backlog_is_gone() {
        let mut m = meter();
        for _ in 0..30 {
            m.sample(MS * 100);
        }
        assert_eq!(m.shed_permille(), 1000);
        let mut samples = 0;
        while m.shed_permille() > 0 {
            m.sample(MS);
            samples += 1;
        }
        // A tenth a sample: about 16 samples (160 ms) from 100 ms to 20 ms.
        assert!((10..25).contains(&samples), "{samples}");
    }

    #[test]
    fn the_shedder_refuses_its_share_evenly() {
        let mut s = Shedder::default();
        let taken: Vec<bool> = (0..6).map(|_| s.admit(500)).collect();
        assert_eq!(taken, [false, true, false, true, false, true]);
        let mut s = Shedder::default();
        let admitted = (0..1000).filter(|_| s.admit(250)).count();
        assert_eq!(admitted, 750);
        assert!((0..10).all(|_| s.admit(0)));
        assert!((0..10).all(|_| !s.admit(1000)));
    }

    #[test]
    fn a_worker_thread_yields_to_signalling_and_others_keep_their_priority() {
        let before = rustix::process::getpriority_process(None).expect("own priority");
        let worker = std::thread::spawn(|| {
            super::yield_to_signalling();
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                .expect("the worker's priority")
        })
        .join()
        .expect("the worker thread");
        assert_eq!(worker, (before + super::WORKER_NICENESS).min(19));
        let after = rustix::process::getpriority_process(Some(rustix::thread::gettid()))
            .expect("own priority");
        assert_eq!(after, before, "only the calling thread is lowered");
    }
}
