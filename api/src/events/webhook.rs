//! The webhook sender: drains the outbox, one HTTP request per due delivery.
//!
//! The database work is batched, so a busy platform (ten events a call, hundreds of
//! calls a second) is limited by its receivers, not by SQLite: the due rows of a pass
//! are claimed in one transaction, the customers' secrets read once per pass, and
//! the attempts' outcomes written by one task that commits whatever has finished
//! together.
//!
//! Retries follow the schedule (default `0s,1m,5m,30m,2h`, seed 000 "Webhook Retry
//! Policy"): entry *i* is the wait before attempt *i + 1*, so five entries make five
//! attempts. A connection error, a timeout (10 s) or a 5xx is retried; any other
//! answer ends the delivery (a 4xx means the receiver refused it on purpose, as in the
//! original). A receiver that hangs costs one in-flight slot for 10 s, never a stuck
//! worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};

use super::signature;
use crate::clock::{Stamps, format_micros, parse_micros};
use crate::store::Store;
use crate::store::customers;
use crate::store::deliveries::{self, DELIVERED, Delivery, FAILED};

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many deliveries are in flight at once.
const MAX_IN_FLIGHT: usize = 64;
/// How many due rows are read per pass.
const BATCH: i64 = 200;
/// How long a claimed delivery is hidden from other passes and nodes: longer than
/// an attempt can take.
const LEASE: Duration = Duration::from_secs(30);

/// Parses a retry schedule such as `0s,1m,5m,30m,2h`.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let schedule: Vec<Duration> = text
        .split(',')
        .map(|item| parse_duration(item.trim()))
        .collect::<Result<_, _>>()?;
    if schedule.is_empty() {
        return Err("the schedule needs at least one entry".to_owned());
    }
    Ok(schedule)
}

/// Parses `500ms`, `30s`, `5m` or `2h`.
fn parse_duration(item: &str) -> Result<Duration, String> {
    let split = item
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(item.len());
    let (digits, unit) = item.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{item:?} is not a duration like 30s, 5m or 2h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "{item:?}: unknown unit {unit:?} (use ms, s, m or h)"
        )),
    }
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    /// The receiver took it (2xx, 3xx) or refused it for good (4xx).
    Done(u16),
    /// Worth another try: connection error, timeout, 5xx.
    Retry(String),
}

/// Sends due deliveries until shut down.
pub struct WebhookSender {
    store: Store,
    stamps: Arc<Stamps>,
    client: crate::outbound::Outbound,
    schedule: Vec<Duration>,
    wakeup: Arc<tokio::sync::Notify>,
    slots: Arc<Semaphore>,
    /// Finished attempts, for the task that records them.
    finished: mpsc::UnboundedSender<Delivery>,
    finished_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Delivery>>>,
}

impl WebhookSender {
    /// A sender over `store`, woken by `wakeup`, retrying by `schedule`.
    pub fn new(
        store: Store,
        stamps: Arc<Stamps>,
        schedule: Vec<Duration>,
        wakeup: Arc<tokio::sync::Notify>,
        client: crate::outbound::Outbound,
    ) -> Self {
        let (finished, finished_rx) = mpsc::unbounded_channel();
        Self {
            store,
            stamps,
            client,
            schedule,
            wakeup,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            finished,
            finished_rx: std::sync::Mutex::new(Some(finished_rx)),
        }
    }

