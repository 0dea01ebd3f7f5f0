//! The claim's per-webhook limit, at the level of the engine's store: it counts requests in
//! flight to the receiver, so a request whose response is in frees its slot before its attempt
//! is recorded, and nothing more does.

use app::db::{events::NewEvent, webhooks::create};
use herald_server::engine::{
    lanes::{Counted, Lanes},
    store::{claim, Answered, Claim, ClaimLimits},
};
use serde_json::json;

use crate::{both_databases, common::*};

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A webhook limit of two requests in flight, and three deliveries leased ahead.
fn two_slots_three_ahead() -> ClaimLimits {
    ClaimLimits {
        batch: 100,
        per_webhook: 2,
        prefetch: 3,
        capacity: 100,
        lease_margin: chrono::Duration::seconds(30),
        default_rate: None,
    }
}

/// What a claim counted, as the engine gives it to the lanes.
fn counted(claim: &Claim) -> Counted<'_> {
    Counted {
        others: &claim.others,
        maybe_more: &claim.maybe_more,
        started: std::time::Instant::now(),
        alone: claim.alone,
    }
}

both_databases!(
    an_answered_request_frees_its_webhook_slot_before_it_is_recorded,
    deliveries_leased_ahead_take_over_slots_without_passing_the_limit,
    dead_row_versions_of_the_queue_are_vacuumed_while_delivering,
    new_deliveries_go_from_the_commit_to_the_engine_and_a_backlog_goes_first,
    deliveries_leased_ahead_behind_another_process_are_given_back,
    webhooks_whose_deliveries_are_all_scheduled_later_leave_the_claim_to_others,
    a_webhook_reactivated_during_the_sweep_keeps_its_recovered_deliveries_due
);

/// On PostgreSQL every lease and record leaves dead row versions that the claim's index scans
/// walk until a vacuum: Herald vacuums `deliveries` itself once they pass
/// `HERALD_VACUUM_DEAD_ROWS`, without waiting for autovacuum. (SQLite updates in place: the task
/// does nothing there, and delivery goes on as usual.)
async fn dead_row_versions_of_the_queue_are_vacuumed_while_delivering(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn_with(backend, |c| c.vacuum_dead_rows = 200).await;
    let api = app.api().await;
    let rx = crate::common::receiver::Receiver::start().await;
    let (id, _) = api.webhook(json!({"name": "w", "url": rx.url("/ok"), "event_types": ["*"]})).await;
    for n in 0..400 {
        api.event("order.placed", json!({ "n": n })).await;
    }
    eventually("the newest 250 deliveries to succeed", std::time::Duration::from_secs(30), || async {
        let rows = api.deliveries_of(&id).await;
        (rows.len() >= 250 && rows.iter().all(|d| d["status"] == "succeeded")).then_some(())
    })
    .await;
    if backend == Backend::Postgres {
        let vacuums = || async {
            let row = app
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'deliveries'",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "vacuum_count").unwrap()
        };
        eventually("a vacuum of deliveries by Herald", std::time::Duration::from_secs(30), || async {
            (vacuums().await >= 1).then_some(())
        })
        .await;
    }
    app.stop().await;
}

/// Heartbeats of these processes: alive, each counts the others' leases as requests in flight
/// (alone, a process counts its own from its lanes).
async fn alive(db: &sea_orm::DatabaseConnection, workers: &[&str]) {
    for worker in workers {
        app::db::workers::beat(db, worker, app::db::now()).await.expect("heartbeat");
    }
}

