//! Ordered delivery, as a receiver sees it: every event in the order it was accepted, one at a
//! time, through failures, a kill -9 of the sending process, a blocked line that a person
//! skips or re-sends, and a recovery after deactivation.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::{
    both_databases,
    common::{process::HeraldProcess, receiver::Receiver, *},
    engine_processes::{all_succeeded, api_for},
};

both_databases!(
    an_ordered_webhook_gets_every_event_in_order_through_failures_and_a_kill_9,
    a_failed_delivery_blocks_its_line_until_skipped_or_re_sent,
    ordering_is_switched_on_for_what_is_already_queued,
);

/// The payloads' `n` answered 200, in arrival order, checked against `0..count`: each one once
/// and in order, except that the one just before may come again (at least once: a delivery
/// whose success was not recorded before a crash is sent again). Answers how many repeated.
fn assert_in_order(delivered: &[i64], count: i64) -> usize {
    let (mut expected, mut repeats) = (0, 0);
    for (i, &n) in delivered.iter().enumerate() {
        if n == expected {
            expected += 1;
        } else if n == expected - 1 {
            repeats += 1; // the last one again
        } else {
            panic!("out of order at arrival {i}: got {n}, expected {expected}; arrivals: {delivered:?}");
        }
    }
    assert_eq!(expected, count, "every event arrived: {delivered:?}");
    repeats
}

fn succeeded(rx: &Receiver) -> Vec<i64> {
    rx.flaky_log().into_iter().filter(|(_, status)| *status == 200).map(|(n, _)| n).collect()
}

async fn an_ordered_webhook_gets_every_event_in_order_through_failures_and_a_kill_9(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let rx = Receiver::start().await;
    // Event 100 fails twice (retried after 1 s each time), the third attempt succeeds.
    rx.fail(100, 2);
    let first = HeraldProcess::start(&test_db.url, &[]);
    let db = test_db.connect().await;
    let api = api_for(&first, &db).await;
    let (id, _) = api
        .webhook(json!({"name": "ledger", "url": rx.url("/flaky/5"), "event_types": ["ledger.*"],
                        "ordered": true, "retry_schedule": [0, 1, 1]}))
        .await;
    assert_eq!(api.get(&format!("/webhooks/{id}")).await["ordered"], true);
    // Posted one after another: each is accepted before the next is sent.
    for n in 0..300 {
        api.event("ledger.entry", json!({"n": n})).await;
    }
    eventually("150 delivered", Duration::from_secs(60), || async {
        (succeeded(&rx).len() >= 150).then_some(())
    })
    .await;
    first.kill_9();
    let at_kill = succeeded(&rx).len();
    assert!(at_kill < 300, "killed mid-stream ({at_kill} of 300 delivered)");

    let second = HeraldProcess::start(&test_db.url, &[]);
    let api = api_for(&second, &db).await;
    for n in 300..500 {
        api.event("ledger.entry", json!({"n": n})).await;
    }
    all_succeeded(&db, 500, Duration::from_secs(120)).await;
    let delivered = succeeded(&rx);
    let repeats = assert_in_order(&delivered, 500);
    assert!(repeats <= 1, "at most the delivery in flight at the kill came again: {repeats}");
    // Event 100 failed twice before it succeeded, and nothing behind it went meanwhile.
    let log = rx.flaky_log();
    let first_101 = log.iter().position(|(n, _)| *n == 101).unwrap();
    let tries_100: Vec<u16> = log.iter().filter(|(n, _)| *n == 100).map(|(_, s)| *s).collect();
    assert_eq!(&tries_100[..3], &[500, 500, 200], "event 100: two failures, then success");
    assert!(log[..first_101].iter().filter(|(n, _)| *n == 100).count() >= 3, "101 waited for 100");
    // One request at a time: no two requests to the receiver overlapped.
    let mut arrivals: Vec<_> = rx.received().iter().map(|r| r.at).collect();
    arrivals.sort();
    let closest = arrivals.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(
        closest >= Duration::from_millis(5),
        "a request started only after the previous one ended: {closest:?}"
    );
    println!(
        "ordered: 500 events in order through 2 failures of one and a kill -9 after {at_kill} delivered; \
         {repeats} sent again after the kill; closest arrivals {closest:?} apart"
    );
    drop(second);
    db.close().await.ok();
}

