//! The delivery engine against a real local receiver: outcomes, signatures, retries,
//! deactivation and recovery, re-sends, isolation and the SSRF guard.

use std::time::Duration;

use app::db::entities::{attempts, email_outbox};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

use crate::{
    both_databases,
    common::{receiver::Receiver, *},
};

both_databases!(
    every_outcome_is_classified_and_recorded,
    signatures_verify_with_the_standard_webhooks_library,
    failing_webhook_retries_on_schedule_then_is_deactivated_and_recovered,
    gone_deactivates_at_once,
    retry_after_and_quick_retries_set_the_next_attempt,
    resend_one_and_bulk_resend_by_filter,
    a_bulk_resend_counts_every_delivery_once_while_they_go_out,
    a_hanging_webhook_does_not_delay_the_others,
    failing_webhooks_are_probed_one_request_at_a_time,
    the_ssrf_guard_refuses_private_destinations,
    shutdown_finishes_in_flight_requests_and_releases_the_rest,
);

const WAIT: Duration = Duration::from_secs(20);

/// Waits until every delivery of the webhook has left `pending`/`retrying`; returns them.
async fn settled(api: &Api, webhook_id: &str, expected: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows = api.deliveries_of(webhook_id).await;
        let done = rows.len() == expected
            && rows.iter().all(|d| !matches!(d["status"].as_str(), Some("pending" | "retrying")));
        if done {
            return rows;
        }
        let shown: Vec<_> = rows.iter().map(|d| (d["event_type"].clone(), d["status"].clone())).collect();
        assert!(
            tokio::time::Instant::now() < deadline,
            "{expected} deliveries of {webhook_id} did not settle within {WAIT:?}: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn detail(api: &Api, delivery: &Value) -> Value {
    api.get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap())).await
}

async fn every_outcome_is_classified_and_recorded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.retry_schedule = vec![0];
        c.response_body_max_bytes = 1024;
    })
    .await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let cases = [
        ("ok", rx.url("/ok"), "success", Some(200)),
        ("server", rx.url("/status/500"), "server_error", Some(500)),
        ("client", rx.url("/status/404"), "client_error", Some(404)),
        ("redirect", rx.url("/redirect"), "redirect", Some(302)),
        ("slow", rx.url("/sleep/3000"), "timeout", None),
        ("hangup", format!("http://{}/", rx.hangup_addr), "connect_error", None),
        ("refused", "http://127.0.0.1:9/".to_owned(), "connect_error", None),
        ("tls", format!("https://{}/ok", rx.addr), "tls_error", None),
        ("big", rx.url("/big/5000"), "success", Some(200)),
    ];
    let mut ids = Vec::new();
    for (name, url, _, _) in &cases {
        let (id, _) = api
            .webhook(json!({"name": name, "url": url, "event_types": [format!("case.{name}")], "timeout_ms": 1000}))
            .await;
        api.event(&format!("case.{name}"), json!({"case": name})).await;
        ids.push(id);
    }
    for ((name, url, outcome, code), id) in cases.iter().zip(&ids) {
        let rows = settled(&api, id, 1).await;
        let d = &rows[0];
        assert_eq!(d["last_outcome"], *outcome, "{name}: {d}");
        assert_eq!(d["last_response_code"].as_i64(), code.map(i64::from), "{name}");
        assert_eq!(d["status"], if *outcome == "success" { "succeeded" } else { "failed" }, "{name}");
        let detail = detail(&api, d).await;
        let attempt = &detail["attempts"][0];
        assert_eq!(attempt["request"]["url"], *url);
        assert_eq!(attempt["request"]["method"], "POST");
        assert_eq!(attempt["request"]["body"], json!({"case": name}).to_string());
        assert!(attempt["request"]["headers"]["webhook-signature"].as_str().unwrap().starts_with("v1,"));
        assert_eq!(attempt["trigger"], "automatic");
        if *name == "slow" {
            let ms = attempt["duration_ms"].as_i64().unwrap();
            assert!((900..2900).contains(&ms), "the 1 s timeout is enforced: {ms} ms");
        }
        if code.is_none() {
            assert!(attempt["response"].is_null(), "{name}");
            assert!(!attempt["error"].as_str().unwrap_or_default().is_empty(), "{name} says why");
        }
    }
    let server = detail(&api, &settled(&api, &ids[1], 1).await[0]).await;
    let response = &server["attempts"][0]["response"];
    assert_eq!(response["body"], r#"{"error":"answered 500 on purpose"}"#);
    assert_eq!(response["headers"]["content-type"], "application/json");
    let big = detail(&api, &settled(&api, &ids[8], 1).await[0]).await;
    let response = &big["attempts"][0]["response"];
    assert_eq!(response["body"].as_str().unwrap().len(), 1024, "capped at HERALD_RESPONSE_BODY_MAX_BYTES");
    assert_eq!(response["body_truncated"], true);
    assert_eq!(rx.received_at("/ok").len(), 1, "only the `ok` case; the redirect was not followed");
    let usage = api.get(&format!("/webhooks/{}/usage", ids[1])).await;
    assert_eq!((usage["total_calls"].as_i64(), usage["total_errors"].as_i64()), (Some(1), Some(1)));
    assert!(usage["last_error"].as_str().unwrap().contains("500"), "{usage}");
    app.stop().await;
}

