use app::db::entities::{deliveries, events, webhooks};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::{both_databases, common::*};

both_databases!(
    webhooks_can_be_created_read_updated_and_deleted,
    bad_webhook_input_is_refused_and_nothing_is_stored,
    events_fan_out_to_matching_webhooks,
    bad_events_are_refused_and_nothing_is_stored,
    a_repeated_idempotency_key_returns_the_original_event,
    concurrent_duplicate_posts_create_one_event,
    a_batch_of_events_stores_each_idempotency_key_once,
    reactivation_recovers_held_deliveries_since_a_time,
    a_webhook_deleted_while_it_is_changed_is_a_404_not_a_500,
);

struct Api<'a> {
    app: &'a TestApp,
    bearer: String,
}

impl<'a> Api<'a> {
    async fn new(app: &'a TestApp) -> Api<'a> {
        Api { app, bearer: format!("Bearer {}", app.api_key().await) }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.app.client.request(method, self.app.url(path)).header(AUTHORIZATION, &self.bearer);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn create_webhook(&self, name: &str, event_types: &[&str]) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/webhooks",
                json!({"name": name, "url": "http://127.0.0.1:9/hook", "event_types": event_types}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

async fn webhooks_can_be_created_read_updated_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;

    let (status, created) = api
        .post(
            "/api/v1/webhooks",
            json!({
                "name": "Billing",
                "url": "https://billing.example.com/hooks",
                "description": "invoices",
                "event_types": ["license.*", "user.created"],
                "auth": {"type": "basic", "username": "herald", "password": "hunter2hunter2"},
                "headers": {"X-Tenant": "acme"},
                "timeout_ms": 5000,
                "retry_schedule": [0, 10, 60]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["state"], "active");
    assert_eq!(created["auth"], json!({"type": "basic", "username": "herald"}), "password never read back");
    assert_eq!(created["header_names"], json!(["X-Tenant"]));

    let (status, read) = api.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(status, 200);
    assert!(read.get("secret").is_none(), "reads do not carry the secret");
    assert!(!read.to_string().contains("hunter2"), "nor destination credentials");
    assert_eq!(read["retry_schedule"], json!([0, 10, 60]));

    let (status, secret) = api.get(&format!("/api/v1/webhooks/{id}/secret")).await;
    assert_eq!((status, &secret["secret"]), (200, &created["secret"]));

    // Stopping records who and when; re-enabling makes it active again.
    let (status, stopped) = api
        .send(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(json!({"enabled": false})))
        .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["state"], "stopped");
    assert_eq!(stopped["stopped_by"], "api key test");
    assert!(stopped["stopped_at"].is_string());
    assert_eq!(stopped["name"], "Billing", "absent fields are unchanged");
    let (_, active) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"enabled": true, "retry_schedule": null, "name": "Billing v2"})),
        )
        .await;
    assert_eq!((active["state"].as_str(), active["name"].as_str()), (Some("active"), Some("Billing v2")));
    assert_eq!(active["retry_schedule"], Value::Null, "null returns to the global schedule");

    let (status, rotated) = api.post(&format!("/api/v1/webhooks/{id}/rotate-secret"), json!({})).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["secret"], created["secret"]);
    assert!(rotated["previous_secret_expires_at"].is_string());

    let (status, usage) = api.get(&format!("/api/v1/webhooks/{id}/usage")).await;
    assert_eq!(status, 200);
    assert_eq!((usage["total_calls"].as_i64(), usage["consecutive_errors"].as_i64()), (Some(0), Some(0)));

    let (status, page) = api.get("/api/v1/webhooks?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let (status, _) = api.send(reqwest::Method::DELETE, &format!("/api/v1/webhooks/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, problem) = api.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(status, 404);
    assert!(problem["detail"].as_str().unwrap().contains(&id));
    app.stop().await;
}

