//! Hostile and malformed requests: a clear error naming the field, and nothing written.

use serde_json::json;

use crate::common::{ADMIN_KEY, Client, Options, Server};

async fn raw(c: &Client, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = c
        .http
        .request(method.parse().unwrap(), format!("{}{}", c.base, path))
        .bearer_auth(&c.key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

fn message(v: &serde_json::Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn bad_flows_get_400_naming_the_field_and_write_nothing() {
    let server = Server::start(Options::default());
    let (_, c) = server.admin().new_customer("mallory").await;

    let (status, e) = raw(&c, "POST", "/flows", "{\"actions\": [").await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["reason"], "INVALID_JSON_BODY");
    assert!(message(&e).starts_with("body:"), "{e}");

    let (status, e) = c.post("/flows", json!({"name": "x"})).await;
    assert_eq!(status, 400);
    assert!(message(&e).contains("actions"), "{e}");

    let (status, e) = c
        .post(
            "/flows",
            json!({"actions": [{"type": "answer"}, {"id": "bad", "type": "dance"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(message(&e).contains("actions[1] (id bad) type"), "{e}");
    assert_eq!(e["error"]["details"][0]["index"], 1);
    assert_eq!(e["error"]["details"][0]["action_id"], "bad");

    let (status, e) = c
        .post(
            "/flows",
            json!({"actions": [{"id": "g", "type": "goto", "option": {}}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        message(&e).contains("option.target_id: missing required option"),
        "{e}"
    );

    let (status, e) = c
        .post(
            "/flows",
            json!({"actions": [{"type": "digits_receive", "option": {"length": "3"}}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        message(&e).contains("option.length: expected an integer"),
        "{e}"
    );

    let (status, e) = c.post("/flows", json!({"name": 5, "actions": []})).await;
    assert_eq!(status, 400);
    assert!(message(&e).starts_with("name:"), "{e}");

    assert_eq!(
        c.get("/flows").await.1["result"],
        json!([]),
        "no rejected flow was written"
    );
}

#[tokio::test]
async fn bad_numbers_get_400_and_write_nothing() {
    let server = Server::start(Options::default());
    let (_, c) = server.admin().new_customer("oscar").await;
    for bad in ["14155550100", "+0123", "+1", "+1415555010012345", "+1-415"] {
        let (status, e) = c.post("/numbers", json!({"number": bad})).await;
        assert_eq!(status, 400, "{bad}: {e}");
        assert!(message(&e).starts_with("number:"), "{e}");
    }
    let (status, e) = c
        .post(
            "/numbers",
            json!({"number": "+14155550100", "call_flow_id": "not-a-uuid"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(message(&e).starts_with("call_flow_id:"), "{e}");
    assert_eq!(c.get("/numbers").await.1["result"], json!([]));
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let server = Server::start(Options::default());
    let c = server.admin();
    let big = format!("{{\"name\": \"{}\", \"actions\": []}}", "x".repeat(1 << 20));
    let (status, e) = raw(&c, "POST", "/flows", &big).await;
    assert_eq!(status, 413, "{e}");
    assert_eq!(c.get("/flows").await.1["result"], json!([]));
}

#[tokio::test]
async fn unknown_ids_get_404_and_bad_ids_400() {
    let server = Server::start(Options::default());
    let c = server.admin();
    let (status, e) = c.get("/flows/0b7ae1b4-3c6f-4c48-9d37-3d0a7d9f1a11").await;
    assert_eq!(status, 404);
    assert_eq!(e["error"]["status"], "NOT_FOUND");
    let (status, e) = c.get("/flows/not-a-uuid").await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["reason"], "INVALID_ID");
    assert_eq!(c.get("/nothing-here").await.0, 404);
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401() {
    let server = Server::start(Options::default());
    let anonymous = reqwest::get(server.url("/v1.0/flows")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["reason"], "AUTHENTICATION_REQUIRED");
    let wrong = server.client("vb_wrong");
    let (status, e) = wrong.get("/flows").await;
    assert_eq!(status, 401);
    assert_eq!(e["error"]["reason"], "INVALID_CREDENTIALS");
    let forged = server.client("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln");
    assert_eq!(forged.get("/flows").await.0, 401);
    assert_eq!(server.client(ADMIN_KEY).get("/flows").await.0, 200);
    // A bad password gets 401 from login, the same as an unknown user.
    let login = |u: &str, p: &str| {
        reqwest::Client::new()
            .post(server.url("/auth/login"))
            .json(&json!({"username": u, "password": p}))
            .send()
    };
    assert_eq!(login("admin", "nope").await.unwrap().status(), 401);
    assert_eq!(login("nobody", "nope").await.unwrap().status(), 401);
}