    /// Runs until `shutdown` turns true. Pending rows left at shutdown are sent after
    /// the next start.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let finished = this.finished_rx.lock().ok().and_then(|mut rx| rx.take());
        if let Some(rx) = finished {
            tokio::spawn(record_outcomes(
                this.store.clone(),
                this.stamps.clone(),
                this.wakeup.clone(),
                rx,
            ));
        }
        loop {
            let wait = match this.dispatch_due().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::error!(error = %e, "webhook outbox read failed; retrying in 1 s");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = this.wakeup.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims and starts an attempt for every due delivery; returns how long to sleep
    /// before looking again.
    async fn dispatch_due(self: &Arc<Self>) -> Result<Duration, sqlx::Error> {
        let now_micros = self.stamps.now_micros();
        let now = format_micros(now_micros);
        let lease_until =
            format_micros(now_micros + i64::try_from(LEASE.as_micros()).unwrap_or(i64::MAX / 4));
        // As many as there are free slots (at least one: then wait for it).
        let room = self.slots.available_permits().clamp(1, BATCH as usize);
        let due = deliveries::due(self.store.pool(), &now, room as i64).await?;
        if !due.is_empty() {
            // One transaction claims the pass's rows and reads their customers'
            // secrets; a row another pass or node took meanwhile is skipped.
            let mut tx = self.store.begin().await?;
            let mut claimed = Vec::with_capacity(due.len());
            let mut secrets: HashMap<String, Option<String>> = HashMap::new();
            for delivery in due {
                if !deliveries::claim(&mut *tx, &delivery, &now, &lease_until).await? {
                    continue;
                }
                if !secrets.contains_key(&delivery.customer_id) {
                    let secret = customers::get(&mut *tx, &delivery.customer_id)
                        .await?
                        .map(|c| c.webhook_secret);
                    secrets.insert(delivery.customer_id.clone(), secret);
                }
                claimed.push(delivery);
            }
            tx.commit().await?;
            for delivery in claimed {
                let Ok(permit) = self.slots.clone().acquire_owned().await else {
                    break;
                };
                let secret = secrets.get(&delivery.customer_id).cloned().flatten();
                let this = self.clone();
                tokio::spawn(async move {
                    this.attempt(delivery, secret).await;
                    drop(permit);
                });
            }
        }
        let next = deliveries::next_due(self.store.pool()).await?;
        let wait = next
            .as_deref()
            .and_then(parse_micros)
            .map(|at| at - self.stamps.now_micros())
            .map_or(Duration::from_secs(60), |micros| {
                Duration::from_micros(u64::try_from(micros.max(0)).unwrap_or(0))
                    .min(Duration::from_secs(60))
            });
        Ok(wait)
    }

    /// One attempt at one delivery (`secret` is `None` when the customer is gone);
    /// its outcome goes to the recording task.
    async fn attempt(&self, mut delivery: Delivery, secret: Option<String>) {
        let outcome = match secret {
            Some(secret) => self.send(&delivery, &secret).await,
            None => Outcome::Done(0),
        };
        delivery.attempts += 1;
        match outcome {
            Outcome::Done(status) => {
                delivery.status = DELIVERED.to_owned();
                delivery.last_error = if status >= 400 {
                    format!("receiver answered {status}")
                } else {
                    String::new()
                };
                metrics::counter!("voipbin_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                tracing::debug!(id = %delivery.id, status, "webhook delivered");
            }
            Outcome::Retry(error) => {
                let attempts = usize::try_from(delivery.attempts).unwrap_or(usize::MAX);
                delivery.last_error = error;
                if let Some(wait) = self.schedule.get(attempts) {
                    let micros = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX / 2);
                    delivery.next_attempt_at = format_micros(self.stamps.now_micros() + micros);
                    metrics::counter!("voipbin_webhook_deliveries_total", "outcome" => "retry")
                        .increment(1);
                    tracing::info!(id = %delivery.id, uri = %delivery.uri, attempt = attempts, error = %delivery.last_error, "webhook attempt failed; will retry");
                } else {
                    delivery.status = FAILED.to_owned();
                    metrics::counter!("voipbin_webhook_deliveries_total", "outcome" => "failed")
                        .increment(1);
                    tracing::warn!(id = %delivery.id, uri = %delivery.uri, error = %delivery.last_error, "webhook delivery failed after every attempt");
                }
            }
        }
        if self.finished.send(delivery).is_err() {
            tracing::error!(
                "the webhook recorder has stopped; the attempt is retried when its lease ends"
            );
        }
    }

    /// The HTTP request itself.
    async fn send(&self, delivery: &Delivery, secret: &str) -> Outcome {
        let method = match reqwest::Method::from_bytes(delivery.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Outcome::Done(0),
        };
        let request = match self
            .client
            .request_direct(method, &delivery.uri, ATTEMPT_TIMEOUT)
        {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.to_string()),
        };
        let mut request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(delivery.body.clone());
        let unix = self.stamps.now_micros() / 1_000_000;
        if secret.is_empty() {
            request = request.header(signature::TIMESTAMP, unix.to_string());
        } else {
            for (name, value) in signature::headers(secret, &delivery.body, unix) {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(response) if response.status().is_server_error() => {
                Outcome::Retry(format!("receiver answered {}", response.status().as_u16()))
            }
            Ok(response) => Outcome::Done(response.status().as_u16()),
            Err(e) if e.is_timeout() => Outcome::Retry("timed out after 10 s".to_owned()),
            Err(e) => Outcome::Retry(format!("request failed: {e}")),
        }
    }
}

/// Writes finished attempts, as many as have finished, in one transaction each
/// time; then wakes the dispatcher (more may be due, and slots are free). A failed
/// write leaves the rows leased: they are attempted again when the lease ends.
async fn record_outcomes(
    store: Store,
    stamps: Arc<Stamps>,
    wakeup: Arc<tokio::sync::Notify>,
    mut rx: mpsc::UnboundedReceiver<Delivery>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        let now = stamps.now();
        let written: Result<(), sqlx::Error> = async {
            let mut tx = store.begin().await?;
            for delivery in &batch {
                deliveries::record_attempt(&mut *tx, delivery, &now).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, rows = batch.len(), "could not record webhook attempts; they are retried when their lease ends");
        }
        batch.clear();
        wakeup.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_schedule() {
        let s = parse_schedule("0s,1m,5m,30m,2h").expect("valid");
        assert_eq!(s, [0, 60, 300, 1800, 7200].map(Duration::from_secs));
    }

    #[test]
    fn rejects_a_bad_unit() {
        let err = parse_schedule("1x").err().unwrap_or_default();
        assert!(err.contains("unknown unit"), "{err}");
    }
}