async fn bad_webhook_input_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let good = json!({"name": "ok", "url": "https://example.com/h", "event_types": ["a.b"]});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("url", json!("ftp://example.com/h")), "url"),
        (with("url", json!("https://")), "url"),
        (with("url", json!("not a url")), "url"),
        (with("event_types", json!([])), "event_types"),
        (with("event_types", json!([""])), "event_types"),
        (with("event_types", json!(["Bad Type"])), "event_types"),
        (with("name", json!("  ")), "name"),
        (with("timeout_ms", json!(999_999)), "timeout_ms"),
        (with("retry_schedule", json!([])), "retry_schedule"),
        (with("headers", json!({"webhook-signature": "forged"})), "headers"),
        (with("auth", json!({"type": "api_key", "header": "X Key", "value": "v"})), "auth.header"),
        (with("auth", json!({"type": "magic"})), "auth.type"),
        (with("colour", json!("blue")), "colour"),
        (with("timeout_ms", json!("fast")), "timeout_ms"),
    ];
    for (body, field) in cases {
        let (status, problem) = api.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(status, 422, "{body} -> {problem}");
        assert_eq!(problem["field"], field, "{body} -> {problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let res = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .header(AUTHORIZATION, &api.bearer)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(webhooks::Entity::find().count(&app.db).await.unwrap(), 0, "nothing was stored");

    // Every invalid field in one answer, in the order of the form, on create and on update.
    let bad = json!({"name": " ", "url": "ftp://x", "event_types": [], "timeout_ms": 999_999});
    let (status, problem) = api.post("/api/v1/webhooks", bad.clone()).await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "url", "event_types", "timeout_ms"], "{problem}");
    assert_eq!(problem["field"], "name", "the first is also `field`, as before: {problem}");
    assert!(problem["errors"][1]["detail"].as_str().unwrap().starts_with("url: "), "{problem}");
    assert_eq!(webhooks::Entity::find().count(&app.db).await.unwrap(), 0, "nothing was stored");
    let (_, kept) = api.post("/api/v1/webhooks", good.clone()).await;
    let kept_id = kept["id"].as_str().unwrap();
    let (status, problem) =
        api.send(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{kept_id}"), Some(bad)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(4), "{problem}");
    let (_, after) = api.get(&format!("/api/v1/webhooks/{kept_id}")).await;
    assert_eq!((after["name"].as_str(), after["url"].as_str()), (Some("ok"), Some("https://example.com/h")));
    let (status, problem) = api.post("/api/v1/webhooks", with("url", json!("https://"))).await;
    assert_eq!((status, problem.get("errors").map(|e| e.as_array().map(Vec::len))), (422, Some(Some(1))));
    // An update with a bad value changes nothing.
    let created = api.post("/api/v1/webhooks", good).await.1;
    let id = created["id"].as_str().unwrap();
    let (status, _) = api
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"name": "renamed", "url": "javascript:alert(1)"})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(api.get(&format!("/api/v1/webhooks/{id}")).await.1["name"], "ok");
    assert_eq!(api.get("/api/v1/webhooks/not-a-uuid").await.0, 404);
    app.stop().await;
}

