//! Flow control per webhook: a rate limit that holds across processes, measured at a real
//! receiver, and the receiver's back-pressure (429 / 503 with `Retry-After`) pausing the whole
//! webhook and nothing else.

use std::time::{Duration, Instant};

use app::db::entities::attempts;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::{
    both_databases,
    common::{process::HeraldProcess, receiver::Receiver, *},
    engine_processes::{all_succeeded, api_for},
};

both_databases!(
    a_rate_limit_holds_across_two_processes,
    retry_after_pauses_the_whole_webhook_and_nothing_else,
    bare_429s_slow_the_webhook_down,
    rate_limits_are_validated,
);

/// The most arrivals in any window of `width` (windows starting at each arrival).
fn busiest<T, D>(times: &[T], width: D) -> usize
where
    T: Copy + PartialOrd + std::ops::Sub<Output = D>,
    D: Copy + PartialOrd,
{
    times
        .iter()
        .map(|start| times.iter().filter(|t| **t >= *start && **t - *start < width).count())
        .max()
        .unwrap_or(0)
}

async fn a_rate_limit_holds_across_two_processes(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let rx = Receiver::start().await;
    let a = HeraldProcess::start(&test_db.url, &[]);
    let b = HeraldProcess::start(&test_db.url, &[]);
    let db = test_db.connect().await;
    let (api_a, api_b) = (api_for(&a, &db).await, api_for(&b, &db).await);
    let (id, _) = api_a
        .webhook(json!({"name": "limited", "url": rx.url("/ok"), "event_types": ["*"], "rate_limit": 20, "rate_limit_burst": 5}))
        .await;
    assert_eq!(api_b.get(&format!("/webhooks/{id}")).await["rate_limit"], 20);
    let posted = Instant::now();
    let posts = (0..200).map(|n| {
        let api = if n % 2 == 0 { api_a.clone() } else { api_b.clone() };
        async move { api.event("order.placed", json!({"n": n})).await }
    });
    futures::future::join_all(posts).await;
    all_succeeded(&db, 200, Duration::from_secs(60)).await;
    let took = posted.elapsed();

    let mut arrivals: Vec<Instant> = rx.received_at("/ok").iter().map(|r| r.at).collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 200, "every event arrived, once");
    // 20/s with a burst of 5: at most 5 + 2 in any 100 ms, 5 + 20 in any second, and 200 take
    // at least (200 - 5) / 20 = 9.75 s as sent. Measured at the receiver, a request delayed on
    // the way (two Herald processes, the database and the receiver share two cores) lets one or
    // two more into a window: 2 of slack there, 1 as sent. Without the limit, all 200 arrive within a second.
    let (per_100ms, per_second) =
        (busiest(&arrivals, Duration::from_millis(100)), busiest(&arrivals, Duration::from_secs(1)));
    let spread = *arrivals.last().unwrap() - arrivals[0];
    // As sent: the attempts' start times, taken as each request goes out.
    let sent: Vec<_> =
        attempts::Entity::find().all(&db).await.unwrap().into_iter().map(|a| a.started_at).collect();
    let ms = chrono::Duration::milliseconds;
    let (sent_100ms, sent_second) = (busiest(&sent, ms(100)), busiest(&sent, ms(1000)));
    println!(
        "200 events at 20/s (burst 5) across two processes: {spread:?} from first to last arrival; at most \
         {per_100ms} in 100 ms and {per_second} in 1 s at the receiver, {sent_100ms} and {sent_second} as sent; \
         all succeeded after {took:?}"
    );
    assert!(sent_100ms <= 8, "at most burst + 2 (+1) sent in any 100 ms: {sent_100ms}");
    assert!(sent_second <= 26, "at most burst + 20 (+1) sent in any second: {sent_second}");
    assert!(per_100ms <= 9, "at most burst + 2 (+2) arrived in any 100 ms: {per_100ms}");
    assert!(per_second <= 27, "at most burst + 20 (+2) arrived in any second: {per_second}");
    assert!(spread >= Duration::from_millis(9_500), "the limit held: {spread:?}");
    assert!(spread <= Duration::from_secs(13), "and the webhook got its rate: {spread:?}");
    drop((a, b));
    db.close().await.ok();
}

