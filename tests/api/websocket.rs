//! WebSocket events: subscribe by topic prefix; only the caller's own events.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Client, Options, Server};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, c: &Client) -> Socket {
    let url = format!("ws://{}/v1.0/ws?accesskey={}", server.http, c.key);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

/// Sends a subscribe and waits until the server has read it (a ping answered after
/// it proves it was processed).
async fn subscribe(ws: &mut Socket, topics: &[String]) {
    ws.send(Message::text(
        json!({"type": "subscribe", "topics": topics}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(Message::Ping(b"sync".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("pong")
            .unwrap()
            .unwrap()
        {
            Message::Pong(_) => return,
            Message::Close(_) => panic!("closed on subscribe"),
            _ => {}
        }
    }
}

async fn next_event(ws: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn subscribed_topics_receive_their_events() {
    let server = Server::start(Options::default());
    let (id, c) = server.admin().new_customer("watcher").await;
    let mut ws = connect(&server, &c).await;
    subscribe(&mut ws, &[format!("customer_id:{id}:flow")]).await;

    c.post("/numbers", json!({"number": "+15551230000"})).await; // not subscribed
    let (_, flow) = c
        .post("/flows", json!({"name": "seen", "actions": []}))
        .await;
    let event = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("an event");
    assert_eq!(event["type"], "flow_created");
    assert_eq!(event["data"]["id"], flow["id"]);
    assert_eq!(
        event["topic"],
        format!("customer_id:{id}:flow:{}", flow["id"].as_str().unwrap())
    );
    assert!(event["timestamp"].is_string());
}

#[tokio::test]
async fn other_customers_events_never_arrive() {
    let server = Server::start(Options::default());
    let (_, a) = server.admin().new_customer("ws-a").await;
    let (b_id, b) = server.admin().new_customer("ws-b").await;
    let mut ws = connect(&server, &b).await;
    subscribe(&mut ws, &[format!("customer_id:{b_id}")]).await;
    a.post("/flows", json!({"name": "a's", "actions": []}))
        .await;
    let (_, mine) = b
        .post("/flows", json!({"name": "b's", "actions": []}))
        .await;
    let event = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("b's own event");
    assert_eq!(
        event["data"]["id"], mine["id"],
        "the first event B sees is its own"
    );
}

#[tokio::test]
async fn subscribing_to_another_customer_closes_the_socket() {
    let server = Server::start(Options::default());
    let (a_id, _) = server.admin().new_customer("victim").await;
    let (_, b) = server.admin().new_customer("snoop").await;
    let mut ws = connect(&server, &b).await;
    ws.send(Message::text(
        json!({"type": "subscribe", "topics": [format!("customer_id:{a_id}:flow")]}).to_string(),
    ))
    .await
    .unwrap();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(None) | Ok(Some(Err(_))) => break None,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("the socket stayed open"),
        }
    };
    assert_eq!(closed, Some(1008));
}

#[tokio::test]
async fn websocket_requires_credentials() {
    let server = Server::start(Options::default());
    let err = tokio_tungstenite::connect_async(format!("ws://{}/v1.0/ws", server.http))
        .await
        .err();
    assert!(format!("{err:?}").contains("401"), "{err:?}");
}
