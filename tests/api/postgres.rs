//! The server on Postgres: the same binary with `--database postgres://...`.
//! Runs when `VOIPBIN_TEST_POSTGRES_URL` is set (scripts/test sets it); fails instead
//! of skipping when `VOIPBIN_REQUIRE_POSTGRES=1`.

use serde_json::json;

use crate::common::{Options, Server, fresh_database};

#[tokio::test]
async fn serves_and_restarts_on_postgres() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let options = Options {
        database: Some(database),
        ..Options::default()
    };
    let server = Server::start(options);
    let (_, c) = server.admin().new_customer("pg-user").await;
    let (status, flow) = c
        .post(
            "/flows",
            json!({"name": "on pg", "actions": [{"type": "answer"}]}),
        )
        .await;
    assert_eq!(status, 200, "{flow}");
    let (status, n) = c
        .post(
            "/numbers",
            json!({"number": "+15557770000", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200, "{n}");
    assert_eq!(
        c.post("/numbers", json!({"number": "+15557770000"}))
            .await
            .0,
        409
    );

    let server = server.restart();
    let c = crate::common::Client {
        base: server.url("/v1.0"),
        ..c
    };
    let (status, got) = c
        .get(&format!("/flows/{}", flow["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "on pg");
    let health: serde_json::Value = reqwest::get(server.url("/v1.0/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "ok");
}
