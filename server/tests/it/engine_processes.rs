//! Durability and scale-out with real `herald serve` processes: nothing accepted is lost to
//! kill -9, and two processes on one database share the work without sending anything twice.

use std::{collections::HashMap, time::Duration};

use app::{
    db::entities::{attempts, deliveries},
    models::DeliveryStatus,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::{
    both_databases,
    common::{process::HeraldProcess, receiver::Receiver, *},
};

both_databases!(kill_9_mid_delivery_loses_no_event, two_processes_share_a_burst_without_duplicates);

pub async fn api_for(process: &HeraldProcess, db: &sea_orm::DatabaseConnection) -> Api {
    let key = app::db::api_keys::create(db, "test", None, "test").await.expect("api key").1;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    Api { base: process.base(), key, client }
}

pub async fn all_succeeded(db: &sea_orm::DatabaseConnection, expected: usize, timeout: Duration) {
    eventually(&format!("{expected} succeeded deliveries"), timeout, || async {
        let done = deliveries::Entity::find()
            .filter(deliveries::Column::Status.eq(DeliveryStatus::Succeeded))
            .all(db)
            .await
            .unwrap()
            .len();
        (done == expected).then_some(())
    })
    .await
}

async fn kill_9_mid_delivery_loses_no_event(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let rx = Receiver::start().await;
    let first = HeraldProcess::start(&test_db.url, &[]);
    let db = test_db.connect().await;
    let api = api_for(&first, &db).await;
    // The default timeout (15 s): the dead process's leases would hold the webhook's slots for
    // 16 s; its heartbeat stopping is what frees them.
    api.webhook(json!({"name": "slow", "url": rx.url("/sleep/1000"), "event_types": ["*"]})).await;
    let mut events = Vec::new();
    for n in 0..40 {
        events.push(api.event("order.placed", json!({"n": n})).await);
    }
    eventually("some deliveries under way", Duration::from_secs(20), || async {
        (rx.received().len() >= 5).then_some(())
    })
    .await;
    first.kill_9();
    let sent_before_kill = rx.received().len();
    // Mid-burst means deliveries not yet finished: each request takes 1 s, so those that
    // arrived are still in flight (the webhook may take all 40 at once on a fast machine).
    let finished = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(DeliveryStatus::Succeeded))
        .all(&db)
        .await
        .unwrap()
        .len();
    assert!(finished < 40, "killed mid-burst ({sent_before_kill} sent, {finished} finished)");

    let in_flight = deliveries::Entity::find()
        .filter(deliveries::Column::LeaseExpiresAt.is_not_null())
        .all(&db)
        .await
        .unwrap()
        .len();
    let _second = HeraldProcess::start(&test_db.url, &[]);
    let restarted = std::time::Instant::now();
    let resumed = eventually("a delivery after the restart", Duration::from_secs(30), || async {
        rx.received().iter().find(|r| r.at > restarted).map(|r| r.at - restarted)
    })
    .await;
    assert!(resumed <= Duration::from_secs(5), "deliveries resumed {resumed:?} after the restart");
    all_succeeded(&db, 40, Duration::from_secs(60)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in rx.received() {
        *seen.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    for id in &events {
        assert!(seen.contains_key(id), "event {id} was delivered after the restart");
    }
    let repeats: usize = seen.values().map(|n| n - 1).sum();
    // Only what was in flight (leased) at the kill can be sent twice.
    assert!(repeats <= in_flight, "{repeats} sent twice, more than the {in_flight} in flight at the kill");
    println!(
        "kill -9 after {sent_before_kill} of 40 sent ({finished} finished), {in_flight} in flight; deliveries resumed {resumed:?} \
         after the restart; all 40 delivered; {repeats} sent twice (at least once)"
    );
    db.close().await.ok();
}

async fn two_processes_share_a_burst_without_duplicates(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let rx = Receiver::start().await;
    // Each process may have 10 requests in flight, a third of the 30 the webhooks allow between
    // them, so neither can take the whole burst: the other always finds free slots. (Without
    // the cap, one fast process could re-claim every slot the moment it freed.)
    let cap = [("HERALD_MAX_IN_FLIGHT", "10")];
    let a = HeraldProcess::start(&test_db.url, &cap);
    let b = HeraldProcess::start(&test_db.url, &cap);
    let db = test_db.connect().await;
    let (api_a, api_b) = (api_for(&a, &db).await, api_for(&b, &db).await);
    for n in 0..3 {
        let name = format!("shop-{n}");
        api_a.webhook(json!({"name": name, "url": rx.url("/sleep/20"), "event_types": ["*"]})).await;
    }
    let posts = (0..100).map(|n| {
        let api = if n % 2 == 0 { api_a.clone() } else { api_b.clone() };
        async move { api.event("order.placed", json!({"n": n})).await }
    });
    futures::future::join_all(posts).await;
    all_succeeded(&db, 300, Duration::from_secs(120)).await;

    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    for r in rx.received() {
        *per_delivery.entry(r.header("x-herald-delivery-id").to_owned()).or_default() += 1;
    }
    assert_eq!(per_delivery.len(), 300, "every delivery arrived");
    let twice: Vec<_> = per_delivery.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        // Who sent each of them, and when: what tells a lease taken twice from a slow record.
        let mut seen = Vec::new();
        for (id, _) in &twice {
            let id: uuid::Uuid = id.parse().unwrap();
            for a in
                attempts::Entity::find().filter(attempts::Column::DeliveryId.eq(id)).all(&db).await.unwrap()
            {
                seen.push(format!(
                    "{id}: attempt {} by {:?} at {}",
                    a.attempt_number, a.sent_by, a.started_at
                ));
            }
        }
        panic!("no delivery sent twice: {twice:?}\n{}", seen.join("\n"));
    }
    let mut by_process: HashMap<String, usize> = HashMap::new();
    for a in attempts::Entity::find().all(&db).await.unwrap() {
        *by_process.entry(a.sent_by.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(by_process.len(), 2, "both processes sent: {by_process:?}");
    println!("300 deliveries by two processes: {by_process:?}");
    drop((a, b));
    db.close().await.ok();
}
