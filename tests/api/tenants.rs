//! Tenant isolation: one customer never sees or touches another's rows (404).

use serde_json::json;

use crate::common::{Options, Server};

#[tokio::test]
async fn customers_cannot_see_each_others_resources() {
    let server = Server::start(Options::default());
    let admin = server.admin();
    let (_, a) = admin.new_customer("tenant-a").await;
    let (_, b) = admin.new_customer("tenant-b").await;

    let (_, flow) = a
        .post("/flows", json!({"actions": [{"type": "answer"}]}))
        .await;
    let flow_id = flow["id"].as_str().unwrap();
    let (_, number) = a
        .post(
            "/numbers",
            json!({"number": "+15550001111", "call_flow_id": flow_id}),
        )
        .await;
    let number_id = number["id"].as_str().unwrap();
    let (_, key) = a.post("/accesskeys", json!({"name": "a2"})).await;
    let key_id = key["id"].as_str().unwrap();

    for (kind, id) in [
        ("flows", flow_id),
        ("numbers", number_id),
        ("accesskeys", key_id),
    ] {
        let path = format!("/{kind}/{id}");
        assert_eq!(b.get(&path).await.0, 404, "GET {path}");
        assert_eq!(
            b.put(&path, json!({"name": "x", "actions": []})).await.0,
            404,
            "PUT {path}"
        );
        assert_eq!(b.delete(&path).await.0, 404, "DELETE {path}");
        let (_, list) = b.get(&format!("/{kind}")).await;
        assert!(
            list["result"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["id"] != id),
            "{kind} list of B shows A's row"
        );
        assert_eq!(a.get(&path).await.0, 200, "A still has {path}");
    }
    // B cannot point its number at A's flow: the flow does not exist for B.
    let (status, err) = b
        .post(
            "/numbers",
            json!({"number": "+15550002222", "call_flow_id": flow_id}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("call_flow_id")
    );
    // Nor chain to it.
    let (status, _) = b
        .post(
            "/flows",
            json!({"actions": [], "on_complete_flow_id": flow_id}),
        )
        .await;
    assert_eq!(status, 400);
    // Only the admin manages customers.
    assert_eq!(b.get("/customers").await.0, 403);
    assert_eq!(
        b.post(
            "/customers",
            json!({"username": "x", "password": "12345678"})
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn deleted_customer_loses_access() {
    let server = Server::start(Options::default());
    let admin = server.admin();
    let (id, a) = admin.new_customer("leaving").await;
    assert_eq!(a.get("/customer").await.0, 200);
    assert_eq!(admin.delete(&format!("/customers/{id}")).await.0, 200);
    assert_eq!(a.get("/customer").await.0, 401);
    assert_eq!(admin.get(&format!("/customers/{id}")).await.0, 404);
}