async fn signatures_verify_with_the_standard_webhooks_library(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (id, secret) = api
        .webhook(json!({
            "name": "signed", "url": rx.url("/ok"), "event_types": ["order.*"],
            "auth": {"type": "basic", "username": "herald", "password": "pa55-word"},
            "headers": {"X-Tenant": "acme"}
        }))
        .await;
    let event_id =
        api.event_raw(r#"{"type": "order.placed", "payload": {"total": 12.5, "items": ["a", "b"]}}"#).await;
    settled(&api, &id, 1).await;
    let got = rx.received_at("/ok").pop().unwrap();
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    verifier.verify(&got.body, &got.headers).expect("signature verifies with the reference library");
    assert_eq!(got.header("webhook-id"), event_id);
    assert_eq!(got.header("x-webhook-signature"), got.header("webhook-signature"));
    assert_eq!(got.header("authorization"), "Basic aGVyYWxkOnBhNTUtd29yZA==");
    assert_eq!(got.header("x-tenant"), "acme");
    assert!(got.header("user-agent").starts_with("Herald/"), "{}", got.header("user-agent"));
    assert_eq!(got.body.as_ref(), br#"{"total": 12.5, "items": ["a", "b"]}"#, "the payload byte for byte");
    let tampered = standardwebhooks::Webhook::new(&secret).unwrap().verify(b"{}", &got.headers);
    assert!(tampered.is_err(), "a changed body does not verify");

    // The attempt log shows the signature but not the credentials.
    let d = detail(&api, &api.deliveries_of(&id).await[0]).await;
    let headers = &d["attempts"][0]["request"]["headers"];
    assert_eq!(headers["authorization"], "***");
    assert_eq!(headers["x-tenant"], "***");
    assert_eq!(headers["webhook-signature"], got.header("webhook-signature"));

    // During rotation both secrets sign; receivers on either verify.
    let new_secret = api.post(&format!("/webhooks/{id}/rotate-secret"), json!({})).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    api.event("order.placed", json!({"n": 2})).await;
    settled(&api, &id, 2).await;
    let got = rx.received_at("/ok").pop().unwrap();
    assert_eq!(got.header("webhook-signature").split(' ').count(), 2);
    for s in [&secret, &new_secret] {
        standardwebhooks::Webhook::new(s)
            .unwrap()
            .verify(&got.body, &got.headers)
            .expect("both secrets verify");
    }
    app.stop().await;
}

async fn failing_webhook_retries_on_schedule_then_is_deactivated_and_recovered(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.retry_schedule = vec![0, 1, 2]).await;
    app::db::users::create(
        &app.db,
        "integrator@example.test",
        "long enough password",
        app::models::Role::ApiUser,
    )
    .await
    .unwrap();
    let api = app.api().await;
    let rx = Receiver::start().await;
    rx.set_down(true);
    let (failing, _) =
        api.webhook(json!({"name": "billing", "url": rx.url("/switch"), "event_types": ["invoice.*"]})).await;
    let (ops, _) = api
        .webhook(json!({"name": "ops", "url": rx.url("/ok"), "event_types": ["webhook.deactivated"]}))
        .await;
    let first_failure = app::db::now();
    api.event("invoice.paid", json!({"n": 1})).await;

    let rows = settled(&api, &failing, 1).await;
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[0]["attempt_count"], 3);
    let times: Vec<_> = rx.received_at("/switch").iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 3, "one attempt per slot of the schedule 0,1,2");
    let gaps = [(times[1] - times[0]).as_secs_f64(), (times[2] - times[1]).as_secs_f64()];
    assert!(gaps[0] >= 0.85 && gaps[0] < 2.5, "second attempt ~1 s after the first: {gaps:?}");
    assert!(gaps[1] >= 1.75 && gaps[1] < 3.5, "third attempt ~2 s after the second: {gaps:?}");

    let webhook = api.get(&format!("/webhooks/{failing}")).await;
    assert_eq!(webhook["state"], "too_many_errors");
    let usage = api.get(&format!("/webhooks/{failing}/usage")).await;
    assert_eq!((usage["consecutive_errors"].as_i64(), usage["total_errors"].as_i64()), (Some(3), Some(3)));
    assert!(usage["first_failure_at"].is_string());

    // Everyone who integrates is told: an email and an operational event.
    let emails = email_outbox::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].recipient, "integrator@example.test");
    assert!(emails[0].subject.contains("billing") && emails[0].body.contains(&rx.url("/switch")));
    let op =
        eventually("the webhook.deactivated event", WAIT, || async { rx.received_at("/ok").pop() }).await;
    assert_eq!(op.header("x-herald-event-type"), "webhook.deactivated");
    let body: Value = serde_json::from_slice(&op.body).unwrap();
    assert_eq!(body["webhook_id"], failing.as_str());
    assert!(body["reason"].as_str().unwrap().contains("3 scheduled attempts"), "{body}");
    assert_eq!(settled(&api, &ops, 1).await[0]["status"], "succeeded");

    // While deactivated, new events are held, never sent.
    api.event("invoice.paid", json!({"n": 2})).await;
    api.event("invoice.paid", json!({"n": 3})).await;
    let rows = settled(&api, &failing, 3).await;
    assert_eq!(rows.iter().filter(|d| d["status"] == "held").count(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received_at("/switch").len(), 3, "held deliveries are not sent");

    // The receiver is back: reactivate and recover everything since the first failure.
    rx.set_down(false);
    let since = first_failure.to_rfc3339();
    let answer = api.post(&format!("/webhooks/{failing}/reactivate"), json!({"recover_since": since})).await;
    assert_eq!(answer["recovered_deliveries"], 3, "{answer}");
    let rows = settled(&api, &failing, 3).await;
    assert!(rows.iter().all(|d| d["status"] == "succeeded"), "{rows:?}");
    let bodies: Vec<Value> =
        rx.received_at("/switch")[3..].iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    for n in 1..=3 {
        assert!(bodies.contains(&json!({"n": n})), "event {n} recovered: {bodies:?}");
    }
    let usage = api.get(&format!("/webhooks/{failing}/usage")).await;
    assert_eq!(usage["consecutive_errors"], 0);
    assert!(usage["last_success_at"].is_string());
    app.stop().await;
}

