//! Storage tests, run against every backend: a real SQLite file always, and a real
//! Postgres when `VOIPBIN_TEST_POSTGRES_URL` names a server (each test gets a fresh
//! database there). With `VOIPBIN_REQUIRE_POSTGRES=1` (CI), a missing Postgres fails
//! the suite instead of skipping it.
#![allow(clippy::unwrap_used, missing_docs)]

use api::store::accesskeys::Accesskey;
use api::store::flows::Flow;
use api::store::numbers::Number;
use api::store::{
    Backend, Store, accesskeys, customers, deliveries, flows, numbers, owned, settings,
};
use serde_json::json;
use sqlx::Connection;

/// A store on a fresh database of each backend.
async fn backends() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&format!("sqlite://{}/t.db", dir.path().display()))
        .await
        .unwrap();
    assert_eq!(sqlite.backend(), Backend::Sqlite);
    let mut out = vec![(sqlite, Some(dir))];
    match std::env::var("VOIPBIN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => out.push((fresh_postgres(&url).await, None)),
        _ if std::env::var("VOIPBIN_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("VOIPBIN_REQUIRE_POSTGRES=1 but VOIPBIN_TEST_POSTGRES_URL is not set")
        }
        _ => eprintln!("storage: VOIPBIN_TEST_POSTGRES_URL unset, testing SQLite only"),
    }
    out
}

/// Creates a uniquely named database on the server at `url` and opens it.
async fn fresh_postgres(url: &str) -> Store {
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(url)
        .await
        .expect("connect to the test Postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let mut db_url = reqwest::Url::parse(url).unwrap();
    db_url.set_path(&format!("/{name}"));
    let store = Store::open(db_url.as_str()).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    store
}

fn customer(id: &str, username: &str, tm: &str) -> customers::Customer {
    customers::Customer {
        id: id.into(),
        username: username.into(),
        name: username.into(),
        detail: String::new(),
        email: String::new(),
        phone_number: String::new(),
        address: String::new(),
        webhook_method: "POST".into(),
        webhook_uri: String::new(),
        status: "active".into(),
        tm_create: tm.into(),
        tm_update: None,
        tm_delete: None,
        webhook_secret: "s".into(),
        is_admin: false,
        password_hash: "h".into(),
    }
}

fn flow(id: &str, customer_id: &str, tm: &str) -> flows::Flow {
    flows::Flow {
        id: id.into(),
        customer_id: customer_id.into(),
        kind: "flow".into(),
        name: format!("flow {id}"),
        detail: String::new(),
        actions: json!([{"id": "a", "type": "answer"}]),
        on_complete_flow_id: None,
        tm_create: tm.into(),
        tm_update: None,
        tm_delete: None,
    }
}

fn number(id: &str, customer_id: &str, e164: &str) -> numbers::Number {
    numbers::Number {
        id: id.into(),
        customer_id: customer_id.into(),
        number: e164.into(),
        kind: "normal".into(),
        call_flow_id: Some("f1".into()),
        message_flow_id: None,
        name: String::new(),
        detail: String::new(),
        status: "active".into(),
        tm_create: "2026-01-01T00:00:00.000001Z".into(),
        tm_update: None,
        tm_delete: None,
    }
}

#[tokio::test]
async fn migrations_run_once_and_reopen_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sub/dir/t.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    customers::insert(
        store.pool(),
        &customer("c1", "u1", "2026-01-01T00:00:00.000001Z"),
    )
    .await
    .unwrap();
    store.close().await;
    let again = Store::open(&url).await.unwrap();
    assert_eq!(
        customers::count(again.pool()).await.unwrap(),
        1,
        "the file kept its rows"
    );
    assert!(
        Store::open("mysql://x").await.is_err(),
        "unsupported URLs are refused"
    );
}