async fn events_fan_out_to_matching_webhooks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    let all = api.create_webhook("all", &["*"]).await;
    api.create_webhook("licenses", &["license.*"]).await;
    api.create_webhook("exact", &["license.assigned"]).await;
    api.create_webhook("users", &["user.created"]).await;
    let stopped = api.create_webhook("stopped", &["license.*"]).await;
    let stopped_id = stopped["id"].as_str().unwrap();
    api.send(
        reqwest::Method::PATCH,
        &format!("/api/v1/webhooks/{stopped_id}"),
        Some(json!({"enabled": false})),
    )
    .await;

    let payload = r#"{"seat": 7,  "user": {"email": "a@example.com"}, "n": 1.50}"#;
    let res = app
        .client
        .post(app.url("/api/v1/events"))
        .header(AUTHORIZATION, &api.bearer)
        .header(CONTENT_TYPE, "application/json")
        .body(format!(r#"{{"type": "license.assigned", "payload": {payload}}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["deliveries"], 4, "all, licenses, exact and the held one for stopped");
    assert_eq!(accepted["duplicate"], false);

    // (The destinations refuse connections: Herald's own `webhook.failing` events may follow at
    // once, and fan out to `all`. Only the event posted here is counted.)
    let posted = || events::Entity::find().filter(events::Column::EventType.eq("license.assigned"));
    let stored = posted().all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, payload, "the payload is kept byte for byte");
    assert_eq!(stored[0].category, "license");

    let rows = deliveries::Entity::find()
        .filter(deliveries::Column::EventType.eq("license.assigned"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    let held: Vec<_> = rows.iter().filter(|d| d.status == app::models::DeliveryStatus::Held).collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].webhook_id.to_string(), stopped_id);
    assert!(held[0].next_attempt_at.is_none(), "held deliveries are not scheduled");

    let all_id = all["id"].as_str().unwrap();
    let (_, page) =
        api.get(&format!("/api/v1/deliveries?webhook_id={all_id}&event_type=license.assigned")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_ne!(page["items"][0]["status"], "held", "an active webhook's delivery is queued to be sent");

    let (status, accepted) = api.post("/api/v1/events", json!({"type": "invoice.paid", "payload": []})).await;
    assert_eq!((status, accepted["deliveries"].as_u64()), (202, Some(1)), "only the `*` webhook");
    app.stop().await;
}

async fn bad_events_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    api.create_webhook("all", &["*"]).await;
    let cases = [
        (json!({"type": "", "payload": {}}), 422, "type"),
        (json!({"type": "Not Valid", "payload": {}}), 422, "type"),
        (json!({"payload": {}}), 422, "type"),
        (json!({"type": "a.b"}), 422, "payload"),
        (json!({"type": "a.b", "payload": {}, "extra": 1}), 422, "extra"),
        (json!({"type": "a.b", "payload": {}, "idempotency_key": ""}), 422, "idempotency_key"),
    ];
    for (body, status, field) in cases {
        let (got, problem) = api.post("/api/v1/events", body.clone()).await;
        assert_eq!((got, problem["field"].as_str()), (status, Some(field)), "{body} -> {problem}");
    }
    let big = format!(r#"{{"type": "a.b", "payload": "{}"}}"#, "x".repeat(1024 * 1024 + 10));
    let res = app
        .client
        .post(app.url("/api/v1/events"))
        .header(AUTHORIZATION, &api.bearer)
        .header(CONTENT_TYPE, "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json");
    for (content_type, body) in
        [("application/json", "{not json"), ("text/plain", r#"{"type":"a.b","payload":1}"#)]
    {
        let res = app
            .client
            .post(app.url("/api/v1/events"))
            .header(AUTHORIZATION, &api.bearer)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(matches!(res.status().as_u16(), 415 | 422), "{content_type}: {}", res.status());
    }
    assert_eq!(events::Entity::find().count(&app.db).await.unwrap(), 0, "no event stored");
    assert_eq!(deliveries::Entity::find().count(&app.db).await.unwrap(), 0, "no delivery stored");
    app.stop().await;
}

async fn a_repeated_idempotency_key_returns_the_original_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    api.create_webhook("all", &["*"]).await;
    let body = json!({"type": "order.placed", "payload": {"id": 1}, "idempotency_key": "order-1"});
    let (s1, first) = api.post("/api/v1/events", body.clone()).await;
    let (s2, second) = api.post("/api/v1/events", body).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first["id"], second["id"]);
    assert_eq!((first["duplicate"].as_bool(), second["duplicate"].as_bool()), (Some(false), Some(true)));
    assert_eq!(second["deliveries"], 1);

    // The header works the same way.
    let res = app
        .client
        .post(app.url("/api/v1/events"))
        .header(AUTHORIZATION, &api.bearer)
        .header("Idempotency-Key", "order-1")
        .json(&json!({"type": "order.placed", "payload": {"id": 1}}))
        .send()
        .await
        .unwrap();
    let third: Value = res.json().await.unwrap();
    assert_eq!(third["id"], first["id"]);
    // (The webhook's destination does not answer: Herald's own `webhook.failing` event may join.)
    let placed = events::Entity::find().filter(events::Column::EventType.eq("order.placed"));
    assert_eq!(placed.count(&app.db).await.unwrap(), 1);
    let placed = deliveries::Entity::find().filter(deliveries::Column::EventType.eq("order.placed"));
    assert_eq!(placed.count(&app.db).await.unwrap(), 1);
    app.stop().await;
}

async fn concurrent_duplicate_posts_create_one_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    api.create_webhook("all", &["*"]).await;
    let body = json!({"type": "order.placed", "payload": {"id": 2}, "idempotency_key": "race"});
    let posts = (0..8).map(|_| api.post("/api/v1/events", body.clone()));
    let results = futures::future::join_all(posts).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 202, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every answer names the same event");
    assert_eq!(results.iter().filter(|(_, b)| b["duplicate"] == false).count(), 1);
    let placed = events::Entity::find().filter(events::Column::EventType.eq("order.placed"));
    assert_eq!(placed.count(&app.db).await.unwrap(), 1);
    let placed = deliveries::Entity::find().filter(deliveries::Column::EventType.eq("order.placed"));
    assert_eq!(placed.count(&app.db).await.unwrap(), 1);
    app.stop().await;
}

