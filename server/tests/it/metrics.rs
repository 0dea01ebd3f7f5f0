//! `GET /metrics`: the counters and histograms move by exactly what Herald did, the database
//! figures (queue, oldest due delivery, webhooks by state) follow the database, and the
//! endpoint can be switched off or put behind a token.

use std::{collections::BTreeMap, time::Duration};

use reqwest::Method;
use serde_json::json;

use crate::{
    both_databases,
    common::{receiver::Receiver, *},
};

both_databases!(
    counters_and_histograms_move_by_exactly_what_happened,
    queue_depth_and_the_oldest_due_delivery_follow_a_backlog,
    metrics_can_be_switched_off_or_put_behind_a_token,
);

const WAIT: Duration = Duration::from_secs(20);

/// One scrape: every sample, by name and labels.
struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    async fn of(app: &TestApp) -> Scrape {
        let res = app.client.get(app.url("/metrics")).send().await.expect("scrape");
        assert_eq!(res.status(), 200);
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        Scrape::parse(&res.text().await.unwrap())
    }

    fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number in {line}"));
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => {
                        let labels = rest
                            .trim_end_matches('}')
                            .split("\",")
                            .filter(|p| !p.is_empty())
                            .map(|pair| {
                                let (k, v) = pair.split_once('=').expect("label=value");
                                (k.to_owned(), v.trim_matches('"').to_owned())
                            })
                            .collect();
                        (name.to_owned(), labels)
                    }
                    None => (series.to_owned(), BTreeMap::new()),
                };
                (name, labels, value)
            })
            .collect();
        Scrape(samples)
    }

    /// The sum of the samples named `name` whose labels include `labels` (0 when none).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
}

async fn counters_and_histograms_move_by_exactly_what_happened(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.retry_schedule = vec![0]).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    rx.set_down(true);
    let (ok, _) =
        api.webhook(json!({"name": "shop", "url": rx.url("/ok"), "event_types": ["order.*"]})).await;
    let (down, _) =
        api.webhook(json!({"name": "billing", "url": rx.url("/switch"), "event_types": ["invoice.*"]})).await;

    let before = Scrape::of(&app).await;
    assert_eq!(before.get("herald_deliveries_total", &[]), 0.0);
    assert_eq!(before.get("herald_events_accepted_total", &[]), 0.0);
    assert_eq!(before.get("herald_webhooks", &[("state", "active")]), 2.0);

    for n in 0..3 {
        api.event("order.placed", json!({"n": n})).await;
    }
    api.event("invoice.paid", json!({"n": 1})).await;
    // One attempt only (schedule [0]): the failing webhook's delivery fails and deactivates it.
    eventually("the failing webhook deactivated", WAIT, || async {
        (api.get(&format!("/webhooks/{down}")).await["state"] == "too_many_errors").then_some(())
    })
    .await;
    eventually("three successes", WAIT, || async {
        let rows = api.deliveries_of(&ok).await;
        (rows.iter().filter(|d| d["status"] == "succeeded").count() == 3).then_some(())
    })
    .await;
    // Held: the webhook is not active.
    api.event("invoice.paid", json!({"n": 2})).await;

    // Refused, by reason; and a duplicate, which is not a new event.
    let (status, _) = api.call(Method::POST, "/events", Some(json!({"type": "", "payload": {}}))).await;
    assert_eq!(status, 422);
    let res =
        app.client.post(app.url("/api/v1/events")).json(&json!({"type": "a.b", "payload": {}})).send().await;
    assert_eq!(res.unwrap().status(), 401);
    let res = app
        .client
        .post(app.url("/api/v1/events"))
        .header("authorization", format!("Bearer {}", api.key))
        .body("type=a.b")
        .send()
        .await;
    assert_eq!(res.unwrap().status(), 415);
    let keyed = json!({"type": "order.placed", "payload": {"n": 9}, "idempotency_key": "k-1"});
    api.post("/events", keyed.clone()).await;
    api.post("/events", keyed).await;
    eventually("the keyed event delivered", WAIT, || async {
        let rows = api.deliveries_of(&ok).await;
        (rows.iter().filter(|d| d["status"] == "succeeded").count() == 4).then_some(())
    })
    .await;

    let m = eventually("the database figures", WAIT, || async {
        let m = Scrape::of(&app).await;
        (m.get("herald_queue_deliveries", &[("status", "held")]) == 1.0
            && m.get("herald_deliveries_total", &[]) == 5.0)
            .then_some(m)
    })
    .await;
    let automatic =
        |outcome| m.get("herald_deliveries_total", &[("outcome", outcome), ("trigger", "automatic")]);
    assert_eq!(automatic("success"), 4.0);
    assert_eq!(automatic("server_error"), 1.0);
    assert_eq!(m.get("herald_deliveries_failed_total", &[]), 1.0);
    assert_eq!(m.get("herald_webhooks_deactivated_total", &[]), 1.0);
    assert_eq!(m.get("herald_attempt_duration_seconds_count", &[]), 5.0);
    assert_eq!(m.get("herald_delivery_delay_seconds_count", &[]), 4.0, "one per 2xx");
    // Each success arrived within the 20 s this test waits, so within the 30 s bucket.
    assert_eq!(m.get("herald_delivery_delay_seconds_bucket", &[("le", "30")]), 4.0);
    assert_eq!(m.get("herald_events_accepted_total", &[]), 6.0);
    assert_eq!(m.get("herald_events_duplicate_total", &[]), 1.0);
    assert_eq!(m.get("herald_events_refused_total", &[("reason", "invalid")]), 1.0);
    assert_eq!(m.get("herald_events_refused_total", &[("reason", "unauthorized")]), 1.0);
    assert_eq!(m.get("herald_events_refused_total", &[("reason", "unsupported-media-type")]), 1.0);
    assert_eq!(m.get("herald_events_refused_total", &[]), 3.0);
    assert_eq!(m.get("herald_webhooks", &[("state", "active")]), 1.0);
    assert_eq!(m.get("herald_webhooks", &[("state", "too_many_errors")]), 1.0);
    assert_eq!(m.get("herald_queue_deliveries", &[("status", "pending")]), 0.0);
    assert_eq!(m.get("herald_queue_oldest_due_age_seconds", &[]), 0.0);
    assert_eq!(m.get("herald_requests_in_flight", &[]), 0.0);
    assert_eq!(m.get("herald_webhook_attempts_total", &[("webhook_id", &ok)]), 4.0);
    assert_eq!(m.get("herald_webhook_attempt_errors_total", &[("webhook_id", &ok)]), 0.0);
    assert_eq!(m.get("herald_webhook_attempts_total", &[("webhook_id", &down)]), 1.0);
    assert_eq!(m.get("herald_webhook_consecutive_errors", &[("webhook_id", &down)]), 1.0);
    assert_eq!(m.get("herald_metrics_database_read_ok", &[]), 1.0);
    assert!(m.get("herald_claim_duration_seconds_count", &[]) >= 1.0);
    assert!(m.get("herald_record_batch_size_sum", &[]) == 5.0, "every attempt recorded once");
    assert!(m.get("herald_db_pool_max_connections", &[]) == 5.0);

    // A person's re-send counts as manual.
    let failed = api.deliveries_of(&down).await;
    let failed = failed.iter().find(|d| d["status"] == "failed").unwrap()["id"].as_str().unwrap().to_owned();
    api.post(&format!("/webhooks/{down}/reactivate"), json!({})).await;
    rx.set_down(false);
    let (status, _) = api.call(Method::POST, &format!("/deliveries/{failed}/retry"), None).await;
    assert_eq!(status, 202);
    let m = eventually("the manual re-send counted", WAIT, || async {
        let m = Scrape::of(&app).await;
        (m.get("herald_deliveries_total", &[]) == 6.0).then_some(m)
    })
    .await;
    assert_eq!(m.get("herald_deliveries_total", &[("outcome", "success"), ("trigger", "manual")]), 1.0);
    assert_eq!(m.get("herald_delivery_delay_seconds_count", &[]), 5.0);
    app.stop().await;
}

