//! The admin app's actions as its browser calls them (server functions with a session): a test
//! event for one webhook, and a re-send from a delivery whose webhook was deactivated, which
//! reactivates it and says what recovery sends besides.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    both_databases,
    common::{receiver::Receiver, *},
};

both_databases!(
    a_test_event_goes_to_one_webhook_only,
    a_re_send_from_a_deactivated_webhook_reactivates_it,
    the_log_counts_what_its_filters_match_and_shows_where_each_delivery_went,
    the_webhook_form_keeps_header_values_it_cannot_show_and_deletes,
    admins_manage_users_from_settings_without_locking_herald_out,
);

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

async fn the_log_counts_what_its_filters_match_and_shows_where_each_delivery_went(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let cookie = app.sign_in().await;
    let rx = Receiver::start().await;
    let (orders, _) =
        api.webhook(json!({"name": "orders", "url": rx.url("/ok"), "event_types": ["orders.*"]})).await;
    let (all, _) = api.webhook(json!({"name": "all", "url": rx.url("/ok"), "event_types": ["*"]})).await;
    for n in 0..3 {
        api.event("orders.placed", json!({"n": n})).await;
    }
    api.event("users.created", json!({})).await;
    eventually("all 7 delivered", Duration::from_secs(10), || async {
        (rx.received_at("/ok").len() == 7).then_some(())
    })
    .await;
    // A slot is free once the response is in; the attempt is recorded just after.
    eventually("all 7 recorded", Duration::from_secs(10), || async {
        let mut rows = api.deliveries_of(&orders).await;
        rows.extend(api.deliveries_of(&all).await);
        (rows.len() == 7 && rows.iter().all(|r| r["status"] == "succeeded")).then_some(())
    })
    .await;

    let count = |form: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, &cookie);
        async move {
            // An empty search, so that an empty view still sends its `query`.
            let mut form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("query[q]", ""));
            let (status, answer) = rpc(app, cookie, "list_deliveries", &form).await;
            assert_eq!(status, 200, "{answer}");
            let total = &answer["total"];
            (total["count"].as_u64().unwrap(), total["more"].as_bool().unwrap())
        }
    };
    assert_eq!(count(vec![]).await, (7, false));
    assert_eq!(count(vec![("query[webhook_id]", orders.clone())]).await, (3, false));
    assert_eq!(count(vec![("query[webhook_id]", all.clone())]).await, (4, false));
    // The category box ignores case, like search.
    assert_eq!(count(vec![("query[category]", "ORDERS".into())]).await, (6, false));
    assert_eq!(
        count(vec![("query[category]", "Users".into()), ("query[webhook_id]", all.clone())]).await,
        (1, false)
    );
    assert_eq!(count(vec![("query[category]", "nothing".into())]).await, (0, false));
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(count(vec![("query[since]", future)]).await, (0, false));
    // Beyond the cap the count stops and says there are more (checked with a small cap).
    let db = app.db.clone();
    let query = app::models::DeliveryQuery::default();
    assert_eq!(app::db::deliveries::count(&db, &query, 5).await.unwrap(), (5, true));
    assert_eq!(app::db::deliveries::count(&db, &query, 7).await.unwrap(), (7, false));

    // The log shows the URL each delivery was sent to, also after the webhook's URL changed.
    api.call(reqwest::Method::PATCH, &format!("/webhooks/{orders}"), Some(json!({"url": rx.url("/moved")})))
        .await;
    let rows = api.deliveries_of(&orders).await;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row["attempted_url"], rx.url("/ok"), "{row}");
        assert_eq!(row["webhook_url"], rx.url("/moved"), "{row}");
    }
    // The dashboard's charts: 12 five-minute steps over the hour, 24 hourly ones over the day;
    // the last step holds these attempts, for all webhooks or one.
    let (status, hour) = rpc(&app, &cookie, "get_timeline", &[("day", "false")]).await;
    assert_eq!(status, 200, "{hour}");
    let buckets = hour["buckets"].as_array().unwrap();
    assert_eq!((buckets.len(), hour["step_minutes"].as_u64()), (12, Some(5)));
    let last = &buckets[11];
    assert_eq!((last["attempts"].as_u64(), last["successes"].as_u64()), (Some(7), Some(7)), "{last}");
    assert!(last["p50_ms"].as_i64().is_some() && buckets[0]["p50_ms"].is_null(), "{hour}");
    let (_, day) = rpc(&app, &cookie, "get_timeline", &[("day", "true"), ("webhook_id", &orders)]).await;
    let buckets = day["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24);
    assert_eq!(buckets[23]["attempts"].as_u64(), Some(3), "{day}");
    let (status, choices) = rpc(&app, &cookie, "log_choices", &[]).await;
    assert_eq!(status, 200, "{choices}");
    assert_eq!(choices["event_types"], json!(["orders.placed", "users.created"]));
    assert_eq!(choices["webhooks"].as_array().map(Vec::len), Some(2), "{choices}");
    app.stop().await;
}

