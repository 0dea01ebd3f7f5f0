//! The admin app's actions as its browser calls them (server functions with a session): a test
//! event for one webhook, and a re-send from a delivery whose webhook was deactivated, which
//! reactivates it and says what recovery sends besides.

use std::time::Duration;

use reqwest::header::COOKIE;
use serde_json::{json, Value};

use crate::{
    both_databases,
    common::{receiver::Receiver, *},
};

both_databases!(a_test_event_goes_to_one_webhook_only, a_re_send_from_a_deactivated_webhook_reactivates_it);

/// Calls a server function as the admin app does: form-encoded, signed in, from its own origin.
async fn rpc(app: &TestApp, cookie: &str, name: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(&format!("/rpc/{name}")))
        .header(COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .expect("server function");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn a_test_event_goes_to_one_webhook_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let cookie = app.sign_in().await;
    let rx = Receiver::start().await;
    let (one, _) =
        api.webhook(json!({"name": "one", "url": rx.url("/ok"), "event_types": ["orders.*"]})).await;
    // Subscribed to everything, yet not sent another webhook's test event.
    api.webhook(json!({"name": "all", "url": rx.url("/sleep/0"), "event_types": ["*"]})).await;
    let (status, delivery) = rpc(&app, &cookie, "send_test_event", &[("id", &one)]).await;
    assert_eq!(status, 200, "{delivery}");
    let got =
        eventually("the test event", Duration::from_secs(10), || async { rx.received_at("/ok").pop() }).await;
    assert_eq!(got.header("x-herald-event-type"), "herald.test");
    assert_eq!(got.header("x-herald-delivery-id"), delivery.as_str().unwrap());
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["webhook_id"], one.as_str());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.received_at("/sleep/0").is_empty(), "the other webhook got nothing");
    let row = api.get(&format!("/deliveries/{}", delivery.as_str().unwrap())).await;
    assert_eq!(
        (row["event_type"].as_str(), row["status"].as_str()),
        (Some("herald.test"), Some("succeeded"))
    );

    // A stopped webhook is refused, with the reason.
    api.call(reqwest::Method::PATCH, &format!("/webhooks/{one}"), Some(json!({"enabled": false}))).await;
    let (status, error) = rpc(&app, &cookie, "send_test_event", &[("id", &one)]).await;
    assert_ne!(status, 200);
    assert!(error.to_string().contains("not active"), "{error}");
    app.stop().await;
}

async fn a_re_send_from_a_deactivated_webhook_reactivates_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let cookie = app.sign_in().await;
    let rx = Receiver::start().await;
    rx.set_down(true);
    let (id, _) = api
        .webhook(json!({"name": "crm", "url": rx.url("/switch"), "event_types": ["lead.*"], "retry_schedule": [0]}))
        .await;
    api.event("lead.created", json!({"n": 0})).await;
    eventually("deactivated", Duration::from_secs(10), || async {
        (api.get(&format!("/webhooks/{id}")).await["state"] == "too_many_errors").then_some(())
    })
    .await;
    api.event("lead.created", json!({"n": 1})).await; // held
    let rows = api.deliveries_of(&id).await;
    let failed = rows.iter().find(|d| d["status"] == "failed").expect("the failed delivery")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(rows.iter().any(|d| d["status"] == "held"), "{rows:?}");

    // The delivery page's data says what reactivation would send besides this one.
    let (status, detail) = rpc(&app, &cookie, "get_delivery", &[("id", &failed)]).await;
    assert_eq!(status, 200);
    let r = &detail["reactivation"];
    assert_eq!(
        (r["state"].as_str(), r["held"].as_u64(), r["failed"].as_u64()),
        (Some("too_many_errors"), Some(1), Some(0)),
        "{detail}"
    );

    rx.set_down(false);
    let (status, others) =
        rpc(&app, &cookie, "reactivate_and_resend", &[("id", &failed), ("recover", "true")]).await;
    assert_eq!((status, others), (200, json!(1)), "one other delivery queued besides this one");
    eventually("both delivered", Duration::from_secs(10), || async {
        api.deliveries_of(&id).await.iter().all(|d| d["status"] == "succeeded").then_some(())
    })
    .await;
    assert_eq!(api.get(&format!("/webhooks/{id}")).await["state"], "active");
    let (_, detail) = rpc(&app, &cookie, "get_delivery", &[("id", &failed)]).await;
    assert!(detail["reactivation"].is_null(), "an active webhook needs no reactivation: {detail}");
    app.stop().await;
}
