//! Attacks on the API side, each shown failing: password guessing, requests the
//! server would make to its own inside (SSRF), connection exhaustion, files other
//! users could read, and the smaller holes (cookies, CSRF, expired keys, revoked
//! WebSockets, /metrics, sizes and quotas).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{ADMIN_KEY, Options, Receiver, Server};

/// The status of a request.
async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// `POST /auth/login`; the status and the Retry-After header.
async fn login(server: &Server, username: &str, password: &str) -> (u16, Option<String>) {
    let resp = reqwest::Client::new()
        .post(server.url("/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), retry)
}

#[tokio::test]
async fn password_guessing_is_slowed_after_five_failures() {
    let server = Server::start(Options::default());
    server.admin().new_customer("gus").await;
    for _ in 0..5 {
        assert_eq!(login(&server, "gus", "wrong").await.0, 401);
    }
    let (status, retry) = login(&server, "gus", "wrong").await;
    assert_eq!(status, 429);
    assert_eq!(retry.as_deref(), Some("1"));
    // Even the right password waits out the lockout: a guess that hits is not told.
    assert_eq!(login(&server, "gus", "secret-password").await.0, 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(login(&server, "gus", "secret-password").await.0, 200);
}

#[tokio::test]
async fn webhooks_never_reach_inside_addresses() {
    // No --allow-outbound-to: loopback is inside.
    let server = Server::start(Options {
        args: vec!["--webhook-retry-schedule".into(), "0s".into()],
        ..Options::default()
    });
    let receiver = Receiver::start().await;
    let (_, acme) = server.admin().new_customer("acme").await;
    for uri in [
        receiver.url(),
        "http://0x7f000001/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://{}/metrics", server.http),
        "http://[::ffff:127.0.0.1]/".to_owned(),
    ] {
        let (status, body) = acme
            .put(
                "/customer",
                json!({"webhook_uri": uri, "webhook_method": "POST"}),
            )
            .await;
        assert_eq!(status, 400, "{uri}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("webhook_uri:"),
            "{body}"
        );
    }
    // A name is checked once resolved: localhost is loopback, so nothing is sent.
    let by_name = format!("http://localhost:{}/hook", receiver.addr.port());
    let (status, body) = acme
        .put(
            "/customer",
            json!({"webhook_uri": by_name, "webhook_method": "POST"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = acme
        .post(
            "/flows",
            json!({"name": "f", "actions": [{"type": "hangup"}]}),
        )
        .await;
    assert_eq!(status, 200);
    // The flow_created event is attempted at once (schedule 0s); give it time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        receiver.got.lock().unwrap().is_empty(),
        "a webhook reached loopback"
    );
}

#[tokio::test]
async fn the_data_dir_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(Options::default());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // The temp dir the test made is 0700 already; the database inside is the
    // server's own.
    assert_eq!(mode(&server.data_dir.path().join("voipbin.db")), 0o600);
    // A data dir the server makes is 0700, and a wide one is tightened with a warning.
    let parent = tempfile::tempdir().unwrap();
    let fresh = parent.path().join("fresh");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voipbin"))
        .args(["serve", "--http", "127.0.0.1:0", "--sip", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&fresh)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !fresh.join("voipbin.db").exists() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("voipbin.db")), 0o600);
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        fresh.join("voipbin.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let dir = std::sync::Arc::new(tempfile::TempDir::new_in(parent.path()).unwrap());
    std::fs::remove_dir(dir.path()).unwrap();
    std::fs::rename(&fresh, dir.path()).unwrap();
    let again = Server::start_in(dir.clone(), Options::default());
    assert!(
        again.printed().contains("other users could read this"),
        "{}",
        again.printed()
    );
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(mode(&dir.path().join("voipbin.db")), 0o600);
}

#[tokio::test]
async fn slowloris_connections_are_capped_and_closed_while_ping_answers() {
    let server = Server::start(Options::default());
    // 400 connections from 127.0.0.2 that never finish their headers.
    let mut held = Vec::new();
    for _ in 0..400 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(mut stream) = socket.connect(server.http).await else {
            continue;
        };
        if stream
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_ok()
        {
            held.push(stream);
        }
    }
    // /ping from another address answers at once.
    let started = std::time::Instant::now();
    let pong = reqwest::get(server.url("/ping")).await.unwrap();
    assert_eq!(pong.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    // Past the per-address cap (256), connections are closed at once; the rest
    // when their headers have not come within 10 s.
    let mut closed_at_once = 0;
    for s in &mut held {
        let mut b = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(
            Duration::from_millis(5),
            tokio::io::AsyncReadExt::read(s, &mut b),
        )
        .await
        {
            closed_at_once += 1;
        }
    }
    assert!(closed_at_once >= 100, "{closed_at_once} closed at once");
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut open = 0;
    for s in &mut held {
        let mut b = [0u8; 64];
        match tokio::time::timeout(
            Duration::from_millis(5),
            tokio::io::AsyncReadExt::read(s, &mut b),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            _ => open += 1,
        }
    }
    assert_eq!(open, 0, "slowloris connections still open after 11 s");
}

#[tokio::test]
async fn sip_over_tcp_with_a_half_sent_message_is_closed() {
    let server = Server::start(Options::default());
    let mut stream = tokio::net::TcpStream::connect(server.sip).await.unwrap();
    stream
        .write_all(
            b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1\r\n",
        )
        .await
        .unwrap();
    let mut b = [0u8; 64];
    let read = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::io::AsyncReadExt::read(&mut stream, &mut b),
    )
    .await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection stayed open: {read:?}"
    );
}

#[tokio::test]
async fn the_smaller_holes_are_closed() {
    let server = Server::start(Options {
        args: [
            Options::default().args,
            vec!["--max-per-customer".into(), "2".into()],
        ]
        .concat(),
        ..Options::default()
    });
    let (_, ivy) = server.admin().new_customer("ivy").await;
    let http = reqwest::Client::new();

    // /metrics is the admin's.
    assert_eq!(
        reqwest::get(server.url("/metrics")).await.unwrap().status(),
        401
    );
    assert_eq!(
        status_of(http.get(server.url("/metrics")).bearer_auth(&ivy.key)).await,
        403,
        "a customer's key on /metrics"
    );

    // The header wins over a cookie; a cookie alone cannot POST a form.
    assert_eq!(
        status_of(
            http.get(server.url("/v1.0/flows"))
                .bearer_auth(&ivy.key)
                .header("cookie", format!("accesskey={ADMIN_KEY}"))
        )
        .await,
        200,
        "the header's key wins over the cookie's"
    );
    assert_eq!(
        status_of(
            http.post(server.url("/v1.0/flows"))
                .header("cookie", format!("accesskey={}", ivy.key))
                .header("content-type", "text/plain")
                .body(r#"{"name":"x","actions":[{"type":"hangup"}]}"#)
        )
        .await,
        403,
        "a text/plain POST riding on a cookie"
    );
    assert_eq!(
        status_of(
            http.post(server.url("/v1.0/flows"))
                .header("cookie", format!("accesskey={}", ivy.key))
                .json(&json!({"name": "x", "actions": [{"type": "hangup"}]}))
        )
        .await,
        200,
        "a JSON POST with a cookie"
    );

    // Sizes and quotas.
    let (status, body) = ivy
        .post(
            "/flows",
            json!({"name": "n".repeat(100_000), "actions": [{"type": "hangup"}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("name:")
    );
    let (status, body) = ivy
        .post(
            "/flows",
            json!({"name": "s", "actions": [{"type": "sleep", "option": {"duration": -1000}}]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("option.duration"),
        "{body}"
    );
    let (status, _) = ivy
        .post(
            "/flows",
            json!({"name": "second", "actions": [{"type": "hangup"}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = ivy
        .post(
            "/flows",
            json!({"name": "third", "actions": [{"type": "hangup"}]}),
        )
        .await;
    assert_eq!(status, 429, "{body}");

    // A key that expires stops working when it does, not seconds later.
    let (status, key) = ivy
        .post("/accesskeys", json!({"name": "short", "expire": 1}))
        .await;
    assert_eq!(status, 200, "{key}");
    let short = key["token"].as_str().unwrap().to_owned();
    assert_eq!(
        status_of(http.get(server.url("/v1.0/flows")).bearer_auth(&short)).await,
        200,
        "a key before it expires"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        status_of(http.get(server.url("/v1.0/flows")).bearer_auth(&short)).await,
        401,
        "a key just after it expired"
    );
}

#[tokio::test]
async fn a_websocket_is_closed_when_its_key_is_revoked() {
    let server = Server::start(Options::default());
    let (_, jo) = server.admin().new_customer("jo").await;
    let (status, key) = jo.post("/accesskeys", json!({"name": "ws"})).await;
    assert_eq!(status, 200);
    let token = key["token"].as_str().unwrap();
    let url = format!("ws://{}/v1.0/ws?accesskey={token}", server.http);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (status, _) = jo
        .delete(&format!("/accesskeys/{}", key["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                    return frame.map(|f| u16::from(f.code));
                }
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the socket was closed");
    assert_eq!(closed, Some(1008));
}
