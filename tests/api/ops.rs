//! Health, metrics, the OpenAPI document, and start-up errors.

use crate::common::{Options, Server};

#[tokio::test]
async fn health_metrics_and_openapi() {
    let server = Server::start(Options::default());
    let health: serde_json::Value = reqwest::get(server.url("/v1.0/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let doc: serde_json::Value = reqwest::get(server.url("/v1.0/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/flows",
        "/flows/{id}",
        "/numbers",
        "/numbers/{id}",
        "/customer",
        "/customers",
        "/accesskeys",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    assert_eq!(doc["servers"][0]["url"], "/v1.0");

    let metrics = server.metrics().await;
    assert!(metrics.contains("voipbin_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/v1.0/health\""), "{metrics}");
}

#[test]
fn busy_port_names_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_voipbin"))
        .args([
            "serve",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--sip",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port} is already in use")) && err.contains("--http"),
        "{err}"
    );
}

#[test]
fn first_start_prints_the_admin_once() {
    let server = Server::start(Options::default());
    let printed = server.wait_printed("accesskey: ");
    assert!(printed.contains("accesskey: test-admin-key"), "{printed}");
    assert!(
        printed.contains("HTTP API listening on http://127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed.contains("SIP listening on udp:127.0.0.1:"),
        "{printed}"
    );
}