/// The group commit behind `POST /events`: one transaction for many requests, each answered
/// as if it had been alone.
async fn a_batch_of_events_stores_each_idempotency_key_once(backend: Backend) {
    use app::db::events::{ingest_many, NewEvent};

    let app = TestApp::spawn(backend).await;
    let api = Api::new(&app).await;
    api.create_webhook("orders", &["order.*"]).await;
    api.create_webhook("all", &["*"]).await;
    let (_, stored) = api
        .post("/api/v1/events", json!({"type": "order.placed", "payload": {}, "idempotency_key": "k0"}))
        .await;
    let event = |event_type: &str, key: Option<&str>| NewEvent {
        event_type: event_type.into(),
        payload: r#"{"b": 1, "a": 2}"#.into(),
        idempotency_key: key.map(str::to_owned),
    };
    let batch = [
        event("order.paid", Some("k1")),
        event("user.created", None),
        event("order.paid", Some("k1")),
        event("order.placed", Some("k0")),
    ];
    let answers = ingest_many(&app.db, &batch).await.unwrap();
    assert_eq!(answers.len(), 4);
    let dup: Vec<bool> = answers.iter().map(|a| a.duplicate).collect();
    assert_eq!(dup, [false, false, true, true]);
    assert_eq!(answers[2].id, answers[0].id, "a key repeated in the batch names the first event");
    assert_eq!(
        answers[3].id.to_string(),
        stored["id"].as_str().unwrap(),
        "a stored key names the stored event"
    );
    let counts: Vec<u64> = answers.iter().map(|a| a.deliveries).collect();
    assert_eq!(counts, [2, 1, 2, 2]);
    // (These webhooks' destinations do not answer: Herald's `webhook.failing` events may join.)
    let posted = || Condition::all().add(events::Column::EventType.ne("webhook.failing"));
    assert_eq!(events::Entity::find().filter(posted()).count(&app.db).await.unwrap(), 3);
    let posted = deliveries::Entity::find().filter(deliveries::Column::EventType.ne("webhook.failing"));
    assert_eq!(posted.count(&app.db).await.unwrap(), 2 + 2 + 1);
    let kept = events::Entity::find_by_id(answers[1].id.0).one(&app.db).await.unwrap().unwrap();
    assert_eq!(kept.payload, r#"{"b": 1, "a": 2}"#, "the payload is stored byte for byte");
    app.stop().await;
}

async fn reactivation_recovers_held_deliveries_since_a_time(backend: Backend) {
    use app::models::DeliveryStatus;

    // One attempt, then a retry an hour later: the webhook is not deactivated again mid-test.
    let app = TestApp::spawn_with(backend, |c| c.retry_schedule = vec![0, 3600]).await;
    let api = Api::new(&app).await;
    let webhook = api.create_webhook("w", &["*"]).await;
    let id = webhook["id"].as_str().unwrap();
    api.send(reqwest::Method::PATCH, &format!("/api/v1/webhooks/{id}"), Some(json!({"enabled": false})))
        .await;
    let (_, first) = api.post("/api/v1/events", json!({"type": "a.b", "payload": 1})).await;
    let (_, second) = api.post("/api/v1/events", json!({"type": "a.b", "payload": 2})).await;
    assert_ne!(first["created_at"], second["created_at"]);

    let (status, problem) =
        api.post(&format!("/api/v1/webhooks/{id}/reactivate"), json!({"since": "x"})).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("since")));
    let (status, _) =
        api.post(&format!("/api/v1/webhooks/{}/reactivate", uuid::Uuid::now_v7()), json!({})).await;
    assert_eq!(status, 404);

    let (status, reactivated) = api
        .post(&format!("/api/v1/webhooks/{id}/reactivate"), json!({"recover_since": second["created_at"]}))
        .await;
    assert_eq!(status, 200, "{reactivated}");
    assert_eq!(reactivated["state"], "active");
    assert_eq!(reactivated["recovered_deliveries"], 1, "only what was held since the given time");

    // The engine runs in this app and may attempt a recovered delivery at once (its destination
    // refuses connections), so "queued" means: no longer held, and due or already attempted.
    let queued = |d: &deliveries::Model| {
        d.status != DeliveryStatus::Held && (d.next_attempt_at.is_some() || d.attempt_count > 0)
    };
    let delivery_of = |rows: &[deliveries::Model], event: &Value| {
        let event_id: uuid::Uuid = event["id"].as_str().unwrap().parse().unwrap();
        rows.iter().find(|d| d.event_id == event_id).cloned().unwrap()
    };
    let rows = deliveries::Entity::find().all(&app.db).await.unwrap();
    let first_delivery = delivery_of(&rows, &first);
    assert_eq!((first_delivery.status, first_delivery.next_attempt_at), (DeliveryStatus::Held, None));
    assert_eq!(first_delivery.attempt_count, 0, "a held delivery is never attempted");
    assert!(queued(&delivery_of(&rows, &second)), "the delivery since the given time is queued again");

    // Once active, new events are deliverable at once.
    let (_, third) = api.post("/api/v1/events", json!({"type": "a.b", "payload": 3})).await;
    assert_eq!(third["deliveries"], 1);
    let rows = deliveries::Entity::find().all(&app.db).await.unwrap();
    assert!(queued(&delivery_of(&rows, &third)), "a new event is queued for the active webhook");
    let (_, held) = api.get(&format!("/api/v1/deliveries?webhook_id={id}&status=held")).await;
    let held: Vec<&str> =
        held["items"].as_array().unwrap().iter().map(|d| d["event_id"].as_str().unwrap()).collect();
    assert_eq!(held, [first["id"].as_str().unwrap()], "only the delivery before the given time stays held");
    app.stop().await;
}

/// Found by schemathesis (two workers): a `PATCH` racing a `DELETE` of the same webhook answered
/// 500 ("None of the records are updated"); it is read and written in one transaction now.
async fn a_webhook_deleted_while_it_is_changed_is_a_404_not_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let mut statuses = Vec::new();
    for n in 0..30 {
        let (id, _) = api
            .webhook(json!({"name": format!("w{n}"), "url": "https://example.com/h", "event_types": ["*"]}))
            .await;
        let path = format!("/webhooks/{id}");
        let (patched, deleted) = tokio::join!(
            api.call(reqwest::Method::PATCH, &path, Some(json!({"description": "changed"}))),
            api.call(reqwest::Method::DELETE, &path, None),
        );
        assert!(deleted.0.is_success(), "{deleted:?}");
        statuses.push(patched.0.as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 404), "every PATCH is 200 or 404: {statuses:?}");
    app.stop().await;
}