#[tokio::test]
async fn flows_are_scoped_paged_and_soft_deleted() {
    for (store, _dir) in backends().await {
        let pool = store.pool();
        for i in 1..=5 {
            flows::insert(
                pool,
                &flow(
                    &format!("f{i}"),
                    "c1",
                    &format!("2026-01-01T00:00:0{i}.000000Z"),
                ),
            )
            .await
            .unwrap();
        }
        flows::insert(pool, &flow("other", "c2", "2026-01-01T00:00:09.000000Z"))
            .await
            .unwrap();

        let got = owned::get::<Flow>(pool, "c1", "f3").await.unwrap().unwrap();
        assert_eq!(got.actions, json!([{"id": "a", "type": "answer"}]));
        assert!(
            owned::get::<Flow>(pool, "c2", "f3")
                .await
                .unwrap()
                .is_none(),
            "{:?}: another customer's flow",
            store.backend()
        );

        let page1 = owned::list::<Flow>(pool, "c1", "9999-12-31T23:59:59.999999Z", 2)
            .await
            .unwrap();
        assert_eq!(
            page1.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["f5", "f4"]
        );
        let page2 = owned::list::<Flow>(pool, "c1", &page1[1].tm_create, 2)
            .await
            .unwrap();
        assert_eq!(
            page2.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
            ["f3", "f2"]
        );

        let mut f = got.clone();
        f.name = "renamed".into();
        f.tm_update = Some("2026-02-01T00:00:00.000000Z".into());
        flows::update(pool, &f).await.unwrap();
        assert_eq!(
            owned::get::<Flow>(pool, "c1", "f3")
                .await
                .unwrap()
                .unwrap()
                .name,
            "renamed"
        );

        assert!(
            owned::delete::<Flow>(pool, "c1", "f3", "2026-03-01T00:00:00.000000Z")
                .await
                .unwrap()
        );
        assert!(
            !owned::delete::<Flow>(pool, "c1", "f3", "2026-03-01T00:00:00.000000Z")
                .await
                .unwrap(),
            "only once"
        );
        assert!(
            owned::get::<Flow>(pool, "c1", "f3")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            owned::list::<Flow>(pool, "c1", "9999", 100)
                .await
                .unwrap()
                .len(),
            4
        );
    }
}

#[tokio::test]
async fn numbers_are_unique_while_live() {
    for (store, _dir) in backends().await {
        let pool = store.pool();
        numbers::insert(pool, &number("n1", "c1", "+15550100"))
            .await
            .unwrap();
        let dup = numbers::insert(pool, &number("n2", "c2", "+15550100")).await;
        match dup {
            Err(sqlx::Error::Database(e)) => {
                assert!(e.is_unique_violation(), "{:?}: {e}", store.backend())
            }
            other => panic!(
                "{:?}: expected a unique violation, got {other:?}",
                store.backend()
            ),
        }
        assert_eq!(
            numbers::find_by_number(pool, "+15550100")
                .await
                .unwrap()
                .unwrap()
                .customer_id,
            "c1"
        );
        assert!(
            owned::delete::<Number>(pool, "c1", "n1", "2026-01-02T00:00:00.000000Z")
                .await
                .unwrap()
        );
        numbers::insert(pool, &number("n2", "c2", "+15550100"))
            .await
            .unwrap();
        assert_eq!(
            numbers::find_by_number(pool, "+15550100")
                .await
                .unwrap()
                .unwrap()
                .customer_id,
            "c2"
        );
    }
}

