//! Test support: the real `voipbin` binary on ephemeral ports with a temp data dir,
//! an HTTP client for it, and a real HTTP server that receives webhooks.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// The admin key every test server starts with.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// How a test server is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// Extra `serve` flags.
    pub args: Vec<String>,
    /// The database URL; a SQLite file in the data dir when `None`.
    pub database: Option<String>,
    /// Environment variables for the server (`PATH`, to hide a program).
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // Webhooks and fetches go to test servers on loopback, which the
            // outbound guard refuses unless told otherwise.
            args: vec![
                "--webhook-retry-schedule".into(),
                "0s,1s,1s,1s,1s".into(),
                "--allow-outbound-to".into(),
                "127.0.0.0/8".into(),
            ],
            database: None,
            env: Vec::new(),
        }
    }
}

/// A running `voipbin serve`.
pub struct Server {
    child: Child,
    /// The REST API's address.
    pub http: SocketAddr,
    /// The SIP address (UDP and TCP).
    pub sip: SocketAddr,
    /// The data dir (kept across restarts).
    pub data_dir: Arc<tempfile::TempDir>,
    options: Options,
    /// Everything the server printed.
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server with a fresh data dir.
    pub fn start(options: Options) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::start_in(dir, options)
    }

    /// Starts a server on `data_dir`.
    pub fn start_in(data_dir: Arc<tempfile::TempDir>, options: Options) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_voipbin"));
        cmd.args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--sip",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .args(&options.args)
        .env("VOIPBIN_ADMIN_ACCESSKEY", ADMIN_KEY)
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
        if let Some(db) = &options.database {
            cmd.args(["--database", db]);
        }
        let mut child = cmd.spawn().expect("start voipbin");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (sip_tx, sip_rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            let tx = tx.clone();
            let sip_tx = sip_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = line
                        .split("SIP listening on udp:")
                        .nth(1)
                        .and_then(|a| a.split_whitespace().next())
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        let _ = sip_tx.send(addr);
                    }
                    let addr = line
                        .split("HTTP API listening on http://")
                        .nth(1)
                        .map(|a| a.trim().to_owned());
                    // Recorded before the address is announced, so a test that starts
                    // once it is listening sees every line printed up to then.
                    output.lock().unwrap().push(line);
                    if let Some(addr) = addr {
                        let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                    }
                }
            });
        }
        let http = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "voipbin did not start; it printed:\n{}",
                    output.lock().unwrap().join("\n")
                );
            }
        };
        let sip = sip_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the SIP address is printed before the HTTP one");
        Self {
            child,
            http,
            sip,
            data_dir,
            options,
            output,
        }
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("voipbin did not stop within 20 s of SIGTERM");
    }

    /// Stops and starts again on the same data dir and database.
    pub fn restart(mut self) -> Self {
        self.stop();
        Self::start_in(self.data_dir.clone(), self.options.clone())
    }

    /// Kills the server (SIGKILL, as a crash would) and starts it again on the same
    /// data dir.
    pub fn crash_and_restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Self::start_in(self.data_dir.clone(), self.options.clone())
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// What `GET /metrics` says now (Prometheus text).
    pub async fn metrics(&self) -> String {
        reqwest::Client::new()
            .get(self.url("/metrics"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("a text body")
    }

    /// A client authenticated with `key`.
    pub fn client(&self, key: &str) -> Client {
        Client {
            base: self.url("/v1.0"),
            key: key.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// A client authenticated as the admin.
    pub fn admin(&self) -> Client {
        self.client(ADMIN_KEY)
    }

    /// Waits until the server has printed `needle` (its stdout and stderr are read by
    /// separate threads, so lines may land a moment apart).
    pub fn wait_printed(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let printed = self.printed();
            if printed.contains(needle) || Instant::now() > deadline {
                return printed;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the server printed so far.
    pub fn printed(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An authenticated client of `/v1.0`.
#[derive(Clone)]
pub struct Client {
    /// `http://addr/v1.0`.
    pub base: String,
    /// The access key or JWT.
    pub key: String,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Client {
    /// Sends `method path` with an optional JSON body; returns (status, JSON body).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GET.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }
    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }
    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(body)).await
    }
    /// DELETE.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None).await
    }

    /// Creates a customer (as admin) and returns (customer id, an access key of it).
    pub async fn new_customer(&self, username: &str) -> (String, Client) {
        let (status, c) = self
            .post("/customers", serde_json::json!({"username": username, "password": "secret-password", "name": username}))
            .await;
        assert_eq!(status, 200, "{c}");
        let id = c["id"].as_str().unwrap().to_owned();
        let login = self
            .http
            .post(self.base.replace("/v1.0", "/auth/login"))
            .json(&serde_json::json!({"username": username, "password": "secret-password"}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let jwt = Client {
            key: login["token"].as_str().unwrap().to_owned(),
            ..self.clone()
        };
        let (status, key) = jwt
            .post("/accesskeys", serde_json::json!({"name": "test"}))
            .await;
        assert_eq!(status, 200, "{key}");
        (
            id,
            Client {
                key: key["token"].as_str().unwrap().to_owned(),
                ..self.clone()
            },
        )
    }
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// A header as text.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// How a [`Receiver`] answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    /// 200 OK.
    Accept,
    /// 500.
    Fail,
    /// Never answers (for timeout tests).
    Hang,
}

/// A real HTTP server on 127.0.0.1 that records webhook requests.
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it got (including failed ones).
    pub got: Arc<Mutex<Vec<Received>>>,
    /// How it answers now.
    pub behaviour: Arc<Mutex<Behaviour>>,
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour::Accept));
        let (g, b) = (got.clone(), behaviour.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (g, b) = (g.clone(), b.clone());
            async move {
                g.lock().unwrap().push(Received {
                    headers,
                    body,
                    at: Instant::now(),
                });
                let now = *b.lock().unwrap();
                match now {
                    Behaviour::Accept => StatusCode::OK,
                    Behaviour::Fail => StatusCode::INTERNAL_SERVER_ERROR,
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        StatusCode::OK
                    }
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            got,
            behaviour,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Sets how it answers from now on.
    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    /// Waits until `pred` holds for the requests received, up to `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.got.lock().unwrap().clone();
            if pred(&got) {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "receiver: condition not met within {timeout:?}; got {} requests: {:#?}",
                    got.len(),
                    got.iter()
                        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Requests whose body has `"type": event_type`.
    pub fn of_type(got: &[Received], event_type: &str) -> Vec<Received> {
        got.iter()
            .filter(|r| r.json()["type"] == event_type)
            .cloned()
            .collect()
    }
}

/// The path of a test vector file.
pub fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
        .join(name)
}

/// A new, empty database on the test Postgres (`VOIPBIN_TEST_POSTGRES_URL`), or
/// `None` when there is none; with `VOIPBIN_REQUIRE_POSTGRES=1` a missing one fails.
pub async fn fresh_database() -> Option<String> {
    let url = match std::env::var("VOIPBIN_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("VOIPBIN_REQUIRE_POSTGRES").map_or(true, |v| v != "1"),
                "VOIPBIN_REQUIRE_POSTGRES=1 but VOIPBIN_TEST_POSTGRES_URL is not set"
            );
            eprintln!("postgres: VOIPBIN_TEST_POSTGRES_URL unset, skipping");
            return None;
        }
    };
    sqlx::any::install_default_drivers();
    let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect to the test Postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut db = reqwest::Url::parse(&url).unwrap();
    db.set_path(&format!("/{name}"));
    Some(db.to_string())
}
