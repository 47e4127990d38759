//! Events: every resource change becomes an [`Event`] that goes through the
//! [`EventBus`] to two outlets, the customer's webhook (a durable outbox drained by
//! [`webhook::WebhookSender`]) and the WebSocket subscribers ([`ws`]).
//!
//! The order of work for a change is: write the resource and [`EventBus::record`]
//! the event's deliveries in one transaction; commit; then [`EventBus::announce`]
//! the event to the live outlets. A crash before the commit loses the change and its
//! event together; a crash after it loses nothing, because the deliveries are rows.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sqlx::{Any, AnyConnection, Row};
use tokio::sync::{Notify, broadcast};

use crate::clock::Stamps;
use crate::store::deliveries::{self, Delivery};

pub mod signature;
pub mod webhook;
pub mod ws;

/// One event: `<resource>_<verb>` about one resource of one customer.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The event's type, for example `flow_created` or `call_hungup`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339, UTC, microseconds).
    pub timestamp: String,
    /// The resource as the API shows it.
    pub data: Value,
    /// Whose resource it is.
    #[serde(skip)]
    pub customer_id: String,
    /// The resource's kind in topics, for example `flow`.
    #[serde(skip)]
    pub resource: &'static str,
    /// The resource's id.
    #[serde(skip)]
    pub resource_id: String,
}

impl Event {
    /// The WebSocket topic of this event:
    /// `customer_id:<customer>:<resource>:<resource id>`.
    pub fn topic(&self) -> String {
        format!(
            "customer_id:{}:{}:{}",
            self.customer_id, self.resource, self.resource_id
        )
    }

    /// The webhook body: `{"type","timestamp","data"}` (seed 000, "Webhook Payload").
    pub fn webhook_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A customer's webhook: where its events are delivered, and with which method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The URI.
    pub uri: String,
    /// The HTTP method (POST unless the customer chose another).
    pub method: String,
}

impl WebhookTarget {
    /// Reads a customer's webhook: its `webhook_uri` and `webhook_method`, in that
    /// order. A customer that is gone is no row.
    pub const QUERY: &str =
        "SELECT webhook_uri, webhook_method FROM customers WHERE id = $1 AND tm_delete IS NULL";

    /// The target [`WebhookTarget::QUERY`]'s columns name: `None` for no URI, and
    /// POST for no method.
    pub fn from_columns(uri: String, method: String) -> Option<Self> {
        if uri.is_empty() {
            return None;
        }
        Some(Self {
            uri,
            method: if method.is_empty() {
                "POST".to_owned()
            } else {
                method
            },
        })
    }
}

/// The hub every event goes through.
#[derive(Clone)]
pub struct EventBus {
    live: broadcast::Sender<Arc<Event>>,
    sender_wakeup: Arc<Notify>,
    stamps: Arc<Stamps>,
    first_delay_micros: i64,
}

impl EventBus {
    /// A bus whose first webhook attempt waits `first_delay_micros` (the first entry
    /// of the retry schedule, normally 0).
    pub fn new(stamps: Arc<Stamps>, first_delay_micros: i64) -> Self {
        let (live, _) = broadcast::channel(4096);
        Self {
            live,
            sender_wakeup: Arc::new(Notify::new()),
            stamps,
            first_delay_micros,
        }
    }

    /// Makes an event about `resource` `resource_id` of `customer_id`, stamped now.
    pub fn event(
        &self,
        customer_id: &str,
        resource: &'static str,
        resource_id: &str,
        verb: &str,
        data: &impl Serialize,
    ) -> Event {
        let data = serde_json::to_value(data).unwrap_or(Value::Null);
        self.event_with(customer_id, resource, resource_id, verb, data)
    }

    /// As [`EventBus::event`], with the data already a JSON value.
    pub fn event_with(
        &self,
        customer_id: &str,
        resource: &'static str,
        resource_id: &str,
        verb: &str,
        data: Value,
    ) -> Event {
        Event {
            event_type: format!("{resource}_{verb}"),
            timestamp: self.stamps.now(),
            data,
            customer_id: customer_id.to_owned(),
            resource,
            resource_id: resource_id.to_owned(),
        }
    }

    /// Whether any WebSocket subscriber is connected now (events nobody can
    /// receive, with no webhook either, need not be made).
    pub fn has_subscribers(&self) -> bool {
        self.live.receiver_count() > 0
    }

    /// Writes the event's webhook delivery (when the customer has a webhook) inside
    /// the caller's transaction.
    pub async fn record(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), sqlx::Error> {
        match Self::webhook_target(conn, &event.customer_id).await? {
            Some(target) => deliveries::insert(&mut *conn, &self.delivery(event, &target)).await,
            None => Ok(()),
        }
    }

    /// Where a customer's events go: `None` when it has no webhook (or is deleted).
    /// Writers of many events look it up once per customer and insert each
    /// [`EventBus::delivery`] themselves.
    pub async fn webhook_target(
        conn: &mut AnyConnection,
        customer_id: &str,
    ) -> Result<Option<WebhookTarget>, sqlx::Error> {
        let row = sqlx::query::<Any>(WebhookTarget::QUERY)
            .bind(customer_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(WebhookTarget::from_columns(
            row.try_get("webhook_uri")?,
            row.try_get("webhook_method")?,
        ))
    }

    /// The pending delivery of `event` to `target`, due now (or after the first
    /// retry delay when that is not 0).
    pub fn delivery(&self, event: &Event, target: &WebhookTarget) -> Delivery {
        let now = self.stamps.now_micros();
        Delivery {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: event.customer_id.clone(),
            event_type: event.event_type.clone(),
            uri: target.uri.clone(),
            method: target.method.clone(),
            body: event.webhook_body(),
            status: deliveries::PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: crate::clock::format_micros(now + self.first_delay_micros),
            last_error: String::new(),
            tm_create: self.stamps.unique(),
        }
    }

    /// Records the event in the caller's transaction, commits it, then announces it:
    /// the usual end of a handler that changed something.
    pub async fn commit(
        &self,
        mut tx: sqlx::Transaction<'static, Any>,
        event: Event,
    ) -> Result<(), sqlx::Error> {
        self.record(&mut tx, &event).await?;
        tx.commit().await?;
        self.announce(event);
        Ok(())
    }

    /// After the commit: pushes the event to WebSocket subscribers and wakes the
    /// webhook sender.
    pub fn announce(&self, event: Event) {
        // No subscribers is fine: nobody is watching.
        self.live.send(Arc::new(event)).ok();
        self.sender_wakeup.notify_one();
    }

    /// A receiver of every announced event, for a WebSocket connection.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    /// What the webhook sender waits on.
    pub fn sender_wakeup(&self) -> Arc<Notify> {
        self.sender_wakeup.clone()
    }
}