#[tokio::test]
async fn customers_and_keys_resolve_with_expiry() {
    for (store, _dir) in backends().await {
        let pool = store.pool();
        customers::insert(
            pool,
            &customer("c1", "alice", "2026-01-01T00:00:00.000001Z"),
        )
        .await
        .unwrap();
        let got = customers::get_by_username(pool, "alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.id.as_str(), got.is_admin, got.webhook_secret.as_str()),
            ("c1", false, "s")
        );
        let key = |id: &str, expire: Option<&str>| accesskeys::Accesskey {
            id: id.into(),
            customer_id: "c1".into(),
            name: String::new(),
            detail: String::new(),
            token: None,
            token_prefix: "vb_".into(),
            tm_expire: expire.map(Into::into),
            tm_create: "2026-01-01T00:00:00.000001Z".into(),
            tm_update: None,
            tm_delete: None,
        };
        accesskeys::insert(pool, &key("k1", None), "hash1")
            .await
            .unwrap();
        accesskeys::insert(
            pool,
            &key("k2", Some("2026-06-01T00:00:00.000000Z")),
            "hash2",
        )
        .await
        .unwrap();
        let now = "2026-05-01T00:00:00.000000Z";
        assert_eq!(
            accesskeys::customer_for_token(pool, "hash1", now)
                .await
                .unwrap()
                .as_deref(),
            Some("c1")
        );
        assert_eq!(
            accesskeys::customer_for_token(pool, "hash2", now)
                .await
                .unwrap()
                .as_deref(),
            Some("c1")
        );
        let later = "2026-07-01T00:00:00.000000Z";
        assert_eq!(
            accesskeys::customer_for_token(pool, "hash2", later)
                .await
                .unwrap(),
            None,
            "expired"
        );
        owned::delete::<Accesskey>(pool, "c1", "k1", now)
            .await
            .unwrap();
        assert_eq!(
            accesskeys::customer_for_token(pool, "hash1", now)
                .await
                .unwrap(),
            None,
            "revoked"
        );
        assert!(
            customers::get_by_username(pool, "alice")
                .await
                .unwrap()
                .is_some()
        );
        customers::delete(pool, "c1", now).await.unwrap();
        assert!(customers::get(pool, "c1").await.unwrap().is_none());
        // The username is free again once deleted.
        customers::insert(
            pool,
            &customer("c2", "alice", "2026-08-01T00:00:00.000001Z"),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn the_outbox_orders_due_rows_and_records_attempts() {
    for (store, _dir) in backends().await {
        let pool = store.pool();
        let row = |id: &str, at: &str| deliveries::Delivery {
            id: id.into(),
            customer_id: "c1".into(),
            event_type: "flow_created".into(),
            uri: "http://127.0.0.1:9/".into(),
            method: "POST".into(),
            body: "{}".into(),
            status: deliveries::PENDING.into(),
            attempts: 0,
            next_attempt_at: at.into(),
            last_error: String::new(),
            tm_create: at.into(),
        };
        deliveries::insert(pool, &row("d2", "2026-01-01T00:00:02.000000Z"))
            .await
            .unwrap();
        deliveries::insert(pool, &row("d1", "2026-01-01T00:00:01.000000Z"))
            .await
            .unwrap();
        deliveries::insert(pool, &row("d3", "2026-01-01T00:00:09.000000Z"))
            .await
            .unwrap();
        let due = deliveries::due(pool, "2026-01-01T00:00:05.000000Z", 10)
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["d1", "d2"]
        );
        assert_eq!(
            deliveries::next_due(pool).await.unwrap().as_deref(),
            Some("2026-01-01T00:00:01.000000Z")
        );

        let mut d1 = due[0].clone();
        d1.attempts = 1;
        d1.status = deliveries::DELIVERED.into();
        deliveries::record_attempt(pool, &d1, "2026-01-01T00:00:05.000000Z")
            .await
            .unwrap();
        let mut d2 = due[1].clone();
        d2.attempts = 1;
        d2.next_attempt_at = "2026-01-01T00:01:05.000000Z".into();
        d2.last_error = "receiver answered 500".into();
        deliveries::record_attempt(pool, &d2, "2026-01-01T00:00:05.000000Z")
            .await
            .unwrap();

        let due = deliveries::due(pool, "2026-01-01T00:00:30.000000Z", 10)
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["d3"]
        );
        let all = deliveries::list_for_customer(pool, "c1", 10).await.unwrap();
        let d2 = all.iter().find(|d| d.id == "d2").unwrap();
        assert_eq!(
            (d2.attempts, d2.last_error.as_str()),
            (1, "receiver answered 500")
        );
    }
}

#[tokio::test]
async fn settings_keep_their_first_value() {
    for (store, _dir) in backends().await {
        assert_eq!(
            settings::get_or_insert(&store, "jwt_secret", "one")
                .await
                .unwrap(),
            "one"
        );
        assert_eq!(
            settings::get_or_insert(&store, "jwt_secret", "two")
                .await
                .unwrap(),
            "one"
        );
        assert_eq!(settings::get(store.pool(), "missing").await.unwrap(), None);
    }
}

/// The rows of one call's batch: the call (inserted), its activeflow, a recording
/// that started and a groupcall.
fn call_batch(customer_id: &str, call_id: &str) -> Vec<api::call_store::Write> {
    use api::call_store::{Verb, Write};
    use api::store::activeflows::Activeflow;
    use api::store::calls::{Address, Call, RtpStats};
    use api::store::json::JsonText;
    let call = Call {
        id: call_id.into(),
        customer_id: customer_id.into(),
        kind: "flow".into(),
        source: Address {
            kind: "tel".into(),
            target: "+15551230000".into(),
            target_name: "Alice \"A\"".into(),
        },
        status: "progressing".into(),
        direction: "incoming".into(),
        chained_call_ids: vec!["x".into(), "y".into()],
        rtp_stats: Some(RtpStats {
            packets_sent: 50,
            ..RtpStats::default()
        }),
        tm_progressing: Some("2026-01-01T00:00:01.000000Z".into()),
        tm_create: "2026-01-01T00:00:00.000000Z".into(),
        ..Call::default()
    };
    let flow = Activeflow {
        id: format!("af-{call_id}"),
        customer_id: customer_id.into(),
        flow_id: "f".into(),
        status: "running".into(),
        reference_type: "call".into(),
        reference_id: call_id.into(),
        reference_activeflow_id: String::new(),
        on_complete_flow_id: String::new(),
        webhook_uri: String::new(),
        webhook_method: String::new(),
        current_action: JsonText::of(&json!({"type": "connect"})),
        forward_action_id: String::new(),
        executed_actions: JsonText::empty_array(),
        tm_create: "2026-01-01T00:00:00.000000Z".into(),
        tm_update: None,
        tm_delete: None,
    };
    let recording = api::store::recordings::Recording {
        id: format!("rec-{call_id}"),
        customer_id: customer_id.into(),
        owner_type: String::new(),
        owner_id: String::new(),
        reference_type: "call".into(),
        reference_id: call_id.into(),
        status: "recording".into(),
        format: "wav".into(),
        activeflow_id: flow.id.clone(),
        on_end_flow_id: String::new(),
        tm_start: Some("2026-01-01T00:00:02.000000Z".into()),
        tm_end: None,
        tm_create: "2026-01-01T00:00:02.000000Z".into(),
        tm_update: None,
        tm_delete: None,
        filepath: "/tmp/r.wav".into(),
    };
    let groupcall = api::store::groupcalls::Groupcall {
        id: format!("gc-{call_id}"),
        customer_id: customer_id.into(),
        status: "progressing".into(),
        call_ids: vec![call_id.into()],
        call_count: 1,
        tm_create: "2026-01-01T00:00:00.000000Z".into(),
        ..Default::default()
    };
    let mut ringing = call.clone();
    ringing.status = "ringing".into();
    ringing.rtp_stats = None;
    vec![
        Write::call(&ringing, true, &[Verb::Created]),
        Write::activeflow(&flow, true, &[Verb::Created]),
        Write::recording(&recording, Verb::Started),
        Write::groupcall(&groupcall, true, &[Verb::Created]),
        Write::call(&call, false, &[Verb::Progressing]),
    ]
}

#[tokio::test]
async fn call_batches_commit_whole_or_not_at_all_on_every_backend() {
    use api::call_store::{Row, Verb, Write, commit_batch};
    use api::store::recordings::Recording;
    use api::store::{activeflows::Activeflow, calls::Call, groupcalls::Groupcall};
    let stamps = std::sync::Arc::new(api::clock::Stamps::new(Box::new(api::clock::SystemClock)));
    let bus = api::events::EventBus::new(stamps, 0);
    for (store, _dir) in backends().await {
        let pool = store.pool();
        let mut hooked = customer("c1", "hooked", "2026-01-01T00:00:00.000000Z");
        hooked.webhook_uri = "http://127.0.0.1:9/hook".into();
        customers::insert(pool, &hooked).await.unwrap();

        let writes = call_batch("c1", "call-1");
        let refs: Vec<&Write> = writes.iter().collect();
        let events = commit_batch(&store, &bus, &refs).await.unwrap();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "call_created",
                "activeflow_created",
                "recording_started",
                "groupcall_created",
                "call_progressing"
            ],
            "{:?}",
            store.backend()
        );
        // The call's two writes are one row, in its last state.
        let call = owned::get::<Call>(pool, "c1", "call-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(call.status, "progressing");
        assert_eq!(call.source.target_name, "Alice \"A\"");
        assert_eq!(call.chained_call_ids, ["x", "y"]);
        assert_eq!(call.rtp_stats.map(|s| s.packets_sent), Some(50));
        assert_eq!(call.tm_ringing, None);
        assert_eq!(
            call.tm_progressing.as_deref(),
            Some("2026-01-01T00:00:01.000000Z")
        );
        let flow = owned::get::<Activeflow>(pool, "c1", "af-call-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(flow.current_action.as_str(), r#"{"type":"connect"}"#);
        let recording = owned::get::<api::store::recordings::Recording>(pool, "c1", "rec-call-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(recording.filepath, "/tmp/r.wav");
        let groupcall = owned::get::<Groupcall>(pool, "c1", "gc-call-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (groupcall.call_ids, groupcall.call_count),
            (vec!["call-1".to_owned()], 1)
        );
        // One webhook delivery per event, in the same transaction.
        let delivered = deliveries::list_for_customer(pool, "c1", 10).await.unwrap();
        assert_eq!(delivered.len(), 5);

        // A batch that breaks a constraint (the recording inserted again) writes
        // none of its rows, and the next batch goes in.
        let again = call_batch("c1", "call-2");
        let mut bad: Vec<&Write> = again.iter().collect();
        bad.push(&writes[2]);
        let error = commit_batch(&store, &bus, &bad).await.unwrap_err();
        assert!(error.to_string().contains("the database failed"), "{error}");
        assert!(
            owned::get::<Call>(pool, "c1", "call-2")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            deliveries::list_for_customer(pool, "c1", 10)
                .await
                .unwrap()
                .len(),
            5
        );
        let refs: Vec<&Write> = again.iter().collect();
        commit_batch(&store, &bus, &refs).await.unwrap();
        assert!(
            owned::get::<Call>(pool, "c1", "call-2")
                .await
                .unwrap()
                .is_some()
        );

        // Later writes update in place: the recording ends, the groupcall hangs up.
        let (Row::Recording { recording, .. }, Row::Groupcall { groupcall, .. }) =
            (&writes[2].row, &writes[3].row)
        else {
            panic!("the batch's third and fourth rows are a recording and a groupcall");
        };
        let mut ended = (**recording).clone();
        ended.status = "ended".into();
        ended.tm_end = Some("2026-01-01T00:00:09.000000Z".into());
        let mut over = (**groupcall).clone();
        over.status = "hangup".into();
        over.call_count = 0;
        over.tm_update = Some("2026-01-01T00:00:09.000000Z".into());
        let later = [
            Write::recording(&ended, Verb::Finished),
            Write::groupcall(&over, false, &[Verb::Hangup]),
        ];
        let refs: Vec<&Write> = later.iter().collect();
        commit_batch(&store, &bus, &refs).await.unwrap();
        let recording = owned::get::<Recording>(pool, "c1", "rec-call-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (recording.status.as_str(), recording.tm_end.as_deref()),
            ("ended", Some("2026-01-01T00:00:09.000000Z"))
        );
        let groupcall = owned::get::<Groupcall>(pool, "c1", "gc-call-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (groupcall.status.as_str(), groupcall.call_count),
            ("hangup", 0)
        );
        store.close().await;
    }
}