/// A database with one webhook and `n` due deliveries to it.
async fn due_deliveries(test_db: &TestDb, n: usize) -> sea_orm::DatabaseConnection {
    let db = herald_server::open_database(&test_config(&test_db.url)).await.expect("database");
    let input = serde_json::from_value(
        json!({"name": "shop", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
    )
    .unwrap();
    create(&db, input, "test").await.expect("webhook");
    for n in 0..n {
        let event = NewEvent {
            event_type: "order.placed".into(),
            payload: format!("{{\"n\":{n}}}"),
            idempotency_key: None,
        };
        app::db::events::ingest(&db, event).await.expect("event");
    }
    db
}

async fn an_answered_request_frees_its_webhook_slot_before_it_is_recorded(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = due_deliveries(&test_db, 5).await;
    let limits = ClaimLimits {
        batch: 10,
        per_webhook: 2,
        prefetch: 0,
        capacity: 100,
        lease_margin: chrono::Duration::seconds(30),
        default_rate: None,
    };
    let answered = Answered::default();
    let lanes = Lanes::default();
    let claim = |answered| {
        let (db, limits, lanes) = (&db, &limits, &lanes);
        async move { claim(db, "test", limits, answered, lanes).await.unwrap().leased }
    };
    // Another process is alive: the leases in the database are what counts.
    alive(&db, &["test", "another"]).await;

    let first = claim(&answered).await;
    assert_eq!(first.len(), 2, "two slots, two of five due deliveries");
    assert!(claim(&answered).await.is_empty(), "both slots taken");

    answered.insert(&first[0].delivery);
    let next = claim(&answered).await;
    assert_eq!(next.len(), 1, "the answered request's slot is free before its attempt is recorded");
    assert!(
        next[0].delivery.id != first[0].delivery.id && next[0].delivery.id != first[1].delivery.id,
        "a leased delivery is never claimed twice"
    );
    assert!(claim(&answered).await.is_empty(), "no more than that slot");

    // The recorder could not record it: its lease counts in the database again until it expires.
    answered.remove([first[0].delivery.id]);
    answered.insert(&next[0].delivery);
    assert!(
        claim(&answered).await.is_empty(),
        "an unrecorded lease counts again once the recorder lets go of it"
    );

    // Alone, the process knows its requests from its lanes: that lease's request is over, so
    // its slot is free (with another process alive, it could not tell that lease from theirs).
    app::db::workers::forget(&db, "another").await.unwrap();
    let alone = herald_server::engine::store::claim(&db, "test", &limits, &answered, &lanes).await.unwrap();
    assert!(alone.alone);
    assert_eq!(alone.leased.len(), 2, "no request in flight: both slots free");
    db.close().await.ok();
}

/// A process leases up to `prefetch` deliveries beyond its webhook's free slots; they wait in
/// its lane and a request that ends hands its slot to the next one. Requests in flight never
/// pass the limit, and another process sees those leases as slots taken.
async fn deliveries_leased_ahead_take_over_slots_without_passing_the_limit(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = due_deliveries(&test_db, 25).await;
    let limits = two_slots_three_ahead();
    let (answered, lanes) = (Answered::default(), Lanes::default());
    alive(&db, &["a", "b"]).await;

    let mut first = claim(&db, "a", &limits, &answered, &lanes).await.unwrap();
    assert_eq!(first.leased.len(), 5, "two free slots and three ahead");
    let webhook = first.leased[0].delivery.webhook_id;
    let (started, _) = lanes.fill(std::mem::take(&mut first.leased), Some(counted(&first)), 2, 100);
    assert_eq!(started.len(), 2, "only as many start as the limit allows");
    let held = lanes.held()[&webhook];
    assert_eq!((held.running, held.ready), (2, 3));

    let again = claim(&db, "a", &limits, &answered, &lanes).await.unwrap();
    assert!(again.leased.is_empty(), "slots full and the lane topped up: nothing more");
    assert_eq!(again.others.get(&webhook).copied().unwrap_or(0), 0, "all five leases are this process's");

    // A request ends: the next ready delivery takes its slot, with no claim in between.
    let next = lanes.finish(webhook, true, true, |_| true, &mut Vec::new()).expect("handed over");
    assert!(started.iter().all(|s| s.delivery.id != next.delivery.id));
    answered.insert(&started[0].delivery);
    let held = lanes.held()[&webhook];
    assert_eq!((held.running, held.ready), (2, 2), "still two in flight");
    let mut refill = claim(&db, "a", &limits, &answered, &lanes).await.unwrap();
    assert_eq!(refill.leased.len(), 1, "the lane is topped up again, by one");
    assert!(
        lanes.fill(std::mem::take(&mut refill.leased), Some(counted(&refill)), 2, 100).0.is_empty(),
        "no slot is free to start it"
    );

    // Another process counts every lease of the first as a taken slot, and leases nothing.
    let (other_answered, other_lanes) = (Answered::default(), Lanes::default());
    let other = claim(&db, "b", &limits, &other_answered, &other_lanes).await.unwrap();
    assert!(other.leased.is_empty(), "the webhook's slots are taken by the first process");
    assert!(other.others[&webhook] >= 2);

    // Shutting down: a finished request frees its slot instead of handing it over.
    assert!(lanes.finish(webhook, false, true, |_| true, &mut Vec::new()).is_none());
    assert_eq!(lanes.held()[&webhook].running, 1);
    db.close().await.ok();
}

/// A new event to a webhook this process already delivers to goes from the commit that stores
/// it straight to the engine: its delivery is written leased (no claim, no second write), which
/// shows in its lease running exactly two timeouts and the margin from its creation. While older
/// deliveries of the webhook wait in the database, new ones are left to the claim, which sends
/// the oldest first: an event posted during a backlog arrives after every older one.
async fn new_deliveries_go_from_the_commit_to_the_engine_and_a_backlog_goes_first(backend: Backend) {
    use app::db::entities::deliveries;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = TestApp::spawn_with(backend, |c| c.webhook_concurrency = 2).await;
    let api = app.api().await;
    let rx = crate::common::receiver::Receiver::start().await;
    let timeout_ms = 5_000;
    let (id, _) = api
        .webhook(
            json!({"name": "w", "url": rx.url("/sleep/400"), "event_types": ["*"], "timeout_ms": timeout_ms}),
        )
        .await;
    let webhook_id: uuid::Uuid = id.parse().unwrap();
    let lease_of = |event: String| {
        let db = app.db.clone();
        async move {
            let event_id: uuid::Uuid = event.parse().unwrap();
            let d = deliveries::Entity::find()
                .filter(deliveries::Column::EventId.eq(event_id))
                .one(&db)
                .await
                .unwrap()
                .expect("its delivery");
            d.lease_expires_at.map(|l| l - d.created_at)
        }
    };
    let from_the_commit = Some(chrono::Duration::milliseconds(2 * timeout_ms) + chrono::Duration::seconds(2));

    // The first finds no lane for its webhook: a claim leases it, later than its creation.
    let first = api.event("order.placed", json!({"n": 0})).await;
    eventually("the first request", WAIT, || async { (!rx.received().is_empty()).then_some(()) }).await;
    let claimed = lease_of(first).await;
    assert!(claimed.is_some() && claimed != from_the_commit, "the first delivery was claimed: {claimed:?}");
    // The next two fit the webhook's lane (2 slots and 1 ready): leased in the commit.
    for n in 1..=2 {
        let event = api.event("order.placed", json!({ "n": n })).await;
        assert_eq!(lease_of(event).await, from_the_commit, "event {n} was leased as it was stored");
    }
    // The lane is full: the next ones wait in the database, unleased, for the claim.
    for n in 3..=10 {
        api.event("order.placed", json!({ "n": n })).await;
    }
    let unleased = deliveries::Entity::find()
        .filter(deliveries::Column::WebhookId.eq(webhook_id))
        .filter(deliveries::Column::LeaseExpiresAt.is_null())
        .all(&app.db)
        .await
        .unwrap();
    assert!(unleased.len() >= 4, "a backlog waits for the claim ({} unleased)", unleased.len());
    // While it drains, a new event goes behind it, not ahead.
    eventually("the backlog draining", WAIT, || async { (rx.received().len() >= 5).then_some(()) }).await;
    api.event("order.placed", json!({"n": 11})).await;
    eventually("every event", std::time::Duration::from_secs(30), || async {
        (rx.received().len() >= 12).then_some(())
    })
    .await;
    let order: Vec<i64> = rx
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order.len(), 12, "each event once: {order:?}");
    assert_eq!(order.last(), Some(&11), "the event posted during the backlog came last: {order:?}");
    for (i, n) in order.iter().enumerate() {
        // Two requests at a time: a neighbour may arrive first, nothing older is left far behind.
        assert!(
            order[i..].iter().all(|later| *later + 2 > *n),
            "oldest first, give or take a slot: {order:?}"
        );
    }
}

/// Two processes that leased ahead at the same moment each count the other's waiting deliveries
/// as requests in flight. A lane that can start nothing because other processes hold every slot
/// of its webhook gives its waiting deliveries back, instead of both waiting for the other
/// until the leases run out (31 s, seen under load; one then sent a delivery whose lease had run
/// out while the other claimed it: a duplicate).
async fn deliveries_leased_ahead_behind_another_process_are_given_back(backend: Backend) {
    use app::db::entities::deliveries;
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let test_db = TestDb::new(backend).await;
    let db = due_deliveries(&test_db, 25).await;
    let limits = two_slots_three_ahead();
    let (answered, lanes) = (Answered::default(), Lanes::default());
    alive(&db, &["a", "b"]).await;
    // Process a leases two for its slots and three ahead, but its own requests keep it busy:
    // none starts yet.
    let mut first = claim(&db, "a", &limits, &answered, &lanes).await.unwrap();
    assert_eq!(first.leased.len(), 5);
    let ours: Vec<uuid::Uuid> = first.leased.iter().map(|c| c.delivery.id).collect();
    let (started, blocked) = lanes.fill(std::mem::take(&mut first.leased), Some(counted(&first)), 2, 0);
    assert!(started.is_empty() && blocked.is_empty(), "its own leases do not block it");
    // Meanwhile process b leased two of the others (as its own claim, made at the same moment,
    // would have).
    let theirs: Vec<uuid::Uuid> = deliveries::Entity::find()
        .select_only()
        .column(deliveries::Column::Id)
        .filter(deliveries::Column::LeaseOwner.is_null())
        .limit(2)
        .into_tuple()
        .all(&db)
        .await
        .unwrap();
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::LeaseOwner, Expr::value("b"))
        .col_expr(
            deliveries::Column::LeaseExpiresAt,
            Expr::value(app::db::now() + chrono::Duration::seconds(60)),
        )
        .filter(deliveries::Column::Id.is_in(theirs))
        .exec(&db)
        .await
        .unwrap();
    let mut again = claim(&db, "a", &limits, &answered, &lanes).await.unwrap();
    assert!(again.leased.is_empty(), "b holds both slots: nothing more for a");
    let (started, mut blocked) = lanes.fill(std::mem::take(&mut again.leased), Some(counted(&again)), 2, 100);
    assert!(started.is_empty(), "b holds both slots: nothing starts");
    blocked.sort();
    let mut expected = ours.clone();
    expected.sort();
    assert_eq!(blocked, expected, "a gives back everything it leased ahead");
    assert_eq!(lanes.held().get(&first_webhook(&db).await).map_or(0, |h| h.ready), 0);
}

