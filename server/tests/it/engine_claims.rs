//! The claim's per-webhook limit, at the level of the engine's store: it counts requests in
//! flight to the receiver, so a request whose response is in frees its slot before its attempt
//! is recorded, and nothing more does.

use app::db::{events::NewEvent, webhooks::create};
use herald_server::engine::store::{claim, Answered, ClaimLimits};
use serde_json::json;

use crate::{both_databases, common::*};

both_databases!(an_answered_request_frees_its_webhook_slot_before_it_is_recorded);

async fn an_answered_request_frees_its_webhook_slot_before_it_is_recorded(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = herald_server::open_database(&test_config(&test_db.url)).await.expect("database");
    let input = serde_json::from_value(
        json!({"name": "shop", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
    )
    .unwrap();
    create(&db, input, "test").await.expect("webhook");
    for n in 0..5 {
        let event = NewEvent {
            event_type: "order.placed".into(),
            payload: format!("{{\"n\":{n}}}"),
            idempotency_key: None,
        };
        app::db::events::ingest(&db, event).await.expect("event");
    }
    let limits = ClaimLimits { batch: 10, per_webhook: 2, lease_margin: chrono::Duration::seconds(30) };
    let answered = Answered::default();

    let first = claim(&db, "test", &limits, &answered).await.unwrap();
    assert_eq!(first.len(), 2, "two slots, two of five due deliveries");
    assert!(claim(&db, "test", &limits, &answered).await.unwrap().is_empty(), "both slots taken");

    answered.insert(&first[0].delivery);
    let next = claim(&db, "test", &limits, &answered).await.unwrap();
    assert_eq!(next.len(), 1, "the answered request's slot is free before its attempt is recorded");
    assert!(
        next[0].delivery.id != first[0].delivery.id && next[0].delivery.id != first[1].delivery.id,
        "a leased delivery is never claimed twice"
    );
    assert!(claim(&db, "test", &limits, &answered).await.unwrap().is_empty(), "no more than that slot");

    // The recorder could not record it: its lease counts in the database again until it expires.
    answered.remove([first[0].delivery.id]);
    answered.insert(&next[0].delivery);
    assert!(
        claim(&db, "test", &limits, &answered).await.unwrap().is_empty(),
        "an unrecorded lease counts again once the recorder lets go of it"
    );
    db.close().await.ok();
}
