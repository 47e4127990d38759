//! A database that stops answering does not stop the calls already up: while
//! another program holds SQLite's write lock, a caller's key still takes its branch
//! (our BYE comes within 50 ms of the key) and a caller's BYE is still answered
//! within 50 ms. Their rows reach the database once the lock is let go.

use std::time::Instant;

use sqlx::Connection;

use super::*;

/// A raw SIP caller on loopback: enough of RFC 3261 to place one call with an SDP
/// offer pointing at `media`, ACK its 200, and hear or send the BYE.
struct Caller {
    sip: UdpSocket,
    server: SocketAddr,
    /// The 200's To (with the tag), Call-ID and where its media comes from.
    to: String,
    call_id: String,
    platform_media: SocketAddr,
}

impl Caller {
    fn call(server: SocketAddr, number: &str, media: &UdpSocket) -> Self {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let port = sip.local_addr().unwrap().port();
        let rtp = media.local_addr().unwrap().port();
        let sdp = format!(
            "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        );
        let call_id = format!("slowdb-{port}@127.0.0.1");
        let invite = format!(
            "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKs{port};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@127.0.0.1>;tag=c1\r\nTo: <sip:{number}@{server}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        sip.send_to(invite.as_bytes(), server).unwrap();
        let ok = loop {
            let text = recv_text(&sip);
            if text.starts_with("SIP/2.0 200") {
                break text;
            }
            assert!(text.starts_with("SIP/2.0 1"), "answered: {text}");
        };
        let header = |name: &str| {
            ok.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("{name} in {ok}"))
        };
        let to = header("To:");
        let media_port: u16 = ok
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .expect("an m= line in the answer");
        let caller = Self {
            sip,
            server,
            to,
            call_id,
            platform_media: SocketAddr::from(([127, 0, 0, 1], media_port)),
        };
        caller.send(&format!(
            "ACK sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKa{port};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@127.0.0.1>;tag=c1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            caller.to, caller.call_id
        ));
        caller
    }

    fn send(&self, text: &str) {
        self.sip.send_to(text.as_bytes(), self.server).unwrap();
    }

    /// Our BYE; returns how long its 200 took.
    fn hang_up(&self) -> Duration {
        let port = self.sip.local_addr().unwrap().port();
        let started = Instant::now();
        self.send(&format!(
            "BYE sip:x@{} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKb{port};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@127.0.0.1>;tag=c1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            self.server, self.to, self.call_id
        ));
        loop {
            let text = recv_text(&self.sip);
            if text.starts_with("SIP/2.0 200") && text.contains("BYE") {
                return started.elapsed();
            }
        }
    }

    /// Waits for the platform's BYE and answers it.
    fn wait_for_bye(&self) {
        loop {
            let text = recv_text(&self.sip);
            if text.starts_with("BYE ") {
                let via = text.lines().find(|l| l.starts_with("Via:")).unwrap();
                let cseq = text.lines().find(|l| l.starts_with("CSeq:")).unwrap();
                let from = text.lines().find(|l| l.starts_with("From:")).unwrap();
                let to = text.lines().find(|l| l.starts_with("To:")).unwrap();
                self.send(&format!(
                    "SIP/2.0 200 OK\r\n{via}\r\n{from}\r\n{to}\r\nCall-ID: {}\r\n{cseq}\r\nContent-Length: 0\r\n\r\n",
                    self.call_id
                ));
                return;
            }
        }
    }
}

fn recv_text(sock: &UdpSocket) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a SIP message within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_up_keep_their_keys_and_byes_while_the_database_is_held() {
    let server = Server::start(Options::default());
    let (who, _) = customer_with_number(
        &server,
        "slowdb",
        "+15551230090",
        json!({"name": "wait for a key", "actions": [
            {"type": "answer"},
            {"type": "digits_receive", "option": {"duration": 30000, "length": 1}},
            {"type": "branch", "option": {"target_ids": {"1": "bye"}, "default_target_id": "bye"}},
            {"id": "bye", "type": "hangup"}
        ]}),
    )
    .await;
    let media_a = media_socket();
    let media_b = media_socket();
    let a = Caller::call(server.sip, "+15551230090", &media_a);
    let b = Caller::call(server.sip, "+15551230090", &media_b);

    // Another program takes SQLite's write lock and keeps it.
    sqlx::any::install_default_drivers();
    let db = format!(
        "sqlite://{}",
        server.data_dir.path().join("voipbin.db").display()
    );
    let mut holder = sqlx::AnyConnection::connect(&db).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();

    // A's key: our BYE follows at once.
    let pressed = Instant::now();
    press(&media_a, a.platform_media, '1');
    a.wait_for_bye();
    let key_to_bye = pressed.elapsed();
    // B hangs up: its 200 comes at once.
    let bye_answered = b.hang_up();
    println!("database held: key to BYE {key_to_bye:?}, BYE to 200 {bye_answered:?}");
    assert!(
        key_to_bye < Duration::from_millis(50),
        "the key took {key_to_bye:?} to end the call"
    );
    assert!(
        bye_answered < Duration::from_millis(50),
        "the BYE took {bye_answered:?} to be answered"
    );

    // Let go: both calls' rows arrive, hung up.
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, calls) = who.get("/calls").await;
        let hung_up = calls["result"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["status"] == "hangup").count());
        if hung_up == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both calls' last rows arrive after the lock: {calls}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