/// Webhooks whose deliveries are all retries scheduled for later want nothing of a claim, and
/// what the others want is shared out fairly: a webhook created after many such webhooks gets its
/// due deliveries claimed at once. (Each of them used to ask for its whole limit and take it out
/// of the claim's budget: with enough of them, a webhook listed after them was never claimed
/// for, so it never got a lane for the hand-off either, and its deliveries waited for good.)
async fn webhooks_whose_deliveries_are_all_scheduled_later_leave_the_claim_to_others(backend: Backend) {
    use app::db::entities::deliveries;
    use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
    let test_db = TestDb::new(backend).await;
    let db = herald_server::open_database(&test_config(&test_db.url)).await.expect("database");
    let webhook = |name: &str, types: &str| {
        serde_json::from_value(
            json!({"name": name, "url": "http://127.0.0.1:9/hook", "event_types": [types]}),
        )
        .unwrap()
    };
    let event = |event_type: &str| NewEvent {
        event_type: event_type.into(),
        payload: "{}".into(),
        idempotency_key: None,
    };
    for i in 0..6 {
        create(&db, webhook(&format!("parked {i}"), "parked.*"), "test").await.expect("webhook");
    }
    app::db::events::ingest(&db, event("parked.tick")).await.expect("event");
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, Expr::value("retrying"))
        .col_expr(deliveries::Column::NextAttemptAt, Expr::value(app::db::now() + chrono::Duration::hours(1)))
        .exec(&db)
        .await
        .unwrap();
    let fresh = create(&db, webhook("fresh", "fresh.*"), "test").await.expect("webhook").webhook.id.0;
    for _ in 0..3 {
        app::db::events::ingest(&db, event("fresh.tick")).await.expect("event");
    }
    // Room for ten leases, four a webhook with four ahead: one parked webhook asking for eight
    // would leave the fresh one at most two, and two of them none.
    let limits =
        ClaimLimits { batch: 100, per_webhook: 4, prefetch: 4, capacity: 10, ..two_slots_three_ahead() };
    let (answered, lanes) = (Answered::default(), Lanes::default());
    let got = claim(&db, "a", &limits, &answered, &lanes).await.unwrap();
    let leased: Vec<uuid::Uuid> = got.leased.iter().map(|c| c.delivery.webhook_id).collect();
    assert_eq!(leased, vec![fresh; 3], "the fresh webhook's three due deliveries, nothing else");
    assert!(!got.maybe_more.contains(&fresh), "all of them: no backlog left behind");
    let parked = deliveries::Entity::find()
        .filter(deliveries::Column::LeaseOwner.is_not_null())
        .filter(deliveries::Column::WebhookId.ne(fresh))
        .all(&db)
        .await
        .unwrap();
    assert!(parked.is_empty(), "no retry was leased before its time");
}

