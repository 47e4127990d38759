//! CRUD round trips and pagination.

use serde_json::json;

use crate::common::{Options, Server};

#[tokio::test]
async fn flow_crud_round_trip() {
    let server = Server::start(Options::default());
    let (_, c) = server.admin().new_customer("alice").await;

    let (status, flow) = c
        .post(
            "/flows",
            json!({"name": "menu", "detail": "d", "actions": [
                {"type": "answer"},
                {"id": "greet", "type": "talk", "option": {"text": "hello", "gender": "female"}},
                {"type": "play", "option": {"stream_url": ["http://x/a.wav"]}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{flow}");
    let id = flow["id"].as_str().unwrap();
    let actions = flow["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 3);
    assert!(
        uuid::Uuid::parse_str(actions[0]["id"].as_str().unwrap()).is_ok(),
        "ids are assigned"
    );
    assert_eq!(actions[1]["id"], "greet", "given ids are kept");
    assert_eq!(
        actions[1]["option"]["gender"], "female",
        "unknown option keys are kept"
    );
    assert_eq!(
        actions[2]["option"]["stream_urls"],
        json!(["http://x/a.wav"]),
        "aliases are canonical"
    );
    assert_eq!(flow["type"], "flow");
    assert!(flow["tm_create"].as_str().unwrap().ends_with('Z'));

    let (status, got) = c.get(&format!("/flows/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got, flow);

    let (status, updated) = c
        .put(
            &format!("/flows/{id}"),
            json!({"name": "menu2", "actions": [{"type": "hangup"}]}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "menu2");
    assert_eq!(updated["actions"].as_array().unwrap().len(), 1);
    assert!(updated["tm_update"].is_string());

    let (status, deleted) = c.delete(&format!("/flows/{id}")).await;
    assert_eq!(status, 200);
    assert!(deleted["tm_delete"].is_string());
    assert_eq!(c.get(&format!("/flows/{id}")).await.0, 404);
    assert_eq!(c.get("/flows").await.1["result"], json!([]));
}

#[tokio::test]
async fn number_crud_round_trip() {
    let server = Server::start(Options::default());
    let (_, c) = server.admin().new_customer("bob").await;
    let (_, flow) = c
        .post("/flows", json!({"actions": [{"type": "answer"}]}))
        .await;
    let flow_id = flow["id"].as_str().unwrap();

    let (status, n) = c
        .post(
            "/numbers",
            json!({"number": "+14155550100", "call_flow_id": flow_id, "name": "main"}),
        )
        .await;
    assert_eq!(status, 200, "{n}");
    assert_eq!(n["call_flow_id"], flow_id);
    assert_eq!(n["message_flow_id"], serde_json::Value::Null);
    assert_eq!(n["status"], "active");
    let id = n["id"].as_str().unwrap();

    let (status, n2) = c
        .put(
            &format!("/numbers/{id}/flow_ids"),
            json!({"message_flow_id": flow_id}),
        )
        .await;
    assert_eq!(status, 200, "{n2}");
    assert_eq!(n2["message_flow_id"], flow_id);
    assert_eq!(n2["call_flow_id"], flow_id, "absent fields are kept");

    let (status, n3) = c
        .put(
            &format!("/numbers/{id}"),
            json!({"call_flow_id": "", "name": "renamed"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        n3["call_flow_id"],
        serde_json::Value::Null,
        "\"\" clears a flow"
    );
    assert_eq!(n3["name"], "renamed");

    // Numbers are unique across the platform...
    let (_, other) = server.admin().new_customer("carol").await;
    let (status, err) = other
        .post("/numbers", json!({"number": "+14155550100"}))
        .await;
    assert_eq!(status, 409, "{err}");
    // ... until released.
    assert_eq!(c.delete(&format!("/numbers/{id}")).await.0, 200);
    assert_eq!(
        other
            .post("/numbers", json!({"number": "+14155550100"}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn pagination_walks_every_item_once_newest_first() {
    let server = Server::start(Options::default());
    let (_, c) = server.admin().new_customer("dave").await;
    let mut made = Vec::new();
    for i in 0..5 {
        let (_, f) = c
            .post("/flows", json!({"name": format!("f{i}"), "actions": []}))
            .await;
        made.push(f["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let (status, page) = c
            .get(&format!("/flows?page_size=2&page_token={token}"))
            .await;
        assert_eq!(status, 200);
        let items = page["result"].as_array().unwrap();
        assert!(items.len() <= 2);
        if items.is_empty() {
            assert_eq!(page["next_page_token"], "");
            break;
        }
        seen.extend(items.iter().map(|f| f["id"].as_str().unwrap().to_owned()));
        token = page["next_page_token"].as_str().unwrap().to_owned();
    }
    made.reverse();
    assert_eq!(seen, made, "every flow once, newest first");
    // page_size above 100 means 100, not an error.
    assert_eq!(c.get("/flows?page_size=1000").await.0, 200);
}

#[tokio::test]
async fn customer_reads_and_updates_itself_and_keys_work() {
    let server = Server::start(Options::default());
    let (id, c) = server.admin().new_customer("erin").await;
    let (status, me) = c.get("/customer").await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], id.as_str());
    assert!(me.get("password_hash").is_none() && me.get("webhook_secret").is_none());

    let (status, me) = c
        .put(
            "/customer",
            json!({"webhook_uri": "http://127.0.0.1:9/x", "webhook_method": "POST", "detail": "d"}),
        )
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["webhook_uri"], "http://127.0.0.1:9/x");
    assert_eq!(me["name"], "erin", "absent fields are kept");

    // Access keys: listed without the key; a revoked key stops working.
    let (_, k) = c.post("/accesskeys", json!({"name": "second"})).await;
    let token = k["token"].as_str().unwrap().to_owned();
    let second = crate::common::Client {
        key: token.clone(),
        ..c.clone()
    };
    assert_eq!(second.get("/customer").await.0, 200);
    let (_, list) = c.get("/accesskeys").await;
    assert!(
        list["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("token").is_none())
    );
    assert_eq!(
        c.delete(&format!("/accesskeys/{}", k["id"].as_str().unwrap()))
            .await
            .0,
        200
    );
    assert_eq!(second.get("/customer").await.0, 401);

    // The key works as ?accesskey= too, and a JWT as ?token=.
    let url = format!("{}/customer?accesskey={}", c.base, c.key);
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    let login: serde_json::Value = reqwest::Client::new()
        .post(server.url("/v1.0/auth/login"))
        .json(&json!({"username": "erin", "password": "secret-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}/customer?token={}",
        c.base,
        login["token"].as_str().unwrap()
    );
    let me: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(me["id"], id.as_str());
}

#[tokio::test]
async fn data_survives_a_restart() {
    let server = Server::start(Options::default());
    let (_, c) = server.admin().new_customer("frank").await;
    let (_, f) = c
        .post(
            "/flows",
            json!({"name": "keep", "actions": [{"type": "answer"}]}),
        )
        .await;
    let server = server.restart();
    let c = crate::common::Client {
        base: server.url("/v1.0"),
        ..c
    };
    let (status, got) = c
        .get(&format!("/flows/{}", f["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "keep");
    assert!(
        !server.printed().contains("First start"),
        "the admin is made only once"
    );
}

#[tokio::test]
async fn route_crud_round_trip_is_the_admin_s_alone() {
    let server = Server::start(Options::default());
    let admin = server.admin();
    let (customer_id, alice) = admin.new_customer("alice").await;
    let (_, list) = admin.get("/providers").await;
    let provider = list["result"][0]["id"].as_str().unwrap().to_owned();

    let (status, route) = admin
        .post(
            "/routes",
            json!({"customer_id": customer_id, "provider_id": provider, "priority": 2, "target": "+1", "name": "us"}),
        )
        .await;
    assert_eq!(status, 200, "{route}");
    assert_eq!(route["target"], "1", "the + is not part of a prefix");
    assert_eq!(route["customer_id"], customer_id.as_str());
    let id = route["id"].as_str().unwrap().to_owned();

    let (status, got) = admin.get(&format!("/routes/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["priority"], 2);
    let (status, updated) = admin
        .put(
            &format!("/routes/{id}"),
            json!({"priority": 1, "target": "all"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["target"], "all");
    assert_eq!(
        updated["provider_id"],
        provider.as_str(),
        "absent fields are kept"
    );
    let (_, list) = admin.get("/routes").await;
    assert_eq!(list["result"].as_array().map(Vec::len), Some(1));

    // Bad input names its field; a customer may not see or make routes.
    for (body, field) in [
        (json!({"target": "all"}), "provider_id"),
        (json!({"provider_id": provider, "target": "1x"}), "target"),
        (json!({"provider_id": provider, "priority": -1}), "priority"),
        (
            json!({"provider_id": "0196a1a4-0000-7000-8000-000000000000"}),
            "provider_id",
        ),
    ] {
        let (status, err) = admin.post("/routes", body).await;
        assert_eq!(status, 400, "{err}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    let (status, _) = alice.get("/routes").await;
    assert_eq!(status, 403);
    let (status, _) = alice.get(&format!("/routes/{id}")).await;
    assert_eq!(status, 403);

    let (status, _) = admin.delete(&format!("/routes/{id}")).await;
    assert_eq!(status, 200);
    let (status, _) = admin.get(&format!("/routes/{id}")).await;
    assert_eq!(status, 404);
}