async fn retry_after_pauses_the_whole_webhook_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    rx.set_down(true);
    rx.set_down_answer(429, Some("2"));
    let (id, _) =
        api.webhook(json!({"name": "busy", "url": rx.url("/switch"), "event_types": ["order.*"]})).await;
    api.webhook(json!({"name": "other", "url": rx.url("/ok"), "event_types": ["order.*"]})).await;

    api.event("order.placed", json!({"n": 0})).await;
    let refused_at = eventually("the 429", Duration::from_secs(10), || async {
        rx.received_at("/switch").first().map(|r| r.at)
    })
    .await;
    rx.set_down(false);
    let usage = eventually("the pause recorded", Duration::from_secs(5), || async {
        let usage = api.get(&format!("/webhooks/{id}/usage")).await;
        usage["paused_until"].is_string().then_some(usage)
    })
    .await;
    assert!(usage["pause_reason"].as_str().unwrap().contains("429 with Retry-After: 2 s"), "{usage}");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "herald_webhooks_paused 1"), "the pause counted in /metrics");

    // While paused: new events wait for the busy webhook; the other webhook gets them at once.
    for n in 1..=5 {
        api.event("order.placed", json!({"n": n})).await;
    }
    eventually("the other webhook's six", Duration::from_secs(5), || async {
        (rx.received_at("/ok").len() == 6).then_some(())
    })
    .await;
    let other_done = rx.received_at("/ok").iter().map(|r| r.at).max().unwrap();
    assert!(
        other_done - refused_at < Duration::from_millis(1500),
        "not delayed: {:?}",
        other_done - refused_at
    );

    eventually("the busy webhook's six, after the pause", Duration::from_secs(15), || async {
        (rx.received_at("/switch").len() == 7).then_some(())
    })
    .await;
    let after: Vec<Duration> = rx.received_at("/switch")[1..].iter().map(|r| r.at - refused_at).collect();
    println!("after a 429 with Retry-After: 2, the webhook's next requests came {after:?} later");
    assert!(after.iter().all(|d| *d >= Duration::from_millis(1900)), "nothing for 2 s: {after:?}");
    app.stop().await;
}

async fn bare_429s_slow_the_webhook_down(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.retry_schedule = vec![0, 30]).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    rx.set_down(true);
    rx.set_down_answer(429, None);
    api.webhook(json!({"name": "busy", "url": rx.url("/switch"), "event_types": ["order.*"]})).await;
    api.event("order.placed", json!({"n": 0})).await;
    let first = eventually("the first 429", Duration::from_secs(10), || async {
        rx.received_at("/switch").first().map(|r| r.at)
    })
    .await;
    // Each event's first attempt waits out the pause: 1 s after the first 429, then 2 s after
    // the second.
    api.event("order.placed", json!({"n": 1})).await;
    api.event("order.placed", json!({"n": 2})).await;
    eventually("three 429s", Duration::from_secs(10), || async {
        (rx.received_at("/switch").len() == 3).then_some(())
    })
    .await;
    let at: Vec<Duration> = rx.received_at("/switch").iter().map(|r| r.at - first).collect();
    println!("429s without Retry-After arrived at {at:?}");
    assert!(at[1] >= Duration::from_millis(950) && at[1] < Duration::from_millis(1800), "{at:?}");
    assert!(at[2] - at[1] >= Duration::from_millis(1950), "the second pause is longer: {at:?}");
    app.stop().await;
}

async fn rate_limits_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let base = json!({"name": "x", "url": "https://example.com/h", "event_types": ["*"]});
    for (field, value) in
        [("rate_limit", json!(0)), ("rate_limit", json!(10001)), ("rate_limit_burst", json!(0))]
    {
        let mut body = base.clone();
        body[field] = value.clone();
        let (status, problem) = api.call(reqwest::Method::POST, "/webhooks", Some(body)).await;
        assert_eq!(status, 422, "{field}={value}: {problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let mut body = base.clone();
    body["rate_limit"] = json!(50);
    let (id, _) = api.webhook(body).await;
    let shown = api.get(&format!("/webhooks/{id}")).await;
    assert_eq!((shown["rate_limit"].clone(), shown["rate_limit_burst"].clone()), (json!(50), json!(null)));
    let (status, patched) =
        api.call(reqwest::Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"rate_limit": null}))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["rate_limit"], json!(null), "null returns it to the default");
    app.stop().await;
}