async fn the_webhook_form_keeps_header_values_it_cannot_show_and_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let cookie = app.sign_in().await;
    let rx = Receiver::start().await;
    let (id, _) = api
        .webhook(json!({"name": "crm", "url": rx.url("/ok"), "event_types": ["*"], "headers": {"X-Tenant": "acme", "X-Old": "1"}}))
        .await;
    // The form sends the header it shows (value left empty: kept), drops one and adds one.
    let (status, saved) = rpc(
        &app,
        &cookie,
        "update_webhook",
        &[("id", &id), ("patch[headers][X-Tenant]", ""), ("patch[headers][X-New]", "2")],
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["header_names"], json!(["X-New", "X-Tenant"]));
    let (status, _) = rpc(&app, &cookie, "send_test_event", &[("id", &id)]).await;
    assert_eq!(status, 200);
    let got =
        eventually("the test event", Duration::from_secs(10), || async { rx.received_at("/ok").pop() }).await;
    assert_eq!((got.header("x-tenant"), got.header("x-new"), got.header("x-old")), ("acme", "2", ""));

    let (status, _) = rpc(&app, &cookie, "delete_webhook", &[("id", &id)]).await;
    assert_eq!(status, 200);
    let res = api
        .client
        .get(app.url(&format!("/api/v1/webhooks/{id}")))
        .bearer_auth(&api.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let (status, answer) = rpc(&app, &cookie, "delete_webhook", &[("id", &id)]).await;
    assert_eq!(status, 404, "{answer}");
    app.stop().await;
}

async fn admins_manage_users_from_settings_without_locking_herald_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.sign_in().await;
    let (status, password) =
        rpc(&app, &admin, "create_user", &[("email", " Viewer@Example.test "), ("role", "viewer")]).await;
    assert_eq!(status, 200, "{password}");
    let password = password.as_str().unwrap().to_owned();
    let viewer = app.sign_in_as("viewer@example.test", &password).await.expect("the new user signs in");
    let (status, _) = rpc(&app, &viewer, "list_deliveries", &[("query[q]", "")]).await;
    assert_eq!(status, 200, "a viewer reads the log");
    let (status, _) =
        rpc(&app, &viewer, "create_user", &[("email", "x@example.test"), ("role", "admin")]).await;
    assert_eq!(status, 403, "a viewer manages no users");
    let (status, answer) =
        rpc(&app, &admin, "create_user", &[("email", "viewer@example.test"), ("role", "admin")]).await;
    assert_eq!(status, 422, "the same email twice: {answer}");
    assert!(answer.to_string().contains("already exists"), "{answer}");

    let users = app::db::users::list(&app.db).await.unwrap();
    let id_of = |email: &str| users.iter().find(|u| u.email == email).unwrap().id.to_string();
    let (viewer_id, admin_id) = (id_of("viewer@example.test"), id_of(ADMIN_EMAIL));
    // Not on yourself: another admin must do it.
    let (status, answer) = rpc(&app, &admin, "set_user_role", &[("id", &admin_id), ("role", "viewer")]).await;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) =
        rpc(&app, &admin, "set_user_disabled", &[("id", &admin_id), ("disabled", "true")]).await;
    assert_eq!(status, 409, "{answer}");
    // Disabling ends the user's sessions at once; enabling lets them sign in again.
    let (status, row) =
        rpc(&app, &admin, "set_user_disabled", &[("id", &viewer_id), ("disabled", "true")]).await;
    assert_eq!((status, row["disabled"].as_bool()), (200, Some(true)), "{row}");
    let (status, _) = rpc(&app, &viewer, "list_deliveries", &[("query[q]", "")]).await;
    assert_eq!(status, 401, "the disabled user's session ended");
    assert!(app.sign_in_as("viewer@example.test", &password).await.is_none(), "nor can they sign in");
    let (status, _) =
        rpc(&app, &admin, "set_user_disabled", &[("id", &viewer_id), ("disabled", "false")]).await;
    assert_eq!(status, 200);
    let (status, row) = rpc(&app, &admin, "set_user_role", &[("id", &viewer_id), ("role", "admin")]).await;
    assert_eq!((status, row["role"].as_str()), (200, Some("admin")), "{row}");
    let viewer = app.sign_in_as("viewer@example.test", &password).await.expect("enabled again");
    let (status, _) =
        rpc(&app, &viewer, "create_user", &[("email", "third@example.test"), ("role", "api_user")]).await;
    assert_eq!(status, 200, "now an admin");

    // Herald keeps an active admin: demoting the last one is refused whoever asks.
    let (status, _) = rpc(&app, &viewer, "set_user_role", &[("id", &admin_id), ("role", "viewer")]).await;
    assert_eq!(status, 200, "two admins: one may step down");
    let acting = app::models::CurrentUser {
        id: app::models::UserId(uuid::Uuid::now_v7()),
        email: "someone@example.test".into(),
        role: app::models::Role::Admin,
    };
    let last = users.iter().find(|u| u.email == "viewer@example.test").unwrap().id;
    let refused =
        app::db::users::change(&app.db, last, app::db::users::UserChange::Disabled(true), &acting).await;
    assert!(matches!(refused, Err(app::db::users::UserChangeError::LastAdmin)), "{refused:?}");

    // Each change is in the activity log, with who made it.
    let log = app::db::activity::list(&app.db, Some("user."), None, 50).await.unwrap().items;
    let kinds: Vec<(&str, Option<&str>)> =
        log.iter().map(|a| (a.kind.as_str(), a.actor.as_deref())).collect();
    let by_admin = Some("user admin@example.test");
    for expected in [
        ("user.created", by_admin),
        ("user.disabled", by_admin),
        ("user.enabled", by_admin),
        ("user.role_changed", by_admin),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    app.stop().await;
}
