//! The user agent on tokio sockets: [`spawn`] starts it on a UDP socket (and TCP and
//! TLS when given) and returns a [`UaHandle`] for commands and a channel of [`UaEvent`]s.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::driver::{Endpoint, Sockets, Stats, serve};
use crate::msg::{Message, ParseError};
use crate::transaction::{Transmit, Transport};

use super::{UaEvent, UserAgent};

/// A command: runs on the driver's task with the user agent and the current time.
pub type Command = Box<dyn FnOnce(&mut UserAgent, Instant) + Send>;

/// The user agent's driver stopped; nothing more can be done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SIP user agent has stopped")]
pub struct Stopped;

/// Commands the running user agent. Cheap to clone; one per call actor is fine.
#[derive(Debug, Clone)]
pub struct UaHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl UaHandle {
    /// Runs `f` on the user agent (on its driver's task) and returns its result:
    /// `handle.with(move |ua, now| ua.answer(now, call, Some(&sdp))).await`.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut UserAgent, Instant) -> R + Send + 'static,
    ) -> Result<R, Stopped> {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |ua, now| {
            // The caller may have stopped waiting (its task ended): then nobody
            // needs the result.
            tx.send(f(ua, now)).ok();
        });
        self.commands.send(command).map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Queues `f` to run on the user agent and returns at once, without waiting for
    /// it to have run (for a dispatcher that must never wait). Commands run in the
    /// order they were queued, after the ones before them.
    pub fn post(
        &self,
        f: impl FnOnce(&mut UserAgent, Instant) + Send + 'static,
    ) -> Result<(), Stopped> {
        self.commands.send(Box::new(f)).map_err(|_| Stopped)
    }
}

/// The user agent with the channel its events go out on.
struct Driven {
    ua: UserAgent,
    events: mpsc::UnboundedSender<UaEvent>,
}

impl Endpoint for Driven {
    type Command = Command;

    fn receive(
        &mut self,
        now: Instant,
        msg: Message,
        source: std::net::SocketAddr,
        transport: Transport,
    ) {
        self.ua.receive(now, msg, source, transport);
    }

    fn receive_malformed(&mut self, raw: &[u8], err: &ParseError, source: std::net::SocketAddr) {
        self.ua.receive_malformed(raw, err, source, Transport::Udp);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ua.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.ua.poll_timeout()
    }

    fn command(&mut self, now: Instant, command: Command) {
        command(&mut self.ua, now);
    }

    fn transport_failed(&mut self, now: Instant, peer: std::net::SocketAddr, transport: Transport) {
        self.ua.transport_failed(now, peer, transport);
    }

    fn tls_name(&self, to: std::net::SocketAddr) -> Option<String> {
        self.ua.tls_name(to).map(str::to_owned)
    }

    fn flush(&mut self, _now: Instant) {
        while let Some(event) = self.ua.poll_event() {
            // A closed receiver means nobody listens any more; the calls still end
            // by their own timers.
            self.events.send(event).ok();
        }
    }
}

/// Runs `ua` on the sockets, its events out on `events`, until `shutdown`.
async fn drive(
    sockets: Sockets,
    ua: UserAgent,
    events: mpsc::UnboundedSender<UaEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Stats> {
    let mut driven = Driven { ua, events };
    serve(sockets, &mut driven, Some(commands), shutdown).await
}

/// Starts `ua` on `sockets` until `shutdown` turns true. Events arrive on the
/// returned receiver in order; it is unbounded so that no call event is ever
/// dropped, so read it.
pub fn spawn(
    sockets: Sockets,
    ua: UserAgent,
    shutdown: watch::Receiver<bool>,
) -> (
    UaHandle,
    mpsc::UnboundedReceiver<UaEvent>,
    JoinHandle<std::io::Result<Stats>>,
) {
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(drive(sockets, ua, events_tx, commands_rx, shutdown));
    (
        UaHandle {
            commands: commands_tx,
        },
        events_rx,
        task,
    )
}

/// The user agent on a thread of its own, as [`spawn_on_thread`] starts it.
#[derive(Debug)]
pub struct OnThread {
    /// Commands the user agent.
    pub handle: UaHandle,
    /// Its events, in order (unbounded: read it).
    pub events: mpsc::UnboundedReceiver<UaEvent>,
    /// Ends (on the caller's runtime) with the thread's result.
    pub task: JoinHandle<std::io::Result<Stats>>,
    /// The thread's single-threaded runtime, for the tasks that talk to the user agent
    /// most (a server's call tasks): beside it, their commands and its events wake
    /// each other in the thread's run queue, with no cross-thread wake-up. It runs
    /// them until the user agent stops.
    pub runtime: tokio::runtime::Handle,
}

/// Like [`spawn`], but on an OS thread of its own running a single-threaded runtime,
/// so the user agent's answers (a 100, a stateless 503 under overload, a 200 to a
/// BYE) never wait in a run queue behind the application's other work. The sockets
/// move to that thread's runtime.
pub fn spawn_on_thread(
    sockets: Sockets,
    ua: UserAgent,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<OnThread> {
    // Tokio sockets belong to the runtime that registered them: hand them over as
    // std sockets (still non-blocking) and register them again on the new one.
    let sockets = sockets.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let runtime_handle = runtime.handle().clone();
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("sip-ua".into())
        .spawn(move || {
            // The user agent is a task, not the `block_on` future: a task woken from
            // its own thread is queued there, where waking the `block_on` future
            // writes to the runtime's eventfd every time.
            let result = runtime.block_on(async move {
                let sockets = sockets.register()?;
                tokio::spawn(drive(sockets, ua, events_tx, commands_rx, shutdown))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            });
            // The receiver is gone only when nobody waits for the end.
            done_tx.send(result).ok();
        })?;
    let task = tokio::spawn(async move {
        done_rx.await.unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the SIP user agent's thread panicked",
            ))
        })
    });
    Ok(OnThread {
        handle: UaHandle {
            commands: commands_tx,
        },
        events: events_rx,
        task,
        runtime: runtime_handle,
    })
}