async fn a_failed_delivery_blocks_its_line_until_skipped_or_re_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    // Two attempts each: a delivery that fails both ends failed and deactivates the webhook.
    let (id, _) = api
        .webhook(json!({"name": "ledger", "url": rx.url("/flaky/0"), "event_types": ["ledger.*"],
                        "ordered": true, "retry_schedule": [0, 1]}))
        .await;
    // Another webhook, not ordered, gets the same events: a blocked line never holds it back.
    api.webhook(json!({"name": "audit", "url": rx.url("/ok"), "event_types": ["ledger.*"]})).await;
    let usage = || async { api.get(&format!("/webhooks/{id}/usage")).await };
    let blocked = |n: i64| {
        let (api, id) = (api.clone(), id.clone());
        async move {
            eventually(&format!("the line blocked by {n}"), Duration::from_secs(15), || async {
                let usage = api.get(&format!("/webhooks/{id}/usage")).await;
                let webhook = api.get(&format!("/webhooks/{id}")).await;
                (usage["line_blocked_by"].is_string() && webhook["state"] == "too_many_errors")
                    .then(|| usage["line_blocked_by"].as_str().unwrap().to_owned())
            })
            .await
        }
    };
    let delivery_of = |event: String| {
        let (api, id) = (api.clone(), id.clone());
        async move {
            let all = api.deliveries_of(&id).await;
            let found = all.iter().find(|d| d["event_id"] == event.as_str()).expect("the event's delivery");
            found["id"].as_str().unwrap().to_owned()
        }
    };
    let quiet = || tokio::time::sleep(Duration::from_millis(1500));

    // A: event 2 fails twice; the line is blocked by it. Reactivated without recovery, new
    // events wait behind it, until a person skips it.
    rx.fail(2, 2);
    let mut events = Vec::new();
    for n in 0..3 {
        events.push(api.event("ledger.entry", json!({"n": n})).await);
    }
    let blocker = blocked(2).await;
    assert_eq!(blocker, delivery_of(events[2].clone()).await);
    api.post(&format!("/webhooks/{id}/reactivate"), json!({})).await;
    for n in 3..5 {
        events.push(api.event("ledger.entry", json!({"n": n})).await);
    }
    quiet().await;
    assert_eq!(succeeded(&rx), [0, 1], "nothing behind the failed delivery went");
    assert_eq!(rx.received_at("/ok").len(), 5, "the other webhook got all five meanwhile");
    let u = usage().await;
    assert_eq!(
        (u["line_blocked_by"].as_str(), u["line_waiting"].as_u64()),
        (Some(blocker.as_str()), Some(2))
    );
    // Only the delivery that blocks the line can be skipped, and only in an ordered webhook.
    let other = delivery_of(events[3].clone()).await;
    let (status, problem) = api
        .call(Method::POST, &format!("/webhooks/{id}/line/skip"), Some(json!({"delivery_id": other})))
        .await;
    assert_eq!(status, 409);
    assert!(problem["detail"].as_str().unwrap().contains(&format!("delivery {blocker} does")), "{problem}");
    let skipped = api.post(&format!("/webhooks/{id}/line/skip"), json!({"delivery_id": blocker})).await;
    assert_eq!((skipped["skipped"].as_str(), skipped["waiting"].as_u64()), (Some(blocker.as_str()), Some(2)));
    eventually("3 and 4 after the skip", Duration::from_secs(10), || async {
        (succeeded(&rx) == [0, 1, 3, 4]).then_some(())
    })
    .await;
    let activity = api.get("/activity").await;
    let entry = activity["items"].as_array().unwrap().iter().find(|a| a["kind"] == "delivery.skipped");
    assert!(entry.is_some_and(|a| a["summary"].as_str().unwrap().contains(&blocker)), "{activity}");
    let (status, _) = api
        .call(Method::POST, &format!("/webhooks/{id}/line/skip"), Some(json!({"delivery_id": blocker})))
        .await;
    assert_eq!(status, 409, "a skipped delivery blocks nothing any more");

    // B: event 5 fails twice; reactivated, 6 and 7 wait until 5 is re-sent, then follow it.
    rx.fail(5, 2);
    let five = api.event("ledger.entry", json!({"n": 5})).await;
    let blocker = blocked(5).await;
    api.post(&format!("/webhooks/{id}/reactivate"), json!({})).await;
    for n in 6..8 {
        api.event("ledger.entry", json!({"n": n})).await;
    }
    quiet().await;
    assert_eq!(succeeded(&rx), [0, 1, 3, 4], "6 and 7 wait behind 5");
    assert_eq!(blocker, delivery_of(five).await);
    let (status, _) = api.call(Method::POST, &format!("/deliveries/{blocker}/retry"), None).await;
    assert_eq!(status, 202);
    eventually("5, 6 and 7 after the re-send", Duration::from_secs(10), || async {
        (succeeded(&rx) == [0, 1, 3, 4, 5, 6, 7]).then_some(())
    })
    .await;

    // C: event 8 fails twice; 9 and 10 are held while the webhook is deactivated; recovery
    // sends 8 first, then 9 and 10.
    rx.fail(8, 2);
    let since = chrono::Utc::now();
    api.event("ledger.entry", json!({"n": 8})).await;
    blocked(8).await;
    for n in 9..11 {
        api.event("ledger.entry", json!({"n": n})).await;
    }
    let recovered =
        api.post(&format!("/webhooks/{id}/reactivate"), json!({"recover_since": since.to_rfc3339()})).await;
    assert_eq!(recovered["recovered_deliveries"], 3, "8 (failed), 9 and 10 (held)");
    eventually("8, 9 and 10 after the recovery", Duration::from_secs(10), || async {
        (succeeded(&rx) == [0, 1, 3, 4, 5, 6, 7, 8, 9, 10]).then_some(())
    })
    .await;

    // D: event 11 fails twice; 12 and 13 are held; reactivated without recovery, a bulk re-send
    // of everything since then sends 11 first, then 12 and 13.
    rx.fail(11, 2);
    let since = chrono::Utc::now();
    api.event("ledger.entry", json!({"n": 11})).await;
    blocked(11).await;
    for n in 12..14 {
        api.event("ledger.entry", json!({"n": n})).await;
    }
    api.post(&format!("/webhooks/{id}/reactivate"), json!({})).await;
    let job = api
        .post(
            "/deliveries/retry",
            json!({"webhook_id": id, "status": ["failed", "held"], "since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(job["matching"], 3, "11 (failed), 12 and 13 (held): {job}");
    eventually("11, 12 and 13 after the bulk re-send", Duration::from_secs(10), || async {
        (succeeded(&rx) == [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]).then_some(())
    })
    .await;
    let u = usage().await;
    assert!(u["line_blocked_by"].is_null(), "nothing blocks the line: {u}");
    assert_eq!(u["line_waiting"], 0);
    app.stop().await;
}

async fn ordering_is_switched_on_for_what_is_already_queued(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = app.api().await;
    let rx = Receiver::start().await;
    // Stopped: its events wait as held. Queued, then ordered, then resumed with recovery. The
    // first fails once: the others wait for its retry (1 s later) instead of overtaking it.
    rx.fail(0, 1);
    let (id, _) = api
        .webhook(json!({"name": "ledger", "url": rx.url("/flaky/0"), "event_types": ["ledger.*"], "enabled": false}))
        .await;
    let since = chrono::Utc::now();
    for n in 0..20 {
        api.event("ledger.entry", json!({"n": n})).await;
    }
    let updated = api.call(Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"ordered": true}))).await;
    assert_eq!((updated.0.as_u16(), &updated.1["ordered"]), (200, &json!(true)));
    api.post(&format!("/webhooks/{id}/reactivate"), json!({"recover_since": since.to_rfc3339()})).await;
    eventually("20 delivered", Duration::from_secs(15), || async {
        (succeeded(&rx).len() == 20).then_some(())
    })
    .await;
    assert_in_order(&succeeded(&rx), 20);
    assert_eq!(rx.flaky_log()[..2], [(0, 500), (0, 200)], "the first, failed, then retried before the rest");
    // Then new events of an ordered webhook that is switched back: all arrive, not necessarily in order.
    api.call(Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"ordered": false}))).await;
    assert_eq!(api.get(&format!("/webhooks/{id}")).await["ordered"], false);
    for n in 20..40 {
        api.event("ledger.entry", json!({"n": n})).await;
    }
    eventually("40 delivered", Duration::from_secs(15), || async {
        (succeeded(&rx).len() == 40).then_some(())
    })
    .await;
    app.stop().await;
}