async fn gone_deactivates_at_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.retry_schedule = vec![0, 60, 60]).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (id, _) =
        api.webhook(json!({"name": "gone", "url": rx.url("/status/410"), "event_types": ["*"]})).await;
    api.event("user.deleted", json!({})).await;
    // Its own `webhook.deactivated` event (it subscribes to `*`) is held like any other.
    let rows = settled(&api, &id, 2).await;
    let first = rows.iter().find(|d| d["event_type"] == "user.deleted").unwrap();
    assert_eq!((first["status"].as_str(), first["attempt_count"].as_i64()), (Some("failed"), Some(1)));
    let op = rows.iter().find(|d| d["event_type"] == "webhook.deactivated").unwrap();
    assert_eq!(op["status"], "held");
    assert_eq!(api.get(&format!("/webhooks/{id}")).await["state"], "too_many_errors");
    app.stop().await;
}

async fn retry_after_and_quick_retries_set_the_next_attempt(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.retry_schedule = vec![0, 1, 3600];
        c.quick_retries = 2;
        c.quick_retry_delay_secs = 1;
    })
    .await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (limited, _) = api
        .webhook(
            json!({"name": "limited", "url": rx.url("/status/429?retry_after=3"), "event_types": ["a.b"],
                        "retry_schedule": [0, 1]}),
        )
        .await;
    let (flaky, _) =
        api.webhook(json!({"name": "gateway", "url": rx.url("/status/504"), "event_types": ["c.d"]})).await;
    api.event("a.b", json!({})).await;
    api.event("c.d", json!({})).await;

    // 504 is transient: two quick retries 1 s apart, then the schedule's next slot (1 s), then
    // the slot after that is an hour away.
    let row = eventually("four attempts to the 504 webhook", WAIT, || async {
        let rows = api.deliveries_of(&flaky).await;
        (rows[0]["attempt_count"] == 4).then(|| rows[0].clone())
    })
    .await;
    assert_eq!(row["status"], "retrying");
    let next = detail(&api, &row).await["next_attempt_at"].as_str().unwrap().to_owned();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    let wait = (next.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!((3000..4000).contains(&wait), "the next slot is an hour away: {wait} s");

    // 429 with Retry-After: 3 waits 3 s, although quick retries would come after 1 s.
    let times = eventually("two attempts to the 429 webhook", WAIT, || async {
        let got = rx.received_at("/status/429");
        (got.len() >= 2).then(|| got.iter().map(|r| r.at).collect::<Vec<_>>())
    })
    .await;
    let gap = (times[1] - times[0]).as_secs_f64();
    assert!((2.9..6.0).contains(&gap), "Retry-After honoured: {gap} s");
    let _ = limited;
    app.stop().await;
}