async fn first_webhook(db: &sea_orm::DatabaseConnection) -> uuid::Uuid {
    use app::db::entities::webhooks;
    use sea_orm::EntityTrait;
    webhooks::Entity::find().one(db).await.unwrap().expect("a webhook").id
}

/// The engine's once-a-second sweep reads which webhooks are not active, then holds their due
/// deliveries. A webhook reactivated in between, its held deliveries recovered (pending again),
/// keeps them pending: the write holds what is inactive when it runs, not what the read saw.
/// (Before, the write used the list, and a recovery that fell between the two was held again
/// for good: a Playwright run showed "3 still to send" forever.)
async fn a_webhook_reactivated_during_the_sweep_keeps_its_recovered_deliveries_due(backend: Backend) {
    use app::{
        db::entities::{deliveries, webhooks},
        models::{DeliveryStatus, WebhookState},
    };
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let test_db = TestDb::new(backend).await;
    let db = due_deliveries(&test_db, 3).await;
    let shop = first_webhook(&db).await;
    let input =
        serde_json::from_value(json!({"name": "audit", "url": "http://127.0.0.1:9/a", "event_types": ["*"]}))
            .unwrap();
    let audit = create(&db, input, "test").await.expect("webhook").webhook.id.0;
    for n in 0..2 {
        let event = NewEvent {
            event_type: "order.placed".into(),
            payload: format!("{{\"n\":{n}}}"),
            idempotency_key: None,
        };
        app::db::events::ingest(&db, event).await.expect("event");
    }
    let set_state = |id: uuid::Uuid, state: WebhookState| {
        let db = db.clone();
        async move {
            webhooks::ActiveModel { id: Set(id), state: Set(state), ..Default::default() }
                .update(&db)
                .await
                .unwrap();
        }
    };
    // Both stopped as the sweep reads its list; then "shop" is reactivated before it writes.
    set_state(shop, WebhookState::Stopped).await;
    set_state(audit, WebhookState::Stopped).await;
    let (_, inactive) = herald_server::engine::store::hold_inactive(&db).await.unwrap();
    assert!(inactive.contains(&shop) && inactive.contains(&audit), "both read as inactive");
    set_state(shop, WebhookState::Active).await;
    deliveries::Entity::update_many()
        .col_expr(
            deliveries::Column::Status,
            sea_orm::sea_query::Expr::value(DeliveryStatus::Pending.as_str()),
        )
        .col_expr(deliveries::Column::NextAttemptAt, sea_orm::sea_query::Expr::value(app::db::now()))
        .filter(deliveries::Column::WebhookId.eq(shop))
        .exec(&db)
        .await
        .unwrap();

    let held = herald_server::engine::store::hold_due_of_inactive(&db).await.unwrap();

    let status_of = |id: uuid::Uuid| {
        let db = db.clone();
        async move {
            deliveries::Entity::find()
                .filter(deliveries::Column::WebhookId.eq(id))
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.status)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(held, 0, "the stopped webhook's deliveries were held by the first sweep already");
    let shop_statuses = status_of(shop).await;
    assert_eq!(shop_statuses.len(), 5, "3 events before audit existed, 2 after");
    assert!(
        shop_statuses.iter().all(|s| *s == DeliveryStatus::Pending),
        "recovered stay due: {shop_statuses:?}"
    );
    let audit_statuses = status_of(audit).await;
    assert_eq!(audit_statuses, vec![DeliveryStatus::Held; 2], "the still-stopped webhook's stay held");
}
