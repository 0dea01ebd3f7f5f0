//! Per-webhook failure notices: the webhook's own addresses are emailed when it is deactivated
//! (and, when asked, when it starts failing, at most once per interval), and `webhook.failing` /
//! `webhook.recovered` events are emitted once per transition, not per attempt.

use std::time::Duration;

use app::db::entities::email_outbox;
use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::{
    both_databases,
    common::{receiver::Receiver, *},
};

both_databases!(
    a_webhook_s_own_addresses_hear_of_its_deactivation_once,
    failing_and_recovered_are_emitted_once_per_transition,
    notification_addresses_are_validated,
);

const WAIT: Duration = Duration::from_secs(20);

async fn events_of(api: &Api, event_type: &str) -> Vec<Value> {
    api.get(&format!("/events?type={event_type}")).await["items"].as_array().unwrap().clone()
}

async fn outbox(app: &TestApp) -> Vec<email_outbox::Model> {
    email_outbox::Entity::find().all(&app.db).await.unwrap()
}

async fn a_webhook_s_own_addresses_hear_of_its_deactivation_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.retry_schedule = vec![0, 1, 1];
        c.public_url = Some("https://herald.example.test/".into());
    })
    .await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    rx.set_down(true);
    let (noisy, _) = api
        .webhook(json!({
            "name": "billing", "url": rx.url("/switch"), "event_types": ["invoice.*"],
            "notify_emails": ["ops@example.test", "oncall@example.test"], "notify_on_failing": true,
        }))
        .await;
    let (quiet, _) =
        api.webhook(json!({"name": "crm", "url": rx.url("/switch"), "event_types": ["invoice.*"]})).await;
    let shown = api.get(&format!("/webhooks/{noisy}")).await;
    assert_eq!(shown["notify_emails"], json!(["ops@example.test", "oncall@example.test"]));
    assert_eq!(shown["notify_on_failing"], true);

    api.event("invoice.paid", json!({"n": 1})).await;
    for id in [&noisy, &quiet] {
        eventually("deactivation", WAIT, || async {
            (api.get(&format!("/webhooks/{id}")).await["state"] == "too_many_errors").then_some(())
        })
        .await;
    }
    // Three failed attempts each: one "failing" email per address of the webhook that asked, one
    // "deactivated" email per address; nothing for the webhook without addresses (and no API
    // user exists here).
    let emails = outbox(&app).await;
    let mut seen: Vec<(String, bool)> =
        emails.iter().map(|e| (e.recipient.clone(), e.subject.contains("deactivated"))).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("oncall@example.test".into(), false),
            ("oncall@example.test".into(), true),
            ("ops@example.test".into(), false),
            ("ops@example.test".into(), true),
        ],
        "{emails:?}"
    );
    assert!(emails.iter().all(|e| e.subject.contains("billing")));
    let link = format!("https://herald.example.test/webhooks/{noisy}");
    assert!(emails.iter().all(|e| e.body.contains(&link)), "emails link to the webhook in the app");

    // The operational events: one "failing" per webhook (not one per attempt), one "deactivated".
    let failing = events_of(&api, "webhook.failing").await;
    assert_eq!(failing.len(), 2, "{failing:?}");
    let about_noisy = failing.iter().find(|e| e["payload"]["webhook_id"] == noisy.as_str()).unwrap();
    assert_eq!(about_noisy["payload"]["admin_url"], link.as_str());
    assert!(about_noisy["payload"]["last_error"].as_str().unwrap().contains("503"), "{about_noisy}");
    let deactivated = events_of(&api, "webhook.deactivated").await;
    assert_eq!(deactivated.len(), 2);
    assert!(deactivated.iter().all(|e| e["payload"]["admin_url"].as_str().unwrap().starts_with("https://")));
    app.stop().await;
}

async fn failing_and_recovered_are_emitted_once_per_transition(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.retry_schedule = vec![0, 1, 1, 1];
        c.failure_notice_minutes = 60;
    })
    .await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (id, _) = api
        .webhook(json!({
            "name": "flappy", "url": rx.url("/switch"), "event_types": ["order.*"],
            "notify_emails": ["ops@example.test"], "notify_on_failing": true,
        }))
        .await;
    let delivered = |n: usize| {
        let api = api.clone();
        let id = id.clone();
        async move {
            eventually("the deliveries to succeed", WAIT, || async {
                let rows = api.deliveries_of(&id).await;
                (rows.len() == n && rows.iter().all(|d| d["status"] == "succeeded")).then_some(())
            })
            .await
        }
    };

    // Down for two attempts, then up: failing once, recovered once, each round.
    for round in 1..=2 {
        rx.set_down(true);
        let before = rx.received_at("/switch").len();
        api.event("order.placed", json!({"round": round})).await;
        eventually("two failed attempts", WAIT, || async {
            (rx.received_at("/switch").len() >= before + 2).then_some(())
        })
        .await;
        rx.set_down(false);
        delivered(round).await;
    }
    eventually("two recoveries", WAIT, || async {
        (events_of(&api, "webhook.recovered").await.len() == 2).then_some(())
    })
    .await;
    let failing = events_of(&api, "webhook.failing").await;
    assert_eq!(failing.len(), 2, "one per transition, though each round failed twice: {failing:?}");
    let recovered = events_of(&api, "webhook.recovered").await;
    assert!(recovered.iter().all(|e| e["payload"]["failed_attempts"].as_i64() >= Some(2)), "{recovered:?}");

    // Two "failing" transitions within the hour: one email.
    let emails = outbox(&app).await;
    assert_eq!(emails.iter().filter(|e| e.subject.contains("is failing")).count(), 1, "{emails:?}");
    assert_eq!(api.get(&format!("/webhooks/{id}")).await["state"], "active");
    app.stop().await;
}

async fn notification_addresses_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let base = json!({"name": "w", "url": "http://127.0.0.1:9/", "event_types": ["*"]});
    for bad in
        [json!(["not an address"]), json!(["ops@"]), json!(vec!["a@example.test"; 11]), json!("ops@x.io")]
    {
        let mut body = base.clone();
        body["notify_emails"] = bad.clone();
        let (status, problem) = api.call(Method::POST, "/webhooks", Some(body)).await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert_eq!(problem["field"], "notify_emails", "{bad}: {problem}");
    }
    let (id, _) = api.webhook(base).await;
    let (status, problem) =
        api.call(Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"notify_emails": ["x"]}))).await;
    assert_eq!((status.as_u16(), problem["field"].as_str()), (422, Some("notify_emails")));
    let (status, updated) = api
        .call(Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"notify_emails": ["ops@example.test"]})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["notify_emails"], json!(["ops@example.test"]));
    app.stop().await;
}
