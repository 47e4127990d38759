//! `GET /v1.0/ws?token=|accesskey=`: events pushed over a WebSocket.
//!
//! The client sends `{"type":"subscribe","topics":[...]}` and
//! `{"type":"unsubscribe","topics":[...]}`. Topics are
//! `customer_id:<id>:<resource>[:<resource id>]`, matched by prefix at `:` boundaries,
//! as in the original. A topic naming another customer closes the connection (the
//! original does the same). Each frame is the webhook body plus `"topic"`.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::Event;
use crate::AppState;
use crate::auth::{Caller, RawCredential};
use crate::error::ApiError;

/// How often an open WebSocket checks that its credential still holds (it is also
/// checked at once after any revocation).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// A message from the client.
#[derive(Debug, Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    topics: Vec<String>,
}

/// Whether `topic` (an event's full topic) falls under `subscription`.
pub fn topic_matches(subscription: &str, topic: &str) -> bool {
    topic == subscription
        || (topic.starts_with(subscription)
            && topic.as_bytes().get(subscription.len()) == Some(&b':'))
}

/// Upgrades an authenticated request to a WebSocket.
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Caller,
    RawCredential(credential): RawCredential,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| serve(state, caller, credential, socket))
}

/// Whether the credential still holds; a database failure gives it the benefit of
/// the doubt.
async fn still_valid(state: &AppState, credential: &str) -> bool {
    match state
        .auth
        .verify(&state.store, credential, &state.stamps)
        .await
    {
        Ok(_) => true,
        Err(ApiError::InvalidCredentials) => false,
        Err(e) => {
            tracing::warn!(error = %e, "re-checking a websocket's credential failed");
            true
        }
    }
}

/// A frame for one event: the webhook body plus its topic.
fn frame(event: &Event) -> String {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    value["topic"] = serde_json::Value::String(event.topic());
    value.to_string()
}

async fn serve(state: AppState, caller: Caller, credential: String, mut socket: WebSocket) {
    let own_prefix = format!("customer_id:{}", caller.customer_id);
    let mut events = state.events.subscribe();
    let mut revocations = state.auth.revocations();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.reset();
    let mut subscriptions: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            // A revocation anywhere: check now rather than at the next tick.
            Ok(()) = revocations.changed() => recheck.reset_immediately(),
            _ = recheck.tick() => {
                if !still_valid(&state, &credential).await {
                    close(socket, 1008, "the credential was revoked or has expired").await;
                    return;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let Ok(message) = serde_json::from_str::<ClientMessage>(&text) else {
                    close(socket, 1003, "expected {\"type\":\"subscribe\"|\"unsubscribe\",\"topics\":[...]}").await;
                    return;
                };
                if let Some(bad) = message.topics.iter().find(|t| !topic_matches(&own_prefix, t)) {
                    tracing::warn!(customer_id = %caller.customer_id, topic = %bad, "websocket topic outside the caller's scope");
                    close(socket, 1008, "topic outside your customer scope").await;
                    return;
                }
                match message.kind.as_str() {
                    "subscribe" => {
                        for t in message.topics {
                            if !subscriptions.contains(&t) {
                                subscriptions.push(t);
                            }
                        }
                    }
                    "unsubscribe" => subscriptions.retain(|s| !message.topics.contains(s)),
                    _ => {
                        close(socket, 1003, "type must be subscribe or unsubscribe").await;
                        return;
                    }
                }
            }
            event = events.recv() => {
                let event: Arc<Event> = match event {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(customer_id = %caller.customer_id, skipped = n, "websocket client too slow; events skipped");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                if event.customer_id != caller.customer_id {
                    continue;
                }
                let topic = event.topic();
                if subscriptions.iter().any(|s| topic_matches(s, &topic))
                    && socket.send(Message::Text(Utf8Bytes::from(frame(&event)))).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    // The peer may be gone already; the connection ends either way.
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await
        .ok();
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn prefix_matches_at_boundaries_only() {
        assert!(topic_matches("customer_id:a:flow", "customer_id:a:flow:1"));
        assert!(topic_matches("customer_id:a", "customer_id:a:flow:1"));
        assert!(!topic_matches("customer_id:a:flo", "customer_id:a:flow:1"));
        assert!(!topic_matches("customer_id:ab", "customer_id:a:flow:1"));
    }
}