async fn queue_depth_and_the_oldest_due_delivery_follow_a_backlog(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.webhook_concurrency = 1).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    api.webhook(json!({"name": "slow", "url": rx.url("/hang"), "event_types": ["order.*"]})).await;
    for n in 0..4 {
        api.event("order.placed", json!({"n": n})).await;
    }
    // One request hangs (one at a time to this webhook); the other three wait, due, their age
    // growing: what an operator's "queue is stuck" alert watches.
    let m = eventually("a backlog older than a second", WAIT, || async {
        let m = Scrape::of(&app).await;
        (m.get("herald_queue_oldest_due_age_seconds", &[]) >= 1.0).then_some(m)
    })
    .await;
    assert_eq!(rx.hanging().0, 1);
    assert_eq!(m.get("herald_requests_in_flight", &[]), 1.0);
    assert_eq!(
        m.get("herald_queue_deliveries", &[("status", "pending")]),
        4.0,
        "the one in flight is still pending"
    );
    assert!(m.get("herald_queue_oldest_due_age_seconds", &[]) < 30.0);

    rx.release_hung();
    let m = eventually("the backlog drained", WAIT, || async {
        let m = Scrape::of(&app).await;
        (m.get("herald_queue_deliveries", &[("status", "pending")]) == 0.0).then_some(m)
    })
    .await;
    assert_eq!(m.get("herald_queue_oldest_due_age_seconds", &[]), 0.0);
    assert_eq!(m.get("herald_deliveries_total", &[("outcome", "success")]), 4.0);
    assert_eq!(m.get("herald_requests_in_flight", &[]), 0.0);
    app.stop().await;
}

async fn metrics_can_be_switched_off_or_put_behind_a_token(backend: Backend) {
    let off = TestApp::spawn_with(backend, |c| c.metrics = "off".into()).await;
    let res = off.client.get(off.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404, "off means off, not a sign-in page");
    assert!(res.text().await.unwrap().contains("HERALD_METRICS=off"));
    off.stop().await;

    let token = "s3cret-token-for-prometheus";
    let guarded = TestApp::spawn_with(backend, |c| c.metrics_token = Some(token.into())).await;
    let scrape = |auth: Option<String>| {
        let mut req = guarded.client.get(guarded.url("/metrics"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send()
    };
    let res = scrape(None).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"herald-metrics\"");
    assert_eq!(scrape(Some("Bearer wrong-token-of-the-same-len".into())).await.unwrap().status(), 401);
    // An API key is not the metrics token.
    let api = guarded.api().await;
    assert_eq!(scrape(Some(format!("Bearer {}", api.key))).await.unwrap().status(), 401);
    let res = scrape(Some(format!("bearer {token}"))).await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("# TYPE herald_deliveries_total counter"), "{text}");
    assert!(text.contains("process_resident_memory_bytes"), "process figures are there too");
    guarded.stop().await;
}