async fn resend_one_and_bulk_resend_by_filter(backend: Backend) {
    let (app, api, rx, id) = shop_behind_a_receiver_down(backend, 5).await;
    let rows = settled(&api, &id, 5).await;
    assert!(rows.iter().all(|d| d["status"] == "failed" || d["status"] == "held"), "{rows:?}");
    assert_eq!(api.get(&format!("/webhooks/{id}")).await["state"], "too_many_errors");

    // A deactivated webhook takes no re-sends until it is reactivated.
    let one = rows.iter().find(|d| d["status"] == "failed").unwrap()["id"].as_str().unwrap().to_owned();
    let (status, problem) = api.call(reqwest::Method::POST, &format!("/deliveries/{one}/retry"), None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("deactivated after too many errors"), "{problem}");
    api.post(&format!("/webhooks/{id}/reactivate"), json!({})).await;
    rx.set_down(false);

    let (status, accepted) = api.call(reqwest::Method::POST, &format!("/deliveries/{one}/retry"), None).await;
    assert_eq!(status, 202, "{accepted}");
    let done = eventually("the re-sent delivery", WAIT, || async {
        let d = api.get(&format!("/deliveries/{one}")).await;
        (d["status"] == "succeeded").then_some(d)
    })
    .await;
    let last = done["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["trigger"].as_str(), last["outcome"].as_str()), (Some("manual"), Some("success")));
    let (status, problem) = api.call(reqwest::Method::POST, &format!("/deliveries/{one}/retry"), None).await;
    assert_eq!(status, 409, "a delivery that succeeded is not re-sent");
    assert_eq!(problem["status"], 409);
    let (status, _) =
        api.call(reqwest::Method::POST, "/deliveries/00000000-0000-0000-0000-000000000000/retry", None).await;
    assert_eq!(status, 404);

    // Bulk: count first, then re-send everything failed or held for this webhook.
    let filter = json!({"webhook_id": id, "status": ["failed", "held"]});
    let mut dry = filter.clone();
    dry["dry_run"] = json!(true);
    let counted = api.post("/deliveries/retry", dry).await;
    assert_eq!((counted["matching"].as_u64(), counted["job"].is_null()), (Some(4), true));
    let (status, accepted) = api.call(reqwest::Method::POST, "/deliveries/retry", Some(filter)).await;
    assert_eq!(status, 202, "{accepted}");
    let job_id = accepted["job"]["id"].as_str().unwrap().to_owned();
    let job = eventually("the bulk job to finish", WAIT, || async {
        let job = api.get(&format!("/jobs/{job_id}")).await;
        (job["status"] == "succeeded").then_some(job)
    })
    .await;
    assert_eq!((job["progress_done"].as_i64(), job["progress_total"].as_i64()), (Some(4), Some(4)));
    let rows = settled(&api, &id, 5).await;
    assert!(rows.iter().all(|d| d["status"] == "succeeded"), "{rows:?}");
    let bulk = attempts::Entity::find()
        .filter(attempts::Column::Trigger.eq(app::models::AttemptTrigger::Bulk))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(bulk.len(), 4);
    // The job says what became of what it queued: all four delivered, none failed or waiting.
    let outcome = eventually("the job's outcome", WAIT, || async {
        let job = api.get(&format!("/jobs/{job_id}")).await;
        (job["outcome"]["pending"] == 0).then(|| job["outcome"].clone())
    })
    .await;
    assert_eq!(outcome, json!({"delivered": 4, "failed": 0, "pending": 0}), "{job}");

    let (status, problem) =
        api.call(reqwest::Method::POST, "/deliveries/retry", Some(json!({"status": ["succeeded"]}))).await;
    assert_eq!((status.as_u16(), problem["field"].as_str()), (422, Some("status")));
    app.stop().await;
}

/// The admin app follows a bulk re-send until nothing it queued waits: each delivery must be
/// counted as delivered, failed or waiting at every moment, or the app stops following early
/// with some of them missing (seen: "3 delivered · 0 failed again · 0 waiting" of 5).
async fn a_bulk_resend_counts_every_delivery_once_while_they_go_out(backend: Backend) {
    const QUEUED: u64 = 200;
    let (app, api, rx, id) = shop_behind_a_receiver_down(backend, QUEUED).await;
    settled(&api, &id, QUEUED as usize).await;
    let refused = rx.received_at("/switch").len() as u64;
    api.post(&format!("/webhooks/{id}/reactivate"), json!({})).await;
    rx.set_down(false);

    let accepted =
        api.post("/deliveries/retry", json!({"webhook_id": id, "status": ["failed", "held"]})).await;
    let job_id = accepted["job"]["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut samples, mut midway) = (0, 0);
    loop {
        let job = api.get(&format!("/jobs/{job_id}")).await;
        if job["status"] == "succeeded" {
            let o = &job["outcome"];
            let count = |k: &str| o[k].as_u64().unwrap();
            let (delivered, failed, pending) = (count("delivered"), count("failed"), count("pending"));
            assert_eq!(delivered + failed + pending, QUEUED, "sample {samples}: {o}");
            samples += 1;
            midway += u32::from(delivered > 0 && pending > 0);
            if pending == 0 {
                assert_eq!((delivered, failed), (QUEUED, 0), "{o}");
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the re-send did not finish: {job}");
    }
    eprintln!("{samples} samples of the outcome, {midway} while deliveries were going out");
    assert_eq!(rx.received_at("/switch").len() as u64, refused + QUEUED, "each sent once more");
    app.stop().await;
}

async fn a_hanging_webhook_does_not_delay_the_others(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.webhook_concurrency = 3).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (hung, _) = api
        .webhook(json!({"name": "hangs", "url": rx.url("/hang"), "event_types": ["*"], "timeout_ms": 30000}))
        .await;
    let (healthy, _) =
        api.webhook(json!({"name": "healthy", "url": rx.url("/ok"), "event_types": ["*"]})).await;
    for n in 0..20 {
        api.event("tick.tock", json!({"n": n})).await;
    }
    // Every delivery to the healthy webhook arrives while the other's requests still hang.
    settled(&api, &healthy, 20).await;
    let (hanging, max) = rx.hanging();
    assert_eq!(rx.received_at("/ok").len(), 20);
    assert_eq!(hanging, 3, "the hanging webhook holds its concurrency limit, no more");
    assert_eq!(max, 3, "never more than the per-webhook limit in flight");
    rx.release_hung();
    let rows = settled(&api, &hung, 20).await;
    assert!(rows.iter().all(|d| d["status"] == "succeeded"));
    assert!(rx.hanging().1 <= 3);
    app.stop().await;
}

async fn the_ssrf_guard_refuses_private_destinations(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.destination_allowlist = Vec::new()).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let port = rx.addr.port();
    let urls = [
        format!("http://127.0.0.1:{port}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://[::1]:{port}/ok"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
    ];
    let mut ids = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        let name = format!("internal-{n}");
        ids.push(
            api.webhook(json!({"name": name, "url": url, "event_types": [format!("probe.n{n}")]})).await.0,
        );
        api.event(&format!("probe.n{n}"), json!({})).await;
    }
    for (id, url) in ids.iter().zip(&urls) {
        let rows = settled(&api, id, 1).await;
        assert_eq!(rows[0]["last_outcome"], "blocked", "{url}");
        let d = detail(&api, &rows[0]).await;
        assert!(d["attempts"][0]["error"].as_str().unwrap().contains("HERALD_DESTINATION_ALLOWLIST"), "{d}");
    }
    assert!(rx.received().is_empty(), "nothing reached the receiver");
    app.stop().await;
}

async fn shutdown_finishes_in_flight_requests_and_releases_the_rest(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.shutdown_grace_secs = 1).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let (slow, _) =
        api.webhook(json!({"name": "slow", "url": rx.url("/sleep/600"), "event_types": ["s.s"]})).await;
    let (hung, _) = api
        .webhook(json!({"name": "hung", "url": rx.url("/hang"), "event_types": ["h.h"], "timeout_ms": 30000}))
        .await;
    api.event("s.s", json!({})).await;
    api.event("h.h", json!({})).await;
    eventually("both requests in flight", WAIT, || async {
        (rx.received_at("/sleep/600").len() == 1 && rx.hanging().0 == 1).then_some(())
    })
    .await;
    let mut app = app;
    let db = app.db.clone();
    app.halt().await;
    use app::db::entities::deliveries;
    let rows = deliveries::Entity::find().order_by_asc(deliveries::Column::CreatedAt).all(&db).await.unwrap();
    let of = |w: &str| rows.iter().find(|d| d.webhook_id.to_string() == w).unwrap().clone();
    assert_eq!(of(&slow).status, app::models::DeliveryStatus::Succeeded, "the in-flight request finished");
    let hung = of(&hung);
    assert_eq!(hung.status, app::models::DeliveryStatus::Pending, "unfinished: still to be sent");
    assert!(hung.lease_owner.is_none() && hung.lease_expires_at.is_none(), "its claim was released");
}

/// A webhook whose last attempt failed gets one request at a time until one succeeds: however
/// many webhooks fail (here with requests that hang until their timeout), they hold one of the
/// process's slots each, not their whole limit, and the healthy ones keep theirs.
async fn failing_webhooks_are_probed_one_request_at_a_time(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.webhook_concurrency = 4;
        c.retry_schedule = vec![0, 1, 1, 1, 1, 1];
    })
    .await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    let mut failing = Vec::new();
    for n in 0..3 {
        let body = json!({"name": format!("hangs {n}"), "url": rx.url("/hang"), "event_types": ["tick.*"], "timeout_ms": 1000});
        failing.push(api.webhook(body).await.0);
    }
    let (healthy, _) =
        api.webhook(json!({"name": "healthy", "url": rx.url("/ok"), "event_types": ["tick.*"]})).await;

    // Healthy at first: each hanging webhook fills its limit of 4.
    for n in 0..10 {
        api.event("tick.tock", json!({"n": n})).await;
    }
    eventually("12 hanging requests", WAIT, || async { (rx.hanging().0 == 12).then_some(()) }).await;
    // Their requests time out: they are failing now.
    for id in &failing {
        eventually("the first failure", WAIT, || async {
            let usage = api.get(&format!("/webhooks/{id}/usage")).await;
            (usage["consecutive_errors"].as_i64() > Some(0)).then_some(())
        })
        .await;
    }
    eventually("the first requests to time out", WAIT, || async { (rx.hanging().0 <= 3).then_some(()) })
        .await;
    // From now on, one request each: never more than 3 hang at once, though each has due
    // deliveries for more; and each is still probed (before, a failing webhook could get nothing
    // for seconds, then its whole limit again). The healthy webhook gets every new event at once.
    let before = rx.received_at("/hang").len();
    for n in 10..30 {
        api.event("tick.tock", json!({"n": n})).await;
    }
    let mut most = 0;
    let watch = tokio::time::Instant::now();
    while watch.elapsed() < Duration::from_millis(3000) {
        most = most.max(rx.hanging().0);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(most <= 3, "failing webhooks held {most} requests at once, more than one each");
    let probes = rx.received_at("/hang").len() - before;
    assert!(probes >= 3, "each failing webhook is probed again within 3 s: {probes} requests");
    assert_eq!(settled(&api, &healthy, 30).await.len(), 30);
    app.stop().await;
}
