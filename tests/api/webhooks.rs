//! Webhooks: signed deliveries, retries, a hanging receiver, and the outbox surviving
//! a restart. Signatures are checked here with the `hmac` crate directly, not with
//! the server's signer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::common::{Behaviour, Client, Options, Receiver, Server};

const SECRET: &str = "whsec-test-0123";

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn options(schedule: &str) -> Options {
    Options {
        args: vec![
            "--webhook-retry-schedule".into(),
            schedule.into(),
            "--allow-outbound-to".into(),
            "127.0.0.0/8".into(),
        ],
        ..Options::default()
    }
}

/// A customer whose webhook goes to `receiver`.
async fn subscribed_customer(server: &Server, name: &str, receiver: &Receiver) -> Client {
    let (_, c) = server.admin().new_customer(name).await;
    let (status, me) = c
        .put("/customer", json!({"webhook_uri": receiver.url(), "webhook_method": "POST", "webhook_secret": SECRET}))
        .await;
    assert_eq!(status, 200, "{me}");
    c
}

#[tokio::test]
async fn deliveries_are_signed_and_shaped_like_voipbin() {
    let receiver = Receiver::start().await;
    let server = Server::start(options("0s,1s,1s,1s,1s"));
    let c = subscribed_customer(&server, "hooked", &receiver).await;
    let (_, flow) = c
        .post(
            "/flows",
            json!({"name": "w", "actions": [{"type": "answer"}]}),
        )
        .await;

    let got = receiver
        .wait_for(Duration::from_secs(10), |g| {
            !Receiver::of_type(g, "flow_created").is_empty()
        })
        .await;
    let delivery = &Receiver::of_type(&got, "flow_created")[0];
    let body = delivery.json();
    assert_eq!(body["data"]["id"], flow["id"]);
    assert_eq!(body["data"]["name"], "w");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    let expected = format!("sha256={}", hmac_hex(SECRET, &delivery.body));
    assert_eq!(delivery.header("x-voipbin-signature"), expected);
    let ts = delivery.header("x-voipbin-timestamp");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (ts.parse::<i64>().unwrap() - now).abs() < 60,
        "timestamp {ts} is now"
    );
    let mut stamped = format!("{ts}.").into_bytes();
    stamped.extend_from_slice(&delivery.body);
    assert_eq!(
        delivery.header("x-voipbin-signature-timestamped"),
        format!("sha256={}", hmac_hex(SECRET, &stamped))
    );
    assert_eq!(delivery.header("content-type"), "application/json");
    // A tampered body would not verify.
    assert_ne!(expected, format!("sha256={}", hmac_hex(SECRET, b"{}")));
}

#[tokio::test]
async fn failed_deliveries_are_retried_until_accepted() {
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Fail);
    let server = Server::start(options("0s,1s,1s,1s,1s"));
    let c = subscribed_customer(&server, "retry", &receiver).await;
    c.post("/flows", json!({"actions": []})).await;
    receiver
        .wait_for(Duration::from_secs(10), |g| {
            Receiver::of_type(g, "flow_created").len() >= 2
        })
        .await;
    receiver.set(Behaviour::Accept);
    let got = receiver
        .wait_for(Duration::from_secs(10), |g| {
            Receiver::of_type(g, "flow_created").len() >= 3
        })
        .await;
    let attempts = Receiver::of_type(&got, "flow_created");
    assert!(
        attempts[1].at - attempts[0].at >= Duration::from_millis(900),
        "the schedule's 1 s wait"
    );
    assert_eq!(
        attempts[0].body, attempts[2].body,
        "the same event each time"
    );
    // Accepted: no more attempts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        Receiver::of_type(&receiver.got.lock().unwrap(), "flow_created").len(),
        3
    );
}

#[tokio::test]
async fn delivery_stops_after_the_last_scheduled_attempt() {
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Fail);
    let server = Server::start(options("0s,200ms,200ms"));
    let c = subscribed_customer(&server, "giveup", &receiver).await;
    c.post("/flows", json!({"actions": []})).await;
    receiver
        .wait_for(Duration::from_secs(10), |g| {
            Receiver::of_type(g, "flow_created").len() >= 3
        })
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        Receiver::of_type(&receiver.got.lock().unwrap(), "flow_created").len(),
        3,
        "three entries, three attempts"
    );
}

#[tokio::test]
async fn pending_delivery_survives_a_restart() {
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Fail);
    let server = Server::start(options("0s,2s,2s,2s,2s"));
    let c = subscribed_customer(&server, "durable", &receiver).await;
    let (_, flow) = c
        .post("/flows", json!({"name": "survivor", "actions": []}))
        .await;
    receiver
        .wait_for(Duration::from_secs(10), |g| {
            !Receiver::of_type(g, "flow_created").is_empty()
        })
        .await;
    let mut server = server;
    server.stop();
    receiver.set(Behaviour::Accept);
    let before = Receiver::of_type(&receiver.got.lock().unwrap(), "flow_created").len();
    let _server = Server::start_in(server.data_dir.clone(), options("0s,2s,2s,2s,2s"));
    let got = receiver
        .wait_for(Duration::from_secs(15), |g| {
            Receiver::of_type(g, "flow_created").len() > before
        })
        .await;
    let last = Receiver::of_type(&got, "flow_created").pop().unwrap();
    assert_eq!(last.json()["data"]["id"], flow["id"]);
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_is_retried() {
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Hang);
    let server = Server::start(options("0s,1s"));
    let c = subscribed_customer(&server, "slow", &receiver).await;
    c.post("/flows", json!({"actions": []})).await;
    receiver
        .wait_for(Duration::from_secs(10), |g| {
            !Receiver::of_type(g, "flow_created").is_empty()
        })
        .await;
    receiver.set(Behaviour::Accept);
    // Meanwhile other deliveries are not stuck behind the hanging one.
    c.post("/flows", json!({"name": "second", "actions": []}))
        .await;
    let got = receiver
        .wait_for(Duration::from_secs(5), |g| {
            Receiver::of_type(g, "flow_created")
                .iter()
                .any(|r| r.json()["data"]["name"] == "second")
        })
        .await;
    let first_attempt = Receiver::of_type(&got, "flow_created")[0].at;
    let got = receiver
        .wait_for(Duration::from_secs(20), |g| {
            Receiver::of_type(g, "flow_created").len() >= 3
        })
        .await;
    let retry = Receiver::of_type(&got, "flow_created")[2].at;
    assert!(
        retry - first_attempt >= Duration::from_secs(10),
        "the attempt timed out at 10 s, then 1 s wait"
    );
}
